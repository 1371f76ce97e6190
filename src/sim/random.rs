//! A small seeded generator (SplitMix64) and the random fault schedules built with it. The
//! generator is our own so that a seed replays the same schedule whatever crate versions change.

mod etcd;

use std::collections::BTreeMap;

use super::scenario::{
    Action, AppSpec, EntryKind, EventSpec, NodeSpec, OnSigterm, Scenario, Seconds, SiteSpec,
    StorageSpec,
};
use crate::timing::Timing;

pub use etcd::{crash_scenario_over_etcd, scenario as etcd_scenario};

pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`; the tiny bias of the modulo does not matter here.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "an empty range has no member");
        self.next_u64() % bound
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The actions a random schedule draws from, each applied to one random node where it needs one.
const RANDOM_ACTIONS: [Action; 18] = [
    Action::Crash,
    Action::Reboot,
    Action::DaemonKill,
    Action::DaemonStart,
    Action::Pause,
    Action::Resume,
    Action::AppCrash,
    Action::MaintenanceOn,
    Action::MaintenanceOff,
    Action::StorageFail,
    Action::StorageHang,
    Action::StorageSlow,
    Action::StorageRestore,
    Action::Freeze,
    Action::Thaw,
    Action::ClockJump,
    Action::AttributeCache,
    Action::StorageLate,
];

/// Virtual seconds a random schedule lasts.
pub const RANDOM_DURATION: i64 = 300;
/// Faults happen before this time; at it every fault heals, and nothing happens after it, so
/// that the cluster's convergence can be checked at the end.
pub const HEAL_AT: i64 = 200;
/// The most fault events a random schedule has.
const RANDOM_MAX_EVENTS: i64 = 8;
/// How many times the generator draws faileOverTime and loopTime before it settles for the
/// defaults.
const TIMING_DRAWS: usize = 8;

/// Seconds of clock difference "of any size": small, beyond faileOverTime, hours, or years.
fn clock_offset(rng: &mut SplitMix64) -> i64 {
    let magnitude = [15, 120, 3 * 3600, 5 * 365 * 24 * 3600][rng.below(4) as usize];
    rng.between(-magnitude, magnitude)
}

/// faileOverTime and loopTime: half the schedules use the script's defaults; the others draw
/// values that every profile accepts.
fn timing(rng: &mut SplitMix64) -> (i64, i64) {
    if rng.chance(50) {
        return (10, 3);
    }
    for _ in 0..TIMING_DRAWS {
        let (faile_over, loop_time) = (rng.between(4, 12), rng.between(1, 4));
        if Timing::new(faile_over as u64, loop_time as u64).is_ok() {
            return (faile_over, loop_time);
        }
    }
    (10, 3)
}

/// Nodes named `names`, each starting within 8 s and one in twenty with its clock far off.
pub(super) fn random_nodes(rng: &mut SplitMix64, names: &[&str]) -> Vec<NodeSpec> {
    names
        .iter()
        .map(|name| NodeSpec {
            name: name.to_string(),
            start: Seconds::Whole(rng.between(0, 8)),
            clock_skew: Seconds::Whole(if rng.chance(20) { clock_offset(rng) } else { 0 }),
            restart_on_failure: true,
            listing_cache: Seconds::ZERO,
            sites: Vec::new(),
        })
        .collect()
}

/// A random schedule of 2 or 3 nodes; the same seed always gives the same scenario.
pub fn scenario(seed: u64) -> Scenario {
    let mut rng = SplitMix64::new(seed);
    let node_count = rng.between(2, 3) as usize;
    let names = ["alpha", "beta", "gamma"];
    let nodes = random_nodes(&mut rng, &names[..node_count]);
    let mut variables = BTreeMap::new();
    let (faile_over_time, loop_time) = timing(&mut rng);
    variables.insert("loopTime".to_string(), loop_time.to_string());
    variables.insert("faileOverTime".to_string(), faile_over_time.to_string());
    let shared_maintenance = rng.chance(25);
    let mut events = Vec::new();
    for _ in 0..rng.between(0, RANDOM_MAX_EVENTS) {
        let at = Seconds::Fraction(rng.between(1, HEAL_AT * 10 - 1) as f64 / 10.0);
        let action = if rng.chance(10) {
            Action::StrayEntry
        } else if rng.chance(5) {
            Action::DeleteEntry
        } else {
            RANDOM_ACTIONS[rng.below(RANDOM_ACTIONS.len() as u64) as usize]
        };
        let node = names[rng.below(node_count as u64) as usize];
        let shared = (matches!(action, Action::MaintenanceOn | Action::MaintenanceOff)
            && shared_maintenance)
            || (action == Action::ClockJump && rng.chance(25));
        let on_node = !shared && !matches!(action, Action::StrayEntry | Action::DeleteEntry);
        let mut spec = EventSpec::new(at, action, on_node.then_some(node));
        spec.name = match action {
            Action::StrayEntry => Some("stray".to_string()),
            Action::DeleteEntry => Some(node.to_string()),
            _ => None,
        };
        spec.kind = (action == Action::StrayEntry).then_some(EntryKind::File);
        spec.extra_ms = match action {
            Action::StorageSlow => Some(rng.between(50, 3000) as u64),
            Action::StorageLate => Some(rng.between(50, 20_000) as u64),
            _ => None,
        };
        spec.seconds = match action {
            Action::ClockJump => Some(Seconds::Whole(clock_offset(&mut rng))),
            Action::AttributeCache => Some(Seconds::Whole(rng.between(0, 60))),
            _ => None,
        };
        events.push(spec);
    }
    let heartbeat_dir_missing = rng.chance(10);
    if heartbeat_dir_missing {
        // Someone creates the directory eventually; until then no node can become master.
        let at = Seconds::Whole(rng.between(1, HEAL_AT / 2));
        events.push(EventSpec::new(at, Action::CreateDir, None));
    }
    events.sort_by_key(|e| e.at.millis());
    let heal = healing(&events, &names[..node_count], shared_maintenance);
    events.extend(heal);
    Scenario {
        name: format!("random-{seed}"),
        description: format!("A random fault schedule from seed {seed}."),
        duration: RANDOM_DURATION as u64,
        seed,
        op_latency_ms: 1,
        variables,
        app: random_app(&mut rng),
        storage: StorageSpec {
            server_skew: Seconds::Whole(if rng.chance(20) {
                clock_offset(&mut rng)
            } else {
                0
            }),
            shared_maintenance,
            heartbeat_dir_missing,
            entries: Vec::new(),
        },
        sites: Vec::new(),
        nodes,
        events,
        etcd: None,
        allow_listing_cache: false,
    }
}

/// When the first crash of a crash schedule happens (seconds, drawn to the millisecond):
/// late enough that every node has started and a master runs.
const FIRST_CRASH: (i64, i64) = (60, 100);
/// Seconds from a crash until the crashed node boots again, and from that crash until the
/// next one: both beyond the failover bound, so that each crash stays a clean one.
const REBOOT_AFTER: i64 = 40;
const NEXT_CRASH_AFTER: i64 = 100;

/// The application of a random schedule: one in five ignores SIGTERM, and it takes up to 3 s
/// to exit.
fn random_app(rng: &mut SplitMix64) -> AppSpec {
    AppSpec {
        command_line: None,
        on_sigterm: if rng.chance(20) {
            OnSigterm::Ignore
        } else {
            OnSigterm::Exit
        },
        exit_delay: Seconds::Whole(rng.between(0, 3)),
        lifetime: None,
    }
}

/// A random schedule of clean host crashes, with the script's default variables: two crashes
/// of random nodes (an outage when the node was the active one), each followed by a reboot,
/// with clock offsets of any size. It measures the failover time, which the general
/// schedules rarely do: their faults seldom leave a crash alone.
pub fn crash_scenario(seed: u64) -> Scenario {
    let mut rng = SplitMix64::new(seed);
    let node_count = rng.between(2, 3) as usize;
    let names = ["alpha", "beta", "gamma"];
    let offset = |rng: &mut SplitMix64| {
        if rng.chance(30) { clock_offset(rng) } else { 0 }
    };
    let nodes: Vec<NodeSpec> = names[..node_count]
        .iter()
        .map(|name| NodeSpec {
            name: name.to_string(),
            start: Seconds::Fraction(rng.between(0, 8000) as f64 / 1000.0),
            clock_skew: Seconds::Whole(offset(&mut rng)),
            restart_on_failure: true,
            listing_cache: Seconds::ZERO,
            sites: Vec::new(),
        })
        .collect();
    let mut events = Vec::new();
    let mut at_ms = rng.between(FIRST_CRASH.0 * 1000, FIRST_CRASH.1 * 1000);
    for _ in 0..2 {
        let node = names[rng.below(node_count as u64) as usize];
        let at = |ms: i64| Seconds::Fraction(ms as f64 / 1000.0);
        events.push(EventSpec::new(at(at_ms), Action::Crash, Some(node)));
        events.push(EventSpec::new(
            at(at_ms + REBOOT_AFTER * 1000),
            Action::Reboot,
            Some(node),
        ));
        at_ms += NEXT_CRASH_AFTER * 1000;
    }
    let variables = [("loopTime", "3"), ("faileOverTime", "10")]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    Scenario {
        name: format!("crashes-{seed}"),
        description: format!("Random clean host crashes from seed {seed}."),
        duration: RANDOM_DURATION as u64,
        seed,
        op_latency_ms: 1,
        variables,
        app: random_app(&mut rng),
        storage: StorageSpec {
            server_skew: Seconds::Whole(offset(&mut rng)),
            ..StorageSpec::default()
        },
        sites: Vec::new(),
        etcd: None,
        nodes,
        events,
        allow_listing_cache: false,
    }
}

/// The sites of a multi-site schedule: two data centres and a witness at a third site.
const SITES: [(&str, &str); 3] = [
    ("dc1", "/mnt/dc1/hb"),
    ("dc2", "/mnt/dc2/hb"),
    ("witness", "/mnt/witness/hb"),
];
/// A multi-site schedule's nodes; each lives in a data centre, alternately dc1 and dc2.
const MULTISITE_NODES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

/// The data centre (site index) a node of a multi-site schedule lives in.
fn home(node: usize) -> usize {
    node % 2
}

/// The nodes and sites of a multi-site schedule of `node_count` nodes, with the script's
/// variables but heartBeatDir on dc1 (bash and compat use only it).
fn multisite_cluster(
    rng: &mut SplitMix64,
    node_count: usize,
    skew_percent: u64,
) -> (Vec<NodeSpec>, Vec<SiteSpec>, BTreeMap<String, String>) {
    let nodes = MULTISITE_NODES[..node_count]
        .iter()
        .map(|name| NodeSpec {
            name: name.to_string(),
            start: Seconds::Fraction(rng.between(0, 8000) as f64 / 1000.0),
            clock_skew: Seconds::Whole(if rng.chance(skew_percent) {
                clock_offset(rng)
            } else {
                0
            }),
            restart_on_failure: true,
            listing_cache: Seconds::ZERO,
            sites: Vec::new(),
        })
        .collect();
    let sites = SITES
        .iter()
        .map(|(name, dir)| SiteSpec {
            name: name.to_string(),
            dir: dir.to_string(),
        })
        .collect();
    let variables = [("heartBeatDir", SITES[0].1)]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    (nodes, sites, variables)
}

/// The events that lose data centre `site` whole at `at_ms`: its nodes crash (in a random
/// order) and its storage fails or hangs for every node.
fn site_lost(rng: &mut SplitMix64, site: usize, node_count: usize, at_ms: i64) -> Vec<EventSpec> {
    let at = Seconds::Fraction(at_ms as f64 / 1000.0);
    let mut crashed: Vec<usize> = (0..node_count).filter(|&n| home(n) == site).collect();
    if rng.chance(50) {
        crashed.reverse();
    }
    let mut events: Vec<EventSpec> = crashed
        .into_iter()
        .map(|node| EventSpec::new(at, Action::Crash, Some(MULTISITE_NODES[node])))
        .collect();
    let loss = if rng.chance(50) {
        Action::StorageFail
    } else {
        Action::StorageHang
    };
    events.push(EventSpec {
        site: Some(SITES[site].0.to_string()),
        ..EventSpec::new(at, loss, None)
    });
    events
}

/// `site_lost`, then the data centre's hosts boot and its storage works again `REBOOT_AFTER`
/// later.
fn site_lost_and_back(
    rng: &mut SplitMix64,
    site: usize,
    node_count: usize,
    at_ms: i64,
) -> Vec<EventSpec> {
    let mut events = site_lost(rng, site, node_count, at_ms);
    let back = Seconds::Fraction((at_ms + REBOOT_AFTER * 1000) as f64 / 1000.0);
    let undone: Vec<EventSpec> = events
        .iter()
        .map(|event| EventSpec {
            at: back,
            action: match event.action {
                Action::Crash => Action::Reboot,
                _ => Action::StorageRestore,
            },
            ..event.clone()
        })
        .collect();
    events.extend(undone);
    events
}

/// A random schedule over three sites (dc1, dc2, a witness) and 2 to 4 nodes, half of them in
/// each data centre: up to 8 faults drawn from data centres lost whole, a site's storage
/// failing, hanging, slow or late for every node or for one, partitions (a node reaches only
/// its own data centre's directory, the others every directory but that one), and every
/// fault of a node (crash, reboot, daemon killed or started, pause, freeze, clock jump, app
/// crash), healed at `HEAL_AT`. The same seed always gives the same scenario.
pub fn multisite_scenario(seed: u64) -> Scenario {
    let mut rng = SplitMix64::new(seed);
    let node_count = rng.between(2, 4) as usize;
    let (nodes, sites, mut variables) = multisite_cluster(&mut rng, node_count, 20);
    let (faile_over_time, loop_time) = timing(&mut rng);
    variables.insert("loopTime".to_string(), loop_time.to_string());
    variables.insert("faileOverTime".to_string(), faile_over_time.to_string());
    let names = &MULTISITE_NODES[..node_count];
    let mut events = Vec::new();
    for _ in 0..rng.between(0, RANDOM_MAX_EVENTS) {
        let at_ms = rng.between(100, HEAL_AT * 1000 - 100);
        let at = Seconds::Fraction(at_ms as f64 / 1000.0);
        let node = rng.below(node_count as u64) as usize;
        let site = rng.below(SITES.len() as u64) as usize;
        let on_site = |action, node: Option<usize>| EventSpec {
            site: Some(SITES[site].0.to_string()),
            ..EventSpec::new(at, action, node.map(|n| MULTISITE_NODES[n]))
        };
        match rng.below(4) {
            0 => events.extend(site_lost(&mut rng, home(node), node_count, at_ms)),
            1 => {
                // A partition: the node keeps only its own data centre's directory, and every
                // other node loses that one.
                for (other, name) in names.iter().enumerate() {
                    for (lost, (site, _)) in SITES.iter().enumerate() {
                        if (other == node) != (lost == home(node)) {
                            events.push(EventSpec {
                                site: Some(site.to_string()),
                                ..EventSpec::new(at, Action::StorageFail, Some(name))
                            });
                        }
                    }
                }
            }
            2 => {
                let action = [
                    Action::StorageFail,
                    Action::StorageHang,
                    Action::StorageSlow,
                    Action::StorageLate,
                    Action::StorageRestore,
                ][rng.below(5) as usize];
                let mut event = on_site(action, rng.chance(50).then_some(node));
                event.extra_ms = match action {
                    Action::StorageSlow => Some(rng.between(50, 3000) as u64),
                    Action::StorageLate => Some(rng.between(50, 20_000) as u64),
                    _ => None,
                };
                events.push(event);
            }
            _ => {
                let action = [
                    Action::Crash,
                    Action::Reboot,
                    Action::DaemonKill,
                    Action::DaemonStart,
                    Action::Pause,
                    Action::Resume,
                    Action::Freeze,
                    Action::Thaw,
                    Action::AppCrash,
                    Action::ClockJump,
                ][rng.below(10) as usize];
                let mut event = EventSpec::new(at, action, Some(names[node]));
                event.seconds =
                    (action == Action::ClockJump).then(|| Seconds::Whole(clock_offset(&mut rng)));
                events.push(event);
            }
        }
    }
    events.sort_by_key(|e| e.at.millis());
    let heal = healing(&events, names, false);
    events.extend(heal);
    Scenario {
        name: format!("multisite-random-{seed}"),
        description: format!("A random multi-site fault schedule from seed {seed}."),
        duration: RANDOM_DURATION as u64,
        seed,
        op_latency_ms: 1,
        variables,
        app: random_app(&mut rng),
        storage: StorageSpec::default(),
        etcd: None,
        sites,
        nodes,
        events,
        allow_listing_cache: false,
    }
}

/// A random schedule of data centres lost whole, with the script's default variables: twice,
/// a random data centre's nodes crash and its storage fails or hangs for every node; both come
/// back later. It measures the failover time after a data centre's loss.
pub fn multisite_loss_scenario(seed: u64) -> Scenario {
    let mut rng = SplitMix64::new(seed);
    let node_count = rng.between(2, 4) as usize;
    let (nodes, sites, mut variables) = multisite_cluster(&mut rng, node_count, 30);
    variables.insert("loopTime".to_string(), "3".to_string());
    variables.insert("faileOverTime".to_string(), "10".to_string());
    let mut events = Vec::new();
    let mut at_ms = rng.between(FIRST_CRASH.0 * 1000, FIRST_CRASH.1 * 1000);
    for _ in 0..2 {
        let site = rng.below(2) as usize;
        events.extend(site_lost_and_back(&mut rng, site, node_count, at_ms));
        at_ms += NEXT_CRASH_AFTER * 1000;
    }
    events.sort_by_key(|e| e.at.millis());
    Scenario {
        name: format!("multisite-losses-{seed}"),
        description: format!("Random data centres lost whole from seed {seed}."),
        duration: RANDOM_DURATION as u64,
        seed,
        op_latency_ms: 1,
        variables,
        app: random_app(&mut rng),
        storage: StorageSpec::default(),
        sites,
        nodes,
        events,
        etcd: None,
        allow_listing_cache: false,
    }
}

/// A random schedule of a slow site and a data centre lost whole, over three sites and 2 to 4
/// nodes: from early on, one site's storage answers slowly (or its writes land late) for every
/// node or for one, by one of `slowness_levels` of the storage deadline D of the schedule's
/// variables; then a random data centre is lost whole and comes back `REBOOT_AFTER` later. In
/// half of them the maintenance file lives on dc1's storage, so that losing dc1 loses it too.
pub fn slow_site_loss_scenario(seed: u64) -> Scenario {
    let mut rng = SplitMix64::new(seed);
    let node_count = rng.between(2, 4) as usize;
    let (nodes, sites, mut variables) = multisite_cluster(&mut rng, node_count, 20);
    let (faile_over_time, loop_time) = timing(&mut rng);
    variables.insert("loopTime".to_string(), loop_time.to_string());
    variables.insert("faileOverTime".to_string(), faile_over_time.to_string());
    let deadline = Timing::new(faile_over_time as u64, loop_time as u64)
        .expect("timing draws values every profile accepts")
        .io_limit;
    let deadline_ms = deadline.as_millis() as u64;
    let levels = slowness_levels(deadline_ms, rng.between(1, deadline_ms as i64 / 20) as u64);
    let extra_ms = levels[rng.below(levels.len() as u64) as usize];
    let action = if rng.chance(25) {
        Action::StorageLate
    } else {
        Action::StorageSlow
    };
    let site = SITES[rng.below(SITES.len() as u64) as usize].0;
    let node = rng
        .chance(50)
        .then(|| MULTISITE_NODES[rng.below(node_count as u64) as usize]);
    // Before the quiet period that precedes the loss, so that a loss of the master's data
    // centre with every other node healthy still counts as a clean crash for the bound.
    let slow_at = Seconds::Fraction(rng.between(1000, 20_000) as f64 / 1000.0);
    let mut events = vec![EventSpec {
        site: Some(site.to_string()),
        extra_ms: Some(extra_ms),
        ..EventSpec::new(slow_at, action, node)
    }];
    let lost_at_ms = rng.between(FIRST_CRASH.0 * 1000, FIRST_CRASH.1 * 1000);
    let lost = rng.below(2) as usize;
    events.extend(site_lost_and_back(&mut rng, lost, node_count, lost_at_ms));
    events.sort_by_key(|e| e.at.millis());
    let shared_maintenance = rng.chance(50);
    let heal = healing(&events, &MULTISITE_NODES[..node_count], shared_maintenance);
    events.extend(heal);
    Scenario {
        name: format!("multisite-slow-{seed}"),
        description: format!("A slow site and a data centre lost whole from seed {seed}."),
        duration: RANDOM_DURATION as u64,
        seed,
        op_latency_ms: 1,
        variables,
        app: random_app(&mut rng),
        storage: StorageSpec {
            shared_maintenance,
            ..StorageSpec::default()
        },
        sites,
        nodes,
        events,
        etcd: None,
        allow_listing_cache: false,
    }
}

/// The slowness of `slow_site_loss_scenario`, in milliseconds, for a storage deadline of
/// `deadline_ms`: just over a third of it (a claim's three steps then outlast one deadline),
/// half, just under it (every step waits for the site, yet it counts) and just over it (the
/// site is as good as lost), `just_ms` (at most a twentieth of it) away from the mark.
fn slowness_levels(deadline_ms: u64, just_ms: u64) -> [u64; 4] {
    [
        deadline_ms / 3 + just_ms,
        deadline_ms / 2,
        deadline_ms - just_ms,
        deadline_ms + just_ms,
    ]
}

/// The events at `HEAL_AT` that undo every fault of `faults` (sorted by time): nodes left down
/// boot, frozen hosts thaw, paused daemons resume, storage works, killed daemons start,
/// maintenance ends, the heartbeat directory exists. Clock offsets and attribute caches stay:
/// they are conditions a cluster must live with, not faults that end.
fn healing(faults: &[EventSpec], names: &[&str], shared_maintenance: bool) -> Vec<EventSpec> {
    let at = Seconds::Whole(HEAL_AT);
    let mut heal = Vec::new();
    for name in names {
        let mut down = false;
        for fault in faults.iter().filter(|e| e.node.as_deref() == Some(*name)) {
            match fault.action {
                Action::Crash => down = true,
                Action::Reboot => down = false,
                _ => {}
            }
        }
        if down {
            heal.push(EventSpec::new(at, Action::Reboot, Some(name)));
        }
        for action in [
            Action::Thaw,
            Action::Resume,
            Action::StorageRestore,
            Action::DaemonStart,
        ] {
            heal.push(EventSpec::new(at, action, Some(name)));
        }
        if !shared_maintenance {
            heal.push(EventSpec::new(at, Action::MaintenanceOff, Some(name)));
        }
    }
    if shared_maintenance {
        heal.push(EventSpec::new(at, Action::MaintenanceOff, None));
    }
    heal.push(EventSpec::new(at, Action::CreateDir, None));
    heal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_its_reference_values() {
        // The first outputs for seed 0 of the published SplitMix64 algorithm.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn random_scenarios_are_valid_and_replayable() {
        for seed in 0..200 {
            for scenario in [
                scenario(seed),
                crash_scenario(seed),
                multisite_scenario(seed),
                multisite_loss_scenario(seed),
                slow_site_loss_scenario(seed),
            ] {
                check_valid_and_replayable(&scenario);
            }
        }
    }

    #[test]
    fn slow_site_schedules_draw_every_level_of_the_deadline() {
        let mut seen = BTreeMap::new();
        for seed in 0..200 {
            let scenario = slow_site_loss_scenario(seed);
            let [faile_over, loop_time] =
                ["faileOverTime", "loopTime"].map(|name| scenario.variables[name].parse().unwrap());
            let deadline_ms = Timing::new(faile_over, loop_time)
                .unwrap()
                .io_limit
                .as_millis();
            let slow = scenario
                .events
                .iter()
                .find(|e| matches!(e.action, Action::StorageSlow | Action::StorageLate))
                .expect("every schedule has a slow site");
            let extra_ms = u128::from(slow.extra_ms.unwrap());
            let level = if extra_ms > deadline_ms {
                "just over D"
            } else if extra_ms * 2 == deadline_ms {
                "D/2"
            } else if extra_ms * 2 > deadline_ms {
                "just under D"
            } else {
                assert!(extra_ms * 3 > deadline_ms, "{}", scenario.name);
                "just over D/3"
            };
            let mark = match level {
                "just over D/3" => deadline_ms / 3,
                "D/2" => deadline_ms / 2,
                _ => deadline_ms,
            };
            assert!(
                extra_ms.abs_diff(mark) <= deadline_ms / 20,
                "{}",
                scenario.name
            );
            *seen.entry(level).or_insert(0) += 1;
            // The data centre is lost whole, after the slowness began.
            let crash = scenario.events.iter().find(|e| e.action == Action::Crash);
            assert!(crash.is_some_and(|c| c.at.millis() > slow.at.millis()));
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
    }

    pub(super) fn check_valid_and_replayable(scenario: &Scenario) {
        scenario.check().unwrap();
        let text = scenario.to_toml();
        let again: Scenario = toml::from_str(&text).unwrap();
        assert_eq!(again.to_toml(), text);
    }
}
