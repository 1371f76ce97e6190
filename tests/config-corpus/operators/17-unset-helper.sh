_base=/srv/payments
pgrepProgramName=payments
startCmd=$_base/bin/payments
heartBeatDir=$_base/heartbeat
startCmdLogFile=$_base/log/start.log
unset _base
