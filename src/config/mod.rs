//! The eight variables of heartbeat.sh: where each comes from, and the checked values the loop
//! runs on.
//!
//! Loading has two stages, so that `hacmp check` can show the first even when the second fails:
//! `resolve` finds every variable's raw text and its origin (a file line, the environment or the
//! original script's default), and `Settings::validate` turns the text into `Variables` or one
//! error that names the variable and its origin.

pub mod shell;
pub mod store;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::pattern::Pattern;
use crate::timing::Timing;
use crate::words;

pub use store::{EtcdSettings, EtcdTls, Store};

/// The variables heartbeat.sh defines, in the order the script defines them.
pub const VARIABLE_NAMES: [&str; 8] = [
    "pgrepProgramName",
    "startCmd",
    "startCmdLogFile",
    "maintenanceFile",
    "hostName",
    "heartBeatDir",
    "faileOverTime",
    "loopTime",
];

/// hacmp's own variables, which heartbeat.sh does not have.
pub const HACMP_VARIABLE_NAMES: [&str; 10] = [
    "hacmpProfile",
    "hacmpEventCmd",
    "hacmpMetricsFile",
    "hacmpBackend",
    "hacmpHeartBeatDirs",
    "hacmpEtcdEndpoints",
    "hacmpEtcdPrefix",
    "hacmpEtcdCacert",
    "hacmpEtcdCert",
    "hacmpEtcdKey",
];

/// The longest hacmpEventCmd accepted: far more than a command line that calls a script needs,
/// and well within what one environment of a child process holds.
pub const MAX_EVENT_COMMAND_BYTES: usize = 4096;

/// The longest loopTime or faileOverTime accepted. A day is far beyond any sensible setting; the
/// limit keeps the arithmetic on timestamps far from overflow.
pub const MAX_SECONDS: u64 = 86_400;

/// Where a variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File {
        path: PathBuf,
        line: usize,
    },
    Environment,
    /// The value heartbeat.sh itself assigns (for hacmpProfile: compat).
    Default,
    /// An option of the hacmp command.
    CommandLine,
    /// No value anywhere, and the script's default is one only its author could use.
    Unset,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Origin::Environment => f.write_str("environment"),
            Origin::Default => f.write_str("default"),
            Origin::CommandLine => f.write_str("command line"),
            Origin::Unset => f.write_str("not set"),
        }
    }
}

/// One variable's raw text and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub value: String,
    pub origin: Origin,
}

/// All eight variables before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub settings: Vec<Setting>,
}

/// Why the configuration cannot be used. Its `Display` is the whole one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The checked variables the loop runs on; each field is the script's variable of that name.
#[derive(Debug, Clone)]
pub struct Variables {
    pub pgrep_program_name: Pattern,
    pub start_cmd: String,
    pub start_cmd_log_file: String,
    pub maintenance_file: String,
    pub host_name: String,
    pub heart_beat_dir: String,
    pub faile_over_time: u64,
    pub loop_time: u64,
    pub profile: Profile,
    /// hacmpEventCmd: a command run by /bin/sh on each event (README, "Events and metrics").
    pub event_command: Option<String>,
    /// hacmpMetricsFile: where to keep the Prometheus textfile, an absolute `.prom` path.
    pub metrics_file: Option<String>,
    /// Where the safe profile keeps its lease; with the compat profile always heartBeatDir.
    pub store: Store,
}

impl Variables {
    /// The program startCmd runs: its first field (validation rejects a blank startCmd).
    pub fn start_program(&self) -> &str {
        words::fields(&self.start_cmd)
            .next()
            .expect("validation rejects a blank startCmd")
    }
}

/// Which loop runs: heartbeat.sh's exactly, or the safe profile's (docs/safe-profile.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Compat,
    Safe(Timing),
}

/// The value heartbeat.sh assigns to a variable, or `None` where the script's value is its
/// author's example and a real installation must set its own.
fn script_default(name: &str) -> Option<String> {
    match name {
        "startCmdLogFile" => Some("./startCmdLogFile.log".to_string()),
        "maintenanceFile" => Some("./maintenance".to_string()),
        "hostName" => Some(local_host_name()),
        "heartBeatDir" => Some("heartbeat".to_string()),
        "faileOverTime" => Some("10".to_string()),
        "loopTime" => Some("3".to_string()),
        "hacmpProfile" => Some("compat".to_string()),
        "hacmpBackend" => Some("files".to_string()),
        _ => None,
    }
}

/// What `hostname` prints: the kernel's node name in our UTS namespace.
pub fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim_end_matches('\n').to_string())
        .unwrap_or_default()
}

/// `resolve` with this process's environment. Variables whose name or value is not UTF-8 are
/// left out: none of ours can be such, and the rest are only visible to `$VAR` expansions.
pub fn resolve_from_process_environment(file: Option<&Path>) -> Result<Settings, ConfigError> {
    let environment: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    resolve(file, &environment)
}

/// Finds each variable's value: the file's last assignment wins (as when bash sources it), then
/// the environment, then the script's default.
pub fn resolve(
    file: Option<&Path>,
    environment: &HashMap<String, String>,
) -> Result<Settings, ConfigError> {
    let assignments = match file {
        Some(path) => {
            shell::read_assignments(path, environment).map_err(|e| ConfigError(format!("{e}")))?
        }
        None => Vec::new(),
    };
    let settings = VARIABLE_NAMES
        .iter()
        .chain(HACMP_VARIABLE_NAMES.iter())
        .map(|&name| {
            if let Some(assignment) = assignments.iter().rev().find(|a| a.name == name) {
                Setting {
                    name,
                    value: assignment.value.clone(),
                    origin: Origin::File {
                        path: assignment.file.clone(),
                        line: assignment.line,
                    },
                }
            } else if let Some(value) = environment.get(name) {
                Setting {
                    name,
                    value: value.clone(),
                    origin: Origin::Environment,
                }
            } else if let Some(value) = script_default(name) {
                Setting {
                    name,
                    value,
                    origin: Origin::Default,
                }
            } else {
                Setting {
                    name,
                    value: String::new(),
                    origin: Origin::Unset,
                }
            }
        })
        .collect();
    Ok(Settings { settings })
}

impl Settings {
    /// Replaces a variable's value, as a command-line option does.
    pub fn set(&mut self, name: &str, value: &str, origin: Origin) {
        let setting = self
            .settings
            .iter_mut()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} is not one of the variables"));
        setting.value = value.to_string();
        setting.origin = origin;
    }

    pub fn get(&self, name: &str) -> &Setting {
        self.settings
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} is not one of the script's variables"))
    }

    /// Checks every variable; the first problem found is the error.
    pub fn validate(&self) -> Result<Variables, ConfigError> {
        let pattern_setting = self.get("pgrepProgramName");
        let pgrep_program_name = Pattern::new(&required(pattern_setting)?.value)
            .map_err(|e| pattern_setting.error(&e.to_string()))?;
        let start_cmd = required(self.get("startCmd"))?;
        if words::fields(&start_cmd.value).next().is_none() {
            return Err(start_cmd.error("is blank: there is no command to start"));
        }
        let faile_over_time = seconds(self.get("faileOverTime"))?;
        let loop_time = seconds(self.get("loopTime"))?;
        let profile = profile(self, faile_over_time, loop_time)?;
        let heart_beat_dir = unsplit_path(self.get("heartBeatDir"))?;
        let timing = match profile {
            Profile::Compat => None,
            Profile::Safe(timing) => Some(timing),
        };
        let store = store::store(self, &heart_beat_dir, timing)?;
        Ok(Variables {
            pgrep_program_name,
            start_cmd: start_cmd.value.clone(),
            start_cmd_log_file: unsplit_path(self.get("startCmdLogFile"))?,
            maintenance_file: unsplit_path(self.get("maintenanceFile"))?,
            host_name: host_name(self.get("hostName"))?,
            metrics_file: metrics_file(self.get("hacmpMetricsFile"), &store)?,
            heart_beat_dir,
            faile_over_time,
            loop_time,
            profile,
            event_command: event_command(self.get("hacmpEventCmd"))?,
            store,
        })
    }
}

impl Setting {
    /// The one-line error for this variable's value: where it was set, the value, and `why`.
    pub fn error(&self, why: &str) -> ConfigError {
        ConfigError(format!(
            "{}: {}={} {}",
            self.origin,
            self.name,
            quote(&self.value),
            why
        ))
    }
}

/// Quotes a value for an error message so that blanks and emptiness stay visible.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

fn required(setting: &Setting) -> Result<&Setting, ConfigError> {
    if setting.origin == Origin::Unset || setting.value.is_empty() {
        return Err(ConfigError(format!(
            "{}: {} must be set, in the variable file or the environment",
            setting.origin, setting.name
        )));
    }
    Ok(setting)
}

fn profile(
    settings: &Settings,
    faile_over_time: u64,
    loop_time: u64,
) -> Result<Profile, ConfigError> {
    let setting = settings.get("hacmpProfile");
    match setting.value.as_str() {
        "compat" => Ok(Profile::Compat),
        "safe" => Timing::new(faile_over_time, loop_time)
            .map(Profile::Safe)
            .map_err(|why| settings.get("faileOverTime").error(&why)),
        _ => Err(setting.error("is neither compat nor safe")),
    }
}

/// A whole number of seconds, written as bash arithmetic and `sleep` both read it.
fn seconds(setting: &Setting) -> Result<u64, ConfigError> {
    let text = setting.value.as_str();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(setting.error("is not a whole number of seconds"));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(
            setting.error("has a leading zero, which bash arithmetic reads as an octal number")
        );
    }
    match text.parse::<u64>() {
        Ok(value) if value <= MAX_SECONDS => Ok(value),
        _ => Err(setting.error(&format!("is more than the limit of {MAX_SECONDS} seconds"))),
    }
}

/// Characters that change an unquoted expansion in bash: blanks split it into several words and
/// glob characters may turn it into other file names.
fn changes_when_unquoted(c: char) -> bool {
    words::is_ifs(c) || matches!(c, '*' | '?' | '[')
}

/// A path the script uses unquoted: it must stay one word, exactly as written.
fn unsplit_path(setting: &Setting) -> Result<String, ConfigError> {
    let value = &setting.value;
    if value.is_empty() {
        return Err(setting.error("is empty"));
    }
    if value.contains(changes_when_unquoted) {
        return Err(setting.error("contains a blank or a glob character, which the script's unquoted use would split or expand",
        ));
    }
    Ok(value.clone())
}

/// Unset or empty means no hook; a command of blanks only is a mistake, not a wish for none.
fn event_command(setting: &Setting) -> Result<Option<String>, ConfigError> {
    let value = &setting.value;
    if value.is_empty() {
        return Ok(None);
    }
    if value.trim().is_empty() {
        return Err(setting.error("is blank: there is no command to run"));
    }
    if value.len() > MAX_EVENT_COMMAND_BYTES {
        return Err(setting.error(&format!(
            "is longer than the limit of {MAX_EVENT_COMMAND_BYTES} bytes"
        )));
    }
    if value.contains('\0') {
        return Err(setting.error("contains a NUL byte, which no command line can hold"));
    }
    Ok(Some(value.clone()))
}

/// Unset or empty means no metrics. node_exporter's textfile collector reads only `*.prom`
/// files of one directory, and systemd starts services in /, so a relative path or another
/// name would be written where nothing reads it; inside a heartbeat directory the loop would
/// take the file for a host's heartbeat.
fn metrics_file(setting: &Setting, store: &Store) -> Result<Option<String>, ConfigError> {
    let value = &setting.value;
    if value.is_empty() {
        return Ok(None);
    }
    let path = Path::new(value);
    if !path.is_absolute() {
        return Err(setting.error("is not an absolute path"));
    }
    if !value.ends_with(".prom") || value.ends_with("/.prom") {
        return Err(setting.error(
            "does not end in .prom, the only files node_exporter's textfile collector reads",
        ));
    }
    if let Store::Directories(dirs) = store
        && dirs.iter().any(|dir| path.parent() == Some(Path::new(dir)))
    {
        return Err(setting.error(
            "is inside a heartbeat directory, where the loop would take it for a host's heartbeat",
        ));
    }
    Ok(Some(value.clone()))
}

fn host_name(setting: &Setting) -> Result<String, ConfigError> {
    let value = unsplit_path(setting)?;
    if value.contains('/') {
        return Err(setting.error("contains '/', so it cannot name a heartbeat file"));
    }
    if value.starts_with('.') {
        return Err(setting.error("starts with '.', and `ls` never lists such a heartbeat file, so this host could never be master",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let environment = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(None, &environment).expect("no file to read")
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        settings(pairs).validate().unwrap_err().to_string()
    }

    const REQUIRED: [(&str, &str); 2] = [("pgrepProgramName", "app"), ("startCmd", "./app")];

    #[test]
    fn defaults_are_the_scripts_values() {
        let vars = settings(&REQUIRED).validate().unwrap();
        assert_eq!(vars.start_cmd_log_file, "./startCmdLogFile.log");
        assert_eq!(vars.maintenance_file, "./maintenance");
        assert_eq!(vars.heart_beat_dir, "heartbeat");
        assert_eq!(vars.faile_over_time, 10);
        assert_eq!(vars.loop_time, 3);
        assert_eq!(vars.host_name, local_host_name());
    }

    #[test]
    fn start_cmd_and_pattern_are_required() {
        assert_eq!(
            error_of(&[("startCmd", "./app")]),
            "not set: pgrepProgramName must be set, in the variable file or the environment"
        );
        assert_eq!(
            error_of(&[("pgrepProgramName", "app")]),
            "not set: startCmd must be set, in the variable file or the environment"
        );
    }

    #[test]
    fn seconds_must_be_plain_decimal() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("faileOverTime", "1o"));
        assert_eq!(
            error_of(&pairs),
            "environment: faileOverTime='1o' is not a whole number of seconds"
        );
        pairs.pop();
        pairs.push(("loopTime", "010"));
        assert!(error_of(&pairs).contains("octal"));
        pairs.pop();
        pairs.push(("loopTime", "86401"));
        assert!(error_of(&pairs).contains("limit of 86400"));
    }

    #[test]
    fn events_and_metrics_are_off_unless_set_and_checked_when_set() {
        let vars = settings(&REQUIRED).validate().unwrap();
        assert_eq!((vars.event_command, vars.metrics_file), (None, None));
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("heartBeatDir", "/mnt/shared/heartbeat/"));
        pairs.push(("hacmpMetricsFile", "/mnt/shared/heartbeat/hacmp.prom"));
        assert!(error_of(&pairs).contains("inside a heartbeat directory"));
        pairs.pop();
        pairs.push(("hacmpMetricsFile", "/var/lib/node_exporter/.prom"));
        assert!(error_of(&pairs).contains("does not end in .prom"));
        pairs.pop();
        pairs.push(("hacmpEventCmd", "logger -t hacmp \"$HACMP_MESSAGE\""));
        let vars = settings(&pairs).validate().unwrap();
        assert_eq!(
            vars.event_command.as_deref(),
            Some("logger -t hacmp \"$HACMP_MESSAGE\"")
        );
        pairs.pop();
        let too_long = "x".repeat(MAX_EVENT_COMMAND_BYTES + 1);
        pairs.push(("hacmpEventCmd", &too_long));
        assert!(error_of(&pairs).contains("longer than the limit"));
    }

    #[test]
    fn paths_must_survive_unquoted_use() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("heartBeatDir", "/mnt/hb dir"));
        assert!(
            error_of(&pairs)
                .starts_with("environment: heartBeatDir='/mnt/hb dir' contains a blank")
        );
        pairs.pop();
        pairs.push(("hostName", ".hidden"));
        assert!(error_of(&pairs).contains("could never be master"));
    }
}
