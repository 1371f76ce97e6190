//! Row 1: what a daemon costs while nothing happens, bash original against hacmp, in the active
//! role (master, application running: about 1 s per loop) and the standby role (another host's
//! heartbeat is fresh: about 33 s per loop, stretched by killInstance's 30 s wait).
//!
//! All four daemons run at once, each in its own directory with the same layout and the same
//! variables (loopTime=1, faileOverTime=10), so each pair shares the machine's load. perf counts
//! only inside a window that opens and closes half a second into the loop's `sleep 1`, right
//! after a "In monitoring loop sleep" line, so the window holds whole iterations only.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hacmp::pattern::Pattern;
use hacmp::real::files;

use crate::children::{self, Owned};
use crate::perf::PerfCounters;
use crate::process_scan;
use crate::report::{Row, Section};
use crate::support::{Daemon, Node, NodeVariables, regex_escape, unique_marker, wait_until};

pub struct Settings {
    pub seconds: u64,
    /// Iterations left out before the window opens: the first one pays for start-up.
    pub warmup_iterations: usize,
    /// How long past `seconds` the window waits for an iteration to end; after that it closes
    /// mid-iteration and the per-iteration figure is left out.
    pub grace: Duration,
}

/// The line each loop iteration starts with, in bash and in hacmp.
const LOOP_LINE: &str = "In monitoring loop sleep ";
/// Where in the loop's one-second sleep the window opens and closes: far from both ends.
const INTO_SLEEP: Duration = Duration::from_millis(500);
/// A window edge later than this after the loop line may have let the next iteration's first
/// processes in (or out): its iterations are then not whole.
const LATEST_IN_SLEEP: Duration = Duration::from_millis(900);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Longer than any steady-state iteration (the standby's is about 33 s).
const LONGEST_ITERATION: Duration = Duration::from_secs(45);
/// How often the peers' heartbeats are touched, and the machine's processes counted and one
/// scan timed, as the daemons scan: once a second, with whatever else runs on the machine.
const TICK: Duration = Duration::from_secs(1);
const HOST: &str = "nodeA";
const PEER: &str = "nodeB";
const LOOP_TIME: u64 = 1;
const FAILE_OVER_TIME: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Active,
    Standby,
}

impl Role {
    fn describe(self) -> &'static str {
        match self {
            Role::Active => "active role (master, application running)",
            Role::Standby => "standby role (another host's heartbeat is fresh)",
        }
    }
}

/// The span perf counted in.
struct Window {
    length: Duration,
    iterations: usize,
    /// Whether both edges fell inside the loop's sleep, so that the window holds exactly
    /// `iterations` whole iterations.
    whole_iterations: bool,
}

struct Figures {
    cpu_seconds_per_hour: f64,
    tasks_created: u64,
    iterations: usize,
    whole_iterations: bool,
    window: Duration,
    peak_rss_kib: u64,
}

impl Figures {
    fn cpu_per_iteration(&self) -> Option<Duration> {
        (self.whole_iterations && self.iterations > 0).then(|| {
            Duration::from_secs_f64(
                self.cpu_seconds_per_hour * self.window.as_secs_f64()
                    / 3600.0
                    / self.iterations as f64,
            )
        })
    }

    fn tasks_per_iteration(&self) -> Option<f64> {
        (self.whole_iterations && self.iterations > 0)
            .then(|| self.tasks_created as f64 / self.iterations as f64)
    }
}

enum Phase {
    WarmingUp,
    Measuring {
        opened: Instant,
        lines_at_open: usize,
        opened_in_sleep: bool,
    },
    Closed(Window),
    Done(Figures),
}

/// One daemon in one role, with what it needs to stay in that role.
struct Run {
    daemon: Daemon,
    role: Role,
    node: Node,
    /// The active role's application: started by the benchmark, not by the daemon, so that its
    /// own CPU time and `sleep 1` children are not counted as the daemon's.
    application: Owned,
    peer_heartbeat: Option<PathBuf>,
    perf: Option<PerfCounters>,
    started: Instant,
    loop_lines: usize,
    last_loop_line: Instant,
    phase: Phase,
}

impl Run {
    fn start(root: &Path, daemon: Daemon, role: Role) -> Run {
        let label = format!("{daemon:?}-{role:?}").to_lowercase();
        let dir = root.join(&label);
        let heart_beat_dir = dir.join("heartbeat");
        fs::create_dir_all(&heart_beat_dir).expect("the heartbeat directory");
        let node = Node::new(
            &dir,
            NodeVariables {
                host_name: HOST.to_string(),
                heart_beat_dir: heart_beat_dir.clone(),
                marker: unique_marker(&format!("bench-{label}")),
                faile_over_time: FAILE_OVER_TIME,
                loop_time: LOOP_TIME,
            },
        );
        let mut application = Owned::default();
        let mut peer_heartbeat = None;
        match role {
            Role::Active => {
                touch(&heart_beat_dir.join(HOST));
                application.push(start_application(&node));
                let expected = application.pids();
                wait_until("the application to start", Duration::from_secs(10), || {
                    node.app_pids() == expected
                });
            }
            Role::Standby => {
                let peer = heart_beat_dir.join(PEER);
                touch(&peer);
                peer_heartbeat = Some(peer);
            }
        }
        let mut node = node;
        node.start(daemon);
        let perf = PerfCounters::attach(node.daemon_pid(), &dir);
        Run {
            daemon,
            role,
            node,
            application,
            peer_heartbeat,
            perf: Some(perf),
            started: Instant::now(),
            loop_lines: 0,
            last_loop_line: Instant::now(),
            phase: Phase::WarmingUp,
        }
    }

    fn label(&self) -> String {
        format!("{:?} in the {:?} role", self.daemon, self.role)
    }

    fn touch_peer(&self) {
        if let Some(peer) = &self.peer_heartbeat {
            touch(peer);
        }
    }

    fn poll(&mut self, settings: &Settings) {
        // Read the clock for each run: closing another run's window may have taken a while.
        let now = Instant::now();
        let lines = self
            .node
            .output()
            .iter()
            .filter(|l| l.starts_with(LOOP_LINE))
            .count();
        if lines > self.loop_lines {
            self.loop_lines = lines;
            self.last_loop_line = now;
        }
        let in_sleep = now >= self.last_loop_line + INTO_SLEEP;
        match self.phase {
            Phase::WarmingUp => {
                if self.loop_lines > settings.warmup_iterations && in_sleep {
                    self.perf.as_mut().expect("perf is attached").enable();
                    let opened = Instant::now();
                    self.phase = Phase::Measuring {
                        opened,
                        lines_at_open: self.loop_lines,
                        opened_in_sleep: opened - self.last_loop_line < LATEST_IN_SLEEP,
                    };
                } else {
                    let limit = LONGEST_ITERATION * (settings.warmup_iterations as u32 + 1);
                    assert!(
                        now - self.started < limit,
                        "{}: no loop iteration in {limit:?}; stderr:\n{}",
                        self.label(),
                        self.node.errors()
                    );
                }
            }
            Phase::Measuring {
                opened,
                lines_at_open,
                opened_in_sleep,
            } => {
                let long_enough = opened + Duration::from_secs(settings.seconds);
                let on_boundary = self.last_loop_line >= long_enough && in_sleep;
                if on_boundary || now >= long_enough + settings.grace {
                    self.perf.as_mut().expect("perf is attached").disable();
                    let closed = Instant::now();
                    self.phase = Phase::Closed(Window {
                        length: closed - opened,
                        iterations: self.loop_lines - lines_at_open,
                        whole_iterations: on_boundary
                            && opened_in_sleep
                            && closed - self.last_loop_line < LATEST_IN_SLEEP,
                    });
                }
            }
            Phase::Closed(_) | Phase::Done(_) => {}
        }
    }

    fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// Ends the daemon once its window has closed and reads what perf counted.
    fn finish(&mut self) {
        let Phase::Closed(window) = &self.phase else {
            panic!("{}: finished before its window closed", self.label());
        };
        let peak_rss_kib = peak_rss_kib(self.node.daemon_pid()).unwrap_or_else(|| {
            panic!(
                "{} ended during the run; stderr:\n{}",
                self.label(),
                self.node.errors()
            )
        });
        self.node.kill_daemon();
        let counts = self.perf.take().expect("perf is attached").finish();
        self.check_role();
        let figures = Figures {
            cpu_seconds_per_hour: counts.cpu.as_secs_f64() * 3600.0 / window.length.as_secs_f64(),
            tasks_created: counts.tasks_created,
            iterations: window.iterations,
            whole_iterations: window.whole_iterations,
            window: window.length,
            peak_rss_kib,
        };
        self.phase = Phase::Done(figures);
    }

    /// A daemon that left its role measured something else: the figures would be wrong.
    fn check_role(&self) {
        let output = self.node.output();
        let said = |line: &str| output.iter().any(|l| l == line);
        let (stayed, left) = match self.role {
            Role::Active => (
                !said("We are not master, so kill any running instances")
                    && !said("in Starting server")
                    && self.node.app_pids() == self.application.pids(),
                "stopped being the master with its application running",
            ),
            Role::Standby => (
                !said("in Starting server") && self.node.app_pids().is_empty(),
                "stopped being a standby",
            ),
        };
        assert!(
            stayed,
            "{} {left}; its output:\n{}",
            self.label(),
            output.join("\n")
        );
    }

    fn figures(&self) -> Option<&Figures> {
        match &self.phase {
            Phase::Done(figures) => Some(figures),
            _ => None,
        }
    }
}

/// Starts `startCmd` as the daemon would, from the node's directory, its output in the log.
fn start_application(node: &Node) -> std::process::Child {
    let log = fs::File::create(node.dir.join("app.log")).expect("the application's log");
    children::spawn_tied(
        Command::new("./exampleApplication.sh")
            .args([node.vars.marker.as_str(), HOST])
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the application's log"))
            .stderr(log),
    )
    .expect("the example application starts")
}

fn touch(path: &Path) {
    files::touch(&path.display().to_string()).expect("a heartbeat file can be touched");
}

/// VmHWM, the process's peak resident set size; `None` once it has ended.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the four daemons at once in `root` and returns row 1.
pub fn measure(settings: &Settings, root: &Path, command: &str) -> Section {
    let mut runs: Vec<Run> = [Role::Active, Role::Standby]
        .into_iter()
        .flat_map(|role| [Daemon::Bash, Daemon::Hacmp].map(|daemon| (daemon, role)))
        .map(|(daemon, role)| Run::start(root, daemon, role))
        .collect();
    let mut last_tick = Instant::now();
    let active_pattern = {
        let active = runs
            .iter()
            .find(|r| r.role == Role::Active)
            .expect("an active run");
        Pattern::new(&regex_escape(&active.node.vars.app_pattern()))
            .expect("an escaped pattern is valid")
    };
    let mut machine_processes = Range::default();
    let mut scan_times = Vec::new();
    while !runs.iter().all(Run::is_closed) {
        children::check_interrupted();
        if last_tick.elapsed() >= TICK {
            runs.iter().for_each(Run::touch_peer);
            machine_processes.include(process_scan::count_processes());
            scan_times.push(process_scan::time_find(&active_pattern));
            last_tick = Instant::now();
        }
        for run in &mut runs {
            run.poll(settings);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    runs.iter_mut().for_each(Run::finish);
    let figures_of = |daemon, role| {
        runs.iter()
            .find(|r| r.daemon == daemon && r.role == role)
            .and_then(Run::figures)
            .expect("every run has finished")
    };
    let rows = [Role::Active, Role::Standby]
        .into_iter()
        .flat_map(|role| {
            rows(
                role,
                figures_of(Daemon::Bash, role),
                figures_of(Daemon::Hacmp, role),
                command,
            )
        })
        .collect();
    let scan = ScanCost {
        time: process_scan::median(&scan_times),
        samples: scan_times.len(),
        processes: machine_processes,
    };
    let method = format!("{}\n\n{}", method(settings), reading(&figures_of, &scan));
    drop(runs);
    children::end_orphans();
    Section { rows, method }
}

/// The smallest and largest of the values seen.
#[derive(Default, Clone, Copy)]
struct Range {
    seen: Option<(usize, usize)>,
}

impl Range {
    fn include(&mut self, value: usize) {
        let (low, high) = self.seen.unwrap_or((value, value));
        self.seen = Some((low.min(value), high.max(value)));
    }

    fn describe(&self) -> String {
        match self.seen {
            Some((low, high)) if low == high => low.to_string(),
            Some((low, high)) => format!("{low} to {high}"),
            None => "not sampled".to_string(),
        }
    }
}

/// What one /proc scan cost while the daemons ran.
struct ScanCost {
    /// The median of the samples.
    time: Duration,
    samples: usize,
    processes: Range,
}

fn milliseconds(time: Option<Duration>) -> String {
    time.map_or("(no whole iteration)".to_string(), |t| {
        format!("{:.2} ms", t.as_secs_f64() * 1000.0)
    })
}

/// Why the CPU figures are what they are, from the figures themselves.
fn reading<'a>(figures_of: &dyn Fn(Daemon, Role) -> &'a Figures, scan: &ScanCost) -> String {
    let per_iteration = |daemon, role| figures_of(daemon, role).cpu_per_iteration();
    let share = |role, scans: f64| {
        per_iteration(Daemon::Hacmp, role).map_or("an unknown share".to_string(), |t| {
            format!(
                "{:.0} %",
                100.0 * scans * scan.time.as_secs_f64() / t.as_secs_f64()
            )
        })
    };
    let tasks = |role| {
        figures_of(Daemon::Bash, role)
            .tasks_per_iteration()
            .map_or("its".to_string(), |t| format!("{t:.1}"))
    };
    let mut text = format!(
        "**Reading row 1.** Per loop iteration hacmp spends {hacmp_active} of CPU time in the \
         active role and {hacmp_standby} in the standby role; bash spends {bash_active} and \
         {bash_standby}, and creates {bash_active_tasks} and {bash_standby_tasks} \
         processes. One /proc scan for the active pattern, timed in the benchmark's process \
         once a second during the window (median of {samples}, with {processes} processes on \
         the machine, which other users share), costs {scan}. hacmp scans once per active \
         iteration (isAlive) and twice per standby iteration (killInstance's two `pgrep -f`): \
         about {active_share} and {standby_share} of its CPU time per iteration. The scan \
         reads every process's command line, as `pgrep -f` does, and it must: the loop prints \
         every matching PID, as the script's pgrep does, and may not assume which process is \
         the application. Its cost grows with the number of processes on the machine; bash \
         pays the same scan inside pgrep, on top of fork and exec.",
        hacmp_active = milliseconds(per_iteration(Daemon::Hacmp, Role::Active)),
        hacmp_standby = milliseconds(per_iteration(Daemon::Hacmp, Role::Standby)),
        bash_active = milliseconds(per_iteration(Daemon::Bash, Role::Active)),
        bash_standby = milliseconds(per_iteration(Daemon::Bash, Role::Standby)),
        bash_active_tasks = tasks(Role::Active),
        bash_standby_tasks = tasks(Role::Standby),
        samples = scan.samples,
        processes = scan.processes.describe(),
        scan = milliseconds(Some(scan.time)),
        active_share = share(Role::Active, 1.0),
        standby_share = share(Role::Standby, 2.0),
    );
    let bash_active = figures_of(Daemon::Bash, Role::Active);
    let hacmp_active = figures_of(Daemon::Hacmp, Role::Active);
    let ratio = bash_active.cpu_seconds_per_hour / hacmp_active.cpu_seconds_per_hour;
    if let Some(bash_iteration) = bash_active.cpu_per_iteration()
        && ratio < CPU_TARGET_FRACTION
    {
        let fraction = bash_iteration.as_secs_f64() / scan.time.as_secs_f64();
        text.push_str(&if fraction < CPU_TARGET_FRACTION {
            format!(
                " The 1/50 CPU target cannot be met here while the loop keeps `pgrep -f`'s \
                 meaning: one scan alone costs 1/{fraction:.0} of bash's active iteration, \
                 more than the whole budget."
            )
        } else {
            format!(
                " One scan alone costs 1/{fraction:.0} of bash's active iteration, within the \
                 1/50 budget; the rest of hacmp's iteration is what misses the target."
            )
        });
    }
    text
}

fn rows(role: Role, bash: &Figures, hacmp: &Figures, command: &str) -> Vec<Row> {
    let row = |what: &str, bash: String, hacmp: String, comparison: String| Row {
        what: format!("1. Steady state, {}: {what}", role.describe()),
        bash,
        hacmp,
        comparison,
        command: format!("`{command}`"),
    };
    let cpu = |f: &Figures| {
        format!(
            "{:.3} s/h, {} per iteration ({} iterations in {:.0} s)",
            f.cpu_seconds_per_hour,
            milliseconds(f.cpu_per_iteration()),
            f.iterations,
            f.window.as_secs_f64()
        )
    };
    let tasks = |f: &Figures| match f.tasks_per_iteration() {
        Some(per_iteration) => format!("{per_iteration:.2} ({} in all)", f.tasks_created),
        None => format!(
            "{} in {:.0} s; the window did not hold whole iterations",
            f.tasks_created,
            f.window.as_secs_f64()
        ),
    };
    let mib = |f: &Figures| format!("{:.1} MiB", f.peak_rss_kib as f64 / 1024.0);
    vec![
        row(
            "CPU time (user+sys) of the daemon and all its children, per hour",
            cpu(bash),
            cpu(hacmp),
            cpu_comparison(bash.cpu_seconds_per_hour, hacmp.cpu_seconds_per_hour),
        ),
        row(
            "processes and threads created per loop iteration",
            tasks(bash),
            tasks(hacmp),
            tasks_comparison(hacmp),
        ),
        row(
            "peak RSS of the daemon process (VmHWM)",
            mib(bash),
            mib(hacmp),
            rss_comparison(bash.peak_rss_kib, hacmp.peak_rss_kib),
        ),
    ]
}

/// The target: hacmp uses at most 1/50 of bash's CPU time.
const CPU_TARGET_FRACTION: f64 = 50.0;
/// The target for hacmp's peak RSS.
const RSS_TARGET_KIB: u64 = 8 * 1024;

fn cpu_comparison(bash: f64, hacmp: f64) -> String {
    if hacmp <= 0.0 {
        return "hacmp used no CPU time perf could count; target ≤ 1/50: met".to_string();
    }
    let fraction = bash / hacmp;
    if fraction >= CPU_TARGET_FRACTION {
        format!("hacmp uses 1/{fraction:.0} of bash's; target ≤ 1/50: met")
    } else {
        format!(
            "hacmp uses 1/{fraction:.1} of bash's; target ≤ 1/50: missed, {:.1}× over",
            CPU_TARGET_FRACTION / fraction
        )
    }
}

fn tasks_comparison(hacmp: &Figures) -> String {
    match (hacmp.tasks_created, hacmp.tasks_per_iteration()) {
        (0, _) => "target 0 for hacmp: met".to_string(),
        (_, Some(per_iteration)) => {
            format!("target 0 for hacmp: missed by {per_iteration:.2} per iteration")
        }
        (created, None) => format!("target 0 for hacmp: missed, {created} created"),
    }
}

fn rss_comparison(bash: u64, hacmp: u64) -> String {
    let ratio = hacmp as f64 / bash as f64;
    let verdict = if hacmp <= RSS_TARGET_KIB {
        "met".to_string()
    } else {
        format!(
            "missed by {:.1} MiB",
            (hacmp - RSS_TARGET_KIB) as f64 / 1024.0
        )
    };
    format!("hacmp/bash = {ratio:.2}; target ≤ 8 MiB for hacmp: {verdict}")
}

fn method(settings: &Settings) -> String {
    format!(
        "**Row 1** runs four daemons at once for {seconds} s each: the bash original and \
         hacmp, each in the active and in the standby role, each in its own temporary directory \
         with the same layout (the node's directory with the example application, a \
         `heartbeat/` directory beside it) and the same variables: hostName={HOST}, \
         loopTime={LOOP_TIME}, faileOverTime={FAILE_OVER_TIME}, pgrepProgramName and startCmd \
         naming `exampleApplication.sh` with a marker unique to the run. bash runs the \
         original heartbeat.sh with only its variable lines edited, as the end-to-end tests \
         run it; hacmp runs `hacmp run` on a variable file with the same values. In the \
         active role the node's own heartbeat exists and the benchmark itself starts the \
         example application, so that the application's CPU time and its own `sleep 1` \
         processes are not counted as the daemon's; each daemon touches its heartbeat every \
         second. In the standby role the benchmark touches the heartbeat of another host, \
         {PEER}, every second, so the daemon stays a standby: each loop runs killInstance \
         (with its 30 s wait) and finds nothing to kill.\n\n\
         `perf stat -e task-clock,task:task_newtask -p DAEMON` counts, for the daemon and \
         every process it starts (perf's counters are inherited), the CPU time (user and \
         system) and the processes and threads created. Counting is enabled and disabled \
         through perf's control FIFO half a second into the loop's `sleep {LOOP_TIME}`, right \
         after an \"In monitoring loop sleep\" line, so the window holds whole iterations; \
         the first {warmup} iteration(s) are left out (start-up). The window closes at the \
         first iteration boundary after {seconds} s. CPU per hour is the window's CPU time \
         scaled to an hour; tasks per iteration is the window's count divided by the \
         iterations in it. Peak RSS is the daemon process's own VmHWM from /proc/PID/status \
         at the end (the short-lived tools bash runs are not included). The benchmark checks \
         that each daemon stayed in its role, or fails.",
        seconds = settings.seconds,
        warmup = settings.warmup_iterations,
    )
}
