//! Why an operator's script differs from hacmp in every run, when one of its lines explains it:
//! found in the script's variables before any run, said once after the runs that differ, so
//! that "20 of 20 runs DIFFERENT" comes with its cause.

use crate::config::{Origin, Settings};

/// The line of `original` that makes runs differ whatever their schedule, in one sentence.
pub fn certain_difference(settings: &Settings) -> Option<String> {
    hard_coded_host_name(settings)
}

/// The simulator names each bash node by stubbing `hostname`; hacmp takes the scenario's node
/// names. An assignment that does not call `hostname` (a literal, `$HOSTNAME`, `uname -n`) gives
/// every bash node one name, so every run with two nodes differs from its first look at the
/// heartbeat directory.
fn hard_coded_host_name(settings: &Settings) -> Option<String> {
    let setting = settings.get("hostName");
    let Origin::File { path, line } = &setting.origin else {
        return None;
    };
    let text = std::fs::read_to_string(path).ok()?;
    let assignment = text.lines().nth(line.checked_sub(1)?)?;
    let calls_hostname = regex::Regex::new(r"(`|\$\()\s*hostname\b")
        .expect("the pattern is valid")
        .is_match(assignment);
    (!calls_hostname).then(|| {
        format!(
            "{}:{line}: `{}` does not call hostname, so every bash node of the simulation is named {} while hacmp gives each node its own name: that line alone makes every run with more than one node differ. Compare a copy whose line reads hostName=`hostname`, as heartbeat.sh has it.",
            path.display(),
            assignment.trim(),
            setting.value
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config;

    fn explained(host_name_line: &str) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("heartbeat.sh");
        std::fs::write(
            &script,
            format!("pgrepProgramName=app\nstartCmd=/bin/true\n{host_name_line}\nloopTime=3\n"),
        )
        .unwrap();
        let settings = config::resolve(Some(&script), &HashMap::new()).unwrap();
        certain_difference(&settings)
            .map(|text| text.replace(&script.display().to_string(), "SCRIPT"))
    }

    #[test]
    fn a_literal_host_name_is_named_with_its_line() {
        let found = explained("hostName=nodeA").unwrap();
        assert!(
            found.starts_with("SCRIPT:3: `hostName=nodeA` does not call hostname, so every bash node of the simulation is named nodeA"),
            "{found}"
        );
        assert!(explained("hostName=$HOSTNAME").is_some());
    }

    #[test]
    fn host_names_from_hostname_explain_nothing() {
        for line in [
            "hostName=`hostname`",
            "hostName=$(hostname)",
            "hostName=$( hostname -s )",
            "# no assignment: the script's default calls hostname",
        ] {
            assert_eq!(explained(line), None, "{line}");
        }
    }
}
