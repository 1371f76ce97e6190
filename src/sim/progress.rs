//! The progress line of `hacmp parity`: runs of minutes (`--random 1000`, `--safety`) tell an
//! operator at a terminal how far they are, on stderr, in one line rewritten in place. Off a
//! terminal (a pipe, a file, CI) nothing is written, so that logs hold only the results.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The line is redrawn at most this often: often enough to look alive, rarely enough that the
/// terminal is not the bottleneck of a run of thousands of short simulations.
const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// Counts runs as the workers finish them and draws the line.
pub struct Progress {
    total: u64,
    /// What a run that did not pass found, in the plural: "differences", "broken rules".
    findings: &'static str,
    started: Instant,
    /// Where the line goes; `None` when nobody would see it.
    sink: Option<Mutex<Box<dyn Write + Send>>>,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    done: u64,
    differences: u64,
    /// When the line was last drawn; `None` before the first time and after `clear`.
    drawn: Option<Instant>,
}

impl Progress {
    /// A progress line for `total` runs on stderr, if stderr is a terminal; `findings` names
    /// what a run that does not pass found.
    pub fn on_terminal(total: u64, findings: &'static str) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let sink = terminal.then(|| Box::new(std::io::stderr()) as Box<_>);
        Progress::to(total, findings, sink)
    }

    /// Counts without drawing anything: for callers that report on their own (tests, benches).
    pub fn silent() -> Progress {
        Progress::to(0, "differences", None)
    }

    fn to(total: u64, findings: &'static str, sink: Option<Box<dyn Write + Send>>) -> Progress {
        Progress {
            total,
            findings,
            started: Instant::now(),
            sink: sink.map(Mutex::new),
            counts: Mutex::new(Counts::default()),
        }
    }

    /// `runs` more runs are done, `different` when they found a difference (or broke a rule,
    /// or failed).
    pub fn record(&self, runs: u64, different: bool) {
        let mut counts = self.counts.lock().expect("no thread panics while counting");
        counts.done = counts.done.saturating_add(runs);
        counts.differences = counts.differences.saturating_add(u64::from(different));
        let Some(sink) = &self.sink else {
            return;
        };
        let now = Instant::now();
        let finished = counts.done >= self.total;
        if !finished && counts.drawn.is_some_and(|at| now - at < REDRAW_EVERY) {
            return;
        }
        counts.drawn = Some(now);
        let line = self.line(&counts, now - self.started);
        let mut sink = sink.lock().expect("no thread panics while drawing");
        // A terminal that cannot be written to loses the line, and nothing else.
        let _ = write!(sink, "\r\x1b[K{line}");
        let _ = sink.flush();
    }

    /// Removes the line, so that what is printed next starts on a clean line; the next
    /// `record` draws it again.
    pub fn clear(&self) {
        let mut counts = self.counts.lock().expect("no thread panics while counting");
        if let (Some(sink), Some(_)) = (&self.sink, counts.drawn.take()) {
            let mut sink = sink.lock().expect("no thread panics while drawing");
            let _ = write!(sink, "\r\x1b[K");
            let _ = sink.flush();
        }
    }

    fn line(&self, counts: &Counts, elapsed: Duration) -> String {
        let left = match self.total.saturating_sub(counts.done) {
            0 => "done".to_string(),
            // The runs so far predict the rest: they are drawn from the same schedules.
            _ if counts.done == 0 => "time left unknown".to_string(),
            remaining => {
                let per_run = elapsed.as_secs_f64() / counts.done as f64;
                let left = Duration::from_secs((per_run * remaining as f64).ceil() as u64);
                format!("about {} left", humantime::format_duration(left))
            }
        };
        format!(
            "{} of {} runs done, {} {} so far, {left}",
            counts.done, self.total, counts.differences, self.findings
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn the_line_says_runs_done_differences_and_time_left() {
        let progress = Progress::to(10, "differences", None);
        let counts = Counts {
            done: 4,
            differences: 1,
            drawn: None,
        };
        assert_eq!(
            progress.line(&counts, Duration::from_secs(8)),
            "4 of 10 runs done, 1 differences so far, about 12s left"
        );
    }

    #[test]
    fn the_first_and_the_last_run_are_always_drawn_in_place() {
        let captured = Captured::default();
        let progress = Progress::to(3, "broken rules", Some(Box::new(captured.clone())));
        progress.record(1, false);
        // The second run comes within the redraw interval and is not drawn.
        progress.record(1, true);
        progress.record(1, false);
        let text = captured.text();
        assert!(text.starts_with("\r\x1b[K1 of 3 runs done, 0 broken rules so far"));
        assert!(text.ends_with("\r\x1b[K3 of 3 runs done, 1 broken rules so far, done"));
        assert_eq!(text.matches('\r').count(), 2, "{text:?}");
        assert!(!text.contains('\n'), "one line, rewritten: {text:?}");
        progress.clear();
        assert!(captured.text().ends_with("done\r\x1b[K"));
    }
}
