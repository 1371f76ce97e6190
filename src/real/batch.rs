//! Storage operations on several directories at once, for the safe profile over a majority of
//! heartbeat directories.
//!
//! Each directory has its own worker pool (`bounded::Workers`): operations hung on a directory
//! whose server is gone occupy that directory's workers only, so the other directories keep
//! answering however long the outage lasts. The operations of one batch start together and the
//! caller waits once, for all of them, at most the batch's limit: a hung directory costs one
//! limit per step, not one per directory.
//!
//! A batch returns as soon as enough directories (a majority, for the safe loop) have answered
//! every one of their operations without error: the stragglers are left to their workers, so a
//! slow or hung minority costs the loop nothing while a majority answers.
//!
//! A directory whose operation from an earlier batch has not returned yet (its server is gone,
//! or too slow) gets no new operation until it has: its operations are refused at once, so that
//! it costs the loop one limit when it stops answering, not one in every step until it answers
//! again, and holds at most one batch's workers. The refusal is an error only once the earlier
//! operation is overdue (past its own limit); before that, the directory is merely behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::bounded::Workers;
use super::guard::boot_clock;

/// The longest a batch waits without looking at the boot clock: a wait counts on the monotonic
/// clock, which stops while the machine is suspended, and the limit counts on the boot clock.
const BOOT_CLOCK_SLICE: Duration = Duration::from_millis(100);

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
    /// It had not returned when the caller stopped waiting, at `at`: at the limit (`expired`),
    /// or before, since enough directories had answered; it is left to its worker and may
    /// still take effect later.
    NoAnswer { at: Duration, expired: bool },
    /// It never started: an earlier operation on its directory has not returned, or there are
    /// more directories than `MAX_DIRECTORIES`. `at` is when that was found; `overdue` when the
    /// earlier operation is past its limit (or the directory has no pool), which is an error
    /// worth saying, unlike a directory that is merely behind.
    Refused { at: Duration, overdue: bool },
}

/// One directory's workers and how many of the operations handed to them have not returned.
#[derive(Default)]
struct Directory {
    workers: Workers,
    /// Counted down by the worker as each operation returns, before its answer is sent, so
    /// that a caller who has every answer also sees the count at zero.
    unanswered: Arc<AtomicUsize>,
    /// When the limit of the latest operations handed out here passes: while they have not
    /// returned, a directory is only behind until then, and overdue after.
    overdue_at: Duration,
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
        self.run_all(jobs, limit, usize::MAX, |_| true)
    }

    /// Starts every job on its directory's pool at once and waits until all have answered,
    /// `enough` directories have had every job answered with a value that `succeeded`, or
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
        enough: usize,
        succeeded: fn(&T) -> bool,
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
        // For each job started, its directory's position in `pending`: the directory's jobs
        // not yet answered, and whether every answer so far succeeded.
        let mut directory_of_job = vec![usize::MAX; outcomes.len()];
        let mut pending: Vec<(usize, bool)> = Vec::new();
        for (directory, work) in by_directory {
            let indices: Vec<usize> = work.iter().map(|(index, _)| *index).collect();
            let (started, overdue) = match self.of(&directory) {
                Some(pool) if pool.unanswered.load(Ordering::SeqCst) == 0 => {
                    pool.overdue_at = deadline;
                    (pool.start_chains(work, &reply), true)
                }
                Some(pool) => (Vec::new(), boot_clock() >= pool.overdue_at),
                None => (Vec::new(), true),
            };
            let at = boot_clock();
            let position = pending.len();
            pending.push((0, true));
            for index in indices {
                if started.contains(&index) {
                    directory_of_job[index] = position;
                    pending[position].0 += 1;
                } else {
                    outcomes[index] = Some(Outcome::Refused { at, overdue });
                }
            }
        }
        drop(reply);
        let mut waiting: usize = pending.iter().map(|(jobs, _)| jobs).sum();
        let mut complete = 0;
        while waiting > 0 && complete < enough {
            let left = deadline.saturating_sub(boot_clock());
            if left.is_zero() {
                break;
            }
            let (index, value, at) = match answers.recv_timeout(left.min(BOOT_CLOCK_SLICE)) {
                Ok(answer) => answer,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let directory = &mut pending[directory_of_job[index]];
            directory.0 -= 1;
            directory.1 &= succeeded(&value);
            if *directory == (0, true) {
                complete += 1;
            }
            outcomes[index] = Some(Outcome::Answered { value, at });
            waiting -= 1;
        }
        let stopped = boot_clock();
        let expired = complete < enough;
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or(Outcome::NoAnswer {
                    at: stopped,
                    expired,
                })
            })
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

    /// Runs `jobs` waiting for every one of them (or the limit).
    fn run_every(pools: &mut Pools, jobs: Vec<Job<u32>>, limit: Duration) -> Vec<Outcome<u32>> {
        pools.run_all(jobs, limit, usize::MAX, |_| true)
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
        let outcomes = run_every(
            &mut pools,
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
                Outcome::NoAnswer {
                    at: stopped,
                    expired: true,
                },
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
    fn a_majority_answering_ends_the_batch_and_the_straggler_is_left_behind() {
        let mut pools = Pools::default();
        let (hold, release) = mpsc::channel::<()>();
        let release = Arc::new(Mutex::new(release));
        let limit = Duration::from_secs(60);
        let started = boot_clock();
        let outcomes = pools.run_all(
            vec![
                hanging("/dc1", &release),
                answering("/dc2", 2),
                answering("/witness", 3),
            ],
            limit,
            2,
            |_| true,
        );
        assert!(
            boot_clock() - started < limit / 2,
            "returned on the majority, not at the limit"
        );
        assert!(
            matches!(
                outcomes[..],
                [
                    Outcome::NoAnswer { expired: false, .. },
                    Outcome::Answered { value: 2, .. },
                    Outcome::Answered { value: 3, .. }
                ]
            ),
            "{outcomes:?}"
        );
        // The straggler is behind, not overdue: refused quietly until its limit passes.
        let outcomes = run_every(&mut pools, vec![answering("/dc1", 4)], limit);
        assert!(
            matches!(outcomes[..], [Outcome::Refused { overdue: false, .. }]),
            "{outcomes:?}"
        );
        drop(hold);
    }

    #[test]
    fn an_error_does_not_count_toward_enough() {
        let mut pools = Pools::default();
        let (hold, release) = mpsc::channel::<()>();
        let release = Arc::new(Mutex::new(release));
        let limit = Duration::from_millis(300);
        let started = boot_clock();
        let outcomes = pools.run_all(
            vec![
                hanging("/dc1", &release),
                answering("/dc2", 0),
                answering("/witness", 3),
            ],
            limit,
            2,
            |&value| value != 0,
        );
        assert!(
            boot_clock() - started >= limit,
            "waited for a second success"
        );
        assert!(
            matches!(outcomes[0], Outcome::NoAnswer { expired: true, .. }),
            "{outcomes:?}"
        );
        drop(hold);
    }

    #[test]
    fn when_every_answer_comes_the_call_returns_without_waiting_for_the_limit() {
        let mut pools = Pools::default();
        let started = boot_clock();
        let outcomes = run_every(
            &mut pools,
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
        let first = run_every(&mut pools, vec![hanging("/dc2", &hang)], short);
        assert!(matches!(first[..], [Outcome::NoAnswer { .. }]), "{first:?}");
        let started = boot_clock();
        let outcomes = run_every(
            &mut pools,
            vec![hanging("/dc2", &hang), answering("/dc1", 7)],
            Duration::from_secs(60),
        );
        match &outcomes[..] {
            [
                Outcome::Refused { at, overdue: true },
                Outcome::Answered { value: 7, .. },
            ] => {
                assert!(*at - started < Duration::from_secs(30), "refused at once");
            }
            other => panic!("/dc2 is refused at once and /dc1 still answers: {other:?}"),
        }
        // Once the hung operation returns, the directory is tried again.
        release.send(()).unwrap();
        wait_until_idle(&mut pools, "/dc2");
        let outcomes = run_every(
            &mut pools,
            vec![answering("/dc2", 8)],
            Duration::from_secs(60),
        );
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
        let outcomes = run_every(&mut pools, jobs, Duration::from_millis(50));
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
        let outcomes = run_every(&mut pools, jobs, Duration::from_secs(60));
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
        let outcomes = run_every(&mut pools, jobs, Duration::from_secs(60));
        let refused = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Outcome::Refused { .. }))
            .count();
        assert_eq!(refused, 1, "{outcomes:?}");
    }
}
