//! The options of `hacmp parity` and what every mode makes of them. Both modes (`cli`'s
//! comparison and `safety_report`) depend on this module, and it on neither, so that the
//! dependencies between them run one way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::kinds::Counts;
use super::limits;
use super::scenario::Scenario;
use crate::config::{self, Settings};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  hacmp parity --original /opt/app/heartbeat.sh --scenario tests/shell-parity/scenarios/*.toml
  hacmp parity --original /opt/app/heartbeat.sh --random 1000 --seed 1
  hacmp parity --safety --catalog tests/shell-parity/scenarios --random 1000 --report safety.md
  hacmp parity --safety --explore --explore-stride 10 --random-biased 100
  hacmp parity --safety --catalog tests/shell-parity/etcd-scenarios --random-etcd 1000
  hacmp parity --safety --random-multisite 1000 --random-site-losses 200 --random-slow-sites 200

Exits 0 when bash and hacmp agreed on every run (with --safety: when no run broke a rule of
the safe profile), 1 on any difference, broken rule or failed run.")]
pub struct ParityArgs {
    /// The heartbeat.sh to compare with, the operator's own; hacmp takes its variables from it
    /// too. There is no default: hacmp ships no copy of the script.
    #[arg(long, value_name = "SCRIPT")]
    pub original: PathBuf,
    /// Scenario files (TOML; see tests/shell-parity/README.md).
    #[arg(long = "scenario", num_args = 1..)]
    pub scenarios: Vec<PathBuf>,
    /// A directory whose scenario files (*.toml) all run, in the order of their names; may be
    /// given more than once.
    #[arg(long, value_name = "DIR")]
    pub catalog: Vec<PathBuf>,
    /// Check the safe profile's rules instead of parity: each scenario runs on bash, compat,
    /// safe, safe+bash and safe+compat clusters (one with an etcd cluster on safe only), each
    /// random schedule on an all-safe cluster; --report writes the safety report.
    #[arg(long)]
    pub safety: bool,
    /// With --safety: inject every fault kind at every protocol step of the base scenarios
    /// (cold starts of 2-4 nodes, a master crash, a master's storage failure) and check every
    /// run.
    #[arg(long, requires = "safety")]
    pub explore: bool,
    /// With --explore: run one variant in N of each base, drawn from each block of N (one in
    /// 5 × N of a base sampled in full runs too).
    #[arg(long, default_value_t = 1, requires = "explore", value_parser = clap::value_parser!(u64).range(1..))]
    pub explore_stride: u64,
    /// With --explore: run at most this many variants of each base.
    #[arg(long, default_value_t = limits::MAX_RANDOM, requires = "explore")]
    pub explore_limit: u64,
    // How many random schedules of each kind to run: one option per row of src/sim/kinds.rs.
    #[command(flatten)]
    pub schedules: Counts,
    /// The seed of the first random schedule; the others follow it (seed, seed+1, ...), each
    /// kind's after those of the kind before it, in the order of the options above.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the audit figures of every scenario to this markdown file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Where the scenario file of a disagreeing random schedule is written, for replay; without
    /// it, a temporary directory made at the first such schedule (each replay line shows it).
    #[arg(long, value_name = "DIR")]
    pub replay_dir: Option<PathBuf>,
    /// Write each node's trace of the bash run to DIR/SCENARIO.NODE.trace.
    #[arg(long, value_name = "DIR", conflicts_with = "safety")]
    pub traces: Option<PathBuf>,
}

/// The original's variables, read the way `hacmp run` reads them (without the environment,
/// which the simulated bash does not see either).
pub fn original_settings(original: &Path) -> Result<Settings, String> {
    config::resolve(Some(original), &HashMap::new()).map_err(|e| e.to_string())
}

/// The original's variables, after checking the arguments every mode shares.
pub fn checked_settings(args: &ParityArgs) -> Result<Settings, String> {
    if !args.original.is_file() {
        return Err(format!(
            "{}: no such original script",
            args.original.display()
        ));
    }
    let counts = args
        .schedules
        .iter()
        .map(|(kind, count)| (kind.option, count));
    for (option, count) in counts.chain([("explore-limit", args.explore_limit)]) {
        if count > limits::MAX_RANDOM {
            return Err(format!("--{option} is limited to {}", limits::MAX_RANDOM));
        }
    }
    original_settings(&args.original)
}

/// Where the scenario file `name` of a disagreeing random schedule goes: under --replay-dir, else
/// in a temporary directory made for this run when first needed, never the working directory.
pub fn replay_file(args: &ParityArgs, name: &str) -> Result<PathBuf, String> {
    static TEMPORARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = match &args.replay_dir {
        Some(dir) => dir.clone(),
        None => TEMPORARY
            .get_or_init(|| {
                let dir = std::env::temp_dir().join(format!("hacmp-parity-{}", std::process::id()));
                std::fs::create_dir_all(&dir)
                    .map(|()| dir.clone())
                    .map_err(|e| format!("cannot make {}: {e}", dir.display()))
            })
            .clone()?,
    };
    Ok(dir.join(format!("{name}.toml")))
}

/// The scenarios of --catalog, then those of --scenario.
pub fn scenario_files(args: &ParityArgs) -> Result<Vec<Scenario>, String> {
    let mut scenarios = Vec::new();
    for dir in &args.catalog {
        scenarios.extend(Scenario::load_dir(dir)?);
    }
    for path in &args.scenarios {
        scenarios.push(Scenario::load(path)?);
    }
    Ok(scenarios)
}
