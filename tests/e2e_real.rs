//! End-to-end tests on real processes and real time: hacmp daemons sharing a heartbeat
//! directory, with the example application. The script's fixed 5 s and 30 s waits make these
//! slow, so there are few of them; the parity simulator covers the rest in virtual time.

mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use support::{Daemon, Node, node_in, unique_marker, wait_for_app, wait_until};

const FAILE_OVER_TIME: u64 = 3;
const LOOP_TIME: u64 = 1;

fn node(root: &Path, host: &str, marker: &str) -> Node {
    node_in(root, host, marker, FAILE_OVER_TIME, LOOP_TIME)
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn a_single_node_starts_the_application_and_keeps_its_heartbeat() {
    let root = tempfile::tempdir().unwrap();
    let mut a = node(root.path(), "nodeA", &unique_marker("single"));
    a.start(Daemon::Hacmp);
    let app = wait_for_app(&a, 20);
    let first_touch = modified(&a.heartbeat_file());
    wait_until("two more heartbeats", Duration::from_secs(10), || {
        a.output().iter().filter(|l| **l == app.to_string()).count() >= 2
    });
    assert!(
        modified(&a.heartbeat_file()) > first_touch,
        "the master touches its heartbeat"
    );
    assert_eq!(
        a.output()[..8],
        [
            "starting monitoring",
            "In monitoring loop sleep 1",
            "in Starting server",
            "Sleep 5 second to give room for avoiding conflicts",
            "Check if we are still master",
            "We are master so start server",
            "In monitoring loop sleep 1",
            &app.to_string(),
        ]
    );
    let log = fs::read_to_string(a.dir.join("app.log")).unwrap();
    assert!(
        log.contains("exampleApplication running on nodeA"),
        "log: {log}"
    );
}

/// bash reads the variable file, and what it exports is the application's environment, as
/// heartbeat.sh's `nohup` child inherited the sourcing shell's (src/config/bash.rs).
#[test]
fn the_application_inherits_what_the_variable_file_exports() {
    let root = tempfile::tempdir().unwrap();
    let marker = unique_marker("exports");
    let mut a = node(root.path(), "nodeA", &marker);
    a.set_variable("export APP_SITE", &marker);
    a.set_variable("NOT_EXPORTED", "local");
    a.start(Daemon::Hacmp);
    let app = wait_for_app(&a, 20);
    let environ = fs::read(format!("/proc/{app}/environ")).unwrap();
    let entries: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
    assert!(
        entries.contains(&format!("APP_SITE={marker}").as_bytes()),
        "APP_SITE is exported to the application"
    );
    assert!(
        !entries.iter().any(|e| e.starts_with(b"NOT_EXPORTED=")),
        "a variable the file does not export stays in bash"
    );
}

#[test]
fn an_application_that_dies_is_reported_and_started_again() {
    let root = tempfile::tempdir().unwrap();
    let mut a = node(root.path(), "nodeA", &unique_marker("incident"));
    a.start(Daemon::Hacmp);
    let first = wait_for_app(&a, 20);
    a.kill_apps();
    let second = wait_for_app(&a, 30);
    assert_ne!(first, second, "a new instance replaced the dead one");
    let output = a.output();
    let incident = output
        .iter()
        .position(|l| l == "#### ERROR, we sent last heartbeat but is not alive")
        .expect("the incident is reported");
    let after: Vec<&str> = output[incident + 2..].iter().map(String::as_str).collect();
    assert_eq!(
        after[..3],
        [
            "nodeA",
            "checking last heartbeat if we shll tak eover",
            after[2]
        ]
    );
    // After 2 × faileOverTime without a touch, the host's own heartbeat is stale.
    let age: i64 = after[4].parse().unwrap();
    assert!(age >= 2 * FAILE_OVER_TIME as i64, "age {age}");
    assert_eq!(
        after[6..13],
        [
            "Instance down",
            "no master taking over",
            "trying to be master",
            "in Starting server",
            "Sleep 5 second to give room for avoiding conflicts",
            "Check if we are still master",
            "We are master so start server",
        ]
    );
}

#[test]
fn the_standby_takes_over_when_the_active_host_dies() {
    let root = tempfile::tempdir().unwrap();
    let marker = unique_marker("failover");
    let mut a = node(root.path(), "nodeA", &marker);
    let mut b = node(root.path(), "nodeB", &marker);
    a.start(Daemon::Hacmp);
    wait_for_app(&a, 20);
    b.start(Daemon::Hacmp);
    wait_until(
        "nodeB to see nodeA as master",
        Duration::from_secs(10),
        || b.output_contains("We are not master, so kill any running instances"),
    );
    assert!(
        b.app_pids().is_empty(),
        "the standby runs nothing while nodeA is alive"
    );
    // A host crash: the daemon and its application vanish together.
    a.kill_daemon();
    a.kill_apps();
    // The standby is inside killInstance's 30 s wait; it checks nodeA's heartbeat after it.
    wait_for_app(&b, 60);
    assert!(b.output_contains("Instance down"));
    assert!(b.output_contains("We are master so start server"));
    assert!(a.app_pids().is_empty());
}

#[test]
fn the_maintenance_file_freezes_everything() {
    let root = tempfile::tempdir().unwrap();
    let mut a = node(root.path(), "nodeA", &unique_marker("maintenance"));
    a.start(Daemon::Hacmp);
    wait_for_app(&a, 20);
    fs::write(a.dir.join("maintenance"), "").unwrap();
    wait_until("the maintenance notice", Duration::from_secs(5), || {
        a.output_contains("We are in maintenance mode, so we do nothing")
    });
    let frozen = modified(&a.heartbeat_file());
    a.kill_apps();
    let printed = a.output().len();
    wait_until(
        "three more maintenance loops",
        Duration::from_secs(10),
        || a.output().len() >= printed + 6,
    );
    assert!(
        a.app_pids().is_empty(),
        "nothing is started during maintenance"
    );
    assert_eq!(
        modified(&a.heartbeat_file()),
        frozen,
        "no heartbeat during maintenance"
    );
    assert!(a.output()[printed..].iter().all(|l| {
        l == "In monitoring loop sleep 1" || l == "We are in maintenance mode, so we do nothing"
    }));
    fs::remove_file(a.dir.join("maintenance")).unwrap();
    wait_for_app(&a, 30);
}

#[test]
fn heartbeat_sh_with_hacmp_as_its_interpreter_runs_natively() {
    let root = tempfile::tempdir().unwrap();
    let mut a = node(root.path(), "nodeA", &unique_marker("interpreter"));
    a.start(Daemon::HacmpInterpreter);
    let app = wait_for_app(&a, 20);
    wait_until("the first heartbeat check", Duration::from_secs(5), || {
        a.output_contains(&app.to_string())
    });
    assert_eq!(a.output()[0], "starting monitoring");
    assert!(a.heartbeat_file().is_file());
    let program = fs::read_link(format!("/proc/{}/exe", a.daemon_pid())).unwrap();
    assert_eq!(
        program,
        Path::new(env!("CARGO_BIN_EXE_hacmp")),
        "the kernel ran hacmp, not bash"
    );
    // Not even a warning about the tests' short faileOverTime: that is for `hacmp check`.
    assert!(a.errors().is_empty(), "stderr: {}", a.errors());
}

#[test]
fn sigterm_ends_hacmp_at_once_and_leaves_the_application_running() {
    use std::os::unix::process::ExitStatusExt;
    let root = tempfile::tempdir().unwrap();
    let mut a = node(root.path(), "nodeA", &unique_marker("sigterm"));
    a.start(Daemon::Hacmp);
    let app = wait_for_app(&a, 20);
    let status = a.signal_daemon(libc::SIGTERM);
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "ended by the signal, as bash is"
    );
    assert_eq!(
        a.app_pids(),
        [app],
        "the application is left running, as bash leaves it"
    );
}

/// Replaces what differs from run to run (PIDs, times, ages) so two runs can be compared.
fn actions(output: &[String]) -> Vec<String> {
    output
        .iter()
        .map(|line| {
            if line.parse::<i64>().is_ok() {
                "<number>".to_string()
            } else {
                line.clone()
            }
        })
        .collect()
}

#[test]
fn hacmp_takes_the_same_actions_as_the_bash_original() {
    let root = tempfile::tempdir().unwrap();
    let marker = unique_marker("side-by-side");
    let bash_root = root.path().join("bash");
    let hacmp_root = root.path().join("hacmp");
    let mut with_bash = node(&bash_root, "nodeA", &marker);
    let mut with_hacmp = node(&hacmp_root, "nodeB", &marker);
    with_bash.start(Daemon::Bash);
    with_hacmp.start(Daemon::Hacmp);
    let nodes = [&with_bash, &with_hacmp];
    for node in nodes {
        wait_for_app(node, 20);
    }
    // Both applications die together, so that neither loop is told of its death a round later
    // than the other; the healthy rounds before it are left out of the comparison anyway, as
    // their number depends on how long the first start took on a loaded machine.
    for node in nodes {
        node.kill_apps();
    }
    for node in nodes {
        wait_for_app(node, 30);
    }
    let [bash, hacmp] = nodes.map(|node| {
        let output = node.output();
        let line = |wanted: &str| output.iter().position(|l| l == wanted);
        let first_start = line("We are master so start server").expect("a first start");
        let incident = line("####").expect("the incident of the killed application");
        let round_of_incident = output[..incident]
            .iter()
            .rposition(|l| l.starts_with("In monitoring loop sleep"))
            .expect("a round before the incident");
        let restarted = output
            .iter()
            .rposition(|l| l == "We are master so start server")
            .expect("a second start");
        let mut compared = actions(&output[..=first_start]);
        compared.extend(actions(&output[round_of_incident..=restarted]));
        compared
    });
    assert_eq!(
        hacmp.len(),
        bash.len(),
        "bash:\n{bash:#?}\nhacmp:\n{hacmp:#?}"
    );
    for (line, (b, h)) in bash.iter().zip(&hacmp).enumerate() {
        // The host name is the one difference the setup makes.
        assert_eq!(h.replace("nodeB", "nodeA"), *b, "line {line}");
    }
}

/// A safe daemon says at start what `hacmp check` would warn about, on stderr, naming the line,
/// and then runs.
#[test]
fn a_safe_daemon_warns_at_start_about_a_maintenance_file_it_could_never_create() {
    let root = tempfile::tempdir().unwrap();
    let mut a = node(root.path(), "nodeA", &unique_marker("warn"));
    a.set_variable("hacmpProfile", "safe");
    a.set_variable("maintenanceFile", "./no-such-directory/maintenance");
    a.start(Daemon::Hacmp);
    let warning = "maintenanceFile='./no-such-directory/maintenance' is in ./no-such-directory, which does not exist: `hacmp maintenance on` would fail just when it is needed; create the directory or choose a maintenanceFile in one";
    wait_until("the warning", Duration::from_secs(10), || {
        a.errors().contains(warning)
    });
    let line = a.errors().lines().next().unwrap().to_string();
    assert!(
        line.starts_with("hacmp: warning: ") && line.ends_with(&format!(":10: {warning}")),
        "{line}"
    );
    wait_until("the loop to run", Duration::from_secs(10), || {
        a.output_contains("starting monitoring (safe profile)")
    });
}
