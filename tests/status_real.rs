//! `hacmp status` beside two real daemons sharing a heartbeat directory: the roles the cluster
//! view shows, from the heartbeat directory and the daemons' state files.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{Daemon, Node, NodeVariables, node_in, unique_marker, wait_for_app, wait_until};

/// `hacmp status` (`--json` when `json`) with `node`'s variable file, the daemons' state files in
/// `state`.
fn status(node: &Node, state: &Path, json: bool) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .arg("status")
        .args(json.then_some("--json"))
        .arg(node.dir.join("heartbeat.vars"))
        .current_dir(&node.dir)
        .env("HACMP_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

fn status_json(node: &Node, state: &Path) -> serde_json::Value {
    let shown = status(node, state, true);
    serde_json::from_str(&shown).unwrap_or_else(|e| panic!("{e}: {shown}"))
}

/// The role and state of `host` in a status.
fn role_of(json: &serde_json::Value, host: &str) -> (String, String) {
    let node = (json["nodes"].as_array().unwrap().iter()).find(|node| node["host"] == host);
    let text = |value: &serde_json::Value| value.as_str().unwrap_or("-").to_string();
    node.map_or(("absent".to_string(), String::new()), |node| {
        (text(&node["role"]), text(&node["state"]))
    })
}

/// The roles `host` shows in the statuses seen with `node`'s variables until it shows `role`,
/// which must be within `limit_seconds`.
fn roles_until(
    node: &Node,
    state: &Path,
    host: &str,
    role: &str,
    limit_seconds: u64,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let what = format!("{host} as {role}");
    wait_until(&what, Duration::from_secs(limit_seconds), || {
        let shown = role_of(&status_json(node, state), host).0;
        seen.insert(shown.clone());
        shown == role
    });
    seen
}

#[test]
fn status_shows_the_master_the_standby_and_a_stopped_daemon_of_two_nodes() {
    let root = tempfile::tempdir().unwrap();
    let marker = unique_marker("status-roles");
    // Both daemons keep their state files in one directory, as daemons on one host do.
    let state = root.path().join("state");
    let mut a = node_in(root.path(), "nodeA", &marker, 10, 1);
    let mut b = node_in(root.path(), "nodeB", &marker, 10, 1);
    for node in [&mut a, &mut b] {
        node.set_env("HACMP_STATE_DIR", state.to_str().unwrap());
    }
    a.start(Daemon::Hacmp);
    let before_master = roles_until(&a, &state, "nodeA", "master", 20);
    assert!(
        before_master.contains("claiming"),
        "the 5 s recheck before the start shows as claiming: {before_master:?}"
    );
    wait_for_app(&a, 20);
    b.start(Daemon::Hacmp);

    let mut seen = serde_json::Value::Null;
    wait_until("nodeB standing by", Duration::from_secs(20), || {
        seen = status_json(&a, &state);
        role_of(&seen, "nodeB").0 == "standby"
    });
    assert_eq!(role_of(&seen, "nodeA"), ("master".into(), "alive".into()));
    assert_eq!(
        role_of(&seen, "nodeB"),
        ("standby".into(), "no heartbeat".into()),
        "a compat standby writes no heartbeat: only its state file shows it"
    );
    assert_eq!(seen["master"], "nodeA");
    assert_eq!(seen["no_daemon_seen"], false);

    // nodeB's own view: the standby's killInstance waits 30 s every round.
    let standby = status_json(&b, &state);
    let pending = &standby["application"]["pending"];
    assert_eq!(pending["what"], "killing local instances", "{standby:#}");
    let left = pending["seconds_left"].as_u64().unwrap();
    assert!((1..=30).contains(&left), "{left} s of 30 left");
    let human = status(&b, &state, false);
    assert!(
        human.contains("application:  not running on nodeB; pending: killing local instances, "),
        "{human}"
    );
    let row = (human.lines())
        .find(|line| line.starts_with("nodeA "))
        .unwrap_or_else(|| panic!("a row for nodeA: {human}"));
    assert!(
        row.contains(" master ") && row.contains(" alive "),
        "{human}"
    );

    a.kill_daemon();
    let after = status_json(&b, &state);
    assert_eq!(
        role_of(&after, "nodeA").0,
        "stopped",
        "nodeA's daemon is gone, whatever its heartbeat says: {after:#}"
    );
    assert_eq!(role_of(&after, "nodeB").0, "standby");
    a.kill_apps();
}

/// With etcd the leader key names the master and the standby's state file shows it standing
/// by; after the master's host is lost, the standby is master and the lost daemon stopped.
#[test]
fn status_shows_the_roles_of_two_nodes_on_etcd() {
    use support::etcd::{ACTIVE, EtcdNodes, STANDBY, WAIT_LIMIT};
    use support::watched::Watched;
    let mut cluster = EtcdNodes::on_every_member("status-etcd").with_faile_over_time(10);
    let state = cluster.nodes[ACTIVE].dir.join("shared-state");
    for node in &mut cluster.nodes {
        node.set_env("HACMP_STATE_DIR", state.to_str().unwrap());
    }
    cluster.start_both();
    let seen = status_json(&cluster.nodes[ACTIVE], &state);
    assert_eq!(
        role_of(&seen, "nodeA"),
        ("master".into(), "alive".into()),
        "{seen:#}"
    );
    assert_eq!(
        role_of(&seen, "nodeB"),
        ("standby".into(), "no heartbeat".into()),
        "{seen:#}"
    );
    assert!(
        seen["nodes_unseen"]
            .as_str()
            .unwrap()
            .starts_with("etcd holds only the master's leader key"),
        "{seen:#}"
    );

    cluster.lose_host(ACTIVE);
    cluster.wait_for_instance(STANDBY);
    let mut after = serde_json::Value::Null;
    wait_until("nodeB as master", WAIT_LIMIT, || {
        after = status_json(&cluster.nodes[STANDBY], &state);
        role_of(&after, "nodeB").0 == "master"
    });
    assert_eq!(role_of(&after, "nodeA").0, "stopped", "{after:#}");
    assert_eq!(after["master"], "nodeB");
}

/// Two daemons given the same hostName (a variable file copied to a second host): the one that
/// finds its heartbeat touched by the other says so, and `hacmp status` shows it.
#[test]
fn status_shows_a_second_daemon_with_the_same_host_name() {
    let root = tempfile::tempdir().unwrap();
    let heart_beat_dir = root.path().join("heartbeat");
    std::fs::create_dir_all(&heart_beat_dir).unwrap();
    // Each copy has a marker of its own, so that each finds only its own application, as two
    // hosts would.
    let mut copies: Vec<Node> = ["first", "second"]
        .iter()
        .map(|copy| {
            let vars = NodeVariables {
                host_name: "nodeA".to_string(),
                heart_beat_dir: heart_beat_dir.clone(),
                marker: unique_marker(copy),
                faile_over_time: 7,
                loop_time: 1,
            };
            // Each in its own state directory, as on two hosts.
            Node::new(&root.path().join(copy), vars)
        })
        .collect();
    copies[0].start(Daemon::Hacmp);
    wait_for_app(&copies[0], 20);
    copies[1].start(Daemon::Hacmp);

    let duplicate = |status: &serde_json::Value| {
        (status["warnings"].as_array().unwrap().iter()).any(|warning| {
            let warning = warning.as_str().unwrap();
            warning.starts_with("the daemon of nodeA: ")
                && warning.ends_with("another daemon runs with the same hostName")
        })
    };
    let state = copies[1].dir.join("state");
    let mut seen = serde_json::Value::Null;
    wait_until(
        "the second copy to find its heartbeat touched",
        Duration::from_secs(90),
        || {
            seen = status_json(&copies[1], &state);
            duplicate(&seen)
        },
    );
    let said = copies[1].output().join("\n") + &copies[1].errors();
    assert!(
        !said.contains("hostName"),
        "the compat output, stderr included, stays the script's: {said}"
    );
    for copy in &mut copies {
        copy.kill_daemon();
        copy.kill_apps();
    }
    assert!(
        !duplicate(&status_json(&copies[1], &state)),
        "no daemon runs: no warning is left: {seen:#}"
    );
}

/// A safe daemon stands by while it watches the directory, becomes master, and after its
/// guard is killed shows as fenced until it is master again.
#[test]
fn status_shows_a_safe_daemon_fenced() {
    let root = tempfile::tempdir().unwrap();
    let mut a = node_in(root.path(), "nodeA", &unique_marker("status-fenced"), 5, 1);
    a.set_variable("hacmpProfile", "safe");
    let state = a.dir.join("state");
    a.start(Daemon::Hacmp);
    let before_master = roles_until(&a, &state, "nodeA", "master", 30);
    assert!(
        before_master.contains("standby"),
        "a new safe daemon watches for faileOverTime before it claims: {before_master:?}"
    );
    wait_for_app(&a, 30);
    let guard = support::guard_of(a.daemon_pid()).expect("the guard runs");
    // SAFETY: kill has no memory effects; the PID is the guard of this test's daemon.
    unsafe { libc::kill(guard as libc::pid_t, libc::SIGKILL) };
    roles_until(&a, &state, "nodeA", "fenced", 20);
    a.kill_daemon();
    a.kill_apps();
}
