pgrepProgramName=importer
startCmd=/opt/importer/run
startCmdLogFile=/var/log/importer/start-$(date +%Y%m%d).log
