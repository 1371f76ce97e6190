: ${HB_ROOT:=/mnt/cluster}
heartBeatDir=$HB_ROOT/heartbeat
maintenanceFile=$HB_ROOT/maintenance/$(hostname -s)
pgrepProgramName=queue-worker
startCmd=/opt/queue/bin/worker
