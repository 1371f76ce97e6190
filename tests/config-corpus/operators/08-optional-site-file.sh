pgrepProgramName=ledger
startCmd=/opt/ledger/bin/ledger
# a site may override anything in its own file
[ -f /etc/default/hacmp-ledger-site ] && . /etc/default/hacmp-ledger-site
heartBeatDir=${heartBeatDir:-/mnt/ledger/hb}
