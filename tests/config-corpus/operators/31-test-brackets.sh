pgrepProgramName=cache
startCmd=/opt/cache/cache
if [[ $HOSTNAME == web* ]]; then
    loopTime=2
fi
