//! The safe profile's evidence: every scenario run with all nodes on bash, on hacmp compat, on
//! hacmp safe, and mixed (safe next to bash, safe next to compat), and the safe profile's
//! promises checked on the audits.
//!
//! The rules (docs/safety.md states them for readers):
//! - **No overlap**: in an all-safe cluster, never two instances executing at once.
//! - **Failover bound**: with the default variables, after a *clean* host crash of the active
//!   node (every other node healthy, nothing else happening from a quiet period before it until
//!   the bound after it) an instance executes again within faileOverTime + loopTime + the
//!   settle + `FAILOVER_MARGIN` (with the etcd backend, which has no settle: without it); with
//!   several sites, `Timing::takeover_bound` (plus the storage deadline) + the margin, and
//!   the crash may come with the loss of its site's storage at the same instant (a data
//!   centre lost whole). When the other nodes are healthy but for a directory answering
//!   within the storage deadline, `Timing::slow_takeover_bound` + the margin.
//! - **Convergence**: when every fault has healed and a quiet period of 2 × (faileOverTime +
//!   loopTime + the settle) passed without events before the end, exactly one instance executes at
//!   the end of an all-safe run, and at least one (a master was elected) in a mixed cluster
//!   whose bash and compat nodes can judge heartbeats at all (their clocks within faileOverTime
//!   of the storage server's, and no clock jump).
//!
//! A mixed cluster's overlap is reported beside the all-bash cluster's but not asserted: its
//! bash and compat nodes keep the script's defects (they judge a peer by comparing clocks and
//! never fence themselves), and because a safe node observes for a full faileOverTime before
//! it claims, the master role goes to those nodes more often than in an all-bash cluster; on
//! some schedules (heartbeat-dir-removed, maintenance-standby) a mix overlaps more than
//! all-bash. The safe profile cannot hold a promise for the nodes that do not run it.

use std::collections::BTreeSet;
use std::path::Path;

use super::audit::{Audit, Others};
use super::progress::Progress;
use super::scenario::{Action, EventSpec, Scenario, Seconds};
use super::scheduler::{self, Driver, ProtocolStep, Setup, node_variables};
use crate::config::{Profile, Settings};
use crate::timing::{MIN_SETTLE, Timing};

/// The bounded extra time the failover rule allows beyond faileOverTime + loopTime + settle: the
/// milliseconds of each storage operation and echo, and the standby's loop not being aligned
/// with the crash.
pub const FAILOVER_MARGIN_MS: u64 = 2000;
/// The variables under which the failover bound is promised (heartbeat.sh's defaults).
pub const DEFAULT_FAILE_OVER_TIME: u64 = 10;
pub const DEFAULT_LOOP_TIME: u64 = 3;

/// The safe profile's durations for the default variables, where the bound is promised.
pub fn default_timing() -> Timing {
    Timing::new(DEFAULT_FAILE_OVER_TIME, DEFAULT_LOOP_TIME).expect("the defaults fit a lease")
}

/// Which clusters to run a scenario on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ways {
    /// bash, compat, safe and both mixes: the report's five columns.
    All,
    /// Only the all-safe cluster (no bash process): fast enough for many schedules.
    SafeOnly,
}

impl Ways {
    /// How many clusters a scenario runs on: the unit of `hacmp parity --safety`'s progress.
    pub fn clusters(self) -> u64 {
        match self {
            Ways::All => 5,
            Ways::SafeOnly => 1,
        }
    }
}

/// One cluster's run of a scenario.
pub struct ProfileRun {
    pub label: &'static str,
    pub audit: Audit,
    /// Instances executing at the end of the run.
    pub executing_at_end: u32,
}

pub struct SafetyVerdict {
    pub scenario: String,
    pub seed: u64,
    /// In the order bash, compat, safe, safe+bash, safe+compat (those that ran).
    pub runs: Vec<ProfileRun>,
    /// Every rule broken, described with the figures that broke it.
    pub violations: Vec<String>,
    /// Failover times (ms) after clean crashes in the all-safe run.
    pub clean_failovers_ms: Vec<u64>,
    /// Failover times (ms) after crashes in the all-safe run that were clean but for a
    /// directory answering slowly within the storage deadline (several sites only).
    pub slow_failovers_ms: Vec<u64>,
    /// Why the safe profile refuses the scenario's variables (it then runs on no node, and
    /// only bash and compat ran).
    pub refused: Option<String>,
}

impl SafetyVerdict {
    pub fn run(&self, label: &str) -> Option<&ProfileRun> {
        self.runs.iter().find(|run| run.label == label)
    }
}

/// The drivers of every node for one cluster: `safe` on even nodes and `other` on odd ones
/// for a mix, all `other` when `safe` is `None`.
fn drivers(nodes: usize, other: Driver, safe: bool) -> Vec<Driver> {
    (0..nodes)
        .map(|i| {
            if safe && i % 2 == 0 {
                Driver::Safe
            } else {
                other
            }
        })
        .collect()
}

/// The clusters to run, with their labels. A scenario with an etcd cluster runs all-safe only:
/// bash and the compat profile have no etcd backend.
fn clusters(scenario: &Scenario, ways: Ways) -> Vec<(&'static str, Vec<Driver>)> {
    let nodes = scenario.nodes.len();
    let all_safe = ("safe", vec![Driver::Safe; nodes]);
    if ways == Ways::SafeOnly || scenario.etcd.is_some() {
        return vec![all_safe];
    }
    let mut clusters = vec![
        ("bash", vec![Driver::Bash; nodes]),
        ("compat", vec![Driver::Hacmp; nodes]),
        all_safe,
    ];
    if nodes > 1 {
        clusters.push(("safe+bash", drivers(nodes, Driver::Bash, true)));
        clusters.push(("safe+compat", drivers(nodes, Driver::Hacmp, true)));
    }
    clusters
}

/// What the rules need to know about a scenario.
struct Facts {
    /// 2 × (faileOverTime + loopTime + the settle).
    quiet_ms: u64,
    /// The failover bound, when the scenario runs with the default variables.
    failover_bound_ms: Option<u64>,
    /// With several sites and the default variables: the failover bound while a directory
    /// answers slowly, and the storage deadline below which that slowness must stay.
    slow_failover: Option<SlowFailover>,
    /// When something happens: every event and every daemon's first start.
    happenings_ms: Vec<u64>,
    end_ms: u64,
    /// Whether a bash or compat node's clock and the storage server's differ by faileOverTime
    /// or more (a skew, or a jump): such a node then takes every heartbeat for stale and takes
    /// over round after round, and a safe node yields to its touches each time, so a mixed
    /// cluster may have no instance at any given moment. That is the script's defect, which
    /// the safe profile cannot repair for the nodes that do not run it.
    script_misjudges: bool,
}

#[derive(Clone, Copy)]
struct SlowFailover {
    bound_ms: u64,
    slower_than_deadline_ms: u64,
}

impl Facts {
    fn of(scenario: &Scenario, settings: &Settings) -> Result<Facts, String> {
        let first = &scenario.nodes[0].name;
        // An etcd scenario's variables are the safe profile's: the compat profile refuses etcd.
        let driver = match scenario.etcd {
            Some(_) => Driver::Safe,
            None => Driver::Hacmp,
        };
        let vars = node_variables(settings, scenario, first, driver)?;
        let safe_timing = match node_variables(settings, scenario, first, Driver::Safe)
            .ok()
            .map(|vars| vars.profile)
        {
            Some(Profile::Safe(timing)) => Some(timing),
            _ => None,
        };
        // The files backend's settle, part of every failover; etcd has none, and its quiet
        // period keeps the script's 5-second pause, as when the safe profile refuses the
        // variables.
        let settle = match (&scenario.etcd, safe_timing) {
            (None, Some(timing)) => timing.settle,
            _ => MIN_SETTLE,
        };
        let settle_ms = settle.as_millis() as u64;
        let cycle_ms = (vars.faile_over_time + vars.loop_time) * 1000 + settle_ms;
        let failover_ms = match (scenario.etcd.is_some(), safe_timing) {
            // With etcd a standby campaigns as soon as it sees the leader key gone, without
            // the files backend's settle: failover takes faileOverTime (the lease's end on the
            // cluster) and a loopTime (the standby's next look).
            (true, _) => cycle_ms - settle_ms,
            // With several sites, the bound docs/multi-site.md states: one storage deadline
            // more, for the lost site's directory or maintenance file.
            (false, Some(timing)) if !scenario.sites.is_empty() => {
                timing.takeover_bound().as_millis() as u64
            }
            _ => cycle_ms,
        };
        let defaults =
            (vars.faile_over_time, vars.loop_time) == (DEFAULT_FAILE_OVER_TIME, DEFAULT_LOOP_TIME);
        let crash_at = |at: Seconds| {
            scenario
                .events
                .iter()
                .any(|e| e.action == Action::Crash && e.at == at)
        };
        // With several sites, the crashes and the site's storage lost for every node at one
        // instant are one happening: a data centre lost whole.
        let site_lost = |e: &EventSpec| {
            !scenario.sites.is_empty()
                && crash_at(e.at)
                && (e.action == Action::Crash
                    || (e.action.is_storage_health() && e.site.is_some() && e.node.is_none()))
        };
        let losses: BTreeSet<u64> = scenario
            .events
            .iter()
            .filter(|e| site_lost(e))
            .map(|e| e.at.millis() as u64)
            .collect();
        let happenings_ms = scenario
            .events
            .iter()
            .filter(|e| !site_lost(e))
            .map(|e| e.at.millis() as u64)
            .chain(scenario.nodes.iter().map(|n| n.start.millis() as u64))
            .chain(losses)
            .collect();
        let faile_over_ms = vars.faile_over_time as i64 * 1000;
        let server_ms = scenario.storage.server_skew.millis();
        let script_misjudges = scenario
            .nodes
            .iter()
            .any(|node| (node.clock_skew.millis() - server_ms).abs() >= faile_over_ms)
            || scenario
                .events
                .iter()
                .any(|e| e.action == Action::ClockJump);
        let slow_failover = safe_timing
            .filter(|_| defaults && scenario.etcd.is_none() && !scenario.sites.is_empty())
            .map(|timing| SlowFailover {
                bound_ms: timing.slow_takeover_bound().as_millis() as u64 + FAILOVER_MARGIN_MS,
                slower_than_deadline_ms: timing.io_limit.as_millis() as u64,
            });
        Ok(Facts {
            script_misjudges,
            slow_failover,
            quiet_ms: 2 * cycle_ms,
            failover_bound_ms: defaults.then_some(failover_ms + FAILOVER_MARGIN_MS),
            happenings_ms,
            end_ms: scenario.duration * 1000,
        })
    }

    /// Whether nothing but the fault at `at_ms` happens from the quiet period before it
    /// until `after_ms` after it.
    fn alone(&self, at_ms: u64, after_ms: u64) -> bool {
        let from = at_ms.checked_sub(self.quiet_ms);
        let until = at_ms + after_ms;
        from.is_some()
            && until <= self.end_ms
            && self
                .happenings_ms
                .iter()
                .filter(|&&t| from.is_some_and(|from| t >= from) && t <= until)
                .count()
                == 1
    }

    /// Whether the run ends after a quiet period.
    fn quiet_at_end(&self) -> bool {
        let last = self.happenings_ms.iter().copied().max().unwrap_or(0);
        self.end_ms.saturating_sub(last) >= self.quiet_ms
    }
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// Runs the scenario on the clusters of `ways` and checks the rules.
pub fn check(
    scenario: &Scenario,
    original: &Path,
    settings: &Settings,
    ways: Ways,
) -> Result<SafetyVerdict, String> {
    check_with_steps(scenario, original, settings, ways).map(|(verdict, _)| verdict)
}

/// `check`, also returning the protocol steps of the all-safe run (none when the safe profile
/// refuses the scenario).
pub fn check_with_steps(
    scenario: &Scenario,
    original: &Path,
    settings: &Settings,
    ways: Ways,
) -> Result<(SafetyVerdict, Vec<ProtocolStep>), String> {
    let mut steps = Vec::new();
    let facts = Facts::of(scenario, settings)?;
    let first = &scenario.nodes[0].name;
    let refused = node_variables(settings, scenario, first, Driver::Safe).err();
    let mut verdict = SafetyVerdict {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        runs: Vec::new(),
        violations: Vec::new(),
        clean_failovers_ms: Vec::new(),
        slow_failovers_ms: Vec::new(),
        refused: refused.clone(),
    };
    for (label, drivers) in clusters(scenario, ways) {
        if refused.is_some() && drivers.contains(&Driver::Safe) {
            continue;
        }
        let result = scheduler::run(&Setup {
            scenario,
            drivers: &drivers,
            original,
            settings,
        })?;
        let executing_at_end = result.audit.alive();
        let all_safe = drivers.iter().all(|d| *d == Driver::Safe);
        if all_safe {
            steps = result.steps;
        }
        let mixed = !all_safe && drivers.contains(&Driver::Safe);
        let settled = result.healthy_at_end && facts.quiet_at_end();
        let mixed_must_run = mixed && !facts.script_misjudges;
        if settled
            && ((all_safe && executing_at_end != 1) || (mixed_must_run && executing_at_end == 0))
        {
            verdict.violations.push(format!(
                "{label}: {executing_at_end} instances execute at the end, after every fault healed and {} without events",
                seconds(facts.quiet_ms)
            ));
        }
        verdict.runs.push(ProfileRun {
            label,
            audit: result.audit,
            executing_at_end,
        });
    }
    if verdict.refused.is_none() {
        check_safe(&facts, &mut verdict);
    }
    Ok((verdict, steps))
}

/// The rules of the all-safe cluster: no overlap, the failover bound.
fn check_safe(facts: &Facts, verdict: &mut SafetyVerdict) {
    let safe = &verdict
        .run("safe")
        .expect("every check runs all-safe")
        .audit;
    let mut violations = Vec::new();
    if safe.overlap_ms > 0 || safe.max_alive > 1 {
        violations.push(format!(
            "safe: {} with more than one instance executing (at most {} at once)",
            seconds(safe.overlap_ms),
            safe.max_alive
        ));
    }
    let mut clean = Vec::new();
    let mut slow_failovers = Vec::new();
    for fault in &safe.faults {
        // A directory answering within the deadline has a bound of its own; one answering
        // later is as good as lost, and no bound is promised while a majority depends on it.
        let checked = match fault.others {
            Others::Healthy => facts.failover_bound_ms.map(|bound| (bound, &mut clean)),
            Others::SlowStorage { slowest_ms } => facts
                .slow_failover
                .filter(|slow| slowest_ms < slow.slower_than_deadline_ms)
                .map(|slow| (slow.bound_ms, &mut slow_failovers)),
            Others::Unhealthy => None,
        };
        let Some((bound, failovers)) = checked else {
            continue;
        };
        let is_clean = fault.label.starts_with("crash ")
            && fault.caused_outage
            && facts.alone(fault.at_ms, bound);
        if !is_clean {
            continue;
        }
        match fault.failover_ms {
            Some(ms) if ms <= bound => failovers.push(ms),
            failover => violations.push(format!(
                "safe: after the {} at {} the app executed again after {} (bound {})",
                fault.label,
                seconds(fault.at_ms),
                failover.map_or("never".to_string(), seconds),
                seconds(bound)
            )),
        }
    }
    verdict.violations.extend(violations);
    verdict.clean_failovers_ms = clean;
    verdict.slow_failovers_ms = slow_failovers;
}

/// Checks many scenarios on `workers` threads; the verdicts come back in the given order.
pub fn check_many(
    scenarios: &[Scenario],
    original: &Path,
    settings: &Settings,
    ways: Ways,
    workers: usize,
    progress: &Progress,
) -> Vec<Result<SafetyVerdict, String>> {
    super::parallel::map(scenarios, workers, |scenario| {
        let result = check(scenario, original, settings, ways)
            .map_err(|e| format!("scenario {}: {e}", scenario.name));
        let kept = matches!(&result, Ok(verdict) if verdict.violations.is_empty());
        progress.record(ways.clusters(), !kept);
        result
    })
}
