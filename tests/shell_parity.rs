//! Shell parity: the unmodified bash original and hacmp's loop, run side by side in the
//! simulator on the scenario catalog and on random fault schedules, must leave identical traces.

mod support;

use std::path::{Path, PathBuf};

use hacmp::sim::options::original_settings;
use hacmp::sim::parity;
use hacmp::sim::progress::Progress;
use hacmp::sim::random;
use hacmp::sim::scenario::Scenario;
use hacmp::sim::scheduler::Driver;

/// How many random schedules the suite runs besides the catalog.
const RANDOM_SCHEDULES: u64 = 50;
/// The catalog must cover at least the list.
const MIN_CATALOG: usize = 30;

fn catalog() -> Vec<Scenario> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shell-parity/scenarios");
    Scenario::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
}

fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn catalog_and_random_schedules_agree() {
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    let mut scenarios = catalog();
    assert!(
        scenarios.len() >= MIN_CATALOG,
        "only {} scenarios",
        scenarios.len()
    );
    scenarios.extend((1..=RANDOM_SCHEDULES).map(random::scenario));
    let failures: Vec<String> = parity::check_many(
        &scenarios,
        &original,
        &settings,
        workers(),
        false,
        &Progress::silent(),
    )
    .into_iter()
    .filter_map(|result| match result {
        Ok(verdict) => verdict.difference,
        Err(error) => Some(error),
    })
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn same_seed_gives_the_same_trace() {
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    let busy = catalog()
        .into_iter()
        .find(|s| s.name == "simultaneous-start-3")
        .expect("the catalog has simultaneous-start-3");
    for scenario in [busy, random::scenario(3), random::scenario(4)] {
        for driver in [Driver::Bash, Driver::Hacmp] {
            assert!(
                parity::is_deterministic(&scenario, &original, &settings, driver).unwrap(),
                "{} on {driver:?} gave two different traces",
                scenario.name
            );
        }
    }
}

/// A copy of the original with one change, in a fresh directory.
fn mutated_original(from: &str, to: &str) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(support::original_script()).unwrap();
    assert!(text.contains(from), "the original has no {from:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heartbeat.sh");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    (dir, path)
}

#[test]
fn a_different_loop_is_detected() {
    let settings = original_settings(&support::original_script()).unwrap();
    let scenario = catalog()
        .into_iter()
        .find(|s| s.name == "app-ignores-sigterm")
        .expect("the catalog has app-ignores-sigterm");
    // hacmp still runs with the original's variables; only the bash side changes.
    for (from, to) in [
        (
            "echo \"We are master so start server\"",
            "echo \"We are master, starting\"",
        ),
        ("sleep 30", "sleep 29"),
        ("kill -9 $pid", "kill $pid"),
    ] {
        let (_dir, mutated) = mutated_original(from, to);
        let verdict = parity::check(&scenario, &mutated, &settings, false).unwrap();
        assert!(
            verdict.difference.is_some(),
            "changing {from:?} to {to:?} went unnoticed"
        );
    }
}

/// Off a terminal (here: stderr is a pipe) a long `hacmp parity` writes no progress line, so
/// that logs and CI output hold only the results; the summary still comes on stdout.
#[test]
fn parity_off_a_terminal_prints_no_progress() {
    let replay_dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .arg("parity")
        .arg("--original")
        .arg(support::original_script())
        .args(["--random", "12", "--replay-dir"])
        .arg(replay_dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("12 runs compared in "),
        "the summary is on stdout: {stdout:?}"
    );
    assert_eq!(stderr, "", "nothing but differences goes to stderr");
}

/// A script whose hostName does not call `hostname` differs in every run with two nodes; the
/// report names the line, and the replay files go to a temporary directory it shows, never the
/// working directory.
#[test]
fn parity_names_a_hard_coded_host_name_and_writes_only_where_it_says() {
    let (dir, mutated) = mutated_original("hostName=`hostname`", "hostName=nodeA");
    let line = std::fs::read_to_string(&mutated)
        .unwrap()
        .lines()
        .position(|line| line == "hostName=nodeA")
        .unwrap()
        + 1;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .arg("parity")
        .arg("--original")
        .arg(&mutated)
        .args(["--random", "4"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "4 of 4 runs differ. {}:{line}: `hostName=nodeA` does not call hostname",
            mutated.display()
        )),
        "{stderr}"
    );
    let replays: Vec<PathBuf> = stderr
        .lines()
        .filter_map(|line| line.split_once(" --scenario "))
        .map(|(_, path)| PathBuf::from(path))
        .collect();
    assert_eq!(replays.len(), 4, "{stderr}");
    let replay_dir = replays[0].parent().unwrap().to_path_buf();
    assert!(replay_dir.starts_with(std::env::temp_dir()), "{stderr}");
    for replay in &replays {
        assert!(replay.is_file() && replay.parent() == Some(replay_dir.as_path()));
    }
    std::fs::remove_dir_all(&replay_dir).unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["heartbeat.sh"],
        "nothing written in the working directory"
    );
}

#[test]
fn parity_has_no_built_in_original() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .args(["parity", "--random", "1"])
        .env_remove("HACMP_ORIGINAL")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--original <SCRIPT>"), "{stderr}");
}
