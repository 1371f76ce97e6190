//! The files backend: heartbeat.sh's heartbeat directory, one record per host, kept in one
//! directory or in several (`hacmpHeartBeatDirs`, each on storage of its own), where a
//! majority of them decides.
//!
//! A host judges its peers by whether their records *change*, timed on its own boot clock, never
//! by comparing timestamps; any read it cannot make counts as a change. It claims only after
//! a majority of the directories each showed every entry unchanged for faileOverTime, then
//! writes a claim to every directory, waits, and re-reads: the highest (token, host) claim wins
//! if nothing else changed meanwhile. Every write goes to every directory and counts only when
//! a majority confirmed it, so any two majorities share a directory: what one host confirmed,
//! another host's majority sees. docs/safe-profile.md has the protocol and the argument.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use super::answer;
use super::backend::{Backend, Grant};
use super::record::{self, Phase, Record};
use crate::config::Variables;
use crate::event::Event;
use crate::timing::Timing;
use crate::world::{Answer, EntryRead, HeldLease, Io, SafeWorld, Step, StorageOp, StorageValue};

/// More entries than a heartbeat directory of a real cluster holds, stray files included; a
/// scan of a directory with more reads none of them and says so, since no decision may rest on
/// a directory that was not read whole.
pub const MAX_ENTRIES: usize = 1024;

/// The marker `hacmp maintenance on` writes into every heartbeat directory: a hidden name, which
/// `ls` (and so bash, and the scans) never lists.
pub const MAINTENANCE_ENTRY: &str = ".hacmp-maintenance";

/// The file in each heartbeat directory that holds its identity, a random number the first host
/// to find it missing writes: hosts may mount a directory at different paths, but they read the
/// same identity in it, which their records carry (`record::lists_differ`).
pub const DIRECTORY_ID_ENTRY: &str = ".hacmp-directory";

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

/// An entry of one of the heartbeat directories: the directory's index and the entry's name.
type Key = (usize, String);

/// A write of our record that a majority of the directories confirmed.
struct Confirmed {
    /// When it was issued: a lease counts from here.
    issued: Duration,
    /// When the last confirmation of the majority came.
    at: Duration,
}

/// One host's view of the heartbeat directories, and its own record in each.
pub struct Files {
    dirs: Vec<String>,
    host_name: String,
    timing: Timing,
    /// When the daemon started: it watches for faileOverTime before its first claim.
    started_at: Duration,
    incarnation: u64,
    observations: BTreeMap<Key, Observation>,
    /// When the last scan began, and which directories it read whole (listed, and every entry
    /// read).
    scan_started: Duration,
    read_whole: Vec<bool>,
    unknown_sights: u64,
    /// The highest token seen in any directory, ever: a claim takes the next one.
    highest_token: u64,
    counter: u64,
    /// The identity of each of our directories as last read (`DIRECTORY_ID_ENTRY`), written
    /// into every record of ours.
    ids: Vec<Option<u64>>,
}

impl Files {
    /// The backend over `dirs` (validated: one, or an odd number of distinct directories).
    pub fn new(
        dirs: &[String],
        vars: &Variables,
        timing: Timing,
        started_at: Duration,
        incarnation: u64,
    ) -> Files {
        assert!(
            dirs.len() % 2 == 1,
            "validation lets only an odd number of directories through"
        );
        let dirs = dirs.to_vec();
        Files {
            ids: vec![None; dirs.len()],
            scan_started: started_at,
            read_whole: vec![false; dirs.len()],
            dirs,
            host_name: vars.host_name.clone(),
            timing,
            started_at,
            incarnation,
            observations: BTreeMap::new(),
            unknown_sights: 0,
            highest_token: 0,
            counter: 0,
        }
    }

    /// Every directory, by index.
    fn all(&self) -> Vec<usize> {
        (0..self.dirs.len()).collect()
    }

    /// How many directories make a majority.
    fn majority(&self) -> usize {
        self.dirs.len() / 2 + 1
    }

    fn path(&self, dir: usize, name: &str) -> String {
        format!("{}/{name}", self.dirs[dir])
    }

    /// Writes our record with the next counter to every directory. Returns when it was issued
    /// and when a majority had confirmed it, if a majority did in time.
    fn write_own(
        &mut self,
        world: &mut dyn SafeWorld,
        token: u64,
        phase: Phase,
    ) -> Step<Option<Confirmed>> {
        self.counter += 1;
        let record = Record {
            host: self.host_name.clone(),
            token,
            incarnation: self.incarnation,
            counter: self.counter,
            phase,
            directories: Some(self.ids.clone()),
        };
        let content = record.to_string();
        let ops: Vec<StorageOp> = (0..self.dirs.len())
            .map(|dir| StorageOp::Write {
                path: self.path(dir, &self.host_name),
                content: content.clone(),
            })
            .collect();
        let issued = world.elapsed()?;
        let answers = world.storage_batch(&ops, self.timing.io_limit, self.majority())?;
        let mut confirmations = Vec::new();
        for (op, Answer { io, at }) in ops.iter().zip(answers).filter_map(awaited) {
            if answer(world, io, op.path())?.is_some() {
                confirmations.push(at);
            }
        }
        confirmations.sort_unstable();
        Ok(confirmations
            .get(self.majority() - 1)
            .map(|&at| Confirmed { issued, at }))
    }

    /// Lists the directories `which`, then reads every entry of those listed, fresh, and notes which
    /// changed, each dated when its own read returned. Each batch returns once a majority of
    /// the directories answered it whole: a directory slower than that, or one whose listing
    /// failed, is not read in this scan, so a slow or hung minority costs nothing. Returns
    /// whether a majority of the directories was read whole: no decision may rest on less.
    fn scan(&mut self, world: &mut dyn SafeWorld, which: &[usize]) -> Step<bool> {
        self.scan_started = world.elapsed()?;
        let lists: Vec<StorageOp> = which
            .iter()
            .map(|&dir| StorageOp::List {
                dir: self.dirs[dir].clone(),
            })
            .collect();
        let listings = world.storage_batch(&lists, self.timing.io_limit, self.majority())?;
        let mut whole = vec![false; self.dirs.len()];
        let mut entries: Vec<Key> = Vec::new();
        let mut listed_at = Duration::ZERO;
        for (&dir, Answer { io, at }) in which.iter().zip(listings).filter_map(awaited) {
            let Some(value) = answer(world, io, &self.dirs[dir])? else {
                continue;
            };
            let StorageValue::Names(names) = value else {
                panic!("a listing answered {value:?}");
            };
            if names.len() > MAX_ENTRIES {
                world.print_error(&format!(
                    "hacmp: {}: {} entries, more than the {MAX_ENTRIES} the safe profile reads; remove stray files to let a takeover happen",
                    self.dirs[dir],
                    names.len()
                ))?;
                continue;
            }
            self.note_gone(dir, &names, at);
            listed_at = listed_at.max(at);
            whole[dir] = true;
            entries.extend(names.into_iter().map(|name| (dir, name)));
        }
        let listed: Vec<usize> = (0..self.dirs.len()).filter(|&dir| whole[dir]).collect();
        if !listed.is_empty() {
            // Each directory's identity is read with its entries, at no extra wait.
            let reads: Vec<StorageOp> = entries
                .iter()
                .map(|(dir, name)| self.path(*dir, name))
                .chain(listed.iter().map(|&dir| self.path(dir, DIRECTORY_ID_ENTRY)))
                .map(|path| StorageOp::Read { path })
                .collect();
            let mut answers = world.storage_batch(&reads, self.timing.io_limit, self.majority())?;
            let identities = answers.split_off(entries.len());
            self.learn_identities(world, &listed, identities)?;
            let returned = world.elapsed()?;
            for ((key, op), answer) in entries.into_iter().zip(&reads).zip(answers) {
                // A read left behind is not a failure to report, but it is no sight either:
                // like a failed one, it counts as a change.
                let (sight, at) = match answer {
                    Some(Answer { io, at }) => (self.sight(world, io, op.path())?, at),
                    None => (self.unknown(), returned),
                };
                whole[key.0] &= !matches!(sight, Sight::Unknown(_));
                self.note(key, sight, at);
            }
        }
        self.forget_long_missing(listed_at);
        self.read_whole = whole;
        Ok(self.read_whole.iter().filter(|&&w| w).count() >= self.majority())
    }

    /// Notes the identities read in `listed` and gives one to each directory that has none yet.
    /// Two hosts that give one at once both write; the later write stays, and the other host
    /// reads it at its next scan.
    fn learn_identities(
        &mut self,
        world: &mut dyn SafeWorld,
        listed: &[usize],
        answers: Vec<Option<Answer>>,
    ) -> Step<()> {
        let mut missing = Vec::new();
        for (&dir, answer) in listed.iter().zip(answers) {
            match answer.map(|answer| answer.io) {
                Some(Io::Done(StorageValue::Entry(EntryRead::File { text, .. }))) => {
                    self.ids[dir] = u64::from_str_radix(text.trim(), 16).ok();
                }
                Some(Io::Done(StorageValue::Entry(EntryRead::Missing))) => missing.push(dir),
                _ => {}
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let writes: Vec<(usize, u64)> = missing
            .into_iter()
            .map(|dir| (dir, identity(&self.host_name, self.incarnation, dir)))
            .collect();
        let ops: Vec<StorageOp> = writes
            .iter()
            .map(|&(dir, id)| StorageOp::Write {
                path: self.path(dir, DIRECTORY_ID_ENTRY),
                content: format!("{id:016x}\n"),
            })
            .collect();
        let answers = world.storage_batch(&ops, self.timing.io_limit, usize::MAX)?;
        for ((dir, id), answer) in writes.into_iter().zip(answers) {
            if matches!(
                answer,
                Some(Answer {
                    io: Io::Done(_),
                    ..
                })
            ) {
                self.ids[dir] = Some(id);
            }
        }
        Ok(())
    }

    /// Entries of `dir` that its listing at `at` no longer shows are missing as of then.
    fn note_gone(&mut self, dir: usize, names: &[String], at: Duration) {
        let gone: Vec<Key> = self
            .observations
            .keys()
            .filter(|(in_dir, name)| *in_dir == dir && names.binary_search(name).is_err())
            .cloned()
            .collect();
        for key in gone {
            self.note(key, Sight::Missing, at);
        }
    }

    /// Records what a read that returned at `at` showed of an entry.
    fn note(&mut self, key: Key, sight: Sight, at: Duration) {
        if let Sight::Record(record) = &sight {
            self.highest_token = self.highest_token.max(record.token);
        }
        match self.observations.entry(key) {
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
    /// the observations stay as small as the directories; one that comes back is a first
    /// sight, which counts as a change.
    fn forget_long_missing(&mut self, now: Duration) {
        let look_back = 2 * (self.timing.takeover_after + self.timing.settle);
        self.observations.retain(|_, observation| {
            observation.sight != Sight::Missing
                || now.saturating_sub(observation.changed_at) < look_back
        });
    }

    /// What a read of an entry showed.
    fn sight(
        &mut self,
        world: &mut dyn SafeWorld,
        io: Io<StorageValue>,
        path: &str,
    ) -> Step<Sight> {
        Ok(match answer(world, io, path)? {
            None => self.unknown(),
            Some(StorageValue::Entry(EntryRead::Missing)) => Sight::Missing,
            Some(StorageValue::Entry(EntryRead::NotAFile)) => Sight::NotAFile,
            Some(StorageValue::Entry(EntryRead::File { text, modified })) => {
                match Record::parse(&text) {
                    Some(record) => Sight::Record(record),
                    None => {
                        if let Some(refusal) = Record::version_1_refusal(&text, path) {
                            world.print_error(&refusal)?;
                        }
                        Sight::Foreign(modified)
                    }
                }
            }
            Some(other) => panic!("a read answered {other:?}"),
        })
    }

    /// A sight of an entry that could not be read, unlike any other.
    fn unknown(&mut self) -> Sight {
        self.unknown_sights += 1;
        Sight::Unknown(self.unknown_sights)
    }

    /// Since when the directory has shown no change: the latest change seen in it, or the
    /// daemon's start.
    fn quiet_since(&self, dir: usize) -> Duration {
        self.observations
            .iter()
            .filter(|((in_dir, _), _)| *in_dir == dir)
            .map(|(_, observation)| observation.changed_at)
            .fold(self.started_at, Duration::max)
    }

    /// The directories that the last scan read whole and that have shown no change for
    /// faileOverTime at `now`: a standby claims only on a majority of them.
    fn quiet_directories(&self, now: Duration) -> Vec<usize> {
        (0..self.dirs.len())
            .filter(|&dir| {
                self.read_whole[dir] && self.quiet_since(dir) + self.timing.takeover_after <= now
            })
            .collect()
    }

    /// Whether our own record, read fresh from every directory, is in a majority of them the
    /// master record that the run which left `held` running wrote last (a majority, as for any
    /// decision: a directory that was lost meanwhile may hold an older one); if so, this run
    /// goes on from it: the highest of those counters, and its token as the highest seen. This
    /// run's writes carry its own incarnation, so none repeats a write of the earlier run, not
    /// even one still landing late.
    fn continue_lease(&mut self, world: &mut dyn SafeWorld, held: &HeldLease) -> Step<bool> {
        let reads: Vec<StorageOp> = (0..self.dirs.len())
            .map(|dir| StorageOp::Read {
                path: self.path(dir, &self.host_name),
            })
            .collect();
        let answers = world.storage_batch(&reads, self.timing.io_limit, self.dirs.len())?;
        let mut counters = Vec::new();
        for (op, Answer { io, .. }) in reads.iter().zip(answers).filter_map(awaited) {
            if let Sight::Record(own) = self.sight(world, io, op.path())?
                && own.host == self.host_name
                && own.token == held.token
                && own.incarnation == held.incarnation
                && own.phase == Phase::Master
            {
                counters.push(own.counter);
            }
        }
        if counters.len() < self.majority() {
            return Ok(false);
        }
        self.counter = counters.into_iter().max().unwrap_or(self.counter);
        self.highest_token = self.highest_token.max(held.token);
        Ok(true)
    }

    /// Claims the lease: on the last scan (the decision), in which a majority of the
    /// directories was quiet for faileOverTime, a claim with the next token confirmed by a
    /// majority within the claim window of that scan's start, the settle from that confirmation, then a
    /// re-read of a majority of the directories that decided, in which our claim must rank
    /// highest and nothing else may have changed. The claim's lease counts from the issue of
    /// its last confirmed write, and the application starts only while that lease holds.
    ///
    /// The decision is the scan the loop's look just made rather than a new one: a new one
    /// would cost another storage deadline while a directory hangs, and the claim window
    /// refuses a decision that has grown old.
    fn claim(&mut self, world: &mut dyn SafeWorld) -> Step<Option<Grant>> {
        let scan_started = self.scan_started;
        let decided_at = world.elapsed()?;
        let deciders = self.quiet_directories(decided_at);
        if deciders.len() < self.majority() {
            return Ok(None);
        }
        if let Some(reason) = self.other_list() {
            world.print_error(&format!("hacmp: not claiming: {reason}"))?;
            world.report(&Event::Warning {
                name: "directory-list-mismatch",
                message: reason,
            });
            return Ok(None);
        }
        let Some(token) = self.highest_token.checked_add(1) else {
            world.print_error(&format!(
                "hacmp: not claiming: a record carries token {}, the largest there is, so no claim can outrank it; remove that record",
                self.highest_token
            ))?;
            return Ok(None);
        };
        world.print("no master taking over")?;
        world.print(&format!("trying to be master with token {token}"))?;
        let Some(written) = self.write_own(world, token, Phase::Claim)? else {
            return Ok(None);
        };
        let confirmed_after = written.at.saturating_sub(scan_started);
        if confirmed_after > self.timing.claim_window {
            // Say where the time went: a scan of many entries on slow storage makes every claim
            // too late, and the operator must see that rather than a takeover that never comes.
            world.print(&format!(
                "the claim was confirmed {:.3} s after its scan began (the scan took {:.3} s), more than the {:.3} s claim window; backing off",
                confirmed_after.as_secs_f64(),
                decided_at.saturating_sub(scan_started).as_secs_f64(),
                self.timing.claim_window.as_secs_f64()
            ))?;
            return Ok(None);
        }
        let mut until = written.issued + self.timing.lease;
        world.print("Sleep 5 second to give room for avoiding conflicts")?;
        if !self.settle(world, token, written.at + self.timing.settle, &mut until)? {
            world.print("the claim could not be kept up; backing off")?;
            return Ok(None);
        }
        // The settle's last write may be a pause, a write and a scan old: write once more, so
        // that this write, the re-read and the master's write (three steps, as in a master's
        // round) fit in the claim's lease however slow the majority is within the deadline.
        let Some(written) = self.write_own(world, token, Phase::Claim)? else {
            world.print("the claim could not be kept up; backing off")?;
            return Ok(None);
        };
        if written.issued < until {
            until = until.max(written.issued + self.timing.lease);
        }
        world.print("Check if we are still master")?;
        // Only the deciders: a batch returns on the first majority to answer, which must be
        // one of them.
        self.scan(world, &deciders)?;
        // Any majority that confirmed a peer's write meets a majority of the deciders, so the
        // re-read sees every write that could still hold a lease (docs/safe-profile.md).
        let reread = deciders.iter().filter(|&&dir| self.read_whole[dir]).count();
        if reread < self.majority() {
            world.print(
                "backing off: a majority of the directories that decided could not be read again",
            )?;
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
        let Some(written) = self.write_own(world, token, Phase::Master)? else {
            return Ok(None);
        };
        if written.issued < until {
            until = until.max(written.issued + self.timing.lease);
        }
        Ok(Some(Grant { token, until }))
    }

    /// Waits until `ends` (the settle after the claim's confirmation), writing the claim again every
    /// loopTime meanwhile: peers must see a claim in progress change as often as a master's
    /// record does, or, with faileOverTime shorter than the settle, they would take it for abandoned
    /// and claim over it (found by the simulator:
    /// tests/shell-parity/scenarios/safe-claim-livelock.toml). Each confirmed write issued
    /// within the claim's lease moves `until`. Returns false when a write was not confirmed by
    /// a majority.
    ///
    /// Each write is followed by a scan, so that a rival claim confirmed during the settle is
    /// seen while it exists: if its record is deleted before our re-read (after its owner's
    /// own re-read), the re-read finds it gone, a change, instead of never having seen it
    /// (found by the step exploration: two claimants at a cold start both won).
    fn settle(
        &mut self,
        world: &mut dyn SafeWorld,
        token: u64,
        ends: Duration,
        until: &mut Duration,
    ) -> Step<bool> {
        loop {
            let now = world.elapsed()?;
            let Some(remaining) = ends.checked_sub(now).filter(|r| !r.is_zero()) else {
                return Ok(true);
            };
            world.pause(remaining.min(self.timing.loop_pause))?;
            if world.elapsed()? >= ends {
                continue;
            }
            let Some(written) = self.write_own(world, token, Phase::Claim)? else {
                return Ok(false);
            };
            if written.issued < *until {
                *until = (*until).max(written.issued + self.timing.lease);
            }
            self.scan(world, &self.all())?;
        }
    }

    /// After the settle: our claim must read back as last written in a majority of the directories
    /// and rank above every other record in any of them, and nothing else may have changed
    /// since we decided to claim — a record that changed, vanished or stopped being a file
    /// belongs to a host that is alive, or to one we can no longer see, and either is a reason
    /// to back off. The one change allowed is a lower claim in progress: its claimant sees ours
    /// and backs off.
    fn reason_to_lose(&self, token: u64, decided_at: Duration) -> Option<String> {
        let read_back = (0..self.dirs.len())
            .filter(|&dir| {
                let key = (dir, self.host_name.clone());
                matches!(
                    self.observations.get(&key).map(|o| &o.sight),
                    Some(Sight::Record(own))
                        if own.token == token
                            && own.incarnation == self.incarnation
                            && own.counter == self.counter
                            && own.phase == Phase::Claim
                )
            })
            .count();
        if read_back < self.majority() {
            return Some("our claim does not read back as written".to_string());
        }
        if let Some(reason) = self.higher_claim(token) {
            return Some(reason);
        }
        self.others()
            .find_map(|((dir, name), observation)| match &observation.sight {
                Sight::Record(record) if record.phase == Phase::Claim => None,
                _ if observation.changed_at > decided_at => {
                    Some(format!("{} changed while we waited", self.path(*dir, name)))
                }
                _ => None,
            })
    }

    /// Why another host's record shows that it lists other heartbeat directories than ours,
    /// if one does: its majorities need not meet ours (assumption A8), so no claim may rest on
    /// them. A record of an older hacmp carries no identities and cannot tell.
    fn other_list(&self) -> Option<String> {
        self.others()
            .find_map(|((dir, name), observation)| match &observation.sight {
                Sight::Record(Record {
                    host,
                    directories: Some(theirs),
                    ..
                }) if record::lists_differ(&self.ids, theirs) => Some(format!(
                    "{host}'s record {} names other heartbeat directories (identities {}) than ours ({}); every host must list the same directories in hacmpHeartBeatDirs",
                    self.path(*dir, name),
                    record::identities_text(theirs),
                    record::identities_text(&self.ids)
                )),
                _ => None,
            })
    }

    /// The observations of every entry but our own, in every directory.
    fn others(&self) -> impl Iterator<Item = (&Key, &Observation)> {
        self.observations
            .iter()
            .filter(|((_, name), _)| *name != self.host_name)
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

/// A new identity for directory `dir`, from this host's name and this run's incarnation, so that
/// two hosts, or two directories, never draw the same one.
fn identity(host: &str, incarnation: u64, dir: usize) -> u64 {
    // FNV-1a over the host name, then mixed with the incarnation and the directory's index.
    let hashed = host.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hashed ^ incarnation)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(dir as u64)
}

/// An operation with its answer, if the batch waited for it.
fn awaited<T>((op, answer): (T, Option<Answer>)) -> Option<(T, Answer)> {
    Some((op, answer?))
}

impl Backend for Files {
    fn observe(&mut self, world: &mut dyn SafeWorld) -> Step<bool> {
        self.scan(world, &self.all())
    }

    /// faileOverTime after the moment from which a majority of the directories read whole
    /// by the last scan has shown no change (each since the later of the daemon's start and
    /// the last change seen in it); never, while less than a majority could be read.
    fn claimable_at(&self) -> Duration {
        let mut quiet: Vec<Duration> = (0..self.dirs.len())
            .filter(|&dir| self.read_whole[dir])
            .map(|dir| self.quiet_since(dir))
            .collect();
        quiet.sort_unstable();
        quiet
            .get(self.majority() - 1)
            .map_or(Duration::MAX, |&since| since + self.timing.takeover_after)
    }

    fn acquire(&mut self, world: &mut dyn SafeWorld) -> Step<Option<Grant>> {
        self.claim(world)
    }

    fn reattach(&mut self, world: &mut dyn SafeWorld, held: &HeldLease) -> Step<bool> {
        self.continue_lease(world, held)
    }

    fn renew(&mut self, world: &mut dyn SafeWorld, token: u64) -> Step<Option<Duration>> {
        let written = self.write_own(world, token, Phase::Master)?;
        Ok(written.map(|written| written.issued))
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

    /// The maintenance marker, read in every directory: on when any directory of a majority
    /// that answered shows it (`hacmp maintenance on` needs a majority to confirm it, and any
    /// two majorities share a directory); `None` when less than a majority answered.
    fn maintenance(&mut self, world: &mut dyn SafeWorld) -> Step<Option<bool>> {
        let reads: Vec<StorageOp> = (0..self.dirs.len())
            .map(|dir| StorageOp::Read {
                path: self.path(dir, MAINTENANCE_ENTRY),
            })
            .collect();
        let answers = world.storage_batch(&reads, self.timing.io_limit, self.majority())?;
        let (mut answered, mut on) = (0, false);
        for (op, Answer { io, .. }) in reads.iter().zip(answers).filter_map(awaited) {
            if let Some(StorageValue::Entry(entry)) = answer(world, io, op.path())? {
                answered += 1;
                on |= entry != EntryRead::Missing;
            }
        }
        Ok((answered >= self.majority()).then_some(on))
    }

    /// A higher claim, or the heartbeat of a bash or compat node that is still being touched
    /// (that node believes it is master).
    fn reason_to_yield(&self, own_token: u64, now: Duration) -> Option<String> {
        if let Some(reason) = self.higher_claim(own_token) {
            return Some(reason);
        }
        self.others()
            .find_map(|((dir, name), observation)| match &observation.sight {
                Sight::Foreign(_) if observation.seen_changing(now, self.timing.takeover_after) => {
                    Some(format!(
                        "{}'s heartbeat is being touched by a host outside the safe profile",
                        self.path(*dir, name)
                    ))
                }
                _ => None,
            })
    }
}
