//! `hacmp status`: who is master, how old every heartbeat is, whether maintenance is on and
//! whether this host's application runs — judged exactly as the loop judges them.
//!
//! What depends on the store that holds the lease comes from its `operator::LeaseStore`; this
//! module adds what every store shares. The JSON form is a stable interface, documented in
//! docs/status-json.md; its `schema` number changes whenever a field changes meaning or
//! disappears.

use serde::Serialize;

use crate::config::{Profile, Variables};
use crate::operator::{self, Heartbeat, StoreDetails, SwitchReading};
use crate::real::metrics::Machine;
use crate::real::{files, processes};
use crate::table::{self, Tone};

/// The version of the JSON schema (docs/status-json.md).
pub const SCHEMA: u32 = 3;
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

/// Reads the state of the cluster as this host sees it.
pub fn gather(vars: &Variables) -> Status {
    let now = files::wall_clock_seconds();
    let look = operator::of(&vars.store).look(vars, now);
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
        store: look.details.json(),
        maintenance,
        application: application(vars),
        warnings: look.warnings,
        details: look.details,
    }
}

/// What the metrics file adds to the loop's own state after each round, read as `gather`
/// reads it.
pub fn machine(vars: &Variables) -> Machine {
    let status = gather(vars);
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
    }
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
    out.push_str(&format!(
        "application:  {application} on {}\n",
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
