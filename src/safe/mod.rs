//! The safe profile's loop: heartbeat.sh's protocol with the guarantee held — never two
//! instances at once.
//!
//! How, in short (docs/safe-profile.md has the argument):
//! - A standby takes the lease only when its backend says nobody holds it: with the files
//!   backend (`files.rs`), after seeing every record unchanged for faileOverTime, a claim, a
//!   settle and a re-read in which the highest (token, host) claim wins; with the etcd backend
//!   (`etcd.rs`), when it sees the leader key absent and its campaign transaction creates it.
//! - A master runs the application under a guard, a separate process that kills it when the
//!   lease (faileOverTime minus a margin after the last confirmation) runs out, so a master that
//!   cannot renew, is paused or has died stops before any peer may take over.
//! - The lease rule lives here, whatever the backend: a confirmation extends the lease only if it
//!   was made while the lease held, and a master whose lease ran out never acts as master again.

pub mod backend;
pub mod etcd;
pub mod files;
pub mod record;

use std::convert::Infallible;
use std::time::Duration;

use crate::config::{Store, Variables};
use crate::event::{Event, Fence, Wait};
use crate::timing::{GRACEFUL_KILL, KILL_POLL, Timing};
use crate::world::{GuardState, HeldLease, Io, SafeWorld, Signal, Step};

use backend::{Backend, Grant};

/// One host's safe loop.
struct SafeLoop<'a> {
    world: &'a mut dyn SafeWorld,
    backend: Box<dyn Backend + 'a>,
    vars: &'a Variables,
    timing: Timing,
    /// This run of the daemon's incarnation, which the guard keeps for a later run to check.
    incarnation: u64,
    /// The lease this host holds, as master.
    lease: Option<Grant>,
}

/// Runs the safe loop for ever (unless the world halts it) over the backend of `vars.store`: the
/// heartbeat directory, or etcd.
pub fn run(world: &mut dyn SafeWorld, vars: &Variables, timing: Timing) -> Step<Infallible> {
    let started_at = world.elapsed()?;
    let incarnation = world.incarnation()?;
    let backend: Box<dyn Backend> = match &vars.store {
        Store::Directories(dirs) => Box::new(files::Files::new(
            dirs,
            vars,
            timing,
            started_at,
            incarnation,
        )),
        Store::Etcd(settings) => Box::new(etcd::Etcd::new(settings, &vars.host_name, timing)),
    };
    run_with(world, backend, vars, timing, incarnation)
}

/// Runs the safe loop over `backend` for ever (unless the world halts it).
fn run_with<'a>(
    world: &'a mut dyn SafeWorld,
    backend: Box<dyn Backend + 'a>,
    vars: &'a Variables,
    timing: Timing,
    incarnation: u64,
) -> Step<Infallible> {
    let mut safe = SafeLoop {
        world,
        backend,
        vars,
        timing,
        incarnation,
        lease: None,
    };
    safe.world.print("starting monitoring (safe profile)")?;
    safe.reattach()?;
    loop {
        let pause = safe.next_pause()?;
        safe.world
            .print(&format!("In monitoring loop sleep {}", seconds_text(pause)))?;
        safe.world.pause(pause)?;
        safe.world.report(&Event::RoundBegins);
        if safe.lease.is_some() {
            safe.master_round()?;
        } else {
            safe.standby_round()?;
        }
        safe.world.report(&Event::RoundEnds);
    }
}

/// The value of a storage operation on `path`, or `None` after printing why there is none.
fn answer<T>(world: &mut dyn SafeWorld, io: Io<T>, path: &str) -> Step<Option<T>> {
    match io {
        Io::Done(value) => Ok(Some(value)),
        Io::Failed(error) => {
            world.print_error(&error)?;
            Ok(None)
        }
        Io::TimedOut => {
            world.print_error(&format!(
                "hacmp: {path}: no answer from the storage in time"
            ))?;
            Ok(None)
        }
    }
}

/// Seconds as the script prints loopTime: whole seconds plainly, others to the millisecond.
fn seconds_text(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        duration.as_secs().to_string()
    } else {
        format!("{:.3}", duration.as_secs_f64())
    }
}

/// The shortest pause between two rounds, so that a standby waking for the end of its takeover
/// wait never spins.
const MIN_PAUSE: Duration = Duration::from_millis(10);

impl SafeLoop<'_> {
    /// loopTime, except that a standby wakes exactly when its takeover wait ends if that comes
    /// sooner: failover then takes at most faileOverTime + loopTime (to notice the last change)
    /// + the settle time, not one more loopTime on top.
    fn next_pause(&mut self) -> Step<Duration> {
        let round = self.timing.loop_pause;
        if self.lease.is_some() {
            return Ok(round);
        }
        let claimable_at = self.backend.claimable_at();
        let now = self.world.elapsed()?;
        Ok(match claimable_at.checked_sub(now) {
            Some(wait) if wait < round => wait.max(MIN_PAUSE),
            _ => round,
        })
    }

    /// Restart without failover: keeps the lease and the application of the guard an earlier
    /// run of the daemon on this host left running, if the world proves that run started it,
    /// its lease still holds and the backend still shows this host holding it; otherwise stops
    /// that guard, which kills its application, before doing anything else. Continuing the
    /// lease is sound because the guard's deadline is the lease's end as the earlier run
    /// confirmed it: the chain of confirmed writes never broke, and this run's writes extend it
    /// only while it holds, exactly as the earlier run's would have.
    fn reattach(&mut self) -> Step<()> {
        let Some(held) = self.world.guard_attach(self.incarnation)? else {
            return Ok(());
        };
        let HeldLease {
            token, deadline, ..
        } = held;
        let reason = if self.world.elapsed()? >= deadline {
            Some("its lease has run out")
        } else if !self.backend.reattach(self.world, &held)? {
            Some("the store no longer shows this host holding its lease")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.world.print(&format!(
                "not reattaching to the application of the previous run (token {token}): {reason}; stopping it"
            ))?;
            return self.world.guard_stop(Duration::ZERO);
        }
        self.world.print(&format!(
            "reattached to the application of the previous run, keeping token {token}"
        ))?;
        self.lease = Some(Grant {
            token,
            until: deadline,
        });
        self.world.report(&Event::Reattached { token });
        // Renew at once rather than a loopTime later: the lease may be close to its end.
        if let Some(confirmed) = self.backend.renew(self.world, token)? {
            self.extend_lease(confirmed)?;
        }
        Ok(())
    }

    /// A master's round: renew, look after the application, and yield to a higher claim.
    fn master_round(&mut self) -> Step<()> {
        let Some(Grant { token, until }) = self.lease else {
            return Ok(());
        };
        // A lease that ran out may already have been taken over: renewing it or counting on the
        // application now would act on a check that is no longer valid.
        if self.world.elapsed()? >= until {
            return self.lose_lease();
        }
        if let Some(confirmed) = self.backend.renew(self.world, token)? {
            self.extend_lease(confirmed)?;
        }
        match self.world.guard_state()? {
            GuardState::Running => {}
            GuardState::Exited | GuardState::Idle => {
                self.world.report(&Event::Incident);
                self.world.print("####")?;
                self.world
                    .print("#### ERROR, we sent last heartbeat but is not alive")?;
                self.world.print("####")?;
                // Like the script, stop renewing so that a peer (or this host, once its own
                // record has been still for faileOverTime) takes over.
                self.lease = None;
                return Ok(());
            }
            GuardState::Fenced => return self.lose_lease(),
            GuardState::Lost => return self.guard_lost(),
        }
        self.backend.observe(self.world)?;
        let now = self.world.elapsed()?;
        if let Some(reason) = self.backend.reason_to_yield(token, now) {
            self.world
                .print(&format!("yielding: {reason}; killing the application now"))?;
            self.world.guard_stop(Duration::ZERO)?;
            self.lease = None;
        }
        Ok(())
    }

    /// The lease ran out before a renewal was confirmed: the guard kills (or has killed) the
    /// application at that moment; make sure it is gone and become a standby.
    fn lose_lease(&mut self) -> Step<()> {
        self.world.report(&Event::Fenced(Fence::LeaseRanOut));
        self.world.guard_stop(Duration::ZERO)?;
        self.world
            .print("lease expired before a renewal succeeded: the guard killed the application")?;
        self.lease = None;
        Ok(())
    }

    /// The guard died: a fence, not an incident. The world has killed the application's whole
    /// tree and waited until nothing of it is left; stop renewing, so that this host claims
    /// again (or a peer takes over) only as after any lost lease.
    fn guard_lost(&mut self) -> Step<()> {
        self.world.report(&Event::Fenced(Fence::GuardLost));
        self.world.print(
            "the guard died: killed the application's whole process tree, giving up the lease",
        )?;
        self.lease = None;
        Ok(())
    }

    /// Moves the lease to one lease after `confirmed`, if that confirmation was made while the
    /// lease still held: peers may take over only a lease after our last confirmation they could
    /// see, so one made within the lease keeps them off for a lease from it. A confirmation made
    /// after the lease ended proves nothing (a peer may have taken over meanwhile) and moves
    /// nothing.
    fn extend_lease(&mut self, confirmed: Duration) -> Step<()> {
        let Some(lease) = self.lease.as_mut() else {
            return Ok(());
        };
        if confirmed < lease.until {
            lease.until = lease.until.max(confirmed + self.timing.lease);
            let until = lease.until;
            self.world.guard_extend(until)?;
        }
        Ok(())
    }

    /// A standby's round: unless in maintenance, look at the cluster, end stray local
    /// instances, and take the lease once the backend says it is free.
    fn standby_round(&mut self) -> Step<()> {
        let master = self.backend.master();
        self.world.report(&Event::Standby { master });
        match self.maintenance()? {
            Some(true) => {
                self.world
                    .print("We are in maintenance mode, so we do nothing")?;
                return Ok(());
            }
            // The store did not answer and the backend said so: no look, no claim, and no
            // claim of maintenance either.
            None => return Ok(()),
            Some(false) => {}
        }
        let complete = self.backend.observe(self.world)?;
        self.kill_local_instances()?;
        if complete && self.world.elapsed()? >= self.backend.claimable_at() {
            self.take_over()?;
        }
        Ok(())
    }

    /// Asks the backend for the lease and, once granted, starts the application under the guard
    /// until the grant's end.
    fn take_over(&mut self) -> Step<()> {
        let Some(grant) = self.backend.acquire(self.world)? else {
            return Ok(());
        };
        self.world.print("We are master so start server")?;
        if self.world.guard_start(
            &self.vars.start_cmd,
            &self.vars.start_cmd_log_file,
            grant.until,
            grant.token,
            self.incarnation,
        )? {
            self.lease = Some(grant);
            self.world.report(&Event::Started {
                token: Some(grant.token),
            });
        } else {
            self.world
                .print("the lease ran out before the application could start; backing off")?;
        }
        Ok(())
    }

    /// Whether the maintenance file exists, or the backend's store says maintenance. A
    /// maintenance file that cannot be read is said loudly and left to the store when the store
    /// answers (its site may be lost, and the store survives that); when neither can say, it
    /// counts as there, so a standby never claims on a guess. `None` when the store cannot say
    /// and the file does not exist; the reported state then stays as it was.
    fn maintenance(&mut self) -> Step<Option<bool>> {
        let file = self.vars.maintenance_file.clone();
        let maintenance = match self.world.file_exists(&file, self.timing.io_limit)? {
            Io::Done(true) => Some(true),
            Io::Done(false) => self.backend.maintenance(self.world)?,
            Io::Failed(error) => self.unreadable_maintenance_file(&file, error)?,
            Io::TimedOut => {
                let error = format!("hacmp: {file}: no answer from the storage in time");
                self.unreadable_maintenance_file(&file, error)?
            }
        };
        if let Some(on) = maintenance {
            self.world.report(&Event::Maintenance(on));
        }
        Ok(maintenance)
    }

    /// The maintenance file could not be read (`unreadable` says why): the store decides when
    /// it answers, since the file's site may be lost and the store survives that.
    fn unreadable_maintenance_file(
        &mut self,
        file: &str,
        unreadable: String,
    ) -> Step<Option<bool>> {
        let Some(store) = self.backend.maintenance(self.world)? else {
            self.world.print_error(&unreadable)?;
            return Ok(Some(true));
        };
        let message = format!(
            "maintenanceFile {file} cannot be read ({unreadable}); a majority of the store answers that maintenance is {}, and decides",
            if store { "on" } else { "off" }
        );
        self.world
            .print_error(&format!("hacmp: warning: {message}"))?;
        self.world.report(&Event::Warning {
            name: "maintenance-file-unreadable",
            message,
        });
        Ok(Some(store))
    }

    /// The script's killInstance for instances that run here without our lease, ending its
    /// 30-second wait as soon as they are gone.
    fn kill_local_instances(&mut self) -> Step<()> {
        let pids = self.world.find_processes(&self.vars.pgrep_program_name)?;
        if pids.is_empty() {
            return Ok(());
        }
        self.world
            .print("We are not master, so kill any running instances")?;
        for pid in pids {
            self.world.signal(pid, Signal::Term)?;
        }
        self.world.report(&Event::Waits {
            wait: Wait::KillGrace,
            seconds: GRACEFUL_KILL.as_secs(),
        });
        let mut waited = Duration::ZERO;
        while waited < GRACEFUL_KILL {
            self.world.pause(KILL_POLL)?;
            waited += KILL_POLL;
            if self
                .world
                .find_processes(&self.vars.pgrep_program_name)?
                .is_empty()
            {
                return Ok(());
            }
        }
        for pid in self.world.find_processes(&self.vars.pgrep_program_name)? {
            self.world.signal(pid, Signal::Kill)?;
        }
        Ok(())
    }
}
