//! Facts about one run: how many app instances were executing at each instant, how long more
//! than one was, how long each fault left the cluster without the app, and how often apps were
//! started and signalled.
//!
//! An instance *executes* while its process is alive and its host is not frozen: a frozen
//! instance can do no work, so it cannot conflict with another one. Without host freezes,
//! executing and alive are the same.

/// A fault that may have left the cluster without a running app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub at_ms: u64,
    pub label: String,
    /// Milliseconds until an app ran again; `None` while (or if never) recovered, and for a
    /// fault that did not stop the last app.
    pub failover_ms: Option<u64>,
    /// Whether the fault stopped the last running app.
    pub caused_outage: bool,
    /// How the other nodes were when it happened (see `scheduler`'s `others`).
    pub others: Others,
}

/// How the nodes other than a fault's were when it happened, for the failover rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Others {
    Healthy,
    /// Healthy but for storage that answers late by at most this many milliseconds.
    SlowStorage {
        slowest_ms: u64,
    },
    /// Some node down, paused, frozen, cut off, in maintenance, or storage failing otherwise.
    Unhealthy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    alive: u32,
    changed_at_ms: u64,
    pub overlap_ms: u64,
    pub max_alive: u32,
    pub starts: u32,
    pub terms: u32,
    pub kills: u32,
    pub faults: Vec<Fault>,
}

impl Audit {
    /// Accounts for the time since the last change, at the old count.
    fn advance(&mut self, now_ms: u64) {
        if self.alive > 1 {
            self.overlap_ms += now_ms - self.changed_at_ms;
        }
        self.changed_at_ms = now_ms;
    }

    pub fn app_started(&mut self, now_ms: u64) {
        self.advance(now_ms);
        self.starts += 1;
        self.alive += 1;
        self.max_alive = self.max_alive.max(self.alive);
        if self.alive == 1 {
            self.recovered(now_ms);
        }
    }

    pub fn app_ended(&mut self, now_ms: u64) {
        self.suspended(now_ms, 1);
    }

    /// `count` executing instances stop executing (their host froze) without ending.
    pub fn suspended(&mut self, now_ms: u64, count: u32) {
        self.advance(now_ms);
        assert!(
            self.alive >= count,
            "an app stopped that the audit never saw start"
        );
        self.alive -= count;
    }

    /// `count` instances execute again (their host thawed).
    pub fn resumed(&mut self, now_ms: u64, count: u32) {
        self.advance(now_ms);
        self.alive += count;
        self.max_alive = self.max_alive.max(self.alive);
        if count > 0 {
            self.recovered(now_ms);
        }
    }

    /// Ends every outage in progress: an instance executes again.
    fn recovered(&mut self, now_ms: u64) {
        for fault in self.faults.iter_mut() {
            if fault.caused_outage && fault.failover_ms.is_none() {
                fault.failover_ms = Some(now_ms - fault.at_ms);
            }
        }
    }

    pub fn signalled(&mut self, kill: bool) {
        if kill {
            self.kills += 1;
        } else {
            self.terms += 1;
        }
    }

    /// Records a fault; call it after the fault took effect, with the count before it.
    pub fn fault(&mut self, now_ms: u64, label: String, alive_before: u32, others: Others) {
        self.faults.push(Fault {
            at_ms: now_ms,
            label,
            failover_ms: None,
            caused_outage: alive_before > 0 && self.alive == 0,
            others,
        });
    }

    /// The instances executing now.
    pub fn alive(&self) -> u32 {
        self.alive
    }

    /// Closes the accounting at the end of the run.
    pub fn finish(&mut self, end_ms: u64) {
        self.advance(end_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_and_failover_are_measured() {
        let mut audit = Audit::default();
        audit.app_started(1000);
        audit.app_started(3000);
        audit.app_ended(4500);
        assert_eq!(audit.overlap_ms, 1500);
        audit.app_ended(6000);
        audit.fault(6000, "crash a".into(), 1, Others::Healthy);
        audit.app_started(9000);
        audit.finish(10_000);
        assert_eq!(audit.faults[0].failover_ms, Some(3000));
        assert_eq!((audit.starts, audit.max_alive), (3, 2));
    }

    #[test]
    fn a_frozen_instance_does_not_overlap() {
        let mut audit = Audit::default();
        audit.app_started(0);
        audit.suspended(1000, 1);
        audit.fault(1000, "freeze a".into(), 1, Others::Healthy);
        audit.app_started(5000);
        audit.resumed(7000, 1);
        audit.app_ended(7500);
        audit.finish(8000);
        assert_eq!(audit.overlap_ms, 500);
        assert_eq!(audit.faults[0].failover_ms, Some(4000));
    }
}
