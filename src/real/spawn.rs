//! `nohup $startCmd > $startCmdLogFile 2>&1 &` as a non-interactive bash runs it.
//!
//! bash forks, opens the log (truncating it) as the child's stdout and stderr, gives the
//! asynchronous command /dev/null as stdin because job control is off, ignores SIGINT and SIGQUIT
//! in it for the same reason, and runs nohup, which ignores SIGHUP and execvp's the words of
//! `$startCmd`. The child stays in our process group and session. bash never learns whether the
//! command ran; nohup's complaint, if any, lands in the log.
//!
//! The child is started through duct, which sets its stdin, stdout and stderr (two descriptors
//! of one open log, as `2>&1` makes them) and its environment, and waits for it.
//!
//! Not through duct, each for a reason (the standard library's `pre_exec`, reached through
//! duct's `before_spawn` hook, runs it in the child between fork and exec):
//! - the signal dispositions and mask (nohup ignores SIGHUP, bash SIGINT and SIGQUIT, all else
//!   default): duct has no setting for them, and they must be set in the child, since setting
//!   them in the daemon would change the daemon's own;
//! - for the guard, the process group of its own, PR_SET_PDEATHSIG with the check that the
//!   guard still lives, and its confinement (its cgroup, its OOM score): duct has no setting for
//!   any of them, and each is a call the child makes about itself.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::thread::JoinHandle;

use duct::Handle;

use super::ToolError;
use super::containment::Confinement;
use super::files::{describe, quote};
use crate::words;

/// More started commands still running than a sane configuration produces; we refuse to start
/// another rather than accumulate threads without bound.
pub const MAX_RUNNING_CHILDREN: usize = 256;

/// The children we started. Each is waited for by a thread of its own so that it never lingers
/// as a zombie, which a pgrep-based liveness check would otherwise count as running.
#[derive(Default)]
pub struct Children {
    reapers: Vec<JoinHandle<()>>,
}

impl Children {
    pub fn start_detached(&mut self, command: &str, log_file: &str) -> Result<(), ToolError> {
        self.reapers.retain(|reaper| !reaper.is_finished());
        if self.reapers.len() >= MAX_RUNNING_CHILDREN {
            return Err(ToolError(format!(
                "hacmp: {MAX_RUNNING_CHILDREN} started commands are still running; not starting another"
            )));
        }
        if let Some(child) = start(command, log_file, None)? {
            self.watch(child);
        }
        Ok(())
    }

    fn watch(&mut self, child: Handle) {
        let pid = child.pids()[0];
        let reaper = std::thread::Builder::new()
            .name(format!("reaper-{pid}"))
            .spawn(move || {
                // Nobody looks at the status, as bash never does for `&`.
                let _ = child.wait();
            });
        // A reaper thread that could not be created dropped the handle with its closure; duct
        // keeps a dropped running child and reaps it when it starts the next one.
        if let Ok(reaper) = reaper {
            self.reapers.push(reaper);
        }
    }
}

/// Starts the application for the safe profile's guard: as nohup would, but in a process group
/// of its own and confined as `confinement` says (in its cgroup), so that the guard can kill all
/// of it, and killed by the kernel when the guard dies. The fencing token reaches it as
/// HACMP_FENCING_TOKEN. `None` when nohup would have failed (its complaint is in the log).
pub fn start_guarded(
    command: &str,
    log_file: &str,
    token: u64,
    confinement: Confinement,
) -> Result<Option<Handle>, ToolError> {
    start(command, log_file, Some((token, confinement)))
}

/// `nohup $command > $log_file 2>&1`, guarded or not; `None` when the command could not run.
fn start(
    command: &str,
    log_file: &str,
    guarded: Option<(u64, Confinement)>,
) -> Result<Option<Handle>, ToolError> {
    let log = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o666)
        .open(log_file)
        .map_err(|e| ToolError(format!("hacmp: {log_file}: {}", describe(&e))))?;
    let mut argv = words::expand_unquoted(command);
    // nohup takes a leading "--" as the end of its (absent) options.
    if argv.first().is_some_and(|word| word == "--") {
        argv.remove(0);
    }
    let Some((program, arguments)) = argv.split_first() else {
        write_to_log(
            &log,
            "nohup: missing operand\nTry 'nohup --help' for more information.\n",
        );
        return Ok(None);
    };
    match spawn_like_nohup(program, arguments, &log, guarded) {
        Ok(child) => Ok(Some(child)),
        Err(error) => {
            write_to_log(
                &log,
                &format!(
                    "nohup: failed to run command {}: {}\n",
                    quote(program),
                    describe(&error)
                ),
            );
            Ok(None)
        }
    }
}

/// Runs `program` as nohup would run it from bash's asynchronous child. Setting `pre_exec` also
/// makes the standard library fork and call execvp, which searches PATH and hands a script
/// without `#!` to /bin/sh, instead of posix_spawnp, which does not.
fn spawn_like_nohup(
    program: &str,
    arguments: &[String],
    log: &File,
    guarded: Option<(u64, Confinement)>,
) -> io::Result<Handle> {
    let mut expression = duct::cmd(program, arguments)
        .stdin_null()
        // Two descriptors of the one open log, as `> log 2>&1` makes them: they share the
        // file offset, so neither overwrites what the other wrote.
        .stdout_file(log.try_clone()?)
        .stderr_file(log.try_clone()?)
        // systemd's notification socket and watchdog belong to the daemon's conversation with
        // its service manager; an application that speaks the protocol itself must not report
        // as if it were the service.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        // The status is the reaper's or the guard's to read; an exit status other than 0 is
        // not an error of starting.
        .unchecked();
    if let Some((token, confinement)) = guarded {
        let guard = std::process::id() as libc::pid_t;
        expression = expression
            .env("HACMP_FENCING_TOKEN", token.to_string())
            .before_spawn(move |command| {
                // SAFETY: guard_child makes only async-signal-safe calls and allocates nothing.
                unsafe { command.pre_exec(move || guard_child(guard, confinement)) };
                Ok(())
            });
    }
    expression
        .before_spawn(|command: &mut Command| {
            // SAFETY: the hook only makes async-signal-safe calls (rt_sigaction, sigprocmask).
            unsafe { command.pre_exec(set_signal_dispositions) };
            Ok(())
        })
        .start()
}

/// In the guard's child: its confinement, a process group of its own, and SIGKILL when the guard
/// dies.
fn guard_child(guard: libc::pid_t, confinement: Confinement) -> io::Result<()> {
    confinement.enter()?;
    // SAFETY: setpgid, prctl, getppid and _exit are async-signal-safe and touch no memory of
    // ours.
    unsafe {
        if libc::setpgid(0, 0) != 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(io::Error::last_os_error());
        }
        // A guard that died before prctl took effect sent no signal: do not run.
        if libc::getppid() != guard {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// Ignores SIGHUP (nohup), SIGINT and SIGQUIT (bash, for `&` without job control); everything
/// else default and nothing blocked, whatever we inherited or installed ourselves.
fn set_signal_dispositions() -> io::Result<()> {
    for signal in 1..=libc::SIGRTMAX() {
        let disposition = match signal {
            libc::SIGHUP | libc::SIGINT | libc::SIGQUIT => libc::SIG_IGN,
            _ => libc::SIG_DFL,
        };
        set_disposition(signal, disposition);
    }
    // SAFETY: the set is initialised by sigemptyset before use.
    unsafe {
        let mut empty = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The kernel's layout of `struct sigaction` for rt_sigaction on Linux.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Sets a disposition by system call: the C library refuses the two real-time signals it keeps
/// for itself, but an ignored one inherited from our parent must not reach the child either.
fn set_disposition(signal: libc::c_int, disposition: libc::sighandler_t) {
    let action = KernelSigaction {
        handler: disposition,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SIGKILL and SIGSTOP refuse; that is expected and harmless.
    // SAFETY: rt_sigaction reads a valid struct of the size passed; no old action is requested.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        )
    };
}

/// Writes nohup's complaint where nohup's stderr would have been: the log.
fn write_to_log(mut log: &File, text: &str) {
    // A full disk loses the line, as it would lose nohup's.
    let _ = log.write_all(text.as_bytes());
}
