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
use crate::world::{EtcdAnswer, EtcdRequest, Io, KeyValue, SafeWorld, Step};

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
                world.print(&format!("our etcd lease {id:x} is gone"))?;
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
            "our lease {id:x} holds the leader key but cannot be confirmed; revoking it so that a peer can take over"
        ))?;
        self.ask(world, EtcdRequest::Revoke { id })?;
        Ok(())
    }
}

/// The name of a request in an error line.
fn request_name(request: &EtcdRequest) -> String {
    match request {
        EtcdRequest::Grant { .. } => "a lease grant".to_string(),
        EtcdRequest::KeepAlive { id } => format!("the keep-alive of lease {id:x}"),
        EtcdRequest::Revoke { id } => format!("the revocation of lease {id:x}"),
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

    /// The maintenance key `{prefix}/maintenance`, set by `hacmp maintenance on`; a cluster that
    /// does not answer counts as maintenance, so that a standby never claims on a guess.
    fn maintenance(&mut self, world: &mut dyn SafeWorld) -> Step<bool> {
        let key = self.maintenance_key.clone();
        Ok(self.get(world, &key)?.is_none_or(|value| value.is_some()))
    }
}
