//! The safe profile's durations, all derived from faileOverTime (F) and loopTime (L) so that no
//! new variable is needed. The safety argument in docs/safe-profile.md depends on the relations
//! that `Timing::new` checks. The module stands apart from `safe` so that `config`, which
//! validates faileOverTime and loopTime into a `Timing`, does not depend on the loop.

use std::time::Duration;

/// The pause between claiming and re-reading every record: the script's own 5-second recheck,
/// here long enough for any concurrent claim to become visible.
pub const SETTLE: Duration = Duration::from_secs(5);
/// A claim counts only if it was written within this time of the scan that chose its token;
/// it must be shorter than SETTLE (see docs/safe-profile.md, "concurrent claims").
pub const CLAIM_WINDOW: Duration = Duration::from_secs(4);
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
    /// How long one storage operation may take before the loop gives up on it.
    pub io_limit: Duration,
    /// How long after issuing its last successful write a master may run the application:
    /// its guard kills the application at that point unless a newer write succeeded.
    pub lease: Duration,
}

impl Timing {
    /// The durations for faileOverTime and loopTime, or why they cannot keep a lease.
    pub fn new(faile_over_time: u64, loop_time: u64) -> Result<Timing, String> {
        let takeover_after = Duration::from_secs(faile_over_time);
        let loop_pause = Duration::from_secs(loop_time);
        let io_limit =
            (takeover_after / 5).clamp(Duration::from_millis(500), Duration::from_secs(2));
        let margin = (takeover_after / 10).max(Duration::from_secs(1));
        let lease = takeover_after.saturating_sub(margin);
        if loop_pause + io_limit >= lease {
            return Err(format!(
                "is too short for loopTime={loop_time} in the safe profile: a master renews every loopTime plus up to {} ms of storage time, which must be less than its lease of faileOverTime minus {} ms",
                io_limit.as_millis(),
                margin.as_millis()
            ));
        }
        Ok(Timing {
            takeover_after,
            loop_pause,
            io_limit,
            lease,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_variables_give_a_nine_second_lease() {
        let timing = Timing::new(10, 3).unwrap();
        assert_eq!(timing.lease, Duration::from_secs(9));
        assert_eq!(timing.io_limit, Duration::from_secs(2));
        assert!(CLAIM_WINDOW < SETTLE);
    }

    #[test]
    fn a_loop_as_long_as_the_lease_is_refused() {
        assert!(Timing::new(3, 1).is_ok());
        assert!(Timing::new(10, 7).is_err());
        assert!(Timing::new(2, 1).is_err());
    }
}
