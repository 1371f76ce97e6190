//! The `hacmp` command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use hacmp::config::{self, ConfigError, Variables};
use hacmp::real::RealWorld;
use hacmp::{engine, preflight};

/// Exit status for a configuration that cannot be used.
const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(
    name = "hacmp",
    version,
    about = "Keeps exactly one instance of an application running across hosts that share a heartbeat directory: a drop-in replacement for heartbeat.sh.",
    args_conflicts_with_subcommands = true,
    after_help = "\
Examples:
  hacmp run /etc/hacmp/heartbeat.vars   run the loop with the variables of a shell file
  hacmp /opt/app/heartbeat.sh           the same; heartbeat.sh itself works as the variable file
  hacmp run                             take the variables from the environment
  #!/usr/local/bin/hacmp                as the first line of heartbeat.sh, runs it natively

Variables (as in heartbeat.sh): pgrepProgramName, startCmd, startCmdLogFile, maintenanceFile,
hostName, heartBeatDir, faileOverTime, loopTime. A file's assignment wins over the environment."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Shorthand for `hacmp run FILE` (and what a `#!` line passes).
    file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the monitoring loop of heartbeat.sh.
    #[command(after_help = "\
Examples:
  hacmp run heartbeat.sh          variables from the script's own assignments
  hacmp run /etc/hacmp/vars.sh    variables from a plain variable file
  startCmd=./app pgrepProgramName='sh.*app' hacmp run   variables from the environment")]
    Run {
        /// A shell file that assigns the variables: heartbeat.sh itself or a variable file.
        /// Without it, the variables come from the environment.
        file: Option<PathBuf>,
    },
    /// Compare the bash original with hacmp in a deterministic simulator.
    Parity(hacmp::sim::cli::ParityArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match cli.command {
        Some(Command::Run { file }) => file,
        Some(Command::Parity(args)) => return hacmp::sim::cli::run(&args),
        None => cli.file,
    };
    run(file.as_deref())
}

fn run(file: Option<&Path>) -> ExitCode {
    let variables = match load(file) {
        Ok(variables) => variables,
        Err(error) => {
            eprintln!("hacmp: {error}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut world = RealWorld::new();
    match engine::run(&mut world, &variables) {
        Ok(ended) => ExitCode::from(ended.exit_status()),
        Err(halted) => unreachable!("the real world never halts the loop: {halted:?}"),
    }
}

/// Reads and checks the variables, and checks that the machine can run them.
fn load(file: Option<&Path>) -> Result<Variables, ConfigError> {
    let environment: HashMap<String, String> = std::env::vars().collect();
    let variables = config::resolve(file, &environment)?.validate()?;
    preflight::check(&variables, file)?;
    Ok(variables)
}
