//! Row 6: failover after a crash of the master with the etcd backend, measured on real
//! processes: two hacmp daemons on a real three-member etcd cluster (Debian's etcd-server, on
//! 127.0.0.1), the master's host lost again and again, next to heartbeat.sh's failover with the
//! same faileOverTime and loopTime from the parity simulator, which runs the unmodified script.

use std::time::Duration;

use hacmp::sim::scheduler::Driver;

use crate::children;
use crate::report::{Row, Section};
use crate::simulation;
use crate::support::etcd::{ACTIVE, EtcdNodes, FAILE_OVER_TIME, LOOP_TIME, STANDBY};
use crate::support::watched::Watched;

pub struct Settings {
    /// How many times the master's host is lost.
    pub crashes: usize,
    /// How many random crash instants bash's figure comes from.
    pub bash_crash_instants: usize,
}

/// The target of issue 12: the standby runs the application within this of the crash.
fn target() -> Duration {
    Duration::from_secs(FAILE_OVER_TIME + LOOP_TIME + 2)
}

pub fn measure(settings: &Settings, command: &str) -> Section {
    let mut cluster = EtcdNodes::on_every_member("bench-etcd-failover");
    cluster.start_both();
    let mut master = ACTIVE;
    let mut failovers_ms = Vec::with_capacity(settings.crashes);
    for _ in 0..settings.crashes {
        children::check_interrupted();
        let standby = if master == ACTIVE { STANDBY } else { ACTIVE };
        let lost_at = cluster.lose_host(master);
        let instance = cluster.wait_for_instance(standby);
        failovers_ms.push(instance.started.saturating_sub(lost_at).as_millis() as u64);
        cluster.assert_no_overlap();
        // The lost host comes back as a standby, and is the next to lose the other.
        cluster.start(master);
        cluster.wait_for_rounds(master, 3);
        master = standby;
    }
    let slowest = failovers_ms.iter().copied().max().unwrap_or(0);
    let hacmp = simulation::distribution(&mut failovers_ms);
    let variables = [
        ("faileOverTime", FAILE_OVER_TIME.to_string()),
        ("loopTime", LOOP_TIME.to_string()),
    ];
    let overrides: Vec<(&str, &str)> = variables.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mut bash_ms: Vec<u64> =
        simulation::crash_failovers(settings.bash_crash_instants, &overrides, &[Driver::Bash])
            .into_iter()
            .filter_map(|figures| figures[0])
            .collect();
    let bash = simulation::distribution(&mut bash_ms);
    let met = Duration::from_millis(slowest) <= target();
    Section {
        rows: vec![Row {
            what: format!(
                "6. Failover after a master crash, etcd backend on real processes (three-member etcd on 127.0.0.1), faileOverTime {FAILE_OVER_TIME}, loopTime {LOOP_TIME}: crash to the application running on the standby, {} crashes",
                settings.crashes
            ),
            bash: format!(
                "{bash} (simulator, {} random crash instants, same variables)",
                settings.bash_crash_instants
            ),
            hacmp: format!("safe profile on etcd: {hacmp}"),
            comparison: format!(
                "target ≤ faileOverTime + loopTime + 2 s = {} s: {}",
                target().as_secs(),
                if met { "met" } else { "MISSED" }
            ),
            command: format!("`{command}`"),
        }],
        method: format!(
            "**Row 6** starts a three-member etcd cluster (Debian's etcd-server) on free ports of 127.0.0.1 and two hacmp daemons with hacmpProfile=safe, hacmpBackend=etcd, faileOverTime={FAILE_OVER_TIME} and loopTime={LOOP_TIME}, each with every member as an endpoint (tests/support/etcd.rs, as the real tests use it). It then loses the master's host {} times: its daemon, guard and application get SIGKILL at one moment, and the figure is the time from that moment until the standby's application records its start (the oracle of the real tests, on the boot clock); the lost host then comes back as a standby and is the next to be lost to the other. Every crash is also checked for 0 s of overlap. bash's figure is the unmodified heartbeat.sh in the parity simulator with the same two variables, at {} crash instants of the fixed seed of row 3: bash cannot keep its lease in etcd, so the comparison is with what the same failure costs on its shared directory.",
            settings.crashes, settings.bash_crash_instants
        ),
    }
}
