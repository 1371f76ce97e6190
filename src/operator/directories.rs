//! The operator side of the files backend: heartbeat.sh's directory, or several where a
//! majority decides (hacmpHeartBeatDirs).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{
    Hazard, Heartbeat, LeaseStore, Look, MaintenanceSwitch, StoreDetails, StoreNode, SwitchReading,
    Switched, hazard,
};
use crate::config::{Origin, Settings, Variables};
use crate::real::batch::{Outcome, Pools};
use crate::real::guard::boot_clock;
use crate::real::{files, listing, records};
use crate::safe::files::MAINTENANCE_ENTRY;
use crate::safe::record::{Phase, Record};
use crate::storage::{self, Mount, Sharing, StorageProbe};
use crate::table::{self, Tone};
use crate::world::EntryRead;

/// How long status waits for each heartbeat directory: a directory whose site is down must
/// not hang the command (a hard NFS mount would).
pub const DIRECTORY_LIMIT: Duration = Duration::from_secs(2);
/// The most entries of one directory whose records status reads, as many as the safe loop reads.
const MAX_RECORDS_READ: usize = crate::safe::files::MAX_ENTRIES;

/// The heartbeat directories that hold the lease: heartBeatDir alone, or hacmpHeartBeatDirs.
pub struct Directories {
    dirs: Vec<String>,
    /// Whether the loop obeys maintenance markers in the directories (the safe profile does,
    /// the compat profile, as heartbeat.sh, only the maintenance file).
    markers: bool,
}

impl Directories {
    pub fn new(dirs: Vec<String>, markers: bool) -> Directories {
        assert!(
            !dirs.is_empty(),
            "the lease lives in at least one directory"
        );
        Directories { dirs, markers }
    }

    /// hacmpHeartBeatDirs, when the lease lives in several directories.
    fn several(&self) -> Option<&[String]> {
        (self.dirs.len() > 1).then_some(self.dirs.as_slice())
    }
}

impl LeaseStore for Directories {
    /// The directories' canonical paths: a relative heartBeatDir names the same directory for
    /// the daemon and for a status run elsewhere.
    fn identity(&self) -> String {
        let canonical: Vec<String> = (self.dirs.iter())
            .map(|dir| std::fs::canonicalize(dir).map_or(dir.clone(), |d| d.display().to_string()))
            .collect();
        format!("directories {}", canonical.join(" "))
    }

    fn look(&self, vars: &Variables, now: i64) -> Look {
        let mut warnings = Vec::new();
        let (directories, looks) = look_at_all(&self.dirs);
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
        let claiming: Vec<&str> = (directories.iter())
            .flat_map(|directory| &directory.records)
            .filter(|record| record.state == "claim")
            .map(|record| record.host.as_str())
            .collect();
        // The safe profile's records name the master; compat heartbeats only by their age.
        let record_master = directories.iter().find_map(|d| d.master.as_ref());
        let leader = record_master.or(master.as_ref());
        let nodes = (heartbeats.iter())
            .map(|heartbeat| StoreNode {
                host: heartbeat.host.clone(),
                role: if claiming.contains(&heartbeat.host.as_str()) {
                    Some("claiming")
                } else if leader == Some(&heartbeat.host) {
                    Some("master")
                } else {
                    None
                },
                alive: heartbeat.alive,
                age_seconds: Some(heartbeat.age_seconds),
            })
            .collect();
        let details = DirectoriesStatus {
            quorum: Quorum::of(&directories),
            heartbeat_dirs: directories,
            heart_beat_dir: vars.heart_beat_dir.clone(),
            empty: heartbeats.is_empty(),
        };
        Look {
            nodes,
            unseen: "standbys write nothing to the heartbeat directory until they take over: a host that stands by shows here only when its daemon runs on this host",
            master,
            master_alive,
            heartbeats,
            maintenance: self.maintenance_switch().map(|markers| SwitchReading {
                name: markers.name(),
                place: markers.place(),
                value: markers.read().unwrap_or_else(|error| {
                    warnings.push(error);
                    None
                }),
            }),
            warnings,
            details: Box::new(details),
        }
    }

    fn hazards(&self, storage: &dyn StorageProbe, working_directory: &Path) -> Vec<Hazard> {
        let mut found = Vec::new();
        let around = Around {
            storage,
            working_directory,
        };
        heartbeat_storage(self, &around, &mut found);
        found
    }

    fn heartbeat_dirs(&self) -> Option<&[String]> {
        Some(&self.dirs)
    }

    fn uses_heart_beat_dir(&self) -> bool {
        self.several().is_none()
    }

    fn heart_beat_dir_fate(&self, settings: &Settings) -> Option<String> {
        let dirs = self.several()?;
        let heart_beat_dir = settings.get("heartBeatDir");
        Some(if heart_beat_dir.origin == Origin::Default {
            format!(
                "the safe loop keeps its lease in the {} directories of hacmpHeartBeatDirs, on a majority of them; heartBeatDir is not set and not used",
                dirs.len()
            )
        } else {
            format!(
                "the safe loop keeps its lease in the {} directories of hacmpHeartBeatDirs, on a majority of them; heartBeatDir ({}) is used only as one of them",
                dirs.len(),
                heart_beat_dir.value
            )
        })
    }

    fn spans_sites(&self) -> bool {
        self.several().is_some()
    }

    fn maintenance_switch(&self) -> Option<Box<dyn MaintenanceSwitch>> {
        let markers = Markers(self.dirs.clone());
        self.markers
            .then(|| Box::new(markers) as Box<dyn MaintenanceSwitch>)
    }

    fn maintenance_warning(&self, vars: &Variables) -> Option<String> {
        if self.markers {
            return None;
        }
        let file = &vars.maintenance_file;
        if !file.starts_with('/') {
            return Some(format!(
                "maintenanceFile {file} is a relative path: it freezes only hosts whose daemon runs in this working directory"
            ));
        }
        let parent = Path::new(file).parent()?;
        match same_filesystem(parent, Path::new(&vars.heart_beat_dir)) {
            Some(false) => Some(format!(
                "maintenanceFile {file} is not on the heartbeat directory's filesystem: it freezes only this host, not the cluster"
            )),
            _ => None,
        }
    }
}

/// The safe profile's maintenance markers, one in each heartbeat directory: a majority of them
/// decides, so losing one site's storage neither hides maintenance nor imposes it.
struct Markers(Vec<String>);

impl MaintenanceSwitch for Markers {
    fn name(&self) -> String {
        MAINTENANCE_ENTRY.to_string()
    }

    fn place(&self) -> String {
        format!(
            "{MAINTENANCE_ENTRY} in the heartbeat directories ({})",
            self.0.join(", ")
        )
    }

    fn read(&self) -> Result<Option<String>, String> {
        records::read_maintenance_markers(&self.0)
    }

    fn switch_on(&self, note: &str) -> Result<Switched, String> {
        records::switch_maintenance_markers(&self.0, Some(note)).map(|_| Switched::On)
    }

    fn switch_off(&self) -> Result<Switched, String> {
        records::switch_maintenance_markers(&self.0, None).map(|_| Switched::Off)
    }
}

/// Whether two paths are on the same filesystem (same device), for the maintenance warning.
fn same_filesystem(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    Some(std::fs::metadata(a).ok()?.dev() == std::fs::metadata(b).ok()?.dev())
}

/// The files backend's own fields of the JSON status.
#[derive(Serialize)]
struct DirectoriesStatus {
    /// Each directory the lease lives in, as this status found it.
    heartbeat_dirs: Vec<Directory>,
    /// How many of those directories answer, against the majority the loop needs.
    quorum: Quorum,
    #[serde(skip)]
    heart_beat_dir: String,
    /// No directory holds a heartbeat.
    #[serde(skip)]
    empty: bool,
}

impl StoreDetails for DirectoriesStatus {
    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        super::json_of(self)
    }

    fn banner(&self, colour: bool) -> Option<String> {
        quorum_banner(&self.quorum, &self.heartbeat_dirs, colour)
    }

    fn place(&self) -> String {
        if self.heartbeat_dirs.len() > 1 {
            format!("{} heartbeat directories", self.heartbeat_dirs.len())
        } else {
            format!("heartbeat directory {}", self.heart_beat_dir)
        }
    }

    fn render(&self, colour: bool) -> String {
        let mut out = render_directories(&self.quorum, &self.heartbeat_dirs, colour);
        if self.empty {
            out.push_str("no heartbeats: the first host to loop becomes master\n\n");
        }
        out
    }
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
    Some(table::boxed(&lines, colour))
}

/// The table of heartbeat directories and the quorum line, when there are several.
fn render_directories(quorum: &Quorum, directories: &[Directory], colour: bool) -> String {
    if quorum.directories < 2 {
        return String::new();
    }
    let mut rows = vec![vec![
        ("DIRECTORY".to_string(), Tone::Plain),
        ("STATE".to_string(), Tone::Plain),
        ("LATENCY".to_string(), Tone::Plain),
        ("SHOWS".to_string(), Tone::Plain),
    ]];
    for directory in directories {
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

/// The storage of the heartbeat directories: heartBeatDir alone, or each of hacmpHeartBeatDirs
/// and whether they are independent of each other.
fn heartbeat_storage(dirs: &Directories, around: &Around, found: &mut Vec<Hazard>) {
    let table = around.storage.mount_table().ok();
    let Some(several) = dirs.several() else {
        directory_storage("heartBeatDir", "", &dirs.dirs[0], around, &table, found);
        return;
    };
    let mut mounts = Vec::new();
    for dir in several {
        let mount = directory_storage(
            "hacmpHeartBeatDirs",
            &format!("lists {dir}, which "),
            dir,
            around,
            &table,
            found,
        );
        mounts.extend(mount.map(|mount| (dir.as_str(), mount)));
    }
    for group in fate_groups(&mounts) {
        let [(_, first_mount), (_, second_mount), ..] = &group[..] else {
            continue;
        };
        let named: Vec<&str> = group.iter().map(|(dir, _)| *dir).collect();
        let reason = storage::shared_fate(first_mount, second_mount)
            .expect("a group holds directories that share their fate");
        found.push(hazard(
            "hacmpHeartBeatDirs",
            format!(
                "lists {}, which {reason}: one outage takes them all, so they count as one site; a majority survives the loss of a site only when each directory is on its own storage",
                named.join(" and ")
            ),
        ));
    }
}

/// What the storage hazards look at besides the directories.
struct Around<'a> {
    storage: &'a dyn StorageProbe,
    working_directory: &'a Path,
}

/// The directories grouped by shared fate: each group's members are on one filesystem or one
/// NFS server as its first member.
fn fate_groups<'a>(mounts: &[(&'a str, Mount)]) -> Vec<Vec<(&'a str, Mount)>> {
    let mut groups: Vec<Vec<(&str, Mount)>> = Vec::new();
    for (dir, mount) in mounts {
        let joined = groups
            .iter_mut()
            .find(|group| storage::shared_fate(&group[0].1, mount).is_some());
        match joined {
            Some(group) => group.push((dir, mount.clone())),
            None => groups.push(vec![(dir, mount.clone())]),
        }
    }
    groups
}

/// The hazards of one heartbeat directory's storage, each reason starting with `lead`; returns
/// its mount when the mount table shows it.
fn directory_storage(
    variable: &'static str,
    lead: &str,
    dir: &str,
    around: &Around,
    table: &Option<String>,
    found: &mut Vec<Hazard>,
) -> Option<Mount> {
    let dir = around.working_directory.join(dir);
    let sharing = storage::sharing(around.storage, &dir);
    // A directory that did not answer statfs would not answer the lookups either.
    let answered = !matches!(&sharing, Err(error) if error.kind() == std::io::ErrorKind::TimedOut);
    match sharing {
        Ok(Sharing::Shared(_)) => {}
        Ok(Sharing::Local(magic)) => found.push(hazard(
            variable,
            format!(
                "{lead}is on a local filesystem ({}): other hosts cannot see these heartbeats; use NFS, CIFS or a cluster filesystem",
                local_filesystem_name(magic)
            ),
        )),
        Err(error) => found.push(hazard(variable, format!("{lead}cannot be examined: {error}"))),
    }
    let canonical = answered
        .then(|| around.storage.canonical(&dir))
        .flatten()
        .unwrap_or(dir);
    let mount = storage::mount_of(table.as_deref()?, &canonical)?;
    if !mount.is_nfs() {
        return Some(mount);
    }
    let cached = mount.attribute_cache_seconds();
    if cached > 0 {
        found.push(hazard(
            variable,
            format!(
                "{lead}is on an NFS mount ({}) that caches file attributes for up to {cached} s: this host may see a peer's heartbeat that old; mount it with noac or actimeo=0",
                mount.mount_point.display()
            ),
        ));
    }
    if mount.is_soft() {
        found.push(hazard(
            variable,
            format!(
                "{lead}is on a soft NFS mount ({}): when the server is slow, reads fail instead of waiting, and the loop takes a failed read for a missing heartbeat",
                mount.mount_point.display()
            ),
        ));
    }
    Some(mount)
}

fn local_filesystem_name(magic: i64) -> String {
    match magic {
        0xEF53 => "ext2/ext3/ext4".to_string(),
        0x5846_5342 => "xfs".to_string(),
        0x9123_683E => "btrfs".to_string(),
        0x0102_1994 => "tmpfs".to_string(),
        0x794c_7630 => "overlayfs".to_string(),
        0x2fc1_2fc1 => "zfs".to_string(),
        other => format!("type 0x{other:x}"),
    }
}
