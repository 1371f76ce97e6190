//! What an installation gets besides the binary: man pages and shell completions, written by
//! `hacmp generate-docs`. The man pages of `hacmp`, `hacmp run` and `hacmp check` carry a
//! VARIABLES section: every variable `hacmp check` lists, in its order, with its default and
//! meaning.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

use clap_mangen::roff::{Roff, bold, roman};

use crate::config::{self, Origin};

/// The pages that get the VARIABLES section: those of the commands that read the variables to
/// act on them or to show them.
const PAGES_WITH_VARIABLES: [&str; 3] = ["hacmp.1", "hacmp-run.1", "hacmp-check.1"];

/// One variable as the manual describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableDoc {
    pub name: &'static str,
    pub default: String,
    pub meaning: &'static str,
}

/// Every variable, in the order of `hacmp check`'s table, with the default a variable set
/// nowhere takes.
pub fn variables() -> Vec<VariableDoc> {
    let defaults = config::resolve(None, &HashMap::new()).expect("the defaults resolve");
    defaults
        .settings
        .iter()
        .map(|setting| VariableDoc {
            name: setting.name,
            default: match (setting.name, &setting.origin) {
                // The script assigns `hostname`'s output, which differs per host.
                ("hostName", _) => "the output of hostname".to_string(),
                (_, Origin::Default) => setting.value.clone(),
                _ => "none".to_string(),
            },
            meaning: meaning(setting.name),
        })
        .collect()
}

fn meaning(name: &str) -> &'static str {
    match name {
        "pgrepProgramName" => {
            "An extended regular expression matched against each process's full command line, as pgrep -f does: the application's instances on this host. Must be set."
        }
        "startCmd" => {
            "How to start the application, split on blanks as bash splits an unquoted variable; run in the background with its output in startCmdLogFile. Must be set."
        }
        "startCmdLogFile" => "Where the application's stdout and stderr go.",
        "maintenanceFile" => {
            "While this file exists the loop does nothing at all; on the shared storage, outside the heartbeat directory, it holds every host. hacmp maintenance on|off creates and removes it."
        }
        "hostName" => {
            "This host's name: the name of its heartbeat file, unique among the hosts sharing the heartbeat directory."
        }
        "heartBeatDir" => {
            "The shared directory (NFS or a SAN disk) holding one heartbeat file per host; the newest file's host is master."
        }
        "faileOverTime" => {
            "Seconds without a new heartbeat after which the master counts as dead and another host takes over. Above 5 + loopTime in the compat profile; at least 10 with hacmpBackend=etcd."
        }
        "loopTime" => {
            "Seconds between two rounds of the loop, about a third of faileOverTime; at least 1."
        }
        "hacmpProfile" => {
            "compat runs heartbeat.sh's loop exactly; safe keeps the same protocol but never runs two instances at once (docs/safe-profile.md)."
        }
        "hacmpEventCmd" => {
            "A command run by /bin/sh on each event (master, standby, incident, fenced, maintenance-on, maintenance-off) with HACMP_EVENT, HACMP_HOST, HACMP_PEER, HACMP_TOKEN and HACMP_MESSAGE in its environment. Unset: no hook."
        }
        "hacmpMetricsFile" => {
            "An absolute path ending in .prom in node_exporter's textfile directory, replaced after each round. Unset: no metrics."
        }
        "hacmpBackend" => {
            "Where the safe profile keeps its lease: files (heartBeatDir, or hacmpHeartBeatDirs) or etcd (docs/etcd.md)."
        }
        "hacmpHeartBeatDirs" => {
            "With the safe profile: an odd number (at least 3) of heartbeat directories, each on its own storage, of which a majority decides (docs/multi-site.md). Unset: heartBeatDir alone."
        }
        "hacmpEtcdEndpoints" => {
            "With hacmpBackend=etcd: every member of the etcd cluster, comma-separated URLs."
        }
        "hacmpEtcdPrefix" => {
            "With hacmpBackend=etcd: the key prefix only this application uses (e.g. /hacmp/payments); the leader and maintenance keys live below it."
        }
        "hacmpEtcdCacert" => {
            "With hacmpBackend=etcd over https: the CA certificate that signed the members' certificates."
        }
        "hacmpEtcdCert" => {
            "With hacmpBackend=etcd: this host's client certificate, when the members ask for one."
        }
        "hacmpEtcdKey" => "With hacmpBackend=etcd: the private key of hacmpEtcdCert.",
        other => panic!("{other} has no meaning in the manual: add one to src/manual.rs"),
    }
}

/// The VARIABLES section in roff.
fn variables_section() -> String {
    let mut roff = Roff::new();
    roff.control("SH", ["VARIABLES"]);
    roff.text([roman(
        "Read from the variable file (an assignment there wins), else from the environment, else the default. hacmp check shows each one's value and where it came from.",
    )]);
    for variable in variables() {
        roff.control("TP", []);
        roff.text([
            bold(variable.name),
            roman(format!(" (default: {})", variable.default)),
        ]);
        roff.text([roman(variable.meaning)]);
    }
    roff.to_roff()
}

/// Writes the man pages (DIR/man: one for hacmp and for each subcommand it shows) and the shell
/// completions (DIR/completions) of `command`.
pub fn generate(command: clap::Command, dir: &Path) -> io::Result<()> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&completions)?;
    // Hidden subcommands are started by hacmp itself or by `make`, and get no page.
    clap_mangen::generate_to(command.clone(), &man)?;
    let section = variables_section();
    for page in PAGES_WITH_VARIABLES {
        let path = man.join(page);
        let text = fs::read_to_string(&path)?;
        // Before the examples and the version, where a reader looks for reference material.
        let at = [".SH EXTRA", ".SH VERSION"]
            .iter()
            .find_map(|heading| text.find(heading))
            .unwrap_or(text.len());
        fs::write(&path, format!("{}{section}{}", &text[..at], &text[at..]))?;
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut command.clone(), "hacmp", &completions)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_check_lists_has_a_default_and_a_meaning() {
        let documented: Vec<&str> = variables().iter().map(|v| v.name).collect();
        let listed: Vec<&str> = config::VARIABLE_NAMES
            .iter()
            .chain(config::HACMP_VARIABLE_NAMES.iter())
            .copied()
            .collect();
        assert_eq!(documented, listed);
        let by_name = |name: &str| variables().into_iter().find(|v| v.name == name).unwrap();
        assert_eq!(by_name("faileOverTime").default, "10");
        assert_eq!(by_name("hacmpBackend").default, "files");
        assert_eq!(by_name("startCmd").default, "none");
        assert_eq!(by_name("hostName").default, "the output of hostname");
    }

    #[test]
    fn the_section_lists_every_variable_as_a_tagged_paragraph() {
        let section = variables_section();
        assert!(section.starts_with(".SH VARIABLES\n"), "{section}");
        assert_eq!(
            section.matches(".TP\n").count(),
            config::VARIABLE_NAMES.len() + config::HACMP_VARIABLE_NAMES.len()
        );
        assert!(
            section.contains("\\fBhacmpEtcdEndpoints\\fR (default: none)"),
            "{section}"
        );
    }
}
