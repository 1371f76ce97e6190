//! The eight variables of heartbeat.sh: where each comes from, and the checked values the loop
//! runs on.
//!
//! Loading has two stages, so that `hacmp check` can show the first even when the second fails:
//! `resolve` has bash read the file (`bash.rs`; in a `#!` script only up to its main loop,
//! `boundary.rs`) and takes every variable's value and origin (the file and line of the command
//! that last set it, the environment or the original script's default); `Settings::validate`
//! turns the text into `Variables` or one error that names the variable and its origin.

pub mod bash;
pub mod boundary;
pub mod store;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
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

/// `resolve` with this process's environment, which bash gets whole (whatever its bytes). The
/// environment the file leaves exported then becomes this process's own, as the sourcing
/// shell's was heartbeat.sh's: the application, the event hook and the search for startCmd in
/// PATH all see it. Must be called before hacmp starts any thread of its own.
pub fn resolve_from_process_environment(file: Option<&Path>) -> Result<Settings, ConfigError> {
    let environment = bash::process_environment();
    let (settings, exported) = read(file, &environment)?;
    if let Some(exported) = exported {
        adopt_environment(&exported);
    }
    Ok(settings)
}

/// Finds each variable's value: as bash has it after sourcing the file in `environment`, else
/// the script's default.
pub fn resolve(
    file: Option<&Path>,
    environment: &HashMap<String, String>,
) -> Result<Settings, ConfigError> {
    read(file, &bash::environment_of(environment)).map(|(settings, _)| settings)
}

/// Replaces this process's environment with `exported`.
fn adopt_environment(exported: &[(OsString, OsString)]) {
    let keep: std::collections::HashSet<&OsString> =
        exported.iter().map(|(name, _)| name).collect();
    for (name, _) in std::env::vars_os() {
        if !keep.contains(&name) {
            // SAFETY: the caller runs before hacmp starts any thread (and bash's waiter has been
            // joined), so nothing reads the environment meanwhile.
            unsafe { std::env::remove_var(&name) };
        }
    }
    for (name, value) in exported {
        // SAFETY: as above.
        unsafe { std::env::set_var(name, value) };
    }
}

/// Variables as a process receives them, whatever their bytes.
pub type Environment = Vec<(OsString, OsString)>;

/// The settings, and with a file the environment it leaves exported.
fn read(
    file: Option<&Path>,
    environment: &[(OsString, OsString)],
) -> Result<(Settings, Option<Environment>), ConfigError> {
    let ours: Vec<String> = VARIABLE_NAMES
        .iter()
        .chain(HACMP_VARIABLE_NAMES.iter())
        .map(|name| name.to_string())
        .collect();
    let Some(path) = file else {
        let settings = settings_from(&ours, |name| {
            let value = environment.iter().rev().find(|(n, _)| n == name)?;
            Some((value.1.as_bytes().to_vec(), None))
        })?;
        return Ok((settings, None));
    };
    let text = std::fs::read(path)
        .map_err(|e| ConfigError(format!("{}: cannot read the file: {e}", path.display())))?;
    let windows_hint = |error: ConfigError| match text.windows(2).any(|w| w == b"\r\n") {
        true => ConfigError(format!("{error} ({WINDOWS_LINE_ENDS})")),
        false => error,
    };
    if text.starts_with("\u{feff}".as_bytes()) {
        return Err(ConfigError(format!(
            "{}:1: the file starts with a byte order mark, which bash takes as part of the first \
             command: save it without one",
            path.display()
        )));
    }
    let stop_line = match text.starts_with(b"#!") {
        true => boundary::boundary(&text)
            .map_err(|unfinished| {
                ConfigError(format!(
                    "{}:{}: {}, so hacmp cannot tell where the script's loop begins",
                    path.display(),
                    unfinished.line,
                    unfinished.what
                ))
            })
            .map_err(windows_hint)?
            .map(|found| found.line),
        false => None,
    };
    let evaluate = |watched: &[String]| {
        bash::evaluate(&bash::Request {
            file: path,
            environment,
            watched,
            stop_line,
        })
        .map_err(windows_hint)
    };
    let evaluation = evaluate(&ours)?;
    let origin_of = |variable: &bash::Variable| match &variable.set_at {
        Some((path, line)) => Origin::File {
            path: path.clone(),
            line: *line,
        },
        None => Origin::Environment,
    };
    let settings = settings_from(&ours, |name| {
        let variable = evaluation.variables.iter().find(|v| v.name == name)?;
        let value = variable.value.clone()?;
        Some((value, Some(origin_of(variable))))
    })?;
    let mistaken: Vec<(String, &'static str)> = evaluation
        .created
        .iter()
        .filter_map(|name| Some((name.clone(), intended_variable(name, &settings)?)))
        .collect();
    if let Some((name, intended)) = mistaken.first() {
        // Ask bash again, now also for where the mistaken name was set.
        let mut watched = ours.clone();
        watched.push(name.clone());
        let again = evaluate(&watched)?;
        let origin = again
            .variables
            .last()
            .map(origin_of)
            .unwrap_or(Origin::Environment);
        return Err(ConfigError(format!(
            "{origin}: {name} is set, but hacmp reads no such variable: did you mean {intended}?"
        )));
    }
    Ok((settings, Some(evaluation.environment)))
}

const WINDOWS_LINE_ENDS: &str = "the file has Windows line ends, convert it with dos2unix";

/// The settings from each variable's bytes and origin as `found` gives them (`None` for the
/// origin: the environment); unset ones take the script's default.
fn settings_from(
    names: &[String],
    found: impl Fn(&str) -> Option<(Vec<u8>, Option<Origin>)>,
) -> Result<Settings, ConfigError> {
    let mut settings = Vec::with_capacity(names.len());
    for name in VARIABLE_NAMES.iter().chain(HACMP_VARIABLE_NAMES.iter()) {
        assert!(names.iter().any(|n| n == name), "{name} is watched");
        let setting = match found(name) {
            Some((bytes, origin)) => {
                let origin = origin.unwrap_or(Origin::Environment);
                let value = String::from_utf8(bytes)
                    .map_err(|_| ConfigError(format!("{origin}: {name} is not UTF-8 text")))?;
                if value.contains('\r') {
                    let why = match origin {
                        Origin::File { .. } => WINDOWS_LINE_ENDS,
                        _ => "remove it",
                    };
                    return Err(ConfigError(format!(
                        "{origin}: {name} holds a carriage return: {why}"
                    )));
                }
                Setting {
                    name,
                    value,
                    origin,
                }
            }
            None => match script_default(name) {
                Some(value) => Setting {
                    name,
                    value,
                    origin: Origin::Default,
                },
                None => Setting {
                    name,
                    value: String::new(),
                    origin: Origin::Unset,
                },
            },
        };
        settings.push(setting);
    }
    Ok(Settings { settings })
}

/// The variable of ours a name the file created was probably meant to be: any unknown name
/// starting with `hacmp`, or one within two edits (ignoring case) of a variable the file does
/// not set itself (`faileoverTime`, `heartbeatDir`). Unrelated helpers (`HB_DIR`) are none.
fn intended_variable(name: &str, settings: &Settings) -> Option<&'static str> {
    let ours = VARIABLE_NAMES.iter().chain(HACMP_VARIABLE_NAMES.iter());
    if ours.clone().any(|our| *our == name) {
        return None;
    }
    let (distance, nearest) = ours
        .clone()
        .map(|our| {
            (
                edit_distance(&name.to_lowercase(), &our.to_lowercase()),
                *our,
            )
        })
        .min()?;
    if name.starts_with("hacmp") {
        let hacmp = HACMP_VARIABLE_NAMES.iter();
        return hacmp
            .map(|our| {
                (
                    edit_distance(&name.to_lowercase(), &our.to_lowercase()),
                    *our,
                )
            })
            .min()
            .map(|(_, our)| our);
    }
    let set_by_the_file = matches!(settings.get(nearest).origin, Origin::File { .. });
    (distance <= 2 && !set_by_the_file).then_some(nearest)
}

/// The optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbours.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
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
    format!("'{}'", bash::visible(&value.replace('\'', r"'\''")))
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
    fn near_misses_of_our_names_are_told_from_helpers() {
        assert_eq!(edit_distance("faileoverTime", "faileOverTime"), 1);
        assert_eq!(edit_distance("loopTiem", "loopTime"), 1);
        assert!(edit_distance("hb_dir", "heartbeatdir") > 2);
        let from_the_environment = settings(&REQUIRED);
        let intended = |name| intended_variable(name, &from_the_environment);
        assert_eq!(intended("faileoverTime"), Some("faileOverTime"));
        assert_eq!(intended("heartbeatDir"), Some("heartBeatDir"));
        assert_eq!(intended("hacmpProfle"), Some("hacmpProfile"));
        let unknown = intended("hacmpAnything");
        assert!(
            unknown.is_some_and(|name| name.starts_with("hacmp")),
            "{unknown:?}"
        );
        for helper in ["HB_DIR", "APP_HOME", "site", "startCmd", "x"] {
            assert_eq!(intended(helper), None, "{helper}");
        }
        // A near name beside the real one, set by the file, is a helper.
        let mut set_by_file = settings(&REQUIRED);
        let origin = Origin::File {
            path: PathBuf::from("vars"),
            line: 1,
        };
        set_by_file.set("hostName", "web01", origin);
        assert_eq!(intended_variable("hostname", &set_by_file), None);
        assert_eq!(intended("hostname"), Some("hostName"));
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
