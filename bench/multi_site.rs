//! Row 5: what the safe profile costs over three heartbeat directories next to one (issue 11
//! asks for at most three times as much).
//!
//! Two idle two-node clusters run at once, one over one heartbeat directory and one over three
//! (hacmpHeartBeatDirs), each with a master running the example application and a standby.
//! The figure is each daemon's own CPU time (user and system, all its threads, so the storage
//! workers too) from /proc/PID/stat over the same window; the guard and the application are
//! other processes and are left out, since the number of directories does not change them.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::children;
use crate::report::{Row, Section};
use crate::support::{Daemon, Node, NodeVariables, unique_marker, wait_for_app, wait_until};

pub struct Settings {
    pub seconds: u64,
    pub faile_over_time: u64,
}

const LOOP_TIME: u64 = 1;
const HOSTS: [&str; 2] = ["nodeA", "nodeB"];
const SITES: [&str; 3] = ["dc1", "dc2", "witness"];
/// The target: three directories cost at most this many times one.
const TARGET_RATIO: f64 = 3.0;
/// Rounds the standby goes through before the window opens, so that its first scans (every
/// record new to it) are not counted.
const WARMUP_ROUNDS: usize = 3;

/// One idle cluster: its master and its standby.
struct Cluster {
    directories: usize,
    master: Node,
    standby: Node,
    application: u32,
}

impl Cluster {
    /// Starts a cluster over `directories` heartbeat directories in `root` and waits until the
    /// master runs the application and the standby has looked a few times.
    fn start(root: &Path, directories: usize, settings: &Settings) -> Cluster {
        let dir = root.join(format!("{directories}-directories"));
        let heartbeat_dirs: Vec<String> = SITES[..directories]
            .iter()
            .map(|site| {
                let path = dir.join(site);
                fs::create_dir_all(&path).expect("a heartbeat directory");
                path.display().to_string()
            })
            .collect();
        let marker = unique_marker(&format!("bench-{directories}-directories"));
        let mut nodes = HOSTS.map(|host| {
            let mut node = Node::new(
                &dir,
                NodeVariables {
                    host_name: host.to_string(),
                    heart_beat_dir: heartbeat_dirs[0].clone().into(),
                    marker: marker.clone(),
                    faile_over_time: settings.faile_over_time,
                    loop_time: LOOP_TIME,
                },
            );
            node.set_variable("hacmpProfile", "safe");
            if directories > 1 {
                node.set_variable("hacmpHeartBeatDirs", &heartbeat_dirs.join(" "));
            }
            node
        });
        nodes[0].start(Daemon::Hacmp);
        // The first claim waits faileOverTime, then the 5-second settle.
        let claim_limit = 3 * settings.faile_over_time + 30;
        let application = wait_for_app(&nodes[0], claim_limit);
        nodes[1].start(Daemon::Hacmp);
        let [master, standby] = nodes;
        let cluster = Cluster {
            directories,
            master,
            standby,
            application,
        };
        let warmed_up = cluster.standby_rounds() + WARMUP_ROUNDS;
        wait_until(
            "the standby's first rounds",
            Duration::from_secs(claim_limit),
            || cluster.standby_rounds() >= warmed_up,
        );
        cluster
    }

    fn standby_rounds(&self) -> usize {
        let line = format!("In monitoring loop sleep {LOOP_TIME}");
        self.standby.output().iter().filter(|l| **l == line).count()
    }

    /// Both daemons' CPU time so far: master, standby.
    fn cpu(&self) -> [Duration; 2] {
        [&self.master, &self.standby].map(|node| {
            cpu_time(node.daemon_pid()).unwrap_or_else(|| {
                panic!(
                    "{}'s daemon over {} directories ended; stderr:\n{}",
                    node.vars.host_name,
                    self.directories,
                    node.errors()
                )
            })
        })
    }

    /// A cluster that changed roles measured something else: the figures would be wrong.
    fn check_roles(&self) {
        assert_eq!(
            self.master.app_pids(),
            [self.application],
            "the master over {} directories stopped or restarted its application; its output:\n{}",
            self.directories,
            self.master.output().join("\n")
        );
        assert!(
            self.standby.app_pids().is_empty(),
            "the standby over {} directories started the application; its output:\n{}",
            self.directories,
            self.standby.output().join("\n")
        );
    }
}

/// utime + stime of the process (every thread of it) from /proc/PID/stat; `None` once it ended.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold blanks: count after it.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of proc(5); `after_name` starts at field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory effects.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(per_second > 0, "the kernel's clock tick is known");
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// Runs both clusters at once in `root` and returns the row.
pub fn measure(settings: &Settings, root: &Path, command: &str) -> Section {
    let clusters = [1, SITES.len()].map(|directories| Cluster::start(root, directories, settings));
    let before = clusters.each_ref().map(Cluster::cpu);
    let opened = Instant::now();
    while opened.elapsed() < Duration::from_secs(settings.seconds) {
        children::check_interrupted();
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = clusters.each_ref().map(Cluster::cpu);
    let window = opened.elapsed();
    clusters.iter().for_each(Cluster::check_roles);
    let per_hour = |cluster: usize, role: usize| {
        (after[cluster][role] - before[cluster][role]).as_secs_f64() * 3600.0 / window.as_secs_f64()
    };
    let [one, three] = [0, 1].map(|cluster| [per_hour(cluster, 0), per_hour(cluster, 1)]);
    drop(clusters);
    children::end_orphans();
    Section {
        rows: vec![row(one, three, window, settings, command)],
        method: method(settings),
    }
}

fn row(
    one: [f64; 2],
    three: [f64; 2],
    window: Duration,
    settings: &Settings,
    command: &str,
) -> Row {
    let figures = |cpu: [f64; 2]| format!("master {:.3} s/h, standby {:.3} s/h", cpu[0], cpu[1]);
    let ratio = |role: usize| three[role] / one[role];
    let ratios = [ratio(0), ratio(1)];
    let verdict = if ratios.iter().all(|r| *r <= TARGET_RATIO) {
        "met".to_string()
    } else {
        let worst = ratios.iter().cloned().fold(f64::NAN, f64::max);
        format!("missed, {worst:.2}×")
    };
    Row {
        what: format!(
            "5. Safe profile, idle two-node cluster (loopTime={LOOP_TIME}, faileOverTime={}): CPU time (user+sys) of each daemon per hour, three heartbeat directories against one ({:.0} s window)",
            settings.faile_over_time,
            window.as_secs_f64()
        ),
        bash: "— (one directory only)".to_string(),
        hacmp: format!("one directory: {}; three: {}", figures(one), figures(three)),
        comparison: format!(
            "three/one: master {:.2}, standby {:.2}; target ≤ 3: {verdict}",
            ratios[0], ratios[1]
        ),
        command: format!("`{command}`"),
    }
}

fn method(settings: &Settings) -> String {
    format!(
        "**Row 5** runs two idle two-node clusters of hacmp's safe profile at once for {seconds} s: \
         one over a single heartbeat directory, one over three (hacmpHeartBeatDirs), all local \
         directories of the machine, with loopTime={LOOP_TIME} and faileOverTime={faile}. In \
         each, nodeA claims, becomes master and runs the example application under its guard; \
         then nodeB starts and stays a standby, and the window opens after {WARMUP_ROUNDS} of \
         its rounds. Each daemon's own CPU time (user and system, of all its threads, the \
         storage workers included) is read from /proc/PID/stat at both ends of the window and \
         scaled to an hour; the guard and the application are other processes and are not \
         counted, since the number of directories does not change them. The benchmark checks \
         that the master kept its one application instance and the standby ran none, or fails. \
         Over three directories each round writes (master) or lists and reads (both) three \
         times as much, concurrently on per-directory workers; issue 11's target is at most \
         three times the CPU time of one directory.",
        seconds = settings.seconds,
        faile = settings.faile_over_time,
    )
}
