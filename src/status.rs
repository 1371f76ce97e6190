//! `hacmp status`: who is master, how old every heartbeat is, whether maintenance is on and
//! whether this host's application runs — judged exactly as the loop judges them.
//!
//! The JSON form is a stable interface, documented in docs/status-json.md; its `schema` number
//! changes whenever a field changes meaning or disappears.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::{EtcdSettings, Profile, Store, Variables};
use crate::real::batch::{Outcome, Pools};
use crate::real::etcd::{self, Quorum as EtcdQuorum, Survey};
use crate::real::guard::boot_clock;
use crate::real::{files, listing, processes, records};
use crate::safe::record::{Phase, Record};
use crate::table::{self, Tone};
use crate::world::EntryRead;

/// The version of the JSON schema (docs/status-json.md).
pub const SCHEMA: u32 = 2;
/// How long status waits for each heartbeat directory: a directory whose site is down must
/// not hang the command (a hard NFS mount would).
pub const DIRECTORY_LIMIT: Duration = Duration::from_secs(2);
/// The most entries of one directory whose records status reads, as many as the safe loop reads.
const MAX_RECORDS_READ: usize = crate::safe::files::MAX_ENTRIES;
/// How much of the maintenance file is shown: it is a note for people, not a data file.
const MAX_MAINTENANCE_NOTE: usize = 4096;
/// How long `hacmp status` waits for each answer of the etcd cluster.
pub const ETCD_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// Each directory the lease lives in (hacmpHeartBeatDirs, or heartBeatDir alone), as this
    /// status found it; empty with the etcd backend.
    pub heartbeat_dirs: Vec<Directory>,
    /// How many of those directories answer, against the majority the loop needs; `None` with
    /// the etcd backend.
    pub quorum: Option<Quorum>,
    pub maintenance: Maintenance,
    pub application: Application,
    pub warnings: Vec<String>,
    /// With hacmpBackend=etcd: the cluster as its endpoints answer. `master` is then the leader
    /// key's holder, and `heartbeats` is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdStatus {
    /// hacmpEtcdPrefix.
    pub prefix: String,
    #[serde(flatten)]
    pub survey: Survey,
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

/// One heartbeat directory as this status found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directory {
    pub path: String,
    /// Whether it was listed and its records read within `DIRECTORY_LIMIT`.
    pub reachable: bool,
    /// How long listing it and reading its records took, in milliseconds; `None` when it did
    /// not answer within the limit.
    pub latency_ms: Option<u64>,
    /// Why it is not reachable.
    pub error: Option<String>,
    /// The safe profile's records it holds, by host name.
    pub records: Vec<RecordSight>,
    /// The master it shows: the highest (token, host) among its records in the master state.
    pub master: Option<String>,
}

/// One safe record as a directory holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordSight {
    pub host: String,
    pub token: u64,
    /// "claim" or "master".
    pub state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quorum {
    pub directories: usize,
    pub reachable: usize,
    /// How many directories a master's write and a standby's claim need.
    pub majority: usize,
    /// "all" (every directory answers), "majority" (more than a bare majority), "bare majority"
    /// (one more lost directory stops every master and every takeover) or "none" (no majority:
    /// no application runs until one is back).
    pub state: &'static str,
}

impl Quorum {
    fn of(directories: &[Directory]) -> Quorum {
        let reachable = directories.iter().filter(|d| d.reachable).count();
        let majority = directories.len() / 2 + 1;
        let state = if reachable == directories.len() {
            "all"
        } else if reachable > majority {
            "majority"
        } else if reachable == majority {
            "bare majority"
        } else {
            "none"
        };
        Quorum {
            directories: directories.len(),
            reachable,
            majority,
            state,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    pub active: bool,
    pub file: String,
    /// The file's text (who, when, why) when it has any.
    pub note: Option<String>,
    /// With hacmpBackend=etcd: the maintenance key, which every node obeys as it obeys the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<MaintenanceKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceKey {
    pub key: String,
    /// Whether the key exists; false also when it could not be read (the status's `etcd.errors`
    /// then says so).
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
    gather_with(vars, None)
}

/// The same, asking the etcd cluster through `cluster` when given: the metrics thread, which
/// gathers every round, keeps one with its connections.
pub fn gather_with(vars: &Variables, cluster: Option<&mut etcd::Cluster>) -> Status {
    match (&vars.store, cluster) {
        (Store::Etcd(settings), Some(cluster)) => gather_etcd(vars, settings, cluster),
        (Store::Etcd(settings), None) => {
            gather_etcd(vars, settings, &mut etcd::Cluster::new(settings.clone()))
        }
        (Store::Directories(_), _) => gather_directory(vars),
    }
}

/// The status with the heartbeat directory as the loop's storage.
fn gather_directory(vars: &Variables) -> Status {
    let now = files::wall_clock_seconds();
    let mut warnings = Vec::new();
    let (directories, looks) = match &vars.store {
        Store::Directories(dirs) => look_at_all(dirs),
        Store::Etcd(_) => (Vec::new(), Vec::new()),
    };
    let (mut heartbeats, master) = if looks.len() > 1 {
        merged_heartbeats(&looks, vars, now)
    } else {
        heart_beat_dir(vars, now, &mut warnings)
    };
    // Newest first, as an operator reads a heartbeat list.
    heartbeats.sort_by(|a, b| a.age_seconds.cmp(&b.age_seconds).then(a.host.cmp(&b.host)));
    let master_alive = master
        .as_ref()
        .is_some_and(|m| heartbeats.iter().any(|h| h.host == *m && h.alive));
    warn_about(&heartbeats, vars, &mut warnings);
    warn_about_directories(&directories, &mut warnings);
    Status {
        schema: SCHEMA,
        host_name: vars.host_name.clone(),
        profile: profile_name(vars),
        heartbeat_dir: vars.heart_beat_dir.clone(),
        faile_over_time: vars.faile_over_time,
        now,
        master,
        master_alive,
        heartbeats,
        quorum: (!directories.is_empty()).then(|| Quorum::of(&directories)),
        heartbeat_dirs: directories,
        maintenance: maintenance(&vars.maintenance_file),
        application: application(vars),
        warnings,
        etcd: None,
    }
}

/// hacmpProfile as the status names it.
fn profile_name(vars: &Variables) -> &'static str {
    match vars.profile {
        Profile::Compat => "compat",
        Profile::Safe(_) => "safe",
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

/// The status with the etcd cluster as the loop's storage: the leader key's holder is master.
fn gather_etcd(vars: &Variables, settings: &EtcdSettings, cluster: &mut etcd::Cluster) -> Status {
    let survey = cluster.survey(ETCD_LIMIT);
    let mut warnings = etcd_warnings(&survey);
    let maintenance = with_key(
        maintenance(&vars.maintenance_file),
        settings.maintenance_key(),
        survey.maintenance_key.as_deref(),
    );
    if !survey.keys_read() {
        warnings.push(
            "the cluster did not answer every read: what status shows of the keys may be incomplete"
                .to_string(),
        );
    }
    Status {
        schema: SCHEMA,
        host_name: vars.host_name.clone(),
        profile: profile_name(vars),
        heartbeat_dir: vars.heart_beat_dir.clone(),
        faile_over_time: vars.faile_over_time,
        now: files::wall_clock_seconds(),
        master: survey.leader_key.as_ref().map(|key| key.holder.clone()),
        master_alive: survey.leader_key.is_some(),
        heartbeats: Vec::new(),
        heartbeat_dirs: Vec::new(),
        quorum: None,
        maintenance,
        application: application(vars),
        warnings,
        etcd: Some(EtcdStatus {
            prefix: settings.prefix.clone(),
            survey,
        }),
    }
}

/// `maintenance` with the etcd backend's maintenance key, whose value (if it exists) is `value`:
/// either the file or the key puts the loop in maintenance.
pub fn with_key(mut maintenance: Maintenance, key: String, value: Option<&str>) -> Maintenance {
    let note = value.map(|value| {
        let shown: String = value.chars().take(MAX_MAINTENANCE_NOTE).collect();
        shown.trim().to_string()
    });
    maintenance.active |= value.is_some();
    maintenance.key = Some(MaintenanceKey {
        key,
        set: value.is_some(),
        note: note.filter(|note| !note.is_empty()),
    });
    maintenance
}

/// What an operator must know about the cluster beyond the table.
fn etcd_warnings(survey: &Survey) -> Vec<String> {
    let mut warnings: Vec<String> = survey.errors.clone();
    for endpoint in survey.endpoints.iter().filter(|e| !e.healthy) {
        warnings.push(format!(
            "{} is not serving: {}",
            endpoint.endpoint,
            endpoint.error.as_deref().unwrap_or("unknown error")
        ));
    }
    let unlisted = survey.unlisted_members();
    if let Some(members) = survey.members.as_ref().filter(|_| !unlisted.is_empty()) {
        warnings.push(format!(
            "hacmpEtcdEndpoints lists {} of the cluster's {} members: if those fail, this host loses the cluster while the others still have it",
            members.len() - unlisted.len(),
            members.len()
        ));
    }
    warnings
}

/// The banner that makes a cluster about to stop, or stopped, impossible to miss.
pub fn etcd_quorum_banner(quorum: EtcdQuorum, colour: bool) -> Option<String> {
    let lines = match quorum {
        EtcdQuorum::Healthy => return None,
        EtcdQuorum::AtRisk => vec![
            "ETCD QUORUM AT RISK".to_string(),
            "one more failed member stops the cluster, and every application with it".to_string(),
        ],
        EtcdQuorum::Lost => vec![
            "ETCD QUORUM LOST".to_string(),
            "nobody can hold the leader key: every guard ends its application".to_string(),
        ],
    };
    Some(boxed(&lines, colour))
}

/// The heartbeats of heartBeatDir alone and the master the loop would take, as the compat loop
/// sees them (`ls -1tr | tail -1`, `stat`, `[ -f ]`).
fn heart_beat_dir(
    vars: &Variables,
    now: i64,
    warnings: &mut Vec<String>,
) -> (Vec<Heartbeat>, Option<String>) {
    let entries = match listing::entries(&vars.heart_beat_dir) {
        Ok(entries) => entries,
        Err(error) => {
            warnings.push(format!("heartBeatDir cannot be listed: {error}"));
            Vec::new()
        }
    };
    let heartbeats = entries
        .iter()
        .map(|entry| {
            let path = format!(
                "{}/{}",
                vars.heart_beat_dir,
                String::from_utf8_lossy(&entry.name)
            );
            heartbeat(entry, files::is_regular_file(&path), vars, now)
        })
        .collect();
    let master = listing::newest_entry(&vars.heart_beat_dir)
        .ok()
        .filter(|m| !m.is_empty());
    (heartbeats, master)
}

fn heartbeat(entry: &listing::Entry, regular: bool, vars: &Variables, now: i64) -> Heartbeat {
    let age_seconds = now - entry.modified.seconds;
    Heartbeat {
        alive: regular && age_seconds - (vars.faile_over_time as i64) < 0,
        kind: match entry.kind {
            Some(listing::EntryKind::RegularFile) => "file",
            Some(listing::EntryKind::Directory) => "directory",
            Some(listing::EntryKind::SymbolicLink) => "symlink",
            Some(listing::EntryKind::Other) => "other",
            None => "vanished",
        },
        modified: entry.modified.seconds,
        age_seconds,
        host: String::from_utf8_lossy(&entry.name).into_owned(),
    }
}

/// Each host's youngest heartbeat over the directories that answered, and the newest of them
/// all as the master (the newest entry, as `ls -1tr | tail -1` picks it in one directory).
fn merged_heartbeats(
    looks: &[Option<Vec<Seen>>],
    vars: &Variables,
    now: i64,
) -> (Vec<Heartbeat>, Option<String>) {
    let mut youngest: std::collections::BTreeMap<Vec<u8>, &Seen> = Default::default();
    for seen in looks.iter().flatten().flatten() {
        let entry = youngest.entry(seen.entry.name.clone()).or_insert(seen);
        if seen.entry.modified > entry.entry.modified {
            *entry = seen;
        }
    }
    let master = youngest
        .values()
        .max_by(|a, b| {
            a.entry
                .modified
                .cmp(&b.entry.modified)
                .then(b.entry.name.cmp(&a.entry.name))
        })
        .map(|seen| String::from_utf8_lossy(&seen.entry.name).into_owned());
    let heartbeats = youngest
        .values()
        .map(|seen| heartbeat(&seen.entry, seen.regular, vars, now))
        .collect();
    (heartbeats, master)
}

/// One entry of a heartbeat directory, as status read it.
struct Seen {
    entry: listing::Entry,
    /// `[ -f ]`: a regular file, following symbolic links.
    regular: bool,
    record: Option<Record>,
}

/// Lists `dir` and reads the records in it, fresh.
fn look(dir: &str) -> Result<Vec<Seen>, String> {
    let entries = listing::entries(dir).map_err(|error| error.0)?;
    Ok(entries
        .into_iter()
        .take(MAX_RECORDS_READ)
        .map(|entry| {
            let path = format!("{dir}/{}", String::from_utf8_lossy(&entry.name));
            let regular = files::is_regular_file(&path);
            let record = match records::read(&path) {
                Ok(EntryRead::File { text, .. }) if regular => Record::parse(&text),
                _ => None,
            };
            Seen {
                entry,
                regular,
                record,
            }
        })
        .collect())
}

/// Looks at every directory at once, each at most `DIRECTORY_LIMIT`: what each showed, and
/// its entries when it answered.
fn look_at_all(dirs: &[String]) -> (Vec<Directory>, Vec<Option<Vec<Seen>>>) {
    let started = boot_clock();
    let outcomes = Pools::default().on_each_directory(dirs, DIRECTORY_LIMIT, look);
    dirs.iter()
        .zip(outcomes)
        .map(|(dir, outcome)| {
            let (latency, looked) = match outcome {
                Outcome::Answered { value, at } => (Some(at.saturating_sub(started)), value),
                Outcome::NoAnswer { .. } | Outcome::Refused { .. } => (
                    None,
                    Err(format!("no answer within {} s", DIRECTORY_LIMIT.as_secs())),
                ),
            };
            let directory = describe_directory(dir, latency, &looked);
            (directory, looked.ok())
        })
        .unzip()
}

fn describe_directory(
    dir: &str,
    latency: Option<Duration>,
    looked: &Result<Vec<Seen>, String>,
) -> Directory {
    let mut records: Vec<RecordSight> = looked
        .iter()
        .flatten()
        .filter_map(|seen| seen.record.as_ref())
        .map(|record| RecordSight {
            host: record.host.clone(),
            token: record.token,
            state: match record.phase {
                Phase::Claim => "claim",
                Phase::Master => "master",
            },
        })
        .collect();
    records.sort_by(|a, b| a.host.cmp(&b.host));
    let master = records
        .iter()
        .filter(|record| record.state == "master")
        .max_by(|a, b| (a.token, &a.host).cmp(&(b.token, &b.host)))
        .map(|record| record.host.clone());
    Directory {
        path: dir.to_string(),
        reachable: looked.is_ok(),
        latency_ms: latency.map(|latency| latency.as_millis() as u64),
        error: looked.as_ref().err().cloned(),
        records,
        master,
    }
}

/// Directories that cannot be reached, and directories that name different masters.
fn warn_about_directories(directories: &[Directory], warnings: &mut Vec<String>) {
    if directories.len() < 2 {
        return;
    }
    for directory in directories.iter().filter(|d| !d.reachable) {
        warnings.push(format!(
            "heartbeat directory {} cannot be reached: {}",
            directory.path,
            directory.error.as_deref().unwrap_or("no answer")
        ));
    }
    let mut masters: Vec<&str> = directories
        .iter()
        .filter_map(|d| d.master.as_deref())
        .collect();
    masters.sort_unstable();
    masters.dedup();
    if masters.len() > 1 {
        warnings.push(format!(
            "the heartbeat directories name different masters ({}): a directory that was unreachable has not been brought up to date yet, or a takeover is under way",
            masters.join(", ")
        ));
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
        key: None,
    }
}

/// The banner that makes maintenance impossible to miss.
pub fn maintenance_banner(maintenance: &Maintenance, colour: bool) -> String {
    let mut lines = vec!["MAINTENANCE MODE IS ON".to_string()];
    let key = maintenance.key.as_ref().filter(|key| key.set);
    if let Some(key) = key {
        lines.push("every node's loop does nothing while this etcd key exists".to_string());
        lines.push(format!("etcd key: {}", key.key));
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
    boxed(&lines, colour)
}

/// The banner for a quorum that one more lost directory would break, or that is broken.
fn quorum_banner(quorum: &Quorum, directories: &[Directory], colour: bool) -> Option<String> {
    if quorum.directories < 2 {
        return None;
    }
    let mut lines = match quorum.state {
        "bare majority" => vec![
            format!(
                "ONLY A BARE MAJORITY OF HEARTBEAT DIRECTORIES ANSWERS ({} of {})",
                quorum.reachable, quorum.directories
            ),
            "one more lost directory stops the application everywhere:".to_string(),
            "no master can renew its lease and no standby can take over".to_string(),
        ],
        "none" => vec![
            format!(
                "NO MAJORITY OF HEARTBEAT DIRECTORIES ANSWERS ({} of {}, {} needed)",
                quorum.reachable, quorum.directories, quorum.majority
            ),
            "no host runs the application until a majority is back".to_string(),
        ],
        _ => return None,
    };
    lines.extend(
        directories
            .iter()
            .filter(|d| !d.reachable)
            .map(|d| format!("unreachable: {}", d.path)),
    );
    Some(boxed(&lines, colour))
}

/// `lines` in a box of `#`, in the colour of bad news.
fn boxed(lines: &[String], colour: bool) -> String {
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

/// The table of heartbeat directories and the quorum line, when there are several.
fn render_directories(status: &Status, colour: bool) -> String {
    let Some(quorum) = status.quorum.as_ref().filter(|q| q.directories > 1) else {
        return String::new();
    };
    let mut rows = vec![vec![
        ("DIRECTORY".to_string(), Tone::Plain),
        ("STATE".to_string(), Tone::Plain),
        ("LATENCY".to_string(), Tone::Plain),
        ("SHOWS".to_string(), Tone::Plain),
    ]];
    for directory in &status.heartbeat_dirs {
        let (state, tone) = if directory.reachable {
            ("reachable".to_string(), Tone::Good)
        } else {
            (
                format!(
                    "unreachable: {}",
                    directory.error.as_deref().unwrap_or("no answer")
                ),
                Tone::Bad,
            )
        };
        let latency = directory.latency_ms.map_or("-".to_string(), |ms| match ms {
            0 => "<1 ms".to_string(),
            ms => format!("{ms} ms"),
        });
        let shows = match (&directory.master, directory.reachable) {
            (_, false) => String::new(),
            (Some(master), true) => {
                let token = directory
                    .records
                    .iter()
                    .find(|r| r.host == *master)
                    .map_or(0, |r| r.token);
                format!("master {master} (token {token})")
            }
            (None, true) => "no master record".to_string(),
        };
        rows.push(vec![
            (directory.path.clone(), Tone::Plain),
            (state, tone),
            (latency, Tone::Plain),
            (shows, Tone::Plain),
        ]);
    }
    let tone = match quorum.state {
        "all" | "majority" => Tone::Good,
        "bare majority" => Tone::Warning,
        _ => Tone::Bad,
    };
    format!(
        "{}{}\n\n",
        table::render(&rows, colour),
        table::paint(
            &format!(
                "quorum: {} of {} directories answer, {} needed ({})",
                quorum.reachable, quorum.directories, quorum.majority, quorum.state
            ),
            tone,
            colour
        )
    )
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

/// The heartbeat directory's part of the human status: its entries as the loop judges them.
fn render_heartbeats(status: &Status, colour: bool) -> String {
    let mut out = String::new();
    let quorum_banner = status
        .quorum
        .as_ref()
        .and_then(|quorum| quorum_banner(quorum, &status.heartbeat_dirs, colour));
    if let Some(quorum_banner) = quorum_banner {
        out.push_str(&quorum_banner);
        out.push('\n');
    }
    let directories = if status.heartbeat_dirs.len() > 1 {
        format!("{} heartbeat directories", status.heartbeat_dirs.len())
    } else {
        format!("heartbeat directory {}", status.heartbeat_dir)
    };
    out.push_str(&format!(
        "host {}, {directories}, faileOverTime {} s, profile {}\n\n",
        status.host_name, status.faile_over_time, status.profile
    ));
    out.push_str(&render_directories(status, colour));
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
    out
}

/// The etcd cluster's part of the human status: each endpoint's member, the leader key and, when
/// one more failure would stop the cluster, a banner.
fn render_etcd(status: &Status, etcd: &EtcdStatus, colour: bool) -> String {
    let survey = &etcd.survey;
    let mut out = String::new();
    if let Some(banner) = etcd_quorum_banner(survey.quorum, colour) {
        out.push_str(&banner);
        out.push('\n');
    }
    out.push_str(&format!(
        "host {}, etcd prefix {}, faileOverTime {} s, profile {}\n\n",
        status.host_name, etcd.prefix, status.faile_over_time, status.profile
    ));
    let mut rows = vec![
        ["ENDPOINT", "HEALTH", "MEMBER", "ROLE", "TERM", "VERSION"]
            .map(|title| (title.to_string(), Tone::Plain))
            .to_vec(),
    ];
    for endpoint in &survey.endpoints {
        let name = endpoint.member_id.as_deref().map_or(String::new(), |id| {
            let named = survey.members.iter().flatten().find(|m| m.id == id);
            named.map_or(id.to_string(), |member| format!("{} ({id})", member.name))
        });
        // Why it is down is among the warnings, whole; the table stays narrow.
        let (health, tone) = if endpoint.healthy {
            ("healthy", Tone::Good)
        } else {
            ("DOWN", Tone::Bad)
        };
        let role = match (endpoint.healthy, endpoint.is_leader()) {
            (true, true) => "leader",
            (true, false) => "follower",
            (false, _) => "",
        };
        rows.push(vec![
            (endpoint.endpoint.clone(), Tone::Plain),
            (health.to_string(), tone),
            (name, Tone::Plain),
            (role.to_string(), Tone::Plain),
            (
                endpoint.raft_term.map_or(String::new(), |t| t.to_string()),
                Tone::Plain,
            ),
            (endpoint.version.clone().unwrap_or_default(), Tone::Plain),
        ]);
    }
    out.push_str(&table::render(&rows, colour));
    let quorum = match survey.quorum {
        EtcdQuorum::Healthy => table::paint("healthy", Tone::Good, colour),
        EtcdQuorum::AtRisk => table::paint("AT RISK", Tone::Warning, colour),
        EtcdQuorum::Lost => table::paint("LOST", Tone::Bad, colour),
    };
    let members = survey
        .members
        .as_ref()
        .map_or("members unknown".to_string(), |m| {
            format!("{} members", m.len())
        });
    out.push_str(&format!("\nquorum:       {quorum} ({members})\n"));
    let leader = match &survey.leader_key {
        Some(key) => {
            let left = key
                .lease_seconds_left
                .map_or("time left unknown".to_string(), |left| {
                    format!("{left} s left")
                });
            table::paint(
                &format!(
                    "{} holds it, token {}, lease {} ({left})",
                    key.holder, key.token, key.lease
                ),
                Tone::Good,
                colour,
            )
        }
        None if survey.keys_read() => "free: the first standby to see it so takes over".to_string(),
        None => "unknown: the cluster did not answer".to_string(),
    };
    out.push_str(&format!("leader key:   {leader}\n"));
    out
}

/// What puts the cluster in maintenance, or what would.
pub fn maintenance_source(maintenance: &Maintenance) -> String {
    let key = maintenance.key.as_ref();
    match key {
        Some(key) if key.set => format!("etcd key {}", key.key),
        Some(key) if !maintenance.active => {
            format!(
                "{} does not exist, nor etcd key {}",
                maintenance.file, key.key
            )
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
    match &status.etcd {
        Some(etcd) => out.push_str(&render_etcd(status, etcd, colour)),
        None => out.push_str(&render_heartbeats(status, colour)),
    }
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

/// Whether two paths are on the same filesystem (same device), for the maintenance warning.
pub fn same_filesystem(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    Some(std::fs::metadata(a).ok()?.dev() == std::fs::metadata(b).ok()?.dev())
}
