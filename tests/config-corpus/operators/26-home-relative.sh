pgrepProgramName=devapp
startCmd=~/bin/devapp
startCmdLogFile=~/devapp.log
heartBeatDir=~/heartbeat
