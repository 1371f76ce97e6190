//! `hacmp parity`: compares an operator's heartbeat.sh with hacmp on scenarios and random
//! fault schedules, before they switch.

use std::path::Path;
use std::process::ExitCode;

use super::options::{ParityArgs, checked_settings, replay_file, scenario_files};
use super::parity::{self, Verdict};
use super::progress::Progress;
use super::scenario::Scenario;
use super::{kinds, report};

pub fn run(args: &ParityArgs) -> ExitCode {
    let outcome = if args.safety {
        super::safety_report::run(args)
    } else {
        compare(args)
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("hacmp parity: {error}");
            ExitCode::from(2)
        }
    }
}

fn compare(args: &ParityArgs) -> Result<bool, String> {
    let settings = checked_settings(args)?;
    let mut scenarios = scenario_files(args)?;
    if let Some(scenario) = scenarios.iter().find(|scenario| scenario.etcd.is_some()) {
        return Err(format!(
            "scenario {} uses etcd, which bash has no counterpart for: check it with --safety",
            scenario.name
        ));
    }
    let first_random = scenarios.len();
    let count = args.schedules.get(kinds::PARITY.option);
    scenarios.extend((0..count).map(|i| (kinds::PARITY.generate)(args.seed.wrapping_add(i))));
    if scenarios.is_empty() {
        return Err("nothing to run: give --scenario FILE or --random N".to_string());
    }
    let workers = super::parallel::workers();
    let started = std::time::Instant::now();
    let progress = Progress::on_terminal(scenarios.len() as u64, "differences");
    let results = parity::check_many(
        &scenarios,
        &args.original,
        &settings,
        workers,
        args.traces.is_some(),
        &progress,
    );
    progress.clear();
    let mut verdicts: Vec<Verdict> = Vec::new();
    let mut failures = 0;
    for (index, result) in results.into_iter().enumerate() {
        match result {
            Ok(verdict) => {
                if let Some(difference) = &verdict.difference {
                    failures += 1;
                    eprint!("DIFFERENT {difference}");
                    if index >= first_random {
                        let path = replay_file(args, &verdict.scenario)?;
                        match std::fs::write(&path, scenarios[index].to_toml()) {
                            Ok(()) => eprintln!(
                                "  replay: hacmp parity --original {} --scenario {}",
                                args.original.display(),
                                path.display()
                            ),
                            Err(e) => eprintln!("  cannot write {}: {e}", path.display()),
                        }
                    }
                }
                if let Some(dir) = &args.traces {
                    write_traces(dir, &scenarios[index], &verdict)?;
                }
                verdicts.push(verdict);
            }
            Err(error) => {
                failures += 1;
                eprintln!("FAILED {error}");
            }
        }
    }
    if failures > 0
        && let Some(cause) = super::explain::certain_difference(&settings)
    {
        eprintln!("{failures} of {} runs differ. {cause}", scenarios.len());
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report::markdown(&verdicts))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!(
        "{} runs compared in {:.1} s: {} differences or failures",
        scenarios.len(),
        started.elapsed().as_secs_f64(),
        failures
    );
    Ok(failures == 0)
}

fn write_traces(dir: &Path, scenario: &Scenario, verdict: &Verdict) -> Result<(), String> {
    let traces = verdict.bash_traces.as_ref().expect("traces were asked for");
    for (node, trace) in scenario.nodes.iter().zip(traces) {
        let path = dir.join(format!("{}.{}.trace", scenario.name, node.name));
        let text: String = trace.iter().map(|entry| format!("{entry}\n")).collect();
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
