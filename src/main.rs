//! The `hacmp` command line: argument parsing and exit statuses. Each command's logic lives in
//! the library; this file only connects them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use hacmp::check::{self, Process, Surroundings};
use hacmp::config::{self, ConfigError, Origin, Profile, Settings, Store, Variables};
use hacmp::maintenance::{self, Outcome};
use hacmp::real::{RealWorld, guard, processes, report};
use hacmp::storage::RealStorage;
use hacmp::{engine, preflight, safe, status, table};

/// Exit status for a configuration that cannot be used, for every command.
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
  hacmp status /etc/hacmp/heartbeat.vars    who is master, and how old each heartbeat is

Variables (as in heartbeat.sh): pgrepProgramName, startCmd, startCmdLogFile, maintenanceFile,
hostName, heartBeatDir, faileOverTime, loopTime. A file's assignment wins over the environment;
a variable set in neither takes heartbeat.sh's default. hacmp's own: hacmpProfile,
hacmpEventCmd, hacmpMetricsFile (see `hacmp run --help`)."
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
Exit status: runs until stopped; 2 when the variables are unusable (nothing is started or
killed); 1 when heartbeat.sh's loop would have ended (see README).

Under systemd (Type=notify, as in hacmp@.service): READY=1 once the loop runs, STATUS= with the
role in words, WATCHDOG=1 from the loop itself when WatchdogSec= is set, STOPPING=1 on SIGTERM.
Outside systemd nothing of this happens.

hacmpEventCmd: a command run by /bin/sh on each event, in the background, one at a time, killed
after 30 s; its output goes to stderr behind 'hacmp: event hook:'. It gets HACMP_EVENT (master,
standby, incident, fenced, maintenance-on, maintenance-off), HACMP_HOST, HACMP_PEER where known,
HACMP_TOKEN in the safe profile and a one-line HACMP_MESSAGE. At most 16 events wait; more are
dropped, counted and said on stderr.

hacmpMetricsFile: an absolute path ending in .prom, in node_exporter's textfile directory,
replaced after each round: hacmp_role, hacmp_master, hacmp_heartbeat_age_seconds,
hacmp_maintenance, hacmp_application_running, hacmp_takeovers_total, hacmp_incidents_total,
hacmp_fenced_total, hacmp_loop_duration_seconds, hacmp_storage_operation_seconds,
hacmp_storage_operations_total, hacmp_storage_operation_failures_total,
hacmp_event_hook_dropped_total.

Examples:
  hacmp run heartbeat.sh          variables from the script's own assignments
  hacmp run /etc/hacmp/vars.sh    variables from a plain variable file
  startCmd=./app pgrepProgramName='sh.*app' hacmp run   variables from the environment")]
    Run {
        /// A shell file that assigns the variables: heartbeat.sh itself or a variable file.
        /// Without it, the variables come from the environment.
        file: Option<PathBuf>,
        /// compat (heartbeat.sh exactly, the default) or safe (never two instances; see
        /// docs/safe-profile.md). Overrides the variable hacmpProfile.
        #[arg(long, value_name = "PROFILE")]
        profile: Option<String>,
    },

    /// Show who is master, how old every heartbeat is (with hacmpBackend=etcd: each endpoint's
    /// member, the quorum and the leader key), maintenance, and this host's application.
    #[command(after_help = "\
Exit status: 0 a live master exists (with etcd: the leader key is held); 1 no live master; 3 maintenance is on; 2 the variables are
unusable. The JSON schema is documented in docs/status-json.md.

Examples:
  hacmp status /etc/hacmp/heartbeat.vars
  hacmp status --json /etc/hacmp/heartbeat.vars | jq .master")]
    Status {
        file: Option<PathBuf>,
        /// Print JSON (a stable, versioned schema) instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Switch maintenance mode on or off, or show it. While maintenanceFile exists, the loop on
    /// every host that sees it does nothing at all; with hacmpBackend=etcd the key
    /// PREFIX/maintenance, set and deleted together with the file, holds every host.
    #[command(after_help = "\
Exit status: 0 done (also when it already was so); for `status`, 0 off and 3 on; 2 the variables
are unusable; 1 the file could not be written or removed, or the etcd cluster did not answer.

Examples:
  hacmp maintenance on /etc/hacmp/heartbeat.vars --reason 'patching nodeA, ticket 4711'
  hacmp maintenance status /etc/hacmp/heartbeat.vars
  hacmp maintenance off /etc/hacmp/heartbeat.vars")]
    Maintenance {
        action: MaintenanceAction,
        file: Option<PathBuf>,
        /// Why, recorded in the maintenance file (and key) for the next operator.
        #[arg(long)]
        reason: Option<String>,
    },

    /// Show every variable and where it came from, and report the configuration's hazards (with
    /// hacmpBackend=etcd: endpoints that do not serve, an even member count, every member on one
    /// host, members not listed).
    #[command(after_help = "\
Exit status: 0 no hazards; 1 hazards found; 2 the variables are unusable. The JSON schema is
documented in docs/check-json.md.

Examples:
  hacmp check /etc/hacmp/heartbeat.vars
  hacmp check /opt/app/heartbeat.sh
  hacmp check --json /etc/hacmp/heartbeat.vars | jq .variables.startCmd")]
    Check {
        file: Option<PathBuf>,
        /// Print JSON (every variable's value and origin, and the hazards) instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Compare the bash original with hacmp in a deterministic simulator.
    Parity(hacmp::sim::options::ParityArgs),

    /// The safe profile's guard process; started by `hacmp run`, never by hand.
    #[command(hide = true)]
    Guard,

    /// Write the man pages (DIR/man) and shell completions (DIR/completions) into a directory
    /// (used by `make install` and `make deb`).
    #[command(hide = true)]
    GenerateDocs { dir: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
enum MaintenanceAction {
    On,
    Off,
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Run { file, profile }) => run(file.as_deref(), profile.as_deref()),
        None => run(cli.file.as_deref(), None),
        Some(Command::Guard) => return ExitCode::from(guard::serve() as u8),
        Some(Command::Status { file, json }) => show_status(file.as_deref(), json),
        Some(Command::Maintenance {
            action,
            file,
            reason,
        }) => switch_maintenance(action, file.as_deref(), reason.as_deref()),
        Some(Command::Check { file, json }) => check(file.as_deref(), json),
        Some(Command::GenerateDocs { dir }) => generate_docs(&dir),
        Some(Command::Parity(args)) => return hacmp::sim::cli::run(&args),
    };
    ExitCode::from(code)
}

fn run(file: Option<&Path>, profile: Option<&str>) -> u8 {
    let Some((_, variables)) = load(file, profile) else {
        return EXIT_INVALID;
    };
    report::notify_stopping_on_signals();
    let mut world = RealWorld::new()
        .reporting(report::Reporter::new(&variables))
        .storing_in(&variables.store);
    let ended = match variables.profile {
        Profile::Compat => engine::run(&mut world, &variables),
        Profile::Safe(timing) => {
            safe::run(&mut world, &variables, timing).map(|never| match never {})
        }
    };
    match ended {
        Ok(ended) => ended.exit_status(),
        Err(halted) => unreachable!("the real world never halts the loop: {halted:?}"),
    }
}

/// Reads and checks the variables and that this machine can run them, printing the one-line
/// error when they are unusable. `profile` is the --profile option, if given.
fn load(file: Option<&Path>, profile: Option<&str>) -> Option<(Settings, Variables)> {
    let loaded = (|| -> Result<_, ConfigError> {
        let mut settings = config::resolve_from_process_environment(file)?;
        if let Some(profile) = profile {
            settings.set("hacmpProfile", profile, Origin::CommandLine);
        }
        let variables = settings.validate()?;
        preflight::check(&settings, &variables)?;
        Ok((settings, variables))
    })();
    loaded.map_err(|error| eprintln!("hacmp: {error}")).ok()
}

/// Reads and checks the variables for a command that only looks (status, maintenance).
fn load_without_preflight(file: Option<&Path>) -> Option<Variables> {
    let loaded = config::resolve_from_process_environment(file).and_then(|s| s.validate());
    loaded.map_err(|error| eprintln!("hacmp: {error}")).ok()
}

fn show_status(file: Option<&Path>, json: bool) -> u8 {
    let Some(variables) = load_without_preflight(file) else {
        return EXIT_INVALID;
    };
    let status = status::gather(&variables);
    let text = if json {
        serde_json::to_string_pretty(&status).expect("the status serializes") + "\n"
    } else {
        status::render(&status, table::use_colour())
    };
    print(&text);
    status.exit_status()
}

fn switch_maintenance(action: MaintenanceAction, file: Option<&Path>, reason: Option<&str>) -> u8 {
    let Some(variables) = load_without_preflight(file) else {
        return EXIT_INVALID;
    };
    let target = &variables.maintenance_file;
    // With etcd the key freezes every node; the file is this host's own switch as well.
    let etcd = match &variables.store {
        Store::Etcd(settings) => Some(settings),
        Store::Directories(_) => None,
    };
    if etcd.is_none()
        && let Some(warning) = maintenance::node_local_warning(&variables)
    {
        eprintln!("hacmp: warning: {warning}");
    }
    if matches!(action, MaintenanceAction::Status) {
        let mut now = status::maintenance(target);
        if let Some(settings) = etcd {
            match maintenance::key_note(settings) {
                Ok(note) => {
                    now = status::with_key(now, settings.maintenance_key(), note.as_deref());
                }
                Err(error) => {
                    eprintln!("{error}");
                    return 1;
                }
            }
        }
        println!("{}", maintenance::describe(&now));
        return if now.active {
            status::exit::MAINTENANCE
        } else {
            0
        };
    }
    let note = maintenance::note(reason, chrono::Local::now());
    let done = match action {
        MaintenanceAction::On => maintenance::switch_on(target, &note),
        MaintenanceAction::Off => maintenance::switch_off(target),
        MaintenanceAction::Status => unreachable!("answered above"),
    };
    let mut code = match done {
        Ok(outcome) => {
            println!("{}: {target}", said(&outcome, "file"));
            0
        }
        Err(error) => {
            eprintln!(
                "hacmp: maintenanceFile {target}: {}",
                hacmp::real::files::describe(&error)
            );
            1
        }
    };
    // The safe profile's files backend keeps maintenance in its directories too, where a
    // lost site cannot hide it (docs/multi-site.md).
    if let (Profile::Safe(_), Store::Directories(dirs)) = (variables.profile, &variables.store) {
        let on = matches!(action, MaintenanceAction::On).then_some(note.as_str());
        match hacmp::real::records::switch_maintenance_markers(dirs, on) {
            Ok(line) => println!("{line}"),
            Err(error) => {
                eprintln!("{error}");
                code = 1;
            }
        }
    }
    if let Some(settings) = etcd {
        let done = match action {
            MaintenanceAction::On => maintenance::switch_key_on(settings, &note),
            _ => maintenance::switch_key_off(settings),
        };
        match done {
            Ok(outcome) => println!(
                "{}: etcd key {}",
                said(&outcome, "key"),
                settings.maintenance_key()
            ),
            Err(error) => {
                eprintln!("{error}");
                code = 1;
            }
        }
    }
    code
}

/// What `hacmp maintenance on|off` did to the file or key (`what`).
fn said(outcome: &Outcome, what: &str) -> String {
    match outcome {
        Outcome::SwitchedOn => "maintenance switched on".to_string(),
        Outcome::AlreadyOn => format!("maintenance was already on; {what} left as it was"),
        Outcome::SwitchedOff => "maintenance switched off".to_string(),
        Outcome::AlreadyOff => "maintenance was already off".to_string(),
    }
}

fn check(file: Option<&Path>, json: bool) -> u8 {
    let colour = table::use_colour();
    let settings = match config::resolve_from_process_environment(file) {
        Ok(settings) => settings,
        Err(error) => {
            if json {
                print(&check::render_json(None, Err(&error.to_string())));
            } else {
                eprintln!("hacmp: {error}");
            }
            return EXIT_INVALID;
        }
    };
    if !json {
        print(&check::render_settings(&settings, colour));
    }
    let checked = settings
        .validate()
        .and_then(|variables| preflight::check(&settings, &variables).map(|()| variables));
    let variables = match checked {
        Ok(variables) => variables,
        Err(error) => {
            if json {
                print(&check::render_json(
                    Some(&settings),
                    Err(&error.to_string()),
                ));
            } else {
                print(&format!(
                    "\n{}\n",
                    table::paint(&format!("invalid: {error}"), table::Tone::Bad, colour)
                ));
            }
            return EXIT_INVALID;
        }
    };
    let surroundings = Surroundings {
        storage: &RealStorage,
        matching_processes: matching_processes(&variables),
        daemon_command_lines: daemon_command_lines(file),
        working_directory: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        etcd: match &variables.store {
            Store::Etcd(settings) => Some(hacmp::real::etcd::survey(settings, status::ETCD_LIMIT)),
            Store::Directories(_) => None,
        },
    };
    let hazards = check::hazards(&variables, &surroundings);
    if json {
        print(&check::render_json(
            Some(&settings),
            Ok((&variables, &hazards)),
        ));
    } else {
        if let Some(fate) = check::heart_beat_dir_fate(&settings, &variables) {
            print(&format!("\nlease: {fate}\n"));
        }
        print(&format!("\n{}", check::render_hazards(&hazards, colour)));
    }
    u8::from(!hazards.is_empty())
}

fn matching_processes(variables: &Variables) -> Vec<Process> {
    let encoding = variables.pgrep_program_name.encoding();
    processes::find(&variables.pgrep_program_name, std::process::id())
        .into_iter()
        .filter_map(|pid| {
            let line = processes::command_line(pid, encoding)?;
            Some(Process {
                pid,
                command_line: String::from_utf8_lossy(&line).into_owned(),
            })
        })
        .collect()
}

/// The command lines the monitoring daemon shows on this host: hacmp's, and bash's when the
/// file is heartbeat.sh run by bash.
fn daemon_command_lines(file: Option<&Path>) -> Vec<String> {
    let file = file.map(|f| f.display().to_string()).unwrap_or_default();
    let mut lines = vec![format!("hacmp run {file}").trim_end().to_string()];
    if !file.is_empty() {
        lines.push(format!("/bin/bash {file}"));
    }
    lines
}

fn generate_docs(dir: &Path) -> u8 {
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("man"))?;
        std::fs::create_dir_all(dir.join("completions"))?;
        let command = Cli::command();
        // hacmp.1 and a page for every subcommand it names (hacmp-run.1, hacmp-status.1, ...);
        // the hidden ones are started by hacmp itself or by `make`, and get none.
        clap_mangen::generate_to(command.clone(), dir.join("man"))?;
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            clap_complete::generate_to(
                shell,
                &mut command.clone(),
                "hacmp",
                dir.join("completions"),
            )?;
        }
        Ok(())
    })();
    match written {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("hacmp: {}: {error}", dir.display());
            1
        }
    }
}

/// Writes to stdout, ignoring a closed pipe (`hacmp status | head`).
fn print(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}
