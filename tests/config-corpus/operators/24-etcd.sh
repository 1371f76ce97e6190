pgrepProgramName=clearing
startCmd=/opt/clearing/bin/clearing
hacmpProfile=safe
hacmpBackend=etcd
hacmpEtcdEndpoints=https://etcd1:2379,https://etcd2:2379,https://etcd3:2379
hacmpEtcdPrefix=/hacmp/clearing
hacmpEtcdCacert=/etc/hacmp/ca.pem
