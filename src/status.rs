//! `hacmp status`: who is master, how old every heartbeat is, whether maintenance is on and
//! whether this host's application runs — judged exactly as the loop judges them.
//!
//! What depends on the store that holds the lease comes from its `operator::LeaseStore`; this
//! module adds what every store shares. The JSON form is a stable interface, documented in
//! docs/status-json.md; its `schema` number changes whenever a field changes meaning or
//! disappears.

use serde::Serialize;

use crate::config::{Profile, Store, Variables};
use crate::operator::etcd::Etcd;
use crate::operator::{self, Heartbeat, LeaseStore, StoreDetails, StoreNode, SwitchReading};
use crate::real::etcd::Cluster;
use crate::real::metrics::{LookAtMachine, Machine};
use crate::real::state::{self, DaemonState};
use crate::real::{files, processes};
use crate::table::{self, Tone};

/// The version of the JSON schema (docs/status-json.md).
pub const SCHEMA: u32 = 3;
/// Where `hacmp status` without FILE looks for the variables first.
pub const INSTALLED_FILE: &str = "/etc/hacmp/heartbeat.vars";
/// Names another file than `INSTALLED_FILE` (for tests, and hosts that keep it elsewhere).
pub const INSTALLED_FILE_VARIABLE: &str = "HACMP_VARIABLE_FILE";
/// How much of a maintenance note is shown: it is a note for people, not a data file.
const MAX_MAINTENANCE_NOTE: usize = 4096;

#[derive(Serialize)]
pub struct Status {
    pub schema: u32,
    pub host_name: String,
    /// hacmpProfile: "compat" or "safe".
    pub profile: &'static str,
    pub heartbeat_dir: String,
    pub faile_over_time: u64,
    /// This host's clock, in seconds since the epoch (`date +%s`).
    pub now: i64,
    /// The host the loop would take as master now: the newest heartbeat (`ls -1tr | tail -1`),
    /// or the leader key's holder.
    pub master: Option<String>,
    /// Whether that master's heartbeat is younger than faileOverTime (or its key held).
    pub master_alive: bool,
    pub heartbeats: Vec<Heartbeat>,
    /// Every node the store shows, and every daemon of this cluster whose state file this host
    /// holds.
    pub nodes: Vec<Node>,
    /// What status cannot see, in one line.
    pub nodes_unseen: &'static str,
    /// No live master, and no daemon of this cluster runs on this host: as far as status can
    /// see, nothing will start the application.
    pub no_daemon_seen: bool,
    /// The store's own fields: `heartbeat_dirs` and `quorum`, or `etcd`.
    #[serde(flatten)]
    pub store: serde_json::Map<String, serde_json::Value>,
    pub maintenance: Maintenance,
    pub application: Application,
    pub warnings: Vec<String>,
    #[serde(skip)]
    details: Box<dyn StoreDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    pub active: bool,
    pub file: String,
    /// The file's text (who, when, why) when it has any.
    pub note: Option<String>,
    /// The store's own switch (etcd's maintenance key), which every node obeys as it obeys the
    /// file; absent when the store keeps none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<MaintenanceKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceKey {
    /// Its name in the store (etcd: the key).
    pub key: String,
    /// Where it lives, for people.
    #[serde(skip)]
    pub place: String,
    /// Whether it is on; false also when it could not be read (the warnings then say so).
    pub set: bool,
    /// Its value (who, when, why, when set by `hacmp maintenance on`).
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Application {
    pub running: bool,
    pub pids: Vec<u32>,
    /// The long wait this host's daemon is in, if any: a start or a kill that is coming.
    pub pending: Option<Pending>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// "recheck before start" or "killing local instances".
    pub what: String,
    pub seconds_left: u64,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub host: String,
    /// "master", "standby", "claiming", "starting", "fenced", "maintenance" or "stopped"; null
    /// when neither the store nor a daemon on this host says (an old heartbeat).
    pub role: Option<String>,
    /// Its lease or heartbeat, in words.
    pub state: String,
    /// How old its heartbeat is; null without one.
    pub age_seconds: Option<i64>,
    /// Its daemon, when this host holds its state file.
    pub daemon: Option<Daemon>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Daemon {
    pub pid: u32,
    pub running: bool,
    /// How long ago it last wrote its state (after each round, and at each change).
    pub seconds_since_report: i64,
}

/// Exit statuses of `hacmp status` (documented in its --help).
pub mod exit {
    pub const LIVE_MASTER: u8 = 0;
    pub const NO_LIVE_MASTER: u8 = 1;
    pub const MAINTENANCE: u8 = 3;
}

impl Status {
    pub fn exit_status(&self) -> u8 {
        if self.maintenance.active {
            exit::MAINTENANCE
        } else if self.master_alive {
            exit::LIVE_MASTER
        } else {
            exit::NO_LIVE_MASTER
        }
    }
}

/// `hacmp status [FILE] [--json]`: prints the status and returns its exit status.
pub fn run(file: Option<&std::path::Path>, json: bool) -> u8 {
    let installed = file.is_none().then(installed_file).flatten();
    let Some(variables) = load(file.or(installed.as_deref())) else {
        return crate::EXIT_INVALID;
    };
    let status = gather(&variables);
    let text = if json {
        serde_json::to_string_pretty(&status).expect("the status serializes") + "\n"
    } else {
        render(&status, table::use_colour())
    };
    table::print(&text);
    status.exit_status()
}

/// Reads and checks the variables for a command that only looks (status, maintenance),
/// printing the one-line error when they are unusable.
pub fn load(file: Option<&std::path::Path>) -> Option<Variables> {
    let loaded = crate::config::resolve_from_process_environment(file).and_then(|s| s.validate());
    loaded.map_err(|error| eprintln!("hacmp: {error}")).ok()
}

/// The variable file `hacmp status` reads when it is given none: $HACMP_VARIABLE_FILE, else
/// /etc/hacmp/heartbeat.vars, if it exists; without it the environment holds the variables.
pub fn installed_file() -> Option<std::path::PathBuf> {
    let file = std::env::var_os(INSTALLED_FILE_VARIABLE)
        .filter(|file| !file.is_empty())
        .map_or_else(|| INSTALLED_FILE.into(), std::path::PathBuf::from);
    file.is_file().then_some(file)
}

/// Reads the state of the cluster as this host sees it.
pub fn gather(vars: &Variables) -> Status {
    gather_from(vars, &*operator::of(vars))
}

/// The same, through `store`.
fn gather_from(vars: &Variables, store: &dyn LeaseStore) -> Status {
    let now = files::wall_clock_seconds();
    let look = store.look(vars, now);
    let daemons: Vec<(DaemonState, bool)> = (state::read_all(&store.identity()).into_iter())
        .map(|daemon| {
            let running = daemon.running();
            (daemon, running)
        })
        .collect();
    let now_ms = now_milliseconds();
    let (nodes, no_daemon_seen) = cluster(&look.nodes, &daemons, &vars.host_name, now);
    let mut maintenance = maintenance(&vars.maintenance_file);
    if let Some(reading) = &look.maintenance {
        maintenance = with_switch(maintenance, reading);
    }
    Status {
        schema: SCHEMA,
        host_name: vars.host_name.clone(),
        profile: match vars.profile {
            Profile::Compat => "compat",
            Profile::Safe(_) => "safe",
        },
        heartbeat_dir: vars.heart_beat_dir.clone(),
        faile_over_time: vars.faile_over_time,
        now,
        master: look.master,
        master_alive: look.master_alive,
        heartbeats: look.heartbeats,
        nodes,
        nodes_unseen: look.unseen,
        no_daemon_seen,
        store: look.details.json(),
        maintenance,
        application: Application {
            pending: pending(&daemons, &vars.host_name, now_ms),
            ..application(vars)
        },
        warnings: (look.warnings.into_iter())
            .chain(daemon_warnings(&daemons))
            .collect(),
        details: look.details,
    }
}

/// What the metrics file adds to the loop's own state after each round, read as `gather`
/// reads it. With etcd one client serves every round, so that its connections stay open.
pub fn machine_looker(store: &Store) -> LookAtMachine {
    let mut client = match store {
        Store::Etcd(settings) => Some(Cluster::new(settings.clone())),
        Store::Directories(_) => None,
    };
    Box::new(move |vars| {
        let store = match (&vars.store, client.as_mut()) {
            (Store::Etcd(settings), Some(client)) => {
                Box::new(Etcd::surveyed_through(settings.clone(), client))
            }
            _ => operator::of(vars),
        };
        machine(&gather_from(vars, &*store))
    })
}

fn machine(status: &Status) -> Machine {
    Machine {
        heartbeat_ages: (status.heartbeats.iter())
            .map(|heartbeat| (heartbeat.host.clone(), heartbeat.age_seconds))
            .collect(),
        maintenance: status.maintenance.active,
        application_running: status.application.running,
    }
}

/// This host's application, as pgrepProgramName finds it.
fn application(vars: &Variables) -> Application {
    let pids = processes::find(&vars.pgrep_program_name, std::process::id());
    Application {
        running: !pids.is_empty(),
        pids,
        pending: None,
    }
}

fn now_milliseconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// What the running daemons on this host found wrong in their last round, each said once.
fn daemon_warnings(daemons: &[(DaemonState, bool)]) -> Vec<String> {
    let running = daemons.iter().filter(|(_, running)| *running);
    let said = running.flat_map(|(daemon, _)| {
        (daemon.warnings.iter()).map(|warning| format!("the daemon of {}: {warning}", daemon.host))
    });
    said.collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect()
}

/// The wait this host's running daemon is in, with the time it has left.
fn pending(daemons: &[(DaemonState, bool)], host: &str, now_ms: i64) -> Option<Pending> {
    let (daemon, _) = (daemons.iter()).find(|(daemon, running)| *running && daemon.host == host)?;
    let wait = daemon.wait.as_ref()?;
    let left_ms = wait.until_ms - now_ms;
    (left_ms > 0).then(|| Pending {
        what: wait.what.clone(),
        seconds_left: (left_ms as u64).div_ceil(1000),
    })
}

/// The nodes the store shows, with what this host's daemons (each with whether it runs) add:
/// their role, and the nodes that write nothing to the store. This host is always listed. Also
/// whether no daemon is seen at all: no live lease and none running here.
fn cluster(
    shown: &[StoreNode],
    daemons: &[(DaemonState, bool)],
    this_host: &str,
    now: i64,
) -> (Vec<Node>, bool) {
    let any_running = daemons.iter().any(|(_, running)| *running);
    let no_daemon_seen = !any_running && !shown.iter().any(|node| node.alive);

    let mut nodes: Vec<Node> = (shown.iter())
        .map(|node| Node {
            host: node.host.clone(),
            role: node.role.map(str::to_string),
            state: match (node.alive, node.role) {
                (true, _) => "alive".to_string(),
                (false, Some("master")) if !no_daemon_seen => {
                    "stale: a peer takes over".to_string()
                }
                (false, Some("master")) => "stale: no daemon seen to take over".to_string(),
                (false, _) => "stale".to_string(),
            },
            age_seconds: node.age_seconds,
            daemon: None,
        })
        .collect();
    for (daemon, running) in daemons {
        let role = if *running { &daemon.role } else { "stopped" };
        let sight = Daemon {
            pid: daemon.pid,
            running: *running,
            seconds_since_report: now - daemon.written,
        };
        match nodes.iter_mut().find(|node| node.host == daemon.host) {
            Some(node) => {
                node.role = Some(role.to_string());
                node.daemon = Some(sight);
            }
            None => nodes.push(Node {
                host: daemon.host.clone(),
                role: Some(role.to_string()),
                state: "no heartbeat".to_string(),
                age_seconds: None,
                daemon: Some(sight),
            }),
        }
    }
    // Without a state file, this host's daemon runs only if its heartbeat says so (bash's
    // heartbeat.sh, or a daemon given another state directory).
    if !daemons.iter().any(|(daemon, _)| daemon.host == this_host) {
        match nodes.iter_mut().find(|node| node.host == this_host) {
            Some(node) if node.state == "alive" => {}
            Some(node) => node.role = Some("stopped".to_string()),
            None => nodes.push(Node {
                host: this_host.to_string(),
                role: Some("stopped".to_string()),
                state: "no hacmp daemon found on this host".to_string(),
                age_seconds: None,
                daemon: None,
            }),
        }
    }
    (nodes, no_daemon_seen)
}

/// `maintenance` with the store's own switch as it was read: either the file or the switch
/// puts the loop in maintenance.
pub fn with_switch(mut maintenance: Maintenance, reading: &SwitchReading) -> Maintenance {
    let note = reading.value.as_ref().map(|value| {
        let shown: String = value.chars().take(MAX_MAINTENANCE_NOTE).collect();
        shown.trim().to_string()
    });
    maintenance.active |= reading.value.is_some();
    maintenance.key = Some(MaintenanceKey {
        key: reading.name.clone(),
        place: reading.place.clone(),
        set: reading.value.is_some(),
        note: note.filter(|note| !note.is_empty()),
    });
    maintenance
}

/// Whether the maintenance file exists (`[ -f ]`, as the loop tests it) and what it says.
pub fn maintenance(file: &str) -> Maintenance {
    let active = files::is_regular_file(file);
    let note = active
        .then(|| std::fs::read(file).ok())
        .flatten()
        .map(|bytes| {
            let shown = &bytes[..bytes.len().min(MAX_MAINTENANCE_NOTE)];
            String::from_utf8_lossy(shown).trim().to_string()
        })
        .filter(|note| !note.is_empty());
    Maintenance {
        active,
        file: file.to_string(),
        note,
        key: None,
    }
}

/// The banner that makes maintenance impossible to miss.
pub fn maintenance_banner(maintenance: &Maintenance, colour: bool) -> String {
    let mut lines = vec!["MAINTENANCE MODE IS ON".to_string()];
    let key = maintenance.key.as_ref().filter(|key| key.set);
    if let Some(key) = key {
        lines.push(format!(
            "every node's loop does nothing while it is on: {}",
            key.place
        ));
        if let Some(note) = &key.note {
            lines.extend(note.lines().map(str::to_string));
        }
    }
    // With the key set, the file is shown only when it says something of its own.
    if key.is_none() || maintenance.note.is_some() {
        lines.push("the loop does nothing on hosts that see this file".to_string());
        lines.push(format!("file: {}", maintenance.file));
        if let Some(note) = &maintenance.note {
            lines.extend(note.lines().map(str::to_string));
        }
    }
    table::boxed(&lines, colour)
}

/// What puts the cluster in maintenance, or what would.
pub fn maintenance_source(maintenance: &Maintenance) -> String {
    let key = maintenance.key.as_ref();
    match key {
        Some(key) if key.set => key.place.clone(),
        Some(key) if !maintenance.active => {
            format!("{} does not exist, nor {}", maintenance.file, key.place)
        }
        _ if maintenance.active => maintenance.file.clone(),
        _ => format!("{} does not exist", maintenance.file),
    }
}

/// The cluster view: every node with its role, state, heartbeat and daemon, what status cannot
/// see, and a line when no daemon is seen at all.
fn render_nodes(status: &Status, colour: bool) -> String {
    let mut rows = vec![
        ["HOST", "ROLE", "STATE", "HEARTBEAT", "DAEMON"]
            .map(|title| (title.to_string(), Tone::Plain))
            .to_vec(),
    ];
    for node in &status.nodes {
        let tone = match (node.role.as_deref(), node.state.as_str()) {
            (Some("stopped" | "fenced"), _) => Tone::Bad,
            (_, "alive") => Tone::Good,
            (_, state) if state.starts_with("stale") => Tone::Warning,
            _ => Tone::Plain,
        };
        let daemon = node.daemon.as_ref().map_or(String::new(), |daemon| {
            if daemon.running {
                format!(
                    "pid {}, reported {} ago",
                    daemon.pid,
                    table::age(daemon.seconds_since_report)
                )
            } else {
                format!("pid {} gone", daemon.pid)
            }
        });
        rows.push(vec![
            (node.host.clone(), Tone::Plain),
            (node.role.clone().unwrap_or_else(|| "-".to_string()), tone),
            (node.state.clone(), tone),
            (
                node.age_seconds.map_or("-".to_string(), table::age),
                Tone::Plain,
            ),
            (daemon, Tone::Plain),
        ]);
    }
    let mut out = table::render(&rows, colour);
    out.push_str(&format!("note: {}\n", status.nodes_unseen));
    if status.no_daemon_seen {
        let line = "no daemon seen: no live master, and no hacmp daemon of this cluster runs on this host; unless one runs elsewhere, nothing starts the application";
        out.push_str(&format!("{}\n", table::paint(line, Tone::Bad, colour)));
    }
    out
}

/// The human form of the status.
pub fn render(status: &Status, colour: bool) -> String {
    let mut out = String::new();
    if status.maintenance.active {
        out.push_str(&maintenance_banner(&status.maintenance, colour));
        out.push('\n');
    }
    if let Some(banner) = status.details.banner(colour) {
        out.push_str(&banner);
        out.push('\n');
    }
    out.push_str(&format!(
        "host {}, {}, faileOverTime {} s, profile {}\n\n",
        status.host_name,
        status.details.place(),
        status.faile_over_time,
        status.profile
    ));
    out.push_str(&status.details.render(colour));
    out.push_str(&render_nodes(status, colour));
    out.push('\n');
    let maintenance = if status.maintenance.active {
        table::paint(
            &format!("ON ({})", maintenance_source(&status.maintenance)),
            Tone::Bad,
            colour,
        )
    } else {
        format!("off ({})", maintenance_source(&status.maintenance))
    };
    out.push_str(&format!("maintenance:  {maintenance}\n"));
    let application = if status.application.running {
        let pids: Vec<String> = status.application.pids.iter().map(u32::to_string).collect();
        table::paint(
            &format!("running, pid {}", pids.join(" ")),
            Tone::Good,
            colour,
        )
    } else {
        "not running".to_string()
    };
    let pending = status
        .application
        .pending
        .as_ref()
        .map_or(String::new(), |pending| {
            let text = format!(
                "; pending: {}, {} s left",
                pending.what, pending.seconds_left
            );
            table::paint(&text, Tone::Warning, colour)
        });
    out.push_str(&format!(
        "application:  {application} on {}{pending}\n",
        status.host_name
    ));
    for warning in &status.warnings {
        out.push_str(&format!(
            "{} {warning}\n",
            table::paint("warning:", Tone::Warning, colour)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(host: &str, role: &str, running: bool) -> (DaemonState, bool) {
        let state = DaemonState {
            host: host.to_string(),
            store: "directories /srv/hb".to_string(),
            pid: 4711,
            started: 1,
            role: role.to_string(),
            master: None,
            wait: None,
            written: 100,
            warnings: Vec::new(),
        };
        (state, running)
    }

    fn shown(host: &str, role: Option<&'static str>, alive: bool) -> StoreNode {
        StoreNode {
            host: host.to_string(),
            role,
            alive,
            age_seconds: Some(if alive { 1 } else { 40 }),
        }
    }

    fn roles(nodes: &[Node]) -> Vec<(String, Option<String>, String)> {
        (nodes.iter())
            .map(|n| (n.host.clone(), n.role.clone(), n.state.clone()))
            .collect()
    }

    fn row(host: &str, role: Option<&str>, state: &str) -> (String, Option<String>, String) {
        (
            host.to_string(),
            role.map(str::to_string),
            state.to_string(),
        )
    }

    #[test]
    fn daemons_on_this_host_tell_the_roles_the_store_cannot() {
        let store = [
            shown("nodeA", Some("master"), true),
            shown("old", None, false),
        ];
        let daemons = [
            daemon("nodeA", "master", true),
            daemon("nodeB", "fenced", true),
            daemon("nodeC", "maintenance", true),
            daemon("nodeD", "standby", false),
        ];
        let (nodes, no_daemon_seen) = cluster(&store, &daemons, "nodeB", 103);
        assert_eq!(
            roles(&nodes),
            [
                row("nodeA", Some("master"), "alive"),
                row("old", None, "stale"),
                row("nodeB", Some("fenced"), "no heartbeat"),
                row("nodeC", Some("maintenance"), "no heartbeat"),
                row("nodeD", Some("stopped"), "no heartbeat"),
            ]
        );
        assert!(!no_daemon_seen);
        assert_eq!(nodes[2].daemon.as_ref().unwrap().seconds_since_report, 3);
    }

    #[test]
    fn with_no_daemon_anywhere_nobody_is_said_to_take_over() {
        let store = [shown("nodeB", Some("master"), false)];
        let (nodes, no_daemon_seen) = cluster(&store, &[], "nodeA", 0);
        assert!(no_daemon_seen);
        assert_eq!(
            roles(&nodes),
            [
                row(
                    "nodeB",
                    Some("master"),
                    "stale: no daemon seen to take over"
                ),
                row(
                    "nodeA",
                    Some("stopped"),
                    "no hacmp daemon found on this host"
                ),
            ]
        );
        let starting = [daemon("nodeA", "starting", true)];
        let (nodes, no_daemon_seen) = cluster(&store, &starting, "nodeA", 0);
        assert!(!no_daemon_seen);
        assert_eq!(nodes[0].state, "stale: a peer takes over");
        assert_eq!(nodes[1].role.as_deref(), Some("starting"));
    }

    #[test]
    fn a_pending_wait_counts_down_and_ends() {
        let (mut state, _) = daemon("nodeA", "claiming", true);
        state.wait = Some(state::PendingWait {
            what: "recheck before start".to_string(),
            until_ms: 10_000,
        });
        let daemons = [(state, true)];
        let pending = |now_ms| pending(&daemons, "nodeA", now_ms);
        assert_eq!(
            pending(7_001),
            Some(Pending {
                what: "recheck before start".to_string(),
                seconds_left: 3
            })
        );
        assert_eq!(pending(10_000), None, "the wait is over");
    }
}
