APP_NAME=crm
APP_HOME=/opt/$APP_NAME
HB_DIR=/mnt/$APP_NAME/heartbeat
pgrepProgramName=$APP_NAME-server
startCmd=$APP_HOME/bin/$APP_NAME-server
heartBeatDir=$HB_DIR
maintenanceFile=$HB_DIR/../maintenance
