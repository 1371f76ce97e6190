pgrepProgramName=clearing
startCmd=/opt/clearing/bin/clearing
heartBeatDir=/mnt/clearing/hb
hacmpProfile=safe
faileOverTime=20
loopTime=2
