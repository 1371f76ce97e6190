# Like heartbeat.sh, but safe to source: functions are only defined, loops never run.
pgrepProgramName='sh.*exampleApplication.sh.*'
startCmd='./exampleApplication.sh'
hostName=`hostname`
heartBeatDir='heartbeat'

function sendIncident {
	echo "#### ERROR, it's not alive"
	done_value=1
}

isAlive() {
	pgrep -f "$pgrepProgramName"
	return $?
}

while false
do
	loopTime=99
	if [ -f x ]; then
		echo "done"
	fi
done
until true; do faileOverTime=0; done
for item in; do item=1; done
case $heartBeatDir in
	never) faileOverTime=5 ;;
	*esac*) faileOverTime=6 ;;
esac
if false; then loopTime=7; elif false; then loopTime=8; else :; fi
faileOverTime=10
loopTime=3
