//! Bad input stops `hacmp run` before it acts: exit status 2, one line on stderr naming the
//! variable and where it was set, and nothing started, killed, touched or deleted.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::unique_marker;

/// A valid variable file whose line `line` (1-based) is replaced by `replacement`; line 9, one
/// past the eight variables of heartbeat.sh, adds it.
fn variables_with(dir: &Path, marker: &str, line: usize, replacement: &str) -> String {
    let mut lines = vec![
        format!("pgrepProgramName='exampleApplication.sh {marker}'"),
        format!("startCmd='./exampleApplication.sh {marker}'"),
        "startCmdLogFile='./app.log'".to_string(),
        "maintenanceFile='./maintenance'".to_string(),
        "hostName=nodeA".to_string(),
        format!("heartBeatDir='{}'", dir.join("heartbeat").display()),
        "faileOverTime=3".to_string(),
        "loopTime=1".to_string(),
    ];
    if line == lines.len() + 1 {
        lines.push(replacement.to_string());
    } else {
        lines[line - 1] = replacement.to_string();
    }
    lines.join("\n") + "\n"
}

/// Runs hacmp on the file and returns its stderr after checking that it refused to start.
fn refused(replace_line: usize, replacement: &str) -> String {
    refused_in_environment(&[], replace_line, replacement)
}

/// `refused`, with variables added to hacmp's environment.
fn refused_in_environment(
    environment: &[(&str, &OsStr)],
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

/// Whether `hacmp check` refuses a pattern with a range for the collation in `environment`.
fn hacmp_refuses_a_range(environment: &[(&str, &OsStr)]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("heartbeat")).unwrap();
    fs::copy(
        support::example_app(),
        dir.path().join("exampleApplication.sh"),
    )
    .unwrap();
    let vars = dir.path().join("heartbeat.vars");
    let marker = unique_marker("range");
    fs::write(
        &vars,
        variables_with(dir.path(), &marker, 1, "pgrepProgramName='app[0-9]'"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .arg("check")
        .arg(&vars)
        .envs(environment.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let refused = shown.contains("has a range, which glibc orders by the locale's collation");
    assert_eq!(refused, output.status.code() == Some(2), "{shown}");
    refused
}

/// Whether `pgrep -f` in `environment` orders `[!-~]` by collation: it then misses the `B` in
/// the command line of `process`, which carries `marker`.
fn pgrep_collates_a_range(environment: &[(&str, &OsStr)], marker: &str, process: u32) -> bool {
    let output = Command::new("pgrep")
        .args(["-f", &format!("{marker} [!-~]$")])
        .envs(environment.iter().copied())
        .output()
        .unwrap();
    let listed = String::from_utf8(output.stdout).unwrap();
    listed.lines().all(|pid| pid != process.to_string())
}

#[test]
fn ranges_are_refused_exactly_where_pgrep_orders_them_by_collation() {
    // A locale with collation rules, built for this test; glibc finds it through LOCPATH.
    let locales = tempfile::tempdir().unwrap();
    let built = Command::new("localedef")
        .args(["-i", "de_DE", "-f", "ISO-8859-1"])
        .arg(locales.path().join("de_DE.ISO-8859-1"))
        .status()
        .unwrap();
    assert!(built.success(), "localedef builds de_DE.ISO-8859-1");
    let marker = unique_marker("collation");
    let mut process = Command::new("sh")
        .args(["-c", "read x", &marker, "B"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    support::wait_until("the process has executed", Duration::from_secs(10), || {
        fs::read(format!("/proc/{}/cmdline", process.id()))
            .is_ok_and(|c| c.ends_with(format!("{marker}\0B\0").as_bytes()))
    });
    let german = OsStr::new("de_DE.ISO-8859-1");
    let c = OsStr::new("C");
    let missing = OsStr::new("xx_YY.UTF-8");
    let cases: [&[(&str, &OsStr)]; 6] = [
        &[("LANG", german)],
        &[("LC_COLLATE", german)],
        &[("LC_ALL", german), ("LC_COLLATE", c)],
        &[("LANG", german), ("LC_COLLATE", c)],
        &[("LANG", german), ("LC_ALL", c)],
        &[("LANG", german), ("LC_CTYPE", missing)],
    ];
    let mut collated = 0;
    for case in cases {
        let environment: Vec<(&str, &OsStr)> = [("LOCPATH", locales.path().as_os_str())]
            .into_iter()
            .chain(case.iter().copied())
            .collect();
        let by_pgrep = pgrep_collates_a_range(&environment, &marker, process.id());
        assert_eq!(hacmp_refuses_a_range(&environment), by_pgrep, "{case:?}");
        collated += usize::from(by_pgrep);
    }
    // Only this test's process, by its PID.
    process.kill().unwrap();
    process.wait().unwrap();
    assert_eq!(collated, 3, "the cases cover both readings");
    let error = refused_in_environment(
        &[("LOCPATH", locales.path().as_os_str()), ("LC_ALL", german)],
        1,
        "pgrepProgramName='app[0-9]'",
    );
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

#[test]
fn a_relative_metrics_file_is_refused() {
    assert_eq!(
        refused(9, "hacmpMetricsFile=hacmp.prom"),
        "hacmp: VARS:9: hacmpMetricsFile='hacmp.prom' is not an absolute path"
    );
}

#[test]
fn a_metrics_file_node_exporter_would_not_read_is_refused() {
    let error = refused(9, "hacmpMetricsFile=/var/lib/node_exporter/hacmp.txt");
    assert!(error.contains("does not end in .prom"), "{error}");
}

#[test]
fn a_metrics_file_in_a_missing_directory_is_refused() {
    let error = refused(9, "hacmpMetricsFile=/nonexistent/hacmp/hacmp.prom");
    assert!(
        error.starts_with(
            "hacmp: VARS:9: hacmpMetricsFile='/nonexistent/hacmp/hacmp.prom' cannot be written"
        ),
        "{error}"
    );
}

#[test]
fn a_blank_event_command_is_refused() {
    assert_eq!(
        refused(9, "hacmpEventCmd='  '"),
        "hacmp: VARS:9: hacmpEventCmd='  ' is blank: there is no command to run"
    );
}

#[test]
fn heartbeat_directories_that_cannot_hold_a_majority_are_refused() {
    // Line 6 (heartBeatDir) becomes two lines, so hacmpHeartBeatDirs is on line 7.
    let with_dirs = |dirs: &str| format!("hacmpProfile=safe\nhacmpHeartBeatDirs='{dirs}'");
    assert_eq!(
        refused(6, &with_dirs("/mnt/dc1/hb /mnt/dc2/hb")),
        "hacmp: VARS:7: hacmpHeartBeatDirs='/mnt/dc1/hb /mnt/dc2/hb' lists 2 directories; a majority needs an odd number, at least 3 (one per data centre and a witness)"
    );
    let error = refused(6, &with_dirs("/mnt/dc1/hb /mnt/dc2/hb /mnt/dc1/hb/"));
    assert!(error.contains("lists /mnt/dc1/hb twice"), "{error}");
    let error = refused(6, &with_dirs("/mnt/dc1/hb /mnt/dc2/hb witness/hb"));
    assert!(
        error.contains("witness/hb, which is not an absolute path"),
        "{error}"
    );
}

#[test]
fn heartbeat_directories_are_refused_with_the_compat_profile() {
    let error = refused(9, "hacmpHeartBeatDirs='/mnt/dc1/hb /mnt/dc2/hb /mnt/w/hb'");
    assert!(
        error.starts_with("hacmp: VARS:9: hacmpHeartBeatDirs=")
            && error.contains("hacmpProfile=safe"),
        "{error}"
    );
}

#[test]
fn a_heartbeat_dir_left_out_of_the_directories_is_refused() {
    let error = refused(
        9,
        "hacmpProfile=safe\nhacmpHeartBeatDirs='/mnt/dc1/hb /mnt/dc2/hb /mnt/w/hb'",
    );
    assert!(
        error.starts_with("hacmp: VARS:6: heartBeatDir=")
            && error.contains("not one of hacmpHeartBeatDirs"),
        "{error}"
    );
}

#[test]
fn etcd_variables_without_the_etcd_backend_are_refused() {
    assert_eq!(
        refused(9, "hacmpEtcdEndpoints=http://127.0.0.1:2379"),
        "hacmp: VARS:9: hacmpEtcdEndpoints='http://127.0.0.1:2379' is set, but hacmpBackend is not etcd"
    );
    let error = refused(9, "hacmpBackend=etcd");
    assert!(
        error.starts_with("hacmp: VARS:9: hacmpBackend='etcd' needs hacmpProfile=safe"),
        "{error}"
    );
    assert_eq!(
        refused(
            9,
            "hacmpProfile=safe\nhacmpBackend=etcd\nhacmpEtcdEndpoints=http://127.0.0.1:2379"
        ),
        "hacmp: not set: hacmpEtcdPrefix='' must be set with hacmpBackend=etcd, to a prefix only this application uses (e.g. /hacmp/payments)"
    );
}

#[test]
fn hacmp_check_names_heartbeat_directories_that_cannot_hold_a_majority() {
    let root = tempfile::tempdir().unwrap();
    let vars = root.path().join("heartbeat.vars");
    let marker = unique_marker("check");
    fs::write(
        &vars,
        variables_with(
            root.path(),
            &marker,
            6,
            "hacmpProfile=safe\nhacmpHeartBeatDirs='/mnt/dc1/hb /mnt/dc2/hb'",
        ),
    )
    .unwrap();
    let (code, all) = hacmp_check(root.path(), &vars);
    assert_eq!(code, Some(2), "{all}");
    assert!(
        all.contains(&format!("{}:7: hacmpHeartBeatDirs=", vars.display())),
        "{all}"
    );
}

/// bash reads the file (src/config/bash.rs): what makes bash fail is refused with bash's own
/// message, on the file and line it names.
#[test]
fn what_bash_fails_on_is_refused_with_bashs_message_and_line() {
    assert_eq!(
        refused(9, "if then"),
        "hacmp: VARS:9: bash: syntax error near unexpected token `then': `if then'"
    );
    assert_eq!(
        refused(9, "set -u; x=$nope"),
        "hacmp: VARS:9: bash: nope: unbound variable"
    );
    assert!(
        refused(9, "exit 3")
            .starts_with("hacmp: VARS:9: bash ended here with exit status 3 (a top-level `exit`")
    );
    assert_eq!(
        refused(7, "declare -i faileOverTime=abc+"),
        "hacmp: VARS:7: bash: declare: abc+: syntax error: operand expected (error token is \"+\")"
    );
}

#[test]
fn a_misspelt_variable_is_refused_naming_the_intended_one() {
    assert_eq!(
        refused(7, "faileoverTime=30"),
        "hacmp: VARS:7: faileoverTime is set, but hacmp reads no such variable: did you mean \
         faileOverTime?"
    );
    assert_eq!(
        refused(9, "hacmpProfle=safe"),
        "hacmp: VARS:9: hacmpProfle is set, but hacmp reads no such variable: did you mean \
         hacmpProfile?"
    );
}

#[test]
fn windows_line_ends_are_refused_without_printing_a_carriage_return() {
    assert_eq!(
        refused(5, "hostName=nodeA\r"),
        "hacmp: VARS:5: hostName holds a carriage return: the file has Windows line ends, \
         convert it with dos2unix"
    );
}

/// A command of the file that hangs: bash and what it started are killed after 10 s.
#[test]
fn a_file_whose_commands_hang_is_refused_and_nothing_is_left_running() {
    let seconds = format!("300.{}", std::process::id());
    let error = refused(9, &format!("x=$(sleep {seconds} & sleep {seconds})"));
    assert!(
        error.contains("bash did not finish reading the file within 10 s"),
        "{error}"
    );
    let left: Vec<_> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| fs::read(entry.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(&seconds))
        .collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

/// startCmd is looked for in the PATH the file exports, as bash's `nohup` would look for it.
#[test]
fn start_cmd_is_found_in_the_path_the_file_exports() {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("app-bin");
    fs::create_dir(&bin).unwrap();
    fs::create_dir(root.path().join("heartbeat")).unwrap();
    let program = bin.join("start-app.sh");
    fs::write(&program, "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let marker = unique_marker("path");
    let text = variables_with(root.path(), &marker, 2, "startCmd=start-app.sh")
        + &format!("export PATH=$PATH:{}\n", bin.display());
    let vars = root.path().join("heartbeat.vars");
    fs::write(&vars, text).unwrap();
    let (code, all) = hacmp_check(root.path(), &vars);
    assert_ne!(code, Some(2), "{all}");
    assert!(!all.contains("not an executable"), "{all}");
}

/// `hacmp check VARS` in `directory`: its exit status, and its stdout and stderr together.
fn hacmp_check(directory: &Path, vars: &Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .arg("check")
        .arg(vars)
        .current_dir(directory)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), all)
}

#[test]
fn a_loop_time_of_zero_is_refused_as_a_busy_loop() {
    assert_eq!(
        refused(8, "loopTime=0"),
        "hacmp: VARS:8: loopTime='0' makes the loop run without a pause, a busy loop: set loopTime to 1 or more (about a third of faileOverTime)"
    );
}

#[test]
fn an_event_command_that_is_not_executable_is_refused() {
    assert_eq!(
        refused(9, "hacmpEventCmd='/nonexistent/page-oncall --urgent'"),
        "hacmp: VARS:9: hacmpEventCmd='/nonexistent/page-oncall --urgent' runs /nonexistent/page-oncall, which is not an executable file: no event would be reported; give the hook's full path and make it executable"
    );
    let error = refused(9, "hacmpEventCmd=page-oncall-not-installed");
    assert!(error.contains("not an executable file in PATH"), "{error}");
}

#[test]
fn a_mistyped_subcommand_gets_did_you_mean_and_nothing_runs() {
    let root = tempfile::tempdir().unwrap();
    let vars = root.path().join("heartbeat.vars");
    fs::write(&vars, variables_with(root.path(), "typo", 9, "")).unwrap();
    for arguments in [
        vec![OsStr::new("stauts"), vars.as_os_str()],
        vec![OsStr::new("chekc")],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_hacmp"))
            .args(&arguments)
            .current_dir(root.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{arguments:?}: {stderr}");
        assert!(output.stdout.is_empty());
        let word = arguments[0].to_str().unwrap();
        let meant = if word == "stauts" { "status" } else { "check" };
        assert_eq!(
            stderr,
            format!(
                "hacmp: {word} is neither a subcommand nor a file: did you mean `hacmp {meant}`?\n"
            )
        );
    }
    assert!(
        !root.path().join("heartbeat").exists(),
        "no loop ran in the directory"
    );
}
