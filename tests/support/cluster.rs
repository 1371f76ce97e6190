//! A cluster of hacmp daemons on real processes for the chaos tests: each node sees each site's
//! heartbeat directory through a faultfs mount of its own, so that a node can lose a directory
//! its peer still sees, and an oracle independent of hacmp times every application instance.
//!
//! With one site a node's view is its `heartBeatDir`; with several, its views are
//! `hacmpHeartBeatDirs` (and `heartBeatDir` names the first of them, as a migrated host keeps
//! its old directory among the new ones).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::fuse_fs::{FaultFs, Mode};
use super::oracle::Oracle;
use super::watched::Watched;
use super::{Daemon, Node, NodeVariables, end_every_process, lose_host, unique_marker};

/// Short enough for tests, long enough for a loaded machine: a 4-second lease, 1-second
/// storage deadlines (see `hacmp::timing::Timing::new`).
pub const FAILE_OVER_TIME: u64 = 5;
pub const LOOP_TIME: u64 = 1;
/// Every process of a cluster (daemons, guards, applications) inherits this variable, set to
/// the test's marker, so that cleanup finds them all whatever their command lines.
const MARKER_VARIABLE: &str = "HACMP_CHAOS_MARKER";
/// Every process of one node inherits this variable, set to the marker and the host name, so
/// that a test can end a whole host (daemon, guard, application) as a site failure does.
const NODE_VARIABLE: &str = "HACMP_CHAOS_NODE";
/// Limits of the waits below: generous, because they bound a hang, not a speed.
pub const WAIT_LIMIT: Duration = Duration::from_secs(120);
pub const HOSTS: [&str; 2] = ["nodeA", "nodeB"];

/// Two safe-profile nodes over one or more sites, and an oracle watching their instances.
///
/// The fields are dropped in this order after `Drop::drop` has ended every process: the oracle
/// stops, the mounts are detached, the temporary directory goes last.
pub struct Cluster {
    pub oracle: Oracle,
    /// `views[node][site]`: what each node sees of each site's directory.
    pub views: Vec<Vec<FaultFs>>,
    /// Other directories on the sites' storage (`share_on_site`).
    shares: Vec<Share>,
    pub nodes: Vec<Node>,
    /// Each site's heartbeat directory itself, as its storage holds it.
    pub shared: Vec<PathBuf>,
    marker: String,
    /// Removed last, once nothing uses it.
    root: tempfile::TempDir,
}

impl Cluster {
    /// `profile` is hacmpProfile for both nodes; `sites` names the heartbeat directories.
    pub fn new(label: &str, profile: &str, sites: &[&str]) -> Cluster {
        let every_site: Vec<usize> = (0..sites.len()).collect();
        Cluster::listing(label, profile, sites, &[&every_site, &every_site])
    }

    /// A cluster whose nodes may list different heartbeat directories, as a typo or a migration
    /// half done leaves them: `listed[node]` holds the indices in `sites` of the directories in
    /// that node's hacmpHeartBeatDirs, the first also its heartBeatDir. Every node still mounts
    /// a view of every site.
    pub fn listing(label: &str, profile: &str, sites: &[&str], listed: &[&[usize]]) -> Cluster {
        assert!(!sites.is_empty(), "a cluster needs a heartbeat directory");
        assert_eq!(listed.len(), HOSTS.len(), "one list per node");
        let root = tempfile::tempdir().unwrap();
        let marker = unique_marker(label);
        let shared: Vec<PathBuf> = sites
            .iter()
            .map(|site| {
                let dir = root.path().join(format!("storage-of-{site}"));
                fs::create_dir(&dir).unwrap();
                dir
            })
            .collect();
        let events = root.path().join("app-events");
        let view = |host: &str, site: &str| match sites {
            [_] => root.path().join(format!("view-of-{host}")),
            _ => root.path().join(format!("view-of-{host}")).join(site),
        };
        let nodes: Vec<Node> = HOSTS
            .iter()
            .zip(listed)
            .map(|(host, listed)| {
                let vars = NodeVariables {
                    host_name: host.to_string(),
                    heart_beat_dir: view(host, sites[listed[0]]),
                    marker: marker.clone(),
                    faile_over_time: FAILE_OVER_TIME,
                    loop_time: LOOP_TIME,
                };
                let mut node = Node::new(root.path(), vars);
                node.set_variable("hacmpProfile", profile);
                if sites.len() > 1 {
                    let views: Vec<String> = (listed.iter())
                        .map(|&site| view(host, sites[site]).display().to_string())
                        .collect();
                    node.set_variable("hacmpHeartBeatDirs", &views.join(" "));
                }
                node.set_env("APP_EVENTS", events.to_str().unwrap());
                node.set_env(MARKER_VARIABLE, &marker);
                node.set_env(NODE_VARIABLE, &format!("{marker}-{host}"));
                node
            })
            .collect();
        let views = HOSTS
            .iter()
            .map(|host| {
                sites
                    .iter()
                    .zip(&shared)
                    .map(|(site, storage)| FaultFs::mount(storage, &view(host, site)))
                    .collect()
            })
            .collect();
        Cluster {
            oracle: Oracle::start(&events, &marker),
            views,
            shares: Vec::new(),
            nodes,
            shared,
            marker,
            root,
        }
    }

    /// Gives every node a runtime directory, so that a restarted daemon can reattach.
    pub fn with_runtime_directories(mut self) -> Cluster {
        for node in &mut self.nodes {
            node.give_runtime_directory();
        }
        self
    }

    pub fn start(&mut self, node: usize) {
        self.nodes[node].start(Daemon::Hacmp);
    }

    /// Ends every process of `node` at once with SIGKILL (daemon, guard, application), as the
    /// loss of its host does, and returns the moment on the boot clock.
    pub fn lose_host(&mut self, node: usize) -> Duration {
        let value = format!("{}-{}", self.marker, HOSTS[node]);
        lose_host(&mut self.nodes[node], NODE_VARIABLE, &value)
    }

    /// Sets how `node`'s view of `site` answers, and its views of the site's other directories.
    pub fn set_view(&self, node: usize, site: usize, mode: Mode) {
        self.views[node][site].set_mode(mode);
        for share in self.shares.iter().filter(|share| share.site == site) {
            share.views[node].set_mode(mode);
        }
    }

    /// Provides another directory, `name`, on `site`'s storage beside its heartbeat directory
    /// (where operators keep the maintenance file), which each node sees through a mount of its
    /// own that answers as its view of the site does. Returns each node's path to it.
    pub fn share_on_site(&mut self, site: usize, name: &str) -> Vec<PathBuf> {
        let root = self.root.path();
        let storage = root.join(format!("storage-of-share-{site}-{name}"));
        fs::create_dir(&storage).unwrap();
        let views: Vec<FaultFs> = HOSTS
            .iter()
            .map(|host| {
                FaultFs::mount(
                    &storage,
                    &root.join(format!("share-of-{host}-{site}-{name}")),
                )
            })
            .collect();
        let paths = views.iter().map(|view| view.path().to_path_buf()).collect();
        self.shares.push(Share { site, views });
        paths
    }
}

/// A directory on a site's storage other than its heartbeat directory.
struct Share {
    site: usize,
    /// One mount per node, in the order of `HOSTS`.
    views: Vec<FaultFs>,
}

impl Watched for Cluster {
    const WAIT_LIMIT: Duration = WAIT_LIMIT;
    const LOOP_TIME: u64 = LOOP_TIME;
    const HOSTS: &'static [&'static str] = &HOSTS;

    fn oracle(&self) -> &Oracle {
        &self.oracle
    }

    fn nodes(&self) -> &[Node] {
        &self.nodes
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Hung storage first: a process blocked on it cannot be killed until it is answered.
        let shared = self.shares.iter().flat_map(|share| &share.views);
        for view in self.views.iter().flatten().chain(shared) {
            view.set_mode(Mode::Normal);
        }
        end_every_process(&mut self.nodes, MARKER_VARIABLE, &self.marker);
    }
}

/// Restart without failover (issue 11): kill -9 of the master's daemon alone, started again at
/// once, well within its lease, over `sites`. The new daemon reattaches to the guard and renews
/// with the same token: the oracle sees the one instance the whole time, through more than a
/// lease and more than faileOverTime after the kill, and the standby never claims.
pub fn restart_within_the_lease_keeps_the_application(label: &str, sites: &[&str]) {
    const ACTIVE: usize = 0;
    const STANDBY: usize = 1;
    let mut cluster = Cluster::new(label, "safe", sites).with_runtime_directories();
    cluster.start(ACTIVE);
    let first = cluster.wait_for_instance(ACTIVE);
    cluster.start(STANDBY);
    cluster.wait_for_rounds(STANDBY, 3);

    // A claim that missed its window on a loaded machine leaves its token behind: the one that
    // counts is the last one tried, which won.
    let claimed = cluster.nodes[ACTIVE]
        .output()
        .iter()
        .rev()
        .find_map(|line| {
            line.strip_prefix("trying to be master with token ")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("the master never claimed\n{}", cluster.report()));

    cluster.nodes[ACTIVE].kill_daemon();
    cluster.start(ACTIVE);
    cluster.wait_for_rounds(ACTIVE, 2 * FAILE_OVER_TIME as usize);
    cluster.wait_for_rounds(STANDBY, 2);
    let reattached =
        format!("reattached to the application of the previous run, keeping token {claimed}");
    assert!(
        cluster.nodes[ACTIVE].output_contains(&reattached),
        "{reattached:?} is missing\n{}",
        cluster.report()
    );
    assert_eq!(
        cluster.oracle.instances(),
        std::slice::from_ref(&first),
        "one instance throughout, never restarted, never started by the standby\n{}",
        cluster.report()
    );
    cluster.assert_no_overlap();
}
