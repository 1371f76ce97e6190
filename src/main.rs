//! The `hacmp` command line: argument parsing and exit statuses. Each command's logic lives in
//! the library; this file only connects them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use hacmp::config::{self, ConfigError, Origin, Profile, Settings, Variables};
use hacmp::real::{RealWorld, guard, report};
use hacmp::{EXIT_INVALID, advice, check, engine, maintenance, operator, preflight, safe, status};

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
  #!/usr/local/bin/hacmp                first line of heartbeat.sh: bash runs it up to its loop,
                                        hacmp runs the loop
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
role in words and a long wait with its time left (\"standby, master nodeA 2 s ago; killing local
instances, 22 s left\"), WATCHDOG=1 from the loop itself when WatchdogSec= is set, STOPPING=1 on
SIGTERM. Outside systemd nothing of this happens.

hacmpEventCmd: a command run by /bin/sh on each event, in the background, one at a time, killed
after 30 s; its output goes to stderr behind 'hacmp: event hook:'. It gets HACMP_EVENT (master,
standby, incident, fenced, maintenance-on, maintenance-off, and once each duplicate-host-name,
directory-list-mismatch, maintenance-file-unreadable), HACMP_HOST, HACMP_PEER where known,
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

    /// Show every node with its role, who is master, how old every heartbeat is (with
    /// hacmpBackend=etcd: each endpoint's member, the quorum and the leader key), maintenance,
    /// and this host's application with any start or kill it waits for.
    #[command(after_help = "\
Without FILE, the variables come from /etc/hacmp/heartbeat.vars (or the file
$HACMP_VARIABLE_FILE names) when it exists, else from the environment.

Every node the storage shows is listed with its role (master, standby, claiming, starting,
fenced, maintenance, stopped), state and heartbeat age, with the daemons whose state files this
host holds ($HACMP_STATE_DIR, else $RUNTIME_DIRECTORY, /run/hacmp, $XDG_RUNTIME_DIR/hacmp,
/tmp/hacmp-UID, and one level below them): standbys write nothing to the storage, so only a daemon on this host shows
one. A start or a kill this host's daemon is waiting for shows with its time left.

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
    /// PREFIX/maintenance, and in the safe profile over heartbeat directories the
    /// .hacmp-maintenance markers in them, set and deleted together with the file, hold every
    /// host.
    #[command(after_help = "\
Exit status: 0 done (also when it already was so); for `status`, 0 off and 3 on; 2 the variables
are unusable; 1 the file could not be written or removed, or the etcd cluster did not answer.

Examples:
  hacmp maintenance on /etc/hacmp/heartbeat.vars --reason 'patching nodeA, ticket 4711'
  hacmp maintenance status /etc/hacmp/heartbeat.vars
  hacmp maintenance off /etc/hacmp/heartbeat.vars")]
    Maintenance {
        action: maintenance::Action,
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

fn main() -> ExitCode {
    if let Some(typo) =
        advice::mistyped_subcommand(&Cli::command(), std::env::args_os().nth(1).as_deref())
    {
        eprintln!("{typo}");
        return ExitCode::from(EXIT_INVALID);
    }
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Run { file, profile }) => run(file.as_deref(), profile.as_deref()),
        None => run(cli.file.as_deref(), None),
        Some(Command::Guard) => return ExitCode::from(guard::serve() as u8),
        Some(Command::Status { file, json }) => status::run(file.as_deref(), json),
        Some(Command::Maintenance {
            action,
            file,
            reason,
        }) => maintenance::run(action, file.as_deref(), reason.as_deref()),
        Some(Command::Check { file, json }) => check::run(file.as_deref(), json),
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
        .reporting(report::Reporter::new(
            &variables,
            status::machine_looker(&variables.store),
            operator::of(&variables).identity(),
        ))
        .storing_in(&variables.store)
        .watching_heartbeat(format!(
            "{}/{}",
            variables.heart_beat_dir, variables.host_name
        ));
    let ended = match variables.profile {
        Profile::Compat => engine::run(&mut world, &variables),
        Profile::Safe(timing) => {
            let mut world = world.guarding(&variables.start_cmd_log_file);
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
        advice::print_warnings(&settings, &variables);
        Ok((settings, variables))
    })();
    loaded.map_err(|error| eprintln!("hacmp: {error}")).ok()
}

fn generate_docs(dir: &Path) -> u8 {
    match hacmp::manual::generate(Cli::command(), dir) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("hacmp: {}: {error}", dir.display());
            1
        }
    }
}
