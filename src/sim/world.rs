//! The simulated cluster: shared heartbeat directories, each on a storage of its own (one, or
//! one per site of the scenario), node-local files, clocks and process tables, all in virtual
//! milliseconds.
//!
//! Paths are resolved against every node's virtual working directory `VIRTUAL_CWD`. Each
//! heartbeat directory (and everything below it) is on its shared storage; so is the maintenance
//! file when the scenario says so (on the first storage); every other path is local to the
//! node. Each node has its own health on each storage, so that a node can lose a directory that
//! its peers still reach.
//!
//! The safe profile's operations (records with content, deadlines, the guard) are in the
//! submodules `records` and `guard`; the etcd cluster of the etcd backend in `etcd`.

mod etcd;
mod guard;
mod records;

use std::collections::{BTreeMap, HashMap};

use super::audit::Audit;
use super::request::{Outcome, Request, Value};
use super::scenario::{EntryKind, OnSigterm, Scenario};
use crate::pattern::Pattern;
use crate::words;
use crate::world::Signal;

pub use etcd::{ELECTION_MS as ETCD_ELECTION_MS, EtcdCluster, Link, PREFIX as ETCD_PREFIX};
pub use guard::Guard;

/// Every daemon's working directory.
pub const VIRTUAL_CWD: &str = "/opt/app";
/// Virtual time 0 on the wall clock, in milliseconds since the epoch.
const EPOCH_MS: i64 = 1_700_000_000_000;
/// The first PID handed to an app; PIDs are never reused within a run.
const FIRST_PID: u32 = 1000;
const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Every access fails with EIO.
    Failing,
    /// Every access blocks until the storage is restored.
    Hung,
    /// Every access takes this many more milliseconds.
    Slow(u64),
    /// Every write lands this many milliseconds after it was issued; `touch` does not wait for
    /// it, a safe write waits up to its deadline.
    Late(u64),
}

#[derive(Debug, Clone)]
struct Entry {
    kind: EntryKind,
    mtime_ms: i64,
    /// What a safe node wrote into it; bash and compat only touch.
    content: String,
}

/// What the shared storage holds: the heartbeat directory and the shared maintenance file.
#[derive(Debug, Clone, Default)]
struct Namespace {
    /// The heartbeat directory's entries, or `None` while it does not exist.
    entries: Option<BTreeMap<String, Entry>>,
    shared_files: BTreeMap<String, i64>,
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
    /// How each shared storage treats the node, by storage.
    pub storage: Vec<Health>,
    /// Virtual time at which the node booted; its boot clock is the time since.
    booted_at_ms: i64,
    /// The whole host is frozen: daemon, guard and apps do nothing.
    pub frozen: bool,
    /// How old (ms) an answer of `[ -f ]`, `ls` or `stat` on shared storage may be.
    cache_ms: u64,
    /// The node's attribute cache: when it was filled, and what it saw of each storage.
    cache: Option<(u64, Vec<Namespace>)>,
    /// How old (ms) the safe profile's listing of the heartbeat directory may be (a mount
    /// option: it never changes during a run).
    pub listing_cache_ms: u64,
    /// The node's cached listing of each heartbeat directory, by storage: when it was read,
    /// and the names it held.
    listings: BTreeMap<usize, (u64, Vec<String>)>,
    /// The daemon's storage operations that have not returned, by storage: a storage with one
    /// gets no new operation until it has (the real daemon's worker pools, `real/batch.rs`).
    pub behind: BTreeMap<usize, Behind>,
    pub guard: Guard,
}

/// A storage whose operation the daemon stopped waiting for before it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behind {
    /// When the operation returns (`u64::MAX` while the storage hangs).
    pub until_ms: u64,
    /// When its limit passed: before, the storage is only behind; after, it is overdue.
    pub overdue_ms: u64,
}

/// Where a path leads; heartbeat directories by the index of their storage.
enum Place {
    HeartbeatDir(usize),
    HeartbeatEntry(usize, String),
    /// Below an entry of a heartbeat directory: nothing the loop creates lives there.
    BelowHeartbeat(usize),
    /// The shared maintenance file, on the first storage.
    Shared(String),
    Local(String),
}

impl Place {
    /// The storage that holds it, if it is on one.
    fn storage(&self) -> Option<usize> {
        match self {
            Place::HeartbeatDir(storage)
            | Place::HeartbeatEntry(storage, _)
            | Place::BelowHeartbeat(storage) => Some(*storage),
            Place::Shared(_) => Some(0),
            Place::Local(_) => None,
        }
    }
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
    /// An app that ignored SIGTERM gets SIGKILL at the end of the guard's grace.
    AppKill { node: usize, pid: u32 },
    /// The node's boot clock may have reached its guard's deadline.
    GuardDeadline(usize),
    /// A write that was held up lands on the storage.
    Land(u64),
}

/// A write issued but not yet on the storage.
#[derive(Debug, Clone)]
struct Write {
    node: usize,
    path: String,
    /// A safe record; `None` for `touch`, which changes only the time.
    content: Option<String>,
}

pub struct Cluster {
    pub now_ms: u64,
    /// The heartbeat directory of each storage, resolved.
    heartbeat_dirs: Vec<String>,
    storages: Vec<Namespace>,
    /// Writes that wait for a hung storage: they land when it is restored, last one winning.
    hung_writes: BTreeMap<(usize, String), Write>,
    /// Writes that land late, by the number of their `Timer::Land`.
    late_writes: BTreeMap<u64, Write>,
    writes_held: u64,
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
    /// How many daemons asked for their incarnation: each gets the next number, so that no two
    /// runs of a daemon within a simulation share one.
    incarnations: u64,
    /// The etcd cluster of a scenario that has one.
    pub etcd: Option<EtcdCluster>,
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
    /// The cluster of a scenario: one storage holding `heartbeat_dir`, or one per site.
    pub fn new(scenario: &Scenario, heartbeat_dir: &str, maintenance_file: &str) -> Cluster {
        let heartbeat_dirs: Vec<String> = match scenario.sites.is_empty() {
            true => vec![resolve(heartbeat_dir)],
            false => scenario
                .sites
                .iter()
                .map(|site| resolve(&site.dir))
                .collect(),
        };
        let entries = (!scenario.storage.heartbeat_dir_missing).then(|| {
            scenario
                .storage
                .entries
                .iter()
                .map(|e| {
                    let entry = Entry {
                        kind: e.kind,
                        mtime_ms: EPOCH_MS + e.mtime.millis(),
                        content: String::new(),
                    };
                    (e.name.clone(), entry)
                })
                .collect()
        });
        let nodes = scenario
            .nodes
            .iter()
            .enumerate()
            .map(|(index, n)| Node {
                name: n.name.clone(),
                clock_skew_ms: n.clock_skew.millis(),
                local_files: BTreeMap::new(),
                apps: Vec::new(),
                storage: vec![Health::Healthy; heartbeat_dirs.len()],
                // Hosts have been up for different times, so their boot clocks differ.
                booted_at_ms: -(index as i64 + 1) * HOUR_MS,
                frozen: false,
                cache_ms: 0,
                cache: None,
                listing_cache_ms: n.listing_cache.millis() as u64,
                listings: BTreeMap::new(),
                behind: BTreeMap::new(),
                guard: Guard::default(),
            })
            .collect();
        let mut cluster = Cluster {
            now_ms: 0,
            storages: vec![
                Namespace {
                    entries,
                    shared_files: BTreeMap::new(),
                };
                heartbeat_dirs.len()
            ],
            heartbeat_dirs,
            hung_writes: BTreeMap::new(),
            late_writes: BTreeMap::new(),
            writes_held: 0,
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
            incarnations: 0,
            etcd: scenario
                .etcd
                .as_ref()
                .map(|etcd| EtcdCluster::new(etcd.members, scenario.nodes.len())),
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

    /// A number no other daemon start of this run has had.
    pub fn next_incarnation(&mut self) -> u64 {
        self.incarnations += 1;
        self.incarnations
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
        for (storage, dir) in self.heartbeat_dirs.iter().enumerate() {
            if resolved == *dir {
                return Place::HeartbeatDir(storage);
            }
            if let Some(rest) = resolved.strip_prefix(&format!("{dir}/")) {
                return match rest.split_once('/') {
                    None => Place::HeartbeatEntry(storage, rest.to_string()),
                    Some(_) => Place::BelowHeartbeat(storage),
                };
            }
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
            | Request::Touch(path)
            | Request::FileExists { path, .. } => self.is_shared(path),
            Request::StorageBatch { ops, .. } => ops.iter().any(|op| self.is_shared(op.path())),
            _ => false,
        }
    }

    /// The shared storage that holds a path, if one does.
    pub fn storage_of(&self, path: &str) -> Option<usize> {
        self.place(path).storage()
    }

    /// Whether a path is on a shared storage.
    fn is_shared(&self, path: &str) -> bool {
        self.place(path).storage().is_some()
    }

    /// How the storage that holds `path` treats the node: a node's own files always work.
    fn health(&self, node: usize, path: &str) -> Health {
        self.place(path)
            .storage()
            .map_or(Health::Healthy, |storage| self.nodes[node].storage[storage])
    }

    /// The path a request of the script's commands acts on, if any.
    fn script_path(request: &Request) -> Option<&str> {
        match request {
            Request::IsRegularFile(path)
            | Request::NewestEntry(path)
            | Request::ModificationTime(path)
            | Request::Touch(path) => Some(path),
            _ => None,
        }
    }

    /// Whether the request blocks its daemon while the storage hangs: every storage command
    /// of the script does; the safe profile's operations time out instead.
    pub fn blocks_on_hung_storage(&self, node: usize, request: &Request) -> bool {
        Cluster::script_path(request).is_some_and(|path| self.health(node, path) == Health::Hung)
    }

    /// The node's boot clock.
    pub fn elapsed_ms(&self, node: usize) -> u64 {
        let elapsed = self.now_ms as i64 - self.nodes[node].booted_at_ms;
        assert!(elapsed >= 0, "a node's boot clock is never negative");
        elapsed as u64
    }

    /// Refills the node's attribute cache when its content is older than allowed.
    fn refresh_cache(&mut self, node: usize) {
        let now = self.now_ms;
        let state = &mut self.nodes[node];
        if state.cache_ms == 0 {
            state.cache = None;
        } else if state
            .cache
            .as_ref()
            .is_none_or(|(filled, _)| now - filled >= state.cache_ms)
        {
            state.cache = Some((now, self.storages.clone()));
        }
    }

    /// What the node's `[ -f ]`, `ls` and `stat` see of a shared storage: its attribute
    /// cache, or the storage itself.
    fn view(&self, node: usize, storage: usize) -> &Namespace {
        self.nodes[node]
            .cache
            .as_ref()
            .map_or(&self.storages[storage], |(_, cached)| &cached[storage])
    }

    /// Serves one request of `node` at the current time; returns its outcome and how many
    /// milliseconds it took.
    pub fn serve(&mut self, node: usize, request: &Request, latency_ms: u64) -> (Outcome, u64) {
        assert!(!self.nodes[node].frozen, "a frozen node makes no request");
        if let Request::Etcd { request, limit_ms } = request {
            return self.serve_etcd(node, request, *limit_ms, latency_ms);
        }
        if request.limit_ms().is_some() || matches!(request, Request::Touch(_)) {
            // Writes (and the safe profile's operations) have their own rules for faults.
            return self.serve_storage(node, request, latency_ms);
        }
        if let Some(outcome) = self.serve_host_op(node, request, latency_ms) {
            return outcome;
        }
        self.refresh_cache(node);
        let health =
            Cluster::script_path(request).map_or(Health::Healthy, |path| self.health(node, path));
        let failing = health == Health::Failing;
        let mut cost = latency_ms;
        if let Health::Slow(extra) = health {
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
            Request::NewestEntry(dir) => self.newest_entry(node, dir, failing),
            Request::ModificationTime(path) => self.modification_time(node, path, failing),
            Request::FindProcesses(pattern) => {
                Outcome::ok(Value::Pids(self.find_processes(node, pattern)))
            }
            Request::Signal(pid, signal) => self.signal(node, *pid, *signal),
            Request::StartDetached { command, log_file } => {
                self.start_app(node, command, log_file);
                Outcome::ok(Value::Unit)
            }
            Request::Print(_) | Request::PrintError(_) => Outcome::ok(Value::Unit),
            other => unreachable!("{other} is served elsewhere"),
        };
        (outcome, cost)
    }

    fn is_regular_file(&self, node: usize, path: &str) -> bool {
        match self.place(path) {
            Place::HeartbeatDir(_) | Place::BelowHeartbeat(_) => false,
            Place::HeartbeatEntry(storage, name) => self
                .view(node, storage)
                .entries
                .as_ref()
                .and_then(|entries| entries.get(&name))
                .is_some_and(|e| e.kind == EntryKind::File),
            Place::Shared(resolved) => self.view(node, 0).shared_files.contains_key(&resolved),
            Place::Local(resolved) => self.nodes[node].local_files.contains_key(&resolved),
        }
    }

    /// `ls -1tr DIR | tail -1`: the newest visible entry; equal times go to the smallest name,
    /// which is where `ls -t` puts it before `-r` reverses the list.
    fn newest_entry(&self, node: usize, dir: &str, failing: bool) -> Outcome {
        let cannot = |why: &str| {
            Outcome::failed(
                Value::Name(String::new()),
                format!("ls: cannot access '{dir}': {why}"),
            )
        };
        if failing {
            return cannot("Input/output error");
        }
        let entries = match self.place(dir) {
            Place::HeartbeatDir(storage) => match &self.view(node, storage).entries {
                Some(entries) => entries,
                None => return cannot("No such file or directory"),
            },
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
            Place::HeartbeatDir(storage) => {
                self.view(node, storage).entries.as_ref().map(|_| EPOCH_MS)
            }
            Place::HeartbeatEntry(storage, name) => self
                .view(node, storage)
                .entries
                .as_ref()
                .and_then(|entries| entries.get(&name))
                .map(|e| e.mtime_ms),
            Place::BelowHeartbeat(_) => None,
            Place::Shared(resolved) => self.view(node, 0).shared_files.get(&resolved).copied(),
            Place::Local(resolved) => self.nodes[node].local_files.get(&resolved).copied(),
        };
        match mtime_ms {
            Some(ms) => Outcome::ok(Value::MaybeSeconds(Some(ms.div_euclid(1000)))),
            None => cannot("No such file or directory"),
        }
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

    fn start_app(&mut self, node: usize, command: &str, log_file: &str) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        // The kernel shows the words exec received, whatever blanks separated them in startCmd.
        let command_line = self.app_command_line.clone().unwrap_or_else(|| {
            format!(
                "/bin/sh {}",
                words::fields(command).collect::<Vec<_>>().join(" ")
            )
        });
        let node_ms = self.node_time_ms(node);
        let state = &mut self.nodes[node];
        assert!(!state.frozen, "a frozen node starts nothing");
        state.local_files.insert(resolve(log_file), node_ms);
        state.apps.push(App { pid, command_line });
        self.audit.app_started(self.now_ms);
        if let Some(lifetime) = self.lifetime_ms {
            self.schedule(self.now_ms + lifetime, Timer::AppExit { node, pid });
        }
        pid
    }

    /// Ends an app if it still runs (a SIGKILL may have beaten its SIGTERM exit). An app of a
    /// frozen host was not executing, so the audit's count does not change.
    pub fn end_app(&mut self, node: usize, pid: u32) {
        let state = &mut self.nodes[node];
        if let Some(index) = state.apps.iter().position(|app| app.pid == pid) {
            state.apps.remove(index);
            state.guard.app_ended(pid);
            if !state.frozen {
                self.audit.app_ended(self.now_ms);
            }
        }
    }

    /// The host goes down: its apps, its guard and its attribute cache vanish at once.
    pub fn crash_host(&mut self, node: usize) {
        let pids: Vec<u32> = self.nodes[node].apps.iter().map(|a| a.pid).collect();
        for pid in pids {
            self.end_app(node, pid);
        }
        let state = &mut self.nodes[node];
        state.frozen = false;
        state.guard = Guard::default();
        state.cache = None;
        state.listings.clear();
        state.behind.clear();
    }

    /// The host boots: its boot clock starts again from zero.
    pub fn boot_host(&mut self, node: usize) {
        self.nodes[node].booted_at_ms = self.now_ms as i64;
    }

    /// Every app of the node dies (the app crash event).
    pub fn end_all_apps(&mut self, node: usize) {
        let pids: Vec<u32> = self.nodes[node].apps.iter().map(|a| a.pid).collect();
        for pid in pids {
            self.end_app(node, pid);
        }
    }

    /// Freezes (`frozen`) or thaws the whole host; its apps stop or resume executing.
    pub fn set_frozen(&mut self, node: usize, frozen: bool) {
        let state = &mut self.nodes[node];
        if state.frozen == frozen {
            return;
        }
        state.frozen = frozen;
        let count = state.apps.len() as u32;
        if frozen {
            self.audit.suspended(self.now_ms, count);
        } else {
            self.audit.resumed(self.now_ms, count);
        }
    }

    /// Moves the node's wall clock (`date +%s`), or with `None` the storage server's.
    pub fn jump_clock(&mut self, node: Option<usize>, by_ms: i64) {
        match node {
            Some(node) => self.nodes[node].clock_skew_ms += by_ms,
            None => self.server_skew_ms += by_ms,
        }
    }

    /// Lets the node's `[ -f ]`, `ls` and `stat` answer from a cache up to `ms` old (0: none).
    pub fn set_attribute_cache(&mut self, node: usize, ms: u64) {
        self.nodes[node].cache_ms = ms;
        self.nodes[node].cache = None;
    }

    /// The number of app processes the node runs, frozen or not.
    pub fn app_count(&self, node: usize) -> usize {
        self.nodes[node].apps.len()
    }

    /// Whether the maintenance file exists for the node.
    pub fn in_maintenance(&self, node: usize, path: &str) -> bool {
        let resolved = resolve(path);
        match &self.shared_maintenance {
            Some(_) => self.storages[0].shared_files.contains_key(&resolved),
            None => self.nodes[node].local_files.contains_key(&resolved),
        }
    }

    /// Whether every heartbeat directory exists.
    pub fn heartbeat_dirs_exist(&self) -> bool {
        self.storages
            .iter()
            .all(|storage| storage.entries.is_some())
    }

    /// The storages an event of `site` hits: that one, or without a site every one.
    pub fn storages_hit(&self, site: Option<usize>) -> Vec<usize> {
        match site {
            Some(storage) => vec![storage],
            None => (0..self.storages.len()).collect(),
        }
    }

    /// Creates (`present`) or removes the maintenance file at `path`, shared or on `node`.
    pub fn set_maintenance(&mut self, node: Option<usize>, path: &str, present: bool) {
        let resolved = resolve(path);
        let stamp_ms = node.map_or(self.server_time_ms(), |n| self.node_time_ms(n));
        let files = match node {
            Some(n) if self.shared_maintenance.is_none() => &mut self.nodes[n].local_files,
            _ => &mut self.storages[0].shared_files,
        };
        if present {
            files.insert(resolved, stamp_ms);
        } else {
            files.remove(&resolved);
        }
    }

    /// A new entry in a heartbeat directory, stamped by the storage server.
    pub fn add_entry(&mut self, storage: usize, name: &str, kind: EntryKind) {
        let mtime_ms = self.server_time_ms();
        if let Some(entries) = self.storages[storage].entries.as_mut() {
            let entry = Entry {
                kind,
                mtime_ms,
                content: String::new(),
            };
            entries.insert(name.to_string(), entry);
        }
    }

    pub fn delete_entry(&mut self, storage: usize, name: &str) {
        if let Some(entries) = self.storages[storage].entries.as_mut() {
            entries.remove(name);
        }
    }

    /// Replaces an entry (or nothing) by an empty directory of the same name, in one step, as
    /// `rm NAME && mkdir NAME` seen by a host that looked before and after.
    pub fn replace_by_dir(&mut self, storage: usize, name: &str) {
        self.delete_entry(storage, name);
        self.add_entry(storage, name, EntryKind::Dir);
    }

    /// Removes (`exists` false) or creates an empty heartbeat directory.
    pub fn set_heartbeat_dir(&mut self, storage: usize, exists: bool) {
        let entries = &mut self.storages[storage].entries;
        match (exists, entries.is_some()) {
            (true, false) => *entries = Some(BTreeMap::new()),
            (false, true) => *entries = None,
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
