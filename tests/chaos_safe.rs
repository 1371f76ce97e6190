//! Chaos tests of the safe profile on real processes (issue 6): two hacmp daemons, each seeing
//! the shared heartbeat directory through its own faultfs mount, and an oracle independent of
//! hacmp that records when each application instance lives.

mod support;

use std::fs;
use std::sync::mpsc;
use std::time::Duration;

use hacmp::world::EntryRead;
use support::cluster::{Cluster, FAILE_OVER_TIME, HOSTS, WAIT_LIMIT};
use support::fuse_fs::{FaultFs, Mode};
use support::oracle::{Instance, overlap_of};
use support::wait_until;
use support::watched::Watched;

const ACTIVE: usize = 0;
const STANDBY: usize = 1;
/// The one heartbeat directory of these tests.
const SITE: usize = 0;

/// One fault on the active node, and how it heals.
struct Chaos {
    name: &'static str,
    fault: fn(&mut Cluster),
    heal: fn(&mut Cluster),
}

/// The faults of issue 6 on real processes.
const CHAOS: [Chaos; 4] = [
    Chaos {
        name: "kill -9 of the active daemon",
        fault: |cluster| cluster.nodes[ACTIVE].kill_daemon(),
        heal: |cluster| cluster.start(ACTIVE),
    },
    Chaos {
        name: "SIGSTOP of the active daemon",
        fault: |cluster| cluster.nodes[ACTIVE].pause_or_resume_daemon(libc::SIGSTOP),
        heal: |cluster| cluster.nodes[ACTIVE].pause_or_resume_daemon(libc::SIGCONT),
    },
    Chaos {
        name: "heartbeat directory unreadable on the active node",
        fault: |cluster| cluster.set_view(ACTIVE, SITE, Mode::Fail),
        heal: |cluster| cluster.set_view(ACTIVE, SITE, Mode::Normal),
    },
    Chaos {
        name: "hung storage on the active node",
        fault: |cluster| cluster.set_view(ACTIVE, SITE, Mode::Hang),
        heal: |cluster| cluster.set_view(ACTIVE, SITE, Mode::Normal),
    },
];

/// The course of every chaos test: the active node runs the application, the standby watches;
/// the fault strikes the active node; the standby must take over without the two instances
/// ever overlapping; after healing exactly one instance runs, the standby's.
fn standby_takes_over_without_overlap(chaos: &Chaos) {
    let mut cluster = Cluster::new(&chaos.name.replace(' ', "-"), "safe", &["shared"]);
    cluster.start(ACTIVE);
    let first = cluster.wait_for_instance(ACTIVE);
    cluster.start(STANDBY);
    cluster.wait_for_rounds(STANDBY, 3);
    assert_eq!(
        cluster.oracle.running(),
        std::slice::from_ref(&first),
        "the standby runs nothing while the active node is healthy\n{}",
        cluster.report()
    );

    (chaos.fault)(&mut cluster);
    let second = cluster.wait_for_instance(STANDBY);
    cluster.assert_no_overlap();

    (chaos.heal)(&mut cluster);
    cluster.wait_for_rounds(ACTIVE, 5);
    cluster.wait_for_rounds(STANDBY, 2);
    assert_eq!(
        cluster.oracle.running(),
        [second],
        "after healing exactly one instance runs, the one that took over\n{}",
        cluster.report()
    );
    cluster.assert_no_overlap();
}

#[test]
fn the_safe_standby_takes_over_without_overlap_under_every_fault() {
    // The scenarios spend their time waiting, each in a cluster of its own, so they run at once:
    // `cargo test` runs only as many tests at once as the machine has cores.
    let failed: Vec<&str> = std::thread::scope(|scope| {
        let running: Vec<_> = CHAOS
            .iter()
            .map(|chaos| {
                let thread = std::thread::Builder::new()
                    .name(chaos.name.to_string())
                    .spawn_scoped(scope, || standby_takes_over_without_overlap(chaos))
                    .unwrap();
                (chaos.name, thread)
            })
            .collect();
        running
            .into_iter()
            .filter_map(|(name, thread)| thread.join().is_err().then_some(name))
            .collect()
    });
    assert!(
        failed.is_empty(),
        "failed under {failed:?} (each thread's message is above, under its name)"
    );
}

/// A guard SIGKILLed on the master (issue 19), its application double-forked out of its process
/// group: the master's daemon kills the whole tree and gives up the lease, and the next
/// instance, on whichever node takes over, starts only after every process of the old one is
/// gone.
#[test]
fn a_guard_killed_on_the_master_hands_over_without_overlap() {
    let mut cluster = Cluster::new("guard-killed", "safe", &["shared"]);
    for node in &mut cluster.nodes {
        let start = support::write_double_forking_start(node);
        node.set_variable("startCmd", &start);
    }
    cluster.start(ACTIVE);
    let first = cluster.wait_for_instance(ACTIVE);
    cluster.start(STANDBY);
    cluster.wait_for_rounds(STANDBY, 3);
    let guard = support::guard_of(cluster.nodes[ACTIVE].daemon_pid()).expect("the guard runs");
    // SAFETY: kill has no memory effects; the PID is the guard of this test's active daemon.
    unsafe { libc::kill(guard as libc::pid_t, libc::SIGKILL) };
    wait_until(
        &format!("an instance after the fence\n{}", cluster.report()),
        WAIT_LIMIT,
        || cluster.oracle.instances().len() >= 2,
    );
    let instances = cluster.oracle.instances();
    assert_eq!(
        instances[0],
        Instance {
            ended: instances[0].ended,
            ..first
        }
    );
    let ended = instances[0].ended.expect("the first instance ended");
    assert!(
        instances[1].started >= ended,
        "the next instance started after every process of the old one was gone\n{}",
        cluster.report()
    );
    cluster.assert_no_overlap();
}

/// Restart without failover (issue 11) over one heartbeat directory.
#[test]
fn a_master_daemon_restarted_within_its_lease_keeps_its_application() {
    support::cluster::restart_within_the_lease_keeps_the_application("reattach", &["shared"]);
}

/// Stray entries must not block an election (issue 9, hole 5): with a hundred stray files and
/// directories in the heartbeat directory — more than the 64 entries a scan once read — a lone
/// node still becomes master, and after its daemon is killed the standby takes over, never
/// next to it.
#[test]
fn stray_entries_neither_block_an_election_nor_a_takeover() {
    const STRAY_FILES: usize = 96;
    const STRAY_DIRECTORIES: usize = 4;
    let mut cluster = Cluster::new("stray-entries", "safe", &["shared"]);
    for index in 0..STRAY_FILES {
        let content = if index % 2 == 0 { "" } else { "notes\n" };
        fs::write(
            cluster.shared[SITE].join(format!("stray-{index:03}")),
            content,
        )
        .unwrap();
    }
    for index in 0..STRAY_DIRECTORIES {
        fs::create_dir(cluster.shared[SITE].join(format!("stray-dir-{index}"))).unwrap();
    }
    cluster.start(ACTIVE);
    cluster.wait_for_instance(ACTIVE);
    cluster.start(STANDBY);
    cluster.wait_for_rounds(STANDBY, 3);
    cluster.nodes[ACTIVE].kill_daemon();
    cluster.wait_for_instance(STANDBY);
    cluster.assert_no_overlap();
}

/// The control experiment: the compat profile keeps heartbeat.sh's hole (the active node keeps
/// its application running when it cannot reach the heartbeat directory), and the oracle sees
/// the two instances overlap. Without this, a broken oracle would pass every test above.
#[test]
fn compat_overlaps_when_the_active_heartbeat_directory_is_unreadable() {
    let mut cluster = Cluster::new("compat-unreadable", "compat", &["shared"]);
    cluster.start(ACTIVE);
    let first = cluster.wait_for_instance(ACTIVE);
    cluster.set_view(ACTIVE, SITE, Mode::Fail);
    // The standby starts once the active node's heartbeat is stale, so that it takes over in
    // its first round instead of after killInstance's 30-second wait.
    let heartbeat = cluster.shared[SITE].join(HOSTS[ACTIVE]);
    let stale = Duration::from_secs(FAILE_OVER_TIME + 1);
    let what = format!("a stale heartbeat of {}", HOSTS[ACTIVE]);
    wait_until(&what, WAIT_LIMIT, || {
        let modified = fs::metadata(&heartbeat).unwrap().modified().unwrap();
        modified.elapsed().is_ok_and(|age| age > stale)
    });
    cluster.start(STANDBY);
    cluster.wait_for_instance(STANDBY);
    assert!(
        cluster.oracle.running().contains(&first),
        "compat keeps the first instance running\n{}",
        cluster.report()
    );
    assert!(
        cluster.oracle.overlap() > Duration::ZERO,
        "{}",
        cluster.report()
    );
}

#[test]
fn the_oracle_counts_only_time_with_two_instances_alive() {
    let instance = |started: u64, ended: Option<u64>| Instance {
        host: "h".to_string(),
        pid: 1,
        started: Duration::from_secs(started),
        ended: ended.map(Duration::from_secs),
    };
    let now = Duration::from_secs(100);
    let back_to_back = [instance(0, Some(10)), instance(10, None)];
    assert_eq!(overlap_of(&back_to_back, now), Duration::ZERO);
    let three = [
        instance(0, Some(10)),
        instance(8, Some(20)),
        instance(9, None),
    ];
    assert_eq!(overlap_of(&three, now), Duration::from_secs(12));
    let both_running = [instance(0, None), instance(50, None)];
    assert_eq!(overlap_of(&both_running, now), Duration::from_secs(50));
}

/// A record replaced by its node while another host reads it, as on NFS: the reader's lookup
/// names a file that the rename then removes, and the storage answers ESTALE. The read starts
/// again and finds the new record: never an error, never a record missing or torn.
#[test]
fn a_record_replaced_while_it_is_read_is_read_whole() {
    const REPLACEMENTS: usize = 50;
    // Ten times as often as a node replaces its record (once a loopTime), and still far apart
    // against one read, as on a real storage: a read that starts again is not raced again.
    const REPLACED_EVERY: Duration = Duration::from_millis(100);
    let root = tempfile::tempdir().unwrap();
    let backing = root.path().join("shared");
    fs::create_dir(&backing).unwrap();
    let writer = FaultFs::mount(&backing, &root.path().join("writer"));
    let reader = FaultFs::mount(&backing, &root.path().join("reader"));
    // Each request of the reader answered late, so that a rename lands inside its read.
    reader.set_mode(Mode::Slow(Duration::from_millis(2)));
    let record = |n: usize| format!("nodeA {n}\n");
    let written = writer.path().join("nodeA").display().to_string();
    hacmp::real::records::write(&written, &record(0)).unwrap();

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replacing = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            for n in 1..=REPLACEMENTS {
                std::thread::sleep(REPLACED_EVERY);
                hacmp::real::records::write(&written, &record(n)).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let read = reader.path().join("nodeA").display().to_string();
    let mut reads = 0;
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        match hacmp::real::records::read(&read) {
            Ok(EntryRead::File { text, .. }) => assert!(
                (0..=REPLACEMENTS).any(|n| text == record(n)),
                "a torn record: {text:?}"
            ),
            other => panic!("read {reads} of a record being replaced: {other:?}"),
        }
        reads += 1;
    }
    replacing.join().unwrap();
    assert!(reads > 10, "only {reads} reads overlapped the replacements");
}

/// faultfs itself: a faithful passthrough until told otherwise, per mount.
#[test]
fn faultfs_passes_through_fails_and_hangs_per_mount() {
    let root = tempfile::tempdir().unwrap();
    let backing = root.path().join("shared");
    fs::create_dir(&backing).unwrap();
    let a = FaultFs::mount(&backing, &root.path().join("a"));
    let b = FaultFs::mount(&backing, &root.path().join("b"));

    fs::write(a.path().join("nodeA"), "one\n").unwrap();
    assert_eq!(fs::read_to_string(backing.join("nodeA")).unwrap(), "one\n");
    assert_eq!(fs::read_to_string(b.path().join("nodeA")).unwrap(), "one\n");
    fs::write(backing.join("nodeA"), "two, longer\n").unwrap();
    assert_eq!(
        fs::read_to_string(a.path().join("nodeA")).unwrap(),
        "two, longer\n",
        "no stale cache"
    );
    let touched = std::process::Command::new("touch")
        .args(["-d", "@1000000000"])
        .arg(b.path().join("nodeB"))
        .status()
        .unwrap();
    assert!(touched.success());
    let mtime = fs::metadata(backing.join("nodeB"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        mtime,
        std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000)
    );
    fs::rename(a.path().join("nodeB"), a.path().join("nodeC")).unwrap();
    let mut names: Vec<String> = fs::read_dir(b.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["nodeA", "nodeC"]);

    a.set_mode(Mode::Fail);
    let error = fs::read_to_string(a.path().join("nodeA")).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO));
    assert!(fs::read_dir(a.path()).is_err());
    assert_eq!(
        fs::read_to_string(b.path().join("nodeA")).unwrap(),
        "two, longer\n",
        "the other mount still answers"
    );

    a.set_mode(Mode::Hang);
    let (sender, receiver) = mpsc::channel();
    let blocked = a.path().join("nodeA");
    let reader = std::thread::spawn(move || {
        sender.send(fs::read_to_string(blocked).unwrap()).unwrap();
    });
    assert!(
        receiver.recv_timeout(Duration::from_millis(500)).is_err(),
        "a read on a hung mount blocks"
    );
    fs::write(b.path().join("nodeA"), "three\n").unwrap();
    a.set_mode(Mode::Normal);
    assert_eq!(
        receiver.recv_timeout(Duration::from_secs(10)).unwrap(),
        "three\n"
    );
    reader.join().unwrap();
}

/// Dropping a hung mount releases the operations blocked on it and unmounts.
#[test]
fn dropping_a_hung_faultfs_releases_its_callers_and_unmounts() {
    let root = tempfile::tempdir().unwrap();
    let backing = root.path().join("shared");
    fs::create_dir(&backing).unwrap();
    fs::write(backing.join("nodeA"), "record\n").unwrap();
    let mountpoint = root.path().join("a");
    let mount = FaultFs::mount(&backing, &mountpoint);
    mount.set_mode(Mode::Hang);
    let (sender, receiver) = mpsc::channel();
    let blocked = mountpoint.join("nodeA");
    let reader = std::thread::spawn(move || sender.send(fs::metadata(blocked).is_ok()).unwrap());
    assert!(receiver.recv_timeout(Duration::from_millis(500)).is_err());
    drop(mount);
    receiver.recv_timeout(Duration::from_secs(10)).unwrap();
    reader.join().unwrap();
    assert!(
        !mountpoint.join("nodeA").exists(),
        "the mountpoint shows the empty directory beneath again"
    );
}
