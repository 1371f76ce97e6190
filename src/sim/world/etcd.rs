//! The simulated etcd cluster: a linearizable store with leases, its members, and each node's
//! link to it.
//!
//! The model keeps what the safety of the etcd backend rests on, and the faults that test it:
//! - One store, changed one request at a time in the order the scheduler serves them, so every
//!   answer is linearizable. A request that the cluster answers takes effect when it is sent
//!   (the earliest it could, which is the hardest case: a keep-alive then holds the lease for
//!   the shortest time after its sending); one that times out on a slow link takes effect all
//!   the same, as a real request may after its caller gave up.
//! - Leases expire on the leader's clock, and only while the cluster has a leader. A new leader
//!   (after a leader change, the leader's loss, or the return of a quorum) gives every lease
//!   its full TTL again, as etcd does: a leader change only ever moves an expiry later.
//! - Without a leader (no quorum, or an election in progress) every request times out and takes
//!   no effect. An election takes `ELECTION_MS` from the moment a quorum of members is up.
//! - A node's link to the cluster may be cut (its requests time out and take no effect) or
//!   slow (its answers come `extra_ms` late; past the caller's limit they time out, the request
//!   having taken effect).
//!
//! Expiry is computed lazily: before every request and every change of the cluster, the store
//! catches up with the present in the order things happened, so nothing that could observe it
//! ever sees a lease that should have ended.

use std::collections::BTreeMap;

use super::Cluster;
use crate::sim::request::{Outcome, Value};
use crate::world::{EtcdAnswer, EtcdRequest, Io, KeyValue};

/// How long the members take to elect a leader once a quorum of them is up: etcd's default
/// election timeout.
pub const ELECTION_MS: u64 = 1000;
/// The prefix every simulated node is configured with (hacmpEtcdPrefix).
pub const PREFIX: &str = "/hacmp/sim";
/// The first lease id etcd hands out here; ids only grow within a run.
const FIRST_LEASE: i64 = 0x7000;

/// A node's link to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Healthy,
    /// Partitioned from every member.
    Cut,
    /// Every answer comes this many milliseconds late.
    Slow(u64),
}

#[derive(Debug, Clone)]
struct Lease {
    ttl_s: i64,
    /// Virtual milliseconds at which the leader ends the lease, unless kept alive.
    expires_at_ms: u64,
}

#[derive(Debug, Clone)]
pub struct EtcdCluster {
    /// Which members run.
    members: Vec<bool>,
    leader: Option<usize>,
    /// The member that led last: an election prefers the next one that runs.
    last_leader: usize,
    /// When a leader is elected, if a quorum of members is up by then.
    election_at_ms: u64,
    revision: i64,
    keys: BTreeMap<String, KeyValue>,
    leases: BTreeMap<i64, Lease>,
    next_lease: i64,
    links: Vec<Link>,
    /// When the cluster last caught up with the present.
    caught_up_ms: u64,
}

impl EtcdCluster {
    /// A cluster of `members` members, all up, with a leader, serving `nodes` nodes.
    pub fn new(members: usize, nodes: usize) -> EtcdCluster {
        assert!(members > 0, "a cluster has members");
        EtcdCluster {
            members: vec![true; members],
            leader: Some(0),
            last_leader: 0,
            election_at_ms: 0,
            revision: 1,
            keys: BTreeMap::new(),
            leases: BTreeMap::new(),
            next_lease: FIRST_LEASE,
            links: vec![Link::Healthy; nodes],
            caught_up_ms: 0,
        }
    }

    fn has_quorum(&self) -> bool {
        2 * self.members.iter().filter(|&&up| up).count() > self.members.len()
    }

    /// Brings the store up to `now_ms`: leases that ended meanwhile delete their keys (in the
    /// order they ended), and an election due meanwhile gives every lease its full TTL.
    fn catch_up(&mut self, now_ms: u64) {
        assert!(
            now_ms >= self.caught_up_ms,
            "the cluster's time never goes back"
        );
        if self.leader.is_none() && self.has_quorum() && self.election_at_ms <= now_ms {
            // Nothing expired while there was no leader; the new one starts every lease anew.
            let elected_at = self.election_at_ms.max(self.caught_up_ms);
            let count = self.members.len();
            self.leader = (1..=count)
                .map(|step| (self.last_leader + step) % count)
                .find(|&member| self.members[member]);
            self.last_leader = self.leader.expect("a quorum has a member that runs");
            for lease in self.leases.values_mut() {
                lease.expires_at_ms = elected_at + lease.ttl_s as u64 * 1000;
            }
        }
        if self.leader.is_some() {
            while let Some((&id, _)) = self
                .leases
                .iter()
                .filter(|(_, lease)| lease.expires_at_ms <= now_ms)
                .min_by_key(|(id, lease)| (lease.expires_at_ms, **id))
            {
                self.revoke(id);
            }
        }
        self.caught_up_ms = now_ms;
    }

    /// Ends a lease and deletes its keys, in one revision as etcd does.
    fn revoke(&mut self, id: i64) {
        self.leases.remove(&id);
        let before = self.keys.len();
        self.keys.retain(|_, kv| kv.lease != id);
        if self.keys.len() != before {
            self.revision += 1;
        }
    }

    /// The leader is lost (it went down, or stepped down): the others elect a new one.
    fn lose_leader(&mut self, now_ms: u64) {
        self.last_leader = self.leader.unwrap_or(self.last_leader);
        self.leader = None;
        self.election_at_ms = now_ms + ELECTION_MS;
    }

    pub fn member_down(&mut self, member: usize, now_ms: u64) {
        self.catch_up(now_ms);
        self.members[member] = false;
        if self.leader == Some(member) || !self.has_quorum() {
            self.lose_leader(now_ms);
        }
    }

    pub fn member_up(&mut self, member: usize, now_ms: u64) {
        self.catch_up(now_ms);
        let had_quorum = self.has_quorum();
        self.members[member] = true;
        if !had_quorum && self.has_quorum() {
            // The election starts when a quorum can vote again.
            self.election_at_ms = self.election_at_ms.max(now_ms + ELECTION_MS);
        }
    }

    /// The leader steps down and another member takes over after an election.
    pub fn leader_change(&mut self, now_ms: u64) {
        self.catch_up(now_ms);
        if self.leader.is_some() {
            self.lose_leader(now_ms);
        }
    }

    pub fn set_link(&mut self, node: usize, link: Link) {
        self.links[node] = link;
    }

    /// Whether every member runs, a leader serves, and the node's link is healthy.
    pub fn healthy_for(&self, node: usize) -> bool {
        self.members.iter().all(|&up| up) && self.links[node] == Link::Healthy
    }

    /// Sets (`on`) or deletes the maintenance key, as `hacmp maintenance on|off` does.
    pub fn set_maintenance(&mut self, on: bool, now_ms: u64) {
        self.catch_up(now_ms);
        let key = maintenance_key();
        let request = if on {
            EtcdRequest::Put {
                key,
                value: "on".to_string(),
            }
        } else {
            EtcdRequest::Delete { key }
        };
        self.apply(&request, now_ms);
    }

    pub fn in_maintenance(&self) -> bool {
        self.keys.contains_key(&maintenance_key())
    }

    fn put(&mut self, key: &str, value: &str, lease: i64) -> KeyValue {
        self.revision += 1;
        let revision = self.revision;
        let kv = self
            .keys
            .entry(key.to_string())
            .and_modify(|kv| {
                kv.value = value.to_string();
                kv.mod_revision = revision;
                kv.lease = lease;
            })
            .or_insert(KeyValue {
                value: value.to_string(),
                create_revision: revision,
                mod_revision: revision,
                lease,
            });
        kv.clone()
    }

    /// Performs one request at `now_ms`, as the leader would.
    fn apply(&mut self, request: &EtcdRequest, now_ms: u64) -> Io<EtcdAnswer> {
        const NO_LEASE: &str = "etcdserver: requested lease not found";
        Io::Done(match request {
            EtcdRequest::Grant { ttl } => {
                let id = self.next_lease;
                self.next_lease += 1;
                let ttl_s = i64::try_from(*ttl).expect("a TTL fits etcd's int64");
                let expires_at_ms = now_ms + ttl * 1000;
                self.leases.insert(
                    id,
                    Lease {
                        ttl_s,
                        expires_at_ms,
                    },
                );
                EtcdAnswer::Lease { id, ttl: ttl_s }
            }
            EtcdRequest::KeepAlive { id } => match self.leases.get_mut(id) {
                Some(lease) => {
                    lease.expires_at_ms = now_ms + lease.ttl_s as u64 * 1000;
                    EtcdAnswer::Ttl(lease.ttl_s)
                }
                None => EtcdAnswer::Ttl(0),
            },
            EtcdRequest::Revoke { id } => {
                if !self.leases.contains_key(id) {
                    return Io::Failed(NO_LEASE.to_string());
                }
                self.revoke(*id);
                EtcdAnswer::Done
            }
            EtcdRequest::Campaign { key, value, lease } => {
                if *lease != 0 && !self.leases.contains_key(lease) {
                    return Io::Failed(NO_LEASE.to_string());
                }
                match self.keys.get(key) {
                    Some(holder) => EtcdAnswer::Campaign {
                        won: false,
                        holder: holder.clone(),
                    },
                    None => EtcdAnswer::Campaign {
                        won: true,
                        holder: self.put(key, value, *lease),
                    },
                }
            }
            EtcdRequest::Resign {
                key,
                create_revision,
            } => {
                if self
                    .keys
                    .get(key)
                    .is_some_and(|kv| kv.create_revision == *create_revision)
                {
                    self.keys.remove(key);
                    self.revision += 1;
                }
                EtcdAnswer::Done
            }
            EtcdRequest::Get { key } => EtcdAnswer::Value(self.keys.get(key).cloned()),
            EtcdRequest::Put { key, value } => {
                self.put(key, value, 0);
                EtcdAnswer::Done
            }
            EtcdRequest::Delete { key } => {
                if self.keys.remove(key).is_some() {
                    self.revision += 1;
                }
                EtcdAnswer::Done
            }
        })
    }
}

/// The key `hacmp maintenance on` sets.
fn maintenance_key() -> String {
    format!("{PREFIX}/maintenance")
}

impl Cluster {
    /// Serves one etcd request of `node`; returns its outcome and how long it took.
    pub(super) fn serve_etcd(
        &mut self,
        node: usize,
        request: &EtcdRequest,
        limit_ms: u64,
        latency_ms: u64,
    ) -> (Outcome, u64) {
        let now = self.now_ms;
        let bounded = |io: Io<EtcdAnswer>| {
            let io = match io {
                Io::Done(answer) => Io::Done(Value::Etcd(answer)),
                Io::Failed(error) => Io::Failed(error),
                Io::TimedOut => Io::TimedOut,
            };
            Outcome::ok(Value::Bounded(Box::new(io)))
        };
        let Some(etcd) = self.etcd.as_mut() else {
            let error = "etcdserver: no etcd cluster in this scenario".to_string();
            return (bounded(Io::Failed(error)), latency_ms);
        };
        etcd.catch_up(now);
        let extra_ms = match etcd.links[node] {
            Link::Cut => return (bounded(Io::TimedOut), limit_ms),
            _ if etcd.leader.is_none() => return (bounded(Io::TimedOut), limit_ms),
            Link::Slow(extra_ms) => extra_ms,
            Link::Healthy => 0,
        };
        let answer = etcd.apply(request, now);
        let duration_ms = latency_ms + extra_ms;
        if duration_ms > limit_ms {
            return (bounded(Io::TimedOut), limit_ms);
        }
        (bounded(answer), duration_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "/hacmp/sim/leader";

    fn campaign(etcd: &mut EtcdCluster, lease: i64, now_ms: u64) -> Io<EtcdAnswer> {
        etcd.catch_up(now_ms);
        let request = EtcdRequest::Campaign {
            key: KEY.to_string(),
            value: "alpha".to_string(),
            lease,
        };
        etcd.apply(&request, now_ms)
    }

    fn grant(etcd: &mut EtcdCluster, now_ms: u64) -> i64 {
        etcd.catch_up(now_ms);
        match etcd.apply(&EtcdRequest::Grant { ttl: 10 }, now_ms) {
            Io::Done(EtcdAnswer::Lease { id, ttl: 10 }) => id,
            other => panic!("{other:?}"),
        }
    }

    fn leader_key(etcd: &mut EtcdCluster, now_ms: u64) -> Option<KeyValue> {
        etcd.catch_up(now_ms);
        etcd.keys.get(KEY).cloned()
    }

    #[test]
    fn a_campaign_wins_once_and_the_key_ends_with_its_lease() {
        let mut etcd = EtcdCluster::new(3, 1);
        let lease = grant(&mut etcd, 0);
        let Io::Done(EtcdAnswer::Campaign { won: true, holder }) = campaign(&mut etcd, lease, 0)
        else {
            panic!("the first campaign wins");
        };
        let other = grant(&mut etcd, 1);
        assert!(matches!(
            campaign(&mut etcd, other, 1),
            Io::Done(EtcdAnswer::Campaign { won: false, holder: h }) if h == holder
        ));
        assert!(leader_key(&mut etcd, 9_999).is_some());
        assert_eq!(leader_key(&mut etcd, 10_000), None);
        // A new holder's token is higher.
        let Io::Done(EtcdAnswer::Campaign {
            won: true,
            holder: next,
        }) = campaign(&mut etcd, other, 10_000)
        else {
            panic!("the key is free again");
        };
        assert!(next.create_revision > holder.create_revision);
    }

    #[test]
    fn without_a_leader_nothing_expires_and_a_new_leader_restarts_every_lease() {
        let mut etcd = EtcdCluster::new(3, 1);
        let lease = grant(&mut etcd, 0);
        campaign(&mut etcd, lease, 0);
        etcd.member_down(0, 2_000);
        etcd.member_down(1, 3_000);
        // No quorum from 3 s to 50 s: the lease, due at 10 s, holds.
        assert!(leader_key(&mut etcd, 49_000).is_some());
        etcd.member_up(1, 50_000);
        // Elected at 51 s, so the lease ends at 61 s.
        assert!(leader_key(&mut etcd, 60_999).is_some());
        assert_eq!(leader_key(&mut etcd, 61_000), None);
    }

    #[test]
    fn a_leader_change_only_moves_expiry_later() {
        let mut etcd = EtcdCluster::new(3, 1);
        let lease = grant(&mut etcd, 0);
        campaign(&mut etcd, lease, 0);
        etcd.leader_change(4_000);
        assert!(leader_key(&mut etcd, 14_999).is_some());
        assert_eq!(leader_key(&mut etcd, 15_000), None);
        // A lease already ended stays ended.
        let late = grant(&mut etcd, 20_000);
        etcd.leader_change(31_000);
        assert!(!etcd.leases.contains_key(&late));
    }

    #[test]
    fn a_campaign_with_a_lease_that_ended_fails() {
        let mut etcd = EtcdCluster::new(1, 1);
        let lease = grant(&mut etcd, 0);
        assert!(matches!(campaign(&mut etcd, lease, 10_000), Io::Failed(_)));
    }
}
