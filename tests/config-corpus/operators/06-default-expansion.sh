heartBeatDir=${HEARTBEAT_DIR:-/mnt/hb}
startCmdLogFile=${LOG_DIR:-/var/log/app}/start.log
pgrepProgramName=${APP_PATTERN:-appd}
startCmd=${APP_START:-/opt/app/bin/appd}
