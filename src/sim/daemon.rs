//! A running daemon as the scheduler sees it, whichever program it is.

use super::request::{Message, Outcome};

/// How long (real time) a daemon may take to make its next request before the run is
/// abandoned; only a bug makes either driver that slow.
pub const REAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub trait Daemon {
    /// Blocks until the daemon's next message.
    fn next(&mut self) -> Result<Message, String>;
    /// Answers the request the daemon is waiting on.
    fn reply(&mut self, outcome: &Outcome) -> Result<(), String>;
    /// Ends the daemon at once, wherever it is (SIGKILL, crash); it takes no further step.
    fn halt(self: Box<Self>);
}
