//! hacmpEventCmd: the operator's command, run on each event without ever holding up the loop.
//!
//! The loop only puts an event in a bounded queue and goes on. One runner thread takes them in
//! order and runs the command through `/bin/sh -c`, one at a time, in a process group of its own
//! so that a time limit ends everything it started. Its output goes to our stderr (the journal
//! under systemd) line by line behind a prefix, never to stdout, which in the compat profile
//! carries exactly heartbeat.sh's lines. When the queue is full (a hook slower than the events),
//! the newest event is dropped, counted, and said on stderr.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Events waiting for the hook; more means the hook cannot keep up and news would be stale.
pub const QUEUE_LENGTH: usize = 16;
/// How long one run of the hook may take before its whole process group is killed: long enough
/// for a notification to reach a slow mail or chat server, short enough that a hung one does
/// not hold back the news of a failover for long.
pub const TIME_LIMIT: Duration = Duration::from_secs(30);
/// How often the runner looks whether a run has ended.
const POLL: Duration = Duration::from_millis(20);
/// The longest line of the hook's output passed on; the rest of a longer line is cut.
const MAX_LINE_BYTES: u64 = 4096;
/// What precedes each line of the hook's output on stderr.
const PREFIX: &str = "hacmp: event hook:";

/// One run's environment: HACMP_EVENT, HACMP_HOST, and the others where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEvent {
    pub name: &'static str,
    pub host: String,
    pub peer: Option<String>,
    pub token: Option<u64>,
    /// One line; newlines are replaced so that a hook reading it as one line gets all of it.
    pub message: String,
}

/// The loop's end of the queue.
pub struct Hook {
    queue: SyncSender<HookEvent>,
    dropped: Arc<AtomicU64>,
}

impl Hook {
    /// Starts the runner thread for `command`, each run limited to `time_limit`. Returns
    /// `None`, after saying why on stderr, when the thread cannot be created: events then go
    /// unreported, and the loop runs as before.
    pub fn start(command: String, time_limit: Duration) -> Option<Hook> {
        let (queue, events) = sync_channel(QUEUE_LENGTH);
        let runner = std::thread::Builder::new()
            .name("event-hook".to_string())
            .spawn(move || run_each(&command, time_limit, events));
        match runner {
            Ok(_) => Some(Hook {
                queue,
                dropped: Arc::new(AtomicU64::new(0)),
            }),
            Err(error) => {
                eprintln!("{PREFIX} cannot start its thread ({error}); events are not reported");
                None
            }
        }
    }

    /// Queues an event, or drops it when the queue is full; never waits.
    pub fn send(&self, event: HookEvent) {
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event) | TrySendError::Disconnected(event)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!(
                    "{PREFIX} dropped event {} ({dropped} dropped so far): the hook is not keeping up",
                    event.name
                );
            }
        }
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn run_each(command: &str, time_limit: Duration, events: Receiver<HookEvent>) {
    for event in events {
        run_once(command, time_limit, &event);
    }
}

fn run_once(command: &str, time_limit: Duration, event: &HookEvent) {
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(command)
        .env("HACMP_EVENT", event.name)
        .env("HACMP_HOST", &event.host)
        .env("HACMP_MESSAGE", one_line(&event.message))
        // systemd's variables are ours: a hook that notifies would speak for the daemon.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    match &event.peer {
        Some(peer) => shell.env("HACMP_PEER", peer),
        None => shell.env_remove("HACMP_PEER"),
    };
    match event.token {
        Some(token) => shell.env("HACMP_TOKEN", token.to_string()),
        None => shell.env_remove("HACMP_TOKEN"),
    };
    // SAFETY: prctl is async-signal-safe; the hook dies with the daemon instead of outliving it.
    unsafe {
        shell.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match shell.spawn() {
        Ok(child) => child,
        Err(error) => {
            eprintln!("{PREFIX} {}: cannot run /bin/sh: {error}", event.name);
            return;
        }
    };
    let forwarders: Vec<_> = [
        child
            .stdout
            .take()
            .map(|out| Box::new(out) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|err| Box::new(err) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|output| std::thread::spawn(move || forward(output)))
    .collect();
    let started = Instant::now();
    let ended = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < time_limit => std::thread::sleep(POLL),
            Ok(None) | Err(_) => break None,
        }
    };
    match ended {
        Some(status) => {
            if !status.success() {
                eprintln!("{PREFIX} {} ended with {status}", event.name);
            }
            // The forwarders end when the last process holding the output closes it; a
            // background process the hook left running may keep them a while, the runner not.
            drop(forwarders);
        }
        None => {
            // Not yet reaped, so the group still exists and is the hook's: everything it
            // started goes, and nothing keeps its output open.
            // SAFETY: kill has no memory effects; the group was created by process_group(0).
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            for forwarder in forwarders {
                let _ = forwarder.join();
            }
            eprintln!(
                "{PREFIX} {} killed after the time limit of {}",
                event.name,
                humantime::format_duration(time_limit)
            );
        }
    }
}

/// Copies the hook's output to stderr line by line, behind the prefix.
fn forward(output: Box<dyn Read + Send>) {
    let mut lines = BufReader::new(output);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut lines)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                eprintln!("{PREFIX} {}", text.trim_end_matches('\n'));
            }
        }
    }
}

fn one_line(message: &str) -> String {
    message.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &'static str) -> HookEvent {
        HookEvent {
            name,
            host: "nodeA".to_string(),
            peer: Some("nodeB".to_string()),
            token: Some(7),
            message: "two\nlines".to_string(),
        }
    }

    fn wait_for(path: &std::path::Path) {
        let started = Instant::now();
        while !path.exists() {
            assert!(started.elapsed() < Duration::from_secs(20), "{path:?}");
            std::thread::sleep(POLL);
        }
    }

    /// Each run sees the variables; a run that outlives the limit is killed and the next event
    /// runs; events beyond a full queue are dropped and counted, without waiting.
    #[test]
    fn runs_one_at_a_time_within_the_limit_and_drops_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("never-written");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        // The first event blocks (opening a FIFO nobody writes) until the time limit. Queued
        // runs may outlive the test and its directory: they must then do nothing, not write
        // into the working directory.
        let command = format!(
            "cd {dir} || exit 1; echo \"$HACMP_EVENT $HACMP_HOST $HACMP_PEER $HACMP_TOKEN $HACMP_MESSAGE\" \
             >> seen; [ $HACMP_EVENT = master ] && read line < never-written; touch $HACMP_EVENT",
            dir = dir.path().display()
        );
        let hook = Hook::start(command, Duration::from_secs(2)).unwrap();
        hook.send(event("master"));
        let seen = dir.path().join("seen");
        wait_for(&seen);
        let sent = Instant::now();
        for _ in 0..QUEUE_LENGTH + 3 {
            hook.send(event("standby"));
        }
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "sending never waits"
        );
        assert_eq!(hook.dropped(), 3);
        wait_for(&dir.path().join("standby"));
        assert!(
            !dir.path().join("master").exists(),
            "the first run was killed"
        );
        let lines = std::fs::read_to_string(&seen).unwrap();
        assert_eq!(lines.lines().next(), Some("master nodeA nodeB 7 two lines"));
    }
}
