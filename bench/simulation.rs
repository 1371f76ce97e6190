//! Rows 3 and 4, from the parity simulator: failover latency over many crash instants, bash next
//! to hacmp (compat must match bash exactly; safe is shown beside them), and how fast the
//! simulator runs.

use std::path::Path;
use std::time::Instant;

use hacmp::config::Settings as Variables;
use hacmp::sim::options::original_settings;
use hacmp::sim::parallel;
use hacmp::sim::random::SplitMix64;
use hacmp::sim::scenario::Scenario;
use hacmp::sim::scheduler::{self, Driver, Setup};

use crate::report::{Row, Section};
use crate::support;

pub struct Settings {
    /// How many random crash instants row 3 measures.
    pub crash_instants: usize,
    /// Virtual hours of the hacmp-only cluster that row 4 times.
    pub hacmp_hours: u64,
    /// Virtual minutes of the bash cluster that row 4 times.
    pub bash_minutes: u64,
}

/// The seed of the crash instants; fixed, so that every run measures the same instants.
const SEED: u64 = 5;
/// The crash comes between 60 s and 180 s into the run: the cluster has settled, and the
/// standby's 33-second bash loop is at every possible phase.
const CRASH_WINDOW_MS: (u64, u64) = (60_000, 180_000);
/// Virtual time after the crash in which the failover must have happened.
const AFTER_CRASH_S: u64 = 120;

/// Two nodes with the script's variables but for `overrides`; the active one (alpha) crashes at
/// `crash_ms`.
fn crash_scenario(index: usize, crash_ms: u64, overrides: &[(&str, &str)]) -> Scenario {
    let variables: String = overrides
        .iter()
        .map(|(name, value)| format!("{name} = \"{value}\"\n"))
        .collect();
    let text = format!(
        "name = \"bench-crash-{index}\"\nduration = {}\n[variables]\n{variables}\
         [[node]]\nname = \"alpha\"\n[[node]]\nname = \"beta\"\nstart = 1\n\
         [[event]]\nat = {:.3}\naction = \"crash\"\nnode = \"alpha\"\n",
        crash_ms / 1000 + AFTER_CRASH_S,
        crash_ms as f64 / 1000.0
    );
    toml::from_str(&text).expect("the benchmark's scenario is valid")
}

/// The failover of each driver after a crash of the active host at `instants` crash instants
/// (from the fixed seed), with `overrides` replacing the script's variables: per instant, one
/// figure per driver in milliseconds, `None` where the application never ran again.
pub fn crash_failovers(
    instants: usize,
    overrides: &[(&str, &str)],
    drivers: &[Driver],
) -> Vec<Vec<Option<u64>>> {
    let original = support::original_script();
    let variables = original_settings(&original).expect("the original's variables");
    let mut rng = SplitMix64::new(SEED);
    let scenarios: Vec<Scenario> = (0..instants)
        .map(|index| {
            let span = CRASH_WINDOW_MS.1 - CRASH_WINDOW_MS.0;
            crash_scenario(index, CRASH_WINDOW_MS.0 + rng.below(span), overrides)
        })
        .collect();
    parallel::map(&scenarios, parallel::workers(), |scenario| {
        drivers
            .iter()
            .map(|&driver| failover_ms(&run(scenario, driver, &original, &variables)))
            .collect()
    })
}

/// A quiet two-node cluster running for `seconds` of virtual time.
fn quiet_scenario(seconds: u64) -> Scenario {
    let text = format!(
        "name = \"bench-speed\"\nduration = {seconds}\n\
         [[node]]\nname = \"alpha\"\n[[node]]\nname = \"beta\"\nstart = 1\n"
    );
    toml::from_str(&text).expect("the benchmark's scenario is valid")
}

fn run(
    scenario: &Scenario,
    driver: Driver,
    original: &Path,
    settings: &Variables,
) -> scheduler::RunResult {
    let drivers = vec![driver; scenario.nodes.len()];
    scheduler::run(&Setup {
        scenario,
        drivers: &drivers,
        original,
        settings,
    })
    .unwrap_or_else(|e| panic!("scenario {}: {e}", scenario.name))
}

/// The failover after the crash, in milliseconds; `None` if the app never ran again.
fn failover_ms(result: &scheduler::RunResult) -> Option<u64> {
    let crash = result
        .audit
        .faults
        .iter()
        .find(|f| f.label.starts_with("crash "))?;
    crash.failover_ms
}

/// Minimum, median and maximum of durations in milliseconds, in seconds.
pub fn distribution(values: &mut [u64]) -> String {
    if values.is_empty() {
        return "no failover".to_string();
    }
    values.sort_unstable();
    let seconds = |ms: u64| format!("{:.1}", ms as f64 / 1000.0);
    format!(
        "min {} s, median {} s, max {} s",
        seconds(values[0]),
        seconds(values[values.len() / 2]),
        seconds(values[values.len() - 1])
    )
}

pub fn measure(settings: &Settings, command: &str) -> Section {
    let failovers = crash_failovers(
        settings.crash_instants,
        &[],
        &[Driver::Bash, Driver::Hacmp, Driver::Safe],
    );
    let mismatches = failovers
        .iter()
        .filter(|figures| figures[0] != figures[1])
        .count();
    let column = |i: usize| {
        let mut values: Vec<u64> = failovers.iter().filter_map(|f| f[i]).collect();
        distribution(&mut values)
    };
    let (bash, compat, safe) = (column(0), column(1), column(2));
    let original = support::original_script();
    let variables = original_settings(&original).expect("the original's variables");
    let speed = |driver: Driver, seconds: u64| {
        let scenario = quiet_scenario(seconds);
        let started = Instant::now();
        run(&scenario, driver, &original, &variables);
        seconds as f64 / 3600.0 / started.elapsed().as_secs_f64()
    };
    let hacmp_speed = speed(Driver::Hacmp, settings.hacmp_hours * 3600);
    let bash_speed = speed(Driver::Bash, settings.bash_minutes * 60);
    Section {
        rows: vec![
            Row {
                what: format!(
                    "3. Failover latency (simulator): active host crash to the application running on the standby, default variables, {} random crash instants",
                    settings.crash_instants
                ),
                bash,
                hacmp: format!("compat: {compat}; safe profile: {safe}"),
                comparison: if mismatches == 0 {
                    "compat equals bash at every instant".to_string()
                } else {
                    format!("MISMATCH: compat differs from bash at {mismatches} instants")
                },
                command: format!("`{command}`"),
            },
            Row {
                what: "4. Simulator speed: virtual hours per real second, quiet two-node cluster"
                    .to_string(),
                bash: format!(
                    "{bash_speed:.2} (bash nodes, {} virtual minutes)",
                    settings.bash_minutes
                ),
                hacmp: format!(
                    "{hacmp_speed:.2} (hacmp compat nodes, {} virtual hours)",
                    settings.hacmp_hours
                ),
                comparison: format!(
                    "{:.0}× faster without bash processes",
                    hacmp_speed / bash_speed
                ),
                command: format!("`{command}`"),
            },
        ],
        method: format!(
            "**Rows 3 and 4** come from the parity simulator (src/sim), in virtual time. Row 3 crashes the active host of a two-node cluster (heartbeat.sh's default variables) at {} instants drawn from a fixed seed between {} s and {} s into the run, once with both nodes on the unmodified bash script, once on hacmp's compat profile and once on the safe profile, and reports the time until the application runs on the standby. Row 4 times a quiet cluster: the simulator's own speed, with and without real bash processes.",
            settings.crash_instants,
            CRASH_WINDOW_MS.0 / 1000,
            CRASH_WINDOW_MS.1 / 1000
        ),
    }
}
