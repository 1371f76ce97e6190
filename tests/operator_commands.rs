//! `hacmp status`, `hacmp maintenance` and `hacmp check` on real directories.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

struct Cluster {
    _root: tempfile::TempDir,
    dir: PathBuf,
    vars: PathBuf,
}

/// A heartbeat directory and a variable file for host nodeA with faileOverTime=10.
fn cluster(extra_variables: &str) -> Cluster {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_path_buf();
    fs::create_dir(dir.join("heartbeat")).unwrap();
    let marker = support::unique_marker("operator");
    let vars = dir.join("heartbeat.vars");
    fs::write(
        &vars,
        format!(
            "pgrepProgramName='exampleApplication.sh {marker}'\n\
             startCmd='{}/exampleApplication.sh {marker}'\n\
             heartBeatDir={}/heartbeat\n\
             maintenanceFile={}/maintenance\n\
             startCmdLogFile={}/app.log\n\
             hostName=nodeA\nfaileOverTime=10\nloopTime=3\n{extra_variables}",
            dir.display(),
            dir.display(),
            dir.display(),
            dir.display()
        ),
    )
    .unwrap();
    fs::copy(support::example_app(), dir.join("exampleApplication.sh")).unwrap();
    Cluster {
        _root: root,
        dir,
        vars,
    }
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Creates `name` in the heartbeat directory (a directory when `directory`), aged `age` seconds
/// relative to `now` (negative: in the future).
fn heartbeat(cluster: &Cluster, name: &str, age: i64, now: i64, directory: bool) {
    let path = cluster.dir.join("heartbeat").join(name);
    if directory {
        fs::create_dir(&path).unwrap();
    } else {
        fs::write(&path, "").unwrap();
    }
    support::set_mtime(&path, now - age, 0);
}

fn hacmp(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .args(args)
        .arg(&cluster.vars)
        .current_dir(&cluster.dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Makes a status JSON independent of the time it was taken: times become offsets from the
/// test's clock reading, and the temporary directory's path a placeholder.
fn normalized_status(output: &Output, test_now: i64, dir: &Path) -> String {
    let mut json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let now = json["now"].as_i64().unwrap();
    let lag = now - test_now;
    assert!(
        (0..=1).contains(&lag),
        "status ran within a second of the setup: {lag}"
    );
    json["now"] = "<now>".into();
    for heartbeat in json["heartbeats"].as_array_mut().unwrap() {
        let age = heartbeat["age_seconds"].as_i64().unwrap() - lag;
        heartbeat["age_seconds"] = age.into();
        heartbeat["modified"] = format!("<now - {age}>").into();
    }
    serde_json::to_string_pretty(&json)
        .unwrap()
        .replace(&dir.display().to_string(), "<dir>")
        + "\n"
}

#[test]
fn status_json_follows_the_pinned_schema() {
    let cluster = cluster("");
    let now = now_seconds();
    heartbeat(&cluster, "nodeA", 2, now, false);
    heartbeat(&cluster, "nodeB", 30, now, false);
    heartbeat(&cluster, "stray", 100, now, true);
    heartbeat(&cluster, "skewed", -600, now, false);
    let output = hacmp(&cluster, &["status", "--json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the newest heartbeat is alive"
    );
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/status.json");
    let actual = normalized_status(&output, now, &cluster.dir);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        fs::write(&snapshot, &actual).unwrap();
    }
    assert_eq!(actual, fs::read_to_string(snapshot).unwrap());
}

#[test]
fn status_exit_codes_follow_the_loops_judgement() {
    let cluster = cluster("");
    let now = now_seconds();
    let status = |cluster: &Cluster| hacmp(cluster, &["status"]);
    let empty = status(&cluster);
    assert_eq!(empty.status.code(), Some(1), "no master");
    assert!(text(&empty.stdout).contains("no heartbeats"));
    heartbeat(&cluster, "nodeB", 11, now, false);
    let stale = status(&cluster);
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale.stdout));
    assert!(text(&stale.stdout).contains("nodeB  11s  stale  master (dead: a peer takes over)"));
    fs::write(cluster.dir.join("maintenance"), "").unwrap();
    let frozen = status(&cluster);
    assert_eq!(frozen.status.code(), Some(3));
    assert!(text(&frozen.stdout).starts_with("####"), "a banner first");
}

#[test]
fn status_warns_about_two_live_hosts() {
    let cluster = cluster("");
    let now = now_seconds();
    heartbeat(&cluster, "nodeA", 1, now, false);
    heartbeat(&cluster, "nodeB", 3, now, false);
    let output = hacmp(&cluster, &["status"]);
    let shown = text(&output.stdout);
    assert!(
        shown.contains(
            "warning: 2 hosts have heartbeats younger than faileOverTime (10 s): nodeA, nodeB"
        ),
        "{shown}"
    );
}

#[test]
fn maintenance_on_and_off_are_idempotent_and_leave_a_note() {
    let cluster = cluster("");
    let file = cluster.dir.join("maintenance");
    let on = hacmp(
        &cluster,
        &["maintenance", "on", "--reason", "patching nodeA", "--"],
    );
    assert_eq!(on.status.code(), Some(0));
    assert_eq!(
        text(&on.stdout),
        format!("maintenance switched on: {}\n", file.display())
    );
    let note = fs::read_to_string(&file).unwrap();
    assert!(note.starts_with("maintenance switched on by "), "{note}");
    assert!(note.ends_with("reason: patching nodeA\n"), "{note}");
    let again = hacmp(&cluster, &["maintenance", "on", "--reason", "other", "--"]);
    assert!(text(&again.stdout).starts_with("maintenance was already on"));
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        note,
        "the first note is kept"
    );
    let shown = hacmp(&cluster, &["maintenance", "status"]);
    assert_eq!(shown.status.code(), Some(3));
    assert!(text(&shown.stdout).contains("reason: patching nodeA"));
    let names: Vec<_> = fs::read_dir(&cluster.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.to_string_lossy().contains(".hacmp-")),
        "no temporary file left"
    );
    assert_eq!(
        hacmp(&cluster, &["maintenance", "off"]).status.code(),
        Some(0)
    );
    assert!(!file.exists());
    let off_again = hacmp(&cluster, &["maintenance", "off"]);
    assert_eq!(
        text(&off_again.stdout),
        format!("maintenance was already off: {}\n", file.display())
    );
    assert_eq!(
        hacmp(&cluster, &["maintenance", "status"]).status.code(),
        Some(0)
    );
}

#[test]
fn a_maintenance_file_off_the_shared_filesystem_is_flagged_as_node_local() {
    // /dev/shm is a tmpfs: another filesystem than the temporary directory's.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let local_file = shm.path().join("maintenance");
    let cluster = cluster(&format!("maintenanceFile={}\n", local_file.display()));
    let output = hacmp(&cluster, &["maintenance", "on"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        text(&output.stderr)
            .contains("is not on the heartbeat directory's filesystem: it freezes only this host"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn check_lists_every_variable_with_its_origin_and_the_hazards() {
    let cluster = cluster("loopTime=20\n");
    let output = hacmp(&cluster, &["check"]);
    let shown = text(&output.stdout).replace(&cluster.vars.display().to_string(), "VARS");
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(shown.starts_with("VARIABLE          VALUE"), "{shown}");
    assert!(shown.contains("hostName          nodeA"), "{shown}");
    assert!(shown.contains("loopTime          20       "), "{shown}");
    assert!(
        shown.contains("VARS:9"),
        "the last assignment wins: {shown}"
    );
    assert!(
        shown.contains("loopTime: is not shorter than faileOverTime (10 s)"),
        "{shown}"
    );
}

#[test]
fn check_reports_invalid_variables_with_exit_status_two() {
    let cluster = cluster("faileOverTime=soon\n");
    let output = hacmp(&cluster, &["check"]);
    assert_eq!(output.status.code(), Some(2));
    let shown = text(&output.stdout);
    assert!(
        shown.contains("invalid: ")
            && shown.contains(":9: faileOverTime='soon' is not a whole number"),
        "{shown}"
    );
}

/// `hacmp check --json` (docs/check-json.md): every variable's value and origin, the hazards,
/// and on unusable variables the error, with the same exit statuses as the table.
#[test]
fn check_json_follows_the_documented_schema() {
    let hazardous = cluster("loopTime=20\n");
    let output = hacmp(&hazardous, &["check", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let vars = hazardous.vars.display().to_string();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["variables"]["hostName"]["value"], "nodeA");
    assert_eq!(json["variables"]["hostName"]["origin"], format!("{vars}:6"));
    assert_eq!(json["variables"]["loopTime"]["origin"], format!("{vars}:9"));
    assert_eq!(json["variables"]["hacmpProfile"]["origin"], "default");
    let mut names: Vec<&str> = json["variables"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "faileOverTime",
            "hacmpBackend",
            "hacmpEtcdCacert",
            "hacmpEtcdCert",
            "hacmpEtcdEndpoints",
            "hacmpEtcdKey",
            "hacmpEtcdPrefix",
            "hacmpEventCmd",
            "hacmpHeartBeatDirs",
            "hacmpMetricsFile",
            "hacmpProfile",
            "heartBeatDir",
            "hostName",
            "loopTime",
            "maintenanceFile",
            "pgrepProgramName",
            "startCmd",
            "startCmdLogFile",
        ]
    );
    let hazards = json["hazards"].as_array().unwrap();
    assert!(
        hazards.iter().any(|h| h["variable"] == "loopTime"
            && h["reason"]
                .as_str()
                .unwrap()
                .starts_with("is not shorter than faileOverTime")),
        "{json}"
    );
    assert!(json.get("error").is_none());

    let invalid = cluster("faileOverTime=soon\n");
    let output = hacmp(&invalid, &["check", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let error = json["error"].as_str().unwrap();
    assert!(error.ends_with(":9: faileOverTime='soon' is not a whole number of seconds"));
    assert_eq!(json["variables"]["faileOverTime"]["value"], "soon");
    assert!(json.get("hazards").is_none());

    fs::write(&invalid.vars, "startCmd=$[1+2]\n").unwrap();
    let output = hacmp(&invalid, &["check", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let expected = format!(
        "{}:1: arithmetic expansion $[…] is not supported",
        invalid.vars.display()
    );
    assert_eq!(json, serde_json::json!({"schema": 1, "error": expected}));
}

#[test]
fn generated_docs_cover_every_command() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_hacmp"))
        .arg("generate-docs")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let page = fs::read_to_string(out.path().join("man/hacmp.1")).unwrap();
    let bash = fs::read_to_string(out.path().join("completions/hacmp.bash")).unwrap();
    for command in ["run", "status", "maintenance", "check", "parity"] {
        assert!(page.contains(command), "man page lacks {command}");
        assert!(bash.contains(command), "bash completion lacks {command}");
        let own_page = out.path().join(format!("man/hacmp-{command}.1"));
        assert!(own_page.is_file(), "no page {}", own_page.display());
    }
    assert!(out.path().join("completions/_hacmp").is_file());
    assert!(out.path().join("completions/hacmp.fish").is_file());
}
