# hacmp variables for the billing service
pgrepProgramName='billing-server'
startCmd=/opt/billing/bin/billing-server
heartBeatDir=/mnt/shared/heartbeat
