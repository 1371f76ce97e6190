# HOSTNAME is web01.dc1.example.com; the heartbeat files use the short name
hostName=${HOSTNAME%%.*}
pgrepProgramName='nginx: master'
startCmd='/usr/sbin/nginx'
heartBeatDir=/srv/cluster/heartbeat
