pgrepProgramName=ledger
startCmd=/opt/ledger/bin/ledger
if [ -r /etc/sysconfig/hacmp-ledger ]; then
    . /etc/sysconfig/hacmp-ledger
fi
