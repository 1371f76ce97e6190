//! The discrete-event scheduler: one run of a scenario in virtual time.
//!
//! Each node has at most one request outstanding. The scheduler repeatedly takes whichever
//! comes first, a timer (scenario event, app exit, daemon start) or the node with the earliest
//! ready time; timers win ties, and nodes ready at the same millisecond are ordered by the
//! seeded generator. Serving a request advances its node's ready time by the request's cost:
//! a sleep its duration, anything else the scenario's `op_latency_ms` (plus the extra latency of
//! slow storage). Because only one daemon acts at a time, and only when the scheduler answers
//! it, a scenario and a seed always give the same trace.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::audit::{Audit, Others};
use super::bash::{BashDaemon, BashSetup};
use super::daemon::Daemon;
use super::hacmp::HacmpDaemon;
use super::limits;
use super::random::SplitMix64;
use super::request::{Message, Request, Value};
use super::scenario::{Action, EventSpec, Scenario};
use super::world::{self, Cluster, Health, Link, Timer, resolve};
use crate::config::{Settings, Variables};
use crate::safe::record::{Phase, Record};
use crate::world::{Answer, EtcdRequest, StorageOp};

/// systemd's default RestartSec, before `Restart=on-failure` starts the daemon again.
const RESTART_DELAY_MS: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Bash,
    /// hacmp in the compat profile.
    Hacmp,
    /// hacmp in the safe profile (`hacmpProfile=safe`).
    Safe,
}

impl Driver {
    /// The value of hacmpProfile the node's loop runs with.
    fn profile(self) -> &'static str {
        match self {
            Driver::Safe => "safe",
            Driver::Bash | Driver::Hacmp => "compat",
        }
    }
}

/// One line of a node's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    pub at_ms: u64,
    pub text: String,
}

impl std::fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>6}.{:03} {}",
            self.at_ms / 1000,
            self.at_ms % 1000,
            self.text
        )
    }
}

/// One protocol step of a safe node: a storage operation, an etcd request or a guard call, from
/// when the node
/// asked until it had its answer, in virtual milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolStep {
    pub node: usize,
    pub kind: StepKind,
    pub start_ms: u64,
    pub end_ms: u64,
    /// When the deadline it carries falls: the storage limit of an operation, the guard's
    /// deadline (the end of the lease) of a guard start or extension.
    pub deadline_ms: Option<u64>,
    /// The shared storage a storage operation went to (by its index among the sites).
    pub storage: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    List,
    Read,
    /// A record write; `claim` when it writes a claim (not yet master).
    Write {
        claim: bool,
    },
    Exists,
    /// A request to the etcd cluster; `campaign` for the transaction that takes the leader key
    /// (the etcd backend's claim).
    Etcd {
        campaign: bool,
    },
    GuardStart,
    GuardAttach,
    GuardExtend,
    GuardState,
    GuardStop,
}

impl StepKind {
    /// The kind of a safe node's request, or `None` for one that is not a protocol step (or,
    /// for a storage batch, is several).
    fn of(request: &Request) -> Option<StepKind> {
        Some(match request {
            Request::FileExists { .. } => StepKind::Exists,
            Request::Etcd { request, .. } => StepKind::Etcd {
                campaign: matches!(request, EtcdRequest::Campaign { .. }),
            },
            Request::GuardStart { .. } => StepKind::GuardStart,
            Request::GuardAttach(_) => StepKind::GuardAttach,
            Request::GuardExtend(_) => StepKind::GuardExtend,
            Request::GuardState => StepKind::GuardState,
            Request::GuardStop(_) => StepKind::GuardStop,
            _ => return None,
        })
    }

    /// The kind of one operation of a storage batch.
    fn of_op(op: &StorageOp) -> StepKind {
        match op {
            StorageOp::List { .. } => StepKind::List,
            StorageOp::Read { .. } => StepKind::Read,
            StorageOp::Write { content, .. } => StepKind::Write {
                claim: Record::parse(content).is_some_and(|record| record.phase == Phase::Claim),
            },
        }
    }
}

/// What a safe daemon prints when its node's mount caches directory listings, before it exits
/// with status 2: the simulator's counterpart of the real preflight check (`preflight.rs`).
pub const LISTING_CACHE_REFUSAL: &str = "hacmp: heartBeatDir is on an NFS mount that answers directory listings from a cache; the safe profile needs every listing fresh: mount it with actimeo=0 (or noac)";

pub struct RunResult {
    pub traces: Vec<Vec<TraceEntry>>,
    /// Every protocol step of the safe nodes, in the order they were served.
    pub steps: Vec<ProtocolStep>,
    pub audit: Audit,
    /// Whether every fault had healed by the end (see `Run::healthy`).
    pub healthy_at_end: bool,
}

/// What the scheduler needs besides the scenario.
pub struct Setup<'a> {
    pub scenario: &'a Scenario,
    /// The driver of each node.
    pub drivers: &'a [Driver],
    pub original: &'a Path,
    /// The variables read from the original, before the scenario's overrides.
    pub settings: &'a Settings,
}

struct Slot {
    daemon: Option<Box<dyn Daemon>>,
    ready_ms: u64,
    pending: Option<Message>,
    up: bool,
    paused: bool,
    waiting_for_storage: bool,
    starts: u32,
}

impl Slot {
    fn schedulable(&self) -> bool {
        self.daemon.is_some() && !self.paused && !self.waiting_for_storage
    }
}

/// The variables every node's loop runs with: the original's, the scenario's overrides, and
/// the node's name as hostName.
pub fn node_variables(
    settings: &Settings,
    scenario: &Scenario,
    node: &str,
    driver: Driver,
) -> Result<Variables, String> {
    let mut settings = settings.clone();
    // The safe profile keeps its records in every site's directory; bash and compat know only
    // heartBeatDir, one of them.
    let listed = scenario
        .nodes
        .iter()
        .find(|spec| spec.name == node)
        .map_or(&[][..], |spec| &spec.sites[..]);
    let sites = (!scenario.sites.is_empty() && driver == Driver::Safe).then(|| {
        let dirs: Vec<&str> = scenario
            .sites
            .iter()
            .filter(|site| listed.is_empty() || listed.contains(&site.name))
            .map(|site| site.dir.as_str())
            .collect();
        dirs.join(" ")
    });
    for setting in settings.settings.iter_mut() {
        let value = match setting.name {
            "hostName" => Some(node),
            "hacmpProfile" => Some(driver.profile()),
            "hacmpHeartBeatDirs" => sites.as_deref(),
            name => scenario.variables.get(name).map(String::as_str),
        };
        let value = value.or_else(|| etcd_setting(scenario, setting.name));
        if let Some(value) = value {
            setting.value = value.to_string();
            setting.origin = crate::config::Origin::Environment;
        }
    }
    settings
        .validate()
        .map_err(|e| format!("scenario {}: {e}", scenario.name))
}

/// The value a node of a scenario with an etcd cluster gives an etcd variable: the backend,
/// one endpoint per member, and the prefix the simulated cluster serves.
fn etcd_setting(scenario: &Scenario, name: &str) -> Option<&'static str> {
    scenario.etcd.as_ref()?;
    match name {
        "hacmpBackend" => Some("etcd"),
        "hacmpEtcdEndpoints" => Some(ETCD_ENDPOINTS),
        "hacmpEtcdPrefix" => Some(world::ETCD_PREFIX),
        _ => None,
    }
}

/// The endpoints every node of an etcd scenario is configured with; the simulated cluster
/// serves them all as one.
const ETCD_ENDPOINTS: &str = "http://etcd-0:2379,http://etcd-1:2379,http://etcd-2:2379";

/// Makes a fresh directory for one run's real files (bash's working directories).
fn run_directory() -> Result<PathBuf, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "hacmp-sim-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    dir.canonicalize().map_err(|e| e.to_string())
}

struct Run<'a> {
    setup: &'a Setup<'a>,
    variables: Vec<Variables>,
    cluster: Cluster,
    slots: Vec<Slot>,
    traces: Vec<Vec<TraceEntry>>,
    rng: SplitMix64,
    directory: Option<PathBuf>,
    original: PathBuf,
    /// Per node, the timers that came due while the host was frozen; they fire at thaw.
    deferred: Vec<Vec<Timer>>,
    steps: Vec<ProtocolStep>,
}

pub fn run(setup: &Setup) -> Result<RunResult, String> {
    let scenario = setup.scenario;
    assert_eq!(setup.drivers.len(), scenario.nodes.len());
    let variables = scenario
        .nodes
        .iter()
        .zip(setup.drivers)
        .map(|(node, &driver)| node_variables(setup.settings, scenario, &node.name, driver))
        .collect::<Result<Vec<_>, _>>()?;
    let cluster = Cluster::new(
        scenario,
        &variables[0].heart_beat_dir,
        &variables[0].maintenance_file,
    );
    let needs_bash = setup.drivers.contains(&Driver::Bash);
    let directory = if needs_bash {
        Some(run_directory()?)
    } else {
        None
    };
    let original = setup
        .original
        .canonicalize()
        .map_err(|e| format!("{}: {e}", setup.original.display()))?;
    let mut run = Run {
        setup,
        variables,
        cluster,
        slots: (0..scenario.nodes.len())
            .map(|_| Slot {
                daemon: None,
                ready_ms: 0,
                pending: None,
                up: true,
                paused: false,
                waiting_for_storage: false,
                starts: 0,
            })
            .collect(),
        traces: vec![Vec::new(); scenario.nodes.len()],
        rng: SplitMix64::new(scenario.seed),
        directory,
        original,
        deferred: vec![Vec::new(); scenario.nodes.len()],
        steps: Vec::new(),
    };
    let outcome = run.main_loop();
    let healthy_at_end = run.healthy();
    for node in 0..run.slots.len() {
        run.halt(node);
    }
    if let Some(directory) = &run.directory {
        let _ = std::fs::remove_dir_all(directory);
    }
    outcome?;
    let end_ms = scenario.duration * 1000;
    run.cluster.audit.finish(end_ms);
    Ok(RunResult {
        traces: run.traces,
        steps: run.steps,
        audit: run.cluster.audit,
        healthy_at_end,
    })
}

impl Run<'_> {
    fn main_loop(&mut self) -> Result<(), String> {
        let end_ms = self.setup.scenario.duration * 1000;
        loop {
            let earliest_node = (0..self.slots.len())
                .filter(|&i| self.schedulable(i))
                .map(|i| self.slots[i].ready_ms)
                .min();
            let timer = self.cluster.next_timer_ms();
            let (at_ms, is_timer) = match (timer, earliest_node) {
                (Some(t), Some(n)) if t <= n => (t, true),
                (_, Some(n)) => (n, false),
                (Some(t), None) => (t, true),
                (None, None) => return Ok(()),
            };
            if at_ms > end_ms {
                return Ok(());
            }
            assert!(at_ms >= self.cluster.now_ms, "virtual time went backwards");
            self.cluster.now_ms = at_ms;
            if is_timer {
                let timer = self.cluster.pop_timer().expect("a timer was pending");
                self.fire(timer)?;
            } else {
                let ready: Vec<usize> = (0..self.slots.len())
                    .filter(|&i| self.schedulable(i) && self.slots[i].ready_ms == at_ms)
                    .collect();
                let node = ready[self.rng.below(ready.len() as u64) as usize];
                self.step(node)?;
            }
        }
    }

    fn schedulable(&self, node: usize) -> bool {
        self.slots[node].schedulable() && !self.cluster.nodes[node].frozen
    }

    /// Whether every node and the cluster are healthy: nothing down, paused, frozen, slow or
    /// failing.
    fn healthy(&self) -> bool {
        self.others(None) == Others::Healthy
    }

    /// How the nodes but `except` are, for the failover rules: a storage that answers slowly
    /// is told apart, because its own bound applies then.
    fn others(&self, except: Option<usize>) -> Others {
        let maintenance = &self.variables[0].maintenance_file;
        let mut slowest_ms = None;
        for node in (0..self.slots.len()).filter(|&node| Some(node) != except) {
            let slot = &self.slots[node];
            let running = slot.up
                && slot.daemon.is_some()
                && !slot.paused
                && !slot.waiting_for_storage
                && !self.cluster.nodes[node].frozen
                && !self.cluster.in_maintenance(node, maintenance)
                && self
                    .cluster
                    .etcd
                    .as_ref()
                    .is_none_or(|etcd| etcd.healthy_for(node) && !etcd.in_maintenance());
            if !running {
                return Others::Unhealthy;
            }
            for &health in &self.cluster.nodes[node].storage {
                match health {
                    Health::Healthy => {}
                    Health::Slow(ms) => slowest_ms = slowest_ms.max(Some(ms)),
                    _ => return Others::Unhealthy,
                }
            }
        }
        if !self.cluster.heartbeat_dirs_exist() || self.setup.scenario.app.lifetime.is_some() {
            return Others::Unhealthy;
        }
        match slowest_ms {
            None => Others::Healthy,
            Some(slowest_ms) => Others::SlowStorage { slowest_ms },
        }
    }

    fn trace(&mut self, node: usize, text: String) -> Result<(), String> {
        let trace = &mut self.traces[node];
        if trace.len() >= limits::MAX_TRACE_ENTRIES {
            return Err(format!(
                "node {}: more than {} trace entries",
                self.setup.scenario.nodes[node].name,
                limits::MAX_TRACE_ENTRIES
            ));
        }
        trace.push(TraceEntry {
            at_ms: self.cluster.now_ms,
            text,
        });
        Ok(())
    }

    /// Serves the node's next request (or notes that its daemon ended).
    fn step(&mut self, node: usize) -> Result<(), String> {
        let slot = &mut self.slots[node];
        let message = match slot.pending.take() {
            Some(message) => message,
            None => slot.daemon.as_mut().expect("schedulable").next()?,
        };
        let (request, wants_reply) = match message {
            Message::Exited(status) => {
                self.trace(node, format!("daemon exited with status {status}"))?;
                self.halt(node);
                if status != 0 && self.setup.scenario.nodes[node].restart_on_failure {
                    let at = self.cluster.now_ms + RESTART_DELAY_MS;
                    self.cluster.schedule(at, Timer::DaemonStart(node));
                }
                return Ok(());
            }
            Message::Request {
                request,
                wants_reply,
            } => (request, wants_reply),
        };
        if self.cluster.blocks_on_hung_storage(node, &request) {
            let slot = &mut self.slots[node];
            slot.pending = Some(Message::Request {
                request,
                wants_reply,
            });
            slot.waiting_for_storage = true;
            return Ok(());
        }
        let request = match request {
            // The two drivers name the log file differently (as written, or as bash opened it);
            // where it is is what counts.
            Request::StartDetached { command, log_file } => Request::StartDetached {
                command,
                log_file: resolve(&log_file),
            },
            other => other,
        };
        let latency = self.setup.scenario.op_latency_ms;
        let (outcome, cost) = self.cluster.serve(node, &request, latency);
        self.trace(node, format!("{request} -> {outcome}"))?;
        if let Some(kind) = StepKind::of(&request) {
            self.note_step(node, kind, &request, cost);
        }
        if let (Request::StorageBatch { ops, limit_ms, .. }, Value::Answers(answers)) =
            (&request, &outcome.value)
        {
            self.note_batch(node, ops, *limit_ms, answers, cost);
        }
        let slot = &mut self.slots[node];
        if wants_reply {
            slot.daemon.as_mut().expect("schedulable").reply(&outcome)?;
        }
        slot.ready_ms = self.cluster.now_ms + cost;
        Ok(())
    }

    fn note_step(&mut self, node: usize, kind: StepKind, request: &Request, cost: u64) {
        let now = self.cluster.now_ms;
        let deadline_ms = match request {
            Request::GuardStart { deadline_ms, .. } | Request::GuardExtend(deadline_ms) => {
                // The guard's deadline is on the node's boot clock.
                let boot_ms = now - self.cluster.elapsed_ms(node).min(now);
                Some(boot_ms + deadline_ms)
            }
            other => other.limit_ms().map(|limit| now + limit),
        };
        self.steps.push(ProtocolStep {
            node,
            kind,
            start_ms: now,
            end_ms: now + cost,
            deadline_ms,
            storage: None,
        });
    }

    /// Notes each operation of a storage batch as a step of its own, from the batch's start
    /// until its own answer, or the batch's end (`cost` after its start) for one left behind.
    fn note_batch(
        &mut self,
        node: usize,
        ops: &[StorageOp],
        limit_ms: u64,
        answers: &[Option<Answer>],
        cost: u64,
    ) {
        let now = self.cluster.now_ms;
        let asked_at = self.cluster.elapsed_ms(node);
        for (op, answer) in ops.iter().zip(answers) {
            let duration = answer
                .as_ref()
                .map_or(cost, |answer| answer.at.as_millis() as u64 - asked_at);
            self.steps.push(ProtocolStep {
                node,
                kind: StepKind::of_op(op),
                start_ms: now,
                end_ms: now + duration,
                deadline_ms: Some(now + limit_ms),
                storage: self.cluster.storage_of(op.path()),
            });
        }
    }

    /// Whether a safe daemon refuses to start on the node: its mount caches directory listings
    /// (unless the scenario lets it, to show what the refusal prevents).
    fn refuses_to_start(&self, node: usize) -> bool {
        self.setup.drivers[node] == Driver::Safe
            && self.cluster.nodes[node].listing_cache_ms > 0
            && !self.setup.scenario.allow_listing_cache
    }

    fn start_daemon(&mut self, node: usize) -> Result<(), String> {
        if !self.slots[node].up || self.slots[node].daemon.is_some() {
            return Ok(());
        }
        if self.refuses_to_start(node) {
            // systemd's start limit (5 starts in 10 s) soon ends the restarts of a daemon that
            // refuses at once; the simulator does not restart it at all. The node stays
            // without a daemon, so the run never counts as healed.
            self.trace(node, "daemon started".to_string())?;
            self.trace(node, format!("stderr {LISTING_CACHE_REFUSAL:?}"))?;
            return self.trace(node, "daemon exited with status 2".to_string());
        }
        // A new daemon has new worker pools: nothing of the old one's is behind for it.
        self.cluster.nodes[node].behind.clear();
        let name = &self.setup.scenario.nodes[node].name;
        let daemon: Box<dyn Daemon> = match self.setup.drivers[node] {
            Driver::Hacmp | Driver::Safe => {
                Box::new(HacmpDaemon::start(self.variables[node].clone()))
            }
            Driver::Bash => {
                let directory = self.directory.as_ref().expect("made for bash nodes");
                let cwd = directory.join(name);
                let files = directory.join(format!("{name}.{}", self.slots[node].starts));
                for dir in [&cwd, &files] {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                let marker = format!(
                    "{}-{name}-{}",
                    directory.file_name().unwrap_or_default().to_string_lossy(),
                    self.slots[node].starts
                );
                Box::new(BashDaemon::start(&BashSetup {
                    script: &self.original,
                    node: name,
                    cwd: &cwd,
                    files: &files,
                    overrides: &self.setup.scenario.variables,
                    marker: &marker,
                })?)
            }
        };
        let slot = &mut self.slots[node];
        slot.starts += 1;
        slot.daemon = Some(daemon);
        slot.ready_ms = self.cluster.now_ms;
        self.trace(node, "daemon started".to_string())
    }

    fn halt(&mut self, node: usize) {
        let slot = &mut self.slots[node];
        if let Some(daemon) = slot.daemon.take() {
            daemon.halt();
        }
        slot.pending = None;
        slot.paused = false;
        slot.waiting_for_storage = false;
    }

    /// Whether the node waited on a hung storage for a request that no longer blocks.
    fn waits_no_longer(&self, node: usize) -> bool {
        let slot = &self.slots[node];
        slot.waiting_for_storage
            && !matches!(&slot.pending, Some(Message::Request { request, .. })
                if self.cluster.blocks_on_hung_storage(node, request))
    }

    /// Lets a node that waited (paused, or on hung storage) be served again from now on.
    fn release(&mut self, node: usize) {
        let now = self.cluster.now_ms;
        let slot = &mut self.slots[node];
        slot.ready_ms = slot.ready_ms.max(now);
    }

    fn fire(&mut self, timer: Timer) -> Result<(), String> {
        let on_node = match timer {
            Timer::AppExit { node, .. }
            | Timer::AppKill { node, .. }
            | Timer::DaemonStart(node)
            | Timer::GuardDeadline(node) => Some(node),
            Timer::Event(_) | Timer::Land(_) => None,
        };
        if let Some(node) = on_node
            && self.cluster.nodes[node].frozen
        {
            // Nothing happens on a frozen host; the timer fires at thaw.
            self.deferred[node].push(timer);
            return Ok(());
        }
        match timer {
            Timer::AppExit { node, pid } => self.cluster.end_app(node, pid),
            Timer::AppKill { node, pid } => self.cluster.kill_app(node, pid),
            Timer::GuardDeadline(node) => self.cluster.guard_deadline_check(node),
            Timer::Land(id) => self.cluster.land_late(id),
            Timer::DaemonStart(node) => return self.start_daemon(node),
            Timer::Event(index) => {
                let event = self.setup.scenario.events[index].clone();
                return self.apply(&event);
            }
        }
        Ok(())
    }

    /// Records a fault that took effect just now; `alive_before` is the count before it.
    fn fault(&mut self, node: usize, label: &str, alive_before: u32) {
        let name = &self.setup.scenario.nodes[node].name;
        let label = format!("{label} {name}");
        let now = self.cluster.now_ms;
        let others = self.others(Some(node));
        self.cluster.audit.fault(now, label, alive_before, others);
    }

    /// Stops the node's daemon, guard and apps; it stays down until rebooted.
    fn crash(&mut self, node: usize, label: &str) -> Result<(), String> {
        let alive_before = self.cluster.audit.alive();
        self.halt(node);
        self.cluster.crash_host(node);
        self.deferred[node].clear();
        self.slots[node].up = false;
        self.fault(node, label, alive_before);
        Ok(())
    }

    /// Thaws a frozen host: first the timers that came due meanwhile fire (an app's exit, the
    /// guard's deadline), then its apps execute again, then its daemon goes on.
    fn thaw(&mut self, node: usize) -> Result<(), String> {
        if !self.cluster.nodes[node].frozen {
            return Ok(());
        }
        let due = std::mem::take(&mut self.deferred[node]);
        let mut daemon_due = false;
        for timer in due {
            match timer {
                Timer::DaemonStart(_) => daemon_due = true,
                other => self.fire_while_frozen(other),
            }
        }
        self.cluster.guard_deadline_check(node);
        self.cluster.set_frozen(node, false);
        self.release(node);
        if daemon_due {
            self.start_daemon(node)?;
        }
        Ok(())
    }

    /// A deferred timer of a frozen host, fired at thaw before its apps execute.
    fn fire_while_frozen(&mut self, timer: Timer) {
        match timer {
            Timer::AppExit { node, pid } => self.cluster.end_app(node, pid),
            Timer::AppKill { node, pid } => self.cluster.kill_app(node, pid),
            Timer::GuardDeadline(node) => self.cluster.guard_deadline_check(node),
            other => unreachable!("{other:?} is not deferred"),
        }
    }

    fn apply(&mut self, event: &EventSpec) -> Result<(), String> {
        let scenario = self.setup.scenario;
        let node = event.node.as_deref().and_then(|n| scenario.node_index(n));
        let site = event.site.as_deref().and_then(|s| scenario.site_index(s));
        let the_node = || node.expect("checked: the action names a node");
        if let Some(node) = node {
            self.trace(node, format!("event {:?}", event.action))?;
        }
        let maintenance = self.variables[0].maintenance_file.clone();
        match event.action {
            Action::Crash => self.crash(the_node(), "crash")?,
            Action::Reboot => {
                if self.slots[the_node()].up {
                    self.crash(the_node(), "reboot")?;
                }
                self.slots[the_node()].up = true;
                self.cluster.boot_host(the_node());
                self.start_daemon(the_node())?;
            }
            Action::DaemonKill => self.halt(the_node()),
            Action::DaemonStart => self.start_daemon(the_node())?,
            Action::Pause => {
                self.slots[the_node()].paused = self.slots[the_node()].daemon.is_some()
            }
            Action::Resume => {
                self.slots[the_node()].paused = false;
                self.release(the_node());
            }
            Action::AppCrash => {
                let alive_before = self.cluster.audit.alive();
                self.cluster.end_all_apps(the_node());
                self.fault(the_node(), "app crash", alive_before);
            }
            Action::GuardKill => self.cluster.guard_killed(the_node()),
            Action::Freeze => {
                let alive_before = self.cluster.audit.alive();
                if !self.cluster.nodes[the_node()].frozen && self.slots[the_node()].up {
                    self.cluster.set_frozen(the_node(), true);
                    self.fault(the_node(), "freeze", alive_before);
                }
            }
            Action::Thaw => self.thaw(the_node())?,
            Action::ClockJump => {
                let by = event.seconds.expect("checked: clock_jump has seconds");
                self.cluster.jump_clock(node, by.millis());
            }
            Action::AttributeCache => {
                let age = event.seconds.expect("checked: attribute_cache has seconds");
                self.cluster
                    .set_attribute_cache(the_node(), age.millis() as u64);
            }
            Action::MaintenanceOn | Action::MaintenanceOff => {
                let on = event.action == Action::MaintenanceOn;
                self.cluster.set_maintenance(node, &maintenance, on);
            }
            Action::StorageFail
            | Action::StorageHang
            | Action::StorageSlow
            | Action::StorageLate
            | Action::StorageRestore => {
                let health = match (event.action, event.extra_ms) {
                    (Action::StorageFail, _) => Health::Failing,
                    (Action::StorageHang, _) => Health::Hung,
                    (Action::StorageSlow, Some(extra)) => Health::Slow(extra),
                    (Action::StorageLate, Some(delay)) => Health::Late(delay),
                    _ => Health::Healthy,
                };
                // Without a node the site is lost (or back) for every node.
                let nodes: Vec<usize> = match node {
                    Some(node) => vec![node],
                    None => (0..self.slots.len()).collect(),
                };
                for node in nodes {
                    for storage in self.cluster.storages_hit(site) {
                        self.cluster.set_storage(node, storage, health);
                    }
                    let heals = !matches!(health, Health::Hung | Health::Failing);
                    if heals && self.waits_no_longer(node) {
                        self.slots[node].waiting_for_storage = false;
                        self.release(node);
                    }
                }
            }
            Action::StrayEntry | Action::DeleteEntry | Action::ReplaceByDir => {
                let name = event
                    .name
                    .as_deref()
                    .expect("checked: entry events have a name");
                for storage in self.cluster.storages_hit(site) {
                    match event.action {
                        Action::StrayEntry => {
                            let kind = event.kind.unwrap_or_default();
                            self.cluster.add_entry(storage, name, kind);
                        }
                        Action::DeleteEntry => self.cluster.delete_entry(storage, name),
                        _ => self.cluster.replace_by_dir(storage, name),
                    }
                }
            }
            Action::RemoveDir | Action::CreateDir => {
                for storage in self.cluster.storages_hit(site) {
                    let exists = event.action == Action::CreateDir;
                    self.cluster.set_heartbeat_dir(storage, exists);
                }
            }
            action if action.on_etcd() => self.apply_etcd(event, node),
            other => unreachable!("{other:?} is handled above"),
        }
        Ok(())
    }

    /// An event on the etcd cluster, or on a node's link to it.
    fn apply_etcd(&mut self, event: &EventSpec, node: Option<usize>) {
        let now = self.cluster.now_ms;
        let etcd = self
            .cluster
            .etcd
            .as_mut()
            .expect("checked: etcd events need an etcd cluster");
        let member = || event.member.expect("checked: the action names a member");
        let the_node = || node.expect("checked: the action names a node");
        match event.action {
            Action::EtcdMemberDown => etcd.member_down(member(), now),
            Action::EtcdMemberUp => etcd.member_up(member(), now),
            Action::EtcdLeaderChange => etcd.leader_change(now),
            Action::EtcdPartition => etcd.set_link(the_node(), Link::Cut),
            Action::EtcdSlow => {
                let extra = event.extra_ms.expect("checked: etcd_slow has extra_ms");
                etcd.set_link(the_node(), Link::Slow(extra));
            }
            Action::EtcdHeal => etcd.set_link(the_node(), Link::Healthy),
            Action::EtcdMaintenanceOn => etcd.set_maintenance(true, now),
            Action::EtcdMaintenanceOff => etcd.set_maintenance(false, now),
            other => unreachable!("{other:?} is not an etcd event"),
        }
    }
}
