//! The guard: a small process, separate from the daemon, that owns the application in the safe
//! profile and kills it when the daemon's lease runs out.
//!
//! A daemon that is paused (SIGSTOP), dead, or stuck on a hung mount cannot stop its own
//! application; the guard can, because it shares none of that fate. The daemon starts it as
//! `hacmp guard` and talks to it over its stdin:
//!
//! - `extend NANOS`: the new deadline, on the boot clock (CLOCK_BOOTTIME, the same for every
//!   process of the host); deadlines only ever move later.
//! - `stop MILLIS`: SIGTERM to the application's whole tree, SIGKILL after MILLIS.
//!
//! When the deadline passes, the guard kills the application's whole tree: its cgroup, or
//! without one every descendant of the guard (`containment.rs`). When the daemon's end of the
//! pipe closes, the guard keeps the last deadline. When the guard itself dies (a crash, the OOM
//! killer despite its score of -1000, a `kill -9`), the kernel kills the application's first
//! process (PR_SET_PDEATHSIG) and the daemon kills the rest of the tree and waits until none of
//! it is left before it reports the guard `Lost`. The guard's exit status tells the daemon how
//! the application ended. The command, log and first deadline come in the
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

use super::containment::{self, ApplicationCgroup, Confinement, Containment};
use super::spawn;
use crate::timing::GRACEFUL_KILL;
use crate::world::{GuardState, HeldLease};
pub use reattach::runtime_directory;
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
const CGROUP_VARIABLE: &str = "HACMP_GUARD_CGROUP_ROOT";
const OOM_SCORE_VARIABLE: &str = "HACMP_GUARD_OOM_SCORE_ADJ";

/// Exit statuses of `hacmp guard`.
const EXITED: i32 = 0;
const NOT_STARTED: i32 = 2;
const FENCED: i32 = 3;
const STOPPED: i32 = 4;

/// How often the guard looks whether the application has ended. The deadline itself is kept to
/// the millisecond: the wait before it is shortened to end exactly there.
const POLL: Duration = Duration::from_millis(100);
/// How often the guard looks whether the tree has ended during a stop's grace.
const GRACE_POLL: Duration = Duration::from_millis(20);

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
    /// How the application's tree is held together on this host.
    containment: Containment,
    /// The cgroup of the running guard's application, when cgroups are in force.
    application_cgroup: Option<PathBuf>,
    /// The OOM score adjustment the application is to keep: the daemon's before it lowered it.
    oom_score_adj: Option<i32>,
    /// This run's incarnation, for an attached guard to keep from the first extension on: that
    /// comes after this run's first confirmed write, so the store shows it by then.
    adopting: Option<u64>,
}

impl GuardSlot {
    pub fn new(
        program: PathBuf,
        runtime: Option<PathBuf>,
        containment: Containment,
        oom_score_adj: Option<i32>,
    ) -> GuardSlot {
        GuardSlot {
            program,
            runtime,
            running: None,
            containment,
            application_cgroup: None,
            oom_score_adj,
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
        if let Some(root) = self.containment.root() {
            guard.env(CGROUP_VARIABLE, root);
        }
        if let Some(score) = self.oom_score_adj {
            guard.env(OOM_SCORE_VARIABLE, score.to_string());
        }
        match guard.spawn() {
            Ok(mut child) => {
                self.application_cgroup = self.containment.application_cgroup(child.id());
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
    /// Before that, it ends every application on this host whose guard is gone (a guard killed
    /// together with the daemon), and waits until nothing of them is left.
    pub fn attach(&mut self, incarnation: u64) -> Option<HeldLease> {
        assert!(self.running.is_none(), "attaching happens once, at start");
        let orphaned = self.containment.sweep();
        if orphaned > 0 {
            eprintln!(
                "hacmp: killed {orphaned} application tree(s) of a previous run whose guard was gone"
            );
        }
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
        match prove(&runtime, stream) {
            Ok((stream, held)) => {
                self.application_cgroup =
                    peer_credentials(stream.get_ref())
                        .ok()
                        .and_then(|credentials| {
                            self.containment.application_cgroup(credentials.pid as u32)
                        });
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

    /// How the application is; reports its end once. A guard that died (`Lost`) is reported
    /// only once nothing of its application's tree is left.
    pub fn state(&mut self) -> GuardState {
        let state = match &mut self.running {
            None => return GuardState::Idle,
            Some(Link::Child(child, _)) => match child.try_wait() {
                Ok(None) => return GuardState::Running,
                Ok(Some(status)) => ended_as(status),
                Err(_) => GuardState::Lost,
            },
            Some(Link::Attached(stream)) => match attached_end(stream) {
                None => return GuardState::Running,
                Some(end) => end,
            },
        };
        self.running = None;
        self.end_tree(state == GuardState::Lost);
        state
    }

    /// Kills what is left of the application's tree once its guard is gone, and waits until
    /// nothing of it is left. The guard did so itself unless it died (`guard_died`); a dead
    /// guard's tree is in its cgroup, or, without one, reparented to this daemon (a subreaper),
    /// whose other children only a hook command can have left, and only without a cgroup are
    /// they killed with the tree (docs/safe-profile.md).
    fn end_tree(&mut self, guard_died: bool) {
        match self.application_cgroup.take() {
            Some(path) => {
                if let Ok(cgroup) = ApplicationCgroup::open(&path) {
                    let members = cgroup.members();
                    cgroup.kill_and_wait();
                    cgroup.remove();
                    // Those of them that reparented to this daemon are its zombies now.
                    containment::reap(&members);
                }
            }
            None if guard_died => containment::kill_children_and_wait(),
            None => {}
        }
    }

    /// Ends the application and waits for the guard; SIGKILL at once for a zero grace.
    pub fn stop(&mut self, grace: Duration) {
        self.tell(&format!("stop {}\n", grace.as_millis()));
        let guard_died = match self.running.take() {
            Some(Link::Child(mut child, stdin)) => {
                drop(stdin);
                // The guard kills its application at the latest after `grace` and then exits.
                child
                    .wait()
                    .map_or(true, |status| ended_as(status) == GuardState::Lost)
            }
            Some(Link::Attached(mut stream)) => {
                // The guard closes the connection when it exits, after its application. Its
                // tree's orphans never come to this daemon, which is not its ancestor.
                let _ = stream.get_ref().set_read_timeout(None);
                let _ = io::copy(&mut stream, &mut io::sink());
                false
            }
            None => return,
        };
        // A guard that died instead of stopping left its tree behind.
        self.end_tree(guard_died);
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

/// How the application ended, from the guard's exit status; a guard killed by a signal (or
/// exiting with a status of no one's) died.
fn ended_as(status: std::process::ExitStatus) -> GuardState {
    match status.code() {
        Some(FENCED) => GuardState::Fenced,
        Some(EXITED | NOT_STARTED | STOPPED) => GuardState::Exited,
        _ => GuardState::Lost,
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
    let cgroup_root = std::env::var_os(CGROUP_VARIABLE).map(PathBuf::from);
    // The application keeps the score the daemon had before it lowered its own, or else ours.
    let oom_score_adj = variable(OOM_SCORE_VARIABLE)
        .and_then(|score| score.parse().ok())
        .or_else(containment::oom_score_adj);
    for name in [
        COMMAND_VARIABLE,
        LOG_VARIABLE,
        DEADLINE_VARIABLE,
        TOKEN_VARIABLE,
        INCARNATION_VARIABLE,
        SECRET_VARIABLE,
        SOCKET_VARIABLE,
        CGROUP_VARIABLE,
        OOM_SCORE_VARIABLE,
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
    // Orphans of the application come to the guard, and the OOM killer passes it by.
    if let Err(error) = containment::become_subreaper() {
        eprintln!("hacmp guard: cannot become a child subreaper: {error}");
    }
    let _ = containment::set_oom_score_adj(containment::GUARD_OOM_SCORE_ADJ);
    let tree = match cgroup_root.map(|root| own_application_cgroup(&root)) {
        None => Tree::Descendants,
        Some(Ok(cgroup)) => Tree::Cgroup(cgroup),
        Some(Err(error)) => {
            eprintln!("hacmp guard: cannot create the application's cgroup: {error}");
            return orders.finish(NOT_STARTED);
        }
    };
    let confinement = Confinement {
        cgroup_procs: tree.procs_fd(),
        oom_score_adj,
    };
    let application = match spawn::start_guarded(&command, &log, token, confinement) {
        Ok(Some(child)) => child,
        Ok(None) => return tree.finish(orders, EXITED),
        Err(error) => {
            eprintln!("{error}");
            return tree.finish(orders, NOT_STARTED);
        }
    };
    let application = Application {
        first: application.pids()[0] as libc::pid_t,
        handle: application,
        tree,
    };
    loop {
        containment::reap_orphans(application.first);
        if let Ok(Some(_)) = application.handle.try_wait() {
            // Its first process ended: what it left running goes with it.
            application.kill();
            return application.tree.finish(orders, EXITED);
        }
        let now = boot_clock();
        if now >= held.deadline {
            application.kill();
            return application.tree.finish(orders, FENCED);
        }
        let left = held.deadline - now;
        if orders.abandoned() {
            // The service was stopped for good: nobody will attach, so end the application now
            // rather than at the deadline.
            application.stop(GRACEFUL_KILL.min(left));
            return application.tree.finish(orders, STOPPED);
        }
        match orders.next(left.min(POLL), &held) {
            Some(Order::Extend(later)) => held.deadline = held.deadline.max(later),
            Some(Order::Attach(incarnation)) => held.incarnation = incarnation,
            Some(Order::Stop(grace)) => {
                application.stop(grace.min(held.deadline.saturating_sub(boot_clock())));
                return application.tree.finish(orders, STOPPED);
            }
            None => {}
        }
    }
}

/// Creates the cgroup of the application this guard holds, named by the guard's identity.
fn own_application_cgroup(root: &std::path::Path) -> io::Result<ApplicationCgroup> {
    let own = std::process::id();
    let started = containment::start_time(own)?;
    ApplicationCgroup::create(&root.join(containment::application_cgroup_name(own, started)))
}

/// What holds the application's whole tree for the guard.
enum Tree {
    /// Its cgroup.
    Cgroup(ApplicationCgroup),
    /// No cgroup: the guard's descendants, orphans included since the guard is a subreaper.
    Descendants,
}

impl Tree {
    fn procs_fd(&self) -> Option<std::os::fd::RawFd> {
        match self {
            Tree::Cgroup(cgroup) => Some(cgroup.procs_fd()),
            Tree::Descendants => None,
        }
    }

    /// Gives up the cgroup, empty by now, and tells the daemon how the application ended.
    fn finish(self, orders: Orders, status: i32) -> i32 {
        if let Tree::Cgroup(cgroup) = self {
            cgroup.remove();
        }
        orders.finish(status)
    }
}

/// The application under the guard: its first process and its whole tree. The tree holds every
/// process of its process group too, which is why the guard never signals the group as such.
struct Application {
    handle: Handle,
    first: libc::pid_t,
    tree: Tree,
}

impl Application {
    /// Sends `signal` to every process of the tree.
    fn signal(&self, signal: libc::c_int) {
        match &self.tree {
            Tree::Cgroup(cgroup) => cgroup.signal_all(signal),
            // SAFETY: getpid has no failure mode and no memory effects.
            Tree::Descendants => containment::signal_descendants(unsafe { libc::getpid() }, signal),
        }
    }

    /// Whether nothing of the tree runs any more; reaps what ended.
    fn ended(&self) -> bool {
        let _ = self.handle.try_wait();
        containment::reap_orphans(self.first);
        match &self.tree {
            Tree::Cgroup(cgroup) => !cgroup.populated(),
            Tree::Descendants => !containment::has_children(),
        }
    }

    /// SIGKILL to the whole tree, returning once none of it is left and all of it is reaped.
    fn kill(&self) {
        if let Tree::Cgroup(cgroup) = &self.tree {
            cgroup.kill_and_wait();
            let _ = self.handle.wait();
        }
        // Without a cgroup this kills the tree child by child; with one it reaps the orphans.
        containment::kill_children_and_wait();
    }

    /// SIGTERM to the whole tree, then SIGKILL once `grace` has passed or at once when it is
    /// zero.
    fn stop(&self, grace: Duration) {
        if !grace.is_zero() {
            self.signal(libc::SIGTERM);
            let until = boot_clock() + grace;
            while boot_clock() < until && !self.ended() {
                std::thread::sleep(GRACE_POLL.min(until.saturating_sub(boot_clock())));
            }
        }
        self.kill();
    }
}

fn nanos(value: u128) -> Duration {
    Duration::from_nanos(u64::try_from(value).unwrap_or(u64::MAX))
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
