pgrepProgramName=\
'archiver'
startCmd="/opt/archiver/bin/archiver \
--daemon"
