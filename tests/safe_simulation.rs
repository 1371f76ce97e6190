//! The safe profile in the simulator: every catalog scenario (the multi-site ones included) run
//! on bash, compat, safe and mixed clusters, random fault schedules (uniform and
//! protocol-aware, over one heartbeat directory or three sites) on all-safe clusters, and a
//! sample of the faults-at-every-step exploration must keep the safe profile's promises (see
//! `hacmp::sim::safety` for the rules).

mod support;

use std::path::Path;

use hacmp::sim::explore;
use hacmp::sim::kinds::{Counts, Runs};
use hacmp::sim::options::original_settings;
use hacmp::sim::parallel;
use hacmp::sim::progress::Progress;
use hacmp::sim::safety::{self, SafetyVerdict, Ways};
use hacmp::sim::scenario::Scenario;

/// How many schedules of each kind of random schedule run here, a sample of what
/// `make safety-report` runs; their seeds follow each other from `FIRST_SEED` in the order of
/// the table of kinds.
fn counts() -> Counts {
    Counts::of(&[
        // Every kind but random-all-ways runs all-safe only: no bash process, so it is quick.
        ("random", 300),
        ("random-all-ways", 40),
        ("random-crashes", 50),
        ("random-biased", 60),
        ("random-etcd", 100),
        ("random-etcd-crashes", 40),
        ("random-multisite", 40),
        ("random-site-losses", 20),
        ("random-slow-sites", 20),
    ])
}

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

/// A verdict's broken rules, each with its scenario and seed.
fn broken(verdict: &SafetyVerdict) -> Vec<String> {
    verdict
        .violations
        .iter()
        .map(|v| format!("{} (seed {}): {v}", verdict.scenario, verdict.seed))
        .collect()
}

/// Every violation of every verdict.
fn violations(results: &[Result<SafetyVerdict, String>]) -> Vec<String> {
    results
        .iter()
        .flat_map(|result| match result {
            Ok(verdict) => broken(verdict),
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

/// Checks every schedule of the kind whose option is `option`, with its count and seeds from
/// `counts`; returns each schedule's runs.
fn check_kind(option: &str) -> Vec<Runs> {
    let (kind, seeds) = counts()
        .seeds(FIRST_SEED)
        .into_iter()
        .find(|(kind, _)| kind.option == option)
        .unwrap();
    let original = support::original_script();
    let settings = original_settings(&original).unwrap();
    let results = kind.check_seeds(
        seeds,
        &original,
        &settings,
        parallel::workers(),
        &Progress::silent(),
    );
    let failures: Vec<String> = results
        .iter()
        .flat_map(|result| match result {
            Ok(runs) => runs
                .iter()
                .flat_map(|(_, verdict)| broken(verdict))
                .collect(),
            Err(error) => vec![error.clone()],
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    results.into_iter().map(Result::unwrap).collect()
}

/// The failover times after clean crashes over every run.
fn clean_failovers(schedules: &[Runs]) -> Vec<u64> {
    schedules
        .iter()
        .flatten()
        .flat_map(|(_, verdict)| verdict.clean_failovers_ms.iter().copied())
        .collect()
}

/// Asserts that at least one in `one_in` of the kind's schedules measured the failover bound:
/// it is checked only after clean crashes of the active node, and schedules that never hit one
/// would check nothing.
fn assert_clean_crashes(option: &str, schedules: &[Runs], one_in: u64) {
    let at_least = counts().get(option) / one_in;
    let failovers = clean_failovers(schedules);
    assert!(
        failovers.len() as u64 >= at_least,
        "only {} clean crashes of an active node in {} {option} schedules",
        failovers.len(),
        schedules.len()
    );
}

#[test]
fn random_schedules_keep_the_safe_promises() {
    check_kind("random");
}

#[test]
fn random_mixed_clusters_keep_the_safe_promises() {
    check_kind("random-all-ways");
}

#[test]
fn random_clean_crashes_fail_over_within_the_bound() {
    let schedules = check_kind("random-crashes");
    assert_clean_crashes("random-crashes", &schedules, 2);
}

#[test]
fn random_clean_crashes_over_etcd_fail_over_within_the_bound() {
    let schedules = check_kind("random-etcd-crashes");
    assert_clean_crashes("random-etcd-crashes", &schedules, 2);
}

#[test]
fn random_multisite_schedules_keep_the_safe_promises() {
    check_kind("random-multisite");
}

#[test]
fn a_data_centre_lost_whole_fails_over_within_the_bound() {
    let schedules = check_kind("random-site-losses");
    // Only when the lost data centre held the active node and its crash came first.
    assert_clean_crashes("random-site-losses", &schedules, 4);
}

#[test]
fn a_slow_site_and_a_lost_data_centre_keep_the_safe_promises() {
    let schedules = check_kind("random-slow-sites");
    // The slow-storage failover rule measured some of them, not skipped them all.
    assert!(
        schedules
            .iter()
            .flatten()
            .any(|(_, verdict)| !verdict.slow_failovers_ms.is_empty()),
        "no failover with a slow directory was measured"
    );
    // Once the slow site and the lost data centre are back, whatever the slowness was, one
    // instance runs: the convergence rule held on every schedule rather than being skipped.
    for runs in &schedules {
        let (scenario, verdict) = &runs[0];
        let run = verdict.run("safe").unwrap();
        assert_eq!(
            run.executing_at_end, 1,
            "{}: {:?}",
            scenario.name, run.audit
        );
    }
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
    assert_faults_moved("random-biased");
}

#[test]
fn protocol_aware_random_schedules_over_etcd_keep_the_safe_promises() {
    assert_faults_moved("random-etcd");
}

/// Checks a protocol-aware kind, and that most of its schedules had a fault moved: a
/// protocol-aware schedule that moved none would test nothing new.
fn assert_faults_moved(option: &str) {
    let schedules = check_kind(option);
    let moved = schedules
        .iter()
        .filter(|runs| match &runs[..] {
            [(drawn, _), (aware, _)] => drawn.events != aware.events,
            _ => panic!("{option} runs each schedule as drawn and protocol-aware"),
        })
        .count();
    let count = counts().get(option);
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
    // waiting for it. Before, every claim missed its window until the witness recovered. The
    // rule checked the takeover against its own bound (no broken rule, and measured).
    let slow_bound = timing.slow_takeover_bound().as_millis() as u64;
    for name in [
        "multisite-slow-witness-dc-lost",
        "multisite-witness-just-over-a-third-dc-lost",
    ] {
        let verdict = safe_run_of(name);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert!(
            !verdict.slow_failovers_ms.is_empty()
                && verdict.slow_failovers_ms.iter().all(|&ms| ms <= slow_bound),
            "{name}: {:?}, bound {slow_bound} ms",
            verdict.slow_failovers_ms
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
