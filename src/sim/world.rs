//! The simulated cluster: a shared heartbeat directory on a storage server, node-local files,
//! clocks and process tables, all in virtual milliseconds.
//!
//! Paths are resolved against every node's virtual working directory `VIRTUAL_CWD`. The
//! heartbeat directory (and everything below it) is on the shared storage; so is the maintenance
//! file when the scenario says so; every other path is local to the node.

use std::collections::{BTreeMap, HashMap};

use super::audit::Audit;
use super::request::{Outcome, Request, Value};
use super::scenario::{EntryKind, OnSigterm, Scenario};
use crate::pattern::Pattern;
use crate::world::Signal;

/// Every daemon's working directory.
pub const VIRTUAL_CWD: &str = "/opt/app";
/// Virtual time 0 on the wall clock, in milliseconds since the epoch.
const EPOCH_MS: i64 = 1_700_000_000_000;
/// The first PID handed to an app; PIDs are never reused within a run.
const FIRST_PID: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Every access fails with EIO.
    Failing,
    /// Every access blocks until the storage is restored.
    Hung,
    /// Every access takes this many more milliseconds.
    Slow(u64),
}

#[derive(Debug, Clone)]
struct Entry {
    kind: EntryKind,
    mtime_ms: i64,
}

#[derive(Debug, Clone)]
struct App {
    pid: u32,
    command_line: String,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    clock_skew_ms: i64,
    /// Absolute path to modification time (wall-clock ms) of the node's own files.
    local_files: BTreeMap<String, i64>,
    apps: Vec<App>,
    pub storage: Health,
}

/// Where a path leads.
enum Place {
    HeartbeatDir,
    HeartbeatEntry(String),
    /// Below an entry of the heartbeat directory: nothing the loop creates lives there.
    BelowHeartbeat,
    Shared(String),
    Local(String),
}

/// Something that happens by itself at a later virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// An app exits (after SIGTERM, or at the end of its lifetime).
    AppExit { node: usize, pid: u32 },
    /// The scenario's event of this index.
    Event(usize),
    /// A daemon (re)starts: at its start time, or after systemd's restart delay.
    DaemonStart(usize),
}

pub struct Cluster {
    pub now_ms: u64,
    heartbeat_dir: String,
    /// The heartbeat directory's entries, or `None` while it does not exist.
    entries: Option<BTreeMap<String, Entry>>,
    shared_files: BTreeMap<String, i64>,
    shared_maintenance: Option<String>,
    server_skew_ms: i64,
    app_command_line: Option<String>,
    on_sigterm: OnSigterm,
    exit_delay_ms: u64,
    lifetime_ms: Option<u64>,
    pub nodes: Vec<Node>,
    next_pid: u32,
    patterns: HashMap<String, Option<Pattern>>,
    /// Pending timers by (time, insertion order), so that equal times fire in a fixed order.
    timers: BTreeMap<(u64, u64), Timer>,
    timer_sequence: u64,
    pub audit: Audit,
}

/// Resolves `path` against the virtual working directory, removing `.`, `..` and repeated `/`.
pub fn resolve(path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{VIRTUAL_CWD}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Cluster {
    pub fn new(scenario: &Scenario, heartbeat_dir: &str, maintenance_file: &str) -> Cluster {
        let entries = (!scenario.storage.heartbeat_dir_missing).then(|| {
            scenario
                .storage
                .entries
                .iter()
                .map(|e| {
                    let entry = Entry {
                        kind: e.kind,
                        mtime_ms: EPOCH_MS + e.mtime.millis(),
                    };
                    (e.name.clone(), entry)
                })
                .collect()
        });
        let nodes = scenario
            .nodes
            .iter()
            .map(|n| Node {
                name: n.name.clone(),
                clock_skew_ms: n.clock_skew.millis(),
                local_files: BTreeMap::new(),
                apps: Vec::new(),
                storage: Health::Healthy,
            })
            .collect();
        let mut cluster = Cluster {
            now_ms: 0,
            heartbeat_dir: resolve(heartbeat_dir),
            entries,
            shared_files: BTreeMap::new(),
            shared_maintenance: scenario
                .storage
                .shared_maintenance
                .then(|| resolve(maintenance_file)),
            server_skew_ms: scenario.storage.server_skew.millis(),
            app_command_line: scenario.app.command_line.clone(),
            on_sigterm: scenario.app.on_sigterm,
            exit_delay_ms: scenario.app.exit_delay.millis() as u64,
            lifetime_ms: scenario.app.lifetime.map(|l| l.millis() as u64),
            nodes,
            next_pid: FIRST_PID,
            patterns: HashMap::new(),
            timers: BTreeMap::new(),
            timer_sequence: 0,
            audit: Audit::default(),
        };
        for index in 0..scenario.events.len() {
            let at = scenario.events[index].at.millis() as u64;
            cluster.schedule(at, Timer::Event(index));
        }
        for (index, node) in scenario.nodes.iter().enumerate() {
            cluster.schedule(node.start.millis() as u64, Timer::DaemonStart(index));
        }
        cluster
    }

    pub fn schedule(&mut self, at_ms: u64, timer: Timer) {
        self.timer_sequence += 1;
        self.timers.insert((at_ms, self.timer_sequence), timer);
    }

    /// The earliest pending timer's time.
    pub fn next_timer_ms(&self) -> Option<u64> {
        self.timers.keys().next().map(|&(at, _)| at)
    }

    pub fn pop_timer(&mut self) -> Option<Timer> {
        self.timers.pop_first().map(|(_, timer)| timer)
    }

    fn server_time_ms(&self) -> i64 {
        EPOCH_MS + self.now_ms as i64 + self.server_skew_ms
    }

    fn node_time_ms(&self, node: usize) -> i64 {
        EPOCH_MS + self.now_ms as i64 + self.nodes[node].clock_skew_ms
    }

    fn place(&self, path: &str) -> Place {
        let resolved = resolve(path);
        if resolved == self.heartbeat_dir {
            return Place::HeartbeatDir;
        }
        if let Some(rest) = resolved.strip_prefix(&format!("{}/", self.heartbeat_dir)) {
            return match rest.split_once('/') {
                None => Place::HeartbeatEntry(rest.to_string()),
                Some(_) => Place::BelowHeartbeat,
            };
        }
        if self.shared_maintenance.as_deref() == Some(resolved.as_str()) {
            return Place::Shared(resolved);
        }
        Place::Local(resolved)
    }

    /// Whether a request touches the shared storage (and so suffers its faults).
    pub fn uses_storage(&self, request: &Request) -> bool {
        match request {
            Request::IsRegularFile(path)
            | Request::NewestEntry(path)
            | Request::ModificationTime(path)
            | Request::Touch(path) => !matches!(self.place(path), Place::Local(_)),
            _ => false,
        }
    }

    /// Serves one request of `node` at the current time; returns its outcome and how many
    /// milliseconds it took.
    pub fn serve(&mut self, node: usize, request: &Request, latency_ms: u64) -> (Outcome, u64) {
        let storage = self.nodes[node].storage;
        let failing = storage == Health::Failing && self.uses_storage(request);
        let mut cost = latency_ms;
        if let (Health::Slow(extra), true) = (storage, self.uses_storage(request)) {
            cost += extra;
        }
        let outcome = match request {
            Request::Sleep(seconds) => {
                cost = seconds.saturating_mul(1000);
                Outcome::ok(Value::Unit)
            }
            Request::Now => {
                let seconds = self.node_time_ms(node).div_euclid(1000);
                Outcome::ok(Value::Seconds(seconds))
            }
            Request::IsRegularFile(path) => {
                Outcome::ok(Value::Flag(!failing && self.is_regular_file(node, path)))
            }
            Request::NewestEntry(dir) => self.newest_entry(dir, failing),
            Request::ModificationTime(path) => self.modification_time(node, path, failing),
            Request::Touch(path) => self.touch(node, path, failing),
            Request::FindProcesses(pattern) => {
                Outcome::ok(Value::Pids(self.find_processes(node, pattern)))
            }
            Request::Signal(pid, signal) => self.signal(node, *pid, *signal),
            Request::StartDetached { command, log_file } => {
                self.start_app(node, command, log_file);
                Outcome::ok(Value::Unit)
            }
            Request::Print(_) | Request::PrintError(_) => Outcome::ok(Value::Unit),
        };
        (outcome, cost)
    }

    fn is_regular_file(&self, node: usize, path: &str) -> bool {
        match self.place(path) {
            Place::HeartbeatDir | Place::BelowHeartbeat => false,
            Place::HeartbeatEntry(name) => self
                .entries
                .as_ref()
                .and_then(|entries| entries.get(&name))
                .is_some_and(|e| e.kind == EntryKind::File),
            Place::Shared(resolved) => self.shared_files.contains_key(&resolved),
            Place::Local(resolved) => self.nodes[node].local_files.contains_key(&resolved),
        }
    }

    /// `ls -1tr DIR | tail -1`: the newest visible entry; equal times go to the smallest name,
    /// which is where `ls -t` puts it before `-r` reverses the list.
    fn newest_entry(&self, dir: &str, failing: bool) -> Outcome {
        let cannot = |why: &str| {
            Outcome::failed(
                Value::Name(String::new()),
                format!("ls: cannot access '{dir}': {why}"),
            )
        };
        if failing {
            return cannot("Input/output error");
        }
        let entries = match (self.place(dir), &self.entries) {
            (Place::HeartbeatDir, Some(entries)) => entries,
            _ => return cannot("No such file or directory"),
        };
        let newest = entries
            .iter()
            .filter(|(name, _)| !name.starts_with('.'))
            .max_by(|(a_name, a), (b_name, b)| {
                a.mtime_ms.cmp(&b.mtime_ms).then_with(|| b_name.cmp(a_name))
            })
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        Outcome::ok(Value::Name(newest))
    }

    fn modification_time(&self, node: usize, path: &str, failing: bool) -> Outcome {
        let cannot = |why: &str| {
            Outcome::failed(
                Value::MaybeSeconds(None),
                format!("stat: cannot statx '{path}': {why}"),
            )
        };
        if failing {
            return cannot("Input/output error");
        }
        let mtime_ms = match self.place(path) {
            Place::HeartbeatDir => self.entries.as_ref().map(|_| EPOCH_MS),
            Place::HeartbeatEntry(name) => self
                .entries
                .as_ref()
                .and_then(|entries| entries.get(&name))
                .map(|e| e.mtime_ms),
            Place::BelowHeartbeat => None,
            Place::Shared(resolved) => self.shared_files.get(&resolved).copied(),
            Place::Local(resolved) => self.nodes[node].local_files.get(&resolved).copied(),
        };
        match mtime_ms {
            Some(ms) => Outcome::ok(Value::MaybeSeconds(Some(ms.div_euclid(1000)))),
            None => cannot("No such file or directory"),
        }
    }

    /// `touch`: the storage server stamps shared files with its own time, a node its own files
    /// with its own clock.
    fn touch(&mut self, node: usize, path: &str, failing: bool) -> Outcome {
        let cannot = |why: &str| {
            Outcome::failed(Value::Unit, format!("touch: cannot touch '{path}': {why}"))
        };
        if failing {
            return cannot("Input/output error");
        }
        let server_ms = self.server_time_ms();
        match self.place(path) {
            Place::HeartbeatDir => {
                if self.entries.is_none() {
                    return cannot("No such file or directory");
                }
            }
            Place::HeartbeatEntry(name) => match self.entries.as_mut() {
                Some(entries) => {
                    let entry = entries.entry(name).or_insert(Entry {
                        kind: EntryKind::File,
                        mtime_ms: server_ms,
                    });
                    entry.mtime_ms = server_ms;
                }
                None => return cannot("No such file or directory"),
            },
            Place::BelowHeartbeat => return cannot("Not a directory"),
            Place::Shared(resolved) => {
                self.shared_files.insert(resolved, server_ms);
            }
            Place::Local(resolved) => {
                let node_ms = self.node_time_ms(node);
                self.nodes[node].local_files.insert(resolved, node_ms);
            }
        }
        Outcome::ok(Value::Unit)
    }

    fn find_processes(&mut self, node: usize, pattern: &str) -> Vec<u32> {
        let compiled = self
            .patterns
            .entry(pattern.to_string())
            .or_insert_with(|| Pattern::new(pattern).ok());
        let Some(compiled) = compiled else {
            return Vec::new();
        };
        // Apps are kept in start order and PIDs only grow, so this is ascending already.
        self.nodes[node]
            .apps
            .iter()
            .filter(|app| compiled.is_match(app.command_line.as_bytes()))
            .map(|app| app.pid)
            .collect()
    }

    fn signal(&mut self, node: usize, pid: u32, signal: Signal) -> Outcome {
        if !self.nodes[node].apps.iter().any(|app| app.pid == pid) {
            return Outcome::failed(Value::Unit, format!("kill: ({pid}) - No such process"));
        }
        self.audit.signalled(signal == Signal::Kill);
        match (signal, self.on_sigterm) {
            (Signal::Kill, _) => self.end_app(node, pid),
            (Signal::Term, OnSigterm::Exit) => {
                let at = self.now_ms + self.exit_delay_ms;
                self.schedule(at, Timer::AppExit { node, pid });
            }
            (Signal::Term, OnSigterm::Ignore) => {}
        }
        Outcome::ok(Value::Unit)
    }

    fn start_app(&mut self, node: usize, command: &str, log_file: &str) {
        let pid = self.next_pid;
        self.next_pid += 1;
        let command_line = self
            .app_command_line
            .clone()
            .unwrap_or_else(|| format!("/bin/sh {command}"));
        let node_ms = self.node_time_ms(node);
        let state = &mut self.nodes[node];
        state.local_files.insert(resolve(log_file), node_ms);
        state.apps.push(App { pid, command_line });
        self.audit.app_started(self.now_ms);
        if let Some(lifetime) = self.lifetime_ms {
            self.schedule(self.now_ms + lifetime, Timer::AppExit { node, pid });
        }
    }

    /// Ends an app if it still runs (a SIGKILL may have beaten its SIGTERM exit).
    pub fn end_app(&mut self, node: usize, pid: u32) {
        let apps = &mut self.nodes[node].apps;
        if let Some(index) = apps.iter().position(|app| app.pid == pid) {
            apps.remove(index);
            self.audit.app_ended(self.now_ms);
        }
    }

    /// Every app of the node vanishes at once (a crash).
    pub fn end_all_apps(&mut self, node: usize) {
        let pids: Vec<u32> = self.nodes[node].apps.iter().map(|a| a.pid).collect();
        for pid in pids {
            self.end_app(node, pid);
        }
    }

    /// Creates (`present`) or removes the maintenance file at `path`, shared or on `node`.
    pub fn set_maintenance(&mut self, node: Option<usize>, path: &str, present: bool) {
        let resolved = resolve(path);
        let stamp_ms = node.map_or(self.server_time_ms(), |n| self.node_time_ms(n));
        let files = match node {
            Some(n) if self.shared_maintenance.is_none() => &mut self.nodes[n].local_files,
            _ => &mut self.shared_files,
        };
        if present {
            files.insert(resolved, stamp_ms);
        } else {
            files.remove(&resolved);
        }
    }

    /// A new entry in the heartbeat directory, stamped by the storage server.
    pub fn add_entry(&mut self, name: &str, kind: EntryKind) {
        let mtime_ms = self.server_time_ms();
        if let Some(entries) = self.entries.as_mut() {
            entries.insert(name.to_string(), Entry { kind, mtime_ms });
        }
    }

    pub fn delete_entry(&mut self, name: &str) {
        if let Some(entries) = self.entries.as_mut() {
            entries.remove(name);
        }
    }

    /// Removes (`exists` false) or creates an empty heartbeat directory.
    pub fn set_heartbeat_dir(&mut self, exists: bool) {
        match (exists, self.entries.is_some()) {
            (true, false) => self.entries = Some(BTreeMap::new()),
            (false, true) => self.entries = None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_lexically() {
        assert_eq!(resolve("./maintenance"), "/opt/app/maintenance");
        assert_eq!(resolve("heartbeat//a/"), "/opt/app/heartbeat/a");
        assert_eq!(resolve("../x/./y"), "/opt/x/y");
        assert_eq!(resolve("/var/hb"), "/var/hb");
    }
}
