//! The safe profile in the simulator: every catalog scenario run on bash, compat, safe and
//! mixed clusters, and random fault schedules on all-safe clusters, must keep the safe
//! profile's promises (see `hacmp::sim::safety` for the rules).

use std::path::{Path, PathBuf};

use hacmp::sim::cli::original_settings;
use hacmp::sim::parallel;
use hacmp::sim::random;
use hacmp::sim::safety::{self, SafetyVerdict, Ways};
use hacmp::sim::scenario::Scenario;

/// Random schedules on all-safe clusters (no bash process, so they are quick).
const RANDOM_SAFE_ONLY: u64 = 300;
/// Random schedules run on all five clusters, for the mixed-cluster rules.
const RANDOM_ALL_WAYS: u64 = 40;
/// The first seed; different from the parity suite's, so the two suites cover more schedules.
const FIRST_SEED: u64 = 10_001;

fn original() -> PathBuf {
    let path = std::env::var_os("HACMP_ORIGINAL").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seed/heartbeat.sh"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "the bash original {} is missing; set HACMP_ORIGINAL",
        path.display()
    );
    path
}

fn catalog() -> Vec<Scenario> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shell-parity/scenarios");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the scenario directory exists")
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| Scenario::load(path).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Every violation of every verdict, each with its scenario and seed.
fn violations(results: Vec<Result<SafetyVerdict, String>>) -> Vec<String> {
    results
        .into_iter()
        .flat_map(|result| match result {
            Ok(verdict) => verdict
                .violations
                .iter()
                .map(|v| format!("{} (seed {}): {v}", verdict.scenario, verdict.seed))
                .collect(),
            Err(error) => vec![error],
        })
        .collect()
}

fn check(scenarios: &[Scenario], ways: Ways) {
    let original = original();
    let settings = original_settings(&original).unwrap();
    let results = safety::check_many(scenarios, &original, &settings, ways, parallel::workers());
    let failures = violations(results);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_catalog_keeps_the_safe_promises() {
    check(&catalog(), Ways::All);
}

#[test]
fn random_schedules_keep_the_safe_promises() {
    let scenarios: Vec<Scenario> = (FIRST_SEED..FIRST_SEED + RANDOM_SAFE_ONLY)
        .map(random::scenario)
        .collect();
    check(&scenarios, Ways::SafeOnly);
}

#[test]
fn random_mixed_clusters_keep_the_safe_promises() {
    let first = FIRST_SEED + RANDOM_SAFE_ONLY;
    let scenarios: Vec<Scenario> = (first..first + RANDOM_ALL_WAYS)
        .map(random::scenario)
        .collect();
    check(&scenarios, Ways::All);
}
