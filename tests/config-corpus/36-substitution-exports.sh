# Commands in $(…) see every variable; the programs they start see only exported ones.
who='bob '\''b'
export exported=yes
CORPUS_NAME=changed
direct=$(echo "[$who][$exported]")
child=$(sh -c 'echo "[$who][$exported][$CORPUS_NAME]"')
