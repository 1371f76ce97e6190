//! What a daemon asks of the simulated world, and what it gets back.
//!
//! Both drivers speak this one language: the hacmp driver turns each `World` call into a
//! `Request`, the bash driver turns each stubbed command into one. Their traces are therefore
//! comparable entry by entry.

use std::fmt;

use crate::world::Signal;

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
    StartDetached { command: String, log_file: String },
    Print(String),
    PrintError(String),
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
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Value::Unit => f.write_str("ok")?,
            Value::Flag(flag) => write!(f, "{flag}")?,
            Value::Name(name) => write!(f, "{name:?}")?,
            Value::Seconds(seconds) => write!(f, "{seconds}")?,
            Value::MaybeSeconds(Some(seconds)) => write!(f, "{seconds}")?,
            Value::MaybeSeconds(None) => f.write_str("none")?,
            Value::Pids(pids) => write!(f, "{pids:?}")?,
        }
        if let Some(error) = &self.error {
            write!(f, " (stderr {error:?})")?;
        }
        Ok(())
    }
}
