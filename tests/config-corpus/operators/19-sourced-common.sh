# node-specific additions to the cluster-wide file
. tests/config-corpus/operators/site/common.vars
hostName=billing-a
heartBeatDir=/mnt/billing/heartbeat
