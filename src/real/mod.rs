//! The real machine: each `World` method is the syscall-level equivalent of the tool the script
//! runs, with the same result and the same error line on stderr.

pub mod bounded;
pub mod files;
pub mod guard;
pub mod listing;
pub mod processes;
pub mod records;
pub mod spawn;

use std::fmt;
use std::io::Write;
use std::time::Duration;

use crate::pattern::Pattern;
use crate::world::{EntryRead, GuardState, Io, SafeWorld, Signal, Step, World};

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
    workers: bounded::Workers,
    guard: guard::GuardSlot,
}

impl RealWorld {
    pub fn new() -> RealWorld {
        RealWorld {
            children: spawn::Children::default(),
            workers: bounded::Workers::default(),
            // The guard runs as `hacmp guard`, from the same executable as the daemon.
            guard: guard::GuardSlot::new(
                std::env::current_exe().unwrap_or_else(|_| "hacmp".into()),
            ),
        }
    }

    /// Runs a storage operation on a worker, at most `limit` long.
    fn bounded<T: Send + 'static>(
        &mut self,
        limit: Duration,
        operation: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Io<T> {
        match self.workers.run(limit, operation) {
            Some(Ok(value)) => Io::Done(value),
            Some(Err(error)) => Io::Failed(error),
            None => Io::TimedOut,
        }
    }

    fn report<T>(&mut self, result: Result<T, ToolError>) -> Option<T> {
        result.map_err(|e| eprintln!("{e}")).ok()
    }
}

/// 64 random bits from the kernel. Should getrandom fail (it cannot, on a kernel that booted),
/// the boot clock's nanoseconds and our PID still differ between two starts of the daemon.
fn random_u64() -> u64 {
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

impl SafeWorld for RealWorld {
    fn elapsed(&mut self) -> Step<Duration> {
        Ok(guard::boot_clock())
    }

    fn pause(&mut self, duration: Duration) -> Step<()> {
        std::thread::sleep(duration);
        Ok(())
    }

    fn incarnation(&mut self) -> Step<u64> {
        Ok(random_u64())
    }

    fn read_record(&mut self, path: &str, limit: Duration) -> Step<Io<EntryRead>> {
        let path = path.to_string();
        Ok(self.bounded(limit, move || records::read(&path)))
    }

    fn write_record(&mut self, path: &str, content: &str, limit: Duration) -> Step<Io<()>> {
        let (path, content) = (path.to_string(), content.to_string());
        Ok(self.bounded(limit, move || records::write(&path, &content)))
    }

    fn list_records(&mut self, dir: &str, limit: Duration) -> Step<Io<Vec<String>>> {
        let dir = dir.to_string();
        Ok(self.bounded(limit, move || records::list(&dir)))
    }

    fn file_exists(&mut self, path: &str, limit: Duration) -> Step<Io<bool>> {
        let path = path.to_string();
        Ok(self.bounded(limit, move || Ok(files::is_regular_file(&path))))
    }

    fn guard_start(
        &mut self,
        command: &str,
        log_file: &str,
        deadline: Duration,
        token: u64,
    ) -> Step<bool> {
        Ok(self.guard.start(command, log_file, deadline, token))
    }

    fn guard_extend(&mut self, deadline: Duration) -> Step<()> {
        self.guard.extend(deadline);
        Ok(())
    }

    fn guard_state(&mut self) -> Step<GuardState> {
        Ok(self.guard.state())
    }

    fn guard_stop(&mut self, grace: Duration) -> Step<()> {
        self.guard.stop(grace);
        Ok(())
    }
}
