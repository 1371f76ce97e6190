//! Writes (`touch` and the safe profile's records) and the safe profile's storage operations,
//! which carry a deadline.
//!
//! The fault model: on failing storage an operation fails at once with a tool-like error line;
//! on slow storage it takes longer, and past its deadline it times out; on hung storage it
//! times out at its deadline (the script's commands block instead, see the scheduler); with
//! `storage_late` every write lands some time after it was issued. A write that timed out is
//! not lost: it lands when it would have (slow, late) or when the storage is restored (hung).
//! A write that succeeds lands when it is issued — the earliest moment it could, which is the
//! hardest case for a peer judging the writer's liveness. A read sees the storage as it is
//! when the read is issued.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Behind, Cluster, Entry, Health, Namespace, Place, Timer, Write};
use crate::sim::request::{Outcome, Request, Value};
use crate::sim::scenario::EntryKind;
use crate::world::{Answer, EntryRead, Io, StorageOp, StorageValue};

const NO_SUCH_FILE: &str = "No such file or directory";
const IO_ERROR: &str = "Input/output error";

impl Namespace {
    /// Creates or updates an entry of the heartbeat directory, stamping it `stamp_ms`;
    /// `content` replaces a record's text (`None`: `touch`, which keeps it).
    fn write_entry(
        &mut self,
        name: &str,
        content: Option<&str>,
        stamp_ms: i64,
    ) -> Result<(), &'static str> {
        let entries = self.entries.as_mut().ok_or(NO_SUCH_FILE)?;
        let entry = entries.entry(name.to_string()).or_insert(Entry {
            kind: EntryKind::File,
            mtime_ms: stamp_ms,
            content: String::new(),
        });
        if let Some(content) = content {
            if entry.kind == EntryKind::Dir {
                return Err("Is a directory");
            }
            entry.content = content.to_string();
        }
        entry.mtime_ms = stamp_ms;
        Ok(())
    }
}

/// A safe storage operation with a deadline: one of a batch, or the maintenance file's `[ -f ]`.
#[derive(Clone, Copy)]
enum Bounded<'a> {
    Op(&'a StorageOp),
    Exists(&'a str),
}

impl Bounded<'_> {
    fn path(&self) -> &str {
        match self {
            Bounded::Op(op) => op.path(),
            Bounded::Exists(path) => path,
        }
    }

    /// The write it stands for, if it is one.
    fn write(&self, node: usize) -> Option<Write> {
        match self {
            Bounded::Op(StorageOp::Write { path, content }) => Some(Write {
                node,
                path: path.clone(),
                content: Some(content.clone()),
            }),
            _ => None,
        }
    }

    /// The error line it prints when it fails, in the style of the tool it stands for.
    fn error_line(&self, why: &str) -> String {
        match self {
            Bounded::Op(StorageOp::Read { path }) => format!("hacmp: cannot read '{path}': {why}"),
            Bounded::Op(StorageOp::Write { path, .. }) => {
                format!("hacmp: cannot write '{path}': {why}")
            }
            Bounded::Op(StorageOp::List { dir }) => format!("ls: cannot access '{dir}': {why}"),
            Bounded::Exists(path) => format!("hacmp: cannot stat '{path}': {why}"),
        }
    }
}

fn bounded(io: Io<Value>) -> Outcome {
    Outcome::ok(Value::Bounded(Box::new(io)))
}

impl Cluster {
    /// Serves `touch`, the maintenance file's `[ -f ]` or a batch of safe storage operations;
    /// returns its outcome and duration.
    pub(super) fn serve_storage(
        &mut self,
        node: usize,
        request: &Request,
        latency_ms: u64,
    ) -> (Outcome, u64) {
        self.refresh_cache(node);
        match request {
            Request::Touch(path) => {
                let health = self.health(node, path);
                let write = Write {
                    node,
                    path: path.clone(),
                    content: None,
                };
                self.touch(path, health, write, latency_ms)
            }
            Request::FileExists { path, limit_ms } => {
                let (io, duration) = match self.refusal(node, self.storage_of(path), path) {
                    // As the real daemon does, a check refused while its storage is behind
                    // counts as no answer.
                    Some(refused) => (refused.unwrap_or(Io::TimedOut), latency_ms),
                    None => self.serve_bounded(node, Bounded::Exists(path), *limit_ms, latency_ms),
                };
                (bounded(io), duration)
            }
            Request::StorageBatch {
                ops,
                limit_ms,
                enough,
            } => self.serve_batch(node, ops, *limit_ms, *enough, latency_ms),
            other => unreachable!("{other} is not a storage operation"),
        }
    }

    /// Runs every operation of a batch at once: the batch takes as long as its longest
    /// operation (each at most the limit), or until `enough` storages answered all of theirs
    /// without error; each answer is dated when it came, and the slower rest is left behind.
    fn serve_batch(
        &mut self,
        node: usize,
        ops: &[StorageOp],
        limit_ms: u64,
        enough: usize,
        latency_ms: u64,
    ) -> (Outcome, u64) {
        let asked_at_ms = self.elapsed_ms(node);
        let served: Vec<(Option<usize>, Option<Io<Value>>, u64)> = ops
            .iter()
            .map(|op| {
                let storage = self.storage_of(op.path());
                let (io, duration) = match self.refusal(node, storage, op.path()) {
                    Some(refused) => (refused, latency_ms),
                    None => {
                        let (io, duration) =
                            self.serve_bounded(node, Bounded::Op(op), limit_ms, latency_ms);
                        (Some(io), duration)
                    }
                };
                (storage, io, duration)
            })
            .collect();
        // Per storage: when its last operation answered, and whether all answered well.
        let mut by_storage: BTreeMap<Option<usize>, (u64, bool)> = BTreeMap::new();
        for (storage, io, duration) in &served {
            let (last, well) = by_storage.entry(*storage).or_insert((0, true));
            *last = (*last).max(*duration);
            *well &= matches!(io, Some(Io::Done(_)));
        }
        let mut complete: Vec<u64> = by_storage
            .values()
            .filter(|(_, well)| *well)
            .map(|(last, _)| *last)
            .collect();
        complete.sort_unstable();
        let longest_ms = served.iter().map(|(_, _, d)| *d).max().unwrap_or(0);
        let end_ms = match enough.checked_sub(1).and_then(|index| complete.get(index)) {
            Some(&enough_answered) => enough_answered,
            None => longest_ms,
        };
        let mut answers = Vec::with_capacity(ops.len());
        for (storage, io, duration) in served {
            if duration > end_ms {
                self.fall_behind(node, storage, duration, limit_ms);
            }
            let io = io.filter(|_| duration <= end_ms);
            answers.push(io.map(|io| Answer {
                io: io.map(|value| match value {
                    Value::Entry(entry) => StorageValue::Entry(entry),
                    Value::Names(names) => StorageValue::Names(names),
                    Value::Unit => StorageValue::Written,
                    other => unreachable!("a storage operation produced {other:?}"),
                }),
                at: Duration::from_millis(asked_at_ms + duration),
            }));
        }
        (Outcome::ok(Value::Answers(answers)), end_ms)
    }

    /// Why an operation on `storage` is not started, if an earlier one there has not returned:
    /// `Some(None)` while that one is merely behind, an error once it is overdue.
    fn refusal(
        &self,
        node: usize,
        storage: Option<usize>,
        path: &str,
    ) -> Option<Option<Io<Value>>> {
        let behind = self.nodes[node].behind.get(&storage?)?;
        if self.now_ms >= behind.until_ms {
            return None;
        }
        Some((self.now_ms >= behind.overdue_ms).then(|| {
            Io::Failed(format!(
                "hacmp: {path}: an earlier operation on its storage has not returned; none is tried until it has"
            ))
        }))
    }

    /// The daemon stops waiting for an operation on `storage` that returns `duration_ms` from
    /// now (`u64::MAX`: when the storage stops hanging).
    fn fall_behind(
        &mut self,
        node: usize,
        storage: Option<usize>,
        duration_ms: u64,
        limit_ms: u64,
    ) {
        let Some(storage) = storage else {
            return;
        };
        let now = self.now_ms;
        let behind = self.nodes[node].behind.entry(storage).or_insert(Behind {
            until_ms: now,
            overdue_ms: now + limit_ms,
        });
        behind.until_ms = behind.until_ms.max(now.saturating_add(duration_ms));
        behind.overdue_ms = behind.overdue_ms.min(now + limit_ms);
    }

    /// Serves one safe storage operation; returns its outcome and how long it took (at most
    /// its limit).
    fn serve_bounded(
        &mut self,
        node: usize,
        op: Bounded,
        limit_ms: u64,
        latency_ms: u64,
    ) -> (Io<Value>, u64) {
        let health = self.health(node, op.path());
        let write = op.write(node);
        let (duration_ms, lands_after_ms) = match health {
            Health::Failing => return (Io::Failed(op.error_line(IO_ERROR)), latency_ms),
            Health::Hung => {
                if let Some(write) = write {
                    self.hung_writes
                        .insert((write.node, write.path.clone()), write);
                }
                self.fall_behind(node, self.storage_of(op.path()), u64::MAX, limit_ms);
                return (Io::TimedOut, limit_ms);
            }
            // A slow write that is confirmed in time lands when issued; one that is not lands
            // when its confirmation would have come.
            Health::Slow(extra) => {
                let duration = latency_ms + extra;
                (duration, (duration > limit_ms).then_some(duration))
            }
            Health::Late(delay) if write.is_some() => (latency_ms.max(delay), Some(delay)),
            Health::Late(_) | Health::Healthy => (latency_ms, None),
        };
        let timed_out = duration_ms > limit_ms;
        if timed_out {
            self.fall_behind(node, self.storage_of(op.path()), duration_ms, limit_ms);
        }
        match (write, lands_after_ms) {
            (Some(write), Some(after)) => {
                self.hold(write, after);
                let io = if timed_out {
                    Io::TimedOut
                } else {
                    Io::Done(Value::Unit)
                };
                (io, duration_ms.min(limit_ms))
            }
            _ if timed_out => (Io::TimedOut, limit_ms),
            (write, _) => (self.perform(node, op, write), duration_ms),
        }
    }

    /// `touch`: the storage server stamps shared files with its own time, a node its own files
    /// with its own clock. With late writes the command returns at once and the time lands
    /// later.
    fn touch(
        &mut self,
        path: &str,
        health: Health,
        write: Write,
        latency_ms: u64,
    ) -> (Outcome, u64) {
        let result = match health {
            Health::Failing => Err(IO_ERROR),
            Health::Hung => unreachable!("the scheduler holds touch while the storage hangs"),
            Health::Late(delay) => {
                self.hold(write, delay);
                Ok(())
            }
            Health::Slow(_) | Health::Healthy => self.land(&write),
        };
        let cost = match health {
            Health::Slow(extra) => latency_ms + extra,
            _ => latency_ms,
        };
        let outcome = match result {
            Ok(()) => Outcome::ok(Value::Unit),
            Err(why) => {
                Outcome::failed(Value::Unit, format!("touch: cannot touch '{path}': {why}"))
            }
        };
        (outcome, cost)
    }

    /// Serves a safe storage operation at once; `write` is the write it stands for, if any.
    fn perform(&mut self, node: usize, op: Bounded, write: Option<Write>) -> Io<Value> {
        let result = match op {
            Bounded::Op(StorageOp::Read { path }) => self.read_record(node, path),
            Bounded::Op(StorageOp::Write { .. }) => self
                .land(&write.expect("a record write carries its write"))
                .map(|()| Value::Unit),
            Bounded::Op(StorageOp::List { dir }) => self.list_records(node, dir),
            Bounded::Exists(path) => Ok(Value::Flag(self.is_regular_file(node, path))),
        };
        match result {
            Ok(value) => Io::Done(value),
            Err(why) => Io::Failed(op.error_line(why)),
        }
    }

    /// A record and its modification time, fresh from the storage (never from the attribute
    /// cache).
    fn read_record(&self, node: usize, path: &str) -> Result<Value, &'static str> {
        let file = |modified_ms: Option<i64>, text: &str| {
            Ok(Value::Entry(modified_ms.map_or(EntryRead::Missing, |ms| {
                EntryRead::File {
                    text: text.to_string(),
                    modified: ms.div_euclid(1000),
                }
            })))
        };
        match self.place(path) {
            Place::HeartbeatDir(_) => Err("Is a directory"),
            Place::BelowHeartbeat(_) => Err("Not a directory"),
            Place::HeartbeatEntry(storage, name) => {
                let entries = self.storages[storage].entries.as_ref();
                match entries.and_then(|e| e.get(&name)) {
                    None => Ok(Value::Entry(EntryRead::Missing)),
                    Some(entry) if entry.kind == EntryKind::Dir => {
                        Ok(Value::Entry(EntryRead::NotAFile))
                    }
                    Some(entry) => file(Some(entry.mtime_ms), &entry.content),
                }
            }
            Place::Shared(resolved) => {
                file(self.storages[0].shared_files.get(&resolved).copied(), "")
            }
            Place::Local(resolved) => {
                file(self.nodes[node].local_files.get(&resolved).copied(), "")
            }
        }
    }

    /// The names `ls` lists (no dot files), sorted: fresh from the storage, or from the node's
    /// listing cache while that is younger than the mount allows.
    fn list_records(&mut self, node: usize, dir: &str) -> Result<Value, &'static str> {
        let now = self.now_ms;
        let Place::HeartbeatDir(storage) = self.place(dir) else {
            return Err(NO_SUCH_FILE);
        };
        let state = &self.nodes[node];
        if let Some((filled, names)) = state.listings.get(&storage)
            && now - filled < state.listing_cache_ms
        {
            return Ok(Value::Names(names.clone()));
        }
        let names: Vec<String> = match &self.storages[storage].entries {
            Some(entries) => entries
                .keys()
                .filter(|name| !name.starts_with('.'))
                .cloned()
                .collect(),
            None => return Err(NO_SUCH_FILE),
        };
        let state = &mut self.nodes[node];
        if state.listing_cache_ms > 0 {
            state.listings.insert(storage, (now, names.clone()));
        }
        Ok(Value::Names(names))
    }

    /// A write reaches the storage now; the writer's own attribute cache learns of it too.
    fn land(&mut self, write: &Write) -> Result<(), &'static str> {
        let content = write.content.as_deref();
        let server_ms = self.server_time_ms();
        match self.place(&write.path) {
            Place::HeartbeatDir(_) if content.is_some() => Err("Is a directory"),
            Place::HeartbeatDir(storage) if self.storages[storage].entries.is_none() => {
                Err(NO_SUCH_FILE)
            }
            Place::HeartbeatDir(_) => Ok(()),
            Place::BelowHeartbeat(_) => Err("Not a directory"),
            Place::HeartbeatEntry(storage, name) => {
                self.storages[storage].write_entry(&name, content, server_ms)?;
                // A host sees the entries it creates itself in its cached listing.
                if let Some((_, names)) = self.nodes[write.node].listings.get_mut(&storage)
                    && let Err(index) = names.binary_search(&name)
                {
                    names.insert(index, name.clone());
                }
                if let Some((_, cached)) = self.nodes[write.node].cache.as_mut() {
                    // The cached directory may be older than the live one; what it lacks
                    // stays unknown to the cache.
                    let _ = cached[storage].write_entry(&name, content, server_ms);
                }
                Ok(())
            }
            Place::Shared(resolved) => {
                self.storages[0]
                    .shared_files
                    .insert(resolved.clone(), server_ms);
                if let Some((_, cached)) = self.nodes[write.node].cache.as_mut() {
                    cached[0].shared_files.insert(resolved, server_ms);
                }
                Ok(())
            }
            Place::Local(resolved) => {
                let node_ms = self.node_time_ms(write.node);
                self.nodes[write.node].local_files.insert(resolved, node_ms);
                Ok(())
            }
        }
    }

    /// Lets a write land `delay_ms` from now.
    fn hold(&mut self, write: Write, delay_ms: u64) {
        self.writes_held += 1;
        let id = self.writes_held;
        self.late_writes.insert(id, write);
        self.schedule(self.now_ms + delay_ms, Timer::Land(id));
    }

    /// A held write lands (`Timer::Land`); one that cannot land is lost, as on a real storage.
    pub fn land_late(&mut self, id: u64) {
        if let Some(write) = self.late_writes.remove(&id) {
            let _ = self.land(&write);
        }
    }

    /// Changes how a shared storage treats the node. Writes that waited for it while it hung
    /// land when it works again, and are lost when it fails instead.
    pub fn set_storage(&mut self, node: usize, storage: usize, health: Health) {
        let was_hung = self.nodes[node].storage[storage] == Health::Hung;
        self.nodes[node].storage[storage] = health;
        if !was_hung || health == Health::Hung {
            return;
        }
        // The operations that hung there return now.
        if let Some(behind) = self.nodes[node].behind.get_mut(&storage) {
            behind.until_ms = behind.until_ms.min(self.now_ms);
        }
        let keys: Vec<(usize, String)> = self
            .hung_writes
            .keys()
            .filter(|(writer, path)| *writer == node && self.place(path).storage() == Some(storage))
            .cloned()
            .collect();
        for key in keys {
            let write = self.hung_writes.remove(&key).expect("listed above");
            if health != Health::Failing {
                let _ = self.land(&write);
            }
        }
    }
}
