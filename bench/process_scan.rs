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

struct Timings {
    extra: usize,
    in_proc: usize,
    find: Vec<Duration>,
    pgrep: Vec<Duration>,
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
        let start = Instant::now();
        let found = processes::find(&pattern, own_pid);
        let find_time = start.elapsed();
        let start = Instant::now();
        let pgrep_found = pgrep(&pattern_text);
        let pgrep_time = start.elapsed();
        assert_eq!(found, expected, "processes::find found other processes");
        assert_eq!(pgrep_found, expected, "pgrep -f found other processes");
        if call >= WARMUP_CALLS {
            timings.find.push(find_time);
            timings.pgrep.push(pgrep_time);
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
    let find = median(&timings.find);
    let pgrep = median(&timings.pgrep);
    let speedup = pgrep.as_secs_f64() / find.as_secs_f64();
    let verdict = if find <= pgrep {
        "met".to_string()
    } else {
        format!("missed, {:.2}× slower", 1.0 / speedup)
    };
    let min = |times: &[Duration]| milliseconds(*times.iter().min().expect("timed calls"));
    Row {
        what: format!(
            "2. Process scan with {} extra processes ({} in /proc): median time of one call \
             over {} calls",
            timings.extra,
            timings.in_proc,
            timings.find.len()
        ),
        bash: format!(
            "`pgrep -f`, a process (fork, exec, scan): {} (min {})",
            milliseconds(pgrep),
            min(&timings.pgrep)
        ),
        hacmp: format!(
            "`processes::find`, in the daemon: {} (min {})",
            milliseconds(find),
            min(&timings.find)
        ),
        comparison: format!("pgrep/hacmp = {speedup:.2}; target ≥ 1 (no slower): {verdict}"),
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
         the PIDs started, or the run fails. Wall-clock time per call; median and minimum.",
        repetitions = settings.repetitions,
    )
}
