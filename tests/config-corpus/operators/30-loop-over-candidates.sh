pgrepProgramName=agent
# the first mount that exists wins
for d in /mnt/hb-primary /mnt/hb-secondary /tmp; do
    if [ -d "$d" ]; then heartBeatDir=$d; break; fi
done
startCmd=/opt/agent/agent
