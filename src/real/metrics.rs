//! hacmpMetricsFile: the loop's state in Prometheus' text format, for node_exporter's textfile
//! collector, replaced as a whole after each round.
//!
//! The loop hands a snapshot of what it knows (its role, its counters, its last round and the
//! storage operations it timed) to a writer thread and goes on. The writer adds what only a look
//! at the machine tells (every heartbeat's age, the application's processes: a `LookAtMachine`
//! that `hacmp run` hands in, `hacmp status`'s), writes a temporary file beside the target and renames it over the target, so a
//! scrape never reads half a file. If the writer is still busy with an earlier snapshot (a
//! heartbeat directory that hangs), the new one is skipped: the file then stops changing, which
//! node_exporter shows as `node_textfile_mtime_seconds` falling behind.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use crate::config::Variables;

/// The role as the metrics and systemd's status name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The loop has not yet decided.
    Starting,
    Master,
    Standby,
    Maintenance,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Starting,
        Role::Master,
        Role::Standby,
        Role::Maintenance,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Master => "master",
            Role::Standby => "standby",
            Role::Maintenance => "maintenance",
        }
    }
}

/// What one storage operation on one directory has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StorageStats {
    pub last_latency: Duration,
    pub operations: u64,
    pub failures: u64,
}

/// The storage operations by (operation, directory).
pub type StorageTable = BTreeMap<(&'static str, String), StorageStats>;

/// What the loop knows after a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub role: Role,
    /// The host this loop takes as master, if it knows one.
    pub master: Option<String>,
    pub takeovers: u64,
    pub incidents: u64,
    pub fenced: u64,
    pub last_round: Option<Duration>,
    pub storage: StorageTable,
    pub hook_dropped: u64,
}

/// What a look at the machine adds to the loop's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Each heartbeat's age in seconds by this host's clock, by host.
    pub heartbeat_ages: Vec<(String, i64)>,
    pub maintenance: bool,
    pub application_running: bool,
}

/// The look at the machine, made on the writer's thread after each round.
pub type LookAtMachine = Box<dyn FnMut(&Variables) -> Machine + Send>;

/// The loop's end of the writer.
pub struct MetricsWriter {
    snapshots: SyncSender<Snapshot>,
}

impl MetricsWriter {
    /// Starts the writer thread; `None`, after saying why, when it cannot be created.
    pub fn start(
        variables: &Variables,
        target: String,
        look: LookAtMachine,
    ) -> Option<MetricsWriter> {
        // One snapshot in flight at most: a newer one replaces nothing, it is simply skipped.
        let (snapshots, received) = sync_channel(1);
        let variables = variables.clone();
        let writer = std::thread::Builder::new()
            .name("metrics".to_string())
            .spawn(move || write_each(&variables, &target, look, received));
        match writer {
            Ok(_) => Some(MetricsWriter { snapshots }),
            Err(error) => {
                eprintln!("hacmp: hacmpMetricsFile: cannot start its thread ({error})");
                None
            }
        }
    }

    /// Hands over a snapshot unless the writer is busy; never waits.
    pub fn offer(&self, snapshot: Snapshot) {
        let _ = self.snapshots.try_send(snapshot);
    }
}

fn write_each(
    variables: &Variables,
    target: &str,
    mut look: LookAtMachine,
    snapshots: Receiver<Snapshot>,
) {
    let temporary = format!("{target}.tmp");
    let mut reported_failure = false;
    for snapshot in snapshots {
        let text = render(&snapshot, &look(variables));
        let written =
            std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, target));
        // Said once, not every round, so that a full disk does not flood the journal.
        match written {
            Err(error) if !reported_failure => {
                eprintln!("hacmp: hacmpMetricsFile {target}: {error}");
                reported_failure = true;
            }
            Err(_) => {}
            Ok(()) => reported_failure = false,
        }
    }
}

/// The file's text: every metric with its HELP and TYPE lines.
pub fn render(snapshot: &Snapshot, machine: &Machine) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let roles: Vec<_> = Role::ALL
        .iter()
        .map(|role| {
            (
                labels(&[("role", role.name())]),
                flag(*role == snapshot.role),
            )
        })
        .collect();
    family(
        "hacmp_role",
        "gauge",
        "1 for this host's role as its loop last decided, 0 for the others.",
        &roles,
    );
    let master: Vec<_> = snapshot
        .master
        .iter()
        .map(|host| (labels(&[("host", host)]), 1.0))
        .collect();
    family(
        "hacmp_master",
        "gauge",
        "1 for the host this host's loop takes as master (absent when it knows none).",
        &master,
    );
    let ages: Vec<_> = (machine.heartbeat_ages.iter())
        .map(|(host, age)| (labels(&[("host", host)]), *age as f64))
        .collect();
    family(
        "hacmp_heartbeat_age_seconds",
        "gauge",
        "Seconds since each entry of heartBeatDir was modified, by this host's clock.",
        &ages,
    );
    family(
        "hacmp_maintenance",
        "gauge",
        "1 while maintenanceFile exists.",
        &[(String::new(), flag(machine.maintenance))],
    );
    family(
        "hacmp_application_running",
        "gauge",
        "1 while a process on this host matches pgrepProgramName.",
        &[(String::new(), flag(machine.application_running))],
    );
    for (name, help, value) in [
        (
            "hacmp_takeovers_total",
            "Times this host started the application as master.",
            snapshot.takeovers,
        ),
        (
            "hacmp_incidents_total",
            "Times this host found its application not running while master.",
            snapshot.incidents,
        ),
        (
            "hacmp_fenced_total",
            "Times the guard killed the application because the lease ran out (safe profile).",
            snapshot.fenced,
        ),
        (
            "hacmp_event_hook_dropped_total",
            "Events not passed to hacmpEventCmd because it was not keeping up.",
            snapshot.hook_dropped,
        ),
    ] {
        family(name, "counter", help, &[(String::new(), value as f64)]);
    }
    let round: Vec<_> = snapshot
        .last_round
        .iter()
        .map(|duration| (String::new(), duration.as_secs_f64()))
        .collect();
    family(
        "hacmp_loop_duration_seconds",
        "gauge",
        "How long the last round of the loop took: its pause not counted, the script's own waits (before a start, in killInstance) counted.",
        &round,
    );
    let storage = |value: fn(&StorageStats) -> f64| -> Vec<(String, f64)> {
        snapshot
            .storage
            .iter()
            .map(|((operation, directory), stats)| {
                (
                    labels(&[("operation", operation), ("directory", directory)]),
                    value(stats),
                )
            })
            .collect()
    };
    family(
        "hacmp_storage_operation_seconds",
        "gauge",
        "How long the last storage operation of each kind on each directory took.",
        &storage(|stats| stats.last_latency.as_secs_f64()),
    );
    family(
        "hacmp_storage_operations_total",
        "counter",
        "Storage operations of each kind on each directory.",
        &storage(|stats| stats.operations as f64),
    );
    family(
        "hacmp_storage_operation_failures_total",
        "counter",
        "Storage operations that failed or got no answer in time.",
        &storage(|stats| stats.failures as f64),
    );
    out
}

/// `{name="value",…}` with Prometheus' escapes, or nothing for no labels.
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', r"\\")
                .replace('"', "\\\"")
                .replace('\n', r"\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}
