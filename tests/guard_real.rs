//! The safe profile's guard on real processes: it kills the application when the deadline
//! passes, keeps it while extended, stops it on request, keeps the deadline when the daemon's
//! end of the pipe closes, and the application dies with the guard. A later run of the daemon
//! reattaches to it through the runtime directory, and only to a guard proven to be the one
//! the earlier run started.
//!
//! Then the whole tree on a real daemon: an application that runs its work as a child,
//! double-forks it, setsid's it or ignores SIGTERM loses all of it when its guard is SIGKILLed,
//! before anything starts again, as an oracle that looks at every process of the machine sees.

mod support;

use support::oracle::Oracle;
use support::{Daemon, Node};

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hacmp::pattern::Pattern;
use hacmp::real::containment::Containment;
use hacmp::real::guard::{GuardSlot, boot_clock};
use hacmp::real::processes;
use hacmp::world::GuardState;

/// The fencing token and incarnation every guard here is started with.
const TOKEN: u64 = 7;
const FIRST_INCARNATION: u64 = 11;

struct Guarded {
    dir: tempfile::TempDir,
    marker: String,
    slot: GuardSlot,
}

/// A daemon's handle on guards, with `runtime` as its runtime directory.
fn slot_in(runtime: &Path) -> GuardSlot {
    let log = runtime.parent().unwrap().join("app.log");
    GuardSlot::new(
        PathBuf::from(env!("CARGO_BIN_EXE_hacmp")),
        Some(runtime.to_path_buf()),
        Containment::establish(log.to_str().unwrap()),
        None,
    )
}

/// Starts the example application under a guard whose deadline is `deadline` from now, with a
/// runtime directory of mode 0700 (`Guarded::runtime`) as systemd makes it.
fn guarded(label: &str, deadline: Duration) -> Guarded {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    let marker = support::unique_marker(label);
    let command = format!("{} {marker}", support::example_app().display());
    let log = dir.path().join("app.log");
    let mut slot = slot_in(&runtime);
    let deadline = boot_clock() + deadline;
    assert!(slot.start(
        &command,
        log.to_str().unwrap(),
        deadline,
        TOKEN,
        FIRST_INCARNATION
    ));
    let guarded = Guarded { dir, marker, slot };
    support::wait_until("the application", Duration::from_secs(5), || {
        !guarded.apps().is_empty()
    });
    guarded
}

impl Guarded {
    fn runtime(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Ends this handle as the daemon's death would (the guard's stdin closes), keeping a
    /// handle that commands nothing, and waits until the guard listens for a later run.
    fn lose_daemon(&mut self) {
        let idle = slot_in(&self.runtime());
        drop(std::mem::replace(&mut self.slot, idle));
        std::thread::sleep(Duration::from_millis(300));
    }

    fn apps(&self) -> Vec<u32> {
        let pattern = Pattern::new(&support::regex_escape(&format!(
            "exampleApplication.sh {}",
            self.marker
        )))
        .unwrap();
        processes::find(&pattern, std::process::id())
    }

    fn wait_for_state(&mut self, wanted: GuardState, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let state = self.slot.state();
            if state == wanted {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "still {state:?} after {limit:?}, wanted {wanted:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.slot.stop(Duration::ZERO);
        support::kill_processes_containing(&format!("exampleApplication.sh {}", self.marker));
    }
}

#[test]
fn the_application_is_killed_when_the_deadline_passes() {
    let mut guarded = guarded("fence", Duration::from_millis(1500));
    let app = guarded.apps()[0];
    guarded.wait_for_state(GuardState::Fenced, Duration::from_secs(5));
    assert!(
        !Path::new(&format!("/proc/{app}")).exists(),
        "the application is gone and reaped"
    );
    assert_eq!(
        guarded.slot.state(),
        GuardState::Idle,
        "the end is reported once"
    );
}

#[test]
fn an_extended_deadline_keeps_the_application_and_stop_ends_it() {
    let mut guarded = guarded("extend", Duration::from_secs(1));
    guarded.slot.extend(boot_clock() + Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(guarded.slot.state(), GuardState::Running);
    guarded.slot.stop(Duration::from_secs(5));
    assert!(
        guarded.apps().is_empty(),
        "stop returns once the application is gone"
    );
    assert_eq!(guarded.slot.state(), GuardState::Idle);
}

#[test]
fn an_application_that_exits_is_reported() {
    let mut guarded = guarded("exit", Duration::from_secs(30));
    for pid in guarded.apps() {
        // SAFETY: kill has no memory effects; the PID carries this test's marker.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    guarded.wait_for_state(GuardState::Exited, Duration::from_secs(5));
}

#[test]
fn the_guard_keeps_the_deadline_after_the_daemon_is_gone() {
    let mut orphan = guarded("orphan", Duration::from_secs(3));
    orphan.lose_daemon();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        orphan.apps().len(),
        1,
        "the application runs until the deadline"
    );
    support::wait_until(
        "the fenced application to end",
        Duration::from_secs(5),
        || orphan.apps().is_empty(),
    );
}

/// Whether this process has CAP_SYS_RESOURCE, which lowering an OOM score adjustment needs.
fn may_lower_oom_scores() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|bits| u64::from_str_radix(bits.trim(), 16).ok())
        .unwrap_or(0);
    // CAP_SYS_RESOURCE is capability 24 (linux/capability.h).
    effective & (1 << 24) != 0
}

#[test]
fn the_application_dies_with_its_guard_and_sees_its_token() {
    let guarded = guarded("pdeathsig", Duration::from_secs(30));
    let app = guarded.apps()[0];
    let environment = std::fs::read(format!("/proc/{app}/environ")).unwrap();
    let environment = String::from_utf8_lossy(&environment);
    assert!(
        environment
            .split('\0')
            .any(|v| v == "HACMP_FENCING_TOKEN=7")
    );
    assert!(
        !environment.contains("HACMP_GUARD_"),
        "the guard's own variables stay with it"
    );
    let guard = guarded.slot.guard_pid().unwrap();
    let score = |pid: u32| fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    if may_lower_oom_scores() {
        assert_eq!(
            score(guard),
            "-1000\n",
            "the OOM killer passes the guard by"
        );
    } else {
        eprintln!("SKIPPED the guard's OOM score: this test runs without CAP_SYS_RESOURCE");
    }
    assert_eq!(
        score(app),
        score(std::process::id()),
        "the application keeps the score it would have had"
    );
    let guard_command = std::fs::read(format!("/proc/{guard}/cmdline")).unwrap();
    assert!(
        !String::from_utf8_lossy(&guard_command).contains(&guarded.marker),
        "startCmd is not on the guard's command line"
    );
    // SAFETY: kill has no memory effects; the PID is our own child's.
    unsafe { libc::kill(guard as libc::pid_t, libc::SIGKILL) };
    support::wait_until(
        "the application to die with its guard",
        Duration::from_secs(5),
        || guarded.apps().is_empty(),
    );
}

#[test]
fn a_later_run_reattaches_extends_and_stops_the_same_application() {
    let mut guarded = guarded("reattach", Duration::from_secs(3));
    let app = guarded.apps()[0];
    guarded.lose_daemon();
    let mut later = slot_in(&guarded.runtime());
    let held = later.attach(12).expect("the guard the earlier run started");
    assert_eq!((held.token, held.incarnation), (TOKEN, FIRST_INCARNATION));
    assert!(held.deadline > boot_clock(), "the lease still holds");
    later.extend(boot_clock() + Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        later.state(),
        GuardState::Running,
        "past the first deadline"
    );
    assert_eq!(
        guarded.apps(),
        [app],
        "the same application, never restarted"
    );
    // The guard now answers to the later run: a third run sees its incarnation.
    drop(later);
    std::thread::sleep(Duration::from_millis(300));
    let mut third = slot_in(&guarded.runtime());
    assert_eq!(third.attach(13).map(|held| held.incarnation), Some(12));
    third.stop(Duration::ZERO);
    assert!(guarded.apps().is_empty(), "stop returns once it is gone");
    assert_eq!(third.state(), GuardState::Idle);
}

#[test]
fn a_reattached_guard_reports_the_fence() {
    let mut guarded = guarded("reattach-fence", Duration::from_secs(2));
    guarded.lose_daemon();
    let mut later = slot_in(&guarded.runtime());
    later.attach(12).expect("the guard the earlier run started");
    guarded.slot = later;
    guarded.wait_for_state(GuardState::Fenced, Duration::from_secs(5));
    assert!(guarded.apps().is_empty());
}

#[test]
fn a_guard_started_with_another_secret_is_refused_and_left_alone() {
    let mut guarded = guarded("other-secret", Duration::from_secs(30));
    let app = guarded.apps()[0];
    guarded.lose_daemon();
    let state = guarded.runtime().join("guard.state");
    let written = fs::read_to_string(&state).unwrap();
    let (process, _secret) = written.rsplit_once(" secret=").unwrap();
    fs::write(&state, format!("{process} secret=1\n")).unwrap();
    let mut later = slot_in(&guarded.runtime());
    assert_eq!(later.attach(12), None);
    assert_eq!(later.state(), GuardState::Idle, "nothing attached");
    assert_eq!(guarded.apps(), [app], "the refused guard is left alone");
}

#[test]
fn a_socket_served_by_another_process_than_the_one_in_the_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    // A listener of this user, in this test process, that knows everything a guard says, with a
    // state file naming this PID and that secret but another start time: a process that reused
    // the PID of the guard the earlier run started.
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let started: u64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let started = started + 1;
    let pid = std::process::id();
    fs::write(
        runtime.join("guard.state"),
        format!("pid={pid} start={started} secret=5\n"),
    )
    .unwrap();
    let listener = UnixListener::bind(runtime.join("guard.socket")).unwrap();
    let deadline = (boot_clock() + Duration::from_secs(30)).as_nanos();
    let impostor = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        writeln!(
            stream,
            "guard token=7 incarnation=11 deadline={deadline} secret=5"
        )
        .unwrap();
        let mut reply = String::new();
        let _ = BufReader::new(stream).read_line(&mut reply);
        reply
    });
    let mut later = slot_in(&runtime);
    assert_eq!(later.attach(12), None);
    assert_eq!(impostor.join().unwrap(), "", "it was given no order");
}

#[test]
fn an_orphaned_guard_stops_its_application_when_its_socket_goes() {
    let mut guarded = guarded("socket-gone", Duration::from_secs(60));
    guarded.lose_daemon();
    assert_eq!(guarded.apps().len(), 1);
    // systemd removes the runtime directory on a real stop, not on a restart.
    fs::remove_dir_all(guarded.runtime()).unwrap();
    support::wait_until(
        "the application to be stopped long before its deadline",
        Duration::from_secs(10),
        || guarded.apps().is_empty(),
    );
}

/// How the application starts its work, a process whose command line carries `work-MARKER`.
#[derive(Clone, Copy, Debug)]
enum Tree {
    /// `work & wait`, as most start scripts do without `exec`.
    Child,
    /// The work double-forked: its parent exits at once, so it is an orphan from the start.
    DoubleFork,
    /// The work in a session of its own (setsid), out of the application's process group.
    Setsid,
    /// Script and work both ignore SIGTERM.
    IgnoresTerm,
}

/// The start script: the work records itself for the oracle (`start HOST PID UPTIME`) and
/// loops; the script keeps running as the application's first process.
const TREE_SCRIPT: &str = r#"#!/bin/sh
# $1: the marker, $2: how to start the work, $3: the host.
work='read -r up _ < /proc/uptime; echo "start $1 $$ $up" >> "$APP_EVENTS"; trap "" TERM; while :; do sleep 0.1; done'
case $2 in
Child) sh -c "$work" "work-$1" "$3" & wait ;;
DoubleFork) ( sh -c "$work" "work-$1" "$3" & ) ; while :; do sleep 1; done ;;
Setsid) setsid sh -c "$work" "work-$1" "$3" & while :; do sleep 1; done ;;
IgnoresTerm) trap '' TERM; sh -c "$work" "work-$1" "$3" & while :; do sleep 1; done ;;
esac
"#;

/// One safe node whose application is `TREE_SCRIPT`, and an oracle watching its work.
struct TreeNode {
    oracle: Oracle,
    node: Node,
    work_marker: String,
    _root: tempfile::TempDir,
}

impl TreeNode {
    fn start(tree: Tree) -> TreeNode {
        let root = tempfile::tempdir().unwrap();
        let marker = support::unique_marker(&format!("tree-{tree:?}"));
        let mut node = support::node_in(root.path(), "nodeA", &marker, 5, 1);
        let script = node.dir.join("tree.sh");
        fs::write(&script, TREE_SCRIPT).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        node.set_variable("hacmpProfile", "safe");
        // The pattern matches the script only: ending the work is the containment's job alone.
        node.set_variable("pgrepProgramName", &format!("tree\\.sh {marker} "));
        node.set_variable("startCmd", &format!("./tree.sh {marker} {tree:?} nodeA"));
        let events = root.path().join("app-events");
        node.set_env("APP_EVENTS", events.to_str().unwrap());
        let work_marker = format!("work-{marker}");
        let oracle = Oracle::start(&events, &work_marker);
        node.start(Daemon::Hacmp);
        TreeNode {
            oracle,
            node,
            work_marker,
            _root: root,
        }
    }

    fn wait_for_work(&self, count: usize) {
        support::wait_until("the work to start", Duration::from_secs(60), || {
            self.oracle.instances().len() >= count && self.oracle.running().len() == 1
        });
    }

    fn work_pids(&self) -> Vec<u32> {
        support::processes_containing(&self.work_marker)
    }
}

impl Drop for TreeNode {
    fn drop(&mut self) {
        self.node.kill_daemon();
        support::kill_processes_containing(&self.work_marker);
    }
}

/// The guard SIGKILLed under `tree`: the daemon reports the fence only once nothing of the old
/// tree is left, and the work starts again only after that, never two copies at once.
fn a_killed_guard_takes_the_whole_tree(tree: Tree) {
    let running = TreeNode::start(tree);
    running.wait_for_work(1);
    let first = running.oracle.running()[0].clone();
    let guard = support::guard_of(running.node.daemon_pid()).expect("the guard runs");
    let killed_at = boot_clock();
    // SAFETY: kill has no memory effects; the PID is the guard of this test's daemon.
    unsafe { libc::kill(guard as libc::pid_t, libc::SIGKILL) };
    let fenced = "the guard died: killed the application's whole process tree, giving up the lease";
    support::wait_until("the daemon to fence", Duration::from_secs(30), || {
        running.node.output_contains(fenced)
    });
    assert!(
        running.work_pids().is_empty(),
        "{tree:?}: nothing of the old tree is left when the daemon reports the fence:\n{}",
        running.oracle.timeline()
    );
    running.wait_for_work(2);
    let instances = running.oracle.instances();
    let ended = instances[0].ended.expect("the first work ended");
    assert_eq!(instances[0].pid, first.pid);
    assert!(
        ended < killed_at + Duration::from_secs(3),
        "{tree:?}: the old work outlived its guard by {:?}",
        ended.saturating_sub(killed_at)
    );
    assert!(
        instances[1].started >= ended,
        "{tree:?}: the next start came only after the old tree was gone:\n{}",
        running.oracle.timeline()
    );
    assert_eq!(running.oracle.overlap(), Duration::ZERO, "never two copies");
    let errors = running.node.errors();
    assert!(
        errors.contains("hacmp: containment: "),
        "the start-up line says which containment is in force: {errors}"
    );
}

#[test]
fn a_killed_guard_takes_work_run_as_a_child() {
    a_killed_guard_takes_the_whole_tree(Tree::Child);
}

#[test]
fn a_killed_guard_takes_a_double_forked_daemon() {
    a_killed_guard_takes_the_whole_tree(Tree::DoubleFork);
}

#[test]
fn a_killed_guard_takes_a_setsid_daemon() {
    a_killed_guard_takes_the_whole_tree(Tree::Setsid);
}

#[test]
fn a_killed_guard_takes_work_that_ignores_sigterm() {
    a_killed_guard_takes_the_whole_tree(Tree::IgnoresTerm);
}

/// The daemon and the guard SIGKILLed at the same moment: the application's tree has nobody
/// left to end it but the next run of the daemon, which ends it before anything else.
#[test]
fn a_daemon_killed_with_its_guard_ends_the_orphaned_tree_at_its_next_start() {
    let mut running = TreeNode::start(Tree::DoubleFork);
    running.wait_for_work(1);
    let guard = support::guard_of(running.node.daemon_pid()).expect("the guard runs");
    let daemon = running.node.daemon_pid();
    // SAFETY: kill has no memory effects; both PIDs are this test's daemon and its guard.
    unsafe {
        libc::kill(daemon as libc::pid_t, libc::SIGKILL);
        libc::kill(guard as libc::pid_t, libc::SIGKILL);
    }
    running.node.kill_daemon();
    let orphaned = running.work_pids();
    running.node.start(Daemon::Hacmp);
    support::wait_until(
        "the next run to end the orphans",
        Duration::from_secs(30),
        || {
            orphaned
                .iter()
                .all(|pid| !running.work_pids().contains(pid))
        },
    );
    running.wait_for_work(2);
    let instances = running.oracle.instances();
    assert!(
        instances[1].started >= instances[0].ended.expect("the orphan ended"),
        "the next start came only after the orphaned tree was gone:\n{}",
        running.oracle.timeline()
    );
    assert_eq!(running.oracle.overlap(), Duration::ZERO, "never two copies");
}

/// `hacmp check` says which containment a safe daemon started like it would have; the compat
/// profile has no guard and no such line.
#[test]
fn check_names_the_containment_in_the_safe_profile_only() {
    let root = tempfile::tempdir().unwrap();
    let node = support::node_in(root.path(), "nodeA", &support::unique_marker("check"), 5, 1);
    let check = |profile: &str| {
        let variables: String = node
            .vars
            .assignments()
            .into_iter()
            .chain([("hacmpProfile", profile.to_string())])
            .map(|(name, value)| format!("{name}='{value}'\n"))
            .collect();
        fs::write(node.dir.join("heartbeat.vars"), variables).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hacmp"))
            .args(["check", "heartbeat.vars"])
            .current_dir(&node.dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let line = "containment of a daemon started like this command: ";
    let safe = check("safe");
    let named = safe
        .lines()
        .find_map(|shown| shown.strip_prefix(line))
        .unwrap_or_else(|| panic!("no containment line: {safe}"));
    let expected = Containment::plan(node.dir.join("app.log").to_str().unwrap()).describe();
    assert_eq!(named, expected);
    assert!(!check("compat").contains(line));
}
