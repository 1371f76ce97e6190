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
/// Random schedules over an etcd cluster, and of clean host crashes over etcd.
const RANDOM_ETCD: u64 = 150;
const RANDOM_ETCD_CRASHES: u64 = 40;
/// Random schedules over etcd run as drawn and then protocol-aware.
const RANDOM_ETCD_BIASED: u64 = 40;
/// Random schedules over three sites (two data centres and a witness), and of data centres
/// lost whole, on all-safe clusters: a sample of what `make safety-report` runs.
const RANDOM_MULTISITE: u64 = 40;
const RANDOM_SITE_LOSSES: u64 = 20;
/// The first seed; different from the parity suite's, so the two suites cover more schedules.
const FIRST_SEED: u64 = 10_001;
/// Every how many variants of the step exploration one runs here, times a sampled base's own
/// sample: a few hundred runs in all (`make safety-report` runs every unsampled one).
const EXPLORE_STRIDE: usize = 120;
/// The same over etcd, whose bases have fewer variants (fewer steps per round) and run faster.
const EXPLORE_ETCD_STRIDE: usize = 30;

fn catalog() -> Vec<Scenario> {
    catalog_in("tests/shell-parity/scenarios")
}

fn catalog_in(dir: &str) -> Vec<Scenario> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    Scenario::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
}

/// Every violation of every verdict, each with its scenario and seed.
fn violations(results: &[Result<SafetyVerdict, String>]) -> Vec<String> {
    results
        .iter()
        .flat_map(|result| match result {
            Ok(verdict) => verdict
                .violations
                .iter()
                .map(|v| format!("{} (seed {}): {v}", verdict.scenario, verdict.seed))
                .collect(),
            Err(error) => vec![error.clone()],
        })
        .collect()
}

/// Checks the rules on every scenario; returns the failover times after clean crashes.
fn check(scenarios: &[Scenario], ways: Ways) -> Vec<u64> {
    check_verdicts(scenarios, ways)
        .iter()
        .flat_map(|verdict| verdict.clean_failovers_ms.iter().copied())
        .collect()
}

/// Checks the rules on every scenario; returns the verdicts, in the order of the scenarios.
fn check_verdicts(scenarios: &[Scenario], ways: Ways) -> Vec<SafetyVerdict> {
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
    let failures = violations(&results);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    results.into_iter().flatten().collect()
}

#[test]
fn the_catalog_keeps_the_safe_promises() {
    check(&catalog(), Ways::All);
}

#[test]
fn the_etcd_catalog_keeps_the_safe_promises() {
    let scenarios = catalog_in("tests/shell-parity/etcd-scenarios");
    assert!(
        scenarios.len() >= 10,
        "only {} etcd scenarios",
        scenarios.len()
    );
    let verdicts = check_verdicts(&scenarios, Ways::All);
    let run = |name: &str| {
        let verdict = verdicts
            .iter()
            .find(|verdict| verdict.scenario == name)
            .unwrap_or_else(|| panic!("the etcd catalog has {name}"));
        // bash and the compat profile have no etcd backend: only the all-safe cluster runs.
        assert_eq!(verdict.runs.len(), 1, "{name}");
        verdict.run("safe").unwrap().audit.clone()
    };
    // A crash of the master fails over within the bound (a clean crash the rule checked).
    let crash = verdicts
        .iter()
        .find(|verdict| verdict.scenario == "etcd-master-crash")
        .unwrap();
    assert_eq!(crash.clean_failovers_ms.len(), 1);
    // Faults of the etcd cluster that keep its quorum, and of the standby's link, neither fail
    // over nor restart the application: a new leader only lengthens the master's lease.
    for name in [
        "etcd-member-loss",
        "etcd-leader-loss",
        "etcd-standby-cut-off",
        "etcd-clock-jumps",
    ] {
        let audit = run(name);
        assert_eq!((audit.starts, audit.kills), (1, 0), "{name}: {audit:?}");
    }
    // A master cut off from etcd, or whose keep-alives go unconfirmed, is stopped by its guard
    // (a SIGKILL at the lease's end), and the other node takes over.
    for name in [
        "etcd-node-cut-off",
        "etcd-slow-keepalives",
        "etcd-quorum-loss",
    ] {
        let audit = run(name);
        assert!(audit.kills >= 1 && audit.starts == 2, "{name}: {audit:?}");
    }
}

#[test]
fn random_schedules_over_etcd_keep_the_safe_promises() {
    let first = FIRST_SEED + 1_000_000;
    let mut scenarios: Vec<Scenario> = (first..first + RANDOM_ETCD)
        .map(random::etcd_scenario)
        .collect();
    let crashes = first + RANDOM_ETCD;
    scenarios
        .extend((crashes..crashes + RANDOM_ETCD_CRASHES).map(random::crash_scenario_over_etcd));
    let failovers = check(&scenarios, Ways::SafeOnly);
    assert!(
        failovers.len() as u64 >= RANDOM_ETCD_CRASHES / 2,
        "only {} clean crashes of an active node over etcd",
        failovers.len()
    );
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
    let bases = explore::bases()
        .into_iter()
        .filter(|base| base.scenario.etcd.is_none())
        .collect();
    explore_sample(bases, EXPLORE_STRIDE);
}

#[test]
fn a_sample_of_faults_at_every_step_over_etcd_keeps_the_safe_promises() {
    let bases = explore::bases()
        .into_iter()
        .filter(|base| base.scenario.etcd.is_some())
        .collect();
    explore_sample(bases, EXPLORE_ETCD_STRIDE);
}

/// Runs every `stride`-th variant of each base and checks every run.
fn explore_sample(bases: Vec<explore::Base>, stride: usize) {
    let base_count = bases.len();
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    let plan = explore::plan_of(bases, &original, &settings, stride, usize::MAX).unwrap();
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
    // Each base has a thousand variants or more, of which a sampled base runs one in
    // `stride` × its sample: the sample must visit every base.
    assert_eq!(exploration.bases.len(), base_count);
    let runs: Vec<(&str, usize)> = exploration
        .bases
        .iter()
        .map(|base| (base.name.as_str(), base.runs))
        .collect();
    assert!(runs.iter().all(|(_, runs)| *runs >= 5), "{runs:?}");
}

#[test]
fn protocol_aware_random_schedules_keep_the_safe_promises() {
    let first = FIRST_SEED + RANDOM_SAFE_ONLY + RANDOM_ALL_WAYS + RANDOM_CRASHES;
    protocol_aware(first..first + RANDOM_BIASED, random::scenario);
}

#[test]
fn protocol_aware_random_schedules_over_etcd_keep_the_safe_promises() {
    let first = FIRST_SEED + 2_000_000;
    protocol_aware(first..first + RANDOM_ETCD_BIASED, random::etcd_scenario);
}

/// Runs each seed's schedule as drawn and protocol-aware, and checks both.
fn protocol_aware(seeds: std::ops::Range<u64>, generate: fn(u64) -> Scenario) {
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    let count = seeds.end - seeds.start;
    let seeds: Vec<u64> = seeds.collect();
    let results = parallel::map(&seeds, parallel::workers(), |&seed| {
        let uniform = generate(seed);
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
        &results
            .into_iter()
            .flat_map(|result| match result {
                Ok((_, verdicts)) => verdicts.into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error)],
            })
            .collect::<Vec<_>>(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        moved as u64 >= count / 2,
        "only {moved} of {count} schedules had a fault moved to a protocol instant"
    );
}

/// The all-safe run of the catalog scenario `name`.
fn safe_run_of(name: &str) -> SafetyVerdict {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/shell-parity/scenarios/{name}.toml"));
    let scenario = Scenario::load(&path).unwrap();
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    safety::check(&scenario, &original, &settings, Ways::SafeOnly).unwrap()
}

#[test]
fn a_daemon_restarted_within_its_lease_keeps_its_application() {
    let verdict = safe_run_of("safe-reattach-within-lease");
    let audit = &verdict.run("safe").unwrap().audit;
    assert_eq!(
        (audit.starts, audit.kills, audit.terms, audit.overlap_ms),
        (1, 0, 0, 0),
        "one start, never stopped: {audit:?}"
    );
}

/// After the lease (the guard has fenced the application) or when the store no longer shows
/// the lease (the new daemon stops the guard), the application ends once and starts once more.
#[test]
fn a_daemon_restarted_after_its_lease_or_without_its_record_does_not_reattach() {
    for name in [
        "safe-reattach-after-lease",
        "safe-reattach-during-peer-claim",
        "safe-reattach-record-deleted",
    ] {
        let verdict = safe_run_of(name);
        let run = verdict.run("safe").unwrap();
        assert_eq!(
            (run.audit.starts, run.audit.kills, run.executing_at_end),
            (2, 1, 1),
            "{name}: killed once, started once more: {:?}",
            run.audit
        );
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    }
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

/// `hacmp parity` without --safety compares bash with hacmp, and bash has no etcd backend: an
/// etcd scenario is refused with one line, before anything runs.
#[test]
fn parity_without_safety_refuses_an_etcd_scenario() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/shell-parity/etcd-scenarios/etcd-master-crash.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .arg("parity")
        .arg("--original")
        .arg(support::original_script())
        .arg("--scenario")
        .arg(&scenario)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "hacmp parity: scenario etcd-master-crash uses etcd, which bash has no counterpart for: check it with --safety\n"
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

/// The failovers of the all-safe run of a catalog scenario, in seconds, whatever caused them.
fn safe_failovers_s(name: &str) -> Vec<f64> {
    let verdict = safe_run_of(name);
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    let audit = &verdict.run("safe").unwrap().audit;
    audit
        .faults
        .iter()
        .filter_map(|fault| fault.failover_ms)
        .map(|ms| ms as f64 / 1000.0)
        .collect()
}

#[test]
fn a_directory_answering_within_the_deadline_never_blocks_a_takeover_or_fences_a_master() {
    let timing = safety::default_timing();
    // A master whose majority includes a directory answering just under the deadline keeps
    // its lease: its round still fits.
    assert_eq!(
        safe_starts("multisite-master-slow-minority-standby-dc-lost"),
        1
    );
    // A slow minority costs a takeover nothing: every step returns on the two others.
    let bound = timing.takeover_bound().as_secs_f64();
    for failover in safe_failovers_s("multisite-slow-minority-master-crash") {
        assert!(failover <= bound, "{failover} s, bound {bound} s");
    }
    // With the master's site lost, the slow witness is part of the only majority: the standby
    // takes over while the witness is still slow (it recovers 80 s after the loss), each step
    // waiting for it. Before, every claim missed its window until the witness recovered.
    for name in [
        "multisite-slow-witness-dc-lost",
        "multisite-witness-just-over-a-third-dc-lost",
    ] {
        let failovers = safe_failovers_s(name);
        assert!(
            !failovers.is_empty() && failovers.iter().all(|&failover| failover < 60.0),
            "{name}: {failovers:?}"
        );
    }
}

#[test]
fn maintenance_survives_the_loss_of_the_site_that_holds_the_maintenance_file() {
    let bound = safety::default_timing().takeover_bound().as_secs_f64();
    // The maintenance file is unreadable with its site: the directories decide, and the
    // takeover keeps the bound.
    let failovers = safe_failovers_s("multisite-maintenance-file-on-lost-site");
    assert!(
        !failovers.is_empty() && failovers.iter().all(|&failover| failover <= bound),
        "{failovers:?}, bound {bound} s"
    );
    // Maintenance kept in the directories holds with that site lost: no takeover until it is
    // switched off, 60 s after the loss.
    let failovers = safe_failovers_s("multisite-maintenance-in-the-directories");
    assert!(
        !failovers.is_empty() && failovers.iter().all(|&failover| failover > 60.0),
        "{failovers:?}"
    );
}

#[test]
fn a_host_that_lists_other_directories_never_claims_next_to_the_master() {
    // Each side of the partition holds a majority of its own list: only the identities in the
    // records keep beta from taking over next to alpha.
    assert_eq!(safe_starts("multisite-mismatched-lists-partition"), 1);
}
