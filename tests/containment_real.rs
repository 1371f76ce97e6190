//! The subreaper containment on real processes, where no cgroup is used: the daemon's side and
//! the guard's, with an application that double-forks out of its process group. This test
//! process plays the daemon and so becomes a child subreaper itself, which is why it is a test
//! binary of its own: orphans of other tests must not come to it.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use hacmp::real::containment::{self, Containment};
use hacmp::real::guard::{GuardSlot, boot_clock};
use hacmp::world::GuardState;

/// A double-forked application under a guard that contains it by subreapers only, on this
/// test process as its daemon.
struct Contained {
    /// Where the application and its log live, removed last.
    _dir: tempfile::TempDir,
    marker: String,
    slot: GuardSlot,
}

impl Contained {
    fn start(label: &str, deadline: Duration) -> Contained {
        containment::become_subreaper().unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::copy(
            support::example_app(),
            dir.path().join("exampleApplication.sh"),
        )
        .unwrap();
        let script = dir.path().join("start.sh");
        fs::write(&script, support::DOUBLE_FORKING_START).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let marker = support::unique_marker(label);
        let mut slot = GuardSlot::new(
            PathBuf::from(env!("CARGO_BIN_EXE_hacmp")),
            None,
            Containment::Subreaper("no cgroup, as this test chose".to_string()),
            None,
        );
        // The start script runs from the test's directory, where its application lives.
        std::env::set_current_dir(dir.path()).unwrap();
        let log = dir.path().join("app.log");
        assert!(slot.start(
            &format!("./start.sh {marker}"),
            log.to_str().unwrap(),
            boot_clock() + deadline,
            1,
            1
        ));
        let contained = Contained {
            _dir: dir,
            marker,
            slot,
        };
        support::wait_until("the application", Duration::from_secs(10), || {
            !contained.apps().is_empty()
        });
        contained
    }

    fn app_command(&self) -> String {
        format!("exampleApplication.sh {}", self.marker)
    }

    fn apps(&self) -> Vec<u32> {
        support::processes_containing(&self.app_command())
    }

    fn wait_for_state(&mut self, wanted: GuardState) {
        support::wait_until(&format!("{wanted:?}"), Duration::from_secs(10), || {
            self.slot.state() == wanted
        });
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        self.slot.stop(Duration::ZERO);
        support::kill_processes_containing(&self.app_command());
    }
}

/// One test, so that the steps never run at once in this one process: a killed guard's
/// orphaned application goes with the daemon's fence; a stop and the deadline take the whole
/// tree through the guard's own walk of its descendants.
#[test]
fn without_a_cgroup_the_subreapers_hold_the_whole_tree() {
    let mut lost = Contained::start("subreaper-lost", Duration::from_secs(60));
    let app = lost.apps()[0];
    let guard = lost.slot.guard_pid().unwrap();
    // SAFETY: kill has no memory effects; the PID is our own child's.
    unsafe { libc::kill(guard as libc::pid_t, libc::SIGKILL) };
    lost.wait_for_state(GuardState::Lost);
    assert!(
        !lost.apps().contains(&app),
        "the orphaned application is gone when the guard is reported lost"
    );
    drop(lost);

    let mut stopped = Contained::start("subreaper-stop", Duration::from_secs(60));
    stopped.slot.stop(Duration::from_secs(2));
    assert!(
        stopped.apps().is_empty(),
        "stop returns once the tree is gone"
    );
    assert_eq!(stopped.slot.state(), GuardState::Idle);
    drop(stopped);

    let mut fenced = Contained::start("subreaper-fence", Duration::from_secs(2));
    fenced.wait_for_state(GuardState::Fenced);
    assert!(
        fenced.apps().is_empty(),
        "the deadline takes the whole tree"
    );
}
