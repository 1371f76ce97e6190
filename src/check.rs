//! `hacmp check`: every variable with its origin, and the hazards of the configuration, each
//! with a one-line reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Origin, Setting, Settings, Variables};
use crate::pattern::Pattern;
use crate::storage::{self, Sharing, StorageProbe};
use crate::table::{self, Tone};

/// A risk in a configuration that runs: it is legal, but it will hurt in some failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hazard {
    pub variable: &'static str,
    pub reason: String,
}

fn hazard(variable: &'static str, reason: String) -> Hazard {
    Hazard { variable, reason }
}

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

pub fn hazards(vars: &Variables, around: &Surroundings) -> Vec<Hazard> {
    let mut found = Vec::new();
    relative_paths(vars, around, &mut found);
    heartbeat_storage(vars, around, &mut found);
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
    if is_inside(
        &vars.maintenance_file,
        &vars.heart_beat_dir,
        &around.working_directory,
    ) {
        found.push(hazard(
            "maintenanceFile",
            "is inside heartBeatDir: the loop takes it for a host's heartbeat and may elect it master".to_string(),
        ));
    }
    found
}

fn relative_paths(vars: &Variables, around: &Surroundings, found: &mut Vec<Hazard>) {
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
        if !path.starts_with('/') {
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

fn heartbeat_storage(vars: &Variables, around: &Surroundings, found: &mut Vec<Hazard>) {
    let dir = around.working_directory.join(&vars.heart_beat_dir);
    match storage::sharing(around.storage, &dir) {
        Ok(Sharing::Shared(_)) => {}
        Ok(Sharing::Local(magic)) => found.push(hazard(
            "heartBeatDir",
            format!(
                "is on a local filesystem ({}): other hosts cannot see these heartbeats; use NFS, CIFS or a cluster filesystem",
                local_filesystem_name(magic)
            ),
        )),
        Err(error) => found.push(hazard(
            "heartBeatDir",
            format!("cannot be examined: {error}"),
        )),
    }
    let canonical = dir.canonicalize().unwrap_or(dir);
    let Ok(table) = around.storage.mount_table() else {
        return;
    };
    let Some(mount) = storage::mount_of(&table, &canonical) else {
        return;
    };
    if !mount.is_nfs() {
        return;
    }
    let cached = mount.attribute_cache_seconds();
    if cached > 0 {
        found.push(hazard(
            "heartBeatDir",
            format!(
                "is on an NFS mount ({}) that caches file attributes for up to {cached} s: this host may see a peer's heartbeat that old; mount it with noac or actimeo=0",
                mount.mount_point.display()
            ),
        ));
    }
    if mount.is_soft() {
        found.push(hazard(
            "heartBeatDir",
            format!(
                "is on a soft NFS mount ({}): when the server is slow, reads fail instead of waiting, and the loop takes a failed read for a missing heartbeat",
                mount.mount_point.display()
            ),
        ));
    }
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

/// Whether `path` lies inside `dir`, both resolved against `cwd` as the loop resolves them.
fn is_inside(path: &str, dir: &str, cwd: &Path) -> bool {
    let resolve = |p: &str| {
        let joined = cwd.join(p);
        // The file may not exist; its directory usually does.
        match (joined.parent(), joined.file_name()) {
            (Some(parent), Some(name)) => parent
                .canonicalize()
                .map(|p| p.join(name))
                .unwrap_or(joined),
            _ => joined,
        }
    };
    let dir = cwd
        .join(dir)
        .canonicalize()
        .unwrap_or_else(|_| cwd.join(dir));
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
    hazards: Option<&'a [Hazard]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// `hacmp check --json`: every variable with its value and origin, when they could be read,
/// and either the hazards found or, when the configuration is unusable, the error.
pub fn render_json(settings: Option<&Settings>, checked: Result<&[Hazard], &str>) -> String {
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
    let json = CheckJson {
        schema: JSON_SCHEMA,
        variables,
        hazards: checked.ok(),
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
    use crate::config;

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
        let around = Surroundings {
            storage,
            matching_processes: processes,
            daemon_command_lines: vec!["/bin/bash /opt/app/heartbeat.sh".to_string()],
            working_directory: PathBuf::from("/"),
        };
        hazards(vars, &around)
            .into_iter()
            .map(|h| format!("{}: {}", h.variable, h.reason))
            .collect()
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
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("heartBeatDir: is a relative path"));
        assert!(found[1].starts_with("loopTime: is not shorter than faileOverTime (10 s)"));
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
}
