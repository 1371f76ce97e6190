//! Bad input stops `hacmp run` before it acts: exit status 2, one line on stderr naming the
//! variable and where it was set, and nothing started, killed, touched or deleted.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use support::unique_marker;

/// A valid variable file whose line `line` (1-based) is replaced by `replacement`.
fn variables_with(dir: &Path, marker: &str, line: usize, replacement: &str) -> String {
    let mut lines = [
        format!("pgrepProgramName='exampleApplication.sh {marker}'"),
        format!("startCmd='./exampleApplication.sh {marker}'"),
        "startCmdLogFile='./app.log'".to_string(),
        "maintenanceFile='./maintenance'".to_string(),
        "hostName=nodeA".to_string(),
        format!("heartBeatDir='{}'", dir.join("heartbeat").display()),
        "faileOverTime=3".to_string(),
        "loopTime=1".to_string(),
    ];
    lines[line - 1] = replacement.to_string();
    lines.join("\n") + "\n"
}

/// Runs hacmp on the file and returns its stderr after checking that it refused to start.
fn refused(replace_line: usize, replacement: &str) -> String {
    refused_in_environment(&[], replace_line, replacement)
}

/// `refused`, with variables added to hacmp's environment.
fn refused_in_environment(
    environment: &[(&str, &std::ffi::OsStr)],
    replace_line: usize,
    replacement: &str,
) -> String {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    fs::create_dir(dir.join("heartbeat")).unwrap();
    fs::copy(support::example_app(), dir.join("exampleApplication.sh")).unwrap();
    let marker = unique_marker("refused");
    let vars = dir.join("heartbeat.vars");
    fs::write(
        &vars,
        variables_with(dir, &marker, replace_line, replacement),
    )
    .unwrap();
    let before: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .arg("run")
        .arg(&vars)
        .envs(environment.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "the loop never started");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("hacmp: "), "{stderr}");
    let after: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "no file created or deleted");
    assert_eq!(
        fs::read_dir(dir.join("heartbeat")).unwrap().count(),
        0,
        "no heartbeat"
    );
    stderr
        .trim_end()
        .replace(&vars.display().to_string(), "VARS")
}

#[test]
fn a_non_integer_failover_time_names_the_variable_and_line() {
    assert_eq!(
        refused(7, "faileOverTime=ten"),
        "hacmp: VARS:7: faileOverTime='ten' is not a whole number of seconds"
    );
}

#[test]
fn a_fractional_loop_time_is_refused() {
    assert_eq!(
        refused(8, "loopTime=0.5"),
        "hacmp: VARS:8: loopTime='0.5' is not a whole number of seconds"
    );
}

#[test]
fn an_invalid_regex_names_the_pattern_variable() {
    let error = refused(1, "pgrepProgramName='app('");
    assert!(
        error.starts_with("hacmp: VARS:1: pgrepProgramName='app(' "),
        "{error}"
    );
}

#[test]
fn a_pattern_starting_with_a_dash_is_refused_as_pgrep_reads_it_as_options() {
    let error = refused(1, "pgrepProgramName='-P1'");
    assert!(error.contains("pgrep reads as options"), "{error}");
}

#[test]
fn a_range_is_refused_where_the_locale_orders_ranges_by_collation() {
    // A locale with collation rules, built for this test; glibc finds it through LOCPATH.
    let locales = tempfile::tempdir().unwrap();
    let built = Command::new("localedef")
        .args(["-i", "de_DE", "-f", "ISO-8859-1"])
        .arg(locales.path().join("de_DE.ISO-8859-1"))
        .status()
        .unwrap();
    assert!(built.success(), "localedef builds de_DE.ISO-8859-1");
    let environment = [
        ("LOCPATH", locales.path().as_os_str()),
        ("LC_ALL", std::ffi::OsStr::new("de_DE.ISO-8859-1")),
    ];
    let error = refused_in_environment(&environment, 1, "pgrepProgramName='app[0-9]'");
    assert!(
        error.starts_with("hacmp: VARS:1: pgrepProgramName='app[0-9]' has a range, which glibc orders by the locale's collation rules"),
        "{error}"
    );
}

#[test]
fn a_missing_start_command_is_refused() {
    assert!(refused(2, "# no startCmd").contains("startCmd must be set"));
}

#[test]
fn a_start_command_that_cannot_run_is_refused() {
    let error = refused(2, "startCmd='./noSuchApplication.sh'");
    assert!(error.starts_with("hacmp: VARS:2: startCmd='./noSuchApplication.sh' names a program"));
}

#[test]
fn a_missing_heartbeat_directory_is_refused() {
    let error = refused(6, "heartBeatDir=/nonexistent/hacmp/heartbeat");
    assert_eq!(
        error,
        "hacmp: VARS:6: heartBeatDir='/nonexistent/hacmp/heartbeat' is not a directory"
    );
}

#[test]
fn an_unwritable_log_file_is_refused() {
    let error = refused(3, "startCmdLogFile=./missing-dir/app.log");
    assert!(
        error.starts_with(
            "hacmp: VARS:3: startCmdLogFile='./missing-dir/app.log' cannot be written"
        ),
        "{error}"
    );
}

#[test]
fn a_host_name_with_a_blank_is_refused() {
    let error = refused(5, "hostName='node A'");
    assert!(
        error.starts_with("hacmp: VARS:5: hostName='node A' contains a blank"),
        "{error}"
    );
}
