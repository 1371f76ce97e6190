//! `nohup $startCmd > $startCmdLogFile 2>&1 &` as a non-interactive bash runs it.
//!
//! bash forks, opens the log (truncating it) as the child's stdout and stderr, gives the
//! asynchronous command /dev/null as stdin because job control is off, ignores SIGINT and SIGQUIT
//! in it for the same reason, and runs nohup, which ignores SIGHUP and execvp's the words of
//! `$startCmd`. The child stays in our process group and session. bash never learns whether the
//! command ran; nohup's complaint, if any, lands in the log.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use super::ToolError;
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
    /// Children whose reaper thread could not be created; polled on every start instead.
    unwatched: Vec<u32>,
}

impl Children {
    pub fn start_detached(&mut self, command: &str, log_file: &str) -> Result<(), ToolError> {
        self.forget_finished();
        if self.reapers.len() + self.unwatched.len() >= MAX_RUNNING_CHILDREN {
            return Err(ToolError(format!(
                "hacmp: {MAX_RUNNING_CHILDREN} started commands are still running; not starting another"
            )));
        }
        if let Some(child) = start(command, log_file, None)? {
            self.watch(child);
        }
        Ok(())
    }

    fn watch(&mut self, mut child: Child) {
        let pid = child.id();
        let reaper = std::thread::Builder::new()
            .name(format!("reaper-{pid}"))
            .spawn(move || {
                // Nobody looks at the status, as bash never does for `&`.
                let _ = child.wait();
            });
        match reaper {
            Ok(reaper) => self.reapers.push(reaper),
            // The child went down with the closure that could not run; it is reaped by its PID
            // on later calls instead.
            Err(_) => self.unwatched.push(pid),
        }
    }

    fn forget_finished(&mut self) {
        self.reapers.retain(|reaper| !reaper.is_finished());
        self.unwatched.retain(|&pid| !reap_if_exited(pid));
    }
}

/// Starts the application for the safe profile's guard: as nohup would, but in a process group
/// of its own, so that the guard can kill all of it, and killed by the kernel when the guard
/// dies, so that it never outlives the lease the guard enforces. The fencing token reaches it as
/// HACMP_FENCING_TOKEN. `None` when nohup would have failed (its complaint is in the log).
pub fn start_guarded(
    command: &str,
    log_file: &str,
    token: u64,
) -> Result<Option<Child>, ToolError> {
    start(command, log_file, Some(token))
}

/// `nohup $command > $log_file 2>&1`, guarded or not; `None` when the command could not run.
fn start(
    command: &str,
    log_file: &str,
    guard_token: Option<u64>,
) -> Result<Option<Child>, ToolError> {
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
    match spawn_like_nohup(program, arguments, &log, guard_token) {
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

/// waitpid without blocking; true once the child is gone (reaped now or unknown to the kernel).
fn reap_if_exited(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    let mut status = 0;
    // SAFETY: `status` is a valid place for the kernel to write into.
    let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    reaped != 0
}

/// Runs `program` as nohup would run it from bash's asynchronous child. Setting `pre_exec` also
/// makes the standard library fork and call execvp, which searches PATH and hands a script
/// without `#!` to /bin/sh, instead of posix_spawnp, which does not.
fn spawn_like_nohup(
    program: &str,
    arguments: &[String],
    log: &File,
    guard_token: Option<u64>,
) -> io::Result<Child> {
    let mut command = Command::new(program);
    command
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?);
    if let Some(token) = guard_token {
        command.env("HACMP_FENCING_TOKEN", token.to_string());
        let guard = std::process::id() as libc::pid_t;
        // SAFETY: setpgid, prctl, getppid and _exit are async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                if libc::setpgid(0, 0) != 0
                    || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // A guard that died before prctl took effect sent no signal: do not run.
                if libc::getppid() != guard {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    // SAFETY: the hook only makes async-signal-safe calls (rt_sigaction, sigprocmask).
    unsafe {
        command.pre_exec(set_signal_dispositions);
    }
    command.spawn()
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
