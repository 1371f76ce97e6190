//! Storage operations with deadlines, for the safe profile.
//!
//! On a hard NFS mount whose server is gone, a `stat` or `write` never returns, and a loop that
//! called it directly would never run again. Each operation therefore runs on a worker thread
//! and the caller waits at most its limit (`batch.rs` hands out the operations and waits). A worker stuck in the kernel stays stuck; it is left
//! behind and a new one takes its place, up to MAX_WORKERS, after which operations fail at once
//! until some worker returns. Workers are kept between operations, so a healthy storage costs no
//! thread creation per loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// How many operations may hang at once before new ones are refused.
pub const MAX_WORKERS: usize = 8;

/// Work for a worker thread.
pub type Job = Box<dyn FnOnce() + Send>;

struct Worker {
    jobs: mpsc::Sender<Job>,
    busy: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct Workers {
    workers: Vec<Worker>,
}

impl Workers {
    /// Hands `job` to an idle worker without waiting for it; false, running nothing, when every
    /// worker is stuck. The job itself tells whoever waits for it that it is done.
    pub fn start(&mut self, mut job: Job) -> bool {
        loop {
            let Some(index) = self.idle_worker() else {
                return false;
            };
            let worker = &self.workers[index];
            worker.busy.store(true, Ordering::SeqCst);
            match worker.jobs.send(job) {
                Ok(()) => return true,
                // The worker's thread is gone (it cannot be, short of a panic); drop it.
                Err(mpsc::SendError(returned)) => {
                    job = returned;
                    self.workers.swap_remove(index);
                }
            }
        }
    }

    /// How many operations handed out earlier have not returned yet.
    pub fn busy_workers(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| w.busy.load(Ordering::SeqCst))
            .count()
    }

    fn idle_worker(&mut self) -> Option<usize> {
        if let Some(index) = self
            .workers
            .iter()
            .position(|w| !w.busy.load(Ordering::SeqCst))
        {
            return Some(index);
        }
        if self.workers.len() >= MAX_WORKERS {
            return None;
        }
        let (jobs, inbox) = mpsc::channel::<Job>();
        let busy = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&busy);
        std::thread::Builder::new()
            .name("hacmp-storage".to_string())
            .spawn(move || {
                for job in inbox {
                    job();
                    finished.store(false, Ordering::SeqCst);
                }
            })
            .ok()?;
        self.workers.push(Worker { jobs, busy });
        Some(self.workers.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Runs `operation` on a worker; `None` when it did not finish within `limit` or when every
    /// worker is stuck.
    fn run<T: Send + 'static>(
        workers: &mut Workers,
        limit: Duration,
        operation: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        let started = workers.start(Box::new(move || {
            let _ = reply.send(operation());
        }));
        if !started {
            return None;
        }
        answer.recv_timeout(limit).ok()
    }

    #[test]
    fn a_hung_operation_times_out_and_others_go_on() {
        let mut workers = Workers::default();
        let (release, hang) = mpsc::channel::<()>();
        let hung = run(&mut workers, Duration::from_millis(50), move || {
            hang.recv().is_ok()
        });
        assert_eq!(hung, None, "the hung operation timed out");
        assert_eq!(
            run(&mut workers, Duration::from_secs(5), || 7),
            Some(7),
            "a new worker answered"
        );
        release.send(()).unwrap();
    }

    #[test]
    fn when_every_worker_hangs_operations_fail_at_once() {
        let mut workers = Workers::default();
        let (release, hang) = mpsc::channel::<()>();
        let hang = Arc::new(std::sync::Mutex::new(hang));
        for _ in 0..MAX_WORKERS {
            let hang = Arc::clone(&hang);
            let result = run(&mut workers, Duration::from_millis(20), move || {
                let _ = hang.lock().unwrap().recv();
            });
            assert_eq!(result, None);
        }
        assert_eq!(
            run(&mut workers, Duration::from_secs(5), || 1),
            None,
            "no worker is free"
        );
        drop(release);
    }
}
