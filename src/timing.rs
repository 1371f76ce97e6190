//! The safe profile's durations, all derived from faileOverTime (F) and loopTime (L) so that no
//! new variable is needed. The safety argument in docs/safe-profile.md depends on the relations
//! that `Timing::new` checks. The module stands apart from `safe` so that `config`, which
//! validates faileOverTime and loopTime into a `Timing`, does not depend on the loop.

use std::time::Duration;

/// The least a claim settles between its confirmation and the re-read: the script's own
/// 5-second recheck. It is longer when the claim window needs it (`Timing::settle`).
pub const MIN_SETTLE: Duration = Duration::from_secs(5);
/// How much longer the settle is than the claim window: the argument for concurrent claims
/// needs it strictly longer (see docs/safe-profile.md, "Two claimants").
pub const SETTLE_OVER_WINDOW: Duration = Duration::from_secs(1);
/// Room for the loop's own work between its storage steps (the guard's state, printing): a
/// few milliseconds on any machine.
pub const STEP_SLACK: Duration = Duration::from_millis(50);
/// Room in the claim window beyond its storage steps, for the loop's own work and a loaded
/// host's scheduling; the window costs nothing but a longer settle.
pub const CLAIM_SLACK: Duration = Duration::from_secs(1);
/// The shortest storage deadline the safe profile accepts: shorter, a healthy network storage
/// could not answer in time.
pub const MIN_IO_LIMIT: Duration = Duration::from_millis(200);
/// The longest storage deadline, and what faileOverTime/5 gives below it.
pub const MAX_IO_LIMIT: Duration = Duration::from_secs(2);
const PREFERRED_MIN_IO_LIMIT: Duration = Duration::from_millis(500);
/// How a derived storage deadline is rounded down, so that it reads as the operator would
/// write it.
const IO_LIMIT_STEP_MS: u128 = 100;
/// The storage steps between a master's renewal and the confirmation of the next, each of
/// which may take the whole deadline: the renewal, the listing, the reads, and the next
/// renewal; that confirmation must come before the lease from the first renewal's issue ends.
pub const STEPS_PER_ROUND: u32 = 4;
/// The storage steps from the start of a standby's decision scan to its claim's
/// confirmation: the listing, the reads and the claim's write.
pub const STEPS_PER_CLAIM: u32 = 3;
/// The storage steps of a takeover that `Timing::takeover_bound` counts as instant, each of
/// which waits for a directory of the majority that answers slowly: the standby's round that
/// sees the master's last change and the one that finds it faileOverTime old (its own write,
/// the listing, the reads: 3 each), and the claim (the listing and reads of its decision, the
/// claim's write, the settle's listing and reads, the master write: 6).
pub const STEPS_PER_SLOW_TAKEOVER: u32 = 2 * 3 + 6;
/// How long a standby waits for SIGTERM to end a stray local instance before SIGKILL, as the
/// script's killInstance does; it stops waiting as soon as the instances are gone.
pub const GRACEFUL_KILL: Duration = Duration::from_secs(30);
/// How often a standby looks whether stray instances are gone during that wait.
pub const KILL_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// F: how long a standby must see a record unchanged before it may claim.
    pub takeover_after: Duration,
    /// L: the pause between two rounds of the loop.
    pub loop_pause: Duration,
    /// D: how long one storage operation may take before the loop gives up on it.
    pub io_limit: Duration,
    /// How long after issuing its last successful write a master may run the application:
    /// its guard kills the application at that point unless a newer write succeeded.
    pub lease: Duration,
    /// A claim counts only if a majority confirmed it within this time of the start of the
    /// scan that chose its token: the scan's two steps and the claim's write, each within D
    /// (`STEPS_PER_CLAIM`).
    pub claim_window: Duration,
    /// The pause between a claim's confirmation and the re-read of every record, long enough
    /// for any concurrent claim to become visible; longer than the claim window.
    pub settle: Duration,
}

impl Timing {
    /// The durations for faileOverTime and loopTime, or why they cannot keep a lease.
    ///
    /// D is faileOverTime/5 between 0.5 s and 2 s, but no longer than lets a master's round
    /// (loopTime and `STEPS_PER_ROUND` storage steps) fit in its lease, so that a directory answering
    /// within D never fences a master that has a majority; settings where even the shortest
    /// deadline does not fit are refused.
    pub fn new(faile_over_time: u64, loop_time: u64) -> Result<Timing, String> {
        let takeover_after = Duration::from_secs(faile_over_time);
        let loop_pause = Duration::from_secs(loop_time);
        let margin = (takeover_after / 10).max(Duration::from_secs(1));
        let lease = takeover_after.saturating_sub(margin);
        let preferred = (takeover_after / 5).clamp(PREFERRED_MIN_IO_LIMIT, MAX_IO_LIMIT);
        // A round must end strictly before the lease does.
        let room = lease.saturating_sub(loop_pause + STEP_SLACK + Duration::from_millis(1))
            / STEPS_PER_ROUND;
        let fitting =
            Duration::from_millis((room.as_millis() / IO_LIMIT_STEP_MS * IO_LIMIT_STEP_MS) as u64);
        let io_limit = preferred.min(fitting);
        let round = loop_pause + STEPS_PER_ROUND * MIN_IO_LIMIT + STEP_SLACK;
        if io_limit < MIN_IO_LIMIT || round >= lease {
            return Err(format!(
                "is too short for loopTime={loop_time} in the safe profile: from one renewal to the next one's confirmation a master takes loopTime plus {STEPS_PER_ROUND} storage steps of at least {} ms each plus {} ms, {} ms + {STEPS_PER_ROUND} × {} ms + {} ms = {} ms, which must be less than its lease of faileOverTime minus {} ms = {} ms",
                MIN_IO_LIMIT.as_millis(),
                STEP_SLACK.as_millis(),
                loop_pause.as_millis(),
                MIN_IO_LIMIT.as_millis(),
                STEP_SLACK.as_millis(),
                round.as_millis(),
                margin.as_millis(),
                lease.as_millis()
            ));
        }
        let claim_window = STEPS_PER_CLAIM * io_limit + CLAIM_SLACK;
        let settle = MIN_SETTLE.max(claim_window + SETTLE_OVER_WINDOW);
        let timing = Timing {
            takeover_after,
            loop_pause,
            io_limit,
            lease,
            claim_window,
            settle,
        };
        assert!(timing.round() < lease, "{timing:?}: a round fits the lease");
        assert!(
            claim_window < settle,
            "{timing:?}: the settle outlasts the window"
        );
        Ok(timing)
    }

    /// The longest from a master's renewal to the next renewal's confirmation when every
    /// directory of a majority answers within D.
    pub fn round(&self) -> Duration {
        self.loop_pause + STEPS_PER_ROUND * self.io_limit + STEP_SLACK
    }

    /// The bound on a takeover after the master's site is lost (host and directory), with the
    /// files backend: faileOverTime to see the master's record unchanged, up to a loopTime to
    /// notice its last change, the settle, and one storage deadline for the lost directory or
    /// maintenance file (every later step returns on the majority, or is refused at once).
    pub fn takeover_bound(&self) -> Duration {
        self.takeover_after + self.loop_pause + self.settle + self.io_limit
    }

    /// The bound on a takeover after a site loss while one of the directories left answers
    /// within D but slowly: `takeover_bound` with every step of the takeover waiting D.
    pub fn slow_takeover_bound(&self) -> Duration {
        self.takeover_bound() + self.io_limit * STEPS_PER_SLOW_TAKEOVER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_variables_give_a_nine_second_lease() {
        let timing = Timing::new(10, 3).unwrap();
        assert_eq!(timing.lease, Duration::from_secs(9));
        // faileOverTime/5 is 2 s, but 3 s + 4 × 2 s would not fit the 9 s lease.
        assert_eq!(timing.io_limit, Duration::from_millis(1400));
        assert_eq!(timing.claim_window, Duration::from_millis(5200));
        assert_eq!(timing.settle, Duration::from_millis(6200));
        assert_eq!(timing.takeover_bound(), Duration::from_millis(20_600));
    }

    #[test]
    fn a_short_faile_over_time_keeps_the_scripts_five_second_settle() {
        let timing = Timing::new(5, 1).unwrap();
        assert_eq!(timing.io_limit, Duration::from_millis(700));
        assert_eq!(timing.settle, MIN_SETTLE);
        assert_eq!(timing.takeover_bound(), Duration::from_millis(11_700));
    }

    #[test]
    fn a_long_faile_over_time_keeps_the_two_second_deadline() {
        let timing = Timing::new(40, 3).unwrap();
        assert_eq!(timing.io_limit, MAX_IO_LIMIT);
    }

    #[test]
    fn a_round_that_cannot_fit_the_lease_is_refused_with_the_arithmetic() {
        assert_eq!(
            Timing::new(3, 1).map(|t| t.io_limit),
            Ok(Duration::from_millis(200))
        );
        assert_eq!(
            Timing::new(10, 7).map(|t| t.io_limit),
            Ok(Duration::from_millis(400))
        );
        assert!(Timing::new(2, 1).is_err());
        let why = Timing::new(10, 9).unwrap_err();
        assert!(
            why.contains("9000 ms + 4 × 200 ms + 50 ms = 9850 ms")
                && why.contains("minus 1000 ms = 9000 ms"),
            "{why}"
        );
    }
}
