//! `hacmp status`, `hacmp maintenance` and `hacmp check` on real directories.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        .env("HACMP_STATE_DIR", cluster.dir.join("state"))
        .output()
        .unwrap()
}

/// The cells of the row of `host` in the human status's table of nodes (cells are separated by
/// two spaces or more).
fn row_of(shown: &str, host: &str) -> Vec<String> {
    let line = (shown.lines())
        .find(|line| line.starts_with(&format!("{host}  ")))
        .unwrap_or_else(|| panic!("a row for {host}: {shown}"));
    let cells = regex::Regex::new(" {2,}").unwrap();
    cells.split(line).map(str::to_string).collect()
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
    // The snapshot shows every age less this lag; nodeA's heartbeat (2 s old) stays younger
    // than faileOverTime (10 s) through it.
    assert!(
        (0..=5).contains(&lag),
        "status ran within 5 s of the setup: {lag}"
    );
    json["now"] = "<now>".into();
    for directory in json["heartbeat_dirs"].as_array_mut().unwrap() {
        if directory["latency_ms"].is_u64() {
            directory["latency_ms"] = "<latency>".into();
        }
    }
    for node in json["nodes"].as_array_mut().unwrap() {
        if let Some(age) = node["age_seconds"].as_i64() {
            node["age_seconds"] = (age - lag).into();
        }
    }
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
    let status = |cluster: &Cluster| hacmp(cluster, &["status"]);
    let empty = status(&cluster);
    assert_eq!(empty.status.code(), Some(1), "no master");
    assert!(text(&empty.stdout).contains("no heartbeats"));
    let written = now_seconds();
    heartbeat(&cluster, "nodeB", 11, written, false);
    let stale = status(&cluster);
    // The seconds a loaded machine took between the write and status's reading of the clock.
    let lag = now_seconds() - written;
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale.stdout));
    let shown = text(&stale.stdout);
    let row = row_of(&shown, "nodeB");
    assert_eq!(
        row[..3],
        ["nodeB", "master", "stale: no daemon seen to take over"],
        "no daemon anywhere, so nobody takes over: {shown}"
    );
    let age = row[3]
        .strip_suffix('s')
        .and_then(|age| age.parse::<i64>().ok());
    assert!(
        age.is_some_and(|age| (11..=11 + lag).contains(&age)),
        "the heartbeat's age, 11 s and at most {lag} s more: {shown}"
    );
    assert!(
        shown.contains("\nno daemon seen: no live master"),
        "{shown}"
    );
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

/// `hacmp status` over three heartbeat directories with one missing: a bare majority, shown
/// in a banner, each directory with what it shows, and the quorum in the JSON.
#[test]
fn status_shows_each_heartbeat_directory_and_the_quorum() {
    let cluster = cluster("");
    let dirs: Vec<String> = ["dc1", "dc2", "witness"]
        .iter()
        .map(|site| cluster.dir.join(site).display().to_string())
        .collect();
    let record = |host: &str, token: u64, state: &str| {
        format!("hacmp-safe 2 host={host} token={token} incarnation=5 counter=9 state={state}\n")
    };
    fs::create_dir(&dirs[0]).unwrap();
    fs::write(format!("{}/nodeA", dirs[0]), record("nodeA", 7, "master")).unwrap();
    fs::write(format!("{}/nodeB", dirs[0]), record("nodeB", 6, "master")).unwrap();
    fs::create_dir(&dirs[2]).unwrap();
    fs::write(format!("{}/nodeA", dirs[2]), record("nodeA", 7, "master")).unwrap();
    let mut variables = fs::read_to_string(&cluster.vars).unwrap();
    variables += &format!(
        "hacmpProfile=safe\nheartBeatDir={}\nhacmpHeartBeatDirs='{}'\n",
        dirs[0],
        dirs.join(" ")
    );
    fs::write(&cluster.vars, variables).unwrap();

    let output = hacmp(&cluster, &["status"]);
    let shown = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "nodeA's heartbeat is fresh: {shown}"
    );
    assert!(
        shown.starts_with("####")
            && shown.contains("## ONLY A BARE MAJORITY OF HEARTBEAT DIRECTORIES ANSWERS (2 of 3)"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("unreachable: {}", dirs[1])),
        "{shown}"
    );
    assert!(
        shown.contains("host nodeA, 3 heartbeat directories"),
        "{shown}"
    );
    let row = shown
        .lines()
        .find(|line| line.starts_with(&dirs[0]))
        .unwrap_or_else(|| panic!("a row for dc1: {shown}"));
    assert!(
        row.contains("reachable") && row.ends_with("master nodeA (token 7)"),
        "{row}"
    );
    assert!(
        shown.contains("quorum: 2 of 3 directories answer, 2 needed (bare majority)"),
        "{shown}"
    );

    let output = hacmp(&cluster, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["schema"], 3);
    assert_eq!(
        json["quorum"],
        serde_json::json!({"directories": 3, "reachable": 2, "majority": 2, "state": "bare majority"})
    );
    let directories = json["heartbeat_dirs"].as_array().unwrap();
    assert_eq!(directories.len(), 3);
    assert_eq!(directories[0]["path"], dirs[0]);
    assert_eq!(directories[0]["reachable"], true);
    assert!(directories[0]["latency_ms"].is_u64(), "{json}");
    assert_eq!(directories[0]["master"], "nodeA");
    assert_eq!(
        directories[0]["records"],
        serde_json::json!([
            {"host": "nodeA", "token": 7, "state": "master"},
            {"host": "nodeB", "token": 6, "state": "master"}
        ])
    );
    assert_eq!(directories[1]["reachable"], false);
    assert!(
        directories[1]["latency_ms"].is_u64(),
        "a missing directory answers at once"
    );
    assert!(
        directories[1]["error"]
            .as_str()
            .unwrap()
            .contains("No such file or directory"),
        "{json}"
    );
    assert_eq!(
        json["master"], "nodeA",
        "the youngest heartbeat over the directories"
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

/// The mistakes that run but hurt: each is a hazard of `hacmp check` (exit 1) saying what to do.
#[test]
fn check_warns_about_mistakes_the_loop_runs_with() {
    let cluster = cluster(
        "maintenanceFile=/nonexistent-hacmp-test-dir/maintenance\nfaileOverTime=7\nloopTime=2\n",
    );
    let output = hacmp(&cluster, &["check"]);
    let shown = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("  maintenanceFile: is in /nonexistent-hacmp-test-dir, which does not exist: `hacmp maintenance on` would fail just when it is needed; create the directory or choose a maintenanceFile in one\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  faileOverTime: is not more than the 5 s recheck plus loopTime (7 s), the time between a new master's first and second heartbeat: peers find it dead right after its takeover and take over again; set faileOverTime above 7\n"),
        "{shown}"
    );
}

#[test]
fn check_warns_about_etcd_with_a_short_faile_over_time() {
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cluster = cluster(&format!(
        "hacmpProfile=safe\nhacmpBackend=etcd\nhacmpEtcdEndpoints=http://{}\nhacmpEtcdPrefix=/hacmp/{}\nfaileOverTime=5\nloopTime=1\n",
        nobody.local_addr().unwrap(),
        support::unique_marker("short")
    ));
    let output = hacmp(&cluster, &["check"]);
    let shown = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("  faileOverTime: is below the 10 s docs/etcd.md asks for with hacmpBackend=etcd: an etcd leader election can outlast the lease and stop a healthy master's application; set faileOverTime to 10 or more\n"),
        "{shown}"
    );
}

/// The mistakes the loop cannot run with: `hacmp check` says invalid (exit 2) with the line.
#[test]
fn check_refuses_a_busy_loop_and_a_missing_event_command() {
    for (extra, said) in [
        (
            "loopTime=0\n",
            ":9: loopTime='0' makes the loop run without a pause",
        ),
        (
            "hacmpEventCmd=/nonexistent/hook\n",
            ":9: hacmpEventCmd='/nonexistent/hook' runs /nonexistent/hook, which is not an executable file",
        ),
    ] {
        let cluster = cluster(extra);
        let output = hacmp(&cluster, &["check"]);
        let shown = text(&output.stdout);
        assert_eq!(output.status.code(), Some(2), "{shown}");
        assert!(
            shown.contains("invalid: ") && shown.contains(said),
            "{shown}"
        );
    }
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

    fs::write(&invalid.vars, "startCmd=/x\nif then\n").unwrap();
    let output = hacmp(&invalid, &["check", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let expected = format!(
        "{}:2: bash: syntax error near unexpected token `then': `if then'",
        invalid.vars.display()
    );
    assert_eq!(json, serde_json::json!({"schema": 1, "error": expected}));
}

/// Three heartbeat directories on this machine's local disk, one of them missing: hacmp check
/// runs (a site may be down), warns about the missing one, and names the hazards: each on a
/// local filesystem, all on one filesystem. It says what becomes of heartBeatDir.
#[test]
fn check_examines_each_of_several_heartbeat_directories() {
    let cluster = cluster("");
    let dirs: Vec<String> = ["dc1", "dc2", "witness"]
        .iter()
        .map(|site| cluster.dir.join(site).display().to_string())
        .collect();
    fs::create_dir(&dirs[0]).unwrap();
    fs::create_dir(&dirs[2]).unwrap();
    let mut variables = fs::read_to_string(&cluster.vars).unwrap();
    variables += &format!(
        "hacmpProfile=safe\nheartBeatDir={}\nhacmpHeartBeatDirs='{}'\n",
        dirs[0],
        dirs.join(" ")
    );
    fs::write(&cluster.vars, variables).unwrap();

    let output = hacmp(&cluster, &["check"]);
    let shown = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        text(&output.stderr).contains(&format!(
            "hacmp: warning: hacmpHeartBeatDirs lists {}, which cannot be reached now (No such file or directory)",
            dirs[1]
        )),
        "{}",
        text(&output.stderr)
    );
    assert!(
        shown.contains(&format!("hacmpHeartBeatDirs  {}", dirs.join(" "))),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "lease: the safe loop keeps its lease in the 3 directories of hacmpHeartBeatDirs, on a majority of them; heartBeatDir ({}) is used only as one of them",
            dirs[0]
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "hacmpHeartBeatDirs: lists {}, which is on a local filesystem",
            dirs[0]
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "hacmpHeartBeatDirs: lists {} and {} and {}, which are on the same filesystem",
            dirs[0], dirs[1], dirs[2]
        )),
        "{shown}"
    );

    let output = hacmp(&cluster, &["check", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["heartbeat_dirs"], serde_json::json!(dirs));
    assert!(
        json["heart_beat_dir_fate"]
            .as_str()
            .unwrap()
            .ends_with("is used only as one of them"),
        "{json}"
    );
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

/// `hacmp status`, `maintenance` and `check` with hacmpBackend=etcd, against a real
/// three-member cluster, with etcdctl as the witness of what the cluster holds.
#[test]
fn operator_commands_with_the_etcd_backend_read_and_write_the_cluster() {
    let root = tempfile::tempdir().unwrap();
    let mut etcd =
        support::etcd::EtcdCluster::start(root.path(), &support::unique_marker("operator-etcd"));
    let prefix = format!("/hacmp/{}", support::unique_marker("operator"));
    let on_endpoints = |endpoints: &[String]| {
        cluster(&format!(
            "hacmpProfile=safe\nhacmpBackend=etcd\nhacmpEtcdEndpoints={}\nhacmpEtcdPrefix={prefix}\n",
            endpoints.join(",")
        ))
    };
    let cluster = on_endpoints(&etcd.endpoints());
    let status_json = |cluster: &Cluster| -> (Option<i32>, serde_json::Value) {
        let output = hacmp(cluster, &["status", "--json"]);
        let json = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)));
        (output.status.code(), json)
    };

    let (code, json) = status_json(&cluster);
    assert_eq!(code, Some(1), "nobody holds the leader key: {json:#}");
    assert_eq!(json["master"], serde_json::Value::Null);
    assert_eq!(json["etcd"]["quorum"], "healthy", "{json:#}");
    assert_eq!(json["etcd"]["prefix"], prefix.as_str());
    let endpoints = json["etcd"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 3);
    assert!(endpoints.iter().all(|e| e["healthy"] == true), "{json:#}");
    assert_eq!(
        endpoints
            .iter()
            .filter(|e| e["member_id"] == e["leader_id"])
            .count(),
        1,
        "one member leads: {json:#}"
    );

    let lease = etcd.etcdctl(&["lease", "grant", "30"]);
    let lease = lease.split_whitespace().nth(1).expect("lease ID granted");
    etcd.etcdctl(&[
        "put",
        "--lease",
        lease,
        &format!("{prefix}/leader"),
        "nodeB",
    ]);
    let stored: serde_json::Value = serde_json::from_str(&etcd.etcdctl(&[
        "get",
        "--write-out=json",
        &format!("{prefix}/leader"),
    ]))
    .unwrap();
    let (code, json) = status_json(&cluster);
    assert_eq!(code, Some(0), "a live master: {json:#}");
    assert_eq!(json["master"], "nodeB");
    let leader_key = &json["etcd"]["leader_key"];
    assert_eq!(leader_key["holder"], "nodeB");
    assert_eq!(leader_key["token"], stored["kvs"][0]["create_revision"]);
    assert_eq!(leader_key["lease"], lease);
    let left = leader_key["lease_seconds_left"].as_i64().unwrap();
    assert!(
        (1..=30).contains(&left),
        "{left} s left of a 30-second lease"
    );

    let on = hacmp(&cluster, &["maintenance", "on", "--reason", "etcd upgrade"]);
    let said = text(&on.stdout);
    assert_eq!(on.status.code(), Some(0), "{said}{}", text(&on.stderr));
    assert!(
        said.contains(&format!(
            "maintenance switched on: etcd key {prefix}/maintenance"
        )),
        "{said}"
    );
    assert!(
        cluster.dir.join("maintenance").is_file(),
        "the file as well"
    );
    let note = etcd.etcdctl(&[
        "get",
        "--print-value-only",
        &format!("{prefix}/maintenance"),
    ]);
    assert!(note.contains("reason: etcd upgrade"), "{note}");
    let again = hacmp(&cluster, &["maintenance", "on"]);
    assert!(
        text(&again.stdout).contains(&format!(
            "maintenance was already on; left as it was: etcd key {prefix}/maintenance"
        )),
        "{}",
        text(&again.stdout)
    );
    // The key alone puts every node in maintenance: without the file, status still says so.
    fs::remove_file(cluster.dir.join("maintenance")).unwrap();
    let (code, json) = status_json(&cluster);
    assert_eq!(code, Some(3), "{json:#}");
    assert_eq!(json["maintenance"]["key"]["set"], true);
    assert!(
        json["maintenance"]["key"]["note"]
            .as_str()
            .unwrap()
            .contains("reason: etcd upgrade")
    );
    let shown = hacmp(&cluster, &["maintenance", "status"]);
    assert_eq!(shown.status.code(), Some(3));
    assert!(
        text(&shown.stdout).starts_with(&format!(
            "maintenance is ON (etcd key {prefix}/maintenance): maintenance switched on by"
        )),
        "{}",
        text(&shown.stdout)
    );
    let off = hacmp(&cluster, &["maintenance", "off"]);
    assert_eq!(off.status.code(), Some(0), "{}", text(&off.stderr));
    assert_eq!(etcd.etcdctl(&["get", &format!("{prefix}/maintenance")]), "");

    let check = hacmp(&cluster, &["check", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(check.status.code(), Some(1), "{json:#}");
    let reasons: Vec<&str> = json["hazards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "all 3 members of the cluster run on one host (127.0.0.1): its loss stops the cluster and every application with it; put one member per site"
        ],
        "{json:#}"
    );

    let narrow = on_endpoints(&[etcd.endpoint(0)]);
    let shown = text(&hacmp(&narrow, &["check"]).stdout);
    assert!(
        shown.contains(
            "hacmpEtcdEndpoints: lists 1 of the cluster's 3 members (not member1, member2)"
        ),
        "{shown}"
    );

    let leader = etcd.leader(&[0, 1, 2]);
    let follower = (leader + 1) % support::etcd::MEMBERS;
    etcd.kill(follower);
    let (code, json) = status_json(&cluster);
    assert_eq!(code, Some(0), "the master holds on: {json:#}");
    assert_eq!(json["etcd"]["quorum"], "at-risk", "{json:#}");
    assert_eq!(json["etcd"]["endpoints"][follower]["healthy"], false);
    let human = text(&hacmp(&cluster, &["status"]).stdout);
    assert!(human.contains("## ETCD QUORUM AT RISK"), "{human}");
    assert!(human.contains("nodeB holds it, token"), "{human}");
    let check = hacmp(&cluster, &["check"]);
    let shown = text(&check.stdout);
    assert!(
        shown.contains(&format!(
            "hacmpEtcdEndpoints: {} does not serve:",
            etcd.endpoint(follower)
        )),
        "{shown}"
    );
}

/// The node of `host` in a status.
fn node_named<'a>(json: &'a serde_json::Value, host: &str) -> &'a serde_json::Value {
    (json["nodes"].as_array().unwrap().iter())
        .find(|node| node["host"] == host)
        .unwrap_or_else(|| panic!("{host} is listed: {json:#}"))
}

/// A daemon on an empty heartbeat directory touches its heartbeat and waits 5 s before it
/// starts: status shows the start pending with the time left, then the master, in maintenance
/// while the file exists, then, once the daemon is killed, its daemon gone.
#[test]
fn status_shows_a_pending_start_the_master_maintenance_and_a_stopped_daemon() {
    let root = tempfile::tempdir().unwrap();
    let marker = support::unique_marker("status-pending");
    let mut node = support::node_in(root.path(), "nodeA", &marker, 10, 1);
    node.start(support::Daemon::Hacmp);

    let mut pending = serde_json::Value::Null;
    support::wait_until("a pending start", Duration::from_secs(10), || {
        pending = node.status_json();
        !pending["application"]["pending"].is_null()
    });
    assert_eq!(
        pending["application"]["pending"]["what"], "recheck before start",
        "{pending:#}"
    );
    let left = pending["application"]["pending"]["seconds_left"]
        .as_u64()
        .unwrap();
    assert!((1..=5).contains(&left), "{left} s of 5 left: {pending:#}");
    let me = node_named(&pending, "nodeA");
    assert_eq!(me["role"], "claiming", "{pending:#}");
    assert_eq!(me["daemon"]["pid"], node.daemon_pid());
    assert_eq!(me["daemon"]["running"], true);
    assert_eq!(pending["no_daemon_seen"], false);

    support::wait_for_app(&node, 15);
    let mut master = serde_json::Value::Null;
    support::wait_until("the master's status", Duration::from_secs(10), || {
        master = node.status_json();
        master["application"]["running"] == true && node_named(&master, "nodeA")["role"] == "master"
    });
    assert_eq!(node_named(&master, "nodeA")["state"], "alive");
    assert_eq!(master["application"]["pending"], serde_json::Value::Null);

    fs::write(node.dir.join("maintenance"), "").unwrap();
    support::wait_until("the maintenance role", Duration::from_secs(10), || {
        node_named(&node.status_json(), "nodeA")["role"] == "maintenance"
    });
    fs::remove_file(node.dir.join("maintenance")).unwrap();

    let pid = node.daemon_pid();
    node.kill_daemon();
    let stopped = node.status_json();
    let me = node_named(&stopped, "nodeA");
    assert_eq!(me["role"], "stopped", "{stopped:#}");
    assert_eq!(me["daemon"]["pid"], pid);
    assert_eq!(me["daemon"]["running"], false);
    node.kill_apps();
}

/// A safe standby's claim record in the heartbeat directory shows it claiming.
#[test]
fn status_shows_a_claim_in_the_heartbeat_directory() {
    let cluster = cluster("hacmpProfile=safe\n");
    let now = now_seconds();
    let record = |host: &str, token: u64, state: &str| {
        format!("hacmp-safe 2 host={host} token={token} incarnation=5 counter=9 state={state}\n")
    };
    let heartbeats = cluster.dir.join("heartbeat");
    fs::write(heartbeats.join("nodeB"), record("nodeB", 8, "claim")).unwrap();
    fs::write(heartbeats.join("nodeC"), record("nodeC", 7, "master")).unwrap();
    support::set_mtime(&heartbeats.join("nodeC"), now - 30, 0);
    let shown = text(&hacmp(&cluster, &["status"]).stdout);
    assert_eq!(row_of(&shown, "nodeB")[1], "claiming", "{shown}");
    assert_eq!(
        row_of(&shown, "nodeC")[1..3],
        ["master", "stale: a peer takes over"],
        "nodeB is alive: {shown}"
    );
    assert_eq!(
        row_of(&shown, "nodeA"),
        [
            "nodeA",
            "stopped",
            "no hacmp daemon found on this host",
            "-"
        ],
        "{shown}"
    );
    assert!(
        shown.contains("note: standbys write nothing to the heartbeat directory"),
        "{shown}"
    );
}

/// Without FILE, status reads the installed variable file ($HACMP_VARIABLE_FILE standing in for
/// /etc/hacmp/heartbeat.vars here).
#[test]
fn status_without_a_file_reads_the_installed_variable_file() {
    let cluster = cluster("");
    let status = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_hacmp"))
            .arg("status")
            .current_dir(&cluster.dir)
            .env("HACMP_VARIABLE_FILE", file)
            .env("HACMP_STATE_DIR", cluster.dir.join("state"))
            .env("NO_COLOR", "1")
            .env_remove("startCmd")
            .env_remove("pgrepProgramName")
            .output()
            .unwrap()
    };
    let installed = status(&cluster.vars);
    assert_eq!(
        installed.status.code(),
        Some(1),
        "{}",
        text(&installed.stderr)
    );
    assert!(
        text(&installed.stdout).starts_with(&format!(
            "host nodeA, heartbeat directory {}/heartbeat,",
            cluster.dir.display()
        )),
        "{}",
        text(&installed.stdout)
    );
    // No such file: the variables come from the environment, where they are missing.
    let missing = status(&cluster.dir.join("nowhere.vars"));
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stdout));
    assert!(
        text(&missing.stderr).contains("must be set, in the variable file or the environment"),
        "{}",
        text(&missing.stderr)
    );
}
