//! The interface between the monitoring loop and everything outside it.
//!
//! Each method stands for one command that heartbeat.sh runs (named in its doc comment), so the
//! loop in `engine.rs` can call them in the same order as the script does. A method behaves like
//! the tool it replaces, including the error line the tool prints on stderr: the loop never
//! formats a tool's error itself, exactly as the script never does.
//!
//! Two implementations exist: `real::RealWorld` (syscalls and real time) and the simulator
//! (virtual time). Every method may return `Err(Halted)`; only the simulator does, when the node
//! running the loop crashes or its daemon is killed, and the loop then unwinds without another
//! step.

use crate::event::Event;
use crate::pattern::Pattern;

/// The loop's daemon was stopped from outside (simulated crash); it must take no further step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Halted;

/// The result of one step of the loop.
pub type Step<T> = Result<T, Halted>;

/// The two signals heartbeat.sh sends: `kill PID` and `kill -9 PID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

pub trait World {
    /// `sleep SECONDS`.
    fn sleep(&mut self, seconds: u64) -> Step<()>;

    /// `date +%s`: the host's wall clock in whole seconds.
    fn now(&mut self) -> Step<i64>;

    /// `[ -f PATH ]`: a regular file, following symbolic links.
    fn is_regular_file(&mut self, path: &str) -> Step<bool>;

    /// `ls -1tr DIR | tail -1`: the name of the newest entry, or "" when there is none or `ls`
    /// failed (it then prints its error).
    fn newest_entry(&mut self, dir: &str) -> Step<String>;

    /// `stat -c %Y PATH`: the modification time in whole seconds, or `None` after printing stat's
    /// error.
    fn modification_time(&mut self, path: &str) -> Step<Option<i64>>;

    /// `touch PATH`: create the file or set its times to the current time of whoever stores it.
    fn touch(&mut self, path: &str) -> Step<()>;

    /// `pgrep -f PATTERN`: the PIDs whose command line matches, ascending, never our own.
    fn find_processes(&mut self, pattern: &Pattern) -> Step<Vec<u32>>;

    /// `kill PID` / `kill -9 PID`.
    fn signal(&mut self, pid: u32, signal: Signal) -> Step<()>;

    /// `nohup $COMMAND > $LOG_FILE 2>&1 &`: `command` is the unexpanded value of startCmd.
    fn start_detached(&mut self, command: &str, log_file: &str) -> Step<()>;

    /// `echo LINE` to standard output.
    fn print(&mut self, line: &str) -> Step<()>;

    /// A line on standard error that the script would print through a shell or tool error.
    fn print_error(&mut self, line: &str) -> Step<()>;

    /// Tells the world what just happened; no command of the script stands behind it, so a world
    /// that only replays the script (the simulator) ignores it. It never fails and never halts
    /// the loop: whatever it does must not change what the loop does next.
    fn report(&mut self, _event: &Event) {}
}

/// The outcome of a storage operation that the safe profile bounds in time: on a hung mount the
/// operation may never return, and the loop must go on regardless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io<T> {
    Done(T),
    /// The storage answered with an error (the line a tool would print).
    Failed(String),
    /// No answer within the limit. The operation may still take effect later: a write may land
    /// after the caller has given up on it.
    TimedOut,
}

impl<T> Io<T> {
    /// The value of a `Done`, transformed; failures and timeouts stay as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Io<U> {
        match self {
            Io::Done(value) => Io::Done(f(value)),
            Io::Failed(error) => Io::Failed(error),
            Io::TimedOut => Io::TimedOut,
        }
    }
}

/// What a fresh read found at a record's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryRead {
    /// Nothing at the path.
    Missing,
    /// Something that is not a regular file (a directory, say): never a record.
    NotAFile,
    /// A regular file: its content (cut after `safe::record::MAX_RECORD_BYTES` + 1 bytes, so
    /// that an over-long file is never taken for a record) and its modification time in whole
    /// seconds, both from the same open file.
    File { text: String, modified: i64 },
}

/// One storage operation of the safe profile's files backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageOp {
    /// Reads a record fresh from the storage, not from a cache: its content and modification
    /// time, with one deadline for both.
    Read { path: String },
    /// Replaces a record with `content`; `Written` only once the storage has it.
    Write { path: String, content: String },
    /// The names of the entries that `ls` lists in `dir`, sorted by name.
    List { dir: String },
}

impl StorageOp {
    /// The path it acts on: the record's, or the listed directory's.
    pub fn path(&self) -> &str {
        match self {
            StorageOp::Read { path } | StorageOp::Write { path, .. } => path,
            StorageOp::List { dir } => dir,
        }
    }
}

/// What a storage operation produced: `Entry` for a read, `Written` for a write, `Names` for
/// a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageValue {
    Entry(EntryRead),
    Written,
    Names(Vec<String>),
}

/// One operation's outcome and the moment (boot clock) its answer came, or for `TimedOut` the
/// moment the caller stopped waiting: a change it shows is dated then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub io: Io<StorageValue>,
    pub at: std::time::Duration,
}

/// One request to etcd, as the etcd backend (`safe/etcd.rs`) issues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdRequest {
    /// LeaseGrant with a TTL in seconds.
    Grant {
        ttl: u64,
    },
    /// One LeaseKeepAlive of lease `id`; answers its TTL (0 or less: the lease is gone).
    KeepAlive {
        id: i64,
    },
    Revoke {
        id: i64,
    },
    /// Txn: If CreateRevision(key) == 0 Then Put(key, value, lease) Else Get(key).
    Campaign {
        key: String,
        value: String,
        lease: i64,
    },
    /// Txn: If CreateRevision(key) == create_revision Then Delete(key).
    Resign {
        key: String,
        create_revision: i64,
    },
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
}

/// A key as etcd keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub value: String,
    /// The revision that created the key; it never changes while the key lives, and a key
    /// created again gets a higher one.
    pub create_revision: i64,
    pub mod_revision: i64,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// etcd's answer to one `EtcdRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdAnswer {
    /// To `Grant`.
    Lease { id: i64, ttl: i64 },
    /// To `KeepAlive`: the lease's TTL in seconds, 0 or less when it is gone.
    Ttl(i64),
    /// To `Revoke`, `Resign`, `Put` and `Delete`.
    Done,
    /// To `Campaign`. won: our Put happened; holder: the key as it now is (ours when won).
    Campaign { won: bool, holder: KeyValue },
    /// To `Get`.
    Value(Option<KeyValue>),
}

/// The application as the guard sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardState {
    /// No application was started under the guard, or its end was already reported.
    Idle,
    Running,
    /// The application ended by itself.
    Exited,
    /// The guard killed the application because its deadline passed.
    Fenced,
    /// The guard itself died (killed, crashed): the world killed the application's whole tree
    /// and waited until nothing of it was left before reporting this.
    Lost,
}

/// What a guard left running by an earlier run of the daemon on this host still holds, once the
/// world has proven that this earlier run started it (docs/safe-profile.md, "Restart without
/// failover").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLease {
    /// The fencing token the application was started with.
    pub token: u64,
    /// The incarnation of the run that last answered for the guard: the record in the store
    /// must still show it.
    pub incarnation: u64,
    /// The guard's deadline on the boot clock: the lease's end as that run last confirmed it.
    pub deadline: std::time::Duration,
}

/// What the safe profile needs beyond the commands of heartbeat.sh: a clock that never jumps,
/// storage operations with deadlines, records with content, and a guard — a process separate
/// from the daemon that kills the application when the daemon's lease runs out, even when the
/// daemon itself is paused or dead.
///
/// Durations are measured on this host's boot clock (CLOCK_BOOTTIME): it never jumps with the
/// wall clock and keeps counting while the host is suspended. Hosts never compare such values
/// with each other, only durations.
pub trait SafeWorld: World {
    /// Time since boot.
    fn elapsed(&mut self) -> Step<std::time::Duration>;

    /// Sleeps for a duration shorter than a second, or any other.
    fn pause(&mut self, duration: std::time::Duration) -> Step<()>;

    /// A number that differs for every start of the daemon, even on the same host and boot, so
    /// that no two records of different runs are ever equal.
    fn incarnation(&mut self) -> Step<u64>;

    /// Runs every operation at once, each with `limit`: one per heartbeat directory, so that a
    /// hung directory costs one deadline for the whole step, not one per directory. Returns when
    /// all have answered, when `enough` of the directories the operations go to have answered
    /// every one of theirs without error (a majority: the slower rest is left to its workers,
    /// `None`, and a write among them may still land), or when the limit has passed; the
    /// answers in the order of `ops`. A single directory is a batch of one.
    fn storage_batch(
        &mut self,
        ops: &[StorageOp],
        limit: std::time::Duration,
        enough: usize,
    ) -> Step<Vec<Option<Answer>>>;

    /// `[ -f PATH ]` with a deadline, for a maintenance file on shared storage.
    fn file_exists(&mut self, path: &str, limit: std::time::Duration) -> Step<Io<bool>>;

    /// Sends one request to the etcd cluster and waits at most `limit` for its answer. An
    /// unreachable cluster is `Failed` or `TimedOut`; a request that timed out may still take
    /// effect.
    fn etcd(&mut self, request: &EtcdRequest, limit: std::time::Duration) -> Step<Io<EtcdAnswer>>;

    /// Starts the application under the guard, which kills it (SIGKILL, its whole process tree)
    /// once `elapsed` reaches `deadline`, unless extended. `token` is handed to the application
    /// as HACMP_FENCING_TOKEN; `incarnation` is this run's, kept by the guard so that a later
    /// run can match it against the store (`guard_attach`). Returns false, starting nothing,
    /// when the deadline has passed.
    fn guard_start(
        &mut self,
        command: &str,
        log_file: &str,
        deadline: std::time::Duration,
        token: u64,
        incarnation: u64,
    ) -> Step<bool>;

    /// At the daemon's start: finds the guard an earlier run of the daemon on this host left
    /// running, proves that run started it, and takes it over for this run; returns what it
    /// holds. The guard keeps `incarnation` from the first `guard_extend` on, which follows
    /// this run's first confirmed write: until the store shows the new incarnation, a later
    /// run must still find the old one. `None` when there is none, or when the one there
    /// cannot be proven ours: then it is left alone (it was never ours to order), and the
    /// standby rounds end its application as any stray instance. The loop either keeps the
    /// lease it holds or orders it stopped (`guard_stop`) before anything else.
    fn guard_attach(&mut self, incarnation: u64) -> Step<Option<HeldLease>>;

    /// Moves the guard's deadline; it only ever moves later.
    fn guard_extend(&mut self, deadline: std::time::Duration) -> Step<()>;

    /// Whether the guarded application runs; reports `Exited`, `Fenced` or `Lost` once, then
    /// `Idle`.
    fn guard_state(&mut self) -> Step<GuardState>;

    /// Ends the guarded application: SIGTERM, then SIGKILL after `grace` (at once when zero),
    /// returning when nothing of its tree is left, even if the guard died meanwhile.
    fn guard_stop(&mut self, grace: std::time::Duration) -> Step<()>;
}
