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
