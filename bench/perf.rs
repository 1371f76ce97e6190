//! `perf stat` attached to a running daemon, counting only while enabled.
//!
//! Two software events, both inherited by every descendant the daemon starts after the attach:
//! `task-clock`, the time on a CPU (user and system) of the daemon and all its children, and the
//! tracepoint `task:task_newtask`, one per process or thread created. perf starts with its
//! counters disabled; `enable` and `disable` arrive through a control FIFO and are acknowledged
//! through another, so the window is exactly the one the benchmark chooses.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::children;

/// How long perf may take to acknowledge a command or to exit after its target did.
const RESPONSE_LIMIT: Duration = Duration::from_secs(10);

/// What perf counted while enabled.
pub struct Counts {
    pub cpu: Duration,
    pub tasks_created: u64,
}

pub struct PerfCounters {
    child: Option<Child>,
    control: File,
    acknowledgements: File,
    stats: PathBuf,
}

impl PerfCounters {
    /// Attaches to `pid` with counting disabled; perf's files go into `dir`.
    pub fn attach(pid: u32, dir: &Path) -> PerfCounters {
        let control_path = dir.join("perf.control");
        let ack_path = dir.join("perf.ack");
        for fifo in [&control_path, &ack_path] {
            make_fifo(fifo);
        }
        // Opened for reading and writing, so neither open waits for perf to open its end.
        let open = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
        };
        let control = open(&control_path);
        let acknowledgements = open(&ack_path);
        let stats = dir.join("perf.csv");
        let child = children::spawn_tied(
            Command::new("perf")
                .args(["stat", "-e", "task-clock,task:task_newtask", "-x", ","])
                .arg("-o")
                .arg(&stats)
                .arg("--control")
                .arg(format!(
                    "fifo:{},{}",
                    control_path.display(),
                    ack_path.display()
                ))
                .args(["-D", "-1", "-p", &pid.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(dir.join("perf.err")).expect("perf's error file")),
        )
        .unwrap_or_else(|e| panic!("cannot run perf (make deps installs linux-perf): {e}"));
        PerfCounters {
            child: Some(child),
            control,
            acknowledgements,
            stats,
        }
    }

    pub fn enable(&mut self) {
        self.command("enable");
    }

    pub fn disable(&mut self) {
        self.command("disable");
    }

    fn command(&mut self, command: &str) {
        writeln!(self.control, "{command}").expect("perf's control FIFO");
        let mut pollfd = libc::pollfd {
            fd: self.acknowledgements.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
        let ready = unsafe { libc::poll(&mut pollfd, 1, RESPONSE_LIMIT.as_millis() as i32) };
        assert_eq!(ready, 1, "perf did not acknowledge '{command}'");
        let mut ack = [0u8; 16];
        let read = self
            .acknowledgements
            .read(&mut ack)
            .expect("perf's acknowledgement");
        // perf writes the acknowledgement with the string's terminating NUL.
        let answer = ack[..read].strip_suffix(b"\0").unwrap_or(&ack[..read]);
        assert_eq!(answer, b"ack\n", "perf's answer to '{command}'");
    }

    /// Waits for perf to exit, which it does when its target has ended, and reads the counts.
    pub fn finish(mut self) -> Counts {
        let mut child = self.child.take().expect("perf is running");
        let start = Instant::now();
        while child.try_wait().expect("perf's status").is_none() {
            assert!(
                start.elapsed() < RESPONSE_LIMIT,
                "perf did not exit after its target ended"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&self.stats).expect("perf's statistics");
        parse(&text).unwrap_or_else(|| panic!("unexpected perf output:\n{text}"))
    }
}

impl Drop for PerfCounters {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn make_fifo(path: &Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path");
    // SAFETY: a valid NUL-terminated path; mkfifo touches no other memory.
    let made = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
    assert_eq!(made, 0, "cannot create the FIFO {}", path.display());
}

/// perf's CSV lines: value, unit, event name, then run details; '#' lines are comments.
fn parse(text: &str) -> Option<Counts> {
    let mut cpu = None;
    let mut tasks_created = None;
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let fields: Vec<&str> = line.split(',').collect();
        match (fields.first(), fields.get(1), fields.get(2)) {
            (Some(value), Some(&"msec"), Some(&"task-clock")) => {
                let milliseconds: f64 = value.parse().ok()?;
                cpu = Some(Duration::from_secs_f64(milliseconds / 1000.0));
            }
            (Some(value), _, Some(&"task:task_newtask")) => tasks_created = value.parse().ok(),
            _ => {}
        }
    }
    Some(Counts {
        cpu: cpu?,
        tasks_created: tasks_created?,
    })
}
