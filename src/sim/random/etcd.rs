//! Random fault schedules over an etcd cluster: the faults of the hosts and daemons as in the
//! general schedules, and the etcd cluster's own (members lost, leader changes, a quorum lost,
//! nodes cut off or answered slowly, the maintenance key).

use super::{HEAL_AT, RANDOM_DURATION, RANDOM_MAX_EVENTS, SplitMix64, clock_offset, healing};
use super::{crash_scenario, random_app, random_nodes};
use crate::sim::scenario::{Action, EtcdSpec, EventSpec, Scenario, Seconds};
use crate::timing::Timing;
use std::collections::BTreeMap;

/// The faults of hosts and daemons an etcd schedule draws from; storage faults are left out:
/// with etcd only the maintenance file is on the storage.
const NODE_ACTIONS: [Action; 12] = [
    Action::Crash,
    Action::Reboot,
    Action::DaemonKill,
    Action::DaemonStart,
    Action::Pause,
    Action::Resume,
    Action::AppCrash,
    Action::MaintenanceOn,
    Action::MaintenanceOff,
    Action::Freeze,
    Action::Thaw,
    Action::ClockJump,
];

const ETCD_ACTIONS: [Action; 8] = [
    Action::EtcdMemberDown,
    Action::EtcdMemberUp,
    Action::EtcdLeaderChange,
    Action::EtcdPartition,
    Action::EtcdSlow,
    Action::EtcdHeal,
    Action::EtcdMaintenanceOn,
    Action::EtcdMaintenanceOff,
];

/// Member counts drawn from: a single member, the usual three, and five.
const MEMBER_COUNTS: [usize; 4] = [1, 3, 3, 5];

/// Whether the etcd backend accepts faileOverTime and loopTime: the safe profile's timing, and
/// two keep-alives per lease (config/store.rs refuses the rest).
fn etcd_accepts(faile_over_time: i64, loop_time: i64) -> bool {
    Timing::new(faile_over_time as u64, loop_time as u64)
        .is_ok_and(|timing| 2 * timing.loop_pause + timing.io_limit < timing.takeover_after)
}

/// faileOverTime and loopTime: half the schedules use the script's defaults, the others draw
/// values the etcd backend accepts.
fn timing(rng: &mut SplitMix64) -> (i64, i64) {
    if rng.chance(50) {
        return (10, 3);
    }
    for _ in 0..super::TIMING_DRAWS {
        let (faile_over, loop_time) = (rng.between(4, 12), rng.between(1, 4));
        if etcd_accepts(faile_over, loop_time) {
            return (faile_over, loop_time);
        }
    }
    (10, 3)
}

/// A random schedule of 2 or 3 safe nodes on an etcd cluster; the same seed always gives the
/// same scenario.
pub fn scenario(seed: u64) -> Scenario {
    let mut rng = SplitMix64::new(seed);
    let node_count = rng.between(2, 3) as usize;
    let members = MEMBER_COUNTS[rng.below(MEMBER_COUNTS.len() as u64) as usize];
    let names = ["alpha", "beta", "gamma"];
    let nodes = random_nodes(&mut rng, &names[..node_count]);
    let (faile_over_time, loop_time) = timing(&mut rng);
    let variables = BTreeMap::from([
        ("loopTime".to_string(), loop_time.to_string()),
        ("faileOverTime".to_string(), faile_over_time.to_string()),
    ]);
    let mut events = Vec::new();
    for _ in 0..rng.between(0, RANDOM_MAX_EVENTS) {
        let at = Seconds::Fraction(rng.between(1, HEAL_AT * 10 - 1) as f64 / 10.0);
        let action = if rng.chance(50) {
            ETCD_ACTIONS[rng.below(ETCD_ACTIONS.len() as u64) as usize]
        } else {
            NODE_ACTIONS[rng.below(NODE_ACTIONS.len() as u64) as usize]
        };
        let node = names[rng.below(node_count as u64) as usize];
        let on_node = matches!(
            action,
            Action::EtcdPartition | Action::EtcdSlow | Action::EtcdHeal
        ) || !action.on_etcd();
        let mut spec = EventSpec::new(at, action, on_node.then_some(node));
        spec.member = matches!(action, Action::EtcdMemberDown | Action::EtcdMemberUp)
            .then(|| rng.below(members as u64) as usize);
        spec.extra_ms = (action == Action::EtcdSlow).then(|| rng.between(50, 3000) as u64);
        spec.seconds =
            (action == Action::ClockJump).then(|| Seconds::Whole(clock_offset(&mut rng)));
        events.push(spec);
    }
    events.sort_by_key(|e| e.at.millis());
    let mut heal = healing(&events, &names[..node_count], false);
    let at = Seconds::Whole(HEAL_AT);
    for member in 0..members {
        let mut up = EventSpec::new(at, Action::EtcdMemberUp, None);
        up.member = Some(member);
        heal.push(up);
    }
    for name in &names[..node_count] {
        heal.push(EventSpec::new(at, Action::EtcdHeal, Some(name)));
    }
    heal.push(EventSpec::new(at, Action::EtcdMaintenanceOff, None));
    events.extend(heal);
    Scenario {
        name: format!("etcd-random-{seed}"),
        description: format!("A random fault schedule over etcd from seed {seed}."),
        duration: RANDOM_DURATION as u64,
        seed,
        op_latency_ms: 1,
        variables,
        app: random_app(&mut rng),
        storage: Default::default(),
        sites: Vec::new(),
        etcd: Some(EtcdSpec { members }),
        nodes,
        events,
        allow_listing_cache: false,
    }
}

/// The clean host crashes of `random::crash_scenario`, on a three-member etcd cluster: they
/// measure the etcd backend's failover time.
pub fn crash_scenario_over_etcd(seed: u64) -> Scenario {
    let mut scenario = crash_scenario(seed);
    scenario.name = format!("etcd-crashes-{seed}");
    scenario.description = format!("Random clean host crashes over etcd from seed {seed}.");
    scenario.etcd = Some(EtcdSpec { members: 3 });
    scenario
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_schedules_are_valid_and_replayable() {
        for seed in 0..200 {
            for scenario in [scenario(seed), crash_scenario_over_etcd(seed)] {
                super::super::tests::check_valid_and_replayable(&scenario);
                let (faile_over, loop_time) = ["faileOverTime", "loopTime"]
                    .map(|name| scenario.variables[name].parse::<i64>().unwrap())
                    .into();
                assert!(etcd_accepts(faile_over, loop_time), "{}", scenario.name);
            }
        }
    }
}
