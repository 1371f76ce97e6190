//! The etcd backend on a real three-member etcd cluster (Debian's etcd-server) started by each
//! test on 127.0.0.1: first the real world's etcd method, request by request, then
//! hacmp daemons under failures of their own hosts and of the cluster's members, with the oracle
//! timing every application instance from outside.

mod support;

use std::time::{Duration, Instant};

use hacmp::config::{EtcdSettings, EtcdTls, Store};
use hacmp::real::RealWorld;
use hacmp::real::guard::boot_clock;
use hacmp::timing::Timing;
use hacmp::world::{EtcdAnswer, EtcdRequest, Io, KeyValue, SafeWorld};

use support::etcd::{
    ACTIVE, EtcdCluster, EtcdNodes, FAILE_OVER_TIME, LOOP_TIME, MEMBERS, STANDBY, TlsFiles,
    WAIT_LIMIT,
};
use support::oracle::Instance;
use support::watched::Watched;
use support::{unique_marker, wait_until};

/// The deadline of one request, as the loop gives it on a healthy cluster.
const LIMIT: Duration = Duration::from_secs(2);
/// How much later than its limit a request may answer on a loaded machine: the thread hand-over.
const LATENESS: Duration = Duration::from_millis(500);

/// The real world with the etcd cluster at `endpoints`, as `hacmp run` makes it.
fn world_of(endpoints: Vec<String>, prefix: &str) -> RealWorld {
    world_with_tls(endpoints, prefix, None)
}

fn world_with_tls(endpoints: Vec<String>, prefix: &str, tls: Option<EtcdTls>) -> RealWorld {
    RealWorld::new().storing_in(&Store::Etcd(EtcdSettings {
        endpoints,
        prefix: prefix.to_string(),
        tls,
    }))
}

/// Sends one request and returns its answer, which must come within the limit (and a little).
fn ask(client: &mut RealWorld, request: EtcdRequest) -> Io<EtcdAnswer> {
    let started = Instant::now();
    let answer = client.etcd(&request, LIMIT).unwrap();
    assert!(
        started.elapsed() < LIMIT + LATENESS,
        "{request:?} took {:?}, past its limit of {LIMIT:?}",
        started.elapsed()
    );
    answer
}

/// Sends one request that must succeed.
fn done(client: &mut RealWorld, request: EtcdRequest) -> EtcdAnswer {
    match ask(client, request.clone()) {
        Io::Done(answer) => answer,
        other => panic!("{request:?} answered {other:?}"),
    }
}

fn grant(client: &mut RealWorld, ttl: u64) -> i64 {
    match done(client, EtcdRequest::Grant { ttl }) {
        EtcdAnswer::Lease { id, ttl: granted } => {
            assert_eq!(granted, ttl as i64, "etcd grants the TTL asked for");
            assert_ne!(id, 0, "a lease has an id");
            id
        }
        other => panic!("a grant answered {other:?}"),
    }
}

fn campaign(client: &mut RealWorld, key: &str, value: &str, lease: i64) -> (bool, KeyValue) {
    let request = EtcdRequest::Campaign {
        key: key.to_string(),
        value: value.to_string(),
        lease,
    };
    match done(client, request) {
        EtcdAnswer::Campaign { won, holder } => (won, holder),
        other => panic!("a campaign answered {other:?}"),
    }
}

fn get(client: &mut RealWorld, key: &str) -> Option<KeyValue> {
    match done(
        client,
        EtcdRequest::Get {
            key: key.to_string(),
        },
    ) {
        EtcdAnswer::Value(value) => value,
        other => panic!("a get answered {other:?}"),
    }
}

/// Every request of the seam against the real cluster, with etcdctl as the witness of what the
/// cluster holds; then the cluster dies and every request still answers within its limit.
#[test]
fn each_request_does_in_etcd_what_the_seam_says() {
    let root = tempfile::tempdir().unwrap();
    let mut etcd = EtcdCluster::start(root.path(), &unique_marker("etcd-requests"));
    let prefix = format!("/{}", unique_marker("prefix"));
    let leader_key = format!("{prefix}/leader");
    let mut client = world_of(etcd.endpoints(), &prefix);

    let lease = grant(&mut client, 10);
    assert_eq!(
        done(&mut client, EtcdRequest::KeepAlive { id: lease }),
        EtcdAnswer::Ttl(10),
        "a keep-alive renews the lease to its full TTL"
    );
    assert_eq!(
        done(&mut client, EtcdRequest::KeepAlive { id: lease }),
        EtcdAnswer::Ttl(10),
        "again, on the connection kept open"
    );

    let (won, ours) = campaign(&mut client, &leader_key, "nodeA", lease);
    assert!(won, "the first campaign wins");
    assert_eq!((ours.value.as_str(), ours.lease), ("nodeA", lease));
    assert!(ours.create_revision > 0);
    assert_eq!(ours.mod_revision, ours.create_revision);
    assert_eq!(
        etcd.etcdctl(&["get", "--print-value-only", &leader_key]),
        "nodeA\n"
    );
    let rival = grant(&mut client, 10);
    let (won, holder) = campaign(&mut client, &leader_key, "nodeB", rival);
    assert!(!won, "a second campaign loses while the key exists");
    assert_eq!(holder, ours, "and sees the holder: value, token and lease");
    assert_eq!(get(&mut client, &leader_key), Some(ours.clone()));

    let stale = EtcdRequest::Resign {
        key: leader_key.clone(),
        create_revision: ours.create_revision - 1,
    };
    assert_eq!(done(&mut client, stale), EtcdAnswer::Done);
    assert_eq!(
        get(&mut client, &leader_key),
        Some(ours.clone()),
        "a resign with another token leaves the key"
    );
    let resign = EtcdRequest::Resign {
        key: leader_key.clone(),
        create_revision: ours.create_revision,
    };
    assert_eq!(done(&mut client, resign), EtcdAnswer::Done);
    assert_eq!(get(&mut client, &leader_key), None, "resigned");
    let (won, next) = campaign(&mut client, &leader_key, "nodeB", rival);
    assert!(won, "after the resign the rival wins");
    assert!(
        next.create_revision > ours.create_revision,
        "the token grows"
    );

    let maintenance = format!("{prefix}/maintenance");
    let put = EtcdRequest::Put {
        key: maintenance.clone(),
        value: "switched on by a test".to_string(),
    };
    assert_eq!(done(&mut client, put), EtcdAnswer::Done);
    let stored = get(&mut client, &maintenance).expect("the put key");
    assert_eq!(
        (stored.value.as_str(), stored.lease),
        ("switched on by a test", 0)
    );
    let delete = EtcdRequest::Delete {
        key: maintenance.clone(),
    };
    assert_eq!(done(&mut client, delete), EtcdAnswer::Done);
    assert_eq!(get(&mut client, &maintenance), None);
    assert_eq!(etcd.etcdctl(&["get", &maintenance]), "");

    // The shortest TTL etcd grants with its default timing is 2 s.
    let short = grant(&mut client, 2);
    let expiring = format!("{prefix}/expiring");
    assert!(campaign(&mut client, &expiring, "nodeC", short).0);
    wait_until(
        "the unrenewed lease to expire and take its key",
        Duration::from_secs(15),
        || get(&mut client, &expiring).is_none(),
    );
    assert_eq!(
        done(&mut client, EtcdRequest::KeepAlive { id: short }),
        EtcdAnswer::Ttl(0),
        "an expired lease answers a TTL of 0"
    );
    assert_eq!(
        done(&mut client, EtcdRequest::Revoke { id: rival }),
        EtcdAnswer::Done
    );
    assert_eq!(
        get(&mut client, &leader_key),
        None,
        "revoking the holder's lease deletes the leader key"
    );
    assert_eq!(
        done(&mut client, EtcdRequest::Revoke { id: rival }),
        EtcdAnswer::Done,
        "revoking a lease that is gone is no error"
    );

    for member in 0..support::etcd::MEMBERS {
        etcd.kill(member);
    }
    let every_kind = [
        EtcdRequest::Grant { ttl: 5 },
        EtcdRequest::KeepAlive { id: lease },
        EtcdRequest::Get {
            key: leader_key.clone(),
        },
        EtcdRequest::Campaign {
            key: leader_key.clone(),
            value: "nodeA".to_string(),
            lease,
        },
    ];
    for request in every_kind {
        let answer = ask(&mut client, request.clone());
        assert!(
            matches!(answer, Io::Failed(_) | Io::TimedOut),
            "{request:?} on a dead cluster answered {answer:?}"
        );
    }
}

/// TLS with client certificates, as hacmpEtcdCacert, hacmpEtcdCert and hacmpEtcdKey give them:
/// with the cluster's CA and a certificate it signed every request works; without the
/// certificate, or trusting another CA, none does, and each fails within its limit.
#[test]
fn tls_with_client_certificates_works_and_a_wrong_identity_fails() {
    let root = tempfile::tempdir().unwrap();
    let tls = TlsFiles::generate(&root.path().join("tls"));
    let stranger = TlsFiles::generate(&root.path().join("other-ca"));
    let etcd = EtcdCluster::start_with(root.path(), &unique_marker("etcd-tls"), Some(tls.clone()));
    let prefix = format!("/{}", unique_marker("tls"));
    let identity = |files: &TlsFiles, with_certificate: bool| EtcdTls {
        cacert: files.ca.display().to_string(),
        cert: with_certificate.then(|| files.client_cert.display().to_string()),
        key: with_certificate.then(|| files.client_key.display().to_string()),
    };
    let mut client = world_with_tls(etcd.endpoints(), &prefix, Some(identity(&tls, true)));
    let lease = grant(&mut client, 10);
    let leader_key = format!("{prefix}/leader");
    let (won, holder) = campaign(&mut client, &leader_key, "nodeA", lease);
    assert!(won);
    assert_eq!(get(&mut client, &leader_key), Some(holder));
    assert_eq!(
        etcd.etcdctl(&["get", "--print-value-only", &leader_key]),
        "nodeA\n"
    );

    let refused = [
        ("no client certificate", identity(&tls, false)),
        ("another CA and its certificate", identity(&stranger, true)),
    ];
    for (what, wrong) in refused {
        let mut client = world_with_tls(etcd.endpoints(), &prefix, Some(wrong));
        let answer = ask(
            &mut client,
            EtcdRequest::Get {
                key: leader_key.clone(),
            },
        );
        assert!(
            matches!(answer, Io::Failed(_) | Io::TimedOut),
            "{what}: answered {answer:?}"
        );
    }
}

/// Members whose JSON gateway is off serve nothing to hacmp, and the error says so in one line
/// naming each, although the cluster is healthy (its start waits until etcdctl, which speaks
/// gRPC, sees a leader).
#[test]
fn members_without_the_json_gateway_are_refused_naming_each() {
    let root = tempfile::tempdir().unwrap();
    let token = unique_marker("etcd-no-gateway");
    let etcd = EtcdCluster::start_with_options(
        root.path(),
        &token,
        None,
        &["--enable-grpc-gateway=false"],
    );
    let mut client = world_of(etcd.endpoints(), &format!("/{token}"));
    let Io::Failed(error) = ask(&mut client, EtcdRequest::Grant { ttl: 5 }) else {
        panic!("a grant through a gateway that is off was answered");
    };
    assert!(error.starts_with("hacmp: etcd unreachable: "), "{error}");
    assert!(!error.contains('\n'), "{error}");
    for endpoint in etcd.endpoints() {
        let refused = format!(
            "{endpoint}: /v3/lease/grant is not found: etcd's JSON gateway is off (--enable-grpc-gateway=false)"
        );
        assert!(error.contains(&refused), "{refused:?} is not in {error}");
    }
}

/// A cluster that never answered: nothing listens at the endpoint. The client connects lazily,
/// so creating it is no error, and every request fails or times out within its limit.
#[test]
fn an_unreachable_cluster_answers_failed_or_timed_out_never_hangs() {
    let nobody = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut client = world_of(vec![nobody.clone()], "/unreachable");
    let unreachable = format!("hacmp: etcd unreachable: {nobody}: ");
    for _ in 0..3 {
        let answer = ask(&mut client, EtcdRequest::Grant { ttl: 5 });
        assert!(
            matches!(&answer, Io::Failed(error) if error.starts_with(&unreachable)),
            "answered {answer:?}"
        );
    }
    // `hacmp status` says the same, not that maintenance is on.
    let settings = EtcdSettings {
        endpoints: vec![nobody],
        prefix: "/unreachable".to_string(),
        tls: None,
    };
    let survey = hacmp::real::etcd::survey(&settings, LIMIT);
    assert!(
        survey.errors.len() == 1 && survey.errors[0].starts_with(&unreachable["hacmp: ".len()..]),
        "{:?}",
        survey.errors
    );
}

/// How much later than a deadline the oracle may see an instance gone: it looks every 10 ms,
/// and the guard's SIGKILL takes a moment to land on a loaded machine.
const ORACLE_SLACK: Duration = Duration::from_millis(500);

fn timing() -> Timing {
    Timing::new(FAILE_OVER_TIME, LOOP_TIME).unwrap()
}

/// A host crash of the master: the standby runs the application within faileOverTime +
/// loopTime + 2 s, never next to the old instance.
#[test]
fn the_standby_takes_over_a_crashed_master_in_time() {
    let mut cluster = EtcdNodes::on_every_member("etcd-crash");
    cluster.start_both();
    let lost_at = cluster.lose_host(ACTIVE);
    let second = cluster.wait_for_instance(STANDBY);
    let failover = second.started.saturating_sub(lost_at);
    let bound = Duration::from_secs(FAILE_OVER_TIME + LOOP_TIME + 2);
    println!(
        "failover after a master crash (etcd backend, faileOverTime {FAILE_OVER_TIME}, loopTime {LOOP_TIME}): {:.2} s",
        failover.as_secs_f64()
    );
    assert!(
        failover <= bound,
        "failover took {failover:?}, more than {bound:?}\n{}",
        cluster.report()
    );
    cluster.assert_no_overlap();
}

/// A paused master daemon: its guard ends the application by the lease's deadline, the standby
/// takes over after the cluster lets the lease go, and the master resumes as a standby.
#[test]
fn a_paused_master_resumes_as_a_standby_without_overlap() {
    let mut cluster = EtcdNodes::on_every_member("etcd-sigstop");
    cluster.start_both();
    cluster.nodes[ACTIVE].pause_or_resume_daemon(libc::SIGSTOP);
    let second = cluster.wait_for_instance(STANDBY);
    cluster.assert_no_overlap();
    cluster.nodes[ACTIVE].pause_or_resume_daemon(libc::SIGCONT);
    cluster.wait_for_rounds(ACTIVE, 5);
    cluster.wait_for_rounds(STANDBY, 2);
    cluster.assert_running(&[&second], "the resumed master stays a standby");
    cluster.assert_no_overlap();
}

/// Restart without failover on etcd (issue 12): kill -9 of the master's daemon alone, started
/// again at once. The new daemon finds its lease through the leader key, reattaches to the
/// guard and keeps the lease alive: the oracle sees the one instance throughout, for more than
/// faileOverTime after the kill, and the standby never campaigns.
#[test]
fn a_master_daemon_restarted_within_its_lease_keeps_its_application() {
    let mut cluster = EtcdNodes::on_every_member("etcd-reattach");
    for node in &mut cluster.nodes {
        node.give_runtime_directory();
    }
    let first = cluster.start_both();
    cluster.nodes[ACTIVE].kill_daemon();
    cluster.start(ACTIVE);
    cluster.wait_for_rounds(ACTIVE, 2 * FAILE_OVER_TIME as usize);
    cluster.wait_for_rounds(STANDBY, 2);
    let reattached = cluster.nodes[ACTIVE].output().iter().any(|line| {
        line.starts_with("reattached to the application of the previous run, keeping token")
    });
    assert!(reattached, "{}", cluster.report());
    assert_eq!(
        cluster.oracle.instances(),
        std::slice::from_ref(&first),
        "one instance throughout, never restarted, never started by the standby\n{}",
        cluster.report()
    );
    cluster.assert_no_overlap();
}

/// The loss of one etcd member, and then of the etcd leader (after the first came back): the
/// cluster keeps its quorum, so the master keeps its application, unrestarted, throughout.
/// faileOverTime is 10 s here, as docs/etcd.md advises at least: the new etcd leader's election
/// must fit well within the lease, and under the load of the whole test suite it took longer
/// than the 4-second lease of the other tests.
#[test]
fn losing_a_member_or_the_etcd_leader_changes_nothing() {
    let mut cluster = EtcdNodes::on_every_member("etcd-members").with_faile_over_time(10);
    let first = cluster.start_both();
    let leader = cluster.etcd.leader(&[0, 1, 2]);
    let follower = (leader + 1) % MEMBERS;
    cluster.etcd.kill(follower);
    cluster.wait_for_rounds(ACTIVE, 5);
    cluster.wait_for_rounds(STANDBY, 5);
    cluster.assert_running(&[&first], "a follower's loss changes nothing");
    cluster.etcd.restart(follower);
    cluster.etcd.wait_until_healthy(&[0, 1, 2]);

    let leader = cluster.etcd.leader(&[0, 1, 2]);
    cluster.etcd.kill(leader);
    let others: Vec<usize> = (0..MEMBERS).filter(|&m| m != leader).collect();
    let elected = cluster.etcd.leader(&others);
    println!("etcd leader member{leader} killed; member{elected} elected");
    cluster.wait_for_rounds(ACTIVE, 5);
    cluster.wait_for_rounds(STANDBY, 5);
    cluster.assert_running(&[&first], "the etcd leader's loss changes nothing");
    cluster.assert_no_overlap();
}

/// Quorum lost: every node's application ends by its lease's deadline, counted from the loss;
/// once quorum returns, exactly one node runs it. The etcd leader is among the two members
/// lost: a leader that survives alone still renews leases until it steps down, an election
/// timeout later, so the deadline would count from then rather than from the loss.
#[test]
fn without_quorum_the_application_stops_in_time_and_one_node_restarts_it() {
    let mut cluster = EtcdNodes::on_every_member("etcd-quorum");
    let first = cluster.start_both();
    let leader = cluster.etcd.leader(&[0, 1, 2]);
    let lost = [leader, (leader + 1) % MEMBERS];
    let lost_at = boot_clock();
    cluster.etcd.kill(lost[0]);
    cluster.etcd.kill(lost[1]);
    cluster.wait_for_no_instance();
    let ended = cluster.oracle.instances()[0]
        .ended
        .expect("the instance ended");
    assert_eq!(
        cluster.oracle.instances()[0],
        Instance {
            ended: Some(ended),
            ..first
        }
    );
    let stopped_after = ended.saturating_sub(lost_at);
    println!(
        "quorum lost: the application stopped {:.2} s later (lease {:?})",
        stopped_after.as_secs_f64(),
        timing().lease
    );
    assert!(
        stopped_after <= timing().lease + ORACLE_SLACK,
        "the application outlived its lease by {:?}\n{}",
        stopped_after.saturating_sub(timing().lease),
        cluster.report()
    );
    cluster.wait_for_rounds(ACTIVE, 3);
    cluster.wait_for_rounds(STANDBY, 3);
    assert!(
        cluster.oracle.running().is_empty(),
        "nobody runs the application without quorum\n{}",
        cluster.report()
    );

    cluster.etcd.restart(lost[0]);
    cluster.etcd.restart(lost[1]);
    cluster.etcd.wait_until_healthy(&[0, 1, 2]);
    let what = format!("an instance after quorum returned\n{}", cluster.report());
    wait_until(&what, WAIT_LIMIT, || !cluster.oracle.running().is_empty());
    cluster.wait_for_rounds(ACTIVE, 5);
    cluster.wait_for_rounds(STANDBY, 5);
    assert_eq!(
        cluster.oracle.running().len(),
        1,
        "exactly one node runs the application\n{}",
        cluster.report()
    );
    cluster.assert_no_overlap();
}

/// One node cut off from etcd: the master reaches the cluster only through member 0, which is
/// then paused. Its application ends by its deadline, and only after that does the standby,
/// which reaches every member, start its own.
#[test]
fn a_master_cut_off_from_etcd_stops_before_the_standby_takes_over() {
    let mut cluster = EtcdNodes::new("etcd-cut-off", |etcd, node| match node {
        ACTIVE => vec![etcd.endpoint(0)],
        _ => etcd.endpoints(),
    });
    let first = cluster.start_both();
    let cut_at = boot_clock();
    cluster.etcd.pause(0, true);
    let second = cluster.wait_for_instance(STANDBY);
    let ended = cluster.oracle.instances()[0]
        .ended
        .expect("the first instance ended");
    assert_eq!(
        cluster.oracle.instances()[0],
        Instance {
            ended: Some(ended),
            ..first
        }
    );
    println!(
        "cut off from etcd: the master's application stopped {:.2} s after the cut, the standby's started {:.2} s after it",
        ended.saturating_sub(cut_at).as_secs_f64(),
        second.started.saturating_sub(ended).as_secs_f64()
    );
    assert!(
        ended.saturating_sub(cut_at) <= timing().lease + ORACLE_SLACK,
        "the cut-off master's application outlived its lease\n{}",
        cluster.report()
    );
    cluster.assert_no_overlap();
    cluster.etcd.pause(0, false);
    cluster.wait_for_rounds(ACTIVE, 5);
    cluster.assert_running(&[&second], "the master that was cut off stays a standby");
    cluster.assert_no_overlap();
}

/// A daemon whose cluster cannot be reached at start: it starts nonetheless, runs nothing, says
/// on stderr what failed, and goes on looping, so that it takes part once the cluster answers.
#[test]
fn a_daemon_without_its_cluster_waits_and_says_so() {
    let mut cluster = EtcdNodes::new("etcd-unreachable", |_, _| {
        let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        vec![format!("http://{}", nobody.local_addr().unwrap())]
    });
    cluster.start(ACTIVE);
    cluster.wait_for_rounds(ACTIVE, 3);
    assert!(
        cluster.oracle.instances().is_empty(),
        "nothing runs without the cluster\n{}",
        cluster.report()
    );
    let errors = cluster.nodes[ACTIVE].errors();
    assert!(
        errors
            .lines()
            .any(|line| line.starts_with("hacmp: etcd unreachable: http://127.0.0.1:")),
        "the daemon says why on stderr\n{}",
        cluster.report()
    );
    assert!(
        !cluster.nodes[ACTIVE].output_contains("We are in maintenance mode, so we do nothing"),
        "a cluster that does not answer is no maintenance\n{}",
        cluster.report()
    );
    // And it goes on looping.
    cluster.wait_for_rounds(ACTIVE, 2);
}
