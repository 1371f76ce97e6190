//! The simulated etcd cluster: a linearizable store with leases, reached by every node over a
//! link of its own.

use super::Cluster;
use crate::sim::request::{Outcome, Value};
use crate::world::{EtcdRequest, Io};

impl Cluster {
    /// Serves one etcd request of `node`; returns its outcome and how long it took.
    pub(super) fn serve_etcd(
        &mut self,
        _node: usize,
        _request: &EtcdRequest,
        _limit_ms: u64,
        latency_ms: u64,
    ) -> (Outcome, u64) {
        let io: Io<Value> = Io::Failed("etcdserver: no etcd cluster in this scenario".to_string());
        (Outcome::ok(Value::Bounded(Box::new(io))), latency_ms)
    }
}
