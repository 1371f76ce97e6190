//! Issue 5's benchmarks on the real machine: what hacmp costs next to heartbeat.sh, measured
//! side by side in one run, written to docs/benchmarks.md.
//!
//! `cargo bench --bench benchmarks` (what `make bench` runs) passes `--bench`: the full run.
//! `cargo test --all-targets` (what `make test` and CI run) passes no `--bench`: a smoke run of
//! every row in seconds, through the same code, its figures discarded, so the benchmark cannot
//! rot. Each row is a module that returns a `report::Section`; a new row is a new module and
//! one more entry in `measure`.

mod children;
mod config_read;
mod etcd_failover;
mod multi_site;
mod perf;
mod process_scan;
mod report;
mod simulation;
mod steady_state;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use report::{Machine, Section};

/// The smoke run's name, as libtest would show it, so that a `cargo test FILTER` that does not
/// select it skips it as it would skip a test.
const SMOKE_NAME: &str = "benchmarks_smoke";

#[derive(Parser)]
#[command(about = "Issue 5's real-machine benchmarks: hacmp next to heartbeat.sh")]
struct Options {
    /// Passed by `cargo bench`; without it the binary makes a smoke run (as under `cargo test`).
    #[arg(long)]
    bench: bool,
    /// Which rows to measure.
    #[arg(long, value_delimiter = ',', default_values = ["steady-state", "process-scan", "simulation", "multi-site", "etcd-failover", "config-read"])]
    rows: Vec<RowName>,
    /// Seconds each steady-state daemon is measured for (all four run at once).
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// How many extra processes the process scan runs with, one row each.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 5000])]
    extra_processes: Vec<usize>,
    /// Timed calls of each scan per row.
    #[arg(long, default_value_t = 50)]
    repetitions: usize,
    /// Seconds the two clusters of the multi-site row are measured for (both run at once).
    #[arg(long, default_value_t = 300)]
    multi_site_seconds: u64,
    /// Random crash instants of the failover-latency row.
    #[arg(long, default_value_t = 100)]
    crash_instants: usize,
    /// Crashes of the master in the etcd failover row.
    #[arg(long, default_value_t = 10)]
    etcd_crashes: usize,
    /// Timed reads of the variable file of each kind in the config-read row.
    #[arg(long, default_value_t = 50)]
    config_reads: usize,
    /// Write the document here (only from a run of every row); otherwise print the rows.
    #[arg(long)]
    write: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum RowName {
    SteadyState,
    ProcessScan,
    /// Rows 3 and 4: failover latency and simulator speed, from the parity simulator.
    Simulation,
    /// Row 5: the safe profile over three heartbeat directories against one.
    MultiSite,
    /// Row 6: failover after a master crash with the etcd backend, on real processes.
    EtcdFailover,
    /// Row 8: the bash process that reads the variable file at each start.
    ConfigRead,
}

/// What one run measures, and how long it takes.
struct Plan {
    rows: Vec<RowName>,
    steady_state: steady_state::Settings,
    process_scan: process_scan::Settings,
    simulation: simulation::Settings,
    multi_site: multi_site::Settings,
    etcd_failover: etcd_failover::Settings,
    config_read: config_read::Settings,
    /// The command that reproduces a row, shown in the table.
    command: fn(RowName, &Plan) -> String,
}

fn main() {
    children::take_ownership();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") {
        full_run(Options::parse_from(&args));
    } else {
        smoke_run(&args[1..]);
    }
}

fn full_run(options: Options) {
    let plan = Plan {
        rows: options.rows.clone(),
        steady_state: steady_state::Settings {
            seconds: options.seconds,
            warmup_iterations: 1,
            grace: Duration::from_secs(90),
        },
        process_scan: process_scan::Settings {
            extra_processes: options.extra_processes.clone(),
            repetitions: options.repetitions,
        },
        simulation: simulation::Settings {
            crash_instants: options.crash_instants,
            hacmp_hours: 24,
            bash_minutes: 60,
        },
        multi_site: multi_site::Settings {
            seconds: options.multi_site_seconds,
            faile_over_time: 10,
        },
        etcd_failover: etcd_failover::Settings {
            crashes: options.etcd_crashes,
            bash_crash_instants: options.crash_instants,
        },
        config_read: config_read::Settings {
            repetitions: options.config_reads,
        },
        command: full_command,
    };
    let every_row = [
        RowName::SteadyState,
        RowName::ProcessScan,
        RowName::Simulation,
        RowName::MultiSite,
        RowName::EtcdFailover,
        RowName::ConfigRead,
    ]
    .iter()
    .all(|r| plan.rows.contains(r));
    let document = measure(&plan, "make bench");
    match options.write {
        Some(path) => {
            assert!(every_row, "--write needs a run of every row");
            std::fs::write(&path, document)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            println!("wrote {}", path.display());
        }
        None => print!("{document}"),
    }
}

fn full_command(row: RowName, plan: &Plan) -> String {
    let base = "cargo bench --bench benchmarks --";
    match row {
        RowName::SteadyState => format!(
            "{base} --rows steady-state --seconds {}",
            plan.steady_state.seconds
        ),
        RowName::ProcessScan => format!(
            "{base} --rows process-scan --extra-processes {} --repetitions {}",
            plan.process_scan
                .extra_processes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            plan.process_scan.repetitions
        ),
        RowName::Simulation => format!(
            "{base} --rows simulation --crash-instants {}",
            plan.simulation.crash_instants
        ),
        RowName::MultiSite => format!(
            "{base} --rows multi-site --multi-site-seconds {}",
            plan.multi_site.seconds
        ),
        RowName::EtcdFailover => format!(
            "{base} --rows etcd-failover --etcd-crashes {} --crash-instants {}",
            plan.etcd_failover.crashes, plan.etcd_failover.bash_crash_instants
        ),
        RowName::ConfigRead => format!(
            "{base} --rows config-read --config-reads {}",
            plan.config_read.repetitions
        ),
    }
}

fn smoke_run(args: &[String]) {
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| SMOKE_NAME.contains(f.as_str())) {
        println!("{SMOKE_NAME}: filtered out");
        return;
    }
    let started = Instant::now();
    let plan = Plan {
        rows: vec![
            RowName::SteadyState,
            RowName::ProcessScan,
            RowName::Simulation,
            RowName::MultiSite,
            RowName::EtcdFailover,
            RowName::ConfigRead,
        ],
        steady_state: steady_state::Settings {
            seconds: 3,
            warmup_iterations: 0,
            grace: Duration::from_secs(3),
        },
        process_scan: process_scan::Settings {
            extra_processes: vec![50],
            repetitions: 3,
        },
        simulation: simulation::Settings {
            crash_instants: 2,
            hacmp_hours: 1,
            bash_minutes: 2,
        },
        multi_site: multi_site::Settings {
            seconds: 3,
            faile_over_time: 5,
        },
        etcd_failover: etcd_failover::Settings {
            crashes: 1,
            bash_crash_instants: 1,
        },
        config_read: config_read::Settings { repetitions: 2 },
        command: |_, _| "make bench-smoke".to_string(),
    };
    let document = measure(&plan, "make bench-smoke");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("benchmarks.md");
    std::fs::write(&path, &document).expect("the smoke run's document is written");
    let table_rows = document
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
        .count();
    // The header, then six steady-state rows, one scan row, two simulator rows, the multi-site
    // row, the etcd failover row, the smoke row and the config-read row.
    assert_eq!(
        table_rows,
        1 + 6 + 1 + 2 + 1 + 1 + 1 + 1,
        "the table:\n{document}"
    );
    println!(
        "{SMOKE_NAME}: ok in {:.0} s (figures discarded)",
        started.elapsed().as_secs_f64()
    );
}

/// Measures the plan's rows and renders the whole document.
fn measure(plan: &Plan, full_command: &str) -> String {
    let mut machine = Machine::describe();
    let mut sections: Vec<Section> = Vec::new();
    for &row in &plan.rows {
        let command = (plan.command)(row, plan);
        sections.push(match row {
            RowName::SteadyState => {
                let root = tempfile::tempdir().expect("a temporary directory");
                steady_state::measure(&plan.steady_state, root.path(), &command)
            }
            RowName::ProcessScan => process_scan::measure(&plan.process_scan, &command),
            RowName::Simulation => simulation::measure(&plan.simulation, &command),
            RowName::MultiSite => {
                let root = tempfile::tempdir().expect("a temporary directory");
                multi_site::measure(&plan.multi_site, root.path(), &command)
            }
            RowName::EtcdFailover => etcd_failover::measure(&plan.etcd_failover, &command),
            RowName::ConfigRead => continue,
        });
    }
    sections.push(report::smoke_section());
    // Row 8 came after the smoke row was numbered 7; it follows it in the table.
    if plan.rows.contains(&RowName::ConfigRead) {
        let root = tempfile::tempdir().expect("a temporary directory");
        let command = (plan.command)(RowName::ConfigRead, plan);
        sections.push(config_read::measure(
            &plan.config_read,
            root.path(),
            &command,
        ));
    }
    machine.note_load_at_end();
    report::render(&sections, &machine, full_command)
}
