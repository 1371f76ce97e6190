#
# Heartbeat configuration -- managed by ops, do not edit by hand
#
pgrepProgramName='sh.*exampleApplication.sh.*'   # what pgrep looks for
startCmd='./exampleApplication.sh'
startCmdLogFile='./startCmdLogFile.log'
maintenanceFile='./maintenance'
hostName=`hostname`
heartBeatDir='heartbeat'
faileOverTime=10
loopTime=3
