pgrepProgramName=relay
startCmd=/opt/relay/relay
[ -z "${hostName:-}" ] && hostName=$(hostname -s)
