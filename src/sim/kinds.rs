//! The kinds of random schedule `hacmp parity --safety` runs, one row each: its option, its
//! generator, its clusters, whether it also runs protocol-aware, and its line in
//! docs/safety.md. The seeds of every kind follow from the table's order alone, so that a kind
//! added at the end leaves every other seed naming the schedule it named before.

use std::ops::Range;
use std::path::Path;

use clap::{Arg, ArgMatches, Command};

use super::explore;
use super::parallel;
use super::progress::Progress;
use super::random::{self, HEAL_AT, RANDOM_DURATION};
use super::safety::{self, SafetyVerdict, Ways};
use super::scenario::Scenario;
use crate::config::Settings;

/// The section of docs/safety.md a kind's schedules feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// "Random fault schedules": one heartbeat directory.
    Random,
    /// "Several heartbeat directories (multi-site)".
    MultiSite,
    /// "The etcd backend".
    Etcd,
}

/// One kind of random schedule.
pub struct Kind {
    /// The option that says how many to run, without its dashes.
    pub option: &'static str,
    pub help: &'static str,
    /// The schedule of a seed; the same seed always gives the same schedule.
    pub generate: fn(u64) -> Scenario,
    pub ways: Ways,
    /// Whether each schedule runs a second time with its faults moved to instants of its
    /// first run (`explore::biased`).
    pub protocol_aware: bool,
    pub section: Section,
    /// Its text in its section, from how many schedules ran and their seeds. It comes right
    /// after the previous kind's of the same section, so it may finish that one's sentence.
    pub line: fn(u64, &str) -> String,
}

/// Every kind, in the order their seeds follow each other. A new kind goes at the end.
pub const KINDS: [Kind; 9] = [
    Kind {
        option: "random",
        help: "How many random fault schedules to run (with --safety: on an all-safe cluster)",
        generate: random::scenario,
        ways: Ways::SafeOnly,
        protocol_aware: false,
        section: Section::Random,
        line: |count, seeds| {
            format!("- {count} general schedules on an all-safe cluster (seeds {seeds})")
        },
    },
    Kind {
        option: "random-all-ways",
        help: "With --safety: how many random schedules also run on all five clusters",
        generate: random::scenario,
        ways: Ways::All,
        protocol_aware: false,
        section: Section::Random,
        line: |count, seeds| {
            format!(
                ", and {count} more on all five clusters (seeds {seeds}). Each lasts \
                 {RANDOM_DURATION} s; up to 8 faults of every kind the simulator models (and \
                 stray entries, deleted heartbeats, a missing directory) happen before {HEAL_AT} \
                 s, when every fault heals; clock offsets and attribute caches stay.\n"
            )
        },
    },
    Kind {
        option: "random-crashes",
        help: "With --safety: how many random schedules of clean host crashes run on an \
               all-safe cluster, to measure the failover time",
        generate: random::crash_scenario,
        ways: Ways::SafeOnly,
        protocol_aware: false,
        section: Section::Random,
        line: |count, seeds| {
            format!(
                "- {count} schedules of clean host crashes on an all-safe cluster (seeds \
                 {seeds}): two crashes of random nodes, each followed by a reboot, with the \
                 default variables and clock offsets of any size; they measure the failover \
                 time.\n"
            )
        },
    },
    Kind {
        option: "random-biased",
        help: "With --safety: how many random schedules run twice on an all-safe cluster: as \
               drawn, then protocol-aware, with their faults moved to instants just before and \
               after deadlines, settles, lease ends and claims of the first run",
        generate: random::scenario,
        ways: Ways::SafeOnly,
        protocol_aware: true,
        section: Section::Random,
        line: |count, seeds| {
            format!(
                "- {count} general schedules on an all-safe cluster (seeds {seeds}) that run \
                 twice: as drawn, then protocol-aware: each fault moves, with a chance of 3 in \
                 5, to a millisecond just before, at or after an instant of the first run drawn \
                 from storage deadlines, ends of settles, ends of leases, claims and the steps \
                 themselves; a pause, freeze or hang so moved ends after just under or over the \
                 lease, faileOverTime or 25 s.\n"
            )
        },
    },
    Kind {
        option: "random-etcd",
        help: "With --safety: how many random schedules over an etcd cluster run twice (as \
               drawn, then protocol-aware) on an all-safe cluster with the etcd backend: faults \
               of hosts and daemons, etcd members lost, leader changes, nodes cut off from etcd \
               or answered slowly",
        generate: random::etcd_scenario,
        ways: Ways::SafeOnly,
        protocol_aware: true,
        section: Section::Etcd,
        line: |count, seeds| {
            format!(
                "- {count} general schedules over etcd (seeds {seeds}): 2 or 3 nodes on 1, 3 or \
                 5 members, up to 8 faults before {HEAL_AT} s (half of them of the etcd \
                 cluster: members down and up, leader changes, nodes cut off or answered up to \
                 3 s late, the maintenance key; the others of hosts and daemons), then every \
                 fault heals. Each runs twice: as drawn, and protocol-aware (its faults moved to \
                 the instants of the first run, as above).\n"
            )
        },
    },
    Kind {
        option: "random-etcd-crashes",
        help: "With --safety: how many random schedules of clean host crashes over etcd run on \
               an all-safe cluster, to measure the etcd backend's failover time",
        generate: random::crash_scenario_over_etcd,
        ways: Ways::SafeOnly,
        protocol_aware: false,
        section: Section::Etcd,
        line: |count, seeds| {
            format!(
                "- {count} schedules of clean host crashes over a three-member etcd cluster \
                 (seeds {seeds}), with the default variables.\n"
            )
        },
    },
    Kind {
        option: "random-multisite",
        help: "With --safety: how many random schedules over three sites (two data centres and \
               a witness, one heartbeat directory each) and 2-4 nodes run on an all-safe \
               cluster",
        generate: random::multisite_scenario,
        ways: Ways::SafeOnly,
        protocol_aware: false,
        section: Section::MultiSite,
        line: |count, seeds| {
            format!(
                "- {count} random schedules over the three sites and 2 to 4 nodes, half in each \
                 data centre, on an all-safe cluster (seeds {seeds}): up to 8 faults drawn from \
                 data centres lost whole (their hosts crash, their storage fails or hangs for \
                 every node), a site's storage failing, hanging, slow or late for every node or \
                 for one, partitions (a node reaches only its own data centre's directory, the \
                 others every directory but that one) and every fault of a node (crash, reboot, \
                 daemon killed or started, pause, host freeze, clock jump, application crash), \
                 all healed at {HEAL_AT} s.\n"
            )
        },
    },
    Kind {
        option: "random-site-losses",
        help: "With --safety: how many random schedules of data centres lost whole run on an \
               all-safe cluster, to measure the failover time after a data centre's loss",
        generate: random::multisite_loss_scenario,
        ways: Ways::SafeOnly,
        protocol_aware: false,
        section: Section::MultiSite,
        line: |count, seeds| {
            format!(
                "- {count} random schedules of data centres lost whole, with the default \
                 variables (seeds {seeds}): twice, a random data centre's hosts crash and its \
                 storage fails or hangs for every node; both come back 40 s later.\n"
            )
        },
    },
    Kind {
        option: "random-slow-sites",
        help: "With --safety: how many random schedules of a slow site (just over a third, \
               half, just under or just over the storage deadline) and a data centre lost \
               whole, sometimes with the maintenance file on a site's storage, run on an \
               all-safe cluster",
        generate: random::slow_site_loss_scenario,
        ways: Ways::SafeOnly,
        protocol_aware: false,
        section: Section::MultiSite,
        line: |count, seeds| {
            format!(
                "- {count} random schedules of a slow site and a data centre lost whole over the \
                 three sites and 2 to 4 nodes (seeds {seeds}): from the first 20 s, one site's \
                 storage answers slowly, or its writes land late, for every node or for one, by \
                 just over a third, half, just under or just over the storage deadline of the \
                 schedule's variables (the default ones in half of them); then a random data \
                 centre's hosts crash and its storage fails or hangs for every node, both coming \
                 back 40 s later; in half of them the maintenance file lives on dc1's storage. \
                 Every fault heals at {HEAL_AT} s.\n"
            )
        },
    },
];

/// The kind that `hacmp parity` without --safety runs too: general schedules, compared
/// between bash and hacmp.
pub const PARITY: &Kind = &KINDS[0];

/// One schedule checked: as drawn, then (for a protocol-aware kind) its protocol-aware
/// version, each scenario with its verdict.
pub type Runs = Vec<(Scenario, SafetyVerdict)>;

impl Kind {
    /// How many cluster runs one schedule makes: the unit of the progress line.
    pub fn runs_per_schedule(&self) -> u64 {
        (1 + u64::from(self.protocol_aware)) * self.ways.clusters()
    }

    /// The schedule of `seed` run on the kind's clusters and checked.
    pub fn check(&self, seed: u64, original: &Path, settings: &Settings) -> Result<Runs, String> {
        let drawn = (self.generate)(seed);
        let failed = |scenario: &Scenario, e: String| format!("scenario {}: {e}", scenario.name);
        if !self.protocol_aware {
            let verdict = safety::check(&drawn, original, settings, self.ways)
                .map_err(|e| failed(&drawn, e))?;
            return Ok(vec![(drawn, verdict)]);
        }
        let timing = explore::timing(&drawn, settings).map_err(|e| failed(&drawn, e))?;
        let (verdict, steps) = safety::check_with_steps(&drawn, original, settings, self.ways)
            .map_err(|e| failed(&drawn, e))?;
        let aware = explore::biased(&drawn, &steps, &timing);
        aware.check().map_err(|e| failed(&aware, e))?;
        let aware_verdict =
            safety::check(&aware, original, settings, self.ways).map_err(|e| failed(&aware, e))?;
        Ok(vec![(drawn, verdict), (aware, aware_verdict)])
    }

    /// Every schedule of `seeds` checked on `workers` threads, in the seeds' order.
    pub fn check_seeds(
        &self,
        seeds: Range<u64>,
        original: &Path,
        settings: &Settings,
        workers: usize,
        progress: &Progress,
    ) -> Vec<Result<Runs, String>> {
        let seeds: Vec<u64> = seeds.collect();
        parallel::map(&seeds, workers, |&seed| {
            let result = self.check(seed, original, settings);
            let kept =
                matches!(&result, Ok(runs) if runs.iter().all(|(_, v)| v.violations.is_empty()));
            progress.record(self.runs_per_schedule(), !kept);
            result
        })
    }
}

/// How many schedules of each kind to run, in the table's order: one option per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([u64; KINDS.len()]);

impl Counts {
    /// The counts of the kinds named by their options; every other kind runs none.
    pub fn of(counts: &[(&str, u64)]) -> Counts {
        let mut all = Counts::default();
        for &(option, count) in counts {
            all.0[index(option)] = count;
        }
        all
    }

    /// How many of the kind named `option` to run.
    pub fn get(&self, option: &str) -> u64 {
        self.0[index(option)]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Every kind with its count.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Kind, u64)> + '_ {
        KINDS.iter().zip(self.0.iter().copied())
    }

    /// Every kind with its seeds: consecutive from `first`, each kind's after the previous
    /// kind's in the table's order. This is the one place seeds are given out.
    pub fn seeds(&self, first: u64) -> Vec<(&'static Kind, Range<u64>)> {
        let mut next = first;
        self.iter()
            .map(|(kind, count)| {
                let seeds = next..next.saturating_add(count);
                next = seeds.end;
                (kind, seeds)
            })
            .collect()
    }
}

/// The table's row of the kind whose option is `option`; the names are the program's own, so
/// an unknown one is a mistake in the code.
fn index(option: &str) -> usize {
    KINDS
        .iter()
        .position(|kind| kind.option == option)
        .unwrap_or_else(|| panic!("no kind of random schedule is called {option}"))
}

/// One option per kind (`--random-crashes N`), all but `PARITY`'s with --safety only.
impl clap::Args for Counts {
    fn augment_args(command: Command) -> Command {
        KINDS.iter().fold(command, |command, kind| {
            let arg = Arg::new(kind.option)
                .long(kind.option)
                .value_name("N")
                .value_parser(clap::value_parser!(u64))
                .default_value("0")
                .help(kind.help);
            command.arg(match kind.option == PARITY.option {
                true => arg,
                false => arg.requires("safety"),
            })
        })
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl clap::FromArgMatches for Counts {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Counts, clap::Error> {
        let mut counts = Counts::default();
        for (count, kind) in counts.0.iter_mut().zip(&KINDS) {
            *count = matches.get_one::<u64>(kind.option).copied().unwrap_or(0);
        }
        Ok(counts)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Counts::from_arg_matches(matches)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_follow_the_table_from_the_first() {
        let counts = Counts::of(&[
            ("random", 3),
            ("random-crashes", 2),
            ("random-slow-sites", 1),
        ]);
        let seeds: Vec<(&str, Range<u64>)> = counts
            .seeds(10)
            .into_iter()
            .map(|(kind, seeds)| (kind.option, seeds))
            .filter(|(_, seeds)| !seeds.is_empty())
            .collect();
        assert_eq!(
            seeds,
            [
                ("random", 10..13),
                ("random-crashes", 13..15),
                ("random-slow-sites", 15..16)
            ]
        );
    }

    /// `make safety-report`'s counts give the seeds docs/safety.md printed before the table.
    #[test]
    fn the_reports_counts_keep_their_seeds() {
        let counts = Counts::of(&[
            ("random", 1000),
            ("random-all-ways", 50),
            ("random-crashes", 200),
            ("random-biased", 1900),
            ("random-etcd", 1000),
            ("random-etcd-crashes", 200),
            ("random-multisite", 1000),
            ("random-site-losses", 200),
        ]);
        let seeds: Vec<Range<u64>> = counts.seeds(100_001).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            seeds[..8],
            [
                100_001..101_001,
                101_001..101_051,
                101_051..101_251,
                101_251..103_151,
                103_151..104_151,
                104_151..104_351,
                104_351..105_351,
                105_351..105_551,
            ]
        );
    }

    #[test]
    fn every_kind_has_an_option_of_its_own() {
        for (index, kind) in KINDS.iter().enumerate() {
            assert_eq!(super::index(kind.option), index, "{}", kind.option);
        }
    }
}
