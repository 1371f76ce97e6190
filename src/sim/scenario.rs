//! The scenario file format (TOML); tests/shell-parity/README.md documents it for users.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::limits;

/// A duration or instant in seconds, written as an integer or a decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Seconds {
    Whole(i64),
    Fraction(f64),
}

impl Seconds {
    pub const ZERO: Seconds = Seconds::Whole(0);

    /// The value in milliseconds, rounded to the nearest one.
    pub fn millis(self) -> i64 {
        match self {
            Seconds::Whole(seconds) => seconds.saturating_mul(1000),
            Seconds::Fraction(seconds) => (seconds * 1000.0).round() as i64,
        }
    }
}

impl Default for Seconds {
    fn default() -> Self {
        Seconds::ZERO
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Virtual seconds the run lasts.
    pub duration: u64,
    /// Breaks ties between nodes that are ready at the same millisecond.
    #[serde(default)]
    pub seed: u64,
    /// Virtual milliseconds every operation other than `sleep` takes.
    #[serde(default = "default_latency")]
    pub op_latency_ms: u64,
    /// Values that replace the script's own assignments, on every node.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub app: AppSpec,
    #[serde(default)]
    pub storage: StorageSpec,
    /// Several heartbeat directories, each on a shared storage of its own (a data centre's, a
    /// witness's): the safe profile keeps its records in all of them (hacmpHeartBeatDirs),
    /// bash and compat in heartBeatDir, which must be one of them. Without sites, the one
    /// shared storage holds heartBeatDir.
    #[serde(default, rename = "site", skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteSpec>,
    /// An etcd cluster: the safe nodes keep their lease in it (hacmpBackend=etcd) instead of
    /// the heartbeat directory. Such a scenario runs on all-safe clusters only: bash and the
    /// compat profile have no etcd backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdSpec>,
    #[serde(rename = "node")]
    pub nodes: Vec<NodeSpec>,
    #[serde(default, rename = "event")]
    pub events: Vec<EventSpec>,
    /// Lets a safe daemon start on a node whose mount caches directory listings, which the
    /// safe profile refuses. Only code sets it (a scenario file cannot): it exists so that a
    /// test can show what the refusal prevents.
    #[serde(skip)]
    pub allow_listing_cache: bool,
}

fn default_latency() -> u64 {
    1
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    /// When the daemon first starts.
    #[serde(default)]
    pub start: Seconds,
    /// How far the node's clock (`date +%s`) is ahead of true time; negative is behind.
    #[serde(default)]
    pub clock_skew: Seconds,
    /// systemd's `Restart=on-failure`: start the daemon again 100 ms after it exits non-zero.
    #[serde(default = "default_true")]
    pub restart_on_failure: bool,
    /// How old (seconds) a listing of the heartbeat directory may be when the node's mount
    /// answers from its cache (NFS acdirmin/acdirmax): the safe profile's listing sees new
    /// entries that late. A mount option, so it holds for the whole run; a safe daemon refuses
    /// to start on such a node.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub listing_cache: Seconds,
    /// With several sites: the sites whose directories this node's safe daemon lists, in its
    /// order, when they differ from the scenario's (a host configured with another list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
}

fn is_zero(seconds: &Seconds) -> bool {
    seconds.millis() == 0
}

/// A shared storage of its own, holding one heartbeat directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    /// What events call it: dc1, dc2, witness.
    pub name: String,
    /// The heartbeat directory it holds, an absolute path.
    pub dir: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnSigterm {
    #[default]
    Exit,
    Ignore,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// The command line the kernel shows for a started app; default "/bin/sh " + startCmd.
    #[serde(default)]
    pub command_line: Option<String>,
    #[serde(default)]
    pub on_sigterm: OnSigterm,
    /// How long the app takes to exit after SIGTERM (when on_sigterm = "exit").
    #[serde(default)]
    pub exit_delay: Seconds,
    /// The app crashes by itself this long after every start.
    #[serde(default)]
    pub lifetime: Option<Seconds>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    #[default]
    File,
    Dir,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    /// How far the storage server's clock (which stamps `touch`) is ahead of true time.
    #[serde(default)]
    pub server_skew: Seconds,
    /// The maintenance file lives on the shared storage, so one file affects every node.
    #[serde(default)]
    pub shared_maintenance: bool,
    /// The heartbeat directory does not exist when the run starts.
    #[serde(default)]
    pub heartbeat_dir_missing: bool,
    /// Entries already in the heartbeat directory at the start.
    #[serde(default, rename = "entry")]
    pub entries: Vec<InitialEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdSpec {
    /// How many members the etcd cluster has; all run at the start, and member 0 leads.
    pub members: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialEntry {
    pub name: String,
    #[serde(default)]
    pub kind: EntryKind,
    /// Its modification time, relative to the start of the run (negative: before it).
    #[serde(default)]
    pub mtime: Seconds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Crash,
    Reboot,
    DaemonKill,
    DaemonStart,
    Pause,
    Resume,
    AppCrash,
    /// The safe profile's guard dies (kill -9, a crash); its application's tree runs on until
    /// the daemon finds the guard gone. Nothing happens on a node without a guard.
    GuardKill,
    MaintenanceOn,
    MaintenanceOff,
    StorageFail,
    StorageHang,
    StorageSlow,
    StorageRestore,
    StrayEntry,
    DeleteEntry,
    /// An entry is replaced by a directory of the same name, in one step.
    ReplaceByDir,
    RemoveDir,
    CreateDir,
    /// The whole host stops (daemon, guard, apps) until `thaw`.
    Freeze,
    Thaw,
    /// The node's wall clock, or without a node the storage server's, jumps by `seconds`.
    ClockJump,
    /// The node's `[ -f ]`, `ls` and `stat` answer from a cache up to `seconds` old.
    AttributeCache,
    /// The node's writes land `extra_ms` after they were issued.
    StorageLate,
    /// An etcd member (`member`, counted from 0) stops; if it led, the others elect a leader.
    EtcdMemberDown,
    EtcdMemberUp,
    /// The etcd leader steps down and another member is elected.
    EtcdLeaderChange,
    /// The node's link to every etcd member is cut, until `etcd_heal`.
    EtcdPartition,
    /// The node's answers from etcd come `extra_ms` late, until `etcd_heal`.
    EtcdSlow,
    EtcdHeal,
    /// `hacmp maintenance on|off` with the etcd backend: the maintenance key is set or deleted.
    EtcdMaintenanceOn,
    EtcdMaintenanceOff,
}

impl Action {
    /// Whether the action happens on one node (and so needs `node`); `None` when it may.
    fn needs_node(self, shared_maintenance: bool) -> Option<bool> {
        Some(match self {
            Action::ClockJump => return None,
            Action::MaintenanceOn | Action::MaintenanceOff => !shared_maintenance,
            Action::StrayEntry
            | Action::DeleteEntry
            | Action::ReplaceByDir
            | Action::RemoveDir
            | Action::CreateDir
            | Action::EtcdMemberDown
            | Action::EtcdMemberUp
            | Action::EtcdLeaderChange
            | Action::EtcdMaintenanceOn
            | Action::EtcdMaintenanceOff => false,
            _ => true,
        })
    }

    /// Whether the action changes how a shared storage treats a node.
    pub fn is_storage_health(self) -> bool {
        matches!(
            self,
            Action::StorageFail
                | Action::StorageHang
                | Action::StorageSlow
                | Action::StorageLate
                | Action::StorageRestore
        )
    }

    /// Whether the action changes the entries of the heartbeat directory.
    fn is_entry_change(self) -> bool {
        matches!(
            self,
            Action::StrayEntry
                | Action::DeleteEntry
                | Action::ReplaceByDir
                | Action::RemoveDir
                | Action::CreateDir
        )
    }

    /// Whether the action takes `extra_ms`, which it then needs.
    fn takes_extra_ms(self) -> bool {
        matches!(
            self,
            Action::StorageSlow | Action::StorageLate | Action::EtcdSlow
        )
    }

    /// Whether the action acts on the scenario's etcd cluster, which it then needs.
    pub fn on_etcd(self) -> bool {
        matches!(
            self,
            Action::EtcdMemberDown
                | Action::EtcdMemberUp
                | Action::EtcdLeaderChange
                | Action::EtcdPartition
                | Action::EtcdSlow
                | Action::EtcdHeal
                | Action::EtcdMaintenanceOn
                | Action::EtcdMaintenanceOff
        )
    }

    /// Whether the action takes `member`, which it then needs.
    fn takes_member(self) -> bool {
        matches!(self, Action::EtcdMemberDown | Action::EtcdMemberUp)
    }

    /// Whether the action takes `seconds`, which it then needs.
    fn takes_seconds(self) -> bool {
        matches!(self, Action::ClockJump | Action::AttributeCache)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub at: Seconds,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The site a storage or entry event hits; without one it hits every site (in a scenario
    /// without sites, the one shared storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The heartbeat-directory entry of stray_entry, delete_entry and replace_by_dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EntryKind>,
    /// The etcd member of etcd_member_down and etcd_member_up, counted from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<usize>,
    /// The added latency of storage_slow and etcd_slow, or the delay of storage_late, in
    /// milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_ms: Option<u64>,
    /// The jump of clock_jump (negative: backwards), or the age limit of attribute_cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<Seconds>,
}

impl EventSpec {
    /// An event with no options: `at`, `action`, and the node it happens to, if any.
    pub fn new(at: Seconds, action: Action, node: Option<&str>) -> EventSpec {
        EventSpec {
            at,
            action,
            node: node.map(str::to_string),
            site: None,
            name: None,
            kind: None,
            member: None,
            extra_ms: None,
            seconds: None,
        }
    }
}

/// The variables a scenario may override; hostName is always the node's name.
const OVERRIDABLE: [&str; 7] = [
    "pgrepProgramName",
    "startCmd",
    "startCmdLogFile",
    "maintenanceFile",
    "heartBeatDir",
    "faileOverTime",
    "loopTime",
];

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let scenario: Scenario =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        scenario
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(scenario)
    }

    /// Every scenario file (`*.toml`) of a directory, in the order of their names.
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, String> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| format!("{}: cannot read: {e}", dir.display()))?
                .path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
            if paths.len() > limits::MAX_SCENARIO_FILES {
                return Err(format!(
                    "{}: more than {} scenario files",
                    dir.display(),
                    limits::MAX_SCENARIO_FILES
                ));
            }
        }
        paths.sort();
        paths.iter().map(|path| Scenario::load(path)).collect()
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a scenario always serializes")
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    pub fn site_index(&self, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| s.name == name)
    }

    /// Checks the sites: plain, distinct names; absolute, distinct directories; and
    /// heartBeatDir, which bash and compat nodes use, set to one of them.
    fn check_sites(&self) -> Result<(), String> {
        if self.sites.is_empty() {
            return Ok(());
        }
        if self.sites.len() > limits::MAX_SITES {
            return Err(format!("at most {} sites", limits::MAX_SITES));
        }
        for (index, site) in self.sites.iter().enumerate() {
            if !is_plain_name(&site.name) {
                return Err(format!(
                    "site name {:?}: use letters, digits, - and _",
                    site.name
                ));
            }
            let earlier = &self.sites[..index];
            if earlier.iter().any(|s| s.name == site.name) {
                return Err(format!("site name {:?} is used twice", site.name));
            }
            if !site.dir.starts_with('/') || earlier.iter().any(|s| s.dir == site.dir) {
                return Err(format!(
                    "site {}: dir must be an absolute path of its own",
                    site.name
                ));
            }
        }
        match self.variables.get("heartBeatDir") {
            Some(dir) if self.sites.iter().any(|s| &s.dir == dir) => Ok(()),
            _ => Err(
                "variables: heartBeatDir must be set to one of the sites' dirs (bash and compat use it)"
                    .to_string(),
            ),
        }
    }

    /// Checks everything the simulator relies on, with the limits that keep a run bounded.
    pub fn check(&self) -> Result<(), String> {
        if self.nodes.is_empty() || self.nodes.len() > limits::MAX_NODES {
            return Err(format!("needs 1 to {} nodes", limits::MAX_NODES));
        }
        if self.duration == 0 || self.duration > limits::MAX_DURATION_SECONDS {
            return Err(format!(
                "duration must be 1 to {} seconds",
                limits::MAX_DURATION_SECONDS
            ));
        }
        if self.events.len() > limits::MAX_EVENTS {
            return Err(format!("at most {} events", limits::MAX_EVENTS));
        }
        if self.op_latency_ms > limits::MAX_LATENCY_MS {
            return Err(format!("op_latency_ms above {}", limits::MAX_LATENCY_MS));
        }
        self.check_sites()?;
        for (index, node) in self.nodes.iter().enumerate() {
            if !is_plain_name(&node.name) {
                return Err(format!(
                    "node name {:?}: use letters, digits, - and _",
                    node.name
                ));
            }
            if self.nodes[..index].iter().any(|n| n.name == node.name) {
                return Err(format!("node name {:?} is used twice", node.name));
            }
            if node.start.millis() < 0 {
                return Err(format!("node {}: start is negative", node.name));
            }
            let cache_ms = node.listing_cache.millis();
            if cache_ms < 0 || cache_ms as u64 > limits::MAX_JUMP_SECONDS * 1000 {
                return Err(format!(
                    "node {}: listing_cache must be 0 to {} seconds",
                    node.name,
                    limits::MAX_JUMP_SECONDS
                ));
            }
        }
        for name in self.variables.keys() {
            if !OVERRIDABLE.contains(&name.as_str()) {
                return Err(format!(
                    "variables: {name} cannot be overridden (one of {})",
                    OVERRIDABLE.join(", ")
                ));
            }
        }
        if let Some(log) = self.variables.get("startCmdLogFile")
            && log.starts_with('/')
        {
            return Err(
                "variables: startCmdLogFile must be relative: bash creates it for real in the node's directory"
                    .to_string(),
            );
        }
        for (index, event) in self.events.iter().enumerate() {
            let at = event.at.millis();
            let context = format!("event {} ({:?} at {at} ms)", index + 1, event.action);
            if at < 0 || at as u64 > self.duration * 1000 {
                return Err(format!("{context}: time outside the run"));
            }
            if let Some(site) = &event.site {
                if self.site_index(site).is_none() {
                    return Err(format!("{context}: no site named {site:?}"));
                }
                if !event.action.is_storage_health() && !event.action.is_entry_change() {
                    return Err(format!(
                        "{context}: site is for storage and heartbeat-directory events"
                    ));
                }
            }
            // A storage event on a site without a node hits every node: the site is lost.
            let needs_node = match event.site {
                Some(_) if event.action.is_storage_health() => None,
                _ => event.action.needs_node(self.storage.shared_maintenance),
            };
            match (&event.node, needs_node) {
                (Some(node), Some(true) | None) if self.node_index(node).is_none() => {
                    return Err(format!("{context}: no node named {node:?}"));
                }
                (None, Some(true)) => return Err(format!("{context}: needs node")),
                (Some(_), Some(false)) => return Err(format!("{context}: takes no node")),
                _ => {}
            }
            let needs_name = matches!(
                event.action,
                Action::StrayEntry | Action::DeleteEntry | Action::ReplaceByDir
            );
            if needs_name != event.name.is_some() {
                return Err(format!(
                    "{context}: name is for stray_entry, delete_entry and replace_by_dir, which need it"
                ));
            }
            if event
                .name
                .as_deref()
                .is_some_and(|name| !is_entry_name(name))
            {
                return Err(format!(
                    "{context}: name must be one non-empty path component"
                ));
            }
            if event.kind.is_some() && event.action != Action::StrayEntry {
                return Err(format!("{context}: kind is for stray_entry"));
            }
            if event.action.takes_extra_ms() != event.extra_ms.is_some() {
                return Err(format!(
                    "{context}: extra_ms is for storage_slow, storage_late and etcd_slow, which need it"
                ));
            }
            if event.action.on_etcd() && self.etcd.is_none() {
                return Err(format!("{context}: needs an [etcd] cluster"));
            }
            if event.action.takes_member() != event.member.is_some() {
                return Err(format!(
                    "{context}: member is for etcd_member_down and etcd_member_up, which need it"
                ));
            }
            let members = self.etcd.as_ref().map_or(0, |etcd| etcd.members);
            if event.member.is_some_and(|member| member >= members) {
                return Err(format!(
                    "{context}: member must be below the {members} members"
                ));
            }
            if event.action.takes_seconds() != event.seconds.is_some() {
                return Err(format!(
                    "{context}: seconds is for clock_jump and attribute_cache, which need it"
                ));
            }
            let seconds = event.seconds.map_or(0, Seconds::millis);
            if seconds.unsigned_abs() > limits::MAX_JUMP_SECONDS * 1000
                || (event.action == Action::AttributeCache && seconds < 0)
            {
                return Err(format!(
                    "{context}: seconds must be within ±{} (and not negative for a cache)",
                    limits::MAX_JUMP_SECONDS
                ));
            }
            if event.extra_ms.is_some_and(|ms| ms > limits::MAX_LATENCY_MS) {
                return Err(format!(
                    "{context}: extra_ms above {}",
                    limits::MAX_LATENCY_MS
                ));
            }
        }
        if let Some(entry) = self
            .storage
            .entries
            .iter()
            .find(|e| !is_entry_name(&e.name))
        {
            return Err(format!(
                "storage entry {:?}: name must be one non-empty path component",
                entry.name
            ));
        }
        if self
            .etcd
            .as_ref()
            .is_some_and(|etcd| etcd.members == 0 || etcd.members > limits::MAX_ETCD_MEMBERS)
        {
            return Err(format!(
                "etcd: members must be 1 to {}",
                limits::MAX_ETCD_MEMBERS
            ));
        }
        if self.app.exit_delay.millis() < 0 || self.app.lifetime.is_some_and(|l| l.millis() <= 0) {
            return Err("app: exit_delay must be >= 0 and lifetime > 0".to_string());
        }
        Ok(())
    }
}

/// A node's or site's name: letters, digits, - and _, not starting with - or `.`.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A name that can be an entry of the heartbeat directory.
fn is_entry_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}
