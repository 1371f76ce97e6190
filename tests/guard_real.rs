//! The safe profile's guard on real processes: it kills the application when the deadline
//! passes, keeps it while extended, stops it on request, keeps the deadline when the daemon's
//! end of the pipe closes, and the application dies with the guard. A later run of the daemon
//! reattaches to it through the runtime directory, and only to a guard proven to be the one
//! the earlier run started.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hacmp::pattern::Pattern;
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
    GuardSlot::new(
        PathBuf::from(env!("CARGO_BIN_EXE_hacmp")),
        Some(runtime.to_path_buf()),
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
        for pid in self.apps() {
            // SAFETY: kill has no memory effects; the PID carries this test's marker.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
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
fn a_socket_served_by_another_program_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    // A listener of this user, in this test process (not the hacmp executable), that knows
    // everything a guard says, with a state file naming this process and that secret.
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let started = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
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
