//! hacmpEventCmd and hacmpMetricsFile on real daemons: the hook fires with the right variables on
//! a real failover and never holds up the loop; the metrics file is valid Prometheus text that
//! says what happened.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use support::{Daemon, Node, node_in, unique_marker, wait_for_app, wait_until};

const FAILE_OVER_TIME: u64 = 3;
const LOOP_TIME: u64 = 1;

fn node(root: &Path, host: &str, marker: &str) -> Node {
    node_in(root, host, marker, FAILE_OVER_TIME, LOOP_TIME)
}

/// A hook that appends one line per event to `events` in the node's directory (the daemon's
/// working directory) and says something on its stdout.
const RECORDING_HOOK: &str = "echo \"$HACMP_EVENT|$HACMP_HOST|${HACMP_PEER-none}|\
     ${HACMP_TOKEN-none}|$HACMP_MESSAGE\" >> events; echo \"hook saw $HACMP_EVENT\"";

/// The hook's runs so far: (event, host, peer, token, message).
fn events(node: &Node) -> Vec<[String; 5]> {
    fs::read_to_string(node.dir.join("events"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let fields: Vec<String> = line.splitn(5, '|').map(str::to_string).collect();
            fields.try_into().expect("five fields per line")
        })
        .collect()
}

fn event_names(node: &Node) -> Vec<String> {
    events(node).into_iter().map(|[name, ..]| name).collect()
}

#[test]
fn the_hook_and_the_metrics_follow_a_real_failover() {
    let root = tempfile::tempdir().unwrap();
    let marker = unique_marker("events");
    let mut a = node(root.path(), "nodeA", &marker);
    let mut b = node(root.path(), "nodeB", &marker);
    let metrics = b.dir.join("hacmp.prom");
    for node in [&mut a, &mut b] {
        node.set_variable("hacmpEventCmd", RECORDING_HOOK);
    }
    b.set_variable("hacmpMetricsFile", &metrics.display().to_string());
    a.start(Daemon::Hacmp);
    wait_for_app(&a, 20);
    b.start(Daemon::Hacmp);
    wait_until("nodeA's master event", Duration::from_secs(10), || {
        event_names(&a) == ["master"]
    });
    assert_eq!(
        events(&a)[0][1..4],
        ["nodeA", "none", "none"],
        "host, no peer, no token"
    );
    wait_until(
        "nodeB to see nodeA as master",
        Duration::from_secs(10),
        || b.output_contains("We are not master, so kill any running instances"),
    );

    // A host crash: the daemon and its application vanish together.
    a.kill_daemon();
    a.kill_apps();
    wait_for_app(&b, 60);
    wait_until("nodeB's master event", Duration::from_secs(10), || {
        event_names(&b) == ["master"]
    });
    let [_, host, peer, token, message] = events(&b).remove(0);
    assert_eq!([host, peer, token], ["nodeB", "nodeA", "none"]);
    assert_eq!(
        message,
        "nodeB started the application as master; the last master was nodeA"
    );

    // The hook's output goes to the journal (stderr) behind a prefix, never to stdout, whose
    // lines stay heartbeat.sh's.
    assert!(b.errors().contains("hacmp: event hook: hook saw master\n"));
    assert!(!b.output().iter().any(|line| line.contains("hook saw")));

    // The metrics after the takeover, once nodeB has touched its heartbeat as master (the round
    // that started the application touched it before startInstance's 5 s pause).
    let fresh = format!(
        "hacmp_heartbeat_age_seconds{{host=\"nodeB\"}} {}",
        LOOP_TIME
    );
    wait_until("metrics of the new master", Duration::from_secs(10), || {
        fs::read_to_string(&metrics).is_ok_and(|text| {
            text.contains("hacmp_role{role=\"master\"} 1")
                && (text.contains(&fresh) || text.contains("host=\"nodeB\"} 0\n"))
        })
    });
    let samples = parse_prometheus_text(&fs::read_to_string(&metrics).unwrap());
    let value = |series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing in {samples:?}"))
    };
    assert_eq!(value("hacmp_role{role=\"master\"}"), 1.0);
    assert_eq!(value("hacmp_role{role=\"standby\"}"), 0.0);
    assert_eq!(value("hacmp_master{host=\"nodeB\"}"), 1.0);
    assert_eq!(value("hacmp_takeovers_total"), 1.0);
    assert_eq!(value("hacmp_incidents_total"), 0.0);
    assert_eq!(value("hacmp_application_running"), 1.0);
    assert_eq!(value("hacmp_maintenance"), 0.0);
    assert!(value("hacmp_heartbeat_age_seconds{host=\"nodeA\"}") >= FAILE_OVER_TIME as f64);
    assert!(value("hacmp_heartbeat_age_seconds{host=\"nodeB\"}") < FAILE_OVER_TIME as f64);
    assert!(value("hacmp_loop_duration_seconds") >= 0.0);
    let heartbeat_dir = b.vars.heart_beat_dir.display().to_string();
    let touches = format!(
        "hacmp_storage_operations_total{{operation=\"touch\",directory=\"{heartbeat_dir}\"}}"
    );
    assert!(value(&touches) >= 1.0);
    assert_eq!(
        value(&touches.replace("operations_total", "operation_failures_total")),
        0.0
    );
    assert!(
        !metrics.with_extension("prom.tmp").exists(),
        "only the renamed file stays"
    );
}

/// In the safe profile the hook gets the fencing token; a guard killed under the master is a
/// `fenced` event, for the hook and in the metrics.
#[test]
fn in_the_safe_profile_the_hook_gets_the_fencing_token_and_a_dead_guard_fences() {
    let root = tempfile::tempdir().unwrap();
    let mut a = node(root.path(), "nodeA", &unique_marker("safe-events"));
    a.set_variable("hacmpProfile", "safe");
    a.set_variable("hacmpEventCmd", RECORDING_HOOK);
    let metrics = a.dir.join("hacmp.prom");
    a.set_variable("hacmpMetricsFile", &metrics.display().to_string());
    a.start(Daemon::Hacmp);
    wait_for_app(&a, 30);
    wait_until("nodeA's master event", Duration::from_secs(10), || {
        event_names(&a) == ["master"]
    });
    assert_eq!(
        events(&a)[0][1..],
        [
            "nodeA",
            "none",
            "1",
            "nodeA started the application as master"
        ]
    );

    let guard = support::guard_of(a.daemon_pid()).expect("the guard runs");
    // SAFETY: kill has no memory effects; the PID is the guard of this test's daemon.
    unsafe { libc::kill(guard as libc::pid_t, libc::SIGKILL) };
    wait_until("the fenced event", Duration::from_secs(10), || {
        event_names(&a).contains(&"fenced".to_string())
    });
    let fenced = events(&a)
        .into_iter()
        .find(|[name, ..]| name == "fenced")
        .unwrap();
    assert_eq!(
        fenced[4],
        "the guard on nodeA died: the daemon killed the application's whole process tree"
    );
    assert!(
        !event_names(&a).contains(&"incident".to_string()),
        "a dead guard is a fence, not an incident"
    );
    wait_until("the fence in the metrics", Duration::from_secs(10), || {
        fs::read_to_string(&metrics)
            .is_ok_and(|text| parse_prometheus_text(&text).get("hacmp_fenced_total") == Some(&1.0))
    });
}

/// A hook that never ends must not hold up the loop: the master keeps its rhythm, touching its
/// heartbeat round after round, while the hook it started for its first event still runs.
#[test]
fn a_hook_that_never_ends_does_not_hold_up_the_loop() {
    let root = tempfile::tempdir().unwrap();
    let marker = unique_marker("stuck-hook");
    let mut a = node(root.path(), "nodeA", &marker);
    // The hook blocks for ever inside the shell itself (opening a FIFO nobody writes), so no
    // child of it outlives the test; its command line carries the marker, so the test finds it
    // and only it.
    let fifo = std::ffi::CString::new(a.dir.join("never-written").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let hook_command = format!("echo started > hook-started; read line < never-written # {marker}");
    a.set_variable("hacmpEventCmd", &hook_command);
    a.start(Daemon::Hacmp);
    let app = wait_for_app(&a, 20);
    wait_until("the hook to start", Duration::from_secs(10), || {
        a.dir.join("hook-started").exists()
    });
    let rounds_before = heartbeat_rounds(&a, app);
    let mut touched = modified(&a.heartbeat_file());
    for _ in 0..5 {
        wait_until("another heartbeat", Duration::from_secs(10), || {
            modified(&a.heartbeat_file()) > touched
        });
        touched = modified(&a.heartbeat_file());
    }
    assert!(heartbeat_rounds(&a, app) >= rounds_before + 5);
    let hook = support::regex_escape(&hook_command);
    let hook_pids = hacmp::real::processes::find(
        &hacmp::pattern::Pattern::new(&hook).unwrap(),
        std::process::id(),
    );
    assert!(
        !hook_pids.is_empty(),
        "the hook still runs while the loop goes on"
    );
    // Ending the daemon ends its hook too (it dies with its parent).
    a.kill_daemon();
    wait_until(
        "the hook to end with its daemon",
        Duration::from_secs(10),
        || {
            hacmp::real::processes::find(
                &hacmp::pattern::Pattern::new(&hook).unwrap(),
                std::process::id(),
            )
            .is_empty()
        },
    );
}

/// Rounds in which the master found its application running: each prints its PID.
fn heartbeat_rounds(node: &Node, app: u32) -> usize {
    node.output()
        .iter()
        .filter(|line| **line == app.to_string())
        .count()
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

/// A strict reader of Prometheus' text exposition format as the textfile collector accepts it:
/// every sample belongs to the family its HELP and TYPE lines announced just before, names and
/// label names are valid, label values are quoted with only the three escapes, values are
/// numbers, and no series appears twice. Returns the samples by series (name with its labels).
fn parse_prometheus_text(text: &str) -> BTreeMap<String, f64> {
    let name_ok = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut samples = BTreeMap::new();
    let mut family: Option<(String, String)> = None;
    let mut helped: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has a text");
            assert!(name_ok(name) && !help.is_empty(), "{line}");
            helped = Some(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert_eq!(
                helped.as_deref(),
                Some(name),
                "TYPE follows its HELP: {line}"
            );
            assert!(
                ["gauge", "counter", "untyped", "summary", "histogram"].contains(&kind),
                "{line}"
            );
            family = Some((name.to_string(), kind.to_string()));
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line: {line:?}"
        );
        let (name, rest) = match line.find(['{', ' ']) {
            Some(at) => line.split_at(at),
            None => panic!("a sample without a value: {line}"),
        };
        let (family_name, kind) = family.as_ref().expect("a sample after its TYPE line");
        assert_eq!(name, family_name, "{line}");
        let (labels, value) = if let Some(rest) = rest.strip_prefix('{') {
            let end = label_end(rest).unwrap_or_else(|| panic!("unterminated labels: {line}"));
            let labels = &rest[..end];
            check_labels(labels, &name_ok, line);
            (format!("{{{labels}}}"), &rest[end + 1..])
        } else {
            (String::new(), rest)
        };
        let value: f64 = value
            .strip_prefix(' ')
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("not a value: {line}"));
        if kind == "counter" {
            assert!(value >= 0.0, "a counter is never negative: {line}");
        }
        let series = format!("{name}{labels}");
        assert!(
            samples.insert(series, value).is_none(),
            "a series appears twice: {line}"
        );
    }
    samples
}

/// Where the label set's closing brace is, skipping quoted values.
fn label_end(labels: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in labels.char_indices() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            (false, _, '}') => return Some(at),
            _ => {}
        }
    }
    None
}

fn check_labels(labels: &str, name_ok: &dyn Fn(&str) -> bool, line: &str) {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
        assert!(name_ok(name), "label name {name:?}: {line}");
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let escaped = chars.next().map(|(_, c)| c);
                    assert!(
                        matches!(escaped, Some('\\' | '"' | 'n')),
                        "bad escape: {line}"
                    );
                }
                Some((at, '"')) => break at,
                Some(_) => {}
                None => panic!("unterminated value: {line}"),
            }
        };
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}
