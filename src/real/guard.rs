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
//! and the guard
//! answers how the application ended (`end fenced|exited|stopped`). When the socket disappears
//! while no daemon answers for it (systemd removes the runtime directory on a real stop, keeps
//! it on a restart), no daemon can ever attach, and the guard stops the application at once.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use duct::Handle;

use super::spawn;
use crate::timing::GRACEFUL_KILL;
use crate::world::{GuardState, HeldLease};

const COMMAND_VARIABLE: &str = "HACMP_GUARD_COMMAND";
const LOG_VARIABLE: &str = "HACMP_GUARD_LOG";
const DEADLINE_VARIABLE: &str = "HACMP_GUARD_DEADLINE";
const TOKEN_VARIABLE: &str = "HACMP_GUARD_TOKEN";
const INCARNATION_VARIABLE: &str = "HACMP_GUARD_INCARNATION";
const SECRET_VARIABLE: &str = "HACMP_GUARD_SECRET";
const SOCKET_VARIABLE: &str = "HACMP_GUARD_SOCKET";

/// The directory systemd creates for a unit's RuntimeDirectory=.
const RUNTIME_DIRECTORY_VARIABLE: &str = "RUNTIME_DIRECTORY";
/// Where the guard listens, and what the daemon that started it wrote, in the runtime directory.
const SOCKET_NAME: &str = "guard.socket";
const STATE_NAME: &str = "guard.state";
/// How long a daemon waits for a guard's answer on the socket; a guard that is paused or busy
/// for longer is not attached to (and keeps its deadline).
const ATTACH_LIMIT: Duration = Duration::from_secs(1);
/// The longest line either side sends over the socket; anything longer is not ours.
const MAX_LINE: u64 = 256;

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
    /// proves that run started it, and makes it answer to this run. `None`, after printing why
    /// when there is something to say, when there is none or it is not proven ours: that one is
    /// left alone.
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

/// The daemon's runtime directory, `$RUNTIME_DIRECTORY` (the first one when systemd lists
/// several), if set.
pub fn runtime_directory() -> Option<PathBuf> {
    let directories = std::env::var_os(RUNTIME_DIRECTORY_VARIABLE)?;
    let first = directories.to_string_lossy().split(':').next()?.to_string();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

/// `directory`, if it is safe to keep the guard's socket in: a directory that this user owns
/// and nobody else may enter, so that only this user (or root) can have made what is in it.
/// `Err` says why it is not.
fn safe_directory(directory: &Path) -> Result<PathBuf, String> {
    let shown = directory.display();
    let metadata = fs::symlink_metadata(directory)
        .map_err(|error| format!("RUNTIME_DIRECTORY={shown}: {error}"))?;
    // SAFETY: geteuid has no failure mode and no memory effects.
    let user = unsafe { libc::geteuid() };
    if !metadata.is_dir() || metadata.uid() != user || metadata.mode() & 0o077 != 0 {
        return Err(format!(
            "RUNTIME_DIRECTORY={shown}: not a directory of user {user} with mode 0700 (RuntimeDirectoryMode=0700)"
        ));
    }
    Ok(directory.to_path_buf())
}

/// Writes `guard.state` (only this user may read it): which process the guard is and the
/// secret it was given, for a later run to check.
fn write_state(runtime: &Path, pid: u32, secret: u64) -> io::Result<()> {
    let started = start_time(pid)?;
    let path = runtime.join(STATE_NAME);
    let hidden = runtime.join(format!(".{STATE_NAME}.{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&hidden)?;
    writeln!(file, "pid={pid} start={started} secret={secret}")?;
    fs::rename(&hidden, &path)
}

/// A process's start time in clock ticks since boot (/proc/PID/stat, field 22): with its PID it
/// names one process for the whole boot, even after the PID is reused.
fn start_time(pid: u32) -> io::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold blanks and parentheses; it ends at the last ')'.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name
        .split_ascii_whitespace()
        .nth(19)
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: no start time")))
}

/// Reads the guard's first line and proves it is the guard the earlier run started: it is a
/// process of this user (SO_PEERCRED), running the very executable `program` this daemon starts
/// guards with (the same file, not merely the same path), the process (PID and start time)
/// that run wrote into `guard.state`, and it knows the secret that run gave it.
fn prove(
    program: &Path,
    runtime: &Path,
    stream: UnixStream,
) -> Result<(BufReader<UnixStream>, HeldLease), String> {
    stream
        .set_read_timeout(Some(ATTACH_LIMIT))
        .map_err(|error| error.to_string())?;
    let credentials = peer_credentials(&stream).map_err(|error| error.to_string())?;
    let mut stream = BufReader::new(stream);
    let hello = read_line(&mut stream).ok_or("it did not say what it holds in time")?;
    let (held, secret) = parse_hello(&hello).ok_or("it does not speak as a guard")?;
    // SAFETY: geteuid has no failure mode and no memory effects.
    if credentials.uid != unsafe { libc::geteuid() } {
        return Err(format!("it runs as user {}", credentials.uid));
    }
    let pid = u32::try_from(credentials.pid).map_err(|_| "it has no PID here")?;
    let own = fs::metadata(program).map_err(|error| error.to_string())?;
    let theirs = fs::metadata(format!("/proc/{pid}/exe"))
        .map_err(|_| format!("process {pid} is not this hacmp executable"))?;
    if (own.dev(), own.ino()) != (theirs.dev(), theirs.ino()) {
        return Err(format!("process {pid} is not this hacmp executable"));
    }
    let state = fs::read_to_string(runtime.join(STATE_NAME))
        .map_err(|error| format!("{STATE_NAME}: {error}"))?;
    let expected = format!(
        "pid={pid} start={} secret={secret}\n",
        start_time(pid).map_err(|error| error.to_string())?
    );
    if state != expected {
        return Err(format!(
            "process {pid} is not the one the previous run started, or not with its secret"
        ));
    }
    Ok((stream, held))
}

/// One line from the socket without its newline, if it came within the read timeout.
fn read_line(stream: &mut BufReader<UnixStream>) -> Option<String> {
    let mut line = String::new();
    let read = io::Read::take(stream, MAX_LINE).read_line(&mut line).ok()?;
    line.strip_suffix('\n')
        .filter(|_| read > 0)
        .map(str::to_string)
}

fn parse_hello(line: &str) -> Option<(HeldLease, u64)> {
    let mut words = line.split(' ');
    if words.next()? != "guard" {
        return None;
    }
    let mut field = |name: &str| -> Option<u128> {
        words
            .next()?
            .strip_prefix(name)?
            .strip_prefix('=')?
            .parse()
            .ok()
    };
    let token = u64::try_from(field("token")?).ok()?;
    let incarnation = u64::try_from(field("incarnation")?).ok()?;
    let deadline = nanos(field("deadline")?);
    let secret = u64::try_from(field("secret")?).ok()?;
    words.next().is_none().then_some((
        HeldLease {
            token,
            incarnation,
            deadline,
        },
        secret,
    ))
}

/// How an attached guard's application ended, if it has: its `end` line, or the connection
/// closing (the guard died, and its application with it).
fn attached_end(stream: &mut BufReader<UnixStream>) -> Option<GuardState> {
    let nothing_waiting =
        stream.buffer().is_empty() && !wait_readable(stream.get_ref().as_raw_fd(), Duration::ZERO);
    if nothing_waiting {
        return None;
    }
    let _ = stream.get_ref().set_read_timeout(Some(ATTACH_LIMIT));
    Some(match read_line(stream).as_deref() {
        Some("end fenced") => GuardState::Fenced,
        _ => GuardState::Exited,
    })
}

/// The user and PID of the process at the other end of a unix socket, from the kernel.
fn peer_credentials(stream: &UnixStream) -> io::Result<libc::ucred> {
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut size = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `size` bytes into the valid ucred.
    let status = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut credentials).cast(),
            &mut size,
        )
    };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(credentials)
}

/// Whether `fd` has input (or its end) waiting, within `wait`.
fn wait_readable(fd: RawFd, wait: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes the one valid pollfd passed.
    unsafe { libc::poll(&mut poll, 1, millis) > 0 }
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

/// The socket a later run of the daemon attaches through.
struct Listener {
    socket: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode, to tell it from a file put in its place.
    identity: (u64, u64),
    secret: u64,
}

impl Listener {
    /// Listens on `path`, replacing what a guard before left there; `None` (said on stderr)
    /// when it cannot, and then no later run can attach.
    fn bind(path: PathBuf, secret: u64) -> Option<Listener> {
        let _ = fs::remove_file(&path);
        let bound = UnixListener::bind(&path).and_then(|socket| {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            socket.set_nonblocking(true)?;
            let metadata = fs::symlink_metadata(&path)?;
            Ok((socket, (metadata.dev(), metadata.ino())))
        });
        match bound {
            Ok((socket, identity)) => Some(Listener {
                socket,
                path,
                identity,
                secret,
            }),
            Err(error) => {
                eprintln!("hacmp guard: {}: {error}", path.display());
                None
            }
        }
    }

    /// Whether our socket file is gone (its directory removed), so nobody can reach us.
    fn gone(&self) -> bool {
        fs::symlink_metadata(&self.path).map_or(true, |metadata| {
            (metadata.dev(), metadata.ino()) != self.identity
        })
    }

    /// Accepts a connection from a process of our own user and says what we hold.
    fn accept(&self, held: &HeldLease) -> Option<UnixStream> {
        let (mut stream, _) = self.socket.accept().ok()?;
        let credentials = peer_credentials(&stream).ok()?;
        // SAFETY: geteuid has no failure mode and no memory effects.
        if credentials.uid != unsafe { libc::geteuid() } {
            return None;
        }
        stream.set_nonblocking(false).ok()?;
        stream.set_write_timeout(Some(ATTACH_LIMIT)).ok()?;
        writeln!(
            stream,
            "guard token={} incarnation={} deadline={} secret={}",
            held.token,
            held.incarnation,
            held.deadline.as_nanos(),
            self.secret
        )
        .ok()?;
        Some(stream)
    }
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
                Some(listener) if wait_readable(listener.socket.as_raw_fd(), wait) => {
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
        if let Some(listener) = self.listener
            && !listener.gone()
        {
            let _ = fs::remove_file(&listener.path);
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
