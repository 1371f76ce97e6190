loopTime=5
faileOverTime=$((loopTime * 3))
pgrepProgramName=scheduler
startCmd=/opt/scheduler/bin/run
