# $HOSTNAME is set by bash itself when the environment lacks it.
host=$HOSTNAME
command_host=`hostname`
