pgrepProgramName=clearing
startCmd=/opt/clearing/bin/clearing
hacmpProfile=safe
hacmpHeartBeatDirs='/mnt/dc1/hb /mnt/dc2/hb /mnt/witness/hb'
faileOverTime=30
