//! The real machine: each `World` method is the syscall-level equivalent of the tool the script
//! runs, with the same result and the same error line on stderr.

pub mod files;
pub mod listing;
pub mod processes;
pub mod spawn;

use std::fmt;
use std::io::Write;
use std::time::Duration;

use crate::pattern::Pattern;
use crate::world::{Signal, Step, World};

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
}

impl RealWorld {
    pub fn new() -> RealWorld {
        RealWorld {
            children: spawn::Children::default(),
        }
    }

    fn report<T>(&mut self, result: Result<T, ToolError>) -> Option<T> {
        result.map_err(|e| eprintln!("{e}")).ok()
    }
}

impl Default for RealWorld {
    fn default() -> Self {
        RealWorld::new()
    }
}

impl World for RealWorld {
    fn sleep(&mut self, seconds: u64) -> Step<()> {
        std::thread::sleep(Duration::from_secs(seconds));
        Ok(())
    }

    fn now(&mut self) -> Step<i64> {
        Ok(files::wall_clock_seconds())
    }

    fn is_regular_file(&mut self, path: &str) -> Step<bool> {
        Ok(files::is_regular_file(path))
    }

    fn newest_entry(&mut self, dir: &str) -> Step<String> {
        let newest = listing::newest_entry(dir);
        Ok(self.report(newest).unwrap_or_default())
    }

    fn modification_time(&mut self, path: &str) -> Step<Option<i64>> {
        let modified = files::modification_time(path);
        Ok(self.report(modified))
    }

    fn touch(&mut self, path: &str) -> Step<()> {
        let touched = files::touch(path);
        self.report(touched);
        Ok(())
    }

    fn find_processes(&mut self, pattern: &Pattern) -> Step<Vec<u32>> {
        Ok(processes::find(pattern, std::process::id()))
    }

    fn signal(&mut self, pid: u32, signal: Signal) -> Step<()> {
        let sent = processes::signal(pid, signal);
        self.report(sent);
        Ok(())
    }

    fn start_detached(&mut self, command: &str, log_file: &str) -> Step<()> {
        let started = self.children.start_detached(command, log_file);
        self.report(started);
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
}
