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

use std::io::{self, BufRead, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use duct::Handle;

use super::spawn;
use crate::world::GuardState;

const COMMAND_VARIABLE: &str = "HACMP_GUARD_COMMAND";
const LOG_VARIABLE: &str = "HACMP_GUARD_LOG";
const DEADLINE_VARIABLE: &str = "HACMP_GUARD_DEADLINE";
const TOKEN_VARIABLE: &str = "HACMP_GUARD_TOKEN";

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

/// The daemon's handle on its guard.
pub struct GuardSlot {
    /// The hacmp executable, which runs the guard as `hacmp guard`.
    program: PathBuf,
    running: Option<(Child, ChildStdin)>,
}

impl GuardSlot {
    pub fn new(program: PathBuf) -> GuardSlot {
        GuardSlot {
            program,
            running: None,
        }
    }

    /// Starts a guard that starts the application; false when the deadline has passed or the
    /// guard could not be started (the reason is printed).
    pub fn start(&mut self, command: &str, log_file: &str, deadline: Duration, token: u64) -> bool {
        assert!(self.running.is_none(), "one guarded application at a time");
        if boot_clock() >= deadline {
            return false;
        }
        let started = {
            Command::new(&self.program)
                .arg("guard")
                .env(COMMAND_VARIABLE, command)
                .env(LOG_VARIABLE, log_file)
                .env(DEADLINE_VARIABLE, deadline.as_nanos().to_string())
                .env(TOKEN_VARIABLE, token.to_string())
                // The guard is no service of systemd's; see spawn.rs.
                .env_remove("NOTIFY_SOCKET")
                .env_remove("WATCHDOG_USEC")
                .env_remove("WATCHDOG_PID")
                .stdin(Stdio::piped())
                .spawn()
        };
        match started {
            Ok(mut child) => {
                let stdin = child.stdin.take().expect("stdin was piped");
                self.running = Some((child, stdin));
                true
            }
            Err(error) => {
                eprintln!("hacmp: cannot start the guard: {error}");
                false
            }
        }
    }

    /// The guard's PID while it runs, for diagnostics.
    pub fn guard_pid(&self) -> Option<u32> {
        self.running.as_ref().map(|(child, _)| child.id())
    }

    pub fn extend(&mut self, deadline: Duration) {
        self.tell(&format!("extend {}\n", deadline.as_nanos()));
    }

    /// How the application is; reports its end once.
    pub fn state(&mut self) -> GuardState {
        let Some((child, _)) = &mut self.running else {
            return GuardState::Idle;
        };
        let status = match child.try_wait() {
            Ok(None) => return GuardState::Running,
            Ok(Some(status)) => status.code(),
            Err(_) => None,
        };
        self.running = None;
        match status {
            Some(FENCED) => GuardState::Fenced,
            _ => GuardState::Exited,
        }
    }

    /// Ends the application and waits for the guard; SIGKILL at once for a zero grace.
    pub fn stop(&mut self, grace: Duration) {
        self.tell(&format!("stop {}\n", grace.as_millis()));
        if let Some((mut child, stdin)) = self.running.take() {
            drop(stdin);
            // The guard kills its application at the latest after `grace` and then exits.
            let _ = child.wait();
        }
    }

    fn tell(&mut self, line: &str) {
        if let Some((_, stdin)) = &mut self.running {
            // A guard that is gone has nothing left to extend or stop.
            let _ = stdin.write_all(line.as_bytes());
        }
    }
}

/// `hacmp guard`: the guard process itself. Returns its exit status.
pub fn serve() -> i32 {
    let variable = |name: &str| std::env::var(name).ok();
    let (Some(command), Some(log), Some(deadline), Some(token)) = (
        variable(COMMAND_VARIABLE),
        variable(LOG_VARIABLE),
        variable(DEADLINE_VARIABLE).and_then(|d| d.parse::<u128>().ok()),
        variable(TOKEN_VARIABLE).and_then(|t| t.parse::<u64>().ok()),
    ) else {
        eprintln!(
            "hacmp guard: started without its environment; it is started by `hacmp run` in the safe profile"
        );
        return NOT_STARTED;
    };
    for name in [
        COMMAND_VARIABLE,
        LOG_VARIABLE,
        DEADLINE_VARIABLE,
        TOKEN_VARIABLE,
    ] {
        // SAFETY: the guard is single-threaded at this point.
        unsafe { std::env::remove_var(name) };
    }
    let application = match spawn::start_guarded(&command, &log, token) {
        Ok(Some(child)) => child,
        Ok(None) => return EXITED,
        Err(error) => {
            eprintln!("{error}");
            return NOT_STARTED;
        }
    };
    let group = application.pids()[0] as libc::pid_t;
    let mut deadline = nanos(deadline);
    let mut commands = Commands::new();
    loop {
        if let Ok(Some(_)) = application.try_wait() {
            kill_group(group, libc::SIGKILL);
            return EXITED;
        }
        let now = boot_clock();
        if now >= deadline {
            kill_group(group, libc::SIGKILL);
            let _ = application.wait();
            return FENCED;
        }
        match commands.next((deadline - now).min(POLL)) {
            Some(Order::Extend(later)) => deadline = deadline.max(later),
            Some(Order::Stop(grace)) => {
                stop_application(
                    &application,
                    group,
                    grace.min(deadline.saturating_sub(boot_clock())),
                );
                return STOPPED;
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
    Stop(Duration),
}

/// The daemon's orders on stdin, read without ever blocking past a deadline.
struct Commands {
    input: io::BufReader<io::Stdin>,
    closed: bool,
}

impl Commands {
    fn new() -> Commands {
        Commands {
            input: io::BufReader::new(io::stdin()),
            closed: false,
        }
    }

    /// The next order, waiting at most `wait` for one.
    fn next(&mut self, wait: Duration) -> Option<Order> {
        if self.closed || !self.readable(wait) {
            if self.closed {
                std::thread::sleep(wait);
            }
            return None;
        }
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                // The daemon is gone: keep the last deadline, which is what it promised its
                // peers.
                self.closed = true;
                None
            }
            Ok(_) => parse_order(&line),
        }
    }

    /// Whether a line (or the end of input) is waiting, within `wait`.
    fn readable(&self, wait: Duration) -> bool {
        if !self.input.buffer().is_empty() {
            return true;
        }
        let mut poll = libc::pollfd {
            fd: io::stdin().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll reads and writes the one valid pollfd passed.
        unsafe { libc::poll(&mut poll, 1, millis) > 0 }
    }
}

fn parse_order(line: &str) -> Option<Order> {
    let (verb, value) = line.trim_end().split_once(' ')?;
    match verb {
        "extend" => Some(Order::Extend(nanos(value.parse().ok()?))),
        "stop" => Some(Order::Stop(Duration::from_millis(value.parse().ok()?))),
        _ => None,
    }
}
