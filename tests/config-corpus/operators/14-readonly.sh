declare -r APP=inventory
pgrepProgramName="$APP-server"
startCmd=/opt/$APP/bin/$APP-server
readonly heartBeatDir=/mnt/$APP/hb
