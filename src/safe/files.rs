//! The files backend: heartbeat.sh's heartbeat directory, one record per host.
//!
//! A host judges its peers by whether their records *change*, timed on its own boot clock, never
//! by comparing timestamps; any read it cannot make counts as a change. It claims only after
//! seeing every entry unchanged for faileOverTime, then writes a claim, waits, and re-reads
//! everything: the highest (token, host) claim wins if nothing else changed meanwhile.
//! docs/safe-profile.md has the protocol and the argument.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use super::answer;
use super::backend::{Backend, Grant};
use super::record::{Phase, Record};
use crate::config::Variables;
use crate::timing::{CLAIM_WINDOW, SETTLE, Timing};
use crate::world::{EntryRead, HeldLease, SafeWorld, Step};

/// More entries than a heartbeat directory of a real cluster holds, stray files included; a
/// scan of a directory with more reads none of them and says so, since no decision may rest on
/// a directory that was not read whole.
pub const MAX_ENTRIES: usize = 1024;

/// What a scan saw of one entry, in a form where any difference means a change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sight {
    Missing,
    /// A directory or another entry that is not a regular file.
    NotAFile,
    Record(Record),
    /// A file that is not a safe record (a bash or compat node's heartbeat, or a stray file),
    /// known by its modification time.
    Foreign(i64),
    /// The storage did not answer; every such sight differs from every other.
    Unknown(u64),
}

struct Observation {
    sight: Sight,
    /// When this loop first saw the entry; a first sight counts as a change for claiming.
    first_seen: Duration,
    /// When the read that first showed the current sight returned. The change itself may have
    /// happened at any moment before, so this is the latest it can have happened: a standby
    /// that waits from here never waits too little, however long the scan or the read took.
    changed_at: Duration,
}

impl Observation {
    /// Whether we have seen the entry actually change within `window` before `now`.
    fn seen_changing(&self, now: Duration, window: Duration) -> bool {
        self.changed_at > self.first_seen && now.saturating_sub(self.changed_at) < window
    }
}

/// One host's view of the heartbeat directory, and its own record in it.
pub struct Files {
    heart_beat_dir: String,
    host_name: String,
    own_path: String,
    timing: Timing,
    /// When the daemon started: it watches for faileOverTime before its first claim.
    started_at: Duration,
    incarnation: u64,
    observations: BTreeMap<String, Observation>,
    unknown_sights: u64,
    highest_token: u64,
    counter: u64,
}

impl Files {
    pub fn new(vars: &Variables, timing: Timing, started_at: Duration, incarnation: u64) -> Files {
        Files {
            heart_beat_dir: vars.heart_beat_dir.clone(),
            host_name: vars.host_name.clone(),
            own_path: format!("{}/{}", vars.heart_beat_dir, vars.host_name),
            timing,
            started_at,
            incarnation,
            observations: BTreeMap::new(),
            unknown_sights: 0,
            highest_token: 0,
            counter: 0,
        }
    }

    /// Writes our record with the next counter. Returns the moment the write was issued if the
    /// storage confirmed it in time.
    fn write_own(
        &mut self,
        world: &mut dyn SafeWorld,
        token: u64,
        phase: Phase,
    ) -> Step<Option<Duration>> {
        self.counter += 1;
        let record = Record {
            host: self.host_name.clone(),
            token,
            incarnation: self.incarnation,
            counter: self.counter,
            phase,
        };
        let issued = world.elapsed()?;
        let path = self.own_path.clone();
        let written = world.write_record(&path, &record.to_string(), self.timing.io_limit)?;
        Ok(answer(world, written, &path)?.map(|()| issued))
    }

    /// Reads every entry of the heartbeat directory fresh and notes which changed, each dated
    /// when its own read returned. Returns false when some could not be read: then no decision
    /// may rest on this scan.
    fn scan(&mut self, world: &mut dyn SafeWorld) -> Step<bool> {
        let dir = self.heart_beat_dir.clone();
        let listed = world.list_records(&dir, self.timing.io_limit)?;
        let listed_at = world.elapsed()?;
        let Some(names) = answer(world, listed, &dir)? else {
            return Ok(false);
        };
        if names.len() > MAX_ENTRIES {
            world.print_error(&format!(
                "hacmp: {dir}: {} entries, more than the {MAX_ENTRIES} the safe profile reads; remove stray files to let a takeover happen",
                names.len()
            ))?;
            return Ok(false);
        }
        // Entries that disappeared are missing as of the listing that no longer shows them.
        let gone: Vec<String> = self
            .observations
            .keys()
            .filter(|name| names.binary_search(name).is_err())
            .cloned()
            .collect();
        for name in gone {
            self.note(name, Sight::Missing, listed_at);
        }
        let mut complete = true;
        for name in names {
            let sight = self.look_at(world, &name)?;
            let read_at = world.elapsed()?;
            complete &= !matches!(sight, Sight::Unknown(_));
            self.note(name, sight, read_at);
        }
        self.forget_long_missing(listed_at);
        Ok(complete)
    }

    /// Records what a read that returned at `at` showed of `name`.
    fn note(&mut self, name: String, sight: Sight, at: Duration) {
        if let Sight::Record(record) = &sight {
            self.highest_token = self.highest_token.max(record.token);
        }
        match self.observations.entry(name) {
            Entry::Vacant(vacant) => {
                vacant.insert(Observation {
                    sight,
                    first_seen: at,
                    changed_at: at,
                });
            }
            Entry::Occupied(mut occupied) => {
                let observation = occupied.get_mut();
                if observation.sight != sight {
                    observation.sight = sight;
                    observation.changed_at = at;
                }
            }
        }
    }

    /// Forgets entries that have been missing for longer than any decision looks back, so that
    /// the observations stay as small as the directory; one that comes back is a first sight,
    /// which counts as a change.
    fn forget_long_missing(&mut self, now: Duration) {
        let look_back = 2 * (self.timing.takeover_after + SETTLE);
        self.observations.retain(|_, observation| {
            observation.sight != Sight::Missing
                || now.saturating_sub(observation.changed_at) < look_back
        });
    }

    fn look_at(&mut self, world: &mut dyn SafeWorld, name: &str) -> Step<Sight> {
        let path = format!("{}/{}", self.heart_beat_dir, name);
        let read = world.read_record(&path, self.timing.io_limit)?;
        Ok(match answer(world, read, &path)? {
            None => self.unknown(),
            Some(EntryRead::Missing) => Sight::Missing,
            Some(EntryRead::NotAFile) => Sight::NotAFile,
            Some(EntryRead::File { text, modified }) => match Record::parse(&text) {
                Some(record) => Sight::Record(record),
                None => Sight::Foreign(modified),
            },
        })
    }

    fn unknown(&mut self) -> Sight {
        self.unknown_sights += 1;
        Sight::Unknown(self.unknown_sights)
    }

    /// A standby may claim once it has watched for faileOverTime and seen nothing change.
    fn may_claim(&self, now: Duration) -> bool {
        now >= self.claimable_at()
    }

    /// Whether our own record, read fresh, is the master record that the run which left `held`
    /// running wrote last; if so, this run goes on from it: its counter, and its token as the
    /// highest seen. This run's writes carry its own incarnation, so none repeats a write of
    /// the earlier run, not even one still landing late.
    fn continue_lease(&mut self, world: &mut dyn SafeWorld, held: &HeldLease) -> Step<bool> {
        let name = self.host_name.clone();
        let Sight::Record(own) = self.look_at(world, &name)? else {
            return Ok(false);
        };
        let left_as_held = own.host == self.host_name
            && own.token == held.token
            && own.incarnation == held.incarnation
            && own.phase == Phase::Master;
        if left_as_held {
            self.counter = own.counter;
            self.highest_token = self.highest_token.max(own.token);
        }
        Ok(left_as_held)
    }

    /// Claims the lease: a fresh scan, a claim with the next token written within
    /// CLAIM_WINDOW of it, SETTLE, then a re-read in which our claim must rank highest and
    /// nothing else may have changed. The claim's lease counts from the issue of its last
    /// confirmed write, and the application starts only while that lease holds.
    fn claim(&mut self, world: &mut dyn SafeWorld) -> Step<Option<Grant>> {
        let scan_started = world.elapsed()?;
        if !self.scan(world)? || !self.may_claim(world.elapsed()?) {
            return Ok(None);
        }
        let decided_at = world.elapsed()?;
        let token = self.highest_token + 1;
        world.print("no master taking over")?;
        world.print(&format!("trying to be master with token {token}"))?;
        let Some(issued) = self.write_own(world, token, Phase::Claim)? else {
            return Ok(None);
        };
        let confirmed_after = world.elapsed()?.saturating_sub(scan_started);
        if confirmed_after > CLAIM_WINDOW {
            // Say where the time went: a scan of many entries on slow storage makes every claim
            // too late, and the operator must see that rather than a takeover that never comes.
            world.print(&format!(
                "the claim was confirmed {:.3} s after its scan began (the scan took {:.3} s), more than the {} s claim window; backing off",
                confirmed_after.as_secs_f64(),
                decided_at.saturating_sub(scan_started).as_secs_f64(),
                CLAIM_WINDOW.as_secs()
            ))?;
            return Ok(None);
        }
        let mut until = issued + self.timing.lease;
        world.print("Sleep 5 second to give room for avoiding conflicts")?;
        if !self.settle(world, token, &mut until)? {
            world.print("the claim could not be kept up; backing off")?;
            return Ok(None);
        }
        world.print("Check if we are still master")?;
        if !self.scan(world)? {
            return Ok(None);
        }
        if let Some(reason) = self.reason_to_lose(token, decided_at) {
            world.print(&format!("backing off: {reason}"))?;
            return Ok(None);
        }
        if world.elapsed()? >= until {
            world.print("the claim's lease ran out before we could act on it; backing off")?;
            return Ok(None);
        }
        let Some(issued) = self.write_own(world, token, Phase::Master)? else {
            return Ok(None);
        };
        if issued < until {
            until = until.max(issued + self.timing.lease);
        }
        Ok(Some(Grant { token, until }))
    }

    /// Waits SETTLE, writing the claim again every loopTime meanwhile: peers must see a claim in
    /// progress change as often as a master's record does, or, with faileOverTime shorter than
    /// SETTLE, they would take it for abandoned and claim over it (found by the simulator:
    /// tests/shell-parity/scenarios/safe-claim-livelock.toml). Each confirmed write issued
    /// within the claim's lease moves `until`. Returns false when a write failed.
    fn settle(
        &mut self,
        world: &mut dyn SafeWorld,
        token: u64,
        until: &mut Duration,
    ) -> Step<bool> {
        let ends = world.elapsed()? + SETTLE;
        loop {
            let now = world.elapsed()?;
            let Some(remaining) = ends.checked_sub(now).filter(|r| !r.is_zero()) else {
                return Ok(true);
            };
            world.pause(remaining.min(self.timing.loop_pause))?;
            if world.elapsed()? >= ends {
                continue;
            }
            let Some(issued) = self.write_own(world, token, Phase::Claim)? else {
                return Ok(false);
            };
            if issued < *until {
                *until = (*until).max(issued + self.timing.lease);
            }
        }
    }

    /// After SETTLE: our claim must read back as written and rank above every other record,
    /// and nothing else may have changed since we decided to claim — a record that changed,
    /// vanished or stopped being a file belongs to a host that is alive, or to one we can no
    /// longer see, and either is a reason to back off. The one change allowed is a lower claim
    /// in progress: its claimant sees ours and backs off.
    fn reason_to_lose(&self, token: u64, decided_at: Duration) -> Option<String> {
        match self.observations.get(&self.host_name).map(|o| &o.sight) {
            Some(Sight::Record(own))
                if own.token == token
                    && own.incarnation == self.incarnation
                    && own.counter == self.counter
                    && own.phase == Phase::Claim => {}
            _ => return Some("our claim does not read back as written".to_string()),
        }
        if let Some(reason) = self.higher_claim(token) {
            return Some(reason);
        }
        self.others()
            .find_map(|(name, observation)| match &observation.sight {
                Sight::Record(record) if record.phase == Phase::Claim => None,
                _ if observation.changed_at > decided_at => {
                    Some(format!("{name} changed while we waited"))
                }
                _ => None,
            })
    }

    /// The observations of every entry but our own.
    fn others(&self) -> impl Iterator<Item = (&String, &Observation)> {
        self.observations
            .iter()
            .filter(|(name, _)| **name != self.host_name)
    }

    /// Another host's record that ranks above ours with `token`, if one does.
    fn higher_claim(&self, token: u64) -> Option<String> {
        let own_rank = (token, self.host_name.as_str());
        self.others()
            .find_map(|(_, observation)| match &observation.sight {
                Sight::Record(record) if record.rank() > own_rank => {
                    Some(format!("{} claims token {}", record.host, record.token))
                }
                _ => None,
            })
    }
}

impl Backend for Files {
    fn observe(&mut self, world: &mut dyn SafeWorld) -> Step<bool> {
        self.scan(world)
    }

    /// faileOverTime after the later of the daemon's start and the last change seen.
    fn claimable_at(&self) -> Duration {
        let last_change = self.observations.values().map(|o| o.changed_at).max();
        last_change.unwrap_or(self.started_at).max(self.started_at) + self.timing.takeover_after
    }

    fn acquire(&mut self, world: &mut dyn SafeWorld) -> Step<Option<Grant>> {
        self.claim(world)
    }

    fn reattach(&mut self, world: &mut dyn SafeWorld, held: &HeldLease) -> Step<bool> {
        self.continue_lease(world, held)
    }

    fn renew(&mut self, world: &mut dyn SafeWorld, token: u64) -> Step<Option<Duration>> {
        self.write_own(world, token, Phase::Master)
    }

    /// The highest-ranking master record of another host.
    fn master(&self) -> Option<String> {
        self.others()
            .filter_map(|(_, observation)| match &observation.sight {
                Sight::Record(record) if record.phase == Phase::Master => Some(record),
                _ => None,
            })
            .max_by(|a, b| a.rank().cmp(&b.rank()))
            .map(|record| record.host.clone())
    }

    /// A higher claim, or the heartbeat of a bash or compat node that is still being touched
    /// (that node believes it is master).
    fn reason_to_yield(&self, own_token: u64, now: Duration) -> Option<String> {
        if let Some(reason) = self.higher_claim(own_token) {
            return Some(reason);
        }
        self.others()
            .find_map(|(name, observation)| match &observation.sight {
                Sight::Foreign(_) if observation.seen_changing(now, self.timing.takeover_after) => {
                    Some(format!(
                        "{name}'s heartbeat is being touched by a host outside the safe profile"
                    ))
                }
                _ => None,
            })
    }
}
