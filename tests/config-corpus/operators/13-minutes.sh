# two minutes before a standby takes over
faileOverTime=$((2*60))
loopTime=20
pgrepProgramName=batchd
startCmd=/usr/bin/batchd
