//! What a daemon asks of the simulated world, and what it gets back.
//!
//! Both drivers speak this one language: the hacmp driver turns each `World` call into a
//! `Request`, the bash driver turns each stubbed command into one. Their traces are therefore
//! comparable entry by entry.

use std::fmt;

use crate::world::{
    Answer, EntryRead, EtcdAnswer, EtcdRequest, GuardState, HeldLease, Io, Signal, StorageOp,
    StorageValue,
};

/// One world operation, with its arguments exactly as the loop passed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Sleep(u64),
    Now,
    IsRegularFile(String),
    NewestEntry(String),
    ModificationTime(String),
    Touch(String),
    FindProcesses(String),
    Signal(u32, Signal),
    /// `nohup $startCmd`: `command` holds the words exec receives, joined by single blanks.
    StartDetached {
        command: String,
        log_file: String,
    },
    Print(String),
    PrintError(String),
    // The safe profile's operations (`SafeWorld`); durations in milliseconds.
    Elapsed,
    Incarnation,
    Pause(u64),
    /// Storage operations run at once, each within the limit; the batch returns once `enough`
    /// storages answered all of theirs without error.
    StorageBatch {
        ops: Vec<StorageOp>,
        limit_ms: u64,
        enough: usize,
    },
    FileExists {
        path: String,
        limit_ms: u64,
    },
    GuardStart {
        command: String,
        log_file: String,
        deadline_ms: u64,
        token: u64,
        incarnation: u64,
    },
    /// The guard left by an earlier run, taken over by the run of this incarnation.
    GuardAttach(u64),
    GuardExtend(u64),
    GuardState,
    GuardStop(u64),
    /// One request to the simulated etcd cluster, with the caller's deadline.
    Etcd {
        request: EtcdRequest,
        limit_ms: u64,
    },
}

impl Request {
    /// The storage operations that carry their own deadline: on a hung storage they time out
    /// instead of blocking the daemon.
    pub fn limit_ms(&self) -> Option<u64> {
        match self {
            Request::StorageBatch { limit_ms, .. }
            | Request::FileExists { limit_ms, .. }
            | Request::Etcd { limit_ms, .. } => Some(*limit_ms),
            _ => None,
        }
    }
}

/// The value an operation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Unit,
    Flag(bool),
    Name(String),
    Seconds(i64),
    MaybeSeconds(Option<i64>),
    Pids(Vec<u32>),
    Millis(u64),
    Number(u64),
    Entry(EntryRead),
    Names(Vec<String>),
    Guard(GuardState),
    /// The answers of a storage batch, in the order of its operations.
    /// A batch's answers; `None` for an operation left behind.
    Answers(Vec<Option<Answer>>),
    Etcd(EtcdAnswer),
    Held(Option<HeldLease>),
    /// A storage operation with a deadline; `Done` holds one of the values above.
    Bounded(Box<Io<Value>>),
}

/// A value and the error line the tool printed on stderr, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub value: Value,
    pub error: Option<String>,
}

impl Outcome {
    pub fn ok(value: Value) -> Outcome {
        Outcome { value, error: None }
    }

    pub fn failed(value: Value, error: String) -> Outcome {
        Outcome {
            value,
            error: Some(error),
        }
    }
}

/// What a daemon sends to the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An operation; `wants_reply` is false for output the bash driver found on the script's
    /// own stdout or stderr, which nobody waits for.
    Request { request: Request, wants_reply: bool },
    /// The loop ended by itself with this exit status.
    Exited(u8),
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Sleep(seconds) => write!(f, "sleep {seconds}"),
            Request::Now => f.write_str("date +%s"),
            Request::IsRegularFile(path) => write!(f, "[ -f {path:?} ]"),
            Request::NewestEntry(dir) => write!(f, "ls -1tr {dir:?} | tail -1"),
            Request::ModificationTime(path) => write!(f, "stat -c %Y {path:?}"),
            Request::Touch(path) => write!(f, "touch {path:?}"),
            Request::FindProcesses(pattern) => write!(f, "pgrep -f {pattern:?}"),
            Request::Signal(pid, Signal::Term) => write!(f, "kill {pid}"),
            Request::Signal(pid, Signal::Kill) => write!(f, "kill -9 {pid}"),
            Request::StartDetached { command, log_file } => {
                write!(f, "nohup {command:?} > {log_file:?} 2>&1 &")
            }
            Request::Print(line) => write!(f, "stdout {line:?}"),
            Request::PrintError(line) => write!(f, "stderr {line:?}"),
            Request::Elapsed => f.write_str("elapsed"),
            Request::Incarnation => f.write_str("incarnation"),
            Request::Pause(ms) => write!(f, "pause {ms} ms"),
            Request::StorageBatch {
                ops,
                limit_ms,
                enough,
            } => {
                match *enough {
                    usize::MAX => write!(f, "within {limit_ms} ms:")?,
                    enough => write!(f, "within {limit_ms} ms or {enough} directories:")?,
                }
                for (index, op) in ops.iter().enumerate() {
                    let separator = if index == 0 { " " } else { "; " };
                    match op {
                        StorageOp::Read { path } => write!(f, "{separator}read {path:?}")?,
                        StorageOp::Write { path, content } => {
                            write!(f, "{separator}write {path:?} {content:?}")?
                        }
                        StorageOp::List { dir } => write!(f, "{separator}list {dir:?}")?,
                    }
                }
                Ok(())
            }
            Request::FileExists { path, limit_ms } => {
                write!(f, "exists {path:?} within {limit_ms} ms")
            }
            Request::GuardStart {
                command,
                log_file,
                deadline_ms,
                token,
                incarnation,
            } => write!(
                f,
                "guard start {command:?} > {log_file:?} until {deadline_ms} ms, token {token}, incarnation {incarnation}"
            ),
            Request::GuardAttach(incarnation) => {
                write!(f, "guard attach for incarnation {incarnation}")
            }
            Request::GuardExtend(ms) => write!(f, "guard extend until {ms} ms"),
            Request::GuardState => f.write_str("guard state"),
            Request::GuardStop(grace) => write!(f, "guard stop, grace {grace} ms"),
            Request::Etcd { request, limit_ms } => {
                write!(f, "etcd {request:?} within {limit_ms} ms")
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unit => f.write_str("ok"),
            Value::Flag(flag) => write!(f, "{flag}"),
            Value::Name(name) => write!(f, "{name:?}"),
            Value::Seconds(seconds) => write!(f, "{seconds}"),
            Value::MaybeSeconds(Some(seconds)) => write!(f, "{seconds}"),
            Value::MaybeSeconds(None) => f.write_str("none"),
            Value::Pids(pids) => write!(f, "{pids:?}"),
            Value::Millis(ms) => write!(f, "{ms} ms"),
            Value::Number(number) => write!(f, "{number}"),
            Value::Entry(EntryRead::Missing) => f.write_str("missing"),
            Value::Entry(EntryRead::NotAFile) => f.write_str("not a file"),
            Value::Entry(EntryRead::File { text, modified }) => {
                write!(f, "{text:?} modified {modified}")
            }
            Value::Names(names) => write!(f, "{names:?}"),
            Value::Guard(state) => write!(f, "{state:?}"),
            Value::Answers(answers) => {
                for (index, answer) in answers.iter().enumerate() {
                    let separator = if index == 0 { "" } else { "; " };
                    let Some(answer) = answer else {
                        write!(f, "{separator}left behind")?;
                        continue;
                    };
                    let value = answer.io.clone().map(|value| match value {
                        StorageValue::Entry(entry) => Value::Entry(entry),
                        StorageValue::Written => Value::Unit,
                        StorageValue::Names(names) => Value::Names(names),
                    });
                    write!(f, "{separator}")?;
                    write_io(f, &value)?;
                    write!(f, " at {} ms", answer.at.as_millis())?;
                }
                Ok(())
            }
            Value::Etcd(answer) => write!(f, "{answer:?}"),
            Value::Held(None) => f.write_str("no guard"),
            Value::Held(Some(held)) => write!(
                f,
                "token {} incarnation {} until {} ms",
                held.token,
                held.incarnation,
                held.deadline.as_millis()
            ),
            Value::Bounded(io) => write_io(f, io),
        }
    }
}

/// A bounded operation's outcome as the trace shows it.
fn write_io(f: &mut fmt::Formatter<'_>, io: &Io<Value>) -> fmt::Result {
    match io {
        Io::Done(value) => write!(f, "{value}"),
        Io::Failed(error) => write!(f, "failed {error:?}"),
        Io::TimedOut => f.write_str("timed out"),
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)?;
        if let Some(error) = &self.error {
            write!(f, " (stderr {error:?})")?;
        }
        Ok(())
    }
}
