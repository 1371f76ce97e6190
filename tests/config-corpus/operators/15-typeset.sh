typeset -i loopTime=4
typeset -i faileOverTime=loopTime*4
pgrepProgramName=metrics-gw
startCmd=/opt/metrics/gw
