//! What every cluster of real daemons watched by an oracle offers its tests: waiting for an
//! instance, for the end of every instance or for rounds of a daemon, the failure report, and
//! the guarantee itself. A cluster harness (heartbeat directories behind faultfs, or etcd)
//! implements the three accessors and gets the rest.

use std::time::Duration;

use super::oracle::{Instance, Oracle};
use super::{Node, wait_until};

pub trait Watched {
    /// How long a test waits for anything before it fails.
    const WAIT_LIMIT: Duration;
    /// Every daemon's loopTime, which its "In monitoring loop sleep" lines name.
    const LOOP_TIME: u64;
    /// The host names of `nodes()`, in their order.
    const HOSTS: &'static [&'static str];

    fn oracle(&self) -> &Oracle;
    fn nodes(&self) -> &[Node];
    /// What the report adds after the daemons' output (an etcd cluster's logs, say).
    fn more_report(&self) -> String {
        String::new()
    }

    /// Waits for an instance on `node` and returns it.
    fn wait_for_instance(&self, node: usize) -> Instance {
        let host = Self::HOSTS[node];
        let mut found = None;
        let what = format!("an instance on {host}\n{}", self.report());
        wait_until(&what, Self::WAIT_LIMIT, || {
            found = self
                .oracle()
                .running()
                .into_iter()
                .find(|instance| instance.host == host);
            found.is_some()
        });
        found.unwrap()
    }

    /// Waits until no instance runs on any node.
    fn wait_for_no_instance(&self) {
        let what = format!("every instance to end\n{}", self.report());
        wait_until(&what, Self::WAIT_LIMIT, || {
            self.oracle().running().is_empty()
        });
    }

    /// How many times `node`'s daemon has gone round its loop.
    fn rounds(&self, node: usize) -> usize {
        let line = format!("In monitoring loop sleep {}", Self::LOOP_TIME);
        self.nodes()[node]
            .output()
            .iter()
            .filter(|l| **l == line)
            .count()
    }

    /// Waits until `node`'s daemon has gone round its loop `rounds` more times.
    fn wait_for_rounds(&self, node: usize, rounds: usize) {
        let target = self.rounds(node) + rounds;
        let what = format!(
            "{rounds} rounds of {}\n{}",
            Self::HOSTS[node],
            self.report()
        );
        wait_until(&what, Self::WAIT_LIMIT, || self.rounds(node) >= target);
    }

    /// The instances running now must be exactly `expected`.
    fn assert_running(&self, expected: &[&Instance], why: &str) {
        let running = self.oracle().running();
        let expected: Vec<Instance> = expected.iter().map(|&i| i.clone()).collect();
        assert_eq!(running, expected, "{why}\n{}", self.report());
    }

    /// What a failure message needs: the oracle's timeline, the end of each daemon's output,
    /// and `more_report`.
    fn report(&self) -> String {
        const TAIL: usize = 40;
        let mut text = format!("timeline (seconds):\n{}", self.oracle().timeline());
        for (node, host) in self.nodes().iter().zip(Self::HOSTS) {
            let output = node.output();
            let tail = &output[output.len().saturating_sub(TAIL)..];
            text += &format!(
                "--- {host} output (last {TAIL} lines):\n{}\n--- {host} errors:\n{}\n",
                tail.join("\n"),
                node.errors()
            );
        }
        text + &self.more_report()
    }

    /// The guarantee: no two instances were ever alive at the same time.
    fn assert_no_overlap(&self) {
        let overlap = self.oracle().overlap();
        assert_eq!(
            overlap,
            Duration::ZERO,
            "instances overlapped\n{}",
            self.report()
        );
    }
}
