pgrepProgramName=myapp
startCmd=/usr/local/bin/myapp
hostName=$(hostname -s)
heartBeatDir=/mnt/nfs/hb
