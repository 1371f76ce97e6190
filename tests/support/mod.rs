//! A harness for tests that run real daemons (hacmp or the bash original) on real processes.
//!
//! Safety: every node's application command line carries a marker unique to the test run, and
//! every pattern includes it, so no pattern can match a process the test did not start. On drop,
//! a node ends its daemon and the applications carrying its marker, by PID.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

pub mod cluster;
pub mod etcd;
pub mod fuse_fs;
pub mod oracle;
pub mod systemd;
pub mod watched;

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hacmp::pattern::Pattern;
use hacmp::real::processes;

/// The example application shipped with the project.
pub fn example_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/exampleApplication.sh")
}

/// The bash original the project replaces: `HACMP_ORIGINAL`, else the one `make test` found
/// (.ci/original records it in target/original/path). A missing original fails the test: CI
/// must never pass by skipping the comparison.
pub fn original_script() -> PathBuf {
    let record = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/original/path");
    let path = match std::env::var_os("HACMP_ORIGINAL") {
        Some(path) => PathBuf::from(path),
        None => fs::read_to_string(&record)
            .map(|text| PathBuf::from(text.trim_end_matches('\n')))
            .unwrap_or_else(|_| {
                panic!("no original heartbeat.sh: run `make original` or set HACMP_ORIGINAL")
            }),
    };
    assert!(
        path.is_file(),
        "the original heartbeat.sh is missing at {} (run `make original` or set HACMP_ORIGINAL)",
        path.display()
    );
    path
}

/// A start script that double-forks the example application with its arguments, as classic
/// daemons do: the application is an orphan from the start, out of its process group's reach.
pub const DOUBLE_FORKING_START: &str =
    "#!/bin/sh\n( ./exampleApplication.sh \"$@\" & )\nwhile :; do sleep 1; done\n";

/// Writes `DOUBLE_FORKING_START` into the node's directory; returns the startCmd that runs it
/// with the node's marker and host name, so that `app_pattern` matches what it starts.
pub fn write_double_forking_start(node: &Node) -> String {
    let script = node.dir.join("start.sh");
    fs::write(&script, DOUBLE_FORKING_START).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    format!("./start.sh {} {}", node.vars.marker, node.vars.host_name)
}

/// The PIDs of the processes whose command line contains `text` (a test's marker in it).
pub fn processes_containing(text: &str) -> Vec<u32> {
    let pattern = Pattern::new(&regex_escape(text)).unwrap();
    processes::find(&pattern, std::process::id())
}

/// SIGKILL, by PID, to every process whose command line contains `text`, which carries the
/// test's marker.
pub fn kill_processes_containing(text: &str) {
    for pid in processes_containing(text) {
        // SAFETY: kill has no memory effects; the PID carries the test's marker.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
}

/// Whether the process runs `hacmp guard`.
pub fn is_guard(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| line.ends_with(b"\0guard\0"))
}

/// The guard a daemon started: its child that runs `hacmp guard`.
pub fn guard_of(daemon: u32) -> Option<u32> {
    let children = fs::read_to_string(format!("/proc/{daemon}/task/{daemon}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .find(|pid| is_guard(*pid))
}

/// A marker no other process on the machine carries.
pub fn unique_marker(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("hacmp-test-{label}-{}-{nanos}", std::process::id())
}

/// Polls `condition` every 100 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the node runs its application and returns its PID. An instance counts once two
/// looks 300 ms apart see the same PID: while bash's `nohup` execs the script, the process
/// briefly shows another command line, or none.
pub fn wait_for_app(node: &Node, limit_seconds: u64) -> u32 {
    let what = format!("a settled application on {}", node.vars.host_name);
    let mut previous = Vec::new();
    wait_until(&what, Duration::from_secs(limit_seconds), || {
        let seen = node.app_pids();
        let settled = !seen.is_empty() && seen == previous;
        previous = seen;
        if !settled {
            std::thread::sleep(Duration::from_millis(200));
        }
        settled
    });
    assert_eq!(
        previous.len(),
        1,
        "exactly one instance on {}: {previous:?}",
        node.vars.host_name
    );
    previous[0]
}

/// A node of a cluster whose nodes all live in `root` and share `root/heartbeat` as their
/// heartbeat directory.
pub fn node_in(
    root: &Path,
    host: &str,
    marker: &str,
    faile_over_time: u64,
    loop_time: u64,
) -> Node {
    let heart_beat_dir = root.join("heartbeat");
    fs::create_dir_all(&heart_beat_dir).unwrap();
    Node::new(
        root,
        NodeVariables {
            host_name: host.to_string(),
            heart_beat_dir,
            marker: marker.to_string(),
            faile_over_time,
            loop_time,
        },
    )
}

/// The variables of one node, written the way an operator writes a variable file.
pub struct NodeVariables {
    pub host_name: String,
    pub heart_beat_dir: PathBuf,
    pub marker: String,
    pub faile_over_time: u64,
    pub loop_time: u64,
}

impl NodeVariables {
    /// The application's command line names the node too, because the test's "hosts" share one
    /// process table, where real hosts each see only their own processes.
    pub fn app_pattern(&self) -> String {
        format!("exampleApplication.sh {} {}", self.marker, self.host_name)
    }

    pub fn assignments(&self) -> Vec<(&'static str, String)> {
        vec![
            ("pgrepProgramName", self.app_pattern()),
            (
                "startCmd",
                format!("./exampleApplication.sh {} {}", self.marker, self.host_name),
            ),
            ("startCmdLogFile", "./app.log".to_string()),
            ("maintenanceFile", "./maintenance".to_string()),
            ("hostName", self.host_name.clone()),
            ("heartBeatDir", self.heart_beat_dir.display().to_string()),
            ("faileOverTime", self.faile_over_time.to_string()),
            ("loopTime", self.loop_time.to_string()),
        ]
    }
}

/// Which program runs the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    Hacmp,
    /// The original script, its variable lines replaced by the node's values as an operator
    /// edits them; everything else unchanged.
    Bash,
    /// The same edited script with its first line changed to `#!/path/to/hacmp` and executed
    /// directly, as systemd's `ExecStart=/xxxx/heartbeat.sh` runs it after the migration.
    HacmpInterpreter,
}

/// One daemon with its working directory, output files and application.
pub struct Node {
    pub vars: NodeVariables,
    pub dir: PathBuf,
    daemon: Option<Child>,
    /// Assignments added to the variable file after the eight, for `Daemon::Hacmp`.
    extra_variables: Vec<(String, String)>,
    /// Environment variables of the daemon, which its application inherits.
    environment: Vec<(String, String)>,
}

impl Node {
    /// Prepares the node's directory (with the example application) without starting it.
    pub fn new(root: &Path, vars: NodeVariables) -> Node {
        let dir = root.join(&vars.host_name);
        fs::create_dir_all(&dir).unwrap();
        fs::copy(example_app(), dir.join("exampleApplication.sh")).unwrap();
        // The daemon's state file (for `hacmp status`) stays in the test's directory.
        let state = dir.join("state").display().to_string();
        Node {
            vars,
            dir,
            daemon: None,
            extra_variables: Vec::new(),
            environment: vec![("HACMP_STATE_DIR".to_string(), state)],
        }
    }

    /// `hacmp ARGS VARIABLE-FILE` as this node's host runs it, next to its daemon's state file.
    pub fn hacmp(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hacmp"));
        command
            .args(args)
            .arg(self.dir.join("heartbeat.vars"))
            .current_dir(&self.dir)
            .env("HACMP_STATE_DIR", self.dir.join("state"))
            .env("NO_COLOR", "1");
        command
    }

    /// `hacmp status --json` as this node's host shows it.
    pub fn status_json(&self) -> serde_json::Value {
        let output = self.hacmp(&["status", "--json"]).output().unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "hacmp status --json: {error}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }

    /// Adds an assignment (such as `hacmpProfile`) to the variable file of `Daemon::Hacmp`.
    pub fn set_variable(&mut self, name: &str, value: &str) {
        self.extra_variables
            .push((name.to_string(), value.to_string()));
    }

    /// Sets a variable in the daemon's environment from its next start on.
    /// Gives the node a runtime directory as systemd's RuntimeDirectoryMode=0700 makes it, so
    /// that a restarted daemon can reattach to its guard.
    pub fn give_runtime_directory(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let runtime = self.dir.join("run");
        fs::create_dir(&runtime).unwrap();
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
        self.set_env("RUNTIME_DIRECTORY", runtime.to_str().unwrap());
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        self.environment.push((name.to_string(), value.to_string()));
    }

    pub fn start(&mut self, daemon: Daemon) {
        assert!(self.daemon.is_none(), "the node is already running");
        let stdout = fs::File::create(self.dir.join("daemon.out")).unwrap();
        let stderr = fs::File::create(self.dir.join("daemon.err")).unwrap();
        let mut command = match daemon {
            Daemon::Hacmp => {
                let file = self.dir.join("heartbeat.vars");
                let text: String = self
                    .vars
                    .assignments()
                    .into_iter()
                    .chain(
                        self.extra_variables
                            .iter()
                            .map(|(name, value)| (name.as_str(), value.clone())),
                    )
                    .map(|(name, value)| format!("{name}='{value}'\n"))
                    .collect();
                fs::write(&file, text).unwrap();
                let mut command = Command::new(env!("CARGO_BIN_EXE_hacmp"));
                command.arg("run").arg(file);
                command
            }
            Daemon::Bash => {
                let script = self.dir.join("heartbeat.sh");
                fs::write(&script, self.edited_original()).unwrap();
                let mut command = Command::new("bash");
                command.arg(script);
                command
            }
            Daemon::HacmpInterpreter => Command::new(self.write_interpreted_script()),
        };
        assert!(
            daemon == Daemon::Hacmp || self.extra_variables.is_empty(),
            "extra variables are written only into the variable file of Daemon::Hacmp"
        );
        let child = command
            .envs(self.environment.iter().cloned())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
    }

    /// Writes the edited original with its first line changed to `#!/path/to/hacmp`, as an
    /// operator migrates, and returns its path.
    pub fn write_interpreted_script(&self) -> PathBuf {
        let script = self.dir.join("heartbeat.sh");
        let edited = self.edited_original();
        let (first_line, rest) = edited.split_once('\n').unwrap();
        assert!(
            first_line.starts_with("#!"),
            "the original starts with a #! line"
        );
        let interpreted = format!("#!{}\n{rest}", env!("CARGO_BIN_EXE_hacmp"));
        fs::write(&script, interpreted).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    /// The original script with each variable line set to this node's value.
    fn edited_original(&self) -> String {
        let original = fs::read_to_string(original_script()).unwrap();
        let assignments = self.vars.assignments();
        original
            .lines()
            .map(|line| {
                let assigned = assignments
                    .iter()
                    .find(|(name, _)| line.starts_with(&format!("{name}=")));
                match assigned {
                    Some((name, value)) => format!("{name}='{value}'\n"),
                    None => format!("{line}\n"),
                }
            })
            .collect()
    }

    pub fn daemon_running(&self) -> bool {
        self.daemon.is_some()
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("the daemon is running").id()
    }

    /// Ends the daemon with SIGKILL, as a host crash would; its application is left alone.
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The PIDs of this node's application instances.
    pub fn app_pids(&self) -> Vec<u32> {
        let pattern = Pattern::new(&regex_escape(&self.vars.app_pattern())).unwrap();
        processes::find(&pattern, std::process::id())
    }

    /// Kills every application instance of this node with SIGKILL and waits until they are
    /// gone: a killed process keeps its command line until the kernel gets to it, and on a busy
    /// machine a test could otherwise take the dying instance for a running one.
    pub fn kill_apps(&self) {
        let killed = self.signal_apps();
        wait_until(
            "the killed instances to end",
            Duration::from_secs(10),
            || {
                let running = self.app_pids();
                killed.iter().all(|pid| !running.contains(pid))
            },
        );
    }

    /// Sends `signal` (SIGSTOP, SIGCONT) to the daemon, which keeps running.
    pub fn pause_or_resume_daemon(&self, signal: libc::c_int) {
        assert!(
            signal == libc::SIGSTOP || signal == libc::SIGCONT,
            "the daemon is only paused or resumed; other signals end it (signal_daemon)"
        );
        // SAFETY: kill has no memory effects; the PID is our own child's, not yet reaped.
        unsafe { libc::kill(self.daemon_pid() as libc::pid_t, signal) };
    }

    /// Sends `signal` to the daemon and returns how it ended.
    pub fn signal_daemon(&mut self, signal: libc::c_int) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("the daemon is running");
        // SAFETY: kill has no memory effects; the PID is our own child's, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        child.wait().unwrap()
    }

    /// Sends SIGKILL to every application instance of this node; returns their PIDs.
    fn signal_apps(&self) -> Vec<u32> {
        let pids = self.app_pids();
        for &pid in &pids {
            // SAFETY: kill has no memory effects; the PID carries this test's marker.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        pids
    }

    /// What the daemon has printed on stdout so far, line by line.
    pub fn output(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("daemon.out"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn errors(&self) -> String {
        fs::read_to_string(self.dir.join("daemon.err")).unwrap_or_default()
    }

    pub fn output_contains(&self, line: &str) -> bool {
        self.output().iter().any(|l| l == line)
    }

    pub fn heartbeat_file(&self) -> PathBuf {
        self.vars.heart_beat_dir.join(&self.vars.host_name)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_daemon();
        // No waiting here: a timeout would panic inside a drop, perhaps during a panic.
        self.signal_apps();
    }
}

/// Escapes the characters an ERE treats specially, so a literal text matches only itself.
pub fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The PIDs of the processes whose environment holds `name=value`: every descendant of a
/// daemon started with that variable (its guard, its application), whatever their command lines.
pub fn pids_with_environment(name: &str, value: &str) -> Vec<u32> {
    /// More than any environment a test sets; longer ones are not searched past this.
    const MAX_ENVIRONMENT_BYTES: u64 = 1 << 20;
    let wanted = format!("{name}={value}").into_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let mut environment = Vec::new();
            fs::File::open(format!("/proc/{pid}/environ"))
                .and_then(|file| {
                    file.take(MAX_ENVIRONMENT_BYTES)
                        .read_to_end(&mut environment)
                })
                .is_ok()
                && environment
                    .split(|&byte| byte == 0)
                    .any(|entry| entry == wanted)
        })
        .collect()
}

/// Kills every process whose environment holds `name=value` with SIGKILL, until none is left
/// (a dying guard's application is killed by the kernel a moment later). Returns whether none is.
pub fn kill_processes_with_environment(name: &str, value: &str) -> bool {
    const ROUNDS: usize = 50;
    for _ in 0..ROUNDS {
        let pids = pids_with_environment(name, value);
        if pids.is_empty() {
            return true;
        }
        for pid in pids {
            // SAFETY: kill has no memory effects; the process carries this test's marker.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Sets the modification time of `path` itself (not of what a symbolic link points to) to
/// seconds + nanoseconds after the epoch.
pub fn set_mtime(path: &Path, seconds: i64, nanoseconds: i64) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let time = libc::timespec {
        tv_sec: seconds,
        tv_nsec: nanoseconds,
    };
    // SAFETY: a valid string and an array of two timespecs.
    let status = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            name.as_ptr(),
            [time, time].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(status, 0, "utimensat {}", path.display());
}

/// Ends every process of a cluster's test: each node's daemon (resumed first if paused) and
/// applications, then whatever else inherited `marker_variable=marker` (guards, children), and,
/// unless the test already failed, asserts that nothing outlived it.
pub fn end_every_process(nodes: &mut [Node], marker_variable: &str, marker: &str) {
    for node in nodes.iter_mut() {
        if node.daemon_running() {
            node.pause_or_resume_daemon(libc::SIGCONT);
        }
        node.kill_daemon();
        node.kill_apps();
    }
    let all_ended = kill_processes_with_environment(marker_variable, marker);
    if !std::thread::panicking() {
        assert!(
            all_ended,
            "processes outlived the test: {:?}",
            pids_with_environment(marker_variable, marker)
        );
    }
}

/// Ends every process of `node` at once with SIGKILL (daemon, guard, application: all that
/// inherited `node_variable=value`), as the loss of its host does, and returns the moment on the
/// boot clock.
pub fn lose_host(node: &mut Node, node_variable: &str, value: &str) -> Duration {
    let lost_at = hacmp::real::guard::boot_clock();
    node.kill_daemon();
    assert!(
        kill_processes_with_environment(node_variable, value),
        "processes of {} outlived its loss: {:?}",
        node.vars.host_name,
        pids_with_environment(node_variable, value)
    );
    lost_at
}
