//! The safe profile in the simulator: every catalog scenario run on bash, compat, safe and
//! mixed clusters, and random fault schedules on all-safe clusters, must keep the safe
//! profile's promises (see `hacmp::sim::safety` for the rules).

mod support;

use std::path::Path;

use hacmp::sim::options::original_settings;
use hacmp::sim::parallel;
use hacmp::sim::progress::Progress;
use hacmp::sim::random;
use hacmp::sim::safety::{self, SafetyVerdict, Ways};
use hacmp::sim::scenario::Scenario;

/// Random schedules on all-safe clusters (no bash process, so they are quick).
const RANDOM_SAFE_ONLY: u64 = 300;
/// Random schedules run on all five clusters, for the mixed-cluster rules.
const RANDOM_ALL_WAYS: u64 = 40;
/// Random schedules of clean host crashes on all-safe clusters, for the failover bound.
const RANDOM_CRASHES: u64 = 50;
/// The first seed; different from the parity suite's, so the two suites cover more schedules.
const FIRST_SEED: u64 = 10_001;

fn catalog() -> Vec<Scenario> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shell-parity/scenarios");
    Scenario::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
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

/// Checks the rules on every scenario; returns the failover times after clean crashes.
fn check(scenarios: &[Scenario], ways: Ways) -> Vec<u64> {
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    let results = safety::check_many(
        scenarios,
        &original,
        &settings,
        ways,
        parallel::workers(),
        &Progress::silent(),
    );
    let clean_failovers = results
        .iter()
        .flatten()
        .flat_map(|verdict| verdict.clean_failovers_ms.iter().copied())
        .collect();
    let failures = violations(results);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    clean_failovers
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

#[test]
fn random_clean_crashes_fail_over_within_the_bound() {
    let first = FIRST_SEED + RANDOM_SAFE_ONLY + RANDOM_ALL_WAYS;
    let scenarios: Vec<Scenario> = (first..first + RANDOM_CRASHES)
        .map(random::crash_scenario)
        .collect();
    let failovers = check(&scenarios, Ways::SafeOnly);
    // The bound is checked only after clean crashes of the active node; a schedule that never
    // hits one would check nothing.
    assert!(
        failovers.len() as u64 >= RANDOM_CRASHES / 2,
        "only {} clean crashes of an active node in {RANDOM_CRASHES} schedules",
        failovers.len()
    );
}
