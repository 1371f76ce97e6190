# Injected through BASH_ENV by `hacmp parity` into an unmodified heartbeat.sh. Each command that
# touches the world becomes a function that asks the simulator over fd 7 (requests) and fd 8
# (replies), using builtins only, so that no process is forked per call. A request is the
# argument count and the arguments, each ended by NUL; a reply is the exit status and the
# output, each ended by NUL.
#
# Every call starts with `wait`: after `nohup ... &` the main shell must not make its next request
# before the background job's request has been served, or the order of the two would depend on
# real timing instead of on the script.
__hacmp_sim_call() {
	wait
	builtin printf '%s\0' "$#" "$@" >&7
	IFS= builtin read -r -d '' __hacmp_sim_status <&8
	IFS= builtin read -r -d '' __hacmp_sim_output <&8
}
__hacmp_sim_tool() {
	__hacmp_sim_call "$@"
	builtin printf '%s' "$__hacmp_sim_output"
	return "$__hacmp_sim_status"
}
function sleep { __hacmp_sim_tool sleep "$@"; }
function date { __hacmp_sim_tool date "$@"; }
function stat { __hacmp_sim_tool stat "$@"; }
function touch { __hacmp_sim_tool touch "$@"; }
function ls { __hacmp_sim_tool ls "$@"; }
function pgrep { __hacmp_sim_tool pgrep "$@"; }
function kill { __hacmp_sim_tool kill "$@"; }
# nohup runs in the background job with the script's redirections already made; the simulator
# learns the log file from where this shell's stdout points. It looks at a copy on fd 9, because
# while printf writes the request, bash has fd 1 pointing at the request pipe.
function nohup {
	exec 9>&1
	__hacmp_sim_tool nohup "$BASHPID" "$@"
}
function hostname { builtin printf '%s\n' '@NODE@'; }
# Options change what echo prints; those forms run the real builtin, and the simulator finds
# their output on the script's stdout.
function echo {
	if [[ ${1-} =~ ^-[neE]+$ ]]; then
		builtin echo "$@"
	else
		__hacmp_sim_tool echo "$@"
	fi
}
# `[ -f PATH ]` and `[ ! -f PATH ]` ask the simulator; every other test is the builtin's.
function [ {
	if [[ $# -eq 3 && $1 == -f && $3 == ']' ]]; then
		__hacmp_sim_tool test-f "$2"
	elif [[ $# -eq 4 && $1 == '!' && $2 == -f && $4 == ']' ]]; then
		! __hacmp_sim_tool test-f "$3"
	else
		builtin [ "$@"
	fi
}
