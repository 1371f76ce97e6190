//! The seam between the safe loop and the place where the cluster keeps its lease.
//!
//! The loop (`safe/mod.rs`) owns everything that does not depend on where the lease lives: the
//! rounds, maintenance, ending stray local instances, the guard, and the lease rule (a
//! confirmation extends the lease only if it was made while the lease held). A backend owns the
//! rest: how a host looks at its peers, how it takes the lease, and how it confirms it.
//! `files::Files` keeps heartbeat.sh's files in a heartbeat directory, or in several where a
//! majority decides; another store (a replicated key-value store) is one more implementation of
//! this trait, and the loop does not change.
//!
//! A backend acts only through the `SafeWorld` it is handed, so the same code runs on the real
//! machine and in the simulator.

use std::time::Duration;

use crate::world::{HeldLease, SafeWorld, Step};

/// The lease, as a backend grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The fencing token: it grows with every grant in the cluster.
    pub token: u64,
    /// When the lease ends on this host's boot clock unless renewed: one lease after the
    /// confirmation that justified the grant, never after a step taken later.
    pub until: Duration,
}

pub trait Backend {
    /// Looks at the cluster and notes what changed since the last look. Returns false when part
    /// of it could not be seen: then no decision may rest on this look.
    fn observe(&mut self, world: &mut dyn SafeWorld) -> Step<bool>;

    /// The earliest moment, on this host's boot clock, at which what was seen so far lets a
    /// standby try to take the lease; the loop wakes then instead of a whole loopTime later.
    fn claimable_at(&self) -> Duration;

    /// Tries to take the lease, printing each step as it goes. `Some` when this host holds it;
    /// the loop then starts the application under the guard until `Grant::until`.
    fn acquire(&mut self, world: &mut dyn SafeWorld) -> Step<Option<Grant>>;

    /// At the daemon's start, with a guard an earlier run on this host left running: whether the
    /// store still shows this host holding `held.token` as that run (`held.incarnation`) left
    /// it. When true, the backend continues that lease as its own, so that the loop keeps the
    /// application running and renews; when false (a failed read included) the loop stops the
    /// guard. The files backend reads its own record; the etcd backend reads the leader key,
    /// which must still be this host's with `held.token` as its create revision, and takes up
    /// the lease that holds it once a keep-alive confirms that lease still lives.
    fn reattach(&mut self, world: &mut dyn SafeWorld, held: &HeldLease) -> Step<bool>;

    /// Confirms the lease held with `token` once more. Returns the moment from which the
    /// confirmation counts (no peer can take the lease before a lease after it), if the store
    /// confirmed it in time.
    fn renew(&mut self, world: &mut dyn SafeWorld, token: u64) -> Step<Option<Duration>>;

    /// The host that held the lease at the last look, if any other host did, for the operator's
    /// status and event hook; no decision rests on it.
    fn master(&self) -> Option<String>;

    /// After a master's look: why it must give up the lease held with `token` now, if it must.
    fn reason_to_yield(&self, token: u64, now: Duration) -> Option<String>;

    /// Whether the store itself puts the cluster in maintenance (`hacmp maintenance on` writes
    /// it there: etcd's maintenance key, a marker in a majority of the heartbeat directories),
    /// besides the maintenance file that every backend obeys where it can be read. `None`, after
    /// saying why, when the store cannot say (etcd does not answer, less than a majority of the
    /// directories does): the standby then does nothing this round, so that it never claims on
    /// a guess.
    fn maintenance(&mut self, world: &mut dyn SafeWorld) -> Step<Option<bool>>;
}
