#!/bin/sh
# A stand-in for the application hacmp keeps running on exactly one host: it prints a line every
# second until it is stopped. Its arguments are ignored, so tests and the demo can put a unique
# marker on its command line for pgrepProgramName to match.
#
# Environment, all optional:
#   APP_EVENTS       a file to which the app appends "start HOST PID UPTIME" and "exit ..." lines,
#                    an oracle that tests read to find overlapping instances.
#   APP_IGNORE_TERM  set to 1 to ignore SIGTERM, so that only SIGKILL ends the app.

# The name it reports: its last argument (the demo passes the node's name), else the host name.
for name; do :; done
[ -n "$name" ] || read -r name < /proc/sys/kernel/hostname

record() {
	[ -n "$APP_EVENTS" ] || return 0
	read -r uptime _ < /proc/uptime
	echo "$1 $name $$ $uptime" >> "$APP_EVENTS"
}

if [ "$APP_IGNORE_TERM" = 1 ]; then
	trap '' TERM
else
	trap 'record exit; exit 0' TERM
fi

record start
while :; do
	# Builtins only: a forked subshell would show the same command line and briefly count as a
	# second instance to pgrep.
	echo "exampleApplication running on $name (pid $$)"
	sleep 1
done
