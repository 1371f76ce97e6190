//! The etcd backend: the lease lives in an etcd cluster, a replicated, linearizable store with
//! leases of its own.
//!
//! Every daemon holds one etcd lease with a TTL of faileOverTime (never lease 0, which would
//! hold nothing): the master keeps it alive itself, once a round, and a standby confirms it (or
//! is granted a new one) just before each campaign. The master is the host whose lease holds the leader key `{prefix}/leader`: a
//! standby takes it with one transaction (`If CreateRevision(key) == 0 Then Put(key, host,
//! lease)`), and the key's create revision is the fencing token. The key disappears when the
//! master's lease ends on the etcd cluster, which cannot happen before the master's own
//! deadline: that deadline counts from the moment the keep-alive was *sent*, the cluster's from
//! when it *received* it, and the deadline is a margin shorter. A standby campaigns only when it
//! has seen the key absent; it never computes when the key should expire, because etcd resets
//! every lease to its full TTL when its own leader changes. Polling the key once a round costs
//! at most one loopTime of failover, which the failover bound allows for.
//! docs/safe-profile.md has the argument.

use std::time::Duration;

use super::backend::{Backend, Grant};
use crate::config::EtcdSettings;
use crate::timing::Timing;
use crate::world::{EtcdAnswer, EtcdRequest, HeldLease, Io, KeyValue, SafeWorld, Step};

/// What the last look at the leader key showed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sight {
    /// The cluster did not answer: no decision may rest on it.
    Unknown,
    /// Nobody holds the key; `at` is when the read that showed it returned.
    Absent {
        at: Duration,
    },
    Held(KeyValue),
}

/// What one keep-alive found.
enum KeepAlive {
    /// The cluster renewed the lease for its full TTL; the moment the keep-alive was sent.
    Confirmed(Duration),
    /// The cluster no longer has the lease.
    Gone,
    /// No answer, or one that confirms nothing.
    Unconfirmed,
}

pub struct Etcd {
    host_name: String,
    leader_key: String,
    maintenance_key: String,
    timing: Timing,
    /// This daemon's etcd lease, once granted and until the cluster says it is gone.
    lease: Option<i64>,
    sight: Sight,
}

impl Etcd {
    pub fn new(settings: &EtcdSettings, host_name: &str, timing: Timing) -> Etcd {
        Etcd {
            host_name: host_name.to_string(),
            leader_key: settings.leader_key(),
            maintenance_key: settings.maintenance_key(),
            timing,
            lease: None,
            sight: Sight::Unknown,
        }
    }

    /// Sends one request with the storage limit; `None` after printing why there is no answer.
    fn ask(&self, world: &mut dyn SafeWorld, request: EtcdRequest) -> Step<Option<EtcdAnswer>> {
        match world.etcd(&request, self.timing.io_limit)? {
            Io::Done(answer) => Ok(Some(answer)),
            Io::Failed(error) => {
                world.print_error(&error)?;
                Ok(None)
            }
            Io::TimedOut => {
                world.print_error(&format!(
                    "hacmp: etcd: no answer to {} in time",
                    request_name(&request)
                ))?;
                Ok(None)
            }
        }
    }

    /// The TTL every lease is granted with: faileOverTime, in whole seconds as etcd counts.
    fn ttl(&self) -> u64 {
        self.timing.takeover_after.as_secs()
    }

    /// Whether the cluster will keep a lease it answered with `ttl` for at least faileOverTime:
    /// the deadline of the lease counts on that. etcd grants what was asked (or more, when
    /// asked for less than its minimum), so a shorter TTL means a cluster we do not understand,
    /// and no confirmation rests on it.
    fn long_enough(&self, ttl: i64) -> bool {
        u64::try_from(ttl).is_ok_and(|ttl| ttl >= self.ttl())
    }

    /// One keep-alive of lease `id`.
    fn keep_alive(&mut self, world: &mut dyn SafeWorld, id: i64) -> Step<KeepAlive> {
        let sent = world.elapsed()?;
        Ok(match self.ask(world, EtcdRequest::KeepAlive { id })? {
            Some(EtcdAnswer::Ttl(ttl)) if self.long_enough(ttl) => KeepAlive::Confirmed(sent),
            Some(EtcdAnswer::Ttl(ttl)) if ttl <= 0 => {
                world.print(&format!("our etcd lease {} is gone", lease_id(id)))?;
                self.lease = None;
                KeepAlive::Gone
            }
            Some(answer) => {
                self.unexpected(world, &answer)?;
                KeepAlive::Unconfirmed
            }
            None => KeepAlive::Unconfirmed,
        })
    }

    /// Keeps our lease alive, or grants a new one when we have none or it is gone. Returns the
    /// moment the request that the cluster confirmed was *sent*.
    fn keep_or_grant(&mut self, world: &mut dyn SafeWorld) -> Step<Option<Duration>> {
        if let Some(id) = self.lease {
            match self.keep_alive(world, id)? {
                KeepAlive::Confirmed(sent) => return Ok(Some(sent)),
                KeepAlive::Unconfirmed => return Ok(None),
                KeepAlive::Gone => {}
            }
        }
        let sent = world.elapsed()?;
        let ttl = self.ttl();
        match self.ask(world, EtcdRequest::Grant { ttl })? {
            Some(EtcdAnswer::Lease { id, ttl }) if self.long_enough(ttl) => {
                self.lease = Some(id);
                Ok(Some(sent))
            }
            Some(answer) => self.unexpected(world, &answer).map(|()| None),
            None => Ok(None),
        }
    }

    /// An answer of the wrong kind, or a lease shorter than asked for: said, and not counted.
    fn unexpected(&self, world: &mut dyn SafeWorld, answer: &EtcdAnswer) -> Step<()> {
        world.print_error(&format!(
            "hacmp: etcd: unexpected answer {answer:?}; a lease must last faileOverTime ({} s)",
            self.ttl()
        ))
    }

    /// Whether the key as seen is held by our own lease: a campaign of ours took effect, even
    /// if its answer did not reach us in time.
    fn held_by_us(&self, holder: &KeyValue) -> bool {
        self.lease == Some(holder.lease) && holder.value == self.host_name
    }

    /// Reads a key fresh; `Some(None)` when it does not exist, `None` when there is no answer.
    fn get(&self, world: &mut dyn SafeWorld, key: &str) -> Step<Option<Option<KeyValue>>> {
        let request = EtcdRequest::Get {
            key: key.to_string(),
        };
        match self.ask(world, request)? {
            Some(EtcdAnswer::Value(value)) => Ok(Some(value)),
            Some(answer) => self.unexpected(world, &answer).map(|()| None),
            None => Ok(None),
        }
    }

    /// The campaign: a lease confirmed just now, then the transaction that puts the leader key
    /// only where it does not exist. The grant's lease counts from the confirmation's sending.
    fn campaign(&mut self, world: &mut dyn SafeWorld) -> Step<Option<Grant>> {
        let ours = matches!(&self.sight, Sight::Held(holder) if self.held_by_us(holder));
        world.print(if ours {
            "the leader key is held by our own lease: taking it up"
        } else {
            "the leader key is free: campaigning"
        })?;
        let Some(sent) = self.keep_or_grant(world)? else {
            if ours {
                self.give_up_key(world)?;
            }
            return Ok(None);
        };
        let lease = self.lease.expect("a confirmed lease has an id");
        let request = EtcdRequest::Campaign {
            key: self.leader_key.clone(),
            value: self.host_name.clone(),
            lease,
        };
        let holder = match self.ask(world, request)? {
            Some(EtcdAnswer::Campaign { holder, .. }) => holder,
            Some(answer) => return self.unexpected(world, &answer).map(|()| None),
            None => {
                self.sight = Sight::Unknown;
                return Ok(None);
            }
        };
        self.sight = Sight::Held(holder.clone());
        if !self.held_by_us(&holder) {
            world.print(&format!(
                "backing off: {} holds the leader key with token {}",
                holder.value, holder.create_revision
            ))?;
            return Ok(None);
        }
        let until = sent + self.timing.lease;
        if world.elapsed()? >= until {
            world.print("the lease ran out before we could act on it; backing off")?;
            return Ok(None);
        }
        let token = u64::try_from(holder.create_revision).expect("etcd's revisions are positive");
        world.print(&format!("we hold the leader key with token {token}"))?;
        Ok(Some(Grant { token, until }))
    }

    /// Revokes our lease, which holds the leader key while we are no master and cannot
    /// confirm it: the keep-alives we send may still reach the cluster and keep the key alive
    /// for ever, so that no peer could take over. The revocation deletes the key (the
    /// application does not run here), and a new lease is granted at the next campaign.
    fn give_up_key(&mut self, world: &mut dyn SafeWorld) -> Step<()> {
        let Some(id) = self.lease.take() else {
            return Ok(());
        };
        world.print(&format!(
            "our lease {} holds the leader key but cannot be confirmed; revoking it so that a peer can take over",
            lease_id(id)
        ))?;
        self.ask(world, EtcdRequest::Revoke { id })?;
        Ok(())
    }
}

/// A lease id as etcdctl prints it (`lease grant`, `lease list`): 16 hexadecimal digits, so
/// that an operator can search etcdctl's output for what hacmp says.
pub fn lease_id(id: i64) -> String {
    format!("{id:016x}")
}

/// The name of a request in an error line.
fn request_name(request: &EtcdRequest) -> String {
    match request {
        EtcdRequest::Grant { .. } => "a lease grant".to_string(),
        EtcdRequest::KeepAlive { id } => format!("the keep-alive of lease {}", lease_id(*id)),
        EtcdRequest::Revoke { id } => format!("the revocation of lease {}", lease_id(*id)),
        EtcdRequest::Campaign { key, .. } => format!("the campaign for {key}"),
        EtcdRequest::Resign { key, .. } => format!("the resignation from {key}"),
        EtcdRequest::Get { key } => format!("the read of {key}"),
        EtcdRequest::Put { key, .. } => format!("the write of {key}"),
        EtcdRequest::Delete { key } => format!("the deletion of {key}"),
    }
}

impl Backend for Etcd {
    /// Reads the leader key fresh.
    fn observe(&mut self, world: &mut dyn SafeWorld) -> Step<bool> {
        let key = self.leader_key.clone();
        let read = self.get(world, &key)?;
        let at = world.elapsed()?;
        self.sight = match read {
            None => Sight::Unknown,
            Some(None) => Sight::Absent { at },
            Some(Some(holder)) => Sight::Held(holder),
        };
        Ok(self.sight != Sight::Unknown)
    }

    /// When the key was seen absent, or held by our own lease (a campaign whose answer was
    /// lost); never while another host holds it, however long ago it was renewed.
    fn claimable_at(&self) -> Duration {
        match &self.sight {
            Sight::Absent { at } => *at,
            Sight::Held(holder) if self.held_by_us(holder) => Duration::ZERO,
            Sight::Held(_) | Sight::Unknown => Duration::MAX,
        }
    }

    fn acquire(&mut self, world: &mut dyn SafeWorld) -> Step<Option<Grant>> {
        self.campaign(world)
    }

    /// The leader key names the lease that holds it, so the run that left the guard need not
    /// have left its lease id anywhere else: this run takes that lease up if the key is still
    /// this host's, created at `held.token` (a create revision is never reused, so the key is
    /// the very one the application was started under), and a keep-alive confirms the lease
    /// still lives. The incarnation plays no part: the create revision identifies the lease.
    fn reattach(&mut self, world: &mut dyn SafeWorld, held: &HeldLease) -> Step<bool> {
        let key = self.leader_key.clone();
        let Some(Some(holder)) = self.get(world, &key)? else {
            return Ok(false);
        };
        if holder.value != self.host_name || u64::try_from(holder.create_revision) != Ok(held.token)
        {
            return Ok(false);
        }
        self.lease = Some(holder.lease);
        if let KeepAlive::Confirmed(_) = self.keep_alive(world, holder.lease)? {
            self.sight = Sight::Held(holder);
            return Ok(true);
        }
        self.lease = None;
        Ok(false)
    }

    /// A keep-alive of the lease that holds the leader key: it confirms the key too, because
    /// the key lives as long as the lease (nothing but the lease's end deletes it). A lease
    /// that is gone is never replaced here: a new one would hold nothing.
    fn renew(&mut self, world: &mut dyn SafeWorld, _token: u64) -> Step<Option<Duration>> {
        let Some(id) = self.lease else {
            return Ok(None);
        };
        Ok(match self.keep_alive(world, id)? {
            KeepAlive::Confirmed(sent) => Some(sent),
            KeepAlive::Gone | KeepAlive::Unconfirmed => None,
        })
    }

    fn master(&self) -> Option<String> {
        match &self.sight {
            Sight::Held(holder) if !self.held_by_us(holder) => Some(holder.value.clone()),
            _ => None,
        }
    }

    /// The leader key is gone, or another campaign created it since ours.
    fn reason_to_yield(&self, token: u64, _now: Duration) -> Option<String> {
        match &self.sight {
            Sight::Absent { .. } => Some("the leader key is gone".to_string()),
            Sight::Held(holder) if u64::try_from(holder.create_revision) != Ok(token) => {
                Some(format!(
                    "{} holds the leader key with token {}",
                    holder.value, holder.create_revision
                ))
            }
            Sight::Held(_) | Sight::Unknown => None,
        }
    }

    /// The maintenance key `{prefix}/maintenance`, set by `hacmp maintenance on`; `None` when
    /// the cluster does not answer (`ask` has said why).
    fn maintenance(&mut self, world: &mut dyn SafeWorld) -> Step<Option<bool>> {
        let key = self.maintenance_key.clone();
        Ok(self.get(world, &key)?.map(|value| value.is_some()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::config::EtcdSettings;
    use crate::pattern::Pattern;
    use crate::world::{Answer, GuardState, Signal, StorageOp, World};

    /// A world that answers etcd requests from a script and records them; the backend uses
    /// nothing else of it but the clock and its output.
    #[derive(Default)]
    struct Scripted {
        answers: VecDeque<Io<EtcdAnswer>>,
        requests: Vec<EtcdRequest>,
        now: Duration,
    }

    impl World for Scripted {
        fn sleep(&mut self, _: u64) -> Step<()> {
            unreachable!("the backend never sleeps")
        }
        fn now(&mut self) -> Step<i64> {
            unreachable!("the backend never reads the wall clock")
        }
        fn is_regular_file(&mut self, _: &str) -> Step<bool> {
            unreachable!("the backend reads no file")
        }
        fn newest_entry(&mut self, _: &str) -> Step<String> {
            unreachable!("the backend lists no directory")
        }
        fn modification_time(&mut self, _: &str) -> Step<Option<i64>> {
            unreachable!("the backend reads no file")
        }
        fn touch(&mut self, _: &str) -> Step<()> {
            unreachable!("the backend writes no file")
        }
        fn find_processes(&mut self, _: &Pattern) -> Step<Vec<u32>> {
            unreachable!("the backend looks for no process")
        }
        fn signal(&mut self, _: u32, _: Signal) -> Step<()> {
            unreachable!("the backend signals nothing")
        }
        fn start_detached(&mut self, _: &str, _: &str) -> Step<()> {
            unreachable!("the backend starts nothing")
        }
        fn print(&mut self, _: &str) -> Step<()> {
            Ok(())
        }
        fn print_error(&mut self, _: &str) -> Step<()> {
            Ok(())
        }
    }

    impl SafeWorld for Scripted {
        fn elapsed(&mut self) -> Step<Duration> {
            Ok(self.now)
        }
        fn pause(&mut self, _: Duration) -> Step<()> {
            unreachable!("the backend never pauses")
        }
        fn incarnation(&mut self) -> Step<u64> {
            unreachable!("the etcd backend needs no incarnation")
        }
        fn storage_batch(
            &mut self,
            _: &[StorageOp],
            _: Duration,
            _: usize,
        ) -> Step<Vec<Option<Answer>>> {
            unreachable!("the etcd backend uses no heartbeat directory")
        }
        fn file_exists(&mut self, _: &str, _: Duration) -> Step<Io<bool>> {
            unreachable!("the loop, not the backend, reads the maintenance file")
        }
        /// Each request takes 100 ms and gets the next scripted answer.
        fn etcd(&mut self, request: &EtcdRequest, _: Duration) -> Step<Io<EtcdAnswer>> {
            self.requests.push(request.clone());
            self.now += Duration::from_millis(100);
            Ok(self.answers.pop_front().expect("an answer is scripted"))
        }
        fn guard_start(&mut self, _: &str, _: &str, _: Duration, _: u64, _: u64) -> Step<bool> {
            unreachable!("the loop, not the backend, starts the guard")
        }
        fn guard_attach(&mut self, _: u64) -> Step<Option<HeldLease>> {
            unreachable!("the loop, not the backend, attaches to the guard")
        }
        fn guard_extend(&mut self, _: Duration) -> Step<()> {
            unreachable!("the loop, not the backend, moves the guard")
        }
        fn guard_state(&mut self) -> Step<GuardState> {
            unreachable!("the loop, not the backend, asks the guard")
        }
        fn guard_stop(&mut self, _: Duration) -> Step<()> {
            unreachable!("the loop, not the backend, stops the guard")
        }
    }

    const LEASE: i64 = 0x51;

    fn backend() -> Etcd {
        let settings = EtcdSettings {
            endpoints: vec!["http://127.0.0.1:2379".to_string()],
            prefix: "/hacmp/test".to_string(),
            tls: None,
        };
        Etcd::new(&settings, "alpha", Timing::new(10, 3).unwrap())
    }

    fn holder(value: &str, lease: i64, create_revision: i64) -> KeyValue {
        KeyValue {
            value: value.to_string(),
            create_revision,
            mod_revision: create_revision,
            lease,
        }
    }

    fn scripted(answers: impl IntoIterator<Item = EtcdAnswer>) -> Scripted {
        Scripted {
            answers: answers.into_iter().map(Io::Done).collect(),
            now: Duration::from_secs(100),
            ..Scripted::default()
        }
    }

    /// A backend that won a campaign with lease `LEASE` and token 7 at 100 s.
    fn master() -> (Etcd, Scripted) {
        let mut etcd = backend();
        let mut world = scripted([
            EtcdAnswer::Lease { id: LEASE, ttl: 10 },
            EtcdAnswer::Campaign {
                won: true,
                holder: holder("alpha", LEASE, 7),
            },
        ]);
        let grant = etcd
            .acquire(&mut world)
            .unwrap()
            .expect("the campaign wins");
        // The lease counts from the grant's sending, not from the campaign's answer.
        let lease = Timing::new(10, 3).unwrap().lease;
        assert_eq!(
            grant,
            Grant {
                token: 7,
                until: Duration::from_secs(100) + lease,
            }
        );
        (etcd, world)
    }

    /// etcdctl 3.4 printed `lease 0452a250f4380807 granted with TTL(30s)` for this id.
    #[test]
    fn a_lease_id_reads_as_etcdctl_prints_it() {
        assert_eq!(lease_id(0x0452_a250_f438_0807), "0452a250f4380807");
        assert_eq!(lease_id(0x694d_7f0f_3c0b_7a05), "694d7f0f3c0b7a05");
    }

    #[test]
    fn a_keep_alive_confirms_from_its_sending_and_only_with_a_full_ttl() {
        let (mut etcd, mut world) = master();
        world.answers.push_back(Io::Done(EtcdAnswer::Ttl(10)));
        let sent = world.now;
        assert_eq!(etcd.renew(&mut world, 7).unwrap(), Some(sent));
        // A lease the cluster keeps for less than faileOverTime cannot hold the deadline.
        world.answers.push_back(Io::Done(EtcdAnswer::Ttl(9)));
        assert_eq!(etcd.renew(&mut world, 7).unwrap(), None);
        world.answers.push_back(Io::TimedOut);
        assert_eq!(etcd.renew(&mut world, 7).unwrap(), None);
    }

    #[test]
    fn a_restarted_daemon_takes_up_the_lease_that_holds_its_key_and_only_that() {
        let held = HeldLease {
            token: 7,
            incarnation: 1,
            deadline: Duration::from_secs(105),
        };
        let mut world = scripted([
            EtcdAnswer::Value(Some(holder("alpha", LEASE, 7))),
            EtcdAnswer::Ttl(10),
        ]);
        let mut etcd = backend();
        assert!(etcd.reattach(&mut world, &held).unwrap());
        assert_eq!(world.requests[1], EtcdRequest::KeepAlive { id: LEASE });
        world.answers.push_back(Io::Done(EtcdAnswer::Ttl(10)));
        assert_eq!(
            etcd.renew(&mut world, 7).unwrap(),
            Some(world.now - Duration::from_millis(100))
        );
        // A key created again (another token), another host's key, or a lease the cluster no
        // longer has: the application was started under something that no longer holds.
        for answers in [
            vec![EtcdAnswer::Value(Some(holder("alpha", LEASE, 8)))],
            vec![EtcdAnswer::Value(Some(holder("beta", LEASE, 7)))],
            vec![EtcdAnswer::Value(None)],
            vec![
                EtcdAnswer::Value(Some(holder("alpha", LEASE, 7))),
                EtcdAnswer::Ttl(0),
            ],
        ] {
            let mut world = scripted(answers);
            assert!(
                !backend().reattach(&mut world, &held).unwrap(),
                "{:?}",
                world.requests
            );
        }
    }

    #[test]
    fn a_lease_that_is_gone_is_never_replaced_by_a_renewal() {
        let (mut etcd, mut world) = master();
        world.answers.push_back(Io::Done(EtcdAnswer::Ttl(0)));
        assert_eq!(etcd.renew(&mut world, 7).unwrap(), None);
        assert_eq!(etcd.renew(&mut world, 7).unwrap(), None);
        // One keep-alive, and no grant: a new lease would hold no key.
        assert_eq!(world.requests[2..], [EtcdRequest::KeepAlive { id: LEASE }]);
    }

    #[test]
    fn a_master_yields_when_the_key_is_gone_or_created_again() {
        let (mut etcd, mut world) = master();
        world.answers.extend([
            Io::Done(EtcdAnswer::Value(Some(holder("alpha", LEASE, 7)))),
            Io::TimedOut,
            Io::Done(EtcdAnswer::Value(None)),
            Io::Done(EtcdAnswer::Value(Some(holder("beta", 0x52, 9)))),
        ]);
        let mut reasons = Vec::new();
        for _ in 0..4 {
            etcd.observe(&mut world).unwrap();
            reasons.push(etcd.reason_to_yield(7, world.now));
        }
        assert_eq!(reasons[..2], [None, None]);
        assert_eq!(reasons[2].as_deref(), Some("the leader key is gone"));
        assert_eq!(
            reasons[3].as_deref(),
            Some("beta holds the leader key with token 9")
        );
        assert_eq!(etcd.master().as_deref(), Some("beta"));
    }

    #[test]
    fn a_standby_campaigns_only_on_a_key_seen_absent() {
        let mut etcd = backend();
        let mut world = scripted([
            EtcdAnswer::Value(Some(holder("beta", 0x52, 9))),
            EtcdAnswer::Value(None),
        ]);
        etcd.observe(&mut world).unwrap();
        assert_eq!(etcd.claimable_at(), Duration::MAX);
        etcd.observe(&mut world).unwrap();
        assert_eq!(etcd.claimable_at(), world.now);
        // A campaign that another won in between backs off.
        world.answers.extend([
            Io::Done(EtcdAnswer::Lease { id: LEASE, ttl: 10 }),
            Io::Done(EtcdAnswer::Campaign {
                won: false,
                holder: holder("gamma", 0x53, 11),
            }),
        ]);
        assert_eq!(etcd.acquire(&mut world).unwrap(), None);
        assert_eq!(etcd.claimable_at(), Duration::MAX);
    }

    #[test]
    fn the_maintenance_key_means_maintenance_and_no_answer_means_unknown() {
        let mut etcd = backend();
        let mut world = scripted([
            EtcdAnswer::Value(None),
            EtcdAnswer::Value(Some(holder("on", 0, 3))),
        ]);
        world
            .answers
            .push_back(Io::Failed("etcdserver: no leader".to_string()));
        let seen: Vec<Option<bool>> = (0..3)
            .map(|_| etcd.maintenance(&mut world).unwrap())
            .collect();
        assert_eq!(seen, [Some(false), Some(true), None]);
        let key = EtcdRequest::Get {
            key: "/hacmp/test/maintenance".to_string(),
        };
        assert_eq!(world.requests, [key.clone(), key.clone(), key]);
    }
}
