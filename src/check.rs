//! `hacmp check`: every variable with its origin, and the hazards of the configuration, each
//! with a one-line reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::advice;
use crate::config::{self, Origin, Profile, Setting, Settings, Variables};
pub use crate::operator::Hazard;
use crate::operator::{LeaseStore, hazard};
use crate::pattern::Pattern;
use crate::real::containment::Containment;
use crate::real::processes;
use crate::storage::{RealStorage, StorageProbe};
use crate::table::{self, Tone};
use crate::{EXIT_INVALID, preflight};

/// A running process: its PID and its command line with arguments joined by spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub command_line: String,
}

/// What the checks look at besides the variables.
pub struct Surroundings<'a> {
    pub storage: &'a dyn StorageProbe,
    /// The processes pgrepProgramName matches right now (hacmp's own excluded).
    pub matching_processes: Vec<Process>,
    /// The command lines under which the monitoring daemon runs on this host, e.g.
    /// `hacmp run /etc/hacmp/vars` and `/bin/bash /opt/heartbeat.sh`.
    pub daemon_command_lines: Vec<String>,
    pub working_directory: PathBuf,
}

/// The hazards of `vars`, with the lease in `store`.
pub fn hazards(vars: &Variables, store: &dyn LeaseStore, around: &Surroundings) -> Vec<Hazard> {
    let mut found = Vec::new();
    relative_paths(vars, store, around, &mut found);
    found.extend(store.hazards(around.storage, &around.working_directory));
    if vars.loop_time >= vars.faile_over_time {
        found.push(hazard(
            "loopTime",
            format!(
                "is not shorter than faileOverTime ({} s): the master touches its heartbeat less often than peers declare it dead, so they take over from a live master",
                vars.faile_over_time
            ),
        ));
    }
    pattern_matches(vars, around, &mut found);
    maintenance_file_placement(vars, store, around, &mut found);
    found.extend(
        advice::warnings(vars, around.storage)
            .into_iter()
            .map(|advice| hazard(advice.variable, advice.reason)),
    );
    if store.spans_sites()
        && let Some(reason) = crate::storage::maintenance_file_on_one_site(
            around.storage,
            Path::new(&vars.maintenance_file),
        )
    {
        found.push(hazard("maintenanceFile", reason));
    }
    found
}

fn maintenance_file_placement(
    vars: &Variables,
    store: &dyn LeaseStore,
    around: &Surroundings,
    found: &mut Vec<Hazard>,
) {
    let inside = |dir: &str| {
        is_inside(
            &vars.maintenance_file,
            dir,
            &around.working_directory,
            around.storage,
        )
    };
    match store.heartbeat_dirs() {
        Some(dirs) if dirs.len() > 1 => {
            if let Some(dir) = dirs.iter().find(|dir| inside(dir)) {
                found.push(hazard(
                    "maintenanceFile",
                    format!("is inside {dir}, one of hacmpHeartBeatDirs: the loop takes it for a host's heartbeat and may elect it master"),
                ));
            }
        }
        Some(_) if inside(&vars.heart_beat_dir) => found.push(hazard(
            "maintenanceFile",
            "is inside heartBeatDir: the loop takes it for a host's heartbeat and may elect it master".to_string(),
        )),
        _ => {}
    }
}

fn relative_paths(
    vars: &Variables,
    store: &dyn LeaseStore,
    around: &Surroundings,
    found: &mut Vec<Hazard>,
) {
    let program = vars.start_program();
    let paths: [(&'static str, &str); 4] = [
        ("heartBeatDir", &vars.heart_beat_dir),
        ("maintenanceFile", &vars.maintenance_file),
        ("startCmdLogFile", &vars.start_cmd_log_file),
        (
            "startCmd",
            if program.contains('/') { program } else { "/" },
        ),
    ];
    for (variable, path) in paths {
        // hacmpHeartBeatDirs are absolute, and heartBeatDir is then either unused or one of them.
        let unused = variable == "heartBeatDir" && !store.uses_heart_beat_dir();
        if !path.starts_with('/') && !unused {
            found.push(hazard(
                variable,
                format!(
                    "is a relative path, resolved against the working directory ({} here); systemd starts services in / unless the unit sets WorkingDirectory=",
                    around.working_directory.display()
                ),
            ));
        }
    }
}

fn pattern_matches(vars: &Variables, around: &Surroundings, found: &mut Vec<Hazard>) {
    let program_name = Path::new(vars.start_program())
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    for process in &around.matching_processes {
        if !process.command_line.contains(&program_name) {
            found.push(hazard(
                "pgrepProgramName",
                format!(
                    "matches process {} ({}), which does not look like startCmd: a standby host kills every match",
                    process.pid, process.command_line
                ),
            ));
        }
    }
    let pattern: &Pattern = &vars.pgrep_program_name;
    for command_line in &around.daemon_command_lines {
        if pattern.is_match(command_line.as_bytes()) {
            found.push(hazard(
                "pgrepProgramName",
                format!(
                    "matches the monitoring daemon's own command line ({command_line}): a bash node would kill its own daemon"
                ),
            ));
        }
    }
}

/// `hacmp check [FILE] [--json]`: prints the variables, the lease's place and the hazards, and
/// returns the exit status (documented in its --help).
pub fn run(file: Option<&Path>, json: bool) -> u8 {
    let colour = table::use_colour();
    let settings = match config::resolve_from_process_environment(file) {
        Ok(settings) => settings,
        Err(error) => {
            if json {
                table::print(&render_json(None, Err(&error.to_string())));
            } else {
                eprintln!("hacmp: {error}");
            }
            return EXIT_INVALID;
        }
    };
    if !json {
        table::print(&render_settings(&settings, colour));
    }
    let checked = settings
        .validate()
        .and_then(|variables| preflight::check(&settings, &variables).map(|()| variables));
    let variables = match checked {
        Ok(variables) => variables,
        Err(error) => {
            if json {
                table::print(&render_json(Some(&settings), Err(&error.to_string())));
            } else {
                table::print(&format!(
                    "\n{}\n",
                    table::paint(&format!("invalid: {error}"), Tone::Bad, colour)
                ));
            }
            return EXIT_INVALID;
        }
    };
    let surroundings = Surroundings {
        storage: &RealStorage,
        matching_processes: matching_processes(&variables),
        daemon_command_lines: daemon_command_lines(file),
        working_directory: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
    };
    let store = crate::operator::of(&variables);
    let hazards = hazards(&variables, &*store, &surroundings);
    if json {
        table::print(&render_json(Some(&settings), Ok((&*store, &hazards))));
    } else {
        if let Some(fate) = store.heart_beat_dir_fate(&settings) {
            table::print(&format!("\nlease: {fate}\n"));
        }
        if let Profile::Safe(_) = variables.profile {
            let containment = Containment::plan(&variables.start_cmd_log_file);
            table::print(&format!(
                "\ncontainment of a daemon started like this command: {}\n",
                containment.describe()
            ));
        }
        table::print(&format!("\n{}", render_hazards(&hazards, colour)));
    }
    u8::from(!hazards.is_empty())
}

fn matching_processes(variables: &Variables) -> Vec<Process> {
    let encoding = variables.pgrep_program_name.encoding();
    processes::find(&variables.pgrep_program_name, std::process::id())
        .into_iter()
        .filter_map(|pid| {
            let line = processes::command_line(pid, encoding)?;
            Some(Process {
                pid,
                command_line: String::from_utf8_lossy(&line).into_owned(),
            })
        })
        .collect()
}

/// The command lines the monitoring daemon shows on this host: hacmp's, and bash's when the
/// file is heartbeat.sh run by bash.
fn daemon_command_lines(file: Option<&Path>) -> Vec<String> {
    let file = file.map(|f| f.display().to_string()).unwrap_or_default();
    let mut lines = vec![format!("hacmp run {file}").trim_end().to_string()];
    if !file.is_empty() {
        lines.push(format!("/bin/bash {file}"));
    }
    lines
}

/// Whether `path` lies inside `dir`, both resolved against `cwd` as the loop resolves them.
fn is_inside(path: &str, dir: &str, cwd: &Path, probe: &dyn StorageProbe) -> bool {
    let resolve = |p: &str| {
        let joined = cwd.join(p);
        // The file may not exist; its directory usually does.
        match (joined.parent(), joined.file_name()) {
            (Some(parent), Some(name)) => probe
                .canonical(parent)
                .map(|p| p.join(name))
                .unwrap_or(joined),
            _ => joined,
        }
    };
    let dir = probe
        .canonical(&cwd.join(dir))
        .unwrap_or_else(|| cwd.join(dir));
    resolve(path).parent().is_some_and(|parent| parent == dir)
}

/// The variables table: name, value, origin. hacmp's own variables appear only when set: each
/// turns on a feature or a backend, and a row for every one not in use would bury the eight
/// that every installation sets (`--json` lists them all).
pub fn render_settings(settings: &Settings, colour: bool) -> String {
    let mut rows = vec![vec![
        ("VARIABLE".to_string(), Tone::Plain),
        ("VALUE".to_string(), Tone::Plain),
        ("FROM".to_string(), Tone::Plain),
    ]];
    let in_use =
        |setting: &&Setting| !setting.name.starts_with("hacmp") || setting.origin != Origin::Unset;
    for setting in settings.settings.iter().filter(in_use) {
        rows.push(vec![
            (setting.name.to_string(), Tone::Plain),
            (setting.value.clone(), Tone::Plain),
            (setting.origin.to_string(), Tone::Plain),
        ]);
    }
    table::render(&rows, colour)
}

/// The version of `hacmp check --json`'s output (docs/check-json.md).
pub const JSON_SCHEMA: u32 = 1;

/// One variable in `hacmp check --json`.
#[derive(Serialize)]
struct JsonVariable<'a> {
    value: &'a str,
    origin: String,
}

/// `hacmp check --json`'s object.
#[derive(Serialize)]
struct CheckJson<'a> {
    schema: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    variables: Option<BTreeMap<&'static str, JsonVariable<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat_dirs: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heart_beat_dir_fate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hazards: Option<&'a [Hazard]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// `hacmp check --json`: every variable with its value and origin, when they could be read,
/// and either where the lease lives and the hazards found or, when the configuration is
/// unusable, the error.
pub fn render_json(
    settings: Option<&Settings>,
    checked: Result<(&dyn LeaseStore, &[Hazard]), &str>,
) -> String {
    let variables = settings.map(|settings| {
        settings
            .settings
            .iter()
            .map(|setting| {
                let variable = JsonVariable {
                    value: &setting.value,
                    origin: setting.origin.to_string(),
                };
                (setting.name, variable)
            })
            .collect()
    });
    let usable = checked.ok();
    let json = CheckJson {
        schema: JSON_SCHEMA,
        variables,
        heartbeat_dirs: usable.and_then(|(store, _)| store.heartbeat_dirs()),
        heart_beat_dir_fate: usable
            .zip(settings)
            .and_then(|((store, _), settings)| store.heart_beat_dir_fate(settings)),
        hazards: usable.map(|(_, hazards)| hazards),
        error: checked.err(),
    };
    serde_json::to_string_pretty(&json).expect("the check serializes") + "\n"
}

pub fn render_hazards(hazards: &[Hazard], colour: bool) -> String {
    if hazards.is_empty() {
        return format!("{}\n", table::paint("no hazards found", Tone::Good, colour));
    }
    let mut out = format!(
        "{}\n",
        table::paint(
            &format!("{} hazard(s):", hazards.len()),
            Tone::Warning,
            colour
        )
    );
    for found in hazards {
        out.push_str(&format!("  {}: {}\n", found.variable, found.reason));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io;

    use super::*;
    use crate::config::{self, Store};
    use crate::operator::etcd::{Endpoint, Etcd, EtcdQuorum, EtcdStatus, Member};
    use crate::storage;

    /// An NFS mount at /mnt/shared with the given options, the way a host that has one sees it.
    struct FakeStorage {
        magic: i64,
        nfs_options: &'static str,
    }

    impl StorageProbe for FakeStorage {
        fn filesystem_magic(&self, _: &Path) -> io::Result<i64> {
            Ok(self.magic)
        }
        fn mount_table(&self) -> io::Result<String> {
            let root = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n";
            if self.magic != NFS {
                return Ok(root.to_string());
            }
            Ok(format!(
                "{root}2 1 0:50 / /mnt/shared rw - nfs4 srv:/e {}\n",
                self.nfs_options
            ))
        }
    }

    const NFS: i64 = 0x6969;
    const EXT4: i64 = 0xEF53;
    const SAFE_NFS: FakeStorage = FakeStorage {
        magic: NFS,
        nfs_options: "rw,hard,noac",
    };

    fn variables(overrides: &[(&str, &str)]) -> Variables {
        let mut environment: HashMap<String, String> = [
            ("pgrepProgramName", "sh.*exampleApplication.sh"),
            ("startCmd", "/opt/app/exampleApplication.sh"),
            ("startCmdLogFile", "/var/log/app.log"),
            ("maintenanceFile", "/mnt/shared/maintenance"),
            ("heartBeatDir", "/mnt/shared/heartbeat"),
            ("hostName", "nodeA"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (name, value) in overrides {
            environment.insert(name.to_string(), value.to_string());
        }
        config::resolve(None, &environment)
            .unwrap()
            .validate()
            .unwrap()
    }

    fn reasons(
        vars: &Variables,
        storage: &dyn StorageProbe,
        processes: Vec<Process>,
    ) -> Vec<String> {
        reasons_in(vars, &*crate::operator::of(vars), storage, processes)
    }

    fn reasons_in(
        vars: &Variables,
        store: &dyn LeaseStore,
        storage: &dyn StorageProbe,
        processes: Vec<Process>,
    ) -> Vec<String> {
        let around = Surroundings {
            storage,
            matching_processes: processes,
            daemon_command_lines: vec!["/bin/bash /opt/app/heartbeat.sh".to_string()],
            working_directory: PathBuf::from("/"),
        };
        hazards(vars, store, &around)
            .into_iter()
            .map(|h| format!("{}: {}", h.variable, h.reason))
            .collect()
    }

    /// A host with the given mount table; statfs answers NFS for paths on NFS mounts.
    struct Mounts(&'static str);

    impl StorageProbe for Mounts {
        fn filesystem_magic(&self, path: &Path) -> io::Result<i64> {
            let mount = storage::mount_of(self.0, path).expect("the root is mounted");
            Ok(if mount.is_nfs() { NFS } else { EXT4 })
        }
        fn mount_table(&self) -> io::Result<String> {
            Ok(self.0.to_string())
        }
    }

    const THREE_SITES: &str = "\
1 0 8:1 / / rw - ext4 /dev/sda1 rw
2 1 0:50 / /mnt/dc1 rw - nfs4 filer.dc1:/hb rw,hard,noac
3 1 0:51 / /mnt/dc2 rw - nfs4 filer.dc2:/hb rw,hard,noac
4 1 0:52 / /mnt/witness rw - nfs4 witness.cloud:/hb rw,soft,acregmax=5,acdirmax=5
5 1 0:53 / /mnt/dc1-too rw - nfs4 filer.dc1:/other rw,hard,noac
";

    fn three_sites(dirs: &str) -> Variables {
        variables(&[
            ("hacmpProfile", "safe"),
            ("hacmpHeartBeatDirs", dirs),
            ("heartBeatDir", dirs.split(' ').next().unwrap()),
            ("maintenanceFile", "/mnt/dc1/maintenance"),
        ])
    }

    #[test]
    fn each_of_several_directories_is_examined_and_must_be_independent() {
        let vars = three_sites("/mnt/dc1/hb /mnt/dc2/hb /mnt/witness/hb");
        let found = reasons(&vars, &Mounts(THREE_SITES), vec![]);
        assert_eq!(
            found,
            [
                "hacmpHeartBeatDirs: lists /mnt/witness/hb, which is on an NFS mount (/mnt/witness) that caches file attributes for up to 5 s: this host may see a peer's heartbeat that old; mount it with noac or actimeo=0",
                "hacmpHeartBeatDirs: lists /mnt/witness/hb, which is on a soft NFS mount (/mnt/witness): when the server is slow, reads fail instead of waiting, and the loop takes a failed read for a missing heartbeat",
                MAINTENANCE_FILE_ON_ONE_SITE,
            ]
        );
        let shared = three_sites("/mnt/dc1/hb /mnt/dc1-too/hb /var/lib/hb");
        let found = reasons(&shared, &Mounts(THREE_SITES), vec![]);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("hacmpHeartBeatDirs: lists /var/lib/hb, which is on a local filesystem (ext2/ext3/ext4)"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("hacmpHeartBeatDirs: lists /mnt/dc1/hb and /mnt/dc1-too/hb, which are served by the same NFS server (filer.dc1): one outage takes them all"),
            "{found:?}"
        );
    }

    /// maintenanceFile on one site's NFS export, next to several directories or etcd.
    const MAINTENANCE_FILE_ON_ONE_SITE: &str = "maintenanceFile: is on nfs storage, which one site holds: while that site is lost the file cannot be read, and the daemons go by the maintenance state that `hacmp maintenance on|off` also keeps in the heartbeat directories (or etcd); switch maintenance with that command rather than by creating the file";

    #[test]
    fn directories_on_one_filesystem_are_named_together_once() {
        let vars = three_sites("/mnt/dc1/a /mnt/dc1/b /mnt/dc1/c");
        let found = reasons(&vars, &Mounts(THREE_SITES), vec![]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[1], MAINTENANCE_FILE_ON_ONE_SITE);
        assert!(
            found[0].starts_with("hacmpHeartBeatDirs: lists /mnt/dc1/a and /mnt/dc1/b and /mnt/dc1/c, which are on the same filesystem (device 0:50, mounted on /mnt/dc1)"),
            "{found:?}"
        );
    }

    #[test]
    fn a_maintenance_file_inside_any_heartbeat_directory_is_a_hazard() {
        let mut vars = three_sites("/mnt/dc1/hb /mnt/dc2/hb /mnt/witness/hb");
        vars.maintenance_file = "/mnt/dc2/hb/maintenance".to_string();
        let found = reasons(&vars, &Mounts(THREE_SITES), vec![]);
        assert!(
            found.iter().any(|f| f
                .starts_with("maintenanceFile: is inside /mnt/dc2/hb, one of hacmpHeartBeatDirs")),
            "{found:?}"
        );
    }

    fn fate_of(settings: &Settings) -> Option<String> {
        let vars = settings.validate().unwrap();
        crate::operator::of(&vars).heart_beat_dir_fate(settings)
    }

    #[test]
    fn check_says_what_becomes_of_heart_beat_dir() {
        let settings = |heart_beat_dir: Option<&str>| {
            let mut environment: HashMap<String, String> = [
                ("pgrepProgramName", "app"),
                ("startCmd", "/opt/app/app"),
                ("hacmpProfile", "safe"),
                (
                    "hacmpHeartBeatDirs",
                    "/mnt/dc1/hb /mnt/dc2/hb /mnt/witness/hb",
                ),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            if let Some(dir) = heart_beat_dir {
                environment.insert("heartBeatDir".to_string(), dir.to_string());
            }
            config::resolve(None, &environment).unwrap()
        };
        let kept = settings(Some("/mnt/dc2/hb"));
        let fate = fate_of(&kept).unwrap();
        assert!(
            fate.ends_with("heartBeatDir (/mnt/dc2/hb) is used only as one of them"),
            "{fate}"
        );
        let unset = settings(None);
        let fate = fate_of(&unset).unwrap();
        assert!(
            fate.ends_with("heartBeatDir is not set and not used"),
            "{fate}"
        );
        let single = config::resolve(
            None,
            &HashMap::from([
                ("startCmd".to_string(), "/bin/true".to_string()),
                ("pgrepProgramName".to_string(), "x".to_string()),
            ]),
        )
        .unwrap();
        assert_eq!(fate_of(&single), None);
    }

    #[test]
    fn a_sound_configuration_on_uncached_nfs_has_no_hazards() {
        assert_eq!(
            reasons(&variables(&[]), &SAFE_NFS, vec![]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn attribute_caching_and_soft_mounts_are_hazards() {
        let cached = FakeStorage {
            magic: NFS,
            nfs_options: "rw,soft,acregmax=20",
        };
        let found = reasons(&variables(&[]), &cached, vec![]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("caches file attributes for up to 60 s"),
            "{found:?}"
        );
        assert!(found[1].contains("soft NFS mount"), "{found:?}");
    }

    #[test]
    fn a_local_filesystem_is_a_hazard() {
        let local = FakeStorage {
            magic: EXT4,
            nfs_options: "",
        };
        let found = reasons(&variables(&[]), &local, vec![]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("heartBeatDir: is on a local filesystem (ext2/ext3/ext4)"));
    }

    #[test]
    fn relative_paths_and_slow_loops_are_hazards() {
        let vars = variables(&[("heartBeatDir", "heartbeat"), ("loopTime", "10")]);
        let found = reasons(&vars, &SAFE_NFS, vec![]);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("heartBeatDir: is a relative path"));
        assert!(found[1].starts_with("loopTime: is not shorter than faileOverTime (10 s)"));
        // A slow loop also lets a new master look dead after its takeover (src/advice.rs).
        assert!(found[2].starts_with("faileOverTime: is not more than the 5 s recheck"));
    }

    #[test]
    fn a_pattern_matching_strangers_or_the_daemon_is_a_hazard() {
        let vars = variables(&[("pgrepProgramName", "sh")]);
        let stranger = Process {
            pid: 42,
            command_line: "/usr/sbin/sshd -D".to_string(),
        };
        let ours = Process {
            pid: 43,
            command_line: "/bin/sh /opt/app/exampleApplication.sh".to_string(),
        };
        let found = reasons(&vars, &SAFE_NFS, vec![stranger, ours]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("matches process 42 (/usr/sbin/sshd -D)"));
        assert!(found[1].contains("matches the monitoring daemon's own command line"));
    }

    #[test]
    fn a_maintenance_file_inside_the_heartbeat_directory_is_a_hazard() {
        let vars = variables(&[("maintenanceFile", "/mnt/shared/heartbeat/maintenance")]);
        let found = reasons(&vars, &SAFE_NFS, vec![]);
        assert_eq!(
            found,
            [
                "maintenanceFile: is inside heartBeatDir: the loop takes it for a host's heartbeat and may elect it master"
            ]
        );
    }

    /// An etcd cluster of `members` (name, peer host), of which the endpoints list `listed`
    /// and the first `serving` of those answer.
    fn survey(members: &[(&str, &str)], listed: usize, serving: usize) -> EtcdStatus {
        let url = |host: &str, port: u16| format!("http://{host}:{port}");
        EtcdStatus {
            prefix: "/hacmp/payments".to_string(),
            endpoints: members[..listed]
                .iter()
                .enumerate()
                .map(|(index, (name, host))| Endpoint {
                    endpoint: url(host, 2379 + index as u16),
                    healthy: index < serving,
                    member_id: (index < serving).then(|| name.to_string()),
                    leader_id: (index < serving).then(|| members[0].0.to_string()),
                    raft_term: None,
                    version: None,
                    error: (index >= serving).then(|| "connection refused".to_string()),
                })
                .collect(),
            members: Some(
                members
                    .iter()
                    .enumerate()
                    .map(|(index, (name, host))| Member {
                        id: name.to_string(),
                        name: name.to_string(),
                        peer_urls: vec![url(host, 2480 + index as u16)],
                        client_urls: vec![url(host, 2379 + index as u16)],
                    })
                    .collect(),
            ),
            leader_key: None,
            maintenance_key: None,
            quorum: EtcdQuorum::Healthy,
            errors: Vec::new(),
        }
    }

    /// The hazards of `vars` with the etcd cluster `seen`.
    fn reasons_with_etcd(
        vars: &Variables,
        storage: &dyn StorageProbe,
        processes: Vec<Process>,
        seen: EtcdStatus,
    ) -> Vec<String> {
        let Store::Etcd(settings) = &vars.store else {
            panic!("the variables choose etcd");
        };
        let store = Etcd::seen(settings.clone(), seen);
        reasons_in(vars, &store, storage, processes)
    }

    fn etcd_variables() -> Variables {
        variables(&[
            ("hacmpProfile", "safe"),
            ("hacmpBackend", "etcd"),
            ("hacmpEtcdEndpoints", "http://10.0.1.5:2379"),
            ("hacmpEtcdPrefix", "/hacmp/payments"),
            // Relative, and on a local filesystem: neither matters, since etcd holds the lease.
            ("heartBeatDir", "heartbeat"),
        ])
    }

    #[test]
    fn three_members_on_three_hosts_all_listed_and_serving_have_no_hazards() {
        let local = FakeStorage {
            magic: EXT4,
            nfs_options: "",
        };
        let members = [("a", "10.0.1.5"), ("b", "10.0.2.5"), ("c", "10.0.3.5")];
        let found = reasons_with_etcd(&etcd_variables(), &local, vec![], survey(&members, 3, 3));
        assert_eq!(found, Vec::<String>::new());
    }

    #[test]
    fn etcd_hazards_name_down_endpoints_even_counts_one_host_and_unlisted_members() {
        let members = [
            ("a", "10.0.1.5"),
            ("b", "10.0.1.5"),
            ("c", "10.0.1.5"),
            ("d", "10.0.1.5"),
        ];
        let found = reasons_with_etcd(&etcd_variables(), &SAFE_NFS, vec![], survey(&members, 3, 2));
        assert_eq!(
            found,
            [
                "hacmpEtcdEndpoints: http://10.0.1.5:2381 does not serve: connection refused",
                "hacmpEtcdEndpoints: the cluster has 4 members: an even count survives no more failures than one member fewer (1 of 4), and a split between two sites stops it; use 3 or 5, one per site",
                "hacmpEtcdEndpoints: all 4 members of the cluster run on one host (10.0.1.5): its loss stops the cluster and every application with it; put one member per site",
                "hacmpEtcdEndpoints: lists 3 of the cluster's 4 members (not d): if those fail, this host loses the cluster (and its application) while the others still have it; list every member",
                MAINTENANCE_FILE_ON_ONE_SITE,
            ]
        );
    }
}
