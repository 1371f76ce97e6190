//! A real three-member etcd cluster on 127.0.0.1 for one test: Debian's etcd-server, on free
//! ports found by the test, with data directories in the test's temporary directory.
//!
//! Safety: each member is a child of the test, started with a parent death signal, so it dies
//! with the test's thread even when the test is killed; the cluster ends each member by its PID
//! when dropped. Members are driven from outside as a failure would: SIGKILL, SIGSTOP/SIGCONT
//! and a restart on the same data directory. The leader is found with etcdctl, independently of
//! the client hacmp uses.

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait_until;

/// Three members: the smallest cluster that survives the loss of one.
pub const MEMBERS: usize = 3;
/// How long a cluster may take to elect a leader and answer, on a loaded machine.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// etcdctl's own deadline for one command.
const ETCDCTL_TIMEOUT: &str = "--command-timeout=2s";

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

pub struct EtcdCluster {
    members: Vec<Member>,
    /// `--initial-cluster`: every member's name and peer URL.
    initial_cluster: String,
    /// `--initial-cluster-token`: unique to the test, so that no other cluster's member could
    /// ever join this one.
    token: String,
}

impl EtcdCluster {
    /// Starts three members in `dir` and waits until the cluster has a leader and answers.
    pub fn start(dir: &Path, token: &str) -> EtcdCluster {
        let ports = free_ports(2 * MEMBERS);
        let members: Vec<Member> = (0..MEMBERS)
            .map(|index| Member {
                name: format!("member{index}"),
                client_port: ports[2 * index],
                peer_port: ports[2 * index + 1],
                data_dir: dir.join(format!("member{index}.etcd")),
                log: dir.join(format!("member{index}.log")),
                process: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            initial_cluster,
            token: token.to_string(),
        };
        for index in 0..MEMBERS {
            cluster.spawn(index);
        }
        cluster.wait_until_healthy(&[0, 1, 2]);
        cluster
    }

    fn spawn(&mut self, index: usize) {
        let member = &self.members[index];
        assert!(member.process.is_none(), "{} already runs", member.name);
        let client_url = format!("http://127.0.0.1:{}", member.client_port);
        let peer_url = format!("http://127.0.0.1:{}", member.peer_port);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .unwrap();
        let mut command = Command::new("etcd");
        command
            .arg(format!("--name={}", member.name))
            .arg(format!("--data-dir={}", member.data_dir.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster={}", self.initial_cluster))
            .arg(format!("--initial-cluster-token={}", self.token))
            .arg("--initial-cluster-state=new")
            // Nothing listens on the default metrics port, which another cluster may hold.
            .arg("--listen-metrics-urls=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: the closure runs between fork and exec and calls only prctl, which is
        // async-signal-safe and allocates nothing.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("etcd starts (Debian's etcd-server; make deps installs it)");
        self.members[index].process = Some(child);
    }

    /// Every member's client URL, as hacmpEtcdEndpoints lists them.
    pub fn endpoints(&self) -> Vec<String> {
        (0..MEMBERS).map(|index| self.endpoint(index)).collect()
    }

    pub fn endpoint(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[index].client_port)
    }

    /// Ends a member with SIGKILL, as a crash of its host would.
    pub fn kill(&mut self, index: usize) {
        let mut child = self.members[index].process.take().expect("the member runs");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts a killed member again on its data directory.
    pub fn restart(&mut self, index: usize) {
        self.spawn(index);
    }

    /// SIGSTOP (`true`) or SIGCONT: the member keeps its connections open and answers nothing.
    pub fn pause(&self, index: usize, paused: bool) {
        let child = self.members[index]
            .process
            .as_ref()
            .expect("the member runs");
        let signal = if paused { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill has no memory effects; the PID is our own child's, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    }

    /// The index of the member that each of `asked` names as the leader, once they agree.
    pub fn leader(&self, asked: &[usize]) -> usize {
        let mut leader = None;
        wait_until(
            &format!("members {asked:?} to agree on a leader\n{}", self.logs()),
            READY_LIMIT,
            || {
                leader = self.agreed_leader(asked);
                leader.is_some()
            },
        );
        leader.unwrap()
    }

    /// Waits until each of `members` answers and names the same leader.
    pub fn wait_until_healthy(&self, members: &[usize]) {
        self.leader(members);
    }

    /// The member that every asked member names as its leader, if they all answer and agree.
    fn agreed_leader(&self, asked: &[usize]) -> Option<usize> {
        let mut named = Vec::new();
        for &index in asked {
            let status = self.status(index)?;
            named.push(status["Status"]["leader"].as_u64().filter(|&id| id != 0)?);
        }
        let leader_id = *named.first()?;
        if named.iter().any(|&id| id != leader_id) {
            return None;
        }
        (0..MEMBERS).find(|&index| {
            self.members[index].process.is_some()
                && self
                    .status(index)
                    .and_then(|s| s["Status"]["header"]["member_id"].as_u64())
                    == Some(leader_id)
        })
    }

    /// `etcdctl endpoint status` of one member, as JSON.
    fn status(&self, index: usize) -> Option<serde_json::Value> {
        let output = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint(index)))
            .arg(ETCDCTL_TIMEOUT)
            .args(["endpoint", "status", "--write-out=json"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        parsed.as_array()?.first().cloned()
    }

    /// Runs etcdctl against the whole cluster and returns its standard output.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let output = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints().join(",")))
            .arg(ETCDCTL_TIMEOUT)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("etcdctl runs (Debian's etcd-client; make deps installs it)");
        assert!(
            output.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The end of each member's log, for failure messages.
    pub fn logs(&self) -> String {
        const TAIL: usize = 10;
        let mut text = String::new();
        for member in &self.members {
            let log = fs::read_to_string(&member.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            text += &format!(
                "--- etcd {} (last {TAIL} lines):\n{}\n",
                member.name,
                lines[lines.len().saturating_sub(TAIL)..].join("\n")
            );
        }
        text
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.process.take() {
                // SIGKILL ends a stopped process too; the PID is our own unreaped child's.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `count` TCP ports on 127.0.0.1 that were free a moment ago: each is bound to port 0 (the
/// kernel picks), all at once so that they differ, then released for etcd to bind.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}
