//! A private systemd for tests: Debian's systemd as PID 1 of a new PID and mount namespace, with
//! only the test's units, driven by `nsenter … systemctl`.
//!
//! Inside the namespace, /run is a fresh tmpfs, /etc/systemd/system is the test's unit directory
//! and /lib/systemd/system an empty tmpfs (so no unit of this machine is started). systemd logs
//! nowhere: its only target here would be this machine's console. Tests learn what happened from
//! `systemctl show` and from ExecStopPost= commands, which systemd tells why a service stopped.
//! systemd runs in cgroups the harness creates for it under the hierarchies of this machine,
//! named by a unique marker.
//!
//! Cleanup holds when the test is killed: a supervisor shell (which dies with the test, by
//! PR_SET_PDEATHSIG) kills the namespace's PID 1 by its PID, which takes every process of the
//! namespace with it, and then removes the cgroup directories it created.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{unique_marker, wait_until};

const SYSTEMD: &str = "/lib/systemd/systemd";
/// The targets a service's default dependencies name; empty, since nothing else runs.
const TARGETS: [&str; 7] = [
    "default",
    "sysinit",
    "basic",
    "shutdown",
    "multi-user",
    "network-online",
    "remote-fs",
];
/// How long one systemctl call may take before the test gives up on it.
const SYSTEMCTL_LIMIT_SECONDS: u64 = 60;

pub struct PrivateSystemd {
    dir: tempfile::TempDir,
    supervisor: Child,
    /// systemd's PID as this machine sees it.
    pid: u32,
    cgroups: Vec<PathBuf>,
}

impl PrivateSystemd {
    /// Starts systemd with the units of `units` (file name, text) and waits until it answers.
    /// `Err` says why systemd cannot run here, for the test to print and skip.
    pub fn start(units: &[(String, String)]) -> Result<PrivateSystemd, String> {
        why_not_here()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let unit_dir = dir.path().join("units");
        for target in TARGETS {
            write(
                &unit_dir.join(format!("{target}.target")),
                &format!("[Unit]\nDescription={target}\n"),
            );
        }
        for (name, text) in units {
            write(&unit_dir.join(name), text);
        }
        let marker = unique_marker("systemd");
        let cgroups = cgroup_hierarchies()
            .into_iter()
            .map(|hierarchy| hierarchy.join(&marker))
            .collect::<Vec<_>>();
        let init = dir.path().join("init.sh");
        write(&init, &init_script(&cgroups, &unit_dir));
        let supervisor_script = dir.path().join("supervisor.sh");
        write(&supervisor_script, &supervisor_script_text(&cgroups, &init));
        let log = fs::File::create(dir.path().join("supervisor.log")).unwrap();
        let mut command = Command::new("/bin/bash");
        command
            .arg(&supervisor_script)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe. SIGTERM lets the supervisor clean up.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let supervisor = command.spawn().map_err(|e| e.to_string())?;
        let mut systemd = PrivateSystemd {
            pid: 0,
            dir,
            supervisor,
            cgroups,
        };
        systemd.pid = systemd.find_pid1()?;
        let answers = (0..300).any(|_| {
            let state = systemd.systemctl(&["is-system-running"]);
            let text = String::from_utf8_lossy(&state.stdout).trim().to_string();
            if matches!(text.as_str(), "running" | "degraded") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
            false
        });
        if !answers {
            return Err(format!(
                "systemd as PID {} did not reach a running state",
                systemd.pid
            ));
        }
        Ok(systemd)
    }

    /// The namespace's PID 1: the child of unshare, whose PID the supervisor writes down.
    fn find_pid1(&mut self) -> Result<u32, String> {
        let pid_file = self.dir.path().join("unshare.pid");
        let mut found = None;
        for _ in 0..100 {
            if let Some(unshare) = fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
            {
                let children =
                    fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
                        .unwrap_or_default();
                found = children
                    .split_whitespace()
                    .next()
                    .and_then(|pid| pid.parse().ok());
                let is_systemd = found.is_some_and(|pid: u32| {
                    fs::read_link(format!("/proc/{pid}/exe"))
                        .is_ok_and(|exe| exe.ends_with("systemd"))
                });
                if is_systemd {
                    return Ok(found.unwrap());
                }
            }
            if let Ok(Some(status)) = self.supervisor.try_wait() {
                return Err(format!(
                    "the namespace ended at once ({status}): {}",
                    fs::read_to_string(self.dir.path().join("supervisor.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "systemd did not start as the namespace's PID 1 (last child seen: {found:?}): {}",
            fs::read_to_string(self.dir.path().join("supervisor.log")).unwrap_or_default()
        ))
    }

    /// Runs a command inside the namespace (as `nsenter -t PID -m -p COMMAND…`).
    pub fn inside(&self, command: &[&str]) -> Output {
        Command::new("timeout")
            .arg(SYSTEMCTL_LIMIT_SECONDS.to_string())
            .args(["nsenter", "-t", &self.pid.to_string(), "-m", "-p"])
            .args(command)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn systemctl(&self, args: &[&str]) -> Output {
        let mut command = vec!["systemctl"];
        command.extend_from_slice(args);
        self.inside(&command)
    }

    /// `systemctl show -p PROPERTY --value UNIT`.
    pub fn property(&self, unit: &str, property: &str) -> String {
        let shown = self.systemctl(&["show", "-p", property, "--value", unit]);
        String::from_utf8_lossy(&shown.stdout).trim().to_string()
    }

    /// The PIDs (as this machine sees them) in a unit's control group and the groups below it.
    pub fn unit_pids(&self, unit: &str) -> Vec<u32> {
        let (Some(hierarchy), group) = (self.cgroups.first(), self.property(unit, "ControlGroup"))
        else {
            return Vec::new();
        };
        // systemd names the group from the hierarchy's root, our directory included.
        let root = hierarchy
            .parent()
            .expect("our cgroup is inside a hierarchy");
        if group.is_empty() {
            // A unit that is not running has no control group.
            return Vec::new();
        }
        let mut pids = Vec::new();
        let mut groups = vec![root.join(group.trim_start_matches('/'))];
        while let Some(group) = groups.pop() {
            let procs = fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|line| line.parse::<u32>().ok()));
            let below = fs::read_dir(&group).into_iter().flatten().flatten();
            groups.extend(below.map(|entry| entry.path()).filter(|path| path.is_dir()));
        }
        pids
    }

    /// Ends systemd and everything in its namespace, and checks that its cgroups are gone.
    pub fn stop(mut self) {
        self.end();
        let left: Vec<_> = self.cgroups.iter().filter(|c| c.exists()).collect();
        assert!(left.is_empty(), "cgroup directories left behind: {left:?}");
    }

    fn end(&mut self) {
        if self.pid != 0 {
            // SAFETY: kill has no memory effects; the PID is the namespace's PID 1, which we
            // found as our supervisor's grandchild, and the supervisor has not been reaped.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        }
        // SAFETY: kill has no memory effects; the PID is our own child's, not yet reaped.
        unsafe { libc::kill(self.supervisor.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.supervisor.wait();
    }
}

impl Drop for PrivateSystemd {
    fn drop(&mut self) {
        self.end();
    }
}

/// Why systemd cannot run as a namespace's PID 1 on this machine, if it cannot.
fn why_not_here() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root: namespaces and cgroups need root".to_string());
    }
    for program in [SYSTEMD, "/usr/bin/unshare", "/usr/bin/nsenter"] {
        if !Path::new(program).exists() {
            return Err(format!(
                "{program} is missing (install-deps installs systemd)"
            ));
        }
    }
    if cgroup_hierarchies().is_empty() {
        return Err("no writable cgroup hierarchy for systemd under /sys/fs/cgroup".to_string());
    }
    Ok(())
}

/// The hierarchies systemd uses: the unified one alone, or the hybrid pair.
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    ["systemd", "unified"]
        .iter()
        .map(|name| root.join(name))
        .filter(|path| path.join("cgroup.procs").exists())
        .collect()
}

fn init_script(cgroups: &[PathBuf], unit_dir: &Path) -> String {
    let join: String = cgroups
        .iter()
        .map(|cgroup| format!("echo $$ > '{}/cgroup.procs'\n", cgroup.display()))
        .collect();
    format!(
        "set -e\n\
         mount --make-rprivate /\n\
         {join}\
         mount -t tmpfs tmpfs /run\n\
         mount --bind '{units}' /etc/systemd/system\n\
         mount -t tmpfs tmpfs /lib/systemd/system\n\
         export container=hacmp-test\n\
         exec {SYSTEMD} --log-target=null\n",
        units = unit_dir.display(),
    )
}

fn supervisor_script_text(cgroups: &[PathBuf], init: &Path) -> String {
    let list: String = cgroups
        .iter()
        .map(|cgroup| format!(" '{}'", cgroup.display()))
        .collect();
    format!(
        r#"cgroups=({list})
mkdir "${{cgroups[@]}}" || exit 1
remove_cgroups() {{
    # The namespace's processes die a moment after its PID 1; their cgroups go once empty.
    for attempt in $(seq 100); do
        for cgroup in "${{cgroups[@]}}"; do
            [ -d "$cgroup" ] && find "$cgroup" -depth -type d -exec rmdir {{}} + 2>/dev/null
        done
        left=0
        for cgroup in "${{cgroups[@]}}"; do [ -d "$cgroup" ] && left=1; done
        [ $left = 0 ] && exit 0
        sleep 0.1
    done
    exit 1
}}
trap 'kill -KILL $namespace; wait $namespace; remove_cgroups' TERM
unshare --pid --fork --kill-child --mount --mount-proc /bin/bash '{init}' &
namespace=$!
echo $namespace > unshare.pid
wait $namespace
remove_cgroups
"#,
        init = init.display()
    )
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Polls a unit's property until it has `value`.
pub fn wait_for_property(systemd: &PrivateSystemd, unit: &str, property: &str, value: &str) {
    wait_until(
        &format!("{unit} {property}={value}"),
        Duration::from_secs(60),
        || systemd.property(unit, property) == value,
    );
}
