#!/bin/bash
# `make demo`: a real two-node failover on this machine.
#
# Two hacmp daemons, nodeA and nodeB, share one heartbeat directory in a temporary directory, as
# two hosts share an NFS directory. nodeA becomes master and starts the example application; the
# demo then kills nodeA and its application with SIGKILL, as a host crash would, and waits for
# nodeB to take over. Every process it started is ended by PID when it exits, however it exits.
#
# Usage: examples/demo.sh PATH_TO_HACMP
set -euo pipefail

hacmp=$(realpath "${1:?usage: demo.sh PATH_TO_HACMP}")
here=$(dirname "$(realpath "$0")")
work=$(mktemp -d /tmp/hacmp-demo.XXXXXX)
# The marker makes every pattern match only the applications this demo starts.
marker="hacmp-demo-$$-$RANDOM$RANDOM"
loop_time=1
failover_time=5
deadline_seconds=120
daemon_pids=()

# Both "hosts" share this machine's process table, so each node's pattern names the node too;
# on real hosts each node only ever sees its own processes.
node_pattern() { echo "exampleApplication.sh $marker $1"; }
app_pids() { pgrep -f "$(node_pattern "$1")" || true; }

cleanup() {
	local pid
	for pid in "${daemon_pids[@]}" $(app_pids nodeA) $(app_pids nodeB); do
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '[demo %3ds] %s\n' "$SECONDS" "$*"; }

start_node() {
	local node=$1
	mkdir -p "$work/$node"
	cp "$here/exampleApplication.sh" "$work/$node/"
	cat > "$work/$node/heartbeat.vars" <<VARS
# The variables of heartbeat.sh, as an operator writes them.
pgrepProgramName='$(node_pattern "$node")'
startCmd='./exampleApplication.sh $marker $node'
startCmdLogFile='./app.log'
maintenanceFile='./maintenance'
hostName=$node
heartBeatDir='$work/heartbeat'
faileOverTime=$failover_time
loopTime=$loop_time
VARS
	(cd "$work/$node" && exec "$hacmp" run heartbeat.vars > daemon.log 2>&1) &
	daemon_pids+=($!)
	# The demo reports the crash itself; bash's "Killed" job notice would only repeat it.
	disown $!
	say "started hacmp as $node (pid $!) in $work/$node"
}

wait_for_app() {
	local node=$1
	while [ -z "$(app_pids "$node")" ]; do
		if [ "$SECONDS" -ge "$deadline_seconds" ]; then
			say "FAILED: no application on $node within ${deadline_seconds}s"
			tail -n 20 "$work"/node*/daemon.log
			exit 1
		fi
		sleep 0.2
	done
}

mkdir -p "$work/heartbeat"
say "heartbeat directory $work/heartbeat, loopTime=$loop_time faileOverTime=$failover_time"
start_node nodeA
wait_for_app nodeA
say "nodeA is master: application running (pid $(app_pids nodeA))"
start_node nodeB
sleep 3
say "heartbeat files: $(cd "$work/heartbeat" && for f in *; do printf '%s (%ss old) ' "$f" $(($(date +%s) - $(stat -c %Y "$f"))); done)"
say "nodeB is standby: only nodeA touches its heartbeat file"

crash_at=$SECONDS
say "CRASH: killing nodeA's daemon and application with SIGKILL"
kill -9 "${daemon_pids[0]}" $(app_pids nodeA)
say "nodeB notices on its next check; heartbeat.sh's standby loop waits 30 s in killInstance first"
wait_for_app nodeB
failover=$((SECONDS - crash_at))
say "nodeB took over: application running (pid $(app_pids nodeB))"

echo
echo "Summary"
echo "  failover time: ${failover}s (crash of nodeA to application running on nodeB)"
echo "  instances now: nodeA $(app_pids nodeA | wc -l), nodeB $(app_pids nodeB | wc -l)"
echo "  nodeB's decisions:"
grep -E 'not master|no master|We are master|Instance' "$work/nodeB/daemon.log" | sed 's/^/    /'
echo "  nodeB's application log:"
tail -n 2 "$work/nodeB/app.log" | sed 's/^/    /'
