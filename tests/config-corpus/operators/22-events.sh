pgrepProgramName=clearing
startCmd=/opt/clearing/bin/clearing
hacmpEventCmd='logger -t hacmp "$HACMP_EVENT $HACMP_MESSAGE"'
hacmpMetricsFile=/var/lib/node_exporter/textfile/hacmp.prom
