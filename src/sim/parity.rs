//! Runs one scenario with every node on bash, then every node on hacmp (and, for clusters, a
//! mix of the two), and compares the traces node by node.

use std::fmt::Write as _;
use std::path::Path;

use super::audit::Audit;
use super::progress::Progress;
use super::scenario::Scenario;
use super::scheduler::{self, Driver, Setup, TraceEntry};
use crate::config::Settings;

/// Trace entries shown before the first difference.
const CONTEXT: usize = 4;

pub struct Verdict {
    pub scenario: String,
    pub seed: u64,
    pub bash: Audit,
    pub hacmp: Audit,
    /// The first difference, described for a person; `None` when every trace agreed.
    pub difference: Option<String>,
    /// The bash run's trace of each node, when asked for.
    pub bash_traces: Option<Vec<Vec<TraceEntry>>>,
}

/// The index of the first entry where two traces differ (in time or text), if any.
pub fn first_difference(a: &[TraceEntry], b: &[TraceEntry]) -> Option<usize> {
    let common = a.len().min(b.len());
    (0..common)
        .find(|&i| a[i] != b[i])
        .or((a.len() != b.len()).then_some(common))
}

fn describe(
    scenario: &Scenario,
    node: &str,
    labels: (&str, &str),
    traces: (&[TraceEntry], &[TraceEntry]),
    index: usize,
) -> String {
    let mut text = format!(
        "scenario {} (seed {}), node {node}: first difference at step {}\n",
        scenario.name,
        scenario.seed,
        index + 1
    );
    for entry in &traces.0[index.saturating_sub(CONTEXT)..index] {
        let _ = writeln!(text, "    both   {entry}");
    }
    for (label, trace) in [(labels.0, traces.0), (labels.1, traces.1)] {
        match trace.get(index) {
            Some(entry) => {
                let _ = writeln!(text, "  {label:<6} {entry}");
            }
            None => {
                let _ = writeln!(text, "  {label:<6} (trace ends)");
            }
        }
    }
    text
}

/// Compares two runs' traces node by node; the first difference, described.
fn compare(
    scenario: &Scenario,
    labels: (&str, &str),
    a: &[Vec<TraceEntry>],
    b: &[Vec<TraceEntry>],
) -> Option<String> {
    scenario.nodes.iter().enumerate().find_map(|(node, spec)| {
        first_difference(&a[node], &b[node])
            .map(|index| describe(scenario, &spec.name, labels, (&a[node], &b[node]), index))
    })
}

pub fn check(
    scenario: &Scenario,
    original: &Path,
    settings: &Settings,
    keep_traces: bool,
) -> Result<Verdict, String> {
    let run = |drivers: &[Driver]| {
        scheduler::run(&Setup {
            scenario,
            drivers,
            original,
            settings,
        })
    };
    let nodes = scenario.nodes.len();
    let bash = run(&vec![Driver::Bash; nodes])?;
    let hacmp = run(&vec![Driver::Hacmp; nodes])?;
    let mut difference = compare(scenario, ("bash", "hacmp"), &bash.traces, &hacmp.traces);
    if difference.is_none() && nodes > 1 {
        // A cluster being migrated runs both programs at once.
        let mixed: Vec<Driver> = (0..nodes)
            .map(|i| {
                if i % 2 == 0 {
                    Driver::Hacmp
                } else {
                    Driver::Bash
                }
            })
            .collect();
        let mixed = run(&mixed)?;
        difference = compare(scenario, ("bash", "mixed"), &bash.traces, &mixed.traces);
    }
    Ok(Verdict {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        bash: bash.audit,
        hacmp: hacmp.audit,
        difference,
        bash_traces: keep_traces.then_some(bash.traces),
    })
}

/// Runs a scenario on hacmp alone, twice, and reports whether the traces were identical.
pub fn is_deterministic(
    scenario: &Scenario,
    original: &Path,
    settings: &Settings,
    driver: Driver,
) -> Result<bool, String> {
    let drivers = vec![driver; scenario.nodes.len()];
    let setup = Setup {
        scenario,
        drivers: &drivers,
        original,
        settings,
    };
    let first = scheduler::run(&setup)?;
    let second = scheduler::run(&setup)?;
    Ok(first.traces == second.traces)
}

/// Checks many scenarios on `workers` threads; the verdicts come back in the given order.
pub fn check_many(
    scenarios: &[Scenario],
    original: &Path,
    settings: &Settings,
    workers: usize,
    keep_traces: bool,
    progress: &Progress,
) -> Vec<Result<Verdict, String>> {
    super::parallel::map(scenarios, workers, |scenario| {
        let result = check(scenario, original, settings, keep_traces)
            .map_err(|e| format!("scenario {}: {e}", scenario.name));
        let agreed = matches!(&result, Ok(verdict) if verdict.difference.is_none());
        progress.record(1, !agreed);
        result
    })
}
