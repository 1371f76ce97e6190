//! `hacmp parity --safety`: runs the catalog on all five clusters and random schedules on
//! all-safe (and some on all five) clusters, checks the safe profile's rules, and writes the
//! evidence as docs/safety.md. Every figure in the report comes from the runs; the prose around
//! them is fixed here, next to the code whose behaviour it states.

use std::fmt::Write as _;
use std::ops::Range;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::explore::{self, Exploration};
use super::kinds::{Kind, Section};
use super::options::{ParityArgs, checked_settings, replay_file, scenario_files};
use super::progress::Progress;
use super::report::{failovers, seconds};
use super::safety::{self, SafetyVerdict, Ways};
use super::scenario::Scenario;
use super::{parallel, world};
use crate::timing::STEPS_PER_SLOW_TAKEOVER;

/// How the catalog's multi-site scenarios are named.
const MULTISITE_PREFIX: &str = "multisite-";

/// The clusters in the order of the report's columns.
const LABELS: [&str; 5] = ["bash", "compat", "safe", "safe+bash", "safe+compat"];

/// Random schedules of one kind, their seeds and what the checks found.
struct Batch {
    kind: &'static Kind,
    seeds: Range<u64>,
    verdicts: Vec<SafetyVerdict>,
}

pub fn run(args: &ParityArgs) -> Result<bool, String> {
    let settings = checked_settings(args)?;
    let catalog = scenario_files(args)?;
    if catalog.is_empty() && args.schedules.total() == 0 && !args.explore {
        return Err(
            "nothing to run: give --catalog DIR, --scenario FILE, --random N or --explore".into(),
        );
    }
    let workers = parallel::workers();
    let started = Instant::now();
    // The exploration's base runs come first: they decide how many variants there are.
    let plan = match args.explore {
        true => Some(explore::plan(
            &args.original,
            &settings,
            args.explore_stride as usize,
            args.explore_limit as usize,
        )?),
        false => None,
    };
    let random_runs: u64 = args
        .schedules
        .iter()
        .map(|(kind, count)| count * kind.runs_per_schedule())
        .sum();
    let runs = random_runs
        + catalog.len() as u64 * Ways::All.clusters()
        + plan.as_ref().map_or(0, explore::Plan::runs);
    let progress = Progress::on_terminal(runs, "broken rules");
    let mut failures = 0;
    let mut batches = Vec::new();
    for (kind, seeds) in args.schedules.seeds(args.seed) {
        let results =
            kind.check_seeds(seeds.clone(), &args.original, &settings, workers, &progress);
        // The broken rules below start on a line of their own; the next run redraws the line.
        progress.clear();
        let mut verdicts = Vec::new();
        for result in results {
            match result {
                Ok(runs) => {
                    for (scenario, verdict) in runs {
                        if !verdict.violations.is_empty() {
                            failures += 1;
                            report_violations(args, &verdict, Some(&scenario));
                        }
                        verdicts.push(verdict);
                    }
                }
                Err(error) => {
                    failures += 1;
                    eprintln!("FAILED {error}");
                }
            }
        }
        batches.push(Batch {
            kind,
            seeds,
            verdicts,
        });
    }
    let results = safety::check_many(
        &catalog,
        &args.original,
        &settings,
        Ways::All,
        workers,
        &progress,
    );
    progress.clear();
    let mut checked = Vec::new();
    for (scenario, result) in catalog.into_iter().zip(results) {
        match result {
            Ok(verdict) => {
                if !verdict.violations.is_empty() {
                    failures += 1;
                    report_violations(args, &verdict, None);
                }
                checked.push((scenario, verdict));
            }
            Err(error) => {
                failures += 1;
                eprintln!("FAILED {error}");
            }
        }
    }
    // An etcd scenario runs all-safe only; the report shows it in the etcd backend's section.
    let (etcd_catalog, files_catalog): (Vec<(Scenario, SafetyVerdict)>, _) = checked
        .into_iter()
        .partition(|(scenario, _)| scenario.etcd.is_some());
    let [catalog, etcd_catalog] =
        [files_catalog, etcd_catalog].map(|pairs| pairs.into_iter().map(|(_, v)| v).collect());
    let exploration = if let Some(plan) = plan {
        let exploration = explore::explore(plan, &args.original, &settings, workers, &progress);
        progress.clear();
        for (variant, verdict) in &exploration.violations {
            report_violations(args, verdict, Some(variant));
        }
        for error in &exploration.failures {
            eprintln!("FAILED {error}");
        }
        Some(exploration)
    } else {
        None
    };
    failures += exploration
        .as_ref()
        .map_or(0, |e| e.violations.len() + e.failures.len());
    let evidence = Evidence {
        catalog,
        etcd_catalog,
        batches,
        exploration,
        command: command_line(),
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    if let Some(path) = &args.report {
        std::fs::write(path, markdown(&evidence))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let etcd_random = evidence.random_in(Section::Etcd).count();
    println!(
        "{} scenarios ({} over etcd), {} random schedules ({etcd_random} over etcd) and {} explored variants checked in {:.1} s: {failures} with a broken rule or a failed run",
        evidence.catalog.len() + evidence.etcd_catalog.len(),
        evidence.etcd_catalog.len(),
        evidence
            .batches
            .iter()
            .map(|batch| batch.verdicts.len())
            .sum::<usize>(),
        evidence.exploration.as_ref().map_or(0, Exploration::runs),
        evidence.elapsed_s,
    );
    Ok(failures == 0)
}

/// Prints a verdict's broken rules; a random schedule is also written out for replay.
fn report_violations(args: &ParityArgs, verdict: &SafetyVerdict, random: Option<&Scenario>) {
    for violation in &verdict.violations {
        eprintln!(
            "VIOLATION {} (seed {}): {violation}",
            verdict.scenario, verdict.seed
        );
    }
    if let Some(scenario) = random {
        let path = match replay_file(args, &format!("safe-{}", verdict.scenario)) {
            Ok(path) => path,
            Err(e) => {
                eprintln!("  {e}");
                return;
            }
        };
        match std::fs::write(&path, scenario.to_toml()) {
            Ok(()) => eprintln!(
                "  replay: hacmp parity --original {} --safety --scenario {}",
                args.original.display(),
                path.display()
            ),
            Err(e) => eprintln!("  cannot write {}: {e}", path.display()),
        }
    }
}

/// Everything the report shows.
struct Evidence {
    /// The catalog's scenarios on the heartbeat directory.
    catalog: Vec<SafetyVerdict>,
    /// The etcd catalog's scenarios, on all-safe clusters.
    etcd_catalog: Vec<SafetyVerdict>,
    /// One batch per kind of random schedule, in the table's order.
    batches: Vec<Batch>,
    /// Faults at every protocol step of the base scenarios, when asked for.
    exploration: Option<Exploration>,
    command: String,
    elapsed_s: f64,
}

impl Evidence {
    /// The batches of the kinds that feed `section`.
    fn batches_in(&self, section: Section) -> impl Iterator<Item = &Batch> {
        self.batches
            .iter()
            .filter(move |batch| batch.kind.section == section)
    }

    /// Every random schedule's verdict in `section`.
    fn random_in(&self, section: Section) -> impl Iterator<Item = &SafetyVerdict> {
        self.batches_in(section).flat_map(|batch| &batch.verdicts)
    }

    /// Every random schedule's verdict with one heartbeat directory; each ran (at least) all-safe.
    fn random(&self) -> impl Iterator<Item = &SafetyVerdict> {
        self.random_in(Section::Random)
    }

    /// Every random multi-site schedule's verdict.
    fn multisite_random(&self) -> impl Iterator<Item = &SafetyVerdict> {
        self.random_in(Section::MultiSite)
    }

    fn violations(&self) -> usize {
        let explored = self
            .exploration
            .as_ref()
            .map_or(0, |e| e.violations.len() + e.failures.len());
        self.catalog
            .iter()
            .chain(&self.etcd_catalog)
            .chain(self.batches.iter().flat_map(|batch| &batch.verdicts))
            .map(|verdict| verdict.violations.len())
            .sum::<usize>()
            + explored
    }

    /// The catalog's multi-site scenarios (their names start with `multisite-`).
    fn multisite_catalog(&self) -> Vec<&SafetyVerdict> {
        self.catalog
            .iter()
            .filter(|verdict| verdict.scenario.starts_with(MULTISITE_PREFIX))
            .collect()
    }

    /// The random schedules with one heartbeat directory as drawn, and the protocol-aware
    /// ones (every second verdict of a protocol-aware kind).
    fn uniform_and_aware(&self) -> (Vec<&SafetyVerdict>, Vec<&SafetyVerdict>) {
        let (mut uniform, mut aware) = (Vec::new(), Vec::new());
        for batch in self.batches_in(Section::Random) {
            for (index, verdict) in batch.verdicts.iter().enumerate() {
                if batch.kind.protocol_aware && index % 2 == 1 {
                    aware.push(verdict);
                } else {
                    uniform.push(verdict);
                }
            }
        }
        (uniform, aware)
    }

    /// Each kind's line of `section`, in the table's order.
    fn lines(&self, text: &mut String, section: Section) {
        for batch in self.batches_in(section) {
            let count = batch.seeds.end - batch.seeds.start;
            text.push_str(&(batch.kind.line)(count, &seeds(&batch.seeds)));
        }
    }
}

/// One row of the summary: what ran, how many distinct runs, the longest all-safe overlap,
/// the broken rules, and the failover after clean crashes.
fn summary_row(text: &mut String, what: &str, verdicts: &[&SafetyVerdict]) {
    let overlap = verdicts
        .iter()
        .filter_map(|verdict| verdict.run("safe"))
        .map(|run| run.audit.overlap_ms)
        .max()
        .unwrap_or(0);
    let broken: usize = verdicts.iter().map(|v| v.violations.len()).sum();
    let failovers = verdicts
        .iter()
        .flat_map(|v| v.clean_failovers_ms.iter().copied())
        .collect();
    let _ = writeln!(
        text,
        "| {what} | {} | {} | {broken} | {} |",
        verdicts.len(),
        seconds(overlap),
        distribution(failovers)
    );
}

fn summary(text: &mut String, evidence: &Evidence) {
    text.push_str(
        "| Evidence | Distinct runs | Largest all-safe overlap (s) | Broken rules | Safe failover after clean crashes (default variables) |\n\
         |---|---|---|---|---|\n",
    );
    let catalog: Vec<&SafetyVerdict> = evidence.catalog.iter().collect();
    summary_row(text, "Catalog (each on five clusters)", &catalog);
    let (uniform, aware) = evidence.uniform_and_aware();
    summary_row(text, "Random schedules, uniform", &uniform);
    summary_row(text, "Random schedules, protocol-aware", &aware);
    summary_row(
        text,
        "Multi-site catalog (each on five clusters)",
        &evidence.multisite_catalog(),
    );
    let multisite: Vec<&SafetyVerdict> = evidence.multisite_random().collect();
    summary_row(text, "Multi-site random schedules", &multisite);
    match &evidence.exploration {
        Some(exploration) => {
            let _ = writeln!(
                text,
                "| Faults at every protocol step | {} | {} | {} | {} |",
                exploration.runs(),
                seconds(exploration.max_overlap_ms),
                exploration.violations.len() + exploration.failures.len(),
                distribution(exploration.clean_failovers_ms.clone())
            );
        }
        None => text.push_str("| Faults at every protocol step | not run | | | |\n"),
    }
    let etcd_catalog: Vec<&SafetyVerdict> = evidence.etcd_catalog.iter().collect();
    summary_row(text, "etcd backend: catalog (all-safe)", &etcd_catalog);
    let etcd_random: Vec<&SafetyVerdict> = evidence.random_in(Section::Etcd).collect();
    summary_row(text, "etcd backend: random schedules", &etcd_random);
}

/// The etcd backend's section: its catalog, its random schedules, and its failover bound.
fn etcd_section(text: &mut String, evidence: &Evidence) {
    let bound_ms = (safety::DEFAULT_FAILE_OVER_TIME + safety::DEFAULT_LOOP_TIME) * 1000
        + safety::FAILOVER_MARGIN_MS;
    let _ = writeln!(
        text,
        "The same rules on all-safe clusters whose nodes keep their lease in a simulated etcd \
         cluster (hacmpBackend=etcd; `src/sim/world/etcd.rs`): a linearizable store whose \
         leases end on its leader's clock, only while it has a leader; a new leader gives every \
         lease its full TTL again; without a leader (quorum lost, an election of {election} s \
         in progress) no request is answered and nothing expires. A node's link to the cluster \
         can be cut or slow; an answered request takes effect when it was sent, a request that \
         timed out on a slow link takes effect all the same. The failover bound has no settle: \
         faileOverTime + loopTime + {margin} s = {bound} s with the default variables.\n",
        election = seconds(world::ETCD_ELECTION_MS),
        margin = seconds(safety::FAILOVER_MARGIN_MS),
        bound = seconds(bound_ms),
    );
    text.push_str(
        "The etcd catalog (`tests/shell-parity/etcd-scenarios`, each file describes itself):\n\n\
         | Scenario | safe overlap | safe failover | Rules |\n|---|---|---|---|\n",
    );
    for verdict in &evidence.etcd_catalog {
        let rules = if verdict.violations.is_empty() {
            "kept"
        } else {
            "**BROKEN**"
        };
        let _ = writeln!(
            text,
            "| {} | {} | {rules} |",
            verdict.scenario,
            cells(verdict, "safe")
        );
    }
    text.push('\n');
    evidence.lines(text, Section::Etcd);
    let verdicts = || {
        evidence
            .etcd_catalog
            .iter()
            .chain(evidence.random_in(Section::Etcd))
    };
    let _ = writeln!(
        text,
        "- Largest all-safe overlap: {}.",
        overlap_summary(verdicts(), "safe")
    );
    let clean: Vec<u64> = verdicts()
        .flat_map(|verdict| verdict.clean_failovers_ms.iter().copied())
        .collect();
    let _ = writeln!(
        text,
        "- Failover after clean crashes with the default variables (bound {} s): {}.",
        seconds(bound_ms),
        distribution(clean)
    );
    let _ = writeln!(
        text,
        "- Rule violations over etcd: **{}**.",
        verdicts()
            .map(|verdict| verdict.violations.len())
            .sum::<usize>()
    );
}

fn exploration_section(text: &mut String, exploration: &Exploration) {
    let _ = writeln!(
        text,
        "The bases: {}. Each base scenario runs once on an all-safe cluster; every instant at \
         which a node's protocol starts or ends a storage operation, an etcd request or a guard \
         call (and the millisecond before and after it), within the part of the run that \
         decides (the first election, or from a round before the base's first fault until two \
         rounds after the next application start), is the start of one fault on each node: \
         {}. Variants with the same events run once; of each base's variants one in every N \
         ran (the table's column), drawn at random from each block of N, and each is checked \
         with the rules below.\n",
        explore::BASES,
        explore::FAULT_KINDS,
    );
    text.push_str("| Base | One in | Distinct variants run |\n|---|---|---|\n");
    for base in &exploration.bases {
        let _ = writeln!(text, "| {} | {} | {} |", base.name, base.one_in, base.runs);
    }
    let _ = writeln!(
        text,
        "| **all** | | **{}** |\n\nRule violations: **{}**.",
        exploration.runs(),
        exploration.violations.len() + exploration.failures.len()
    );
    for (variant, verdict) in &exploration.violations {
        let _ = writeln!(
            text,
            "- `{}`: {}",
            variant.name,
            verdict.violations.join("; ")
        );
    }
}

/// The command as it was run, with arguments that need it quoted. The original's path is
/// this machine's, so the report names it as `make safety-report` finds it.
fn command_line() -> String {
    let mut after_original = false;
    std::env::args()
        .map(|arg| {
            let quoted = if after_original {
                "\"$(cat target/original/path)\"".to_string()
            } else if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", arg.replace('\'', r"'\''"))
            } else {
                arg.clone()
            };
            after_original = arg == "--original";
            quoted
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A cluster's cells: overlap seconds and failover times, or why it did not run.
fn cells(verdict: &SafetyVerdict, label: &str) -> String {
    match verdict.run(label) {
        Some(run) => format!(
            "{} | {}",
            seconds(run.audit.overlap_ms),
            failovers(&run.audit)
        ),
        None if verdict.refused.is_some() && label.starts_with("safe") => {
            "refused | refused".to_string()
        }
        None => "n/a | n/a".to_string(),
    }
}

fn table(text: &mut String, verdicts: &[SafetyVerdict]) {
    text.push_str("| Scenario |");
    for label in LABELS {
        let _ = write!(text, " {label} overlap | {label} failover |");
    }
    text.push_str(" Rules |\n|---|");
    text.push_str(&"---|---|".repeat(LABELS.len()));
    text.push_str("---|\n");
    for verdict in verdicts {
        let _ = write!(text, "| {} |", verdict.scenario);
        for label in LABELS {
            let _ = write!(text, " {} |", cells(verdict, label));
        }
        let rules = if verdict.violations.is_empty() {
            "kept"
        } else {
            "**BROKEN**"
        };
        let _ = writeln!(text, " {rules} |");
    }
}

/// The largest overlap of a cluster over verdicts, and on how many runs it was above zero.
fn overlap_summary<'a>(verdicts: impl Iterator<Item = &'a SafetyVerdict>, label: &str) -> String {
    let overlaps: Vec<u64> = verdicts
        .filter_map(|verdict| verdict.run(label))
        .map(|run| run.audit.overlap_ms)
        .collect();
    let Some(max) = overlaps.iter().max() else {
        return "not run".to_string();
    };
    let with_overlap = overlaps.iter().filter(|&&ms| ms > 0).count();
    format!(
        "{} s (overlap on {with_overlap} of {} runs)",
        seconds(*max),
        overlaps.len()
    )
}

/// How many runs of a mixed cluster had more overlap than the all-bash cluster.
fn mixed_worse<'a>(verdicts: impl Iterator<Item = &'a SafetyVerdict>, label: &str) -> String {
    let (mut worse, mut compared) = (0, 0);
    for verdict in verdicts {
        if let (Some(mixed), Some(bash)) = (verdict.run(label), verdict.run("bash")) {
            compared += 1;
            if mixed.audit.overlap_ms > bash.audit.overlap_ms {
                worse += 1;
            }
        }
    }
    format!("{worse} of {compared}")
}

/// A duration in the report's milliseconds.
fn ms(duration: std::time::Duration) -> u64 {
    duration.as_millis() as u64
}

/// min / median / max of failover times, or a note that there were none.
fn distribution(mut times_ms: Vec<u64>) -> String {
    if times_ms.is_empty() {
        return "no clean crash happened".to_string();
    }
    times_ms.sort_unstable();
    let median = times_ms[times_ms.len() / 2];
    format!(
        "{} clean crashes: min {} s, median {} s, max {} s",
        times_ms.len(),
        seconds(times_ms[0]),
        seconds(median),
        seconds(times_ms[times_ms.len() - 1])
    )
}

fn seeds(range: &Range<u64>) -> String {
    match range.end - range.start {
        0 => "none".to_string(),
        1 => format!("{}", range.start),
        _ => format!("{} to {}", range.start, range.end - 1),
    }
}

fn random_summary(text: &mut String, evidence: &Evidence) {
    evidence.lines(text, Section::Random);
    text.push_str("- Largest overlap per cluster:\n");
    for label in LABELS {
        // Every schedule runs all-safe; only the five-way ones run the other clusters.
        let summary = overlap_summary(evidence.random(), label);
        let _ = writeln!(text, "  - {label}: {summary}");
    }
    for label in ["safe+bash", "safe+compat"] {
        let _ = writeln!(
            text,
            "- {label} had more overlap than all-bash on {} of the schedules run five ways \
             (reported, not a rule: see below).",
            mixed_worse(evidence.random(), label)
        );
    }
    let clean: Vec<u64> = evidence
        .random()
        .flat_map(|verdict| verdict.clean_failovers_ms.iter().copied())
        .collect();
    let _ = writeln!(
        text,
        "- Safe failover after clean crashes with the default variables: {}.",
        distribution(clean)
    );
    let catalog_clean: Vec<u64> = evidence
        .catalog
        .iter()
        .flat_map(|verdict| verdict.clean_failovers_ms.iter().copied())
        .collect();
    let _ = writeln!(
        text,
        "- For comparison, the catalog's clean crashes: {}.",
        distribution(catalog_clean)
    );
    let refused = evidence
        .random()
        .filter(|verdict| verdict.refused.is_some())
        .count();
    let _ = writeln!(
        text,
        "- Schedules whose variables the safe profile refuses: {refused}."
    );
    let _ = writeln!(
        text,
        "- Rule violations, catalog, random schedules and step exploration together: **{}**.",
        evidence.violations()
    );
}

fn multisite_section(text: &mut String, evidence: &Evidence) {
    let timing = safety::default_timing();
    let _ = writeln!(
        text,
        "The safe profile over `hacmpHeartBeatDirs`: three heartbeat directories, each on a \
         shared storage of its own (two data centres, dc1 and dc2, and a witness at a third \
         site), where a majority decides. Each node has its own health on each storage, so \
         that a node can lose a directory its peers still reach. bash and compat nodes use \
         heartBeatDir, dc1's directory: their columns show what the script does when dc1 is \
         lost.\n"
    );
    let catalog = evidence.multisite_catalog();
    let _ = writeln!(
        text,
        "- The catalog's {} multi-site scenarios (`{MULTISITE_PREFIX}*`, in the catalog table \
         above): largest all-safe overlap {} s, broken rules {}.",
        catalog.len(),
        seconds(
            catalog
                .iter()
                .filter_map(|verdict| verdict.run("safe"))
                .map(|run| run.audit.overlap_ms)
                .max()
                .unwrap_or(0)
        ),
        catalog.iter().map(|v| v.violations.len()).sum::<usize>()
    );
    evidence.lines(text, Section::MultiSite);
    let _ = writeln!(
        text,
        "- Largest all-safe overlap over these random schedules: {}.",
        overlap_summary(evidence.multisite_random(), "safe")
    );
    // The catalog's multi-site scenarios and the random multi-site schedules.
    let verdicts = || catalog.iter().copied().chain(evidence.multisite_random());
    let losses: Vec<u64> = verdicts()
        .flat_map(|verdict| verdict.clean_failovers_ms.iter().copied())
        .collect();
    let _ = writeln!(
        text,
        "- Failover after the active host's data centre was lost whole (or its host crashed) \
         with every other node healthy, default variables, catalog and random schedules: {}. \
         The documented bound (docs/multi-site.md) is faileOverTime + loopTime + the settle \
         ({} s) + the storage deadline ({} s) = {} s, and the rule allows {} s more: every \
         step returns once a majority answered, so the lost site's directory or maintenance \
         file costs one deadline at most.",
        distribution(losses),
        seconds(ms(timing.settle)),
        seconds(ms(timing.io_limit)),
        seconds(ms(timing.takeover_bound())),
        seconds(safety::FAILOVER_MARGIN_MS),
    );
    let slow: Vec<u64> = verdicts()
        .flat_map(|verdict| verdict.slow_failovers_ms.iter().copied())
        .collect();
    let _ = writeln!(
        text,
        "- The same, but with a directory answering slowly within the storage deadline (for \
         every node or one), catalog and random schedules: {}. The documented bound is the one \
         above with each of the takeover's {} storage steps waiting a deadline, {} s, and the \
         rule allows {} s more.",
        distribution(slow),
        STEPS_PER_SLOW_TAKEOVER,
        seconds(ms(timing.slow_takeover_bound())),
        seconds(safety::FAILOVER_MARGIN_MS),
    );
    let broken: usize = verdicts().map(|verdict| verdict.violations.len()).sum();
    let _ = writeln!(text, "- Rule violations with several sites: **{broken}**.");
}

fn rules(text: &mut String) {
    let timing = safety::default_timing();
    let cycle_ms = ms(timing.takeover_after + timing.loop_pause + timing.settle);
    let _ = write!(
        text,
        "Checked on every run; any violation makes the command exit 1.\n\n\
         - **No overlap**: in an all-safe cluster, never more than one instance executes, not \
         for a millisecond.\n\
         - **Failover bound**: with the default variables (faileOverTime {f}, loopTime {l}), \
         after a *clean* crash of the active host (every other node healthy, no other event \
         from a quiet period before the crash until the bound after it) an instance executes \
         again within faileOverTime + loopTime + the settle ({settle} s) + {margin} s = \
         {bound} s (with several sites, plus the storage deadline). The margin \
         covers the milliseconds of each storage operation and the standby's loop not being \
         aligned with the crash.\n\
         - **Convergence**: when every fault has healed and a quiet period of 2 × \
         (faileOverTime + loopTime + the settle) passed without events before the end, exactly one \
         instance executes at the end of an all-safe run, and at least one (a master was \
         elected) at the end of a mixed run.\n\
         - **Mixed clusters** (safe on every other node, next to bash or compat) are held to \
         electing a master. Their overlap is reported beside all-bash's, not asserted: the \
         bash and compat nodes keep the script's own defects (they judge a peer by comparing \
         clocks and never fence themselves), and a safe node's full faileOverTime of \
         observation before it claims hands the master role to those nodes more often than \
         in an all-bash cluster, so on some schedules a mix overlaps more than all-bash.\n",
        f = safety::DEFAULT_FAILE_OVER_TIME,
        l = safety::DEFAULT_LOOP_TIME,
        margin = seconds(safety::FAILOVER_MARGIN_MS),
        settle = seconds(ms(timing.settle)),
        bound = seconds(cycle_ms + safety::FAILOVER_MARGIN_MS),
    );
}

const COLUMNS: &str = "\
Each scenario of the catalog (`tests/shell-parity/scenarios`, each file describes itself) runs \
on five clusters: every node on the unmodified bash script, every node on hacmp's compat \
profile, every node on the safe profile, and the safe profile on every other node with bash or \
compat on the rest. **Overlap**: seconds during which more than one instance of the app was \
executing (alive on a host that is not frozen). **Failover**: for each fault that stopped the \
last executing instance, the seconds until one executed again (`none`: not before the end of \
the run; `-`: no fault stopped the app). `n/a`: a one-node scenario has no mixed cluster. \
`refused`: the safe profile refuses the scenario's variables and does not run.";

const ASSUMPTIONS: &str = "\
- **Virtual time.** Every run is a discrete-event simulation in milliseconds; `sleep` takes \
exactly its time and every other command 1 ms unless the scenario says otherwise. The bash \
nodes run the unmodified script in real bash processes against the simulated world.
- **Host freeze.** A frozen host does nothing: its daemon, its guard and its apps stop, and its \
apps do not count as executing. At thaw, timers that came due during the freeze (the guard's \
deadline, an app's exit, a pending SIGKILL) fire first, before the apps execute again. This is \
how a kernel treats expired timers after a suspend; a hypervisor that stops a guest's boot \
clock while it is paused breaks this assumption.
- **Boot clock.** Every host has a monotonic boot clock (CLOCK_BOOTTIME) that counts on \
through freezes and never jumps; a reboot starts it again. Wall clocks (`date +%s`, the stamps \
of local files) and the storage server's clock may be skewed by any amount and jump either way.
- **Late writes.** A write that lands late reaches the shared storage some time after it was \
issued: `touch` returns at once, a safe record write waits for it up to its deadline. A write \
that timed out is not lost: it lands when the slow or late storage delivers it, or when hung \
storage is restored; failing storage loses it. A write confirmed in time counts as landed when \
it was issued.
- **Attribute caching** affects only `stat`, `ls` and `[ -f ]` on the shared storage, which \
answer from a cache up to N seconds old; a node's own writes update its cache. The safe \
profile's record reads are always fresh (opening a file revalidates it on NFS).
- **Listing caches** are a node's mount option (`listing_cache`): its listing of the heartbeat \
directory answers from a listing up to that old, with the entries it created itself. A safe \
daemon refuses to start on such a node (exit status 2), as the real preflight does; \
tests/safe_simulation.rs lifts the refusal to show that two claimants then overlap.
- **The guard** is a process of its own on each safe node: it holds the app and a deadline on \
the boot clock and kills the app with SIGKILL when the deadline passes, whether the daemon is \
healthy, paused, killed or blocked on storage; it dies with its host.";

/// The date (UTC) of a moment, as YYYY-MM-DD, by the civil calendar.
fn utc_date(since_epoch_s: u64) -> String {
    // Days since 1970-01-01, shifted to an era starting on 0000-03-01 (Howard Hinnant's
    // days-to-civil algorithm), so that leap days fall at the end of each year.
    let days = since_epoch_s / 86_400 + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The processor's model name as Linux reports it, when it does.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|line| line.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

fn markdown(evidence: &Evidence) -> String {
    let mut text = String::from(
        "# Safety report\n\n\
         The safe profile's evidence from the simulator: overlap and failover of the bash \
         script, hacmp's compat profile and the safe profile, side by side, on every scenario \
         of the catalog, on random fault schedules and with faults at every step of the \
         protocol. This file is generated; do not edit it.\n\n\
         ## Summary\n\n",
    );
    summary(&mut text, evidence);
    text.push_str("\n## Catalog\n\n");
    text.push_str(COLUMNS);
    text.push_str("\n\n");
    table(&mut text, &evidence.catalog);
    let refused: Vec<_> = evidence
        .catalog
        .iter()
        .filter_map(|v| Some((v.scenario.as_str(), v.refused.as_deref()?)))
        .collect();
    for (scenario, reason) in refused {
        let _ = writeln!(
            text,
            "\n`{scenario}`: the safe profile refuses it: {reason}"
        );
    }
    text.push_str("\n## Random fault schedules\n\n");
    random_summary(&mut text, evidence);
    text.push_str("\n## Several heartbeat directories (multi-site)\n\n");
    multisite_section(&mut text, evidence);
    if let Some(exploration) = &evidence.exploration {
        text.push_str("\n## Faults at every protocol step\n\n");
        exploration_section(&mut text, exploration);
    }
    text.push_str("\n## The etcd backend\n\n");
    etcd_section(&mut text, evidence);
    text.push_str("\n## Rules\n\n");
    rules(&mut text);
    text.push_str("\n## Modelling assumptions\n\n");
    text.push_str(ASSUMPTIONS);
    text.push_str("\n\n## How this file was made\n\n");
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let workers = parallel::workers();
    let cpu = cpu_model().map_or_else(String::new, |model| format!(", {model}"));
    let _ = write!(
        text,
        "Regenerate it with the command that wrote it (`make safety-report` runs the \
         project's):\n\n    {}\n\n\
         Generated on {} on a machine with {workers} processors (nproc){cpu}; the runs took \
         {:.1} s of wall-clock time on {workers} threads (release build).\n",
        evidence.command,
        utc_date(now_s),
        evidence.elapsed_s
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_the_civil_calendar() {
        assert_eq!(utc_date(0), "1970-01-01");
        // 2000-02-29 (a leap day of a century divisible by 400) and the day after.
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(951_868_800), "2000-03-01");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14");
    }

    #[test]
    fn the_median_is_the_middle_of_the_sorted_times() {
        assert_eq!(
            distribution(vec![3000, 1000, 2000]),
            "3 clean crashes: min 1.000 s, median 2.000 s, max 3.000 s"
        );
        assert_eq!(distribution(Vec::new()), "no clean crash happened");
    }
}
