set -u
APP_HOME=/opt/search
pgrepProgramName="$APP_HOME/bin/searchd"
startCmd="$APP_HOME/bin/searchd --config $APP_HOME/etc/searchd.conf"
set +u
