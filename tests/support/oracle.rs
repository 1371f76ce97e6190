//! An oracle independent of hacmp: when each application instance lived, from the instances'
//! own records and from watching the process table.
//!
//! Each instance of `examples/exampleApplication.sh` appends `start HOST PID UPTIME` to the
//! events file (`APP_EVENTS`) as it starts; UPTIME is /proc/uptime, the boot clock
//! (CLOCK_BOOTTIME). An instance killed with SIGKILL records no end, so a watcher thread looks
//! every few milliseconds whether each started instance still exists, and takes the first moment
//! it was seen gone as its end: never earlier than the real end, so the overlap computed here is
//! never less than the real one.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hacmp::real::guard::boot_clock;

/// How often the watcher looks at the events file and the process table.
const WATCH_INTERVAL: Duration = Duration::from_millis(10);
/// A test watches for minutes at most; the watcher stops by itself after this.
const MAX_WATCH: Duration = Duration::from_secs(900);
/// More instances than any test starts; the watcher stops tracking new ones past this.
const MAX_INSTANCES: usize = 1000;

/// One application instance's life on the boot clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub host: String,
    pub pid: u32,
    pub started: Duration,
    /// When it was first seen gone; `None` while it runs.
    pub ended: Option<Duration>,
}

#[derive(Default)]
struct Record {
    instances: Vec<Instance>,
    /// How much of the events file has been read (whole lines only).
    read_up_to: usize,
}

pub struct Oracle {
    events: PathBuf,
    began: Duration,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

impl Oracle {
    /// Starts watching the instances that record themselves into `events` and whose command
    /// lines carry `marker`.
    pub fn start(events: &Path, marker: &str) -> Oracle {
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (events, marker) = (events.to_path_buf(), marker.as_bytes().to_vec());
            let (record, stop) = (record.clone(), stop.clone());
            std::thread::spawn(move || {
                let began = boot_clock();
                while !stop.load(Ordering::Relaxed) && boot_clock() - began < MAX_WATCH {
                    watch_once(&events, &marker, &mut record.lock().unwrap());
                    std::thread::sleep(WATCH_INTERVAL);
                }
            })
        };
        Oracle {
            events: events.to_path_buf(),
            began: boot_clock(),
            record,
            stop,
            watcher: Some(watcher),
        }
    }

    pub fn events_file(&self) -> &Path {
        &self.events
    }

    pub fn instances(&self) -> Vec<Instance> {
        self.record.lock().unwrap().instances.clone()
    }

    /// The instances running now.
    pub fn running(&self) -> Vec<Instance> {
        let mut running = self.instances();
        running.retain(|instance| instance.ended.is_none());
        running
    }

    /// The total time during which more than one instance was alive, on any hosts.
    pub fn overlap(&self) -> Duration {
        overlap_of(&self.instances(), boot_clock())
    }

    /// Every instance's life in seconds since the oracle started, for failure messages.
    pub fn timeline(&self) -> String {
        let seconds = |at: Duration| at.as_secs_f64() - self.began.as_secs_f64();
        let mut text = String::new();
        for instance in self.instances() {
            let end = instance.ended.map_or("running".to_string(), |ended| {
                format!("{:.2}", seconds(ended))
            });
            let _ = writeln!(
                text,
                "  {} pid {}: {:.2} .. {end}",
                instance.host,
                instance.pid,
                seconds(instance.started)
            );
        }
        text
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// Reads new start records, then ends the instances that are gone.
fn watch_once(events: &Path, marker: &[u8], record: &mut Record) {
    let text = fs::read(events).unwrap_or_default();
    let complete = text[record.read_up_to.min(text.len())..]
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |last| last + 1);
    let new_lines = &text[record.read_up_to.min(text.len())..][..complete];
    for line in String::from_utf8_lossy(new_lines).lines() {
        if let Some((host, pid, started)) = parse_start(line) {
            // A PID starting again means its earlier instance ended by then.
            for earlier in &mut record.instances {
                if earlier.pid == pid && earlier.ended.is_none() {
                    earlier.ended = Some(started);
                }
            }
            if record.instances.len() < MAX_INSTANCES {
                record.instances.push(Instance {
                    host,
                    pid,
                    started,
                    ended: None,
                });
            }
        }
    }
    record.read_up_to += complete;
    let now = boot_clock();
    for instance in &mut record.instances {
        if instance.ended.is_none() && !carries_marker(instance.pid, marker) {
            instance.ended = Some(now);
        }
    }
}

/// `start HOST PID UPTIME`, UPTIME in seconds with two decimals.
fn parse_start(line: &str) -> Option<(String, u32, Duration)> {
    let mut words = line.split(' ');
    if words.next()? != "start" {
        return None;
    }
    let host = words.next()?.to_string();
    let pid = words.next()?.parse().ok()?;
    let uptime: f64 = words.next()?.parse().ok()?;
    Some((host, pid, Duration::from_secs_f64(uptime)))
}

/// Whether the process exists, is not a zombie (whose command line reads empty), and is still
/// the instance (its command line carries the marker).
fn carries_marker(pid: u32, marker: &[u8]) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|line| line.windows(marker.len()).any(|window| window == marker))
}

/// The total time covered by more than one of the instances' lives; a running instance lasts
/// until `now`.
pub fn overlap_of(instances: &[Instance], now: Duration) -> Duration {
    let mut changes: Vec<(Duration, i32)> = instances
        .iter()
        .flat_map(|instance| [(instance.started, 1), (instance.ended.unwrap_or(now), -1)])
        .collect();
    // At equal times ends come first: an instance ending as another starts does not overlap.
    changes.sort();
    let mut alive = 0;
    let mut total = Duration::ZERO;
    let mut previous = Duration::ZERO;
    for (at, change) in changes {
        if alive > 1 {
            total += at.saturating_sub(previous);
        }
        alive += change;
        previous = at;
    }
    total
}
