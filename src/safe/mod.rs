//! The safe profile's loop: heartbeat.sh's protocol (the same files, the newest heartbeat belongs
//! to the master) with the guarantee held — never two instances at once.
//!
//! How, in short (docs/safe-profile.md has the argument):
//! - A standby judges a peer by whether its record *changes*, timed on its own boot clock,
//!   never by comparing timestamps; any read it cannot make counts as a change.
//! - It claims only after seeing every record unchanged for faileOverTime, then writes a claim,
//!   waits, and re-reads everything: the highest (token, host) claim wins.
//! - A master runs the application under a guard, a separate process that kills it when the
//!   lease (faileOverTime minus a margin after the last confirmed write) runs out, so a master
//!   that cannot write, is paused or has died stops before any peer may take over.

pub mod record;
pub mod timing;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use crate::config::Variables;
use crate::event::Event;
use crate::world::{GuardState, Io, SafeWorld, Signal, Step};

use record::{Phase, Record};
use timing::{CLAIM_WINDOW, GRACEFUL_KILL, KILL_POLL, SETTLE, Timing};

/// More entries than a heartbeat directory of a real cluster holds; a scan stops there.
pub const MAX_RECORDS: usize = 64;

/// What a scan saw of one entry, in a form where any difference means a change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sight {
    Missing,
    Record(Record),
    /// A file that is not a safe record (a bash or compat node's heartbeat, or a stray file),
    /// known by its modification time.
    Foreign(Option<i64>),
    /// The storage did not answer; every such sight differs from every other.
    Unknown(u64),
}

struct Observation {
    sight: Sight,
    /// When this loop first saw the entry; a first sight counts as a change for claiming.
    first_seen: Duration,
    changed_at: Duration,
}

impl Observation {
    /// Whether we have seen the entry actually change within `window` before `now`.
    fn seen_changing(&self, now: Duration, window: Duration) -> bool {
        self.changed_at > self.first_seen && now.saturating_sub(self.changed_at) < window
    }
}

struct Lease {
    token: u64,
}

/// One host's safe loop.
struct SafeLoop<'a> {
    world: &'a mut dyn SafeWorld,
    vars: &'a Variables,
    timing: Timing,
    own_path: String,
    started_at: Duration,
    observations: BTreeMap<String, Observation>,
    unknown_sights: u64,
    highest_token: u64,
    counter: u64,
    lease: Option<Lease>,
}

/// Runs the safe loop for ever (unless the world halts it).
pub fn run(world: &mut dyn SafeWorld, vars: &Variables, timing: Timing) -> Step<Infallible> {
    let started_at = world.elapsed()?;
    let mut safe = SafeLoop {
        own_path: format!("{}/{}", vars.heart_beat_dir, vars.host_name),
        world,
        vars,
        timing,
        started_at,
        observations: BTreeMap::new(),
        unknown_sights: 0,
        highest_token: 0,
        counter: 0,
        lease: None,
    };
    safe.world.print("starting monitoring (safe profile)")?;
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
        let last_change = self.observations.values().map(|o| o.changed_at).max();
        let claimable_at = last_change.unwrap_or(self.started_at).max(self.started_at)
            + self.timing.takeover_after;
        let now = self.world.elapsed()?;
        Ok(match claimable_at.checked_sub(now) {
            Some(wait) if wait < round => wait.max(MIN_PAUSE),
            _ => round,
        })
    }

    /// A master's round: renew, look after the application, and yield to a higher claim.
    fn master_round(&mut self) -> Step<()> {
        let token = self.lease.as_ref().map_or(0, |lease| lease.token);
        self.renew(token, Phase::Master)?;
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
            GuardState::Fenced => {
                self.world.report(&Event::Fenced);
                self.world.print(
                    "lease expired before a renewal succeeded: the guard killed the application",
                )?;
                self.lease = None;
                return Ok(());
            }
        }
        self.scan()?;
        let now = self.world.elapsed()?;
        if let Some(reason) = self.reason_to_yield(token, now) {
            self.world
                .print(&format!("yielding: {reason}; killing the application now"))?;
            self.world.guard_stop(Duration::ZERO)?;
            self.lease = None;
        }
        Ok(())
    }

    /// A standby's round: unless in maintenance, scan, end stray local instances, and claim once
    /// everything has been still for faileOverTime.
    fn standby_round(&mut self) -> Step<()> {
        self.world.report(&Event::Standby { master: None });
        if self.maintenance()? {
            self.world
                .print("We are in maintenance mode, so we do nothing")?;
            return Ok(());
        }
        let complete = self.scan()?;
        self.kill_local_instances()?;
        if complete && self.may_claim()? {
            self.claim()?;
        }
        Ok(())
    }

    /// Whether the maintenance file exists; a storage that does not answer counts as yes, so a
    /// standby never claims on a guess.
    fn maintenance(&mut self) -> Step<bool> {
        let file = self.vars.maintenance_file.clone();
        let exists = self.world.file_exists(&file, self.timing.io_limit)?;
        let maintenance = self.answer(exists, &file)?.unwrap_or(true);
        self.world.report(&Event::Maintenance(maintenance));
        Ok(maintenance)
    }

    /// The value of a storage operation on `path`, or `None` after printing why there is none.
    fn answer<T>(&mut self, io: Io<T>, path: &str) -> Step<Option<T>> {
        match io {
            Io::Done(value) => Ok(Some(value)),
            Io::Failed(error) => {
                self.world.print_error(&error)?;
                Ok(None)
            }
            Io::TimedOut => {
                self.world.print_error(&format!(
                    "hacmp: {path}: no answer from the storage in time"
                ))?;
                Ok(None)
            }
        }
    }

    /// Writes our record with the next counter; on success moves the guard's deadline to a
    /// lease after the moment the write was issued. Returns that moment if the storage
    /// confirmed the write.
    fn renew(&mut self, token: u64, phase: Phase) -> Step<Option<Duration>> {
        self.counter += 1;
        let record = Record {
            host: self.vars.host_name.clone(),
            token,
            counter: self.counter,
            phase,
        };
        let issued = self.world.elapsed()?;
        let path = self.own_path.clone();
        let written = self
            .world
            .write_record(&path, &record.to_string(), self.timing.io_limit)?;
        if self.answer(written, &path)?.is_none() {
            return Ok(None);
        }
        if phase == Phase::Master && self.lease.is_some() {
            self.world.guard_extend(issued + self.timing.lease)?;
        }
        Ok(Some(issued))
    }

    /// Reads every entry of the heartbeat directory fresh and notes which changed. Returns
    /// false when some could not be read: then no decision may rest on this scan.
    fn scan(&mut self) -> Step<bool> {
        let now = self.world.elapsed()?;
        let dir = self.vars.heart_beat_dir.clone();
        let listed = self.world.list_records(&dir, self.timing.io_limit)?;
        let Some(names) = self.answer(listed, &dir)? else {
            return Ok(false);
        };
        let mut complete = names.len() <= MAX_RECORDS;
        let mut seen = BTreeMap::new();
        for name in names.into_iter().take(MAX_RECORDS) {
            let sight = self.look_at(&name)?;
            complete &= !matches!(sight, Sight::Unknown(_));
            seen.insert(name, sight);
        }
        // Entries that disappeared are seen as missing, which is a change the first time.
        for name in self.observations.keys() {
            seen.entry(name.clone()).or_insert(Sight::Missing);
        }
        for (name, sight) in seen {
            if let Sight::Record(record) = &sight {
                self.highest_token = self.highest_token.max(record.token);
            }
            let observation = self.observations.entry(name).or_insert(Observation {
                sight: sight.clone(),
                first_seen: now,
                changed_at: now,
            });
            if observation.sight != sight {
                observation.sight = sight;
                observation.changed_at = now;
            }
        }
        Ok(complete)
    }

    fn look_at(&mut self, name: &str) -> Step<Sight> {
        let path = format!("{}/{}", self.vars.heart_beat_dir, name);
        let read = self.world.read_record(&path, self.timing.io_limit)?;
        let text = match self.answer(read, &path)? {
            None => return Ok(self.unknown()),
            Some(None) => return Ok(Sight::Missing),
            Some(Some(text)) => text,
        };
        if let Some(record) = Record::parse(&text) {
            return Ok(Sight::Record(record));
        }
        Ok(Sight::Foreign(self.world.modification_time(&path)?))
    }

    fn unknown(&mut self) -> Sight {
        self.unknown_sights += 1;
        Sight::Unknown(self.unknown_sights)
    }

    /// A standby may claim once it has watched for faileOverTime and seen nothing change.
    fn may_claim(&mut self) -> Step<bool> {
        let now = self.world.elapsed()?;
        let still = |since: Duration| now.saturating_sub(since) >= self.timing.takeover_after;
        Ok(still(self.started_at) && self.observations.values().all(|o| still(o.changed_at)))
    }

    /// Why a master must give up its lease now, if it must: a higher claim, or the heartbeat of
    /// a bash or compat node that is still being touched (that node believes it is master).
    fn reason_to_yield(&self, own_token: u64, now: Duration) -> Option<String> {
        let own_rank = (own_token, self.vars.host_name.as_str());
        for (name, observation) in &self.observations {
            if *name == self.vars.host_name {
                continue;
            }
            match &observation.sight {
                Sight::Record(record) if record.rank() > own_rank => {
                    return Some(format!("{} claims token {}", record.host, record.token));
                }
                Sight::Foreign(_) if observation.seen_changing(now, self.timing.takeover_after) => {
                    return Some(format!(
                        "{name}'s heartbeat is being touched by a host outside the safe profile"
                    ));
                }
                _ => {}
            }
        }
        None
    }

    /// Claims the lease: a fresh scan, a claim with the next token written within
    /// CLAIM_WINDOW of it, SETTLE, then a re-read in which our claim must rank highest.
    fn claim(&mut self) -> Step<()> {
        let scan_started = self.world.elapsed()?;
        if !self.scan()? || !self.may_claim()? {
            return Ok(());
        }
        let token = self.highest_token + 1;
        self.world.print("no master taking over")?;
        self.world
            .print(&format!("trying to be master with token {token}"))?;
        if self.renew(token, Phase::Claim)?.is_none() {
            return Ok(());
        }
        if self.world.elapsed()?.saturating_sub(scan_started) > CLAIM_WINDOW {
            self.world
                .print("the claim took too long to write; backing off")?;
            return Ok(());
        }
        self.world
            .print("Sleep 5 second to give room for avoiding conflicts")?;
        if !self.settle(token)? {
            self.world
                .print("the claim could not be kept up; backing off")?;
            return Ok(());
        }
        self.world.print("Check if we are still master")?;
        if !self.scan()? {
            return Ok(());
        }
        let now = self.world.elapsed()?;
        if let Some(reason) = self.reason_to_lose(token, now) {
            self.world.print(&format!("backing off: {reason}"))?;
            return Ok(());
        }
        let Some(issued) = self.renew(token, Phase::Master)? else {
            return Ok(());
        };
        // A lease from the moment the write was issued: peers may have seen it from then on.
        let deadline = issued + self.timing.lease;
        self.world.print("We are master so start server")?;
        if self.world.guard_start(
            &self.vars.start_cmd,
            &self.vars.start_cmd_log_file,
            deadline,
            token,
        )? {
            self.lease = Some(Lease { token });
            self.world.report(&Event::Started { token: Some(token) });
        } else {
            self.world
                .print("the lease ran out before the application could start; backing off")?;
        }
        Ok(())
    }

    /// Waits SETTLE, writing the claim again every loopTime meanwhile: peers must see a claim in
    /// progress change as often as a master's record does, or, with faileOverTime shorter than
    /// SETTLE, they would take it for abandoned and claim over it (found by the simulator:
    /// tests/shell-parity/scenarios/safe-claim-livelock.toml). Returns false when a write failed.
    fn settle(&mut self, token: u64) -> Step<bool> {
        let ends = self.world.elapsed()? + SETTLE;
        loop {
            let now = self.world.elapsed()?;
            let Some(remaining) = ends.checked_sub(now).filter(|r| !r.is_zero()) else {
                return Ok(true);
            };
            self.world.pause(remaining.min(self.timing.loop_pause))?;
            if self.world.elapsed()? < ends && self.renew(token, Phase::Claim)?.is_none() {
                return Ok(false);
            }
        }
    }

    /// After SETTLE: our claim must read back as written and rank above every other record.
    fn reason_to_lose(&self, token: u64, now: Duration) -> Option<String> {
        match self
            .observations
            .get(&self.vars.host_name)
            .map(|o| &o.sight)
        {
            Some(Sight::Record(own)) if own.token == token && own.counter == self.counter => {}
            _ => return Some("our claim does not read back as written".to_string()),
        }
        self.reason_to_yield(token, now)
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
