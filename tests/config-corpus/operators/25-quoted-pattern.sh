# the pattern is an extended regular expression, quote it
pgrepProgramName='^/usr/bin/python3 .*/worker\.py( |$)'
startCmd="/usr/bin/python3 /opt/worker/worker.py"
