//! Row 2: hacmp's /proc scan (`processes::find`, called inside the daemon) against `pgrep -f`
//! (a process bash forks and execs on every call), with a number of extra processes the
//! benchmark starts itself: `sleep 600` whose argv[0] carries a marker unique to the run, so the
//! pattern matches them and nothing else, and whose lifetime is bounded even if every other
//! safeguard failed.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hacmp::pattern::Pattern;
use hacmp::real::processes;

use crate::children::{self, Owned};
use crate::report::{Row, Section};
use crate::support::{regex_escape, unique_marker, wait_until};

pub struct Settings {
    pub extra_processes: Vec<usize>,
    pub repetitions: usize,
}

/// Calls of each kind made before timing starts (caches, page faults).
const WARMUP_CALLS: usize = 2;
/// The most extra processes one measurement starts; the machine has 2 cores and pid_max 32768.
const MAX_EXTRA_PROCESSES: usize = 10_000;

/// What one call cost: wall-clock time, which the machine's other load inflates, and the CPU
/// time (user+sys) of the thread that scanned or of the pgrep process, which it barely does.
#[derive(Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

struct Timings {
    extra: usize,
    in_proc: usize,
    find: Vec<Cost>,
    pgrep: Vec<Cost>,
}

pub fn measure(settings: &Settings, command: &str) -> Section {
    let rows = settings
        .extra_processes
        .iter()
        .map(|&extra| row(&time_both(extra, settings.repetitions), command))
        .collect();
    Section {
        rows,
        method: method(settings),
    }
}

fn time_both(extra: usize, repetitions: usize) -> Timings {
    assert!(
        (1..=MAX_EXTRA_PROCESSES).contains(&extra),
        "between 1 and {MAX_EXTRA_PROCESSES} extra processes"
    );
    let marker = unique_marker(&format!("bench-scan-{extra}"));
    let pattern_text = regex_escape(&marker);
    let pattern = Pattern::new(&pattern_text).expect("an escaped marker is a valid pattern");
    let sleepers = start_sleepers(&marker, extra);
    let mut expected = sleepers.pids();
    expected.sort_unstable();
    let own_pid = std::process::id();
    wait_until(
        "the extra processes to start",
        Duration::from_secs(120),
        || processes::find(&pattern, own_pid).len() == extra,
    );
    let in_proc = count_processes();
    let mut timings = Timings {
        extra,
        in_proc,
        find: Vec::with_capacity(repetitions),
        pgrep: Vec::with_capacity(repetitions),
    };
    // Alternating the two spreads the machine's other load over both alike.
    for call in 0..WARMUP_CALLS + repetitions {
        children::check_interrupted();
        let (found, find_cost) = measured(thread_cpu_time, || processes::find(&pattern, own_pid));
        let (pgrep_found, pgrep_cost) = measured(children_cpu_time, || pgrep(&pattern_text));
        assert_eq!(found, expected, "processes::find found other processes");
        assert_eq!(pgrep_found, expected, "pgrep -f found other processes");
        if call >= WARMUP_CALLS {
            timings.find.push(find_cost);
            timings.pgrep.push(pgrep_cost);
        }
    }
    drop(sleepers);
    timings
}

fn start_sleepers(marker: &str, count: usize) -> Owned {
    let mut sleepers = Owned::default();
    for started in 0..count {
        if started % 100 == 0 {
            children::check_interrupted();
        }
        let child = children::spawn_tied(
            Command::new("sleep")
                .arg0(format!("sleep {marker}"))
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("sleep starts");
        sleepers.push(child);
    }
    sleepers
}

/// Runs `call`, measuring its wall-clock time and the CPU time `cpu_clock` advanced by.
fn measured<T>(cpu_clock: fn() -> Duration, call: impl FnOnce() -> T) -> (T, Cost) {
    let cpu_start = cpu_clock();
    let start = Instant::now();
    let result = call();
    let wall = start.elapsed();
    let cpu = cpu_clock().saturating_sub(cpu_start);
    (result, Cost { wall, cpu })
}

/// The calling thread's CPU time.
fn thread_cpu_time() -> Duration {
    hacmp::real::guard::read_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The CPU time (user+sys) of every child this process has waited for.
fn children_cpu_time() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rusage owned by this frame.
    let read = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(read, 0, "the children's resource usage");
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// `pgrep -f PATTERN` run as bash runs it: a new process each time, its output read back.
fn pgrep(pattern: &str) -> Vec<u32> {
    let output = Command::new("pgrep")
        .arg("-f")
        .arg(pattern)
        .stdin(Stdio::null())
        .output()
        .expect("pgrep runs");
    let mut pids: Vec<u32> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.parse().expect("pgrep prints PIDs"))
        .collect();
    pids.sort_unstable();
    pids
}

/// The processes on the machine now: the entries of /proc that are PIDs.
pub fn count_processes() -> usize {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .count()
        })
        .unwrap_or(0)
}

/// The time of one in-process scan for `pattern`.
pub fn time_find(pattern: &Pattern) -> Duration {
    let start = Instant::now();
    processes::find(pattern, std::process::id());
    start.elapsed()
}

pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

fn milliseconds(time: Duration) -> String {
    format!("{:.2} ms", time.as_secs_f64() * 1000.0)
}

fn row(timings: &Timings, command: &str) -> Row {
    let wall = |costs: &[Cost]| costs.iter().map(|c| c.wall).collect::<Vec<_>>();
    let cpu = |costs: &[Cost]| median(&costs.iter().map(|c| c.cpu).collect::<Vec<_>>());
    let find = median(&wall(&timings.find));
    let pgrep = median(&wall(&timings.pgrep));
    let speedup = pgrep.as_secs_f64() / find.as_secs_f64();
    let cpu_ratio = cpu(&timings.pgrep).as_secs_f64() / cpu(&timings.find).as_secs_f64();
    let verdict = if find <= pgrep {
        "met".to_string()
    } else {
        format!("missed, {:.2}× slower", 1.0 / speedup)
    };
    let describe = |costs: &[Cost]| {
        let walls = wall(costs);
        format!(
            "{} (min {}), CPU {}",
            milliseconds(median(&walls)),
            milliseconds(*walls.iter().min().expect("timed calls")),
            milliseconds(cpu(costs))
        )
    };
    Row {
        what: format!(
            "2. Process scan with {} extra processes ({} in /proc): median time of one call \
             over {} calls",
            timings.extra,
            timings.in_proc,
            timings.find.len()
        ),
        bash: format!(
            "`pgrep -f`, a process (fork, exec, scan): {}",
            describe(&timings.pgrep)
        ),
        hacmp: format!(
            "`processes::find`, in the daemon: {}",
            describe(&timings.find)
        ),
        comparison: format!(
            "pgrep/hacmp = {speedup:.2} (CPU {cpu_ratio:.2}); target ≥ 1 (no slower): {verdict}"
        ),
        command: format!("`{command}`"),
    }
}

fn method(settings: &Settings) -> String {
    format!(
        "**Row 2** starts the extra processes itself (`sleep 600`, argv[0] carrying a marker \
         unique to the run; each dies with the benchmark and is ended by PID at the end of its \
         row), then times {repetitions} calls of each, alternating, after {WARMUP_CALLS} \
         untimed ones: `hacmp::real::processes::find` inside the benchmark's process, as the \
         daemon calls it, and `pgrep -f MARKER` as a process including its fork and exec and \
         reading its output, as heartbeat.sh runs it. Every call of both must return exactly \
         the PIDs started, or the run fails. Per call: the wall-clock time (median and minimum), \
         which is what the loop waits for and which the machine's other load inflates, and the \
         median CPU time (user+sys) of the scanning thread or of the pgrep process (its exec \
         included, the parent's spawn not), which that load barely changes; the target is \
         judged on the wall-clock medians.",
        repetitions = settings.repetitions,
    )
}
