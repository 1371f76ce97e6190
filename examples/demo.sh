#!/bin/bash
# `make demo`: a real two-node failover on this machine, in both profiles.
#
# Two hacmp daemons, nodeA and nodeB, share one heartbeat directory in a temporary directory, as
# two hosts share an NFS directory. nodeA becomes master and starts the example application; the
# demo then kills nodeA, its guard if it has one, and its application with SIGKILL, as a host
# crash would, and waits for nodeB to take over. It does this first in the compat profile
# (heartbeat.sh exactly), then with hacmpProfile=safe, and shows both failover times side by
# side. Every process it started is ended by PID when it exits, however it exits.
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
# The whole demo, both profiles, ends within this many seconds or fails.
deadline_seconds=120
daemon_pids=()

# Both "hosts" share this machine's process table, so each node's pattern names the profile and
# the node too; on real hosts each node only ever sees its own processes.
node_pattern() { echo "exampleApplication.sh $marker $1 $2"; }
app_pids() { pgrep -f "$(node_pattern "$1" "$2")" || true; }

# A daemon's children: the application it started (compat) or its guard (safe), whose own
# application the kernel kills when the guard dies.
children() { pgrep -P "$1" || true; }

cleanup() {
	local pids=() pid profile node
	for pid in "${daemon_pids[@]}"; do
		pids+=("$pid" $(children "$pid"))
	done
	for profile in compat safe; do
		for node in nodeA nodeB; do
			pids+=($(app_pids "$profile" "$node"))
		done
	done
	for pid in "${pids[@]}"; do
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '[demo %3ds] %s\n' "$SECONDS" "$*"; }

# start_node PROFILE NODE: starts hacmp as NODE of PROFILE's cluster; its PID is the last of
# daemon_pids.
start_node() {
	local profile=$1 node=$2
	local dir="$work/$profile/$node"
	mkdir -p "$dir"
	cp "$here/exampleApplication.sh" "$dir/"
	cat > "$dir/heartbeat.vars" <<VARS
# The variables of heartbeat.sh, as an operator writes them.
pgrepProgramName='$(node_pattern "$profile" "$node")'
startCmd='./exampleApplication.sh $marker $profile $node'
startCmdLogFile='./app.log'
maintenanceFile='./maintenance'
hostName=$node
heartBeatDir='$work/$profile/heartbeat'
faileOverTime=$failover_time
loopTime=$loop_time
# hacmp's own variable: compat is heartbeat.sh exactly, safe never runs two instances.
hacmpProfile=$profile
VARS
	(cd "$dir" && exec "$hacmp" run heartbeat.vars > daemon.log 2>&1) &
	daemon_pids+=($!)
	# The demo reports the crash itself; bash's "Killed" job notice would only repeat it.
	disown $!
	say "started hacmp as $node (pid $!, profile $profile) in $dir"
}

wait_for_app() {
	local profile=$1 node=$2
	while [ -z "$(app_pids "$profile" "$node")" ]; do
		if [ "$SECONDS" -ge "$deadline_seconds" ]; then
			say "FAILED: no application on $node ($profile) within ${deadline_seconds}s of the start"
			tail -n 20 "$work/$profile"/node*/daemon.log
			exit 1
		fi
		sleep 0.2
	done
}

# crash PID PROFILE NODE: what a host crash does to NODE: its daemon, the daemon's children and
# its application die at once, without a chance to clean up.
crash() {
	local daemon=$1 profile=$2 node=$3
	# An application whose guard died first may be gone (PR_SET_PDEATHSIG) before its turn.
	kill -9 $( (echo "$daemon"; children "$daemon"; app_pids "$profile" "$node") | sort -u) 2>/dev/null || true
}

# failover PROFILE: nodeA master, nodeB standby, nodeA crashes; sets failover_seconds.
failover() {
	local profile=$1
	echo
	say "=== profile $profile: heartbeat directory $work/$profile/heartbeat, loopTime=$loop_time faileOverTime=$failover_time"
	mkdir -p "$work/$profile/heartbeat"
	start_node "$profile" nodeA
	local node_a=${daemon_pids[-1]}
	if [ "$profile" = safe ]; then
		say "a safe cluster's first master waits faileOverTime, in case another master is alive"
	fi
	wait_for_app "$profile" nodeA
	say "nodeA is master: application running (pid $(app_pids "$profile" nodeA))"
	start_node "$profile" nodeB
	local node_b=${daemon_pids[-1]}
	sleep 3
	say "heartbeat files: $(cd "$work/$profile/heartbeat" && for f in *; do printf '%s (%ss old) ' "$f" $(($(date +%s) - $(stat -c %Y "$f"))); done)"
	say "nodeB is standby: only nodeA touches its heartbeat file"

	local crash_at=$SECONDS
	local victims="nodeA's daemon and its application"
	[ "$profile" = compat ] || victims="nodeA's daemon, its guard and its application"
	say "CRASH: killing $victims with SIGKILL"
	crash "$node_a" "$profile" nodeA
	if [ "$profile" = compat ]; then
		say "nodeB notices on its next check; heartbeat.sh's standby loop waits 30 s in killInstance first"
	else
		say "nodeB takes over after faileOverTime without a change of nodeA's heartbeat, plus its 5 s claim check"
	fi
	wait_for_app "$profile" nodeB
	failover_seconds=$((SECONDS - crash_at))
	say "nodeB took over after ${failover_seconds}s: application running (pid $(app_pids "$profile" nodeB))"
	say "instances now: nodeA $(app_pids "$profile" nodeA | wc -l), nodeB $(app_pids "$profile" nodeB | wc -l)"
	say "nodeB's decisions:"
	grep -E 'not master|no master|We are master|Instance|trying to be master|yielding' \
		"$work/$profile/nodeB/daemon.log" | sed 's/^/    /'
	# This cluster is done; the next one starts on an empty process table.
	crash "$node_b" "$profile" nodeB
}

say "every application's command line carries the marker $marker"
failover compat
compat_seconds=$failover_seconds
failover safe
safe_seconds=$failover_seconds

echo
echo "Failover after a crash of the master (loopTime=$loop_time, faileOverTime=$failover_time):"
printf '  %-8s %4ss   %s\n' \
	compat "$compat_seconds" "heartbeat.sh's: a standby looks again only after killInstance's 30 s wait" \
	safe "$safe_seconds" "faileOverTime without a heartbeat change, then a 5 s claim check (docs/safe-profile.md)"
