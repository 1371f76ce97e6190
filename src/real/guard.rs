//! The guard: a small process, separate from the daemon, that owns the application in the safe
//! profile and kills it when the daemon's lease runs out.
//!
//! A daemon that is paused (SIGSTOP), dead, or stuck on a hung mount cannot stop its own
//! application; the guard can, because it shares none of that fate. The daemon starts it as
//! `hacmp guard` and talks to it over its stdin:
//!
//! - `extend NANOS`: the new deadline, on the boot clock (CLOCK_BOOTTIME, the same for every
//!   process of the host); deadlines only ever move later.
//! - `stop MILLIS`: SIGTERM to the application's process group, SIGKILL after MILLIS.
//!
//! When the deadline passes, the guard sends SIGKILL to the application's whole process group.
//! When the daemon's end of the pipe closes, the guard keeps the last deadline. The application
//! is killed by the kernel if the guard itself dies (PR_SET_PDEATHSIG). The guard's exit status
//! tells the daemon how the application ended. The command, log and first deadline come in the
//! environment, so that nothing of startCmd shows on the guard's command line, where
//! pgrepProgramName could match it.
//!
//! Restart without failover: when `$RUNTIME_DIRECTORY` is a directory only the daemon's user
//! can enter (mode 0700, its owner), the guard listens on `guard.socket` there, and the daemon
//! writes `guard.state` beside it: the guard's PID, its start time and a secret it gave the
//! guard. While no daemon answers for it, the guard accepts one connection from a process of its
//! own user and says what it holds (`guard token=T incarnation=I deadline=NANOS secret=S`); the
//! daemon's later run proves it is the guard its earlier run started (`GuardSlot::attach`) and
//! then orders it over that connection (`attach INCARNATION` with the first `extend`, `stop`),
//! and the guard answers how the application ended (`end fenced|exited|stopped`). When the
//! socket disappears while no daemon answers for it (systemd removes the runtime directory on a
//! real stop, keeps it on a restart), no daemon can ever attach, and the guard stops the
//! application at once. `reattach.rs` holds the socket, the state file and the proof.

mod reattach;

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use duct::Handle;

use super::spawn;
use crate::timing::GRACEFUL_KILL;
use crate::world::{GuardState, HeldLease};
pub use reattach::runtime_directory;
pub(crate) use reattach::start_time;
use reattach::{
    Listener, SOCKET_NAME, STATE_NAME, attached_end, peer_credentials, prove, safe_directory,
    wait_readable, write_state,
};

const COMMAND_VARIABLE: &str = "HACMP_GUARD_COMMAND";
const LOG_VARIABLE: &str = "HACMP_GUARD_LOG";
const DEADLINE_VARIABLE: &str = "HACMP_GUARD_DEADLINE";
const TOKEN_VARIABLE: &str = "HACMP_GUARD_TOKEN";
const INCARNATION_VARIABLE: &str = "HACMP_GUARD_INCARNATION";
const SECRET_VARIABLE: &str = "HACMP_GUARD_SECRET";
const SOCKET_VARIABLE: &str = "HACMP_GUARD_SOCKET";

/// Exit statuses of `hacmp guard`.
const EXITED: i32 = 0;
const NOT_STARTED: i32 = 2;
const FENCED: i32 = 3;
const STOPPED: i32 = 4;

/// How often the guard looks whether the application has ended. The deadline itself is kept to
/// the millisecond: the wait before it is shortened to end exactly there.
const POLL: Duration = Duration::from_millis(100);

/// The boot clock: time since boot, including time suspended; it never jumps.
pub fn boot_clock() -> Duration {
    read_clock(libc::CLOCK_BOOTTIME)
}

/// A clock of the kernel's (clock_gettime), as a duration since its start.
pub fn read_clock(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the valid timespec.
    let status = unsafe { libc::clock_gettime(clock, &mut now) };
    assert_eq!(status, 0, "clock {clock} is readable on Linux");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// How the daemon reaches its guard.
enum Link {
    /// A guard this run started: its child process and the pipe to its stdin.
    Child(Child, ChildStdin),
    /// A guard an earlier run started, reached over its socket.
    Attached(BufReader<UnixStream>),
}

/// The daemon's handle on its guard.
pub struct GuardSlot {
    /// The hacmp executable, which runs the guard as `hacmp guard`.
    program: PathBuf,
    /// Where the guard listens for a later run of the daemon (`runtime_directory`), if anywhere.
    runtime: Option<PathBuf>,
    running: Option<Link>,
    /// This run's incarnation, for an attached guard to keep from the first extension on: that
    /// comes after this run's first confirmed write, so the store shows it by then.
    adopting: Option<u64>,
}

impl GuardSlot {
    pub fn new(program: PathBuf, runtime: Option<PathBuf>) -> GuardSlot {
        GuardSlot {
            program,
            runtime,
            running: None,
            adopting: None,
        }
    }

    /// Starts a guard that starts the application; false when the deadline has passed or the
    /// guard could not be started (the reason is printed).
    pub fn start(
        &mut self,
        command: &str,
        log_file: &str,
        deadline: Duration,
        token: u64,
        incarnation: u64,
    ) -> bool {
        assert!(self.running.is_none(), "one guarded application at a time");
        if boot_clock() >= deadline {
            return false;
        }
        let secret = super::random_u64();
        let runtime = self
            .runtime
            .as_deref()
            .and_then(|dir| safe_directory(dir).ok());
        let mut guard = Command::new(&self.program);
        guard
            .arg("guard")
            .env(COMMAND_VARIABLE, command)
            .env(LOG_VARIABLE, log_file)
            .env(DEADLINE_VARIABLE, deadline.as_nanos().to_string())
            .env(TOKEN_VARIABLE, token.to_string())
            .env(INCARNATION_VARIABLE, incarnation.to_string())
            .env(SECRET_VARIABLE, secret.to_string())
            // The guard is no service of systemd's; see spawn.rs.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::piped());
        if let Some(runtime) = &runtime {
            guard.env(SOCKET_VARIABLE, runtime.join(SOCKET_NAME));
        }
        match guard.spawn() {
            Ok(mut child) => {
                if let Some(runtime) = &runtime
                    && let Err(error) = write_state(runtime, child.id(), secret)
                {
                    // The guard still guards; only a later run cannot prove it ours.
                    eprintln!("hacmp: {}: {error}", runtime.join(STATE_NAME).display());
                }
                let stdin = child.stdin.take().expect("stdin was piped");
                self.running = Some(Link::Child(child, stdin));
                true
            }
            Err(error) => {
                eprintln!("hacmp: cannot start the guard: {error}");
                false
            }
        }
    }

    /// Finds the guard an earlier run of the daemon left running in the runtime directory,
    /// proves that run started it (`prove`), and takes it over; the guard keeps `incarnation`
    /// from the first extension on. `None`, after printing why when there is something to say,
    /// when there is none or it is not proven ours: that one is left alone.
    pub fn attach(&mut self, incarnation: u64) -> Option<HeldLease> {
        assert!(self.running.is_none(), "attaching happens once, at start");
        let runtime = match safe_directory(self.runtime.as_deref()?) {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("hacmp: {error}; a restart cannot reattach to the application");
                return None;
            }
        };
        let socket = runtime.join(SOCKET_NAME);
        let stream = match UnixStream::connect(&socket) {
            Ok(stream) => stream,
            // No guard listens: none was left running, or it died and left its socket behind.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                let _ = fs::remove_file(&socket);
                return None;
            }
            Err(error) => {
                eprintln!("hacmp: {}: {error}", socket.display());
                return None;
            }
        };
        match prove(&self.program, &runtime, stream) {
            Ok((stream, held)) => {
                self.running = Some(Link::Attached(stream));
                self.adopting = Some(incarnation);
                Some(held)
            }
            Err(why) => {
                eprintln!(
                    "hacmp: {}: not the guard this daemon started ({why}); leaving it alone",
                    socket.display()
                );
                None
            }
        }
    }

    /// The guard's PID while it runs, for diagnostics.
    pub fn guard_pid(&self) -> Option<u32> {
        match &self.running {
            Some(Link::Child(child, _)) => Some(child.id()),
            Some(Link::Attached(stream)) => peer_credentials(stream.get_ref())
                .ok()
                .map(|credentials| credentials.pid as u32),
            None => None,
        }
    }

    pub fn extend(&mut self, deadline: Duration) {
        let adopt = match self.adopting.take() {
            Some(incarnation) => format!("attach {incarnation}\n"),
            None => String::new(),
        };
        self.tell(&format!("{adopt}extend {}\n", deadline.as_nanos()));
    }

    /// How the application is; reports its end once.
    pub fn state(&mut self) -> GuardState {
        let state = match &mut self.running {
            None => return GuardState::Idle,
            Some(Link::Child(child, _)) => match child.try_wait() {
                Ok(None) => return GuardState::Running,
                Ok(Some(status)) if status.code() == Some(FENCED) => GuardState::Fenced,
                _ => GuardState::Exited,
            },
            Some(Link::Attached(stream)) => match attached_end(stream) {
                None => return GuardState::Running,
                Some(end) => end,
            },
        };
        self.running = None;
        state
    }

    /// Ends the application and waits for the guard; SIGKILL at once for a zero grace.
    pub fn stop(&mut self, grace: Duration) {
        self.tell(&format!("stop {}\n", grace.as_millis()));
        match self.running.take() {
            Some(Link::Child(mut child, stdin)) => {
                drop(stdin);
                // The guard kills its application at the latest after `grace` and then exits.
                let _ = child.wait();
            }
            Some(Link::Attached(mut stream)) => {
                // The guard closes the connection when it exits, after its application.
                let _ = stream.get_ref().set_read_timeout(None);
                let _ = io::copy(&mut stream, &mut io::sink());
            }
            None => {}
        }
    }

    fn tell(&mut self, line: &str) {
        // A guard that is gone has nothing left to extend or stop.
        let _ = match &mut self.running {
            Some(Link::Child(_, stdin)) => stdin.write_all(line.as_bytes()),
            Some(Link::Attached(stream)) => stream.get_mut().write_all(line.as_bytes()),
            None => Ok(()),
        };
    }
}

/// `hacmp guard`: the guard process itself. Returns its exit status.
pub fn serve() -> i32 {
    let variable = |name: &str| std::env::var(name).ok();
    let number = |name: &str| variable(name).and_then(|value| value.parse::<u64>().ok());
    let (Some(command), Some(log), Some(deadline), Some(token), Some(incarnation), Some(secret)) = (
        variable(COMMAND_VARIABLE),
        variable(LOG_VARIABLE),
        variable(DEADLINE_VARIABLE).and_then(|d| d.parse::<u128>().ok()),
        number(TOKEN_VARIABLE),
        number(INCARNATION_VARIABLE),
        number(SECRET_VARIABLE),
    ) else {
        eprintln!(
            "hacmp guard: started without its environment; it is started by `hacmp run` in the safe profile"
        );
        return NOT_STARTED;
    };
    let socket = std::env::var_os(SOCKET_VARIABLE).map(PathBuf::from);
    for name in [
        COMMAND_VARIABLE,
        LOG_VARIABLE,
        DEADLINE_VARIABLE,
        TOKEN_VARIABLE,
        INCARNATION_VARIABLE,
        SECRET_VARIABLE,
        SOCKET_VARIABLE,
    ] {
        // SAFETY: the guard is single-threaded at this point.
        unsafe { std::env::remove_var(name) };
    }
    let mut held = HeldLease {
        token,
        incarnation,
        deadline: nanos(deadline),
    };
    let mut orders = Orders {
        source: Some(Source::Stdin(BufReader::new(io::stdin()))),
        listener: socket.and_then(|path| Listener::bind(path, secret)),
    };
    let application = match spawn::start_guarded(&command, &log, token) {
        Ok(Some(child)) => child,
        Ok(None) => return orders.finish(EXITED),
        Err(error) => {
            eprintln!("{error}");
            return orders.finish(NOT_STARTED);
        }
    };
    let group = application.pids()[0] as libc::pid_t;
    loop {
        if let Ok(Some(_)) = application.try_wait() {
            kill_group(group, libc::SIGKILL);
            return orders.finish(EXITED);
        }
        let now = boot_clock();
        if now >= held.deadline {
            kill_group(group, libc::SIGKILL);
            let _ = application.wait();
            return orders.finish(FENCED);
        }
        let left = held.deadline - now;
        if orders.abandoned() {
            // The service was stopped for good: nobody will attach, so end the application now
            // rather than at the deadline.
            stop_application(&application, group, GRACEFUL_KILL.min(left));
            return orders.finish(STOPPED);
        }
        match orders.next(left.min(POLL), &held) {
            Some(Order::Extend(later)) => held.deadline = held.deadline.max(later),
            Some(Order::Attach(incarnation)) => held.incarnation = incarnation,
            Some(Order::Stop(grace)) => {
                stop_application(
                    &application,
                    group,
                    grace.min(held.deadline.saturating_sub(boot_clock())),
                );
                return orders.finish(STOPPED);
            }
            None => {}
        }
    }
}

fn nanos(value: u128) -> Duration {
    Duration::from_nanos(u64::try_from(value).unwrap_or(u64::MAX))
}

fn kill_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill has no memory effects; the group is the application's own (setpgid).
    unsafe { libc::kill(-group, signal) };
}

/// SIGTERM, then SIGKILL once `grace` has passed or at once when it is zero.
fn stop_application(application: &Handle, group: libc::pid_t, grace: Duration) {
    if !grace.is_zero() {
        kill_group(group, libc::SIGTERM);
        let until = boot_clock() + grace;
        while boot_clock() < until {
            if let Ok(Some(_)) = application.try_wait() {
                kill_group(group, libc::SIGKILL);
                return;
            }
            std::thread::sleep(POLL.min(until.saturating_sub(boot_clock())));
        }
    }
    kill_group(group, libc::SIGKILL);
    let _ = application.wait();
}

enum Order {
    Extend(Duration),
    /// A later run of the daemon answers for the guard from now on, with this incarnation.
    Attach(u64),
    Stop(Duration),
}

/// Where the guard's orders come from.
enum Source {
    /// The daemon that started it.
    Stdin(BufReader<io::Stdin>),
    /// A later run of the daemon, attached over the socket.
    Attached(BufReader<UnixStream>),
}

/// The daemon's orders, read without ever blocking past a deadline.
struct Orders {
    /// `None` while no daemon answers for the guard: the one that started it is gone and no
    /// later run has attached.
    source: Option<Source>,
    listener: Option<Listener>,
}

impl Orders {
    /// The next order, waiting at most `wait` for one. While no daemon answers for the guard,
    /// it waits for one to attach instead.
    fn next(&mut self, wait: Duration, held: &HeldLease) -> Option<Order> {
        let Some(source) = &mut self.source else {
            match &self.listener {
                Some(listener) if wait_readable(listener.fd(), wait) => {
                    self.source = listener
                        .accept(held)
                        .map(|stream| Source::Attached(BufReader::new(stream)));
                }
                Some(_) => {}
                None => std::thread::sleep(wait),
            }
            return None;
        };
        let (buffered, fd) = match source {
            Source::Stdin(input) => (!input.buffer().is_empty(), io::stdin().as_raw_fd()),
            Source::Attached(stream) => (!stream.buffer().is_empty(), stream.get_ref().as_raw_fd()),
        };
        if !buffered && !wait_readable(fd, wait) {
            return None;
        }
        let mut line = String::new();
        let read = match source {
            Source::Stdin(input) => input.read_line(&mut line),
            Source::Attached(stream) => stream.read_line(&mut line),
        };
        match read {
            Ok(0) | Err(_) => {
                // The daemon is gone: keep the last deadline, which is what it promised its
                // peers, and wait for a later run to attach.
                self.source = None;
                None
            }
            Ok(_) => parse_order(&line),
        }
    }

    /// Whether no daemon answers for the guard and none ever can: its socket is gone.
    fn abandoned(&self) -> bool {
        self.source.is_none() && self.listener.as_ref().is_some_and(Listener::gone)
    }

    /// Tells an attached daemon how the application ended, gives up the socket, and returns
    /// the exit status.
    fn finish(self, status: i32) -> i32 {
        if let Some(Source::Attached(mut stream)) = self.source {
            let end = match status {
                FENCED => "fenced",
                STOPPED => "stopped",
                _ => "exited",
            };
            let _ = writeln!(stream.get_mut(), "end {end}");
        }
        if let Some(listener) = self.listener {
            listener.give_up();
        }
        status
    }
}

fn parse_order(line: &str) -> Option<Order> {
    let (verb, value) = line.trim_end().split_once(' ')?;
    match verb {
        "extend" => Some(Order::Extend(nanos(value.parse().ok()?))),
        "attach" => Some(Order::Attach(value.parse().ok()?)),
        "stop" => Some(Order::Stop(Duration::from_millis(value.parse().ok()?))),
        _ => None,
    }
}
