//! Chaos tests of the safe profile over three heartbeat directories on real processes (issues 11 and 20):
//! two data centres, each with a host and a directory, and a witness directory at a third site.
//! Each host sees each directory through a faultfs mount of its own, so a host can lose a
//! directory its peer still sees; an oracle independent of hacmp times every application
//! instance. Each test prints the failover time it measured.

mod support;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hacmp::real::records;
use hacmp::timing::Timing;
use support::cluster::{Cluster, FAILE_OVER_TIME, HOSTS, LOOP_TIME, WAIT_LIMIT};
use support::fuse_fs::Mode;
use support::oracle::Instance;
use support::wait_until;
use support::watched::Watched;

const SITES: [&str; 3] = ["dc1", "dc2", "witness"];
const DC1: usize = 0;
const DC2: usize = 1;
const WITNESS: usize = 2;
/// nodeA, in dc1, becomes master; nodeB, in dc2, stands by.
const MASTER: usize = 0;
const STANDBY: usize = 1;
/// Rounds enough for a standby to have watched longer than faileOverTime.
const ROUNDS_PAST_FAILE_OVER_TIME: usize = FAILE_OVER_TIME as usize + 3;

fn timing() -> Timing {
    Timing::new(FAILE_OVER_TIME, LOOP_TIME).unwrap()
}

/// A documented bound on a takeover (docs/multi-site.md) with the simulator's margin for the
/// time the steps themselves take (a worst-case loss lands within milliseconds of the bound).
fn with_margin(bound: Duration) -> Duration {
    bound + Duration::from_millis(hacmp::sim::safety::FAILOVER_MARGIN_MS)
}

/// The bound on a takeover after a site loss: faileOverTime + loopTime + the settle + one
/// storage deadline, with the margin.
fn failover_bound() -> Duration {
    with_margin(timing().takeover_bound())
}

/// A cluster over the three sites with nodeA running the application and nodeB watching.
fn master_and_standby(label: &str) -> (Cluster, Instance) {
    start_master_and_standby(Cluster::new(label, "safe", &SITES))
}

/// Starts nodeA, then once it runs the application nodeB, which must only watch.
fn start_master_and_standby(mut cluster: Cluster) -> (Cluster, Instance) {
    cluster.start(MASTER);
    let first = cluster.wait_for_instance(MASTER);
    cluster.start(STANDBY);
    cluster.wait_for_rounds(STANDBY, 3);
    assert_eq!(
        cluster.oracle.running(),
        std::slice::from_ref(&first),
        "the standby runs nothing while the master is healthy\n{}",
        cluster.report()
    );
    (cluster, first)
}

/// Asserts that `taken_over` started within `bound` after `fault_at`, and prints the time.
fn assert_failover_within_bound(
    cluster: &Cluster,
    what: &str,
    fault_at: Duration,
    taken_over: &Instance,
    bound: Duration,
) {
    let failover = taken_over.started.saturating_sub(fault_at);
    println!(
        "{what}: the standby's instance started {:.2} s after the fault (bound {:.2} s)",
        failover.as_secs_f64(),
        bound.as_secs_f64()
    );
    assert!(
        failover <= bound,
        "{what}: took over after {failover:?}, more than {bound:?}\n{}",
        cluster.report()
    );
}

/// The master's whole data centre goes: its host (daemon, guard, application, all at once by
/// SIGKILL) and its directory, which the standby then finds in `directory`'s mode. Asserts that
/// the standby's instance started within `bound`, never beside another.
fn lose_the_master_site(
    cluster: &mut Cluster,
    what: &str,
    directory: Mode,
    bound: Duration,
) -> Instance {
    cluster.set_view(STANDBY, DC1, directory);
    let lost_at = cluster.lose_host(MASTER);
    let taken_over = cluster.wait_for_instance(STANDBY);
    cluster.assert_no_overlap();
    assert_failover_within_bound(cluster, what, lost_at, &taken_over, bound);
    taken_over
}

/// The master's data centre lost whole, its directory failing or hung for the standby.
fn master_site_lost(label: &str, directory: Mode) {
    let (mut cluster, _) = master_and_standby(label);
    let second = lose_the_master_site(&mut cluster, label, directory, failover_bound());
    cluster.wait_for_rounds(STANDBY, 3);
    assert_eq!(
        cluster.oracle.running(),
        [second],
        "the standby keeps running on the two sites left\n{}",
        cluster.report()
    );
}

#[test]
fn the_standby_takes_over_when_the_master_site_is_lost_and_its_directory_fails() {
    master_site_lost("master-site-lost-failing", Mode::Fail);
}

#[test]
fn the_standby_takes_over_when_the_master_site_is_lost_and_its_directory_hangs() {
    master_site_lost("master-site-lost-hanging", Mode::Hang);
}

/// How late the witness answers each FUSE request. One directory operation is several requests,
/// so that a record write takes about 0.32 s, a read or a listing 0.24 s, of D = 0.7 s (the
/// test prints them). Not more: at 50 ms (a write of 0.49 s) the load of a shared 2-CPU machine
/// pushed a write past D, and with dc1 lost that step had no majority.
const WITNESS_DELAY: Duration = Duration::from_millis(40);

/// Issue 20's slow minority: the witness answers every operation of both hosts late but within
/// the storage deadline D, and the master runs on; then the master's data centre is lost whole,
/// its directory hanging. The standby's only majority is dc2 and the slow witness, so each of
/// its steps waits for the witness: its claim must still fit the window, and the takeover the
/// bound. `hacmp status` on the standby's host then shows the new master and the lost site.
#[test]
fn the_standby_takes_over_through_a_slow_witness_when_the_master_site_is_lost() {
    let (mut cluster, first) = master_and_standby("slow-witness");
    for node in [MASTER, STANDBY] {
        cluster.set_view(node, WITNESS, Mode::Slow(WITNESS_DELAY));
    }
    let deadline = timing().io_limit;
    for (operation, took) in witness_operation_times(&cluster) {
        println!(
            "slow witness: a record {operation} took {:.0} ms (D {:.0} ms)",
            took.as_secs_f64() * 1000.0,
            deadline.as_secs_f64() * 1000.0
        );
        // No upper limit: a load spike may stretch one probe past D, which says nothing of hacmp.
        assert!(
            took > deadline / 4,
            "a {operation} on the slow witness took {took:?}, not a good part of D = {deadline:?}"
        );
    }
    cluster.wait_for_rounds(MASTER, ROUNDS_PAST_FAILE_OVER_TIME);
    assert_nothing_changed(&cluster, &first, "slow witness");

    lose_the_master_site(
        &mut cluster,
        "slow witness",
        Mode::Hang,
        // A site loss while one of the two directories left answers slowly within D.
        with_margin(timing().slow_takeover_bound()),
    );

    let (json, _) = status_while_hung(&cluster, STANDBY, DC1);
    assert_eq!(json["master"], HOSTS[STANDBY], "{json}");
    assert_eq!(
        json["heartbeat_dirs"][DC2]["master"], HOSTS[STANDBY],
        "{json}"
    );
    // Status's time for the witness spans several operations, each longer than a quarter of D.
    let witness = &json["heartbeat_dirs"][WITNESS];
    assert_eq!(witness["reachable"], true, "{json}");
    assert_eq!(witness["master"], HOSTS[STANDBY], "{json}");
    assert!(
        (witness["latency_ms"].as_u64())
            .is_some_and(|ms| u128::from(ms) > deadline.as_millis() / 4),
        "{json}"
    );
}

/// Times a record write, read and listing through the standby's view of the witness, the
/// operations its storage steps are made of, on a hidden probe that listings leave out.
fn witness_operation_times(cluster: &Cluster) -> [(&'static str, Duration); 3] {
    let witness = cluster.views[STANDBY][WITNESS].path().display().to_string();
    let probe = format!("{witness}/.slow-probe");
    let time = |operation: &dyn Fn() -> Result<(), String>| {
        let started = Instant::now();
        operation().unwrap();
        started.elapsed()
    };
    let times = [
        ("write", time(&|| records::write(&probe, "probe"))),
        ("read", time(&|| records::read(&probe).map(drop))),
        ("listing", time(&|| records::list(&witness).map(drop))),
    ];
    fs::remove_file(&probe).unwrap();
    times
}

/// A hook that appends each event's name and message to `events` in the daemon's directory.
const RECORDING_HOOK: &str = "echo \"$HACMP_EVENT|$HACMP_MESSAGE\" >> events";

/// The maintenance file on the storage of the master's data centre, where operators keep it so
/// that every host sees it (issue 20). The data centre is lost whole, its storage hanging: the
/// standby cannot read the file, says so on stderr and to the event hook, goes by the markers
/// in the two directories it reaches (maintenance off), and takes over within the bound.
#[test]
fn the_standby_takes_over_when_the_lost_site_holds_the_maintenance_file() {
    let mut cluster = Cluster::new("maintenance-file-lost", "safe", &SITES);
    let shared = cluster.share_on_site(DC1, "shared");
    for (node, dir) in cluster.nodes.iter_mut().zip(&shared) {
        let file = dir.join("maintenance");
        node.set_variable("maintenanceFile", &file.display().to_string());
        node.set_variable("hacmpEventCmd", RECORDING_HOOK);
    }
    let (mut cluster, _) = start_master_and_standby(cluster);
    lose_the_master_site(
        &mut cluster,
        "maintenance file on the lost site",
        Mode::Hang,
        failover_bound(),
    );

    let file = shared[STANDBY].join("maintenance").display().to_string();
    let standby = &cluster.nodes[STANDBY];
    assert!(
        standby.errors().contains(&format!(
            "hacmp: warning: maintenanceFile {file} cannot be read ("
        )),
        "{}",
        cluster.report()
    );
    let events = fs::read_to_string(standby.dir.join("events")).unwrap_or_default();
    assert!(
        events.lines().any(|line| line.starts_with(&format!(
            "maintenance-file-unreadable|maintenanceFile {file} cannot be read"
        )) && line.ends_with("maintenance is off, and decides")),
        "the hook was told: {events}\n{}",
        cluster.report()
    );
}

/// Four sites, of which the hosts list different three (a typo on nodeB's host: dc3 instead of
/// the witness). A partition leaves each a majority of its own list, nodeA dc1 and the
/// witness, nodeB dc2 and dc3, where nodeA's record stands still: without the check nodeB
/// would take over next to nodeA. It must not claim, say why on stderr, and show the mismatch
/// in `hacmp status`; nodeA runs on.
#[test]
fn a_standby_listing_other_directories_never_claims_in_a_partition() {
    const SITES_OF_EITHER: [&str; 4] = ["dc1", "dc2", "witness", "dc3"];
    let cluster = Cluster::listing(
        "mismatched-lists",
        "safe",
        &SITES_OF_EITHER,
        &[&[DC1, DC2, WITNESS], &[DC1, DC2, 3]],
    );
    let (cluster, first) = start_master_and_standby(cluster);
    cluster.set_view(MASTER, DC2, Mode::Fail);
    cluster.set_view(STANDBY, DC1, Mode::Fail);
    cluster.wait_for_rounds(STANDBY, ROUNDS_PAST_FAILE_OVER_TIME);
    assert_nothing_changed(&cluster, &first, "lists differ");
    // The record is named in whichever directory the standby last read it.
    let refused = |line: &str| {
        line.starts_with(&format!("{}'s record ", HOSTS[MASTER]))
            && line.contains(" names other heartbeat directories (identities ")
    };
    let errors = cluster.nodes[STANDBY].errors();
    assert!(
        (errors.lines()).any(|line| line
            .strip_prefix("hacmp: not claiming: ")
            .is_some_and(refused)),
        "{}",
        cluster.report()
    );
    let status = cluster.nodes[STANDBY].status_json();
    let daemon = format!("the daemon of {}: ", HOSTS[STANDBY]);
    let warnings = status["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        (warnings.iter()).any(|warning| warning
            .as_str()
            .and_then(|warning| warning.strip_prefix(&daemon))
            .is_some_and(refused)),
        "{status}"
    );
}

/// Asserts that the first instance is the only one there ever was, still running.
fn assert_nothing_changed(cluster: &Cluster, first: &Instance, what: &str) {
    cluster.assert_no_overlap();
    assert_eq!(
        cluster.oracle.instances(),
        std::slice::from_ref(first),
        "{what}: the master's instance runs on, never restarted, and no other started\n{}",
        cluster.report()
    );
}

#[test]
fn the_master_runs_on_when_the_standby_site_is_lost() {
    let (mut cluster, first) = master_and_standby("standby-site-lost");
    cluster.set_view(MASTER, DC2, Mode::Hang);
    cluster.lose_host(STANDBY);
    cluster.wait_for_rounds(MASTER, ROUNDS_PAST_FAILE_OVER_TIME);
    assert_nothing_changed(&cluster, &first, "standby site lost");
}

#[test]
fn nothing_changes_when_the_witness_is_lost() {
    let (cluster, first) = master_and_standby("witness-lost");
    for node in [MASTER, STANDBY] {
        cluster.set_view(node, WITNESS, Mode::Hang);
    }
    cluster.wait_for_rounds(STANDBY, ROUNDS_PAST_FAILE_OVER_TIME);
    cluster.wait_for_rounds(MASTER, 3);
    assert_nothing_changed(&cluster, &first, "witness lost");
}

/// The link between the data centres and to the witness breaks for the master only: it reaches
/// its own directory, the standby the other two. The master's application must stop when its
/// lease ends (the guard's deadline), and the standby's start after that, never overlapping.
#[test]
fn a_partitioned_master_stops_at_its_lease_end_before_the_standby_starts() {
    let (cluster, first) = master_and_standby("partition");
    cluster.set_view(STANDBY, DC1, Mode::Fail);
    let partitioned_at = hacmp::real::guard::boot_clock();
    cluster.set_view(MASTER, DC2, Mode::Fail);
    cluster.set_view(MASTER, WITNESS, Mode::Fail);
    let second = cluster.wait_for_instance(STANDBY);
    cluster.assert_no_overlap();
    let ended = cluster
        .oracle
        .instances()
        .into_iter()
        .find(|instance| instance.pid == first.pid && instance.host == HOSTS[MASTER])
        .and_then(|instance| instance.ended)
        .unwrap_or_else(|| panic!("the master's instance still runs\n{}", cluster.report()));
    // The last write a majority confirmed was issued before the partition; the guard kills the
    // application one lease later. The oracle sees the end within its polling interval.
    let stopped_after = ended.saturating_sub(partitioned_at);
    let latest_end = timing().lease + Duration::from_secs(1);
    println!(
        "partition: the master's instance ended {:.2} s after the partition (lease {:.0} s)",
        stopped_after.as_secs_f64(),
        timing().lease.as_secs_f64()
    );
    assert!(
        stopped_after <= latest_end,
        "the master's instance ended {stopped_after:?} after the partition, later than its lease end\n{}",
        cluster.report()
    );
    assert!(second.started >= ended, "{}", cluster.report());
    assert_failover_within_bound(
        &cluster,
        "partition",
        partitioned_at,
        &second,
        failover_bound(),
    );
}

/// A paused master daemon cannot renew, so its guard ends the application; the standby takes
/// over, and the daemon, resumed, finds it has lost and stays a standby.
#[test]
fn a_paused_master_daemon_never_runs_next_to_the_standby() {
    let (cluster, _) = master_and_standby("paused-master");
    cluster.nodes[MASTER].pause_or_resume_daemon(libc::SIGSTOP);
    let second = cluster.wait_for_instance(STANDBY);
    cluster.assert_no_overlap();
    cluster.nodes[MASTER].pause_or_resume_daemon(libc::SIGCONT);
    cluster.wait_for_rounds(MASTER, 5);
    cluster.wait_for_rounds(STANDBY, 2);
    assert_eq!(
        cluster.oracle.running(),
        [second],
        "after the pause exactly one instance runs, the standby's\n{}",
        cluster.report()
    );
    cluster.assert_no_overlap();
}

/// Restart without failover over three directories: the restarted daemon must find its record
/// in a majority of them to reattach.
#[test]
fn a_master_daemon_restarted_within_its_lease_keeps_its_application() {
    support::cluster::restart_within_the_lease_keeps_the_application("reattach-sites", &SITES);
}

/// The operator commands answer while a directory hangs (a site whose NFS server is gone):
/// `hacmp status` within its 2-second limit per directory, showing the bare majority, and
/// `hacmp check` within its 5-second limits, naming the directory it could not examine.
#[test]
fn status_and_check_answer_while_a_directory_hangs() {
    let (cluster, _) = master_and_standby("operator-commands");
    let hung = cluster.views[MASTER][DC2].path().display().to_string();
    let (json, status) = status_while_hung(&cluster, MASTER, DC2);
    assert_eq!(
        json["heartbeat_dirs"][DC1]["master"], HOSTS[MASTER],
        "{json}"
    );
    assert!(
        status.took < Duration::from_secs(30),
        "status took {:?}",
        status.took
    );

    let examined =
        format!("hacmpHeartBeatDirs: lists {hung}, which cannot be examined: no answer within 5 s");
    let check = answer_while_hung(&cluster, MASTER, DC2, &["check"], |out| {
        out.contains(&examined)
    });
    assert!(
        check.stderr.contains(&format!(
            "lists {hung}, which cannot be reached now (no answer within 5 s)"
        )),
        "{}",
        check.stderr
    );
    assert!(
        check.took < Duration::from_secs(60),
        "check took {:?}",
        check.took
    );
}

/// What a command printed and how long it took to print it.
struct Answer {
    stdout: String,
    stderr: String,
    took: Duration,
}

/// `hacmp status --json` on `node` while `hung`'s directory hangs for it: it answers, with a
/// bare majority, naming the hung directory. The status and how long it took.
fn status_while_hung(cluster: &Cluster, node: usize, hung: usize) -> (serde_json::Value, Answer) {
    let status = answer_while_hung(cluster, node, hung, &["status", "--json"], |out| {
        serde_json::from_str::<serde_json::Value>(out).is_ok()
    });
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["quorum"]["state"], "bare majority", "{json}");
    assert_eq!(
        json["heartbeat_dirs"][hung]["error"], "no answer within 2 s",
        "{json}"
    );
    (json, status)
}

/// Runs `hacmp ARGS VARS` as `node` while its view of `site` hangs, waits until its output
/// satisfies `answered`, then ends the hang and reaps it. A process whose thread waits in a
/// request faultfs has read cannot exit until it is answered (an NFS hard mount's waits are
/// killable; FUSE's are not, once the request is read), so the command's own end is not timed.
fn answer_while_hung(
    cluster: &Cluster,
    node: usize,
    site: usize,
    args: &[&str],
    answered: impl Fn(&str) -> bool,
) -> Answer {
    let dir = &cluster.nodes[node].dir;
    let (stdout, stderr) = (dir.join("command.out"), dir.join("command.err"));
    cluster.set_view(node, site, Mode::Hang);
    let started = Instant::now();
    let mut child = cluster.nodes[node]
        .hacmp(args)
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let read = |path: &PathBuf| fs::read_to_string(path).unwrap_or_default();
    wait_until(
        &format!("an answer from hacmp {args:?}"),
        WAIT_LIMIT,
        || answered(&read(&stdout)),
    );
    let took = started.elapsed();
    cluster.set_view(node, site, Mode::Normal);
    child.wait().unwrap();
    Answer {
        stdout: read(&stdout),
        stderr: read(&stderr),
        took,
    }
}
