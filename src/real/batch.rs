//! Storage operations on several directories at once, for the safe profile over a majority of
//! heartbeat directories.
//!
//! Each directory has its own worker pool (`bounded::Workers`): operations hung on a directory
//! whose server is gone occupy that directory's workers only, so the other directories keep
//! answering however long the outage lasts. The operations of one batch start together and the
//! caller waits once, for all of them, at most the batch's limit: a hung directory costs one
//! limit per step, not one per directory.
//!
//! A directory whose operation from an earlier batch has not returned yet (its server is gone,
//! or too slow for the limit) gets no new operation until it has: its operations are refused at
//! once, so that it costs the loop one limit when it stops answering, not one in every step
//! until it answers again, and holds at most one batch's workers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::bounded::Workers;
use super::guard::boot_clock;

/// More directories than any configuration names (heartbeat directories, the maintenance
/// file's): operations on further directories are refused rather than given threads.
pub const MAX_DIRECTORIES: usize = 32;

/// How many workers of a directory one batch uses at most.
pub const CHAINS_PER_DIRECTORY: usize = 4;

type Work<T> = Box<dyn FnOnce() -> T + Send>;

/// One operation of a batch: the directory it goes to, whose workers run it, and the work.
pub struct Job<T> {
    pub directory: String,
    pub work: Work<T>,
}

/// What became of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// It returned `T`, at this moment of the boot clock (taken on the worker as it returned).
    Answered { value: T, at: Duration },
    /// It did not return within the limit; `at` is when the caller stopped waiting. It may
    /// still take effect later.
    NoAnswer { at: Duration },
    /// It never started: an earlier operation on its directory has not returned, or there are
    /// more directories than `MAX_DIRECTORIES`. `at` is when that was found.
    Refused { at: Duration },
}

/// One directory's workers and how many of the operations handed to them have not returned.
#[derive(Default)]
struct Directory {
    workers: Workers,
    /// Counted down by the worker as each operation returns, before its answer is sent, so
    /// that a caller who has every answer also sees the count at zero.
    unanswered: Arc<AtomicUsize>,
}

/// The worker pools, one per directory, created when a directory is first used and kept.
#[derive(Default)]
pub struct Pools {
    by_directory: BTreeMap<String, Directory>,
}

impl Pools {
    /// The pool of `directory`, or `None` when there are already `MAX_DIRECTORIES` others.
    fn of(&mut self, directory: &str) -> Option<&mut Directory> {
        if !self.by_directory.contains_key(directory) && self.by_directory.len() >= MAX_DIRECTORIES
        {
            return None;
        }
        Some(self.by_directory.entry(directory.to_string()).or_default())
    }

    /// How many operations on `directory` have not returned.
    pub fn unanswered(&self, directory: &str) -> usize {
        self.by_directory
            .get(directory)
            .map_or(0, |d| d.unanswered.load(Ordering::SeqCst))
    }

    /// How many workers of `directory` are busy.
    pub fn busy_workers(&self, directory: &str) -> usize {
        self.by_directory
            .get(directory)
            .map_or(0, |d| d.workers.busy_workers())
    }

    /// Runs `work` once on each of `dirs` at once, each on its directory's pool, for the
    /// one-shot commands (start, status) that look at every heartbeat directory.
    pub fn on_each_directory<T: Send + 'static>(
        &mut self,
        dirs: &[String],
        limit: Duration,
        work: fn(&str) -> T,
    ) -> Vec<Outcome<T>> {
        let jobs = dirs
            .iter()
            .map(|dir| {
                let owned = dir.clone();
                Job {
                    directory: dir.clone(),
                    work: Box::new(move || work(&owned)),
                }
            })
            .collect();
        self.run_all(jobs, limit)
    }

    /// Starts every job on its directory's pool at once and waits until all have answered or
    /// `limit` has passed since the start; the outcomes are in the order of `jobs`.
    ///
    /// A directory's jobs (a scan reads every entry) are dealt out to at most
    /// `CHAINS_PER_DIRECTORY` workers, each running its share one after the other and answering
    /// each as it returns: a directory with many entries is read in parallel, and a hung one
    /// holds only that many workers per batch.
    pub fn run_all<T: Send + 'static>(
        &mut self,
        jobs: Vec<Job<T>>,
        limit: Duration,
    ) -> Vec<Outcome<T>> {
        let started = boot_clock();
        let deadline = started + limit;
        let (reply, answers) = mpsc::channel::<(usize, T, Duration)>();
        let mut outcomes: Vec<Option<Outcome<T>>> = (0..jobs.len()).map(|_| None).collect();
        let mut by_directory: BTreeMap<String, Vec<(usize, Work<T>)>> = BTreeMap::new();
        for (index, job) in jobs.into_iter().enumerate() {
            by_directory
                .entry(job.directory)
                .or_default()
                .push((index, job.work));
        }
        let mut waiting = 0;
        for (directory, work) in by_directory {
            let indices: Vec<usize> = work.iter().map(|(index, _)| *index).collect();
            let started = match self.of(&directory) {
                Some(pool) if pool.unanswered.load(Ordering::SeqCst) == 0 => {
                    pool.start_chains(work, &reply)
                }
                _ => Vec::new(),
            };
            let at = boot_clock();
            for index in indices {
                if started.contains(&index) {
                    waiting += 1;
                } else {
                    outcomes[index] = Some(Outcome::Refused { at });
                }
            }
        }
        drop(reply);
        while waiting > 0 {
            let left = deadline.saturating_sub(boot_clock());
            let Ok((index, value, at)) = answers.recv_timeout(left) else {
                break;
            };
            outcomes[index] = Some(Outcome::Answered { value, at });
            waiting -= 1;
        }
        let stopped = boot_clock();
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(Outcome::NoAnswer { at: stopped }))
            .collect()
    }
}

impl Directory {
    /// Deals `work` out to at most `CHAINS_PER_DIRECTORY` workers; returns the indices of the
    /// operations that started (a chain that finds no worker starts none of its own).
    fn start_chains<T: Send + 'static>(
        &mut self,
        work: Vec<(usize, Work<T>)>,
        reply: &mpsc::Sender<(usize, T, Duration)>,
    ) -> Vec<usize> {
        let chains = work.len().min(CHAINS_PER_DIRECTORY);
        let mut dealt: Vec<Vec<(usize, Work<T>)>> = (0..chains).map(|_| Vec::new()).collect();
        for (position, item) in work.into_iter().enumerate() {
            dealt[position % chains].push(item);
        }
        let mut started = Vec::new();
        for chain in dealt {
            let indices: Vec<usize> = chain.iter().map(|(index, _)| *index).collect();
            let (reply, unanswered) = (reply.clone(), Arc::clone(&self.unanswered));
            unanswered.fetch_add(indices.len(), Ordering::SeqCst);
            let job = Box::new(move || {
                for (index, work) in chain {
                    let value = work();
                    unanswered.fetch_sub(1, Ordering::SeqCst);
                    // The caller may have stopped waiting; the answer is then dropped.
                    let _ = reply.send((index, value, boot_clock()));
                }
            });
            if self.workers.start(job) {
                started.extend(indices);
            } else {
                self.unanswered.fetch_sub(indices.len(), Ordering::SeqCst);
            }
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A job on `directory` that blocks until `release` is dropped or sent to.
    fn hanging(directory: &str, release: &Arc<Mutex<mpsc::Receiver<()>>>) -> Job<u32> {
        let release = Arc::clone(release);
        Job {
            directory: directory.to_string(),
            work: Box::new(move || {
                let _ = release.lock().unwrap().recv();
                0
            }),
        }
    }

    fn answering(directory: &str, value: u32) -> Job<u32> {
        Job {
            directory: directory.to_string(),
            work: Box::new(move || value),
        }
    }

    #[test]
    fn a_hung_directory_costs_one_limit_and_does_not_delay_the_others() {
        let mut pools = Pools::default();
        let (hold, release) = mpsc::channel::<()>();
        let release = Arc::new(Mutex::new(release));
        let limit = Duration::from_millis(400);
        let started = boot_clock();
        let outcomes = pools.run_all(
            vec![
                answering("/dc1", 1),
                hanging("/dc2", &release),
                answering("/witness", 3),
            ],
            limit,
        );
        let returned = boot_clock();
        assert!(
            returned - started >= limit,
            "the call waited for the hung directory up to the limit"
        );
        assert!(
            returned - started < limit * 3,
            "one limit for the whole batch, not one per operation: {:?}",
            returned - started
        );
        match &outcomes[..] {
            [
                Outcome::Answered {
                    value: 1,
                    at: first,
                },
                Outcome::NoAnswer { at: stopped },
                Outcome::Answered {
                    value: 3,
                    at: third,
                },
            ] => {
                assert!(*first - started < limit / 2, "dc1 answered at once");
                assert!(*third - started < limit / 2, "the witness answered at once");
                assert!(*stopped >= started + limit, "gave up on dc2 at the limit");
            }
            other => panic!("unexpected outcomes {other:?}"),
        }
        drop(hold);
    }

    #[test]
    fn when_every_answer_comes_the_call_returns_without_waiting_for_the_limit() {
        let mut pools = Pools::default();
        let started = boot_clock();
        let outcomes = pools.run_all(
            vec![answering("/a", 1), answering("/b", 2), answering("/a", 3)],
            Duration::from_secs(60),
        );
        assert!(boot_clock() - started < Duration::from_secs(30));
        let values: Vec<u32> = outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Answered { value, .. } => *value,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(values, [1, 2, 3], "answers in the order of the jobs");
    }

    #[test]
    fn a_directory_still_hanging_is_refused_at_once_and_never_starves_another() {
        let mut pools = Pools::default();
        let (release, hang) = mpsc::channel::<()>();
        let hang = Arc::new(Mutex::new(hang));
        let short = Duration::from_millis(50);
        let first = pools.run_all(vec![hanging("/dc2", &hang)], short);
        assert!(matches!(first[..], [Outcome::NoAnswer { .. }]), "{first:?}");
        let started = boot_clock();
        let outcomes = pools.run_all(
            vec![hanging("/dc2", &hang), answering("/dc1", 7)],
            Duration::from_secs(60),
        );
        match &outcomes[..] {
            [Outcome::Refused { at }, Outcome::Answered { value: 7, .. }] => {
                assert!(*at - started < Duration::from_secs(30), "refused at once");
            }
            other => panic!("/dc2 is refused at once and /dc1 still answers: {other:?}"),
        }
        // Once the hung operation returns, the directory is tried again.
        release.send(()).unwrap();
        wait_until_idle(&mut pools, "/dc2");
        let outcomes = pools.run_all(vec![answering("/dc2", 8)], Duration::from_secs(60));
        assert!(
            matches!(outcomes[..], [Outcome::Answered { value: 8, .. }]),
            "{outcomes:?}"
        );
    }

    fn wait_until_idle(pools: &mut Pools, directory: &str) {
        let limit = boot_clock() + Duration::from_secs(30);
        while pools.unanswered(directory) > 0 {
            assert!(boot_clock() < limit, "{directory}'s worker returned");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_batch_holds_at_most_a_few_workers_of_a_hung_directory() {
        let mut pools = Pools::default();
        let (release, hang) = mpsc::channel::<()>();
        let hang = Arc::new(Mutex::new(hang));
        let jobs = (0..3 * CHAINS_PER_DIRECTORY)
            .map(|_| hanging("/dc2", &hang))
            .collect();
        let outcomes = pools.run_all(jobs, Duration::from_millis(50));
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Outcome::NoAnswer { .. }))
        );
        let busy = pools.busy_workers("/dc2");
        assert!(busy <= CHAINS_PER_DIRECTORY, "{busy} workers hang");
        drop(release);
    }

    #[test]
    fn many_operations_on_one_directory_all_answer() {
        let mut pools = Pools::default();
        let jobs = (0..100).map(|value| answering("/dc1", value)).collect();
        let outcomes = pools.run_all(jobs, Duration::from_secs(60));
        for (expected, outcome) in outcomes.into_iter().enumerate() {
            assert!(
                matches!(outcome, Outcome::Answered { value, .. } if value as usize == expected),
                "{expected}: {outcome:?}"
            );
        }
    }

    #[test]
    fn directories_beyond_the_limit_are_refused() {
        let mut pools = Pools::default();
        let jobs = (0..=MAX_DIRECTORIES)
            .map(|index| answering(&format!("/d{index}"), 1))
            .collect();
        let outcomes = pools.run_all(jobs, Duration::from_secs(60));
        let refused = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Outcome::Refused { .. }))
            .count();
        assert_eq!(refused, 1, "{outcomes:?}");
    }
}
