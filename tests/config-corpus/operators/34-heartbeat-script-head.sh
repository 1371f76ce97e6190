#!/bin/bash
# the top of a customised heartbeat.sh, the loop taken out
pgrepProgramName='sh.*exampleApplication.sh.*'
startCmd='./exampleApplication.sh'
hostName=`hostname`
faileOverTime=10
loopTime=3
echo "starting monitoring"
