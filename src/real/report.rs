//! What the real machine does with the loop's events: systemd's readiness, status and watchdog,
//! the operator's event hook, and the metrics file. Each part is off unless asked for (systemd's
//! NOTIFY_SOCKET, hacmpEventCmd, hacmpMetricsFile); with all three off the daemon behaves exactly
//! as without this module.
//!
//! Nothing here may slow the loop down: systemd's notifications are one datagram each, the hook
//! and the metrics writer run on threads of their own behind bounded queues.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sd_notify::NotifyState;

use super::hook::{self, Hook, HookEvent};
use super::metrics::{LookAtMachine, MetricsWriter, Role, Snapshot, StorageTable};
use super::state::{DaemonState, PendingWait, StateFile};
use crate::config::Variables;
use crate::event::{Event, Fence, Wait};

/// How often STATUS= is brought up to date during a long wait, whose time left it shows.
const WAIT_STATUS_EVERY: Duration = Duration::from_secs(1);

/// The share of systemd's watchdog interval after which we ping again: four pings per interval,
/// so one late wake-up on a loaded machine does not cost a restart.
const WATCHDOG_PINGS_PER_INTERVAL: u32 = 4;

/// The daemon's link to systemd, when it runs as a service that listens (NOTIFY_SOCKET).
struct Systemd {
    /// How long systemd waits for a ping before it kills us; `None` without WatchdogSec=.
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
    ready: bool,
    status_sent: String,
}

impl Systemd {
    fn from_environment() -> Option<Systemd> {
        std::env::var_os("NOTIFY_SOCKET")?;
        Some(Systemd {
            watchdog: sd_notify::watchdog_enabled(),
            last_ping: None,
            ready: false,
            status_sent: String::new(),
        })
    }

    /// The longest the loop may go without a sign of life.
    fn ping_every(&self) -> Option<Duration> {
        self.watchdog
            .map(|interval| interval / WATCHDOG_PINGS_PER_INTERVAL)
    }

    /// READY=1 the first time, WATCHDOG=1 when due, STATUS= when it changed: one datagram.
    fn notify(&mut self, status: &str) {
        let mut states = Vec::new();
        if !self.ready {
            states.push(NotifyState::Ready);
        }
        let now = Instant::now();
        let ping_due = match (self.ping_every(), self.last_ping) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(every), Some(last)) => now.duration_since(last) >= every,
        };
        if ping_due {
            states.push(NotifyState::Watchdog);
        }
        if status != self.status_sent {
            states.push(NotifyState::Status(status));
        }
        if states.is_empty() {
            return;
        }
        // A lost datagram is not worth stopping for: systemd then restarts a daemon whose
        // watchdog it no longer hears, which is what it is for.
        if sd_notify::notify(&states).is_ok() {
            self.ready = true;
            if ping_due {
                self.last_ping = Some(now);
            }
            self.status_sent = status.to_string();
        }
    }
}

/// Sends STOPPING=1 when systemd listens. Called once, when SIGTERM or SIGINT arrives.
pub fn notify_stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

/// The loop's state as far as its events tell it, and where to pass them on.
pub struct Reporter {
    host: String,
    maintenance_file: String,
    systemd: Option<Systemd>,
    hook: Option<Hook>,
    metrics: Option<MetricsWriter>,
    state_file: StateFile,
    /// `operator::LeaseStore::identity`, which the state file names.
    store: String,
    role: Role,
    /// The guard killed the application when the lease ran out, and this host has not been
    /// master since.
    fenced: bool,
    /// The long wait under way and when it ends.
    wait: Option<(Wait, Instant, SystemTime)>,
    maintenance: bool,
    /// The other host this loop last took as master.
    other_master: Option<String>,
    /// The last heartbeat age the loop computed, by host.
    heartbeat_age: Option<(String, i64)>,
    token: Option<u64>,
    pids: Vec<u32>,
    round_began: Option<Instant>,
    last_round: Option<Duration>,
    takeovers: u64,
    incidents: u64,
    fenced_total: u64,
    /// The warnings already passed to the hook.
    warnings: BTreeSet<String>,
    /// The warnings of the round under way, and of the last complete one, which the state
    /// file shows: a warning lasts as long as the rounds that find it.
    round_warnings: BTreeSet<String>,
    last_round_warnings: Vec<String>,
    storage: StorageTable,
}

impl Reporter {
    /// Reports nothing anywhere: for worlds built outside `hacmp run`.
    pub fn silent() -> Reporter {
        Reporter {
            host: String::new(),
            maintenance_file: String::new(),
            systemd: None,
            hook: None,
            metrics: None,
            state_file: StateFile::none(),
            store: String::new(),
            role: Role::Starting,
            fenced: false,
            wait: None,
            maintenance: false,
            other_master: None,
            heartbeat_age: None,
            token: None,
            pids: Vec::new(),
            round_began: None,
            last_round: None,
            takeovers: 0,
            incidents: 0,
            fenced_total: 0,
            warnings: BTreeSet::new(),
            round_warnings: BTreeSet::new(),
            last_round_warnings: Vec::new(),
            storage: StorageTable::new(),
        }
    }

    /// Reports to systemd when it listens, to the hook and the metrics file when set (the
    /// metrics add what `look` sees of the machine), and to the state file of this daemon on
    /// `store` (`operator::LeaseStore::identity`).
    pub fn new(variables: &Variables, look: LookAtMachine, store: String) -> Reporter {
        Reporter {
            state_file: StateFile::new(&variables.host_name, &store),
            store,
            host: variables.host_name.clone(),
            maintenance_file: variables.maintenance_file.clone(),
            systemd: Systemd::from_environment(),
            hook: (variables.event_command.clone())
                .and_then(|command| Hook::start(command, hook::TIME_LIMIT)),
            metrics: variables
                .metrics_file
                .clone()
                .and_then(|target| MetricsWriter::start(variables, target, look)),
            ..Reporter::silent()
        }
    }

    /// The longest the loop may sleep in one go, so that systemd's watchdog hears from it and
    /// STATUS= counts a long wait down.
    pub fn longest_sleep(&self) -> Option<Duration> {
        let systemd = self.systemd.as_ref()?;
        let waiting = self.wait.is_some().then_some(WAIT_STATUS_EVERY);
        match (systemd.ping_every(), waiting) {
            (Some(ping), Some(wait)) => Some(ping.min(wait)),
            (ping, wait) => ping.or(wait),
        }
    }

    /// A sign of life from the loop: readiness the first time, then the watchdog when due.
    pub fn alive(&mut self) {
        if self.systemd.is_none() {
            return;
        }
        let status = self.status_text();
        if let Some(systemd) = &mut self.systemd {
            systemd.notify(&status);
        }
    }

    /// Whether storage operations are worth timing: only the metrics show them.
    pub fn times_storage(&self) -> bool {
        self.metrics.is_some()
    }

    /// Notes one storage operation on `directory`.
    pub fn storage_operation(
        &mut self,
        operation: &'static str,
        directory: &str,
        latency: Duration,
        failed: bool,
    ) {
        let stats = self
            .storage
            .entry((operation, directory.to_string()))
            .or_default();
        stats.last_latency = latency;
        stats.operations += 1;
        stats.failures += u64::from(failed);
    }

    pub fn report(&mut self, event: &Event) {
        // A wait ends with the loop's next step.
        let waited = self.wait.take();
        match event {
            Event::Waits { wait, seconds } => {
                let length = Duration::from_secs(*seconds);
                self.wait = Some((*wait, Instant::now() + length, SystemTime::now() + length));
            }
            Event::Started { token } => {
                self.takeovers += 1;
                self.fenced = false;
                self.role = Role::Master;
                self.token = *token;
                self.pids.clear();
                let peer = self.other_master.take();
                let message = match &peer {
                    Some(peer) => format!(
                        "{} started the application as master; the last master was {peer}",
                        self.host
                    ),
                    None => format!("{} started the application as master", self.host),
                };
                self.hook("master", peer, message);
            }
            Event::Reattached { token } => {
                // Still the master it was: no takeover, nothing for the hook to announce.
                self.fenced = false;
                self.role = Role::Master;
                self.token = Some(*token);
            }
            Event::Running { pids } => {
                self.role = Role::Master;
                self.pids.clone_from(pids);
            }
            Event::Standby { master } => {
                if master.is_some() {
                    self.other_master.clone_from(master);
                }
                let was_master = self.role == Role::Master;
                self.role = Role::Standby;
                self.pids.clear();
                if was_master {
                    let message = match master {
                        Some(master) => {
                            format!("{} is no longer master; {master} is", self.host)
                        }
                        None => format!("{} is no longer master", self.host),
                    };
                    self.hook("standby", master.clone(), message);
                }
            }
            Event::HeartbeatAge { host, seconds } => {
                self.heartbeat_age = Some((host.clone(), *seconds));
            }
            Event::Incident => {
                self.incidents += 1;
                let message = format!(
                    "{} sent the last heartbeat but its application is not running",
                    self.host
                );
                self.hook("incident", None, message);
            }
            Event::Fenced(fence) => {
                self.fenced = true;
                self.fenced_total += 1;
                let message = match fence {
                    Fence::LeaseRanOut => format!(
                        "the guard on {} killed the application: the lease ran out before a renewal succeeded",
                        self.host
                    ),
                    Fence::GuardLost => format!(
                        "the guard on {} died: the daemon killed the application's whole process tree",
                        self.host
                    ),
                };
                self.hook("fenced", None, message);
            }
            Event::Maintenance(on) => {
                if *on != self.maintenance {
                    self.maintenance = *on;
                    let (name, message) = if *on {
                        ("maintenance-on", "exists: the loop does nothing")
                    } else {
                        ("maintenance-off", "is gone: the loop runs again")
                    };
                    let message = format!("{} sees {} {message}", self.host, self.maintenance_file);
                    self.hook(name, None, message);
                }
            }
            Event::Warning { name, message } => {
                // Said once while it lasts, not once per round.
                if self.warnings.insert(message.clone()) {
                    self.hook(name, None, message.clone());
                }
                self.round_warnings.insert(message.clone());
            }
            Event::RoundBegins => self.round_began = Some(Instant::now()),
            Event::RoundEnds => {
                self.last_round_warnings = std::mem::take(&mut self.round_warnings)
                    .into_iter()
                    .collect();
                if let Some(began) = self.round_began.take() {
                    self.last_round = Some(began.elapsed());
                }
                self.offer_metrics();
            }
        }
        if waited.is_some() || self.wait.is_some() || *event == Event::RoundEnds {
            self.write_state();
        }
        self.alive();
    }

    /// The state file, for `hacmp status` on this host.
    fn write_state(&mut self) {
        let pid = std::process::id();
        let Ok(started) = super::containment::start_time(pid) else {
            return;
        };
        let state = DaemonState {
            host: self.host.clone(),
            store: self.store.clone(),
            pid,
            started,
            role: self.role_name().to_string(),
            master: self.master(),
            wait: self.wait.map(|(wait, _, until)| PendingWait {
                what: wait.words().to_string(),
                until_ms: until
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_millis() as i64),
            }),
            written: super::files::wall_clock_seconds(),
            warnings: self.last_round_warnings.clone(),
        };
        self.state_file.write(&state);
    }

    /// The master this loop takes: itself, or the host it last saw as master.
    fn master(&self) -> Option<String> {
        match self.role {
            Role::Master => Some(self.host.clone()),
            _ => self.other_master.clone(),
        }
    }

    /// The role as status names it: the metrics' roles, and the two moments they do not tell.
    fn role_name(&self) -> &'static str {
        match (self.shown_role(), self.wait) {
            (Role::Maintenance, _) => "maintenance",
            (_, Some((Wait::StartRecheck, ..))) => "claiming",
            (Role::Standby, _) if self.fenced => "fenced",
            (role, _) => role.name(),
        }
    }

    /// The wait under way with the time it has left, in words.
    fn wait_text(&self) -> Option<String> {
        let (wait, until, _) = self.wait?;
        let left = until.saturating_duration_since(Instant::now());
        Some(format!(
            "{}, {} s left",
            wait.words(),
            left.as_secs_f64().ceil()
        ))
    }

    fn hook(&self, name: &'static str, peer: Option<String>, message: String) {
        if let Some(hook) = &self.hook {
            hook.send(HookEvent {
                name,
                host: self.host.clone(),
                peer,
                token: self.token,
                message,
            });
        }
    }

    fn offer_metrics(&self) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        metrics.offer(Snapshot {
            role: self.shown_role(),
            master: self.master(),
            takeovers: self.takeovers,
            incidents: self.incidents,
            fenced: self.fenced_total,
            last_round: self.last_round,
            storage: self.storage.clone(),
            hook_dropped: self.hook.as_ref().map_or(0, Hook::dropped),
        });
    }

    fn shown_role(&self) -> Role {
        if self.maintenance {
            Role::Maintenance
        } else {
            self.role
        }
    }

    /// The role in words, and the wait under way with its time left, for `systemctl status`.
    fn status_text(&self) -> String {
        let role = self.role_text();
        match self.wait_text() {
            Some(wait) => format!("{role}; {wait}"),
            None => role,
        }
    }

    fn role_text(&self) -> String {
        match self.shown_role() {
            Role::Starting => "starting".to_string(),
            Role::Maintenance => format!("maintenance ({} exists)", self.maintenance_file),
            Role::Master => match (self.pids.as_slice(), self.token) {
                ([pid], _) => format!("master, application pid {pid}"),
                ([], Some(token)) => format!("master, token {token}"),
                ([], None) => "master".to_string(),
                (pids, _) => format!("master, application pids {pids:?}"),
            },
            Role::Standby => match (&self.other_master, &self.heartbeat_age) {
                (Some(master), Some((host, age))) if host == master => {
                    format!("standby, master {master} {age} s ago")
                }
                (Some(master), _) => format!("standby, master {master}"),
                (None, _) => "standby".to_string(),
            },
        }
    }
}

/// The pipe's write end through which the signal handler hands a stop signal to its thread.
static STOP_SIGNAL_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn pass_stop_signal(signal: libc::c_int) {
    let fd = STOP_SIGNAL_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    let byte = signal as u8;
    // SAFETY: write is async-signal-safe; a failed write leaves the signal unannounced, and the
    // daemon then runs on as if none had come, which systemd's stop timeout ends.
    unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
}

/// Under systemd, tells it STOPPING=1 when SIGTERM or SIGINT arrives, then ends the daemon by
/// that signal as before (its application stays, as it stays when bash dies). Outside systemd
/// the signals keep their default action and nothing changes.
///
/// The handler only writes the signal's number to a pipe; a thread does the rest, because a
/// handler may not allocate or take locks. Caught signals return to their default action in
/// every program we exec, so the application and the hook see none of this.
pub fn notify_stopping_on_signals() {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let [read_end, write_end] = fds;
    STOP_SIGNAL_PIPE.store(write_end, std::sync::atomic::Ordering::Relaxed);
    let waiter = std::thread::Builder::new()
        .name("stop-signal".to_string())
        .spawn(move || {
            let mut byte = 0u8;
            // SAFETY: reads one byte into a local.
            let read = unsafe { libc::read(read_end, (&raw mut byte).cast(), 1) };
            if read != 1 {
                return;
            }
            notify_stopping();
            let signal = libc::c_int::from(byte);
            // SAFETY: restores the default action and sends the signal to ourselves, which ends
            // the process exactly as the signal would have without a handler.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
                libc::kill(libc::getpid(), signal);
            }
        });
    if waiter.is_err() {
        return;
    }
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: installs a handler that only calls write(2); SA_RESTART keeps the loop's
        // system calls from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = pass_stop_signal as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_says_the_role_in_words() {
        let mut reporter = Reporter {
            host: "nodeB".to_string(),
            maintenance_file: "/mnt/shared/maintenance".to_string(),
            ..Reporter::silent()
        };
        let mut after = |event: Event| {
            reporter.report(&event);
            reporter.status_text()
        };
        assert_eq!(after(Event::RoundBegins), "starting");
        let standby = Event::Standby {
            master: Some("nodeA".to_string()),
        };
        assert_eq!(after(standby), "standby, master nodeA");
        let age = Event::HeartbeatAge {
            host: "nodeA".to_string(),
            seconds: 2,
        };
        assert_eq!(after(age), "standby, master nodeA 2 s ago");
        assert_eq!(
            after(Event::Maintenance(true)),
            "maintenance (/mnt/shared/maintenance exists)"
        );
        assert_eq!(
            after(Event::Maintenance(false)),
            "standby, master nodeA 2 s ago"
        );
        assert_eq!(after(Event::Started { token: None }), "master");
        let running = Event::Running { pids: vec![4711] };
        assert_eq!(after(running), "master, application pid 4711");
        // Once this host was master, the master it knew before is history.
        assert_eq!(after(Event::Standby { master: None }), "standby");
        assert_eq!(after(Event::Started { token: Some(7) }), "master, token 7");
        // A restarted daemon that reattached is master again, with the token it kept.
        assert_eq!(after(Event::Standby { master: None }), "standby");
        assert_eq!(after(Event::Reattached { token: 7 }), "master, token 7");
    }

    #[test]
    fn a_long_wait_shows_with_its_time_left_and_ends_at_the_next_step() {
        let mut reporter = Reporter {
            host: "nodeB".to_string(),
            ..Reporter::silent()
        };
        reporter.report(&Event::Standby {
            master: Some("nodeA".to_string()),
        });
        reporter.report(&Event::Waits {
            wait: Wait::KillGrace,
            seconds: 30,
        });
        assert_eq!(
            reporter.status_text(),
            "standby, master nodeA; killing local instances, 30 s left"
        );
        assert_eq!(reporter.role_name(), "standby");
        // The time left counts down from the moment the wait began.
        if let Some((_, until, _)) = reporter.wait.as_mut() {
            *until -= Duration::from_millis(8_500);
        }
        assert_eq!(
            reporter.status_text(),
            "standby, master nodeA; killing local instances, 22 s left"
        );
        reporter.report(&Event::RoundEnds);
        assert_eq!(reporter.status_text(), "standby, master nodeA");

        reporter.report(&Event::Waits {
            wait: Wait::StartRecheck,
            seconds: 5,
        });
        assert_eq!(reporter.role_name(), "claiming");
        assert_eq!(
            reporter.status_text(),
            "standby, master nodeA; recheck before start, 5 s left"
        );
        reporter.report(&Event::Started { token: None });
        assert_eq!(reporter.role_name(), "master");
        assert_eq!(reporter.status_text(), "master");
    }

    #[test]
    fn a_fenced_host_stays_fenced_until_it_is_master_again() {
        let mut reporter = Reporter::silent();
        reporter.report(&Event::Started { token: Some(3) });
        reporter.report(&Event::Fenced(Fence::LeaseRanOut));
        reporter.report(&Event::Standby { master: None });
        assert_eq!(reporter.role_name(), "fenced");
        reporter.report(&Event::Maintenance(true));
        assert_eq!(reporter.role_name(), "maintenance");
        reporter.report(&Event::Maintenance(false));
        reporter.report(&Event::Started { token: Some(4) });
        assert_eq!(reporter.role_name(), "master");
    }
}
