//! The real machine: each `World` method is the syscall-level equivalent of the tool the script
//! runs, with the same result and the same error line on stderr.

pub mod batch;
pub mod bounded;
pub mod containment;
pub mod etcd;
pub mod files;
pub mod guard;
pub mod hook;
pub mod listing;
pub mod metrics;
pub mod processes;
pub mod records;
pub mod report;
pub mod spawn;
pub mod state;

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::Store;
use crate::event::Event;
use crate::pattern::Pattern;
use crate::world::{
    Answer, EtcdAnswer, EtcdRequest, GuardState, HeldLease, Io, SafeWorld, Signal, Step, StorageOp,
    StorageValue, World,
};

/// The error line a tool prints on stderr, word for word as GNU coreutils or bash print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The machine hacmp runs on.
pub struct RealWorld {
    children: spawn::Children,
    /// One pool of storage workers per directory (`batch.rs`).
    pools: batch::Pools,
    /// The safe profile's guard (`guarding`); the compat profile has none.
    guard: Option<guard::GuardSlot>,
    reporter: report::Reporter,
    /// The etcd cluster of the etcd backend; `None` with the files backend.
    etcd: Option<etcd::Cluster>,
    /// This host's heartbeat (the compat loop's) and the modification time this daemon last
    /// saw or left on it, to the nanosecond: found changed without a touch of ours in between,
    /// someone else touched it.
    own_heartbeat: Option<OwnHeartbeat>,
}

struct OwnHeartbeat {
    path: String,
    known: Option<std::time::SystemTime>,
}

impl RealWorld {
    pub fn new() -> RealWorld {
        RealWorld {
            children: spawn::Children::default(),
            pools: batch::Pools::default(),
            guard: None,
            reporter: report::Reporter::silent(),
            etcd: None,
            own_heartbeat: None,
        }
    }

    /// This world, watching `path`, this host's heartbeat, for touches by someone else: only a
    /// daemon with the same hostName touches it.
    pub fn watching_heartbeat(self, path: String) -> RealWorld {
        let own_heartbeat = Some(OwnHeartbeat { path, known: None });
        RealWorld {
            own_heartbeat,
            ..self
        }
    }

    /// This world, with the etcd cluster of `store` when the lease lives there; it connects at
    /// the first request.
    pub fn storing_in(self, store: &Store) -> RealWorld {
        let etcd = match store {
            Store::Etcd(settings) => Some(etcd::Cluster::new(settings.clone())),
            Store::Directories(_) => None,
        };
        RealWorld { etcd, ..self }
    }

    /// This world, with a guard for the safe profile's application, whose tree is contained as
    /// this host allows for the daemon of `log_file` (said on stderr); the daemon becomes a
    /// child subreaper with a low OOM score.
    pub fn guarding(self, log_file: &str) -> RealWorld {
        let oom_score_adj = containment::prepare_daemon();
        let containment = containment::Containment::establish(log_file);
        eprintln!("hacmp: containment: {}", containment.describe());
        // The guard runs as `hacmp guard`, from the same executable as the daemon.
        let guard = guard::GuardSlot::new(
            std::env::current_exe().unwrap_or_else(|_| "hacmp".into()),
            guard::runtime_directory(),
            containment,
            oom_score_adj,
        );
        RealWorld {
            guard: Some(guard),
            ..self
        }
    }

    /// The guard; only the safe profile, whose world is `guarding`, asks for it.
    fn guard(&mut self) -> &mut guard::GuardSlot {
        self.guard
            .as_mut()
            .expect("the safe profile's world is made with RealWorld::guarding")
    }

    /// This world, passing the loop's events to `reporter`.
    pub fn reporting(self, reporter: report::Reporter) -> RealWorld {
        RealWorld { reporter, ..self }
    }

    /// Sleeps, waking as often as systemd's watchdog needs to hear that the loop is alive.
    fn sleep_alive(&mut self, duration: Duration) {
        let mut left = duration;
        loop {
            self.reporter.alive();
            let step = self
                .reporter
                .longest_sleep()
                .map_or(left, |most| left.min(most));
            if step.is_zero() {
                return;
            }
            std::thread::sleep(step);
            left -= step;
        }
    }

    /// Runs a storage operation on `path`, timing it for the metrics when they are kept.
    fn timed<T>(
        &mut self,
        operation: &'static str,
        directory: &str,
        run: impl FnOnce(&mut Self) -> T,
        failed: impl FnOnce(&T) -> bool,
    ) -> T {
        if !self.reporter.times_storage() {
            return run(self);
        }
        let started = Instant::now();
        let result = run(self);
        let failure = failed(&result);
        self.reporter
            .storage_operation(operation, directory, started.elapsed(), failure);
        result
    }

    /// Runs a storage operation on a worker of `directory`'s pool, at most `limit` long.
    fn bounded<T: Send + 'static>(
        &mut self,
        directory: &str,
        limit: Duration,
        operation: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Io<T> {
        let job = batch::Job {
            directory: directory.to_string(),
            work: Box::new(operation),
        };
        let outcome = self.pools.run_all(vec![job], limit, 1, Result::is_ok).pop();
        // A single operation is waited for to its end, or refused because an earlier one on
        // its directory has not returned: which, before its limit, counts as no answer yet.
        io_of(outcome.expect("one outcome for one job"), directory)
            .map_or(Io::TimedOut, |(io, _)| io)
    }

    /// When `path` is this host's heartbeat: reports a warning if it changed since this daemon
    /// last saw or touched it.
    fn look_at_own_heartbeat(&mut self, path: &str) {
        let Some(own) = self.own_heartbeat.as_mut().filter(|own| own.path == path) else {
            return;
        };
        let now = modified(path);
        let changed = own.known.is_some() && now.is_some() && now != own.known;
        own.known = now;
        if changed {
            self.reporter.report(&Event::Warning {
                name: "duplicate-host-name",
                message: format!(
                    "{path} was touched by someone else since this daemon last saw it: another daemon runs with the same hostName"
                ),
            });
        }
    }

    fn report_error<T>(&mut self, result: Result<T, ToolError>) -> Option<T> {
        result.map_err(|e| eprintln!("{e}")).ok()
    }
}

/// 64 random bits from the kernel. Should getrandom fail (it cannot, on a kernel that booted),
/// the boot clock's nanoseconds and our PID still differ between two starts of the daemon.
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer it is given.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if filled == bytes.len() as isize {
        return u64::from_ne_bytes(bytes);
    }
    (guard::boot_clock().as_nanos() as u64) ^ (u64::from(std::process::id()) << 40)
}

impl Default for RealWorld {
    fn default() -> Self {
        RealWorld::new()
    }
}

impl World for RealWorld {
    fn sleep(&mut self, seconds: u64) -> Step<()> {
        self.sleep_alive(Duration::from_secs(seconds));
        Ok(())
    }

    fn now(&mut self) -> Step<i64> {
        Ok(files::wall_clock_seconds())
    }

    fn is_regular_file(&mut self, path: &str) -> Step<bool> {
        Ok(self.timed(
            "exists",
            directory_of(path),
            |_| files::is_regular_file(path),
            |_| false,
        ))
    }

    fn newest_entry(&mut self, dir: &str) -> Step<String> {
        let newest = self.timed("list", dir, |_| listing::newest_entry(dir), Result::is_err);
        Ok(self.report_error(newest).unwrap_or_default())
    }

    fn modification_time(&mut self, path: &str) -> Step<Option<i64>> {
        self.look_at_own_heartbeat(path);
        let modified = self.timed(
            "stat",
            directory_of(path),
            |_| files::modification_time(path),
            Result::is_err,
        );
        Ok(self.report_error(modified))
    }

    fn touch(&mut self, path: &str) -> Step<()> {
        self.look_at_own_heartbeat(path);
        let touched = self.timed(
            "touch",
            directory_of(path),
            |_| files::touch(path),
            Result::is_err,
        );
        self.report_error(touched);
        if let Some(own) = self.own_heartbeat.as_mut().filter(|own| own.path == path) {
            own.known = modified(path);
        }
        Ok(())
    }

    fn find_processes(&mut self, pattern: &Pattern) -> Step<Vec<u32>> {
        Ok(processes::find(pattern, std::process::id()))
    }

    fn signal(&mut self, pid: u32, signal: Signal) -> Step<()> {
        let sent = processes::signal(pid, signal);
        self.report_error(sent);
        Ok(())
    }

    fn start_detached(&mut self, command: &str, log_file: &str) -> Step<()> {
        let started = self.children.start_detached(command, log_file);
        self.report_error(started);
        Ok(())
    }

    fn print(&mut self, line: &str) -> Step<()> {
        // A closed stdout (journald restarting, say) must not stop the loop: bash's echo fails
        // the same way and the script goes on.
        let _ = writeln!(std::io::stdout(), "{line}");
        Ok(())
    }

    fn print_error(&mut self, line: &str) -> Step<()> {
        let _ = writeln!(std::io::stderr(), "{line}");
        Ok(())
    }

    fn report(&mut self, event: &Event) {
        self.reporter.report(event);
    }
}

/// The modification time of `path`, when it can be read.
fn modified(path: &str) -> Option<std::time::SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

/// The directory a storage operation on `path` goes to, as the metrics label it.
fn directory_of(path: &str) -> &str {
    match Path::new(path).parent().and_then(Path::to_str) {
        Some("") | None => ".",
        Some(parent) => parent,
    }
}

/// The directory whose worker pool runs `op`: the record's directory, or the listed one.
fn storage_directory(op: &StorageOp) -> &str {
    match op {
        StorageOp::Read { path } | StorageOp::Write { path, .. } => directory_of(path),
        StorageOp::List { dir } => dir,
    }
}

/// The work of `op` on a worker: what the storage answered, or the error line.
fn storage_work(op: StorageOp) -> Box<dyn FnOnce() -> Result<StorageValue, String> + Send> {
    match op {
        StorageOp::Read { path } => Box::new(move || records::read(&path).map(StorageValue::Entry)),
        StorageOp::Write { path, content } => {
            Box::new(move || records::write(&path, &content).map(|()| StorageValue::Written))
        }
        StorageOp::List { dir } => Box::new(move || records::list(&dir).map(StorageValue::Names)),
    }
}

/// A storage operation's outcome as the loop sees it, and when it came; `None` for one the
/// loop did not wait for (left behind, or refused while its directory is merely behind).
fn io_of<T>(
    outcome: batch::Outcome<Result<T, String>>,
    directory: &str,
) -> Option<(Io<T>, Duration)> {
    match outcome {
        batch::Outcome::Answered { value, at } => {
            Some((value.map_or_else(Io::Failed, Io::Done), at))
        }
        batch::Outcome::NoAnswer { at, expired: true } => Some((Io::TimedOut, at)),
        batch::Outcome::NoAnswer { expired: false, .. }
        | batch::Outcome::Refused { overdue: false, .. } => None,
        batch::Outcome::Refused { at, overdue: true } => Some((
            Io::Failed(format!(
                "hacmp: {directory}: an earlier operation on it has not returned; none is tried until it has (or more than {} directories are in use)",
                batch::MAX_DIRECTORIES
            )),
            at,
        )),
    }
}

/// Whether a bounded storage operation failed or got no answer.
fn went_wrong<T>(io: &Io<T>) -> bool {
    !matches!(io, Io::Done(_))
}

impl SafeWorld for RealWorld {
    fn elapsed(&mut self) -> Step<Duration> {
        Ok(guard::boot_clock())
    }

    fn pause(&mut self, duration: Duration) -> Step<()> {
        self.sleep_alive(duration);
        Ok(())
    }

    fn incarnation(&mut self) -> Step<u64> {
        Ok(random_u64())
    }

    /// Every operation at once, each on the worker pool of the directory it goes to (see
    /// `batch.rs`); each answer is dated when its worker had it.
    fn storage_batch(
        &mut self,
        ops: &[StorageOp],
        limit: Duration,
        enough: usize,
    ) -> Step<Vec<Option<Answer>>> {
        let started = guard::boot_clock();
        let jobs = ops
            .iter()
            .map(|op| batch::Job {
                directory: storage_directory(op).to_string(),
                work: storage_work(op.clone()),
            })
            .collect();
        let outcomes = self.pools.run_all(jobs, limit, enough, Result::is_ok);
        let mut answers = Vec::with_capacity(ops.len());
        for (op, outcome) in ops.iter().zip(outcomes) {
            let directory = storage_directory(op);
            let Some((io, at)) = io_of(outcome, directory) else {
                answers.push(None);
                continue;
            };
            if self.reporter.times_storage() {
                let name = match op {
                    StorageOp::Read { .. } => "read",
                    StorageOp::Write { .. } => "write",
                    StorageOp::List { .. } => "list",
                };
                let failed = went_wrong(&io);
                self.reporter.storage_operation(
                    name,
                    directory,
                    at.saturating_sub(started),
                    failed,
                );
            }
            answers.push(Some(Answer { io, at }));
        }
        Ok(answers)
    }

    fn file_exists(&mut self, path: &str, limit: Duration) -> Step<Io<bool>> {
        let owned = path.to_string();
        let directory = directory_of(path);
        let run = |world: &mut Self| {
            world.bounded(directory, limit, move || Ok(files::is_regular_file(&owned)))
        };
        Ok(self.timed("exists", directory, run, went_wrong))
    }

    fn etcd(&mut self, request: &EtcdRequest, limit: Duration) -> Step<Io<EtcdAnswer>> {
        let Some(mut cluster) = self.etcd.take() else {
            // Only the etcd backend sends requests, and it runs only with an etcd store.
            return Ok(Io::Failed(
                "hacmp: etcd: no etcd cluster is configured (hacmpBackend is not etcd)".to_string(),
            ));
        };
        let run = |_: &mut Self| cluster.request(request, limit);
        let answer = self.timed(etcd::operation_name(request), "etcd", run, went_wrong);
        self.etcd = Some(cluster);
        Ok(answer)
    }

    fn guard_start(
        &mut self,
        command: &str,
        log_file: &str,
        deadline: Duration,
        token: u64,
        incarnation: u64,
    ) -> Step<bool> {
        Ok(self
            .guard()
            .start(command, log_file, deadline, token, incarnation))
    }

    fn guard_attach(&mut self, incarnation: u64) -> Step<Option<HeldLease>> {
        Ok(self.guard().attach(incarnation))
    }

    fn guard_extend(&mut self, deadline: Duration) -> Step<()> {
        self.guard().extend(deadline);
        Ok(())
    }

    fn guard_state(&mut self) -> Step<GuardState> {
        Ok(self.guard().state())
    }

    fn guard_stop(&mut self, grace: Duration) -> Step<()> {
        self.guard().stop(grace);
        Ok(())
    }
}
