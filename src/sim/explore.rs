//! Faults at every step: instead of faults at random times, each fault kind is injected at
//! each instant where a node's protocol does something, and every such run is checked.
//!
//! For a base scenario (cold starts and a master crash in several phases of the loops, a
//! master's storage failure; over three sites a cold start and a data centre lost whole, also
//! with a third node, with the shared maintenance file on the lost storage, or after a slow
//! witness; over five sites two data centres lost at once) the all-safe cluster runs once; its
//! protocol steps (`ProtocolStep`: every storage operation and guard call, from when the node
//! asked until it had the answer) give the instants that matter: the millisecond before, at
//! and after each start and end. At each such instant, on each node, each fault kind starts: a
//! pause, a host freeze or a storage hang lasting just under or over the lease, just over
//! faileOverTime or 25 s; slow storage at four levels between a third of the storage limit and
//! just over it, late writes just under or over it; the node's record deleted, or replaced by
//! a directory; a reboot; the guard killed; a clock jump; and once per instant a stray file or
//! directory. Over several sites each storage operation of a batch is a step of its own, and
//! the storage faults and entry changes at its instants hit the site it went to (at the
//! instants of other steps, every site), which may also be lost for every node. A variant that
//! repeats another one runs once; bases that change one thing of another are sampled.
//!
//! The same steps make random schedules protocol-aware (`biased`): their faults move to the
//! instants just before and after deadlines, settles, lease ends and claims.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use super::progress::Progress;
use super::random::{self, SplitMix64};
use super::safety::{self, SafetyVerdict, Ways};
use super::scenario::{
    Action, EntryKind, EtcdSpec, EventSpec, NodeSpec, Scenario, Seconds, SiteSpec, StorageSpec,
};
use super::scheduler::{Driver, ProtocolStep, StepKind, node_variables};
use crate::config::{Profile, Settings};
use crate::timing::Timing;

/// The longest fault of the exploration: long enough for a peer to take over meanwhile.
const LONG_FAULT_MS: u64 = 25_000;
/// After the last base event, how long the protocol steps still matter: two rounds past the
/// new master's start.
const WINDOW_ROUNDS_AFTER_START: u64 = 2;
/// How far a clock jumps: an hour, far beyond faileOverTime. Only bash compares clocks, so
/// the safe profile must not notice it.
const CLOCK_JUMP_SECONDS: i64 = 3600;
/// Base scenarios' nodes.
const NAMES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
/// Milliseconds after its predecessor that each node of a cold start starts: 2 ms, so that
/// they claim together (each scans before the other's claim lands), or 700 ms, so that the
/// first claims alone while the others watch.
const TOGETHER_MS: i64 = 2;
const APART_MS: i64 = 700;
/// When the base fault of the crash and storage-failure bases happens, and when it heals.
const BASE_FAULT_AT_S: i64 = 40;
const BASE_HEAL_AT_S: i64 = 70;
/// When the slow witness of the two-fault base starts: long enough before its site loss that
/// the window, which opens a round before the first fault, holds slow rounds before the loss.
const SLOW_WITNESS_AT_S: i64 = 30;

/// The members of the etcd bases' cluster.
const ETCD_MEMBERS: usize = 3;

/// The sites of the multi-site bases: two data centres and a witness, and for five sites two
/// more data centres. The first holds heartBeatDir and a shared maintenance file.
const SITES: [(&str, &str); 5] = [
    ("dc1", "/mnt/dc1/hb"),
    ("dc2", "/mnt/dc2/hb"),
    ("witness", "/mnt/witness/hb"),
    ("dc3", "/mnt/dc3/hb"),
    ("dc4", "/mnt/dc4/hb"),
];

/// Phases within the default loopTime (3 s): the crash of a crash base this much after the
/// others' instant, and the second node of a cold start this much after the first (with 2 and
/// 700 ms, four phases of the loop). Each shifts every step of one loop against the other's.
const PHASES_MS: [i64; 3] = [750, 1500, 2250];

/// Of the bases that change one thing of another base (a phase, the nodes, the sites, a
/// maintenance file, a second fault), the full exploration runs one variant in `SAMPLE`: the
/// steps and faults are those of the base they change, and their 119,590 variants would more
/// than double `make safety-report`'s 73,489; one in 5 keeps the whole at 106,637.
const SAMPLE: usize = 5;

/// Names of the entries that are no node's record: a file an operator or a tool left, and
/// the directory a filesystem's root holds.
const STRAY_FILE: &str = "notes.txt";
const STRAY_DIR: &str = "lost+found";
/// Draws the position of each sampled variant in its block.
const SAMPLE_SEED: u64 = 0x5A3B_1E20;

/// A base scenario and how much of its exploration runs.
pub struct Base {
    pub scenario: Scenario,
    /// One variant in every `sample` runs (1: every one).
    pub sample: usize,
}

/// The base scenarios: cold starts of 2 nodes (apart and together), 3 and 4 nodes (together),
/// a master crash, a master's storage failure; over three sites, a cold start of 2 nodes
/// (together) and the master's data centre lost whole (alpha and dc1's storage); and over
/// etcd, cold starts of 2 and 3 nodes (together), a master crash, and a master cut off from
/// etcd. In the crashes and the failures, alpha starts first and becomes master. Sampled
/// (`SAMPLE`): the cold start of 2 and the master crash in other phases, the data centre lost
/// in another phase, with a third node, with the maintenance file on its storage, with a slow
/// witness, and over five sites with a second site lost at once.
pub fn bases() -> Vec<Base> {
    let mut bases = vec![base("cold-start-2-apart", 2, APART_MS, Vec::new())];
    for nodes in 2..=4 {
        let name = format!("cold-start-{nodes}-together");
        bases.push(base(&name, nodes, TOGETHER_MS, Vec::new()));
    }
    let fault = |action| spec(BASE_FAULT_AT_S * 1000, action, Some("alpha"));
    let heal = |action| spec(BASE_HEAL_AT_S * 1000, action, Some("alpha"));
    let crash = vec![fault(Action::Crash), heal(Action::Reboot)];
    bases.push(base("master-crash", 2, APART_MS, crash.clone()));
    bases.push(base(
        "master-storage-failure",
        2,
        APART_MS,
        vec![fault(Action::StorageFail), heal(Action::StorageRestore)],
    ));
    let over_etcd = |mut scenario: Scenario| {
        scenario.name = format!("etcd-{}", scenario.name);
        scenario.description = format!("Base of the step exploration: {}.", scenario.name);
        scenario.etcd = Some(EtcdSpec {
            members: ETCD_MEMBERS,
        });
        scenario
    };
    for nodes in 2..=3 {
        let name = format!("cold-start-{nodes}-together");
        bases.push(over_etcd(base(&name, nodes, TOGETHER_MS, Vec::new())));
    }
    bases.push(over_etcd(base("master-crash", 2, APART_MS, crash.clone())));
    bases.push(over_etcd(base(
        "master-cut-off",
        2,
        APART_MS,
        vec![fault(Action::EtcdPartition), heal(Action::EtcdHeal)],
    )));
    bases.push(over_sites(
        base(
            "multisite-cold-start-2-together",
            2,
            TOGETHER_MS,
            Vec::new(),
        ),
        3,
    ));
    let dc1_lost = site_lost(0, Action::StorageFail);
    bases.push(over_sites(
        base("multisite-master-site-lost", 2, APART_MS, dc1_lost.clone()),
        3,
    ));
    let mut bases: Vec<Base> = bases
        .into_iter()
        .map(|scenario| Base {
            scenario,
            sample: 1,
        })
        .collect();
    let mut sampled = Vec::new();
    for phase in &PHASES_MS[1..] {
        let name = format!("cold-start-2-{phase}ms-apart");
        sampled.push(base(&name, 2, *phase, Vec::new()));
    }
    for phase in PHASES_MS {
        let name = format!("master-crash-{phase}ms-later");
        sampled.push(base(&name, 2, APART_MS, delayed(&crash, phase)));
    }
    let phase = PHASES_MS[1];
    let name = format!("multisite-master-site-lost-{phase}ms-later");
    sampled.push(over_sites(
        base(&name, 2, APART_MS, delayed(&dc1_lost, phase)),
        3,
    ));
    let name = "multisite-3-nodes-master-site-lost";
    sampled.push(over_sites(base(name, 3, APART_MS, dc1_lost.clone()), 3));
    // The maintenance file on the storage of the master's site, whose export hangs.
    let name = "multisite-maintenance-file-master-site-lost";
    let hung = site_lost(0, Action::StorageHang);
    let mut maintenance = over_sites(base(name, 2, APART_MS, hung), 3);
    maintenance.storage.shared_maintenance = true;
    sampled.push(maintenance);
    // Two faults: the witness slow for every node (just under the storage deadline), then the
    // master's data centre lost.
    let name = "multisite-slow-witness-master-site-lost";
    let mut slow_witness = over_sites(base(name, 2, APART_MS, dc1_lost.clone()), 3);
    let mut slow = on_site(2, spec(SLOW_WITNESS_AT_S * 1000, Action::StorageSlow, None));
    slow.extra_ms = Some(safety::default_timing().io_limit.as_millis() as u64 - 1);
    slow_witness.events.insert(0, slow);
    slow_witness
        .events
        .push(on_site(2, heal(Action::StorageRestore)));
    sampled.push(slow_witness);
    // Five sites survive two losses: the master's data centre and dc3 lost at once.
    let name = "multisite-5-sites-2-sites-lost";
    let mut events = dc1_lost;
    events.push(on_site(3, fault(Action::StorageFail)));
    events.push(on_site(3, heal(Action::StorageRestore)));
    events.sort_by_key(|event| event.at.millis());
    sampled.push(over_sites(base(name, 2, APART_MS, events), 5));
    bases.extend(sampled.into_iter().map(|scenario| Base {
        scenario,
        sample: SAMPLE,
    }));
    bases
}

/// The master's host crashes and the storage of `SITES[site]` gets `health` for every node at
/// the base fault's instant (a data centre lost whole); both heal at the base's healing.
fn site_lost(site: usize, health: Action) -> Vec<EventSpec> {
    let at = |at_s: i64, action, node| spec(at_s * 1000, action, node);
    vec![
        at(BASE_FAULT_AT_S, Action::Crash, Some("alpha")),
        on_site(site, at(BASE_FAULT_AT_S, health, None)),
        at(BASE_HEAL_AT_S, Action::Reboot, Some("alpha")),
        on_site(site, at(BASE_HEAL_AT_S, Action::StorageRestore, None)),
    ]
}

/// The event for every node on the storage of `SITES[site]` only.
fn on_site(site: usize, event: EventSpec) -> EventSpec {
    EventSpec {
        site: Some(SITES[site].0.to_string()),
        node: None,
        ..event
    }
}

/// The events, each `by_ms` later.
fn delayed(events: &[EventSpec], by_ms: i64) -> Vec<EventSpec> {
    events
        .iter()
        .map(|event| EventSpec {
            at: millis(event.at.millis() + by_ms),
            ..event.clone()
        })
        .collect()
}

/// A base over the first `sites` of `SITES`, bash and compat (which the exploration does not
/// run) on dc1.
fn over_sites(base: Scenario, sites: usize) -> Scenario {
    let mut variables = base.variables.clone();
    variables.insert("heartBeatDir".to_string(), SITES[0].1.to_string());
    Scenario {
        variables,
        sites: SITES[..sites]
            .iter()
            .map(|(name, dir)| SiteSpec {
                name: name.to_string(),
                dir: dir.to_string(),
            })
            .collect(),
        ..base
    }
}

fn base(name: &str, nodes: usize, stagger_ms: i64, events: Vec<EventSpec>) -> Scenario {
    Scenario {
        name: name.to_string(),
        description: format!("Base of the step exploration: {name}."),
        duration: 120,
        seed: 0,
        op_latency_ms: 1,
        variables: Default::default(),
        app: Default::default(),
        storage: StorageSpec::default(),
        etcd: None,
        sites: Vec::new(),
        nodes: NAMES[..nodes]
            .iter()
            .enumerate()
            .map(|(index, name)| NodeSpec {
                name: name.to_string(),
                start: millis(index as i64 * stagger_ms),
                clock_skew: Seconds::ZERO,
                restart_on_failure: true,
                listing_cache: Seconds::ZERO,
                sites: Vec::new(),
            })
            .collect(),
        events,
        allow_listing_cache: false,
    }
}

fn millis(ms: i64) -> Seconds {
    if ms % 1000 == 0 {
        Seconds::Whole(ms / 1000)
    } else {
        Seconds::Fraction(ms as f64 / 1000.0)
    }
}

fn spec(at_ms: i64, action: Action, node: Option<&str>) -> EventSpec {
    EventSpec::new(millis(at_ms), action, node)
}

/// The safe profile's durations for a scenario's variables.
pub fn timing(scenario: &Scenario, settings: &Settings) -> Result<Timing, String> {
    let first = &scenario.nodes[0].name;
    match node_variables(settings, scenario, first, Driver::Safe)?.profile {
        Profile::Safe(timing) => Ok(timing),
        Profile::Compat => unreachable!("the safe driver runs the safe profile"),
    }
}

/// The bases, as the report lists them.
pub const BASES: &str = "cold starts of 2 nodes (the second 2 ms, 700 ms, 1.5 s or 2.25 s after \
the first: four phases of the 3 s loop against each other), of 3 and 4 nodes (2 ms apart); a \
master crash (at 40 s, and 0.75, 1.5 or 2.25 s later: four phases of the crash against the \
rounds); a master's storage failure; over etcd, cold starts of 2 and 3 nodes, a master crash \
and a master cut off from etcd; over three sites (dc1, dc2 and a witness), a cold start of 2 \
nodes and the master's data centre lost whole (its host and dc1's storage), and the same loss \
1.5 s later, with a third node, with the shared maintenance file on dc1's storage (which \
hangs), and after the witness turned slow (just under the storage limit) for every node: two \
faults; over five sites, the master's data centre and a second one lost at once. A base that \
changes one thing of another runs one variant in 5 (the stride's N times 5)";

/// The fault kinds, as the report lists them.
pub const FAULT_KINDS: &str = "a pause (SIGSTOP) and a host freeze, each lasting just under or \
over the lease, just over faileOverTime or 25 s; a storage hang of the same durations; the \
daemon alone killed and started again after the same durations (a master's daemon then \
reattaches if its lease still holds); slow storage (answering later by just over a third of the \
storage limit, half of it, just under or just over it) and late writes (landing just under or \
over the storage limit), each for 25 s; the node's record deleted; its record replaced by a \
directory for 25 s; a reboot; the guard killed (its application's tree left to the daemon); a \
wall-clock jump of an hour; and, of no node, a file and a directory that are no node's record \
appearing in the heartbeat directory for good. Over several sites, each storage operation of a \
batch is a step of its own, and the storage faults, record changes and stray entries at its \
instants hit the site it went to; there the site may also be lost for every node (its storage \
hung) for 25 s, a second loss beside a base's own. Over etcd, the storage faults and stray \
entries give way to the etcd cluster's: the node cut off from etcd for the durations of a \
pause, its answers late by just under or over the storage limit for 25 s, a leader change, the \
leader member down for 25 s, and two of the three members down (no quorum) for 25 s";

/// One fault, as the events that make it (its start, and its end where it has one).
struct Fault {
    label: String,
    events: Vec<EventSpec>,
}

/// Every fault kind, started at `at_ms` on `node`; storage faults and record changes hit `site`
/// (without one, every site); `etcd` when the lease lives in etcd, whose faults then replace
/// the heartbeat directories'.
fn faults(node: &str, site: Option<&str>, at_ms: u64, timing: &Timing, etcd: bool) -> Vec<Fault> {
    let ms = |d: Duration| d.as_millis() as u64;
    let io_limit = ms(timing.io_limit);
    let lease = ms(timing.lease);
    let durations = [
        lease - 1,
        lease + 1,
        ms(timing.takeover_after) + 1,
        LONG_FAULT_MS,
    ];
    let at = at_ms as i64;
    let on = |action| spec(at, action, Some(node));
    let after = |delay: u64, action| spec(at + delay as i64, action, Some(node));
    let mut faults = Vec::new();
    let mut lasting = vec![
        ("pause", Action::Pause, Action::Resume),
        ("freeze", Action::Freeze, Action::Thaw),
        ("restart", Action::DaemonKill, Action::DaemonStart),
    ];
    if etcd {
        lasting.push(("cut-off", Action::EtcdPartition, Action::EtcdHeal));
    }
    for (label, start, end) in lasting {
        for duration in durations {
            faults.push(Fault {
                label: format!("{label}-{duration}ms"),
                events: vec![on(start), after(duration, end)],
            });
        }
    }
    if etcd {
        faults.extend(etcd_faults(node, at, io_limit));
    } else {
        faults.extend(storage_faults(node, site, at, &durations, io_limit));
    }
    faults.push(Fault {
        label: "reboot".to_string(),
        events: vec![on(Action::Reboot)],
    });
    faults.push(Fault {
        label: "guard-kill".to_string(),
        events: vec![on(Action::GuardKill)],
    });
    let mut jump = on(Action::ClockJump);
    jump.seconds = Some(Seconds::Whole(CLOCK_JUMP_SECONDS));
    faults.push(Fault {
        label: "clock-jump".to_string(),
        events: vec![jump],
    });
    faults
}

/// The heartbeat directories' faults of `faults`, on `site` (without one, every site): a hang
/// for each of `durations`, slow storage and late writes, and the node's record deleted or
/// replaced by a directory.
fn storage_faults(
    node: &str,
    site: Option<&str>,
    at: i64,
    durations: &[u64],
    io_limit: u64,
) -> Vec<Fault> {
    let on_site = |at_ms: i64, action| EventSpec {
        site: site.map(str::to_string),
        ..spec(at_ms, action, Some(node))
    };
    let named = |at_ms: i64, action| EventSpec {
        name: Some(node.to_string()),
        site: site.map(str::to_string),
        ..spec(at_ms, action, None)
    };
    let site_label = site.map_or(String::new(), |site| format!("-{site}"));
    let mut faults = Vec::new();
    for &duration in durations {
        faults.push(Fault {
            label: format!("hang{site_label}-{duration}ms"),
            events: vec![
                on_site(at, Action::StorageHang),
                on_site(at + duration as i64, Action::StorageRestore),
            ],
        });
    }
    for (label, action, extra) in [
        ("slow", Action::StorageSlow, io_limit / 3 + 1),
        ("slow", Action::StorageSlow, io_limit / 2),
        ("slow", Action::StorageSlow, io_limit - 1),
        ("slow", Action::StorageSlow, io_limit + 1),
        ("late", Action::StorageLate, io_limit - 1),
        ("late", Action::StorageLate, io_limit + 1),
    ] {
        let mut start = on_site(at, action);
        start.extra_ms = Some(extra);
        faults.push(Fault {
            label: format!("{label}{site_label}-{extra}ms"),
            events: vec![
                start,
                on_site(at + LONG_FAULT_MS as i64, Action::StorageRestore),
            ],
        });
    }
    faults.push(Fault {
        label: format!("record-deleted{site_label}"),
        events: vec![named(at, Action::DeleteEntry)],
    });
    faults.push(Fault {
        label: format!("record-replaced-by-dir{site_label}"),
        events: vec![
            named(at, Action::ReplaceByDir),
            named(at + LONG_FAULT_MS as i64, Action::DeleteEntry),
        ],
    });
    faults
}

/// The faults of no node, at `at` on `site` (without one, every site): a file and a directory
/// that are no node's record appear in the heartbeat directory and stay; and with a site, that
/// site lost for every node (its storage hung) for 25 s, a second loss in a base that has one.
fn directory_faults(site: Option<&str>, at: u64) -> Vec<Fault> {
    let at = at as i64;
    let on = |at_ms: i64, action| EventSpec {
        site: site.map(str::to_string),
        ..spec(at_ms, action, None)
    };
    let site_label = site.map_or(String::new(), |site| format!("-{site}"));
    let mut faults = Vec::new();
    for (label, name, kind) in [
        ("stray-file", STRAY_FILE, EntryKind::File),
        ("stray-dir", STRAY_DIR, EntryKind::Dir),
    ] {
        let mut stray = on(at, Action::StrayEntry);
        stray.name = Some(name.to_string());
        stray.kind = Some(kind);
        faults.push(Fault {
            label: format!("{label}{site_label}"),
            events: vec![stray],
        });
    }
    if site.is_some() {
        faults.push(Fault {
            label: format!("site-lost{site_label}-{LONG_FAULT_MS}ms"),
            events: vec![
                on(at, Action::StorageHang),
                on(at + LONG_FAULT_MS as i64, Action::StorageRestore),
            ],
        });
    }
    faults
}

/// The etcd cluster's faults of `faults` that do not last a duration of a pause: answers late
/// by just under or over the storage limit, a leader change, the leader lost, the quorum lost.
fn etcd_faults(node: &str, at: i64, io_limit: u64) -> Vec<Fault> {
    let end = at + LONG_FAULT_MS as i64;
    let member = |at_ms: i64, action, member: usize| EventSpec {
        member: Some(member),
        ..spec(at_ms, action, None)
    };
    let mut faults = Vec::new();
    for extra in [io_limit - 1, io_limit + 1] {
        let mut start = spec(at, Action::EtcdSlow, Some(node));
        start.extra_ms = Some(extra);
        faults.push(Fault {
            label: format!("etcd-slow-{extra}ms"),
            events: vec![start, spec(end, Action::EtcdHeal, Some(node))],
        });
    }
    faults.push(Fault {
        label: "etcd-leader-change".to_string(),
        events: vec![spec(at, Action::EtcdLeaderChange, None)],
    });
    // Member 0 leads until the first election.
    faults.push(Fault {
        label: "etcd-leader-down".to_string(),
        events: vec![
            member(at, Action::EtcdMemberDown, 0),
            member(end, Action::EtcdMemberUp, 0),
        ],
    });
    faults.push(Fault {
        label: "etcd-quorum-lost".to_string(),
        events: vec![
            member(at, Action::EtcdMemberDown, 1),
            member(at, Action::EtcdMemberDown, 2),
            member(end, Action::EtcdMemberUp, 1),
            member(end, Action::EtcdMemberUp, 2),
        ],
    });
    faults
}

/// The instants at which faults start: a millisecond before, at and after every start and end
/// of a step within `window` (virtual ms), each with the site of the step's storage when
/// `by_site` (over several sites), else `None`.
fn instants(
    steps: &[ProtocolStep],
    window: (u64, u64),
    by_site: bool,
) -> BTreeSet<(u64, Option<usize>)> {
    steps
        .iter()
        .flat_map(|step| {
            let site = step.storage.filter(|_| by_site);
            [(step.start_ms, site), (step.end_ms, site)]
        })
        .filter(|&(at, _)| at >= window.0 && at <= window.1)
        .flat_map(|(at, site)| [(at.saturating_sub(1), site), (at, site), (at + 1, site)])
        .collect()
}

/// Where a base's steps matter: from a round before its fault (or the start) until
/// `WINDOW_ROUNDS_AFTER_START` rounds after the first application start that follows.
fn window(base: &Scenario, steps: &[ProtocolStep], timing: &Timing) -> (u64, u64) {
    let round = timing.loop_pause.as_millis() as u64;
    let from = base
        .events
        .first()
        .map_or(0, |event| (event.at.millis() as u64).saturating_sub(round));
    let started = steps
        .iter()
        .find(|step| step.kind == StepKind::GuardStart && step.start_ms >= from)
        .map_or(base.duration * 1000, |step| step.end_ms);
    (from, started + WINDOW_ROUNDS_AFTER_START * round)
}

/// The variants of a base: each fault at each instant on each node, each once; the base's
/// own events stay. Their duration leaves the quiet period the convergence rule needs after
/// the last event.
pub fn variants(base: &Scenario, steps: &[ProtocolStep], timing: &Timing) -> Vec<Scenario> {
    let quiet_ms =
        2 * (timing.takeover_after + timing.loop_pause + timing.settle).as_millis() as u64;
    let mut seen = BTreeSet::new();
    let mut variants = Vec::new();
    let by_site = !base.sites.is_empty();
    let etcd = base.etcd.is_some();
    for (at, site) in instants(steps, window(base, steps, timing), by_site) {
        let site = site.map(|index| base.sites[index].name.as_str());
        let of_nodes = base.nodes.iter().flat_map(|node| {
            faults(&node.name, site, at, timing, etcd)
                .into_iter()
                .map(|fault| (Some(node.name.as_str()), fault))
        });
        let of_none = match etcd {
            true => Vec::new(),
            false => directory_faults(site, at),
        };
        for (node, fault) in of_nodes.chain(of_none.into_iter().map(|fault| (None, fault))) {
            let mut events = base.events.clone();
            events.extend(fault.events);
            events.sort_by_key(|event| event.at.millis());
            let last_ms = events.last().map_or(0, |e| e.at.millis() as u64);
            let duration = base.duration.max((last_ms + quiet_ms).div_ceil(1000) + 1);
            let (node_label, of_node) = match node {
                Some(node) => (format!("-{node}"), format!(" of {node}")),
                None => Default::default(),
            };
            let variant = Scenario {
                name: format!(
                    "explore-{}-{}{node_label}-at-{at}ms",
                    base.name, fault.label
                ),
                description: format!(
                    "{}: {}{of_node} at {at} ms, a protocol step of the base run.",
                    base.description, fault.label
                ),
                duration,
                events,
                ..base.clone()
            };
            if seen.insert(format!("{:?}", variant.events)) {
                variants.push(variant);
            }
        }
    }
    variants
}

/// One variant of each block of `every`, at a position drawn for each block: a fixed step
/// would keep meeting the same fault kinds, which repeat at a period of their own.
fn sample(variants: Vec<Scenario>, every: usize) -> Vec<Scenario> {
    let mut rng = SplitMix64::new(SAMPLE_SEED);
    variants
        .chunks(every)
        .map(|block| block[rng.below(block.len() as u64) as usize].clone())
        .collect()
}

/// What the exploration found over every base.
pub struct Exploration {
    /// What ran of each base.
    pub bases: Vec<Explored>,
    /// Verdicts of the variants that broke a rule, with the variants themselves.
    pub violations: Vec<(Scenario, SafetyVerdict)>,
    /// Runs that could not complete, with why.
    pub failures: Vec<String>,
    /// Failover times (ms) after clean crashes, over every base and variant (a variant's own
    /// fault rarely leaves a crash alone).
    pub clean_failovers_ms: Vec<u64>,
    /// The longest overlap of any run.
    pub max_overlap_ms: u64,
}

impl Exploration {
    pub fn runs(&self) -> usize {
        self.bases.iter().map(|base| base.runs).sum()
    }
}

/// What ran of one base.
pub struct Explored {
    pub name: String,
    /// One variant in every `one_in` ran.
    pub one_in: usize,
    /// How many distinct variants ran.
    pub runs: usize,
}

/// The variants to run: each base, the verdict of its own run, one variant in how many, and
/// the variants chosen.
pub struct Plan {
    bases: Vec<(Scenario, SafetyVerdict, usize, Vec<Scenario>)>,
}

impl Plan {
    /// How many variants the plan runs.
    pub fn runs(&self) -> u64 {
        self.bases
            .iter()
            .map(|(_, _, _, chosen)| chosen.len() as u64)
            .sum()
    }
}

/// Runs every base once and chooses one in every `stride` × `Base::sample` of its variants (at
/// most `limit` per base).
pub fn plan(
    original: &Path,
    settings: &Settings,
    stride: usize,
    limit: usize,
) -> Result<Plan, String> {
    plan_of(bases(), original, settings, stride, limit)
}

/// `plan` over the given bases only.
pub fn plan_of(
    bases: Vec<Base>,
    original: &Path,
    settings: &Settings,
    stride: usize,
    limit: usize,
) -> Result<Plan, String> {
    assert!(stride > 0, "a stride of 0 visits nothing");
    let mut plan = Plan { bases: Vec::new() };
    for Base { scenario, sample } in bases {
        let timing = timing(&scenario, settings)?;
        let (verdict, steps) =
            safety::check_with_steps(&scenario, original, settings, Ways::SafeOnly)?;
        let one_in = stride * sample;
        let mut chosen = self::sample(variants(&scenario, &steps, &timing), one_in);
        chosen.truncate(limit);
        plan.bases.push((scenario, verdict, one_in, chosen));
    }
    Ok(plan)
}

/// Runs the plan's variants on `workers` threads and checks every run.
pub fn explore(
    plan: Plan,
    original: &Path,
    settings: &Settings,
    workers: usize,
    progress: &Progress,
) -> Exploration {
    let mut exploration = Exploration {
        bases: Vec::new(),
        violations: Vec::new(),
        failures: Vec::new(),
        clean_failovers_ms: Vec::new(),
        max_overlap_ms: 0,
    };
    for (base, verdict, one_in, chosen) in plan.bases {
        exploration
            .clean_failovers_ms
            .extend(&verdict.clean_failovers_ms);
        if !verdict.violations.is_empty() {
            exploration.violations.push((base.clone(), verdict));
        }
        let results = safety::check_many(
            &chosen,
            original,
            settings,
            Ways::SafeOnly,
            workers,
            progress,
        );
        exploration.bases.push(Explored {
            name: base.name.clone(),
            one_in,
            runs: chosen.len(),
        });
        for (variant, result) in chosen.into_iter().zip(results) {
            match result {
                Ok(verdict) => {
                    exploration
                        .clean_failovers_ms
                        .extend(&verdict.clean_failovers_ms);
                    let overlap = verdict.run("safe").map_or(0, |run| run.audit.overlap_ms);
                    exploration.max_overlap_ms = exploration.max_overlap_ms.max(overlap);
                    if !verdict.violations.is_empty() {
                        exploration.violations.push((variant, verdict));
                    }
                }
                Err(error) => exploration.failures.push(error),
            }
        }
    }
    exploration
}

/// The instants a protocol-aware schedule aims at, in kinds that are drawn with equal chance:
/// storage deadlines, the ends of settles, the ends of leases, claims (over etcd: campaigns),
/// and every step's start and end.
fn marks(steps: &[ProtocolStep], timing: &Timing) -> [Vec<u64>; 5] {
    let mut deadlines = Vec::new();
    let mut settles = Vec::new();
    let mut lease_ends = Vec::new();
    let mut claims = Vec::new();
    let mut edges = Vec::new();
    let settle_ms = timing.settle.as_millis() as u64;
    for step in steps {
        edges.extend([step.start_ms, step.end_ms]);
        match (step.kind, step.deadline_ms) {
            (StepKind::GuardStart | StepKind::GuardExtend, Some(end)) => lease_ends.push(end),
            (StepKind::Write { claim: true }, deadline) => {
                claims.extend([step.start_ms, step.end_ms]);
                settles.push(step.start_ms + settle_ms);
                deadlines.extend(deadline);
            }
            // The etcd backend's claim is its campaign, which has no settle.
            (StepKind::Etcd { campaign: true }, deadline) => {
                claims.extend([step.start_ms, step.end_ms]);
                deadlines.extend(deadline);
            }
            (_, deadline) => deadlines.extend(deadline),
        }
    }
    [deadlines, settles, lease_ends, claims, edges]
}

/// The chance (percent) that a fault of a uniform schedule moves to a protocol instant.
const BIAS_PERCENT: u64 = 60;

/// A protocol-aware schedule from a uniform one and the steps of its run: each fault before
/// the healing moves, with `BIAS_PERCENT` chance, to a millisecond just before, at or after an
/// instant of `marks`; a pause, freeze or hang moved so also ends after a duration that
/// matters (just under or over the lease, faileOverTime, 25 s), if that is before the healing.
pub fn biased(uniform: &Scenario, steps: &[ProtocolStep], timing: &Timing) -> Scenario {
    let mut rng = SplitMix64::new(uniform.seed ^ 0xB1A5_ED00);
    let marks = marks(steps, timing);
    let heal_ms = random::HEAL_AT * 1000;
    let ms = |d: Duration| d.as_millis() as i64;
    let durations = [
        ms(timing.lease) - 1,
        ms(timing.lease) + 1,
        ms(timing.takeover_after) + 1,
        LONG_FAULT_MS as i64,
    ];
    let mut events = Vec::new();
    for event in &uniform.events {
        let mut event = event.clone();
        let at = event.at.millis();
        let kind = &marks[rng.below(marks.len() as u64) as usize];
        let aimed = (at < heal_ms && !kind.is_empty() && rng.below(100) < BIAS_PERCENT)
            .then(|| kind[rng.below(kind.len() as u64) as usize] as i64 - 1 + rng.below(3) as i64)
            .filter(|&mark| mark > 0 && mark < heal_ms);
        if let Some(mark) = aimed {
            event.at = millis(mark);
            let end = match event.action {
                Action::Pause => Some(Action::Resume),
                Action::Freeze => Some(Action::Thaw),
                Action::StorageHang => Some(Action::StorageRestore),
                _ => None,
            };
            let ends_at = mark + durations[rng.below(durations.len() as u64) as usize];
            if let Some(end) = end.filter(|_| ends_at < heal_ms) {
                events.push(spec(ends_at, end, event.node.as_deref()));
            }
        }
        events.push(event);
    }
    // A stable sort keeps the healing events, all at the same instant, in their order.
    events.sort_by_key(|event| event.at.millis());
    Scenario {
        // random-SEED becomes biased-SEED, etcd-random-SEED etcd-biased-SEED.
        name: uniform.name.replacen("random", "biased", 1),
        description: format!(
            "A random fault schedule from seed {}, its faults moved to protocol instants.",
            uniform.seed
        ),
        events,
        ..uniform.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_valid() {
        for base in bases() {
            base.scenario.check().unwrap();
        }
    }

    #[test]
    fn every_fault_is_a_valid_event_list() {
        let timing = Timing::new(10, 3).unwrap();
        for Base { mut scenario, .. } in bases() {
            let etcd = scenario.etcd.is_some();
            let site = scenario.sites.last().map(|site| site.name.clone());
            let mut all = faults("alpha", None, 5000, &timing, etcd);
            if !etcd {
                all.extend(faults("alpha", site.as_deref(), 5000, &timing, false));
                all.extend(directory_faults(None, 5000));
                all.extend(directory_faults(site.as_deref(), 5000));
            }
            for fault in all {
                scenario.events = fault.events;
                scenario
                    .check()
                    .unwrap_or_else(|e| panic!("{}: {}: {e}", scenario.name, fault.label));
            }
        }
    }

    #[test]
    fn a_sample_takes_one_of_each_block() {
        let base = bases().remove(0).scenario;
        let numbered: Vec<Scenario> = (0..23)
            .map(|i| Scenario {
                seed: i,
                ..base.clone()
            })
            .collect();
        let chosen: Vec<u64> = sample(numbered, 5).iter().map(|s| s.seed).collect();
        assert_eq!(chosen.len(), 5);
        for (block, seed) in chosen.iter().enumerate() {
            assert_eq!(*seed as usize / 5, block, "{chosen:?}");
        }
        // Positions are drawn: a fixed one would meet the same fault kinds over and over.
        assert!(
            chosen.iter().any(|seed| seed % 5 != chosen[0] % 5),
            "{chosen:?}"
        );
    }
}
