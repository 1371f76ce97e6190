//! The safe profile's guard on real processes: it kills the application when the deadline
//! passes, keeps it while extended, stops it on request, keeps the deadline when the daemon's
//! end of the pipe closes, and the application dies with the guard.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hacmp::pattern::Pattern;
use hacmp::real::guard::{GuardSlot, boot_clock};
use hacmp::real::processes;
use hacmp::world::GuardState;

struct Guarded {
    _dir: tempfile::TempDir,
    marker: String,
    slot: GuardSlot,
}

/// Starts the example application under a guard whose deadline is `deadline` from now.
fn guarded(label: &str, deadline: Duration) -> Guarded {
    let dir = tempfile::tempdir().unwrap();
    let marker = support::unique_marker(label);
    let command = format!("{} {marker}", support::example_app().display());
    let log = dir.path().join("app.log");
    let mut slot = GuardSlot::new(PathBuf::from(env!("CARGO_BIN_EXE_hacmp")));
    assert!(slot.start(&command, log.to_str().unwrap(), boot_clock() + deadline, 7));
    let guarded = Guarded {
        _dir: dir,
        marker,
        slot,
    };
    support::wait_until("the application", Duration::from_secs(5), || {
        !guarded.apps().is_empty()
    });
    guarded
}

impl Guarded {
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
    let slot = std::mem::replace(
        &mut orphan.slot,
        GuardSlot::new(PathBuf::from("/nonexistent")),
    );
    // Dropping the daemon's handle closes the guard's stdin, as the daemon's death would.
    drop(slot);
    std::thread::sleep(Duration::from_secs(1));
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
