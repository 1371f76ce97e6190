//! The processes the benchmark starts, and the guarantee that it ends each of them by PID.
//!
//! Three layers: every process the benchmark spawns itself dies with it (the kernel's parent
//! death signal), so even a SIGKILL of the benchmark leaves nothing behind; SIGINT, SIGTERM and
//! SIGHUP are trapped and turned into a panic at the next check, so that the owners' `Drop`
//! implementations end everything by PID; and the benchmark is a child subreaper, so that the
//! daemons' orphans (bash's `sleep 30`, say, when bash is killed) come back to it and are ended
//! by PID too.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};

/// How many children `end_orphans` ends at most; far above what a run starts.
const MAX_ORPHANS: usize = 100_000;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Traps the signals that interrupt a run, and makes this process the reaper of its orphaned
/// descendants. Called once, first thing.
pub fn take_ownership() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let previous =
            unsafe { libc::signal(signal, note_interrupt as *const () as libc::sighandler_t) };
        assert_ne!(previous, libc::SIG_ERR, "cannot trap signal {signal}");
    }
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer and touches no memory.
    let set = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(set, 0, "cannot become a child subreaper");
}

/// Panics (and so unwinds through every owner's `Drop`) when the run was interrupted.
pub fn check_interrupted() {
    assert!(
        !INTERRUPTED.load(Ordering::SeqCst),
        "interrupted: every process started is being ended"
    );
}

/// Starts `command` tied to this process: the kernel sends it SIGKILL when the benchmark dies.
/// Spawn only from the main thread: the tie is to the thread that spawns.
pub fn spawn_tied(command: &mut Command) -> io::Result<Child> {
    // SAFETY: the closure runs between fork and exec and calls only prctl, which is
    // async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Children that are ended with SIGKILL and reaped when dropped, also on a panic.
#[derive(Default)]
pub struct Owned(Vec<Child>);

impl Owned {
    pub fn push(&mut self, child: Child) {
        self.0.push(child);
    }

    pub fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // The PID is our own unreaped child's, so it cannot have been reused.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Ends and reaps every child this process still has: as a subreaper, those are the daemons'
/// orphans, descendants of what the benchmark started. Call it only when every `Child` handle
/// has been waited for.
pub fn end_orphans() {
    let own = std::process::id();
    for pid in children_of(own).into_iter().take(MAX_ORPHANS) {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // SAFETY: kill and waitpid touch no memory of ours; the PID is our unreaped child's.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The PIDs whose parent is `parent`, from /proc/PID/stat.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(parent))
        .collect()
}

/// The fourth field of /proc/PID/stat; the command name before it may hold spaces and ')'.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}
