source tests/config-corpus/operators/site/common.vars
loopTime=5
maintenanceFile=$APP_HOME/maintenance
