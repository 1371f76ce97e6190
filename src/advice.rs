//! The mistakes operators make with variables that are each valid alone: refused where the loop
//! could not do its job, warned about where it runs but will hurt in some failure. `hacmp check`
//! lists the warnings among its hazards; a safe daemon's start prints them on stderr, before the
//! loop's first line (a compat daemon's output stays the script's, stderr included), and both
//! refuse through `preflight::check`. Each says what to do, in one line.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::Path;

use crate::config::{ConfigError, Profile, Settings, Store, Variables};
use crate::engine::START_RECHECK_SECONDS;
use crate::storage::{RealStorage, StorageProbe};

/// The shortest faileOverTime docs/etcd.md asks for with the etcd backend: an etcd leader
/// election with its default 1-second timeout, on a loaded member, can outlast a shorter lease.
pub const ETCD_MIN_FAILE_OVER_TIME: u64 = 10;

/// A warning about one variable; `reason` reads after `NAME='VALUE' `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    pub variable: &'static str,
    pub reason: String,
}

/// The mistakes the loop cannot run with; the first found is the error. `is_executable` says
/// whether execvp would find a program (preflight's answer, given here so that this module
/// and preflight, which calls it, do not depend on each other).
pub fn refusal(
    settings: &Settings,
    vars: &Variables,
    is_executable: fn(&str) -> bool,
) -> Result<(), ConfigError> {
    if vars.loop_time == 0 {
        return Err(settings.get("loopTime").error(
            "makes the loop run without a pause, a busy loop: set loopTime to 1 or more (about a third of faileOverTime)",
        ));
    }
    if let Some(command) = &vars.event_command
        && let Some(program) = event_program(command)
        && !is_executable(program)
    {
        return Err(settings.get("hacmpEventCmd").error(&format!(
            "runs {program}, which is not an executable file{}: no event would be reported; give the hook's full path and make it executable",
            if program.contains('/') { "" } else { " in PATH" }
        )));
    }
    Ok(())
}

/// The mistakes the loop runs with but that will hurt, each with what to do. `storage` answers
/// whether the maintenance file's directory exists, within a time limit on a hung mount.
pub fn warnings(vars: &Variables, storage: &dyn StorageProbe) -> Vec<Advice> {
    let mut found = Vec::new();
    let maintenance = Path::new(&vars.maintenance_file);
    let directory = match maintenance.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Err(error) = storage.filesystem_magic(directory)
        && error.kind() == ErrorKind::NotFound
    {
        found.push(Advice {
            variable: "maintenanceFile",
            reason: format!(
                "is in {}, which does not exist: `hacmp maintenance on` would fail just when it is needed; create the directory or choose a maintenanceFile in one",
                directory.display()
            ),
        });
    }
    let takeover_to_first_renewal = START_RECHECK_SECONDS + vars.loop_time;
    if vars.profile == Profile::Compat && vars.faile_over_time <= takeover_to_first_renewal {
        found.push(Advice {
            variable: "faileOverTime",
            reason: format!(
                "is not more than the {START_RECHECK_SECONDS} s recheck plus loopTime ({takeover_to_first_renewal} s), the time between a new master's first and second heartbeat: peers find it dead right after its takeover and take over again; set faileOverTime above {takeover_to_first_renewal}"
            ),
        });
    }
    if matches!(vars.store, Store::Etcd(_)) && vars.faile_over_time < ETCD_MIN_FAILE_OVER_TIME {
        found.push(Advice {
            variable: "faileOverTime",
            reason: format!(
                "is below the {ETCD_MIN_FAILE_OVER_TIME} s docs/etcd.md asks for with hacmpBackend=etcd: an etcd leader election can outlast the lease and stop a healthy master's application; set faileOverTime to {ETCD_MIN_FAILE_OVER_TIME} or more"
            ),
        });
    }
    found
}

/// Prints the warnings for a safe daemon about to start, each naming where its variable was set.
/// A compat daemon prints nothing: its stdout and stderr are heartbeat.sh's, line for line.
pub fn print_warnings(settings: &Settings, vars: &Variables) {
    if vars.profile == Profile::Compat {
        return;
    }
    for advice in warnings(vars, &RealStorage) {
        let line = settings.get(advice.variable).error(&advice.reason);
        eprintln!("hacmp: warning: {line}");
    }
}

/// "Did you mean": `hacmp stauts FILE` would read `stauts` as a variable file. `first_argument`
/// is the command line's first argument; a word that is no file, no option and no subcommand
/// but close to a subcommand of `cli` gets the line to print.
pub fn mistyped_subcommand(cli: &clap::Command, first_argument: Option<&OsStr>) -> Option<String> {
    let word = first_argument?.to_str()?;
    if word.starts_with('-') || word.contains('/') || Path::new(word).exists() {
        return None;
    }
    let closest = cli
        .get_subcommands()
        .filter(|subcommand| !subcommand.is_hide_set())
        .map(|subcommand| subcommand.get_name())
        .map(|name| (strsim::osa_distance(word, name), name))
        .min()?;
    let (distance, name) = closest;
    (distance > 0 && distance <= 2).then(|| {
        format!("hacmp: {word} is neither a subcommand nor a file: did you mean `hacmp {name}`?")
    })
}

/// The program hacmpEventCmd names as its first word, when /bin/sh would plainly run that
/// program: `None` for a builtin, a keyword or shell syntax (an assignment, a quote, an
/// expansion, a redirection), where only the shell itself could tell.
fn event_program(command: &str) -> Option<&str> {
    const SH_BUILTINS: [&str; 42] = [
        ":", ".", "[", "alias", "bg", "break", "cd", "command", "continue", "echo", "eval", "exec",
        "exit", "export", "false", "fg", "getopts", "hash", "jobs", "kill", "printf", "pwd",
        "read", "readonly", "return", "set", "shift", "test", "times", "trap", "true", "type",
        "ulimit", "umask", "unalias", "unset", "wait", "if", "case", "for", "while", "until",
    ];
    let first = command.split_ascii_whitespace().next()?;
    let plain = first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    (plain && !SH_BUILTINS.contains(&first)).then_some(first)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut environment: HashMap<String, String> = [
            ("pgrepProgramName", "advice-test-app"),
            ("startCmd", "/bin/true"),
            ("startCmdLogFile", "/tmp/advice-test.log"),
            ("maintenanceFile", "/tmp/advice-test-maintenance"),
            ("hostName", "nodeA"),
            ("heartBeatDir", "/tmp"),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
        for (name, value) in pairs {
            environment.insert(name.to_string(), value.to_string());
        }
        config::resolve(None, &environment).unwrap()
    }

    fn advice_on(pairs: &[(&str, &str)]) -> Vec<&'static str> {
        let vars = settings(pairs).validate().unwrap();
        warnings(&vars, &RealStorage)
            .iter()
            .map(|a| a.variable)
            .collect()
    }

    fn refused(pairs: &[(&str, &str)]) -> Option<String> {
        let settings = settings(pairs);
        let vars = settings.validate().unwrap();
        refusal(&settings, &vars, crate::preflight::is_executable_command)
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn the_scripts_defaults_draw_no_advice() {
        assert_eq!(advice_on(&[]), Vec::<&str>::new());
        assert_eq!(refused(&[]), None);
    }

    #[test]
    fn a_maintenance_file_in_a_missing_directory_is_warned_about() {
        let found = advice_on(&[("maintenanceFile", "/nonexistent-advice-dir/maintenance")]);
        assert_eq!(found, ["maintenanceFile"]);
        assert_eq!(advice_on(&[("maintenanceFile", "maintenance")]), [""; 0]);
    }

    #[test]
    fn compat_timing_that_lets_a_new_master_look_dead_is_warned_about() {
        assert_eq!(
            advice_on(&[("faileOverTime", "8"), ("loopTime", "3")]),
            ["faileOverTime"]
        );
        assert_eq!(
            advice_on(&[("faileOverTime", "9"), ("loopTime", "3")]),
            [""; 0]
        );
        // The safe profile's own timing rule decides there; the recheck is not its protocol.
        assert_eq!(
            advice_on(&[
                ("faileOverTime", "8"),
                ("loopTime", "1"),
                ("hacmpProfile", "safe")
            ]),
            [""; 0]
        );
    }

    #[test]
    fn etcd_below_ten_seconds_is_warned_about() {
        let etcd = [
            ("hacmpProfile", "safe"),
            ("hacmpBackend", "etcd"),
            ("hacmpEtcdEndpoints", "http://127.0.0.1:2379"),
            ("hacmpEtcdPrefix", "/hacmp/advice-test"),
        ];
        let mut short = etcd.to_vec();
        short.extend([("faileOverTime", "9"), ("loopTime", "2")]);
        assert_eq!(advice_on(&short), ["faileOverTime"]);
        assert_eq!(advice_on(&etcd), [""; 0]);
    }

    #[test]
    fn a_word_close_to_a_subcommand_is_taken_for_a_typo() {
        let cli = clap::Command::new("hacmp")
            .subcommand(clap::Command::new("status"))
            .subcommand(clap::Command::new("check"))
            .subcommand(clap::Command::new("guard").hide(true));
        let typo = |word: &str| mistyped_subcommand(&cli, Some(OsStr::new(word)));
        assert_eq!(
            typo("stauts").as_deref(),
            Some("hacmp: stauts is neither a subcommand nor a file: did you mean `hacmp status`?")
        );
        assert!(typo("chekc").unwrap().ends_with("`hacmp check`?"));
        for not_a_typo in [
            "status",
            "heartbeat.vars",
            "--help",
            "./stauts",
            "gaurd",
            "xyzzy",
        ] {
            assert_eq!(typo(not_a_typo), None, "{not_a_typo}");
        }
    }

    #[test]
    fn loop_time_zero_is_refused() {
        let error = refused(&[("loopTime", "0")]).unwrap();
        assert_eq!(
            error,
            "environment: loopTime='0' makes the loop run without a pause, a busy loop: set loopTime to 1 or more (about a third of faileOverTime)"
        );
    }

    #[test]
    fn an_event_command_that_names_no_program_is_refused() {
        let missing = refused(&[("hacmpEventCmd", "/nonexistent/notify --page")]).unwrap();
        assert!(
            missing.contains("runs /nonexistent/notify, which is not an executable file:"),
            "{missing}"
        );
        let unknown = refused(&[("hacmpEventCmd", "no-such-advice-hook")]).unwrap();
        assert!(
            unknown.contains("not an executable file in PATH"),
            "{unknown}"
        );
        for fine in [
            "logger -t hacmp \"$HACMP_MESSAGE\"",
            "/bin/sh -c true",
            "exec /bin/true",
            "HOOK=1 /nonexistent/hook",
            "'/nonexistent/quoted'",
        ] {
            assert_eq!(refused(&[("hacmpEventCmd", fine)]), None, "{fine}");
        }
    }
}
