//! Row 8: what it costs that bash reads the variable file (src/config/bash.rs), once per start
//! of `hacmp run`, `hacmp check` and `hacmp status`: the read itself next to a plain `. FILE` in
//! a bash of its own, and the time it adds to `hacmp status` against the same variables given in
//! the environment, which issue 18 bounds at 50 ms.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process_scan::median;
use crate::report::{Row, Section};

pub struct Settings {
    pub repetitions: usize,
}

/// The most `hacmp status` may take longer when it reads a file than when it reads the
/// environment (issue 18).
const ADDED_STATUS_BOUND: Duration = Duration::from_millis(50);

/// A variable file as heartbeat.sh's head writes it, with a command substitution as its own.
fn variables(heartbeat_dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "pgrepProgramName",
            "sh.*exampleApplication.sh.*".to_string(),
        ),
        ("startCmd", "./exampleApplication.sh".to_string()),
        ("startCmdLogFile", "./startCmdLogFile.log".to_string()),
        ("maintenanceFile", "./maintenance".to_string()),
        ("hostName", "$(hostname)".to_string()),
        ("heartBeatDir", heartbeat_dir.display().to_string()),
        ("faileOverTime", "10".to_string()),
        ("loopTime", "3".to_string()),
    ]
}

struct Timings {
    plain_bash: Vec<Duration>,
    read: Vec<Duration>,
    status_file: Vec<Duration>,
    status_environment: Vec<Duration>,
}

pub fn measure(settings: &Settings, root: &Path, command: &str) -> Section {
    let timings = time_all(settings.repetitions, root);
    Section {
        rows: vec![row(&timings, command)],
        method: format!(
            "**Row 8** times, {} times each and alternating, on a variable file of heartbeat.sh's \
             eight variables (hostName from `$(hostname)`): `bash --noprofile --norc -c '. FILE'` \
             (bash reading the file and nothing else), hacmp's read of it in-process \
             (`config::resolve`: the bash process with its DEBUG trap and report, and the \
             checks after it), and `hacmp status FILE` against `hacmp status` with the same \
             values in the environment (without the command substitution), both real processes; \
             the figures are medians of wall-clock time.",
            settings.repetitions
        ),
    }
}

fn time_all(repetitions: usize, root: &Path) -> Timings {
    let heartbeat_dir = root.join("heartbeat");
    std::fs::create_dir_all(&heartbeat_dir).expect("the heartbeat directory is made");
    let file = root.join("heartbeat.vars");
    let text: String = variables(&heartbeat_dir)
        .iter()
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    std::fs::write(&file, text).expect("the variable file is written");
    let hostname = hacmp::config::local_host_name();
    let environment: Vec<(&str, String)> = variables(&heartbeat_dir)
        .into_iter()
        .map(|(name, value)| match name {
            "hostName" => (name, hostname.clone()),
            _ => (name, value),
        })
        .collect();
    let process_environment: HashMap<String, String> = std::env::vars().collect();
    let mut timings = Timings {
        plain_bash: Vec::with_capacity(repetitions),
        read: Vec::with_capacity(repetitions),
        status_file: Vec::with_capacity(repetitions),
        status_environment: Vec::with_capacity(repetitions),
    };
    let status = |with_file: bool| {
        let mut status = Command::new(env!("CARGO_BIN_EXE_hacmp"));
        status.arg("status").current_dir(root).stdin(Stdio::null());
        if with_file {
            status.arg(&file);
        } else {
            status.envs(environment.iter().map(|(k, v)| (k, v)));
        }
        let output = status.output().expect("hacmp status runs");
        assert_ne!(
            output.status.code(),
            Some(2),
            "hacmp status refused the variables: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    for repetition in 0..=repetitions {
        crate::children::check_interrupted();
        let plain = timed(|| {
            let ran = Command::new("bash")
                .args(["--noprofile", "--norc", "-c", ". \"$1\"", "bash"])
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .expect("bash runs");
            assert!(ran.success(), "bash reads the file");
        });
        let read = timed(|| {
            hacmp::config::resolve(Some(&file), &process_environment)
                .expect("hacmp reads the file");
        });
        let status_file = timed(|| status(true));
        let status_environment = timed(|| status(false));
        // The first round warms caches and is not counted.
        if repetition > 0 {
            timings.plain_bash.push(plain);
            timings.read.push(read);
            timings.status_file.push(status_file);
            timings.status_environment.push(status_environment);
        }
    }
    timings
}

fn timed(call: impl FnOnce()) -> Duration {
    let start = Instant::now();
    call();
    start.elapsed()
}

fn milliseconds(time: Duration) -> String {
    format!("{:.1} ms", time.as_secs_f64() * 1000.0)
}

fn row(timings: &Timings, command: &str) -> Row {
    let status_file = median(&timings.status_file);
    let status_environment = median(&timings.status_environment);
    let added = status_file.saturating_sub(status_environment);
    let verdict = if added <= ADDED_STATUS_BOUND {
        "met"
    } else {
        "missed"
    };
    Row {
        what: "8. Reading the variable file: one bash process per start of run, check, status"
            .to_string(),
        bash: format!(
            "{} (`. FILE` in a bash of its own)",
            milliseconds(median(&timings.plain_bash))
        ),
        hacmp: format!(
            "{} (bash with hacmp's trap and report, then the checks)",
            milliseconds(median(&timings.read))
        ),
        comparison: format!(
            "`hacmp status FILE` {} against {} with the environment: {} added, bound {}: {verdict}",
            milliseconds(status_file),
            milliseconds(status_environment),
            milliseconds(added),
            milliseconds(ADDED_STATUS_BOUND)
        ),
        command: format!("`{command}`"),
    }
}
