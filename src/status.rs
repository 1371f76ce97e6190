//! `hacmp status`: who is master, how old every heartbeat is, whether maintenance is on and
//! whether this host's application runs — judged exactly as the loop judges them.
//!
//! The JSON form is a stable interface, documented in docs/status-json.md; its `schema` number
//! changes whenever a field changes meaning or disappears.

use std::path::Path;

use serde::Serialize;

use crate::config::{Profile, Variables};
use crate::real::{files, listing, processes};
use crate::table::{self, Tone};

/// The version of the JSON schema (docs/status-json.md).
pub const SCHEMA: u32 = 1;
/// How much of the maintenance file is shown: it is a note for people, not a data file.
const MAX_MAINTENANCE_NOTE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub schema: u32,
    pub host_name: String,
    /// hacmpProfile: "compat" or "safe".
    pub profile: &'static str,
    pub heartbeat_dir: String,
    pub faile_over_time: u64,
    /// This host's clock, in seconds since the epoch (`date +%s`).
    pub now: i64,
    /// The entry the loop would take as master now: the newest one (`ls -1tr | tail -1`).
    pub master: Option<String>,
    /// Whether that master's heartbeat is younger than faileOverTime.
    pub master_alive: bool,
    pub heartbeats: Vec<Heartbeat>,
    pub maintenance: Maintenance,
    pub application: Application,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heartbeat {
    pub host: String,
    /// "file", "directory", "symlink", "other" or "vanished".
    pub kind: &'static str,
    /// Modification time in whole seconds since the epoch (`stat -c %Y`).
    pub modified: i64,
    /// `now - modified`; negative when the heartbeat is in the future.
    pub age_seconds: i64,
    /// The loop's judgement: a regular file whose age is less than faileOverTime.
    pub alive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    pub active: bool,
    pub file: String,
    /// The file's text (who, when, why) when it has any.
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
    let mut warnings = Vec::new();
    let entries = match listing::entries(&vars.heart_beat_dir) {
        Ok(entries) => entries,
        Err(error) => {
            warnings.push(format!("heartBeatDir cannot be listed: {error}"));
            Vec::new()
        }
    };
    let mut heartbeats: Vec<Heartbeat> = entries
        .iter()
        .map(|entry| {
            let host = String::from_utf8_lossy(&entry.name).into_owned();
            let age_seconds = now - entry.modified.seconds;
            let path = format!("{}/{}", vars.heart_beat_dir, host);
            Heartbeat {
                alive: files::is_regular_file(&path)
                    && age_seconds - (vars.faile_over_time as i64) < 0,
                kind: match entry.kind {
                    Some(listing::EntryKind::RegularFile) => "file",
                    Some(listing::EntryKind::Directory) => "directory",
                    Some(listing::EntryKind::SymbolicLink) => "symlink",
                    Some(listing::EntryKind::Other) => "other",
                    None => "vanished",
                },
                modified: entry.modified.seconds,
                age_seconds,
                host,
            }
        })
        .collect();
    // Newest first, as an operator reads a heartbeat list.
    heartbeats.sort_by(|a, b| a.age_seconds.cmp(&b.age_seconds).then(a.host.cmp(&b.host)));
    let master = listing::newest_entry(&vars.heart_beat_dir)
        .ok()
        .filter(|m| !m.is_empty());
    let master_alive = master
        .as_ref()
        .is_some_and(|m| heartbeats.iter().any(|h| h.host == *m && h.alive));
    warn_about(&heartbeats, vars, &mut warnings);
    let pids = processes::find(&vars.pgrep_program_name, std::process::id());
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
        master,
        master_alive,
        heartbeats,
        maintenance: maintenance(&vars.maintenance_file),
        application: Application {
            running: !pids.is_empty(),
            pids,
        },
        warnings,
    }
}

fn warn_about(heartbeats: &[Heartbeat], vars: &Variables, warnings: &mut Vec<String>) {
    for heartbeat in heartbeats {
        if heartbeat.kind != "file" {
            warnings.push(format!(
                "{} is a {}, not a heartbeat file; the loop still counts it when it is newest",
                heartbeat.host, heartbeat.kind
            ));
        }
        if heartbeat.age_seconds < 0 {
            warnings.push(format!(
                "{}'s heartbeat is {} s in the future: this host's clock or the storage server's is off",
                heartbeat.host, -heartbeat.age_seconds
            ));
        }
    }
    let alive: Vec<&str> = heartbeats
        .iter()
        .filter(|h| h.alive)
        .map(|h| h.host.as_str())
        .collect();
    if alive.len() > 1 {
        warnings.push(format!(
            "{} hosts have heartbeats younger than faileOverTime ({} s): {}; only a master touches its heartbeat, so more than one may be running the application",
            alive.len(),
            vars.faile_over_time,
            alive.join(", ")
        ));
    }
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
    }
}

/// The banner that makes maintenance impossible to miss.
pub fn maintenance_banner(maintenance: &Maintenance, colour: bool) -> String {
    let mut lines = vec![
        "MAINTENANCE MODE IS ON".to_string(),
        "the loop does nothing on hosts that see this file".to_string(),
        format!("file: {}", maintenance.file),
    ];
    if let Some(note) = &maintenance.note {
        lines.extend(note.lines().map(str::to_string));
    }
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let rule = "#".repeat(width + 6);
    let mut out = format!("{}\n", table::paint(&rule, Tone::Bad, colour));
    for line in lines {
        let pad = width - line.chars().count();
        let boxed = format!("## {line}{} ##", " ".repeat(pad));
        out.push_str(&format!("{}\n", table::paint(&boxed, Tone::Bad, colour)));
    }
    out.push_str(&format!("{}\n", table::paint(&rule, Tone::Bad, colour)));
    out
}

fn age_text(age_seconds: i64) -> String {
    let magnitude =
        humantime::format_duration(std::time::Duration::from_secs(age_seconds.unsigned_abs()));
    if age_seconds < 0 {
        format!("in {magnitude} (future)")
    } else {
        format!("{magnitude}")
    }
}

/// The human form of the status.
pub fn render(status: &Status, colour: bool) -> String {
    let mut out = String::new();
    if status.maintenance.active {
        out.push_str(&maintenance_banner(&status.maintenance, colour));
        out.push('\n');
    }
    out.push_str(&format!(
        "host {}, heartbeat directory {}, faileOverTime {} s, profile {}\n\n",
        status.host_name, status.heartbeat_dir, status.faile_over_time, status.profile
    ));
    let mut rows = vec![vec![
        ("HOST".to_string(), Tone::Plain),
        ("AGE".to_string(), Tone::Plain),
        ("STATE".to_string(), Tone::Plain),
        ("ROLE".to_string(), Tone::Plain),
    ]];
    for heartbeat in &status.heartbeats {
        let is_master = status.master.as_deref() == Some(heartbeat.host.as_str());
        let (state, tone) = if heartbeat.alive {
            ("alive", Tone::Good)
        } else {
            ("stale", Tone::Warning)
        };
        let role = match (is_master, heartbeat.alive) {
            (true, true) => "master",
            (true, false) => "master (dead: a peer takes over)",
            (false, _) => "",
        };
        rows.push(vec![
            (heartbeat.host.clone(), Tone::Plain),
            (age_text(heartbeat.age_seconds), Tone::Plain),
            (state.to_string(), tone),
            (role.to_string(), Tone::Plain),
        ]);
    }
    if status.heartbeats.is_empty() {
        out.push_str("no heartbeats: the first host to loop becomes master\n");
    } else {
        out.push_str(&table::render(&rows, colour));
    }
    out.push('\n');
    let maintenance = if status.maintenance.active {
        table::paint(
            &format!("ON ({})", status.maintenance.file),
            Tone::Bad,
            colour,
        )
    } else {
        format!("off ({} does not exist)", status.maintenance.file)
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

/// Whether two paths are on the same filesystem (same device), for the maintenance warning.
pub fn same_filesystem(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    Some(std::fs::metadata(a).ok()?.dev() == std::fs::metadata(b).ok()?.dev())
}
