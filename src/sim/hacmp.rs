//! The hacmp driver: the loop of the node's profile (the compat engine or the safe loop) runs
//! on its own thread against `SimWorld`, which hands every call to the scheduler and blocks
//! until the scheduler answers.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use super::daemon::{Daemon, REAL_TIMEOUT};
use super::request::{Message, Outcome, Request, Value};
use crate::config::{Profile, Variables};
use crate::pattern::Pattern;
use crate::world::{
    Answer, EtcdAnswer, EtcdRequest, GuardState, Halted, HeldLease, Io, SafeWorld, Signal, Step,
    StorageOp, World,
};
use crate::{engine, safe, words};

/// The `World` of one simulated node. A dropped channel means the scheduler halted the node.
struct SimWorld {
    requests: Sender<Message>,
    outcomes: Receiver<Outcome>,
}

impl SimWorld {
    fn call(&mut self, request: Request) -> Step<Value> {
        let message = Message::Request {
            request,
            wants_reply: true,
        };
        self.requests.send(message).map_err(|_| Halted)?;
        let outcome = self.outcomes.recv().map_err(|_| Halted)?;
        Ok(outcome.value)
    }
}

/// The scheduler answers each request with the value of its kind; anything else is a bug.
fn mismatch(value: Value) -> ! {
    panic!("the simulated world answered with the wrong kind of value: {value:?}")
}

/// Milliseconds as the simulator counts them; durations beyond its range are programmer errors.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).expect("durations fit in u64 milliseconds")
}

impl SimWorld {
    /// A storage operation with a deadline; `done` unpacks the value of its kind.
    fn bounded<T>(&mut self, request: Request, done: impl Fn(Value) -> T) -> Step<Io<T>> {
        match self.call(request)? {
            Value::Bounded(io) => Ok(match *io {
                Io::Done(value) => Io::Done(done(value)),
                Io::Failed(error) => Io::Failed(error),
                Io::TimedOut => Io::TimedOut,
            }),
            other => mismatch(other),
        }
    }
}

impl SafeWorld for SimWorld {
    fn elapsed(&mut self) -> Step<Duration> {
        match self.call(Request::Elapsed)? {
            Value::Millis(ms) => Ok(Duration::from_millis(ms)),
            other => mismatch(other),
        }
    }

    fn pause(&mut self, duration: Duration) -> Step<()> {
        self.call(Request::Pause(millis(duration))).map(drop)
    }

    fn incarnation(&mut self) -> Step<u64> {
        match self.call(Request::Incarnation)? {
            Value::Number(number) => Ok(number),
            other => mismatch(other),
        }
    }

    fn storage_batch(
        &mut self,
        ops: &[StorageOp],
        limit: Duration,
        enough: usize,
    ) -> Step<Vec<Option<Answer>>> {
        let request = Request::StorageBatch {
            ops: ops.to_vec(),
            limit_ms: millis(limit),
            enough,
        };
        match self.call(request)? {
            Value::Answers(answers) => Ok(answers),
            other => mismatch(other),
        }
    }

    fn file_exists(&mut self, path: &str, limit: Duration) -> Step<Io<bool>> {
        let request = Request::FileExists {
            path: path.to_string(),
            limit_ms: millis(limit),
        };
        self.bounded(request, |value| match value {
            Value::Flag(flag) => flag,
            other => mismatch(other),
        })
    }

    fn etcd(&mut self, request: &EtcdRequest, limit: Duration) -> Step<Io<EtcdAnswer>> {
        let request = Request::Etcd {
            request: request.clone(),
            limit_ms: millis(limit),
        };
        self.bounded(request, |value| match value {
            Value::Etcd(answer) => answer,
            other => mismatch(other),
        })
    }

    fn guard_start(
        &mut self,
        command: &str,
        log_file: &str,
        deadline: Duration,
        token: u64,
        incarnation: u64,
    ) -> Step<bool> {
        let request = Request::GuardStart {
            command: command.to_string(),
            log_file: log_file.to_string(),
            deadline_ms: millis(deadline),
            token,
            incarnation,
        };
        match self.call(request)? {
            Value::Flag(started) => Ok(started),
            other => mismatch(other),
        }
    }

    fn guard_attach(&mut self, incarnation: u64) -> Step<Option<HeldLease>> {
        match self.call(Request::GuardAttach(incarnation))? {
            Value::Held(held) => Ok(held),
            other => mismatch(other),
        }
    }

    fn guard_extend(&mut self, deadline: Duration) -> Step<()> {
        self.call(Request::GuardExtend(millis(deadline))).map(drop)
    }

    fn guard_state(&mut self) -> Step<GuardState> {
        match self.call(Request::GuardState)? {
            Value::Guard(state) => Ok(state),
            other => mismatch(other),
        }
    }

    fn guard_stop(&mut self, grace: Duration) -> Step<()> {
        self.call(Request::GuardStop(millis(grace))).map(drop)
    }
}

impl World for SimWorld {
    fn sleep(&mut self, seconds: u64) -> Step<()> {
        self.call(Request::Sleep(seconds)).map(drop)
    }

    fn now(&mut self) -> Step<i64> {
        match self.call(Request::Now)? {
            Value::Seconds(seconds) => Ok(seconds),
            other => mismatch(other),
        }
    }

    fn is_regular_file(&mut self, path: &str) -> Step<bool> {
        match self.call(Request::IsRegularFile(path.to_string()))? {
            Value::Flag(flag) => Ok(flag),
            other => mismatch(other),
        }
    }

    fn newest_entry(&mut self, dir: &str) -> Step<String> {
        match self.call(Request::NewestEntry(dir.to_string()))? {
            Value::Name(name) => Ok(name),
            other => mismatch(other),
        }
    }

    fn modification_time(&mut self, path: &str) -> Step<Option<i64>> {
        match self.call(Request::ModificationTime(path.to_string()))? {
            Value::MaybeSeconds(seconds) => Ok(seconds),
            other => mismatch(other),
        }
    }

    fn touch(&mut self, path: &str) -> Step<()> {
        self.call(Request::Touch(path.to_string())).map(drop)
    }

    fn find_processes(&mut self, pattern: &Pattern) -> Step<Vec<u32>> {
        match self.call(Request::FindProcesses(pattern.as_str().to_string()))? {
            Value::Pids(pids) => Ok(pids),
            other => mismatch(other),
        }
    }

    fn signal(&mut self, pid: u32, signal: Signal) -> Step<()> {
        self.call(Request::Signal(pid, signal)).map(drop)
    }

    /// The request carries the words exec receives, as the bash driver's does: startCmd split
    /// as bash splits an unquoted `$startCmd`. Pathname expansion is left out: bash's driver
    /// globs in a real scratch directory that the simulated node does not have, and
    /// tests/spawn_vs_bash.rs compares globbing with bash on the real machine.
    fn start_detached(&mut self, command: &str, log_file: &str) -> Step<()> {
        let request = Request::StartDetached {
            command: words::fields(command).collect::<Vec<_>>().join(" "),
            log_file: log_file.to_string(),
        };
        self.call(request).map(drop)
    }

    fn print(&mut self, line: &str) -> Step<()> {
        self.call(Request::Print(line.to_string())).map(drop)
    }

    fn print_error(&mut self, line: &str) -> Step<()> {
        self.call(Request::PrintError(line.to_string())).map(drop)
    }
}

pub struct HacmpDaemon {
    requests: Receiver<Message>,
    outcomes: Sender<Outcome>,
    thread: JoinHandle<()>,
}

impl HacmpDaemon {
    pub fn start(variables: Variables) -> HacmpDaemon {
        let (request_sender, requests) = channel();
        let (outcomes, outcome_receiver) = channel();
        let thread = std::thread::spawn(move || {
            let mut world = SimWorld {
                requests: request_sender,
                outcomes: outcome_receiver,
            };
            let ended = match variables.profile {
                Profile::Compat => engine::run(&mut world, &variables),
                Profile::Safe(timing) => {
                    safe::run(&mut world, &variables, timing).map(|never| match never {})
                }
            };
            if let Ok(ended) = ended {
                // The scheduler may already have halted us; then nobody needs to know.
                let _ = world.requests.send(Message::Exited(ended.exit_status()));
            }
        });
        HacmpDaemon {
            requests,
            outcomes,
            thread,
        }
    }
}

impl Daemon for HacmpDaemon {
    fn next(&mut self) -> Result<Message, String> {
        self.requests
            .recv_timeout(REAL_TIMEOUT)
            .map_err(|error| match error {
                RecvTimeoutError::Timeout => "the hacmp loop made no request in time".to_string(),
                RecvTimeoutError::Disconnected => "the hacmp loop's thread died".to_string(),
            })
    }

    fn reply(&mut self, outcome: &Outcome) -> Result<(), String> {
        self.outcomes
            .send(outcome.clone())
            .map_err(|_| "the hacmp loop's thread died".to_string())
    }

    fn halt(self: Box<Self>) {
        let HacmpDaemon {
            requests,
            outcomes,
            thread,
        } = *self;
        drop(requests);
        drop(outcomes);
        // A panic in the loop has already been reported on stderr by the thread itself.
        let _ = thread.join();
    }
}
