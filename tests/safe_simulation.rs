//! The safe profile in the simulator: every catalog scenario (the multi-site ones included) run
//! on bash, compat, safe and mixed clusters, random fault schedules (uniform and
//! protocol-aware, over one heartbeat directory or three sites) on all-safe clusters, and a
//! sample of the faults-at-every-step exploration must keep the safe profile's promises (see
//! `hacmp::sim::safety` for the rules).

mod support;

use std::path::Path;

use hacmp::sim::explore;
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
/// Random schedules run as drawn and then protocol-aware, on all-safe clusters.
const RANDOM_BIASED: u64 = 60;
/// Random schedules over three sites (two data centres and a witness), and of data centres
/// lost whole, on all-safe clusters: a sample of what `make safety-report` runs.
const RANDOM_MULTISITE: u64 = 40;
const RANDOM_SITE_LOSSES: u64 = 20;
/// The first seed; different from the parity suite's, so the two suites cover more schedules.
const FIRST_SEED: u64 = 10_001;
/// Every how many variants of the step exploration one runs here: a few hundred runs in all
/// (`make safety-report` runs every one).
const EXPLORE_STRIDE: usize = 120;

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

#[test]
fn random_multisite_schedules_keep_the_safe_promises() {
    let first = FIRST_SEED + RANDOM_SAFE_ONLY + RANDOM_ALL_WAYS + RANDOM_CRASHES + RANDOM_BIASED;
    let scenarios: Vec<Scenario> = (first..first + RANDOM_MULTISITE)
        .map(random::multisite_scenario)
        .collect();
    check(&scenarios, Ways::SafeOnly);
}

#[test]
fn a_data_centre_lost_whole_fails_over_within_the_bound() {
    let first = FIRST_SEED
        + RANDOM_SAFE_ONLY
        + RANDOM_ALL_WAYS
        + RANDOM_CRASHES
        + RANDOM_BIASED
        + RANDOM_MULTISITE;
    let scenarios: Vec<Scenario> = (first..first + RANDOM_SITE_LOSSES)
        .map(random::multisite_loss_scenario)
        .collect();
    let failovers = check(&scenarios, Ways::SafeOnly);
    // The bound is checked only when the lost data centre held the active node and its crash
    // came first; schedules that never lose that one would check nothing.
    assert!(
        failovers.len() as u64 >= RANDOM_SITE_LOSSES / 4,
        "only {} losses of the active node's data centre in {RANDOM_SITE_LOSSES} schedules",
        failovers.len()
    );
}

#[test]
fn a_sample_of_faults_at_every_step_keeps_the_safe_promises() {
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    let plan = explore::plan(&original, &settings, EXPLORE_STRIDE, usize::MAX).unwrap();
    let exploration = explore::explore(
        plan,
        &original,
        &settings,
        parallel::workers(),
        &Progress::silent(),
    );
    let mut failures = exploration.failures.clone();
    for (variant, verdict) in &exploration.violations {
        failures.push(format!(
            "{}: {}\n{}",
            variant.name,
            verdict.violations.join("; "),
            variant.to_toml()
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Eight bases, each with thousands of variants: the sample must visit every base.
    assert_eq!(exploration.bases.len(), explore::bases().len());
    assert!(
        exploration.bases.iter().all(|(_, runs)| *runs >= 20),
        "{:?}",
        exploration.bases
    );
}

#[test]
fn protocol_aware_random_schedules_keep_the_safe_promises() {
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    let first = FIRST_SEED + RANDOM_SAFE_ONLY + RANDOM_ALL_WAYS + RANDOM_CRASHES;
    let seeds: Vec<u64> = (first..first + RANDOM_BIASED).collect();
    let results = parallel::map(&seeds, parallel::workers(), |&seed| {
        let uniform = random::scenario(seed);
        let timing = explore::timing(&uniform, &settings)?;
        let (verdict, steps) =
            safety::check_with_steps(&uniform, &original, &settings, Ways::SafeOnly)?;
        let biased = explore::biased(&uniform, &steps, &timing);
        biased.check()?;
        // A biased schedule moves faults; one that moved none would test nothing new.
        let moved = biased.events != uniform.events;
        let biased_verdict = safety::check(&biased, &original, &settings, Ways::SafeOnly)?;
        Ok::<_, String>((moved, [verdict, biased_verdict]))
    });
    let moved = results
        .iter()
        .filter(|result| result.as_ref().is_ok_and(|(moved, _)| *moved))
        .count();
    let failures = violations(
        results
            .into_iter()
            .flat_map(|result| match result {
                Ok((_, verdicts)) => verdicts.into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error)],
            })
            .collect(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        moved as u64 >= RANDOM_BIASED / 2,
        "only {moved} of {RANDOM_BIASED} schedules had a fault moved to a protocol instant"
    );
}

/// The catalog's listing-cache scenario, with the safe daemons' refusal to start on such a
/// mount lifted (`allow`) or kept.
fn listing_cache_run(allow: bool) -> SafetyVerdict {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/shell-parity/scenarios/safe-listing-cache-refused.toml");
    let mut scenario = Scenario::load(&path).unwrap();
    scenario.allow_listing_cache = allow;
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    safety::check(&scenario, &original, &settings, Ways::SafeOnly).unwrap()
}

#[test]
fn a_mount_that_caches_listings_is_refused_because_claimants_would_overlap() {
    let refused = listing_cache_run(false);
    let run = refused.run("safe").unwrap();
    assert_eq!((run.audit.starts, run.audit.overlap_ms), (0, 0));
    // Without the refusal, neither claimant lists the other's claim, and both win.
    let allowed = listing_cache_run(true);
    let run = allowed.run("safe").unwrap();
    assert!(
        run.audit.max_alive == 2 && run.audit.overlap_ms > 0,
        "no overlap without the refusal: {:?}",
        run.audit
    );
}

/// How many times the application started in the all-safe run of a catalog scenario.
fn safe_starts(name: &str) -> u32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/shell-parity/scenarios/{name}.toml"));
    let scenario = Scenario::load(&path).unwrap();
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    let verdict = safety::check(&scenario, &original, &settings, Ways::SafeOnly).unwrap();
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    verdict.run("safe").unwrap().audit.starts
}

#[test]
fn a_minority_of_sites_lost_changes_nothing_and_a_cut_off_master_hands_over_once() {
    // One directory of three lost, for everyone or for the master alone: the master keeps its
    // lease on the other two and the application is never restarted.
    for name in [
        "multisite-witness-lost",
        "multisite-witness-hung",
        "multisite-master-local-dir-lost",
        "multisite-standby-dc-lost",
    ] {
        assert_eq!(safe_starts(name), 1, "{name}");
    }
    // A master cut off from a majority stops at its lease end and one other start follows:
    // the standby's with the majority, or the next one's once a majority is back.
    for name in [
        "multisite-partition",
        "multisite-partition-hung",
        "multisite-two-of-three-lost",
    ] {
        assert_eq!(safe_starts(name), 2, "{name}");
    }
}
