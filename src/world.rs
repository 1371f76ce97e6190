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
}
