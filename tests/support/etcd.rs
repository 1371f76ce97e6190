//! A real three-member etcd cluster on 127.0.0.1 for one test: Debian's etcd-server, on free
//! ports found by the test, with data directories in the test's temporary directory.
//!
//! Safety: each member is a child of the test, started with a parent death signal, so it dies
//! with the test's thread even when the test is killed; the cluster ends each member by its PID
//! when dropped. Members are driven from outside as a failure would: SIGKILL, SIGSTOP/SIGCONT
//! and a restart on the same data directory. The leader is found with etcdctl, independently of
//! the client hacmp uses.
//!
//! `EtcdNodes` adds two hacmp daemons with hacmpBackend=etcd and an oracle, for the real tests
//! (tests/etcd_real.rs) and the failover benchmark (bench/etcd_failover.rs).

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::oracle::{Instance, Oracle};
use super::watched::Watched;
use super::{Daemon, Node, NodeVariables, end_every_process, lose_host, unique_marker, wait_until};

/// Three members: the smallest cluster that survives the loss of one.
pub const MEMBERS: usize = 3;
/// How long a cluster may take to elect a leader and answer, on a loaded machine.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// etcdctl's own deadline for one command.
const ETCDCTL_TIMEOUT: &str = "--command-timeout=2s";

/// A certificate authority and the certificates it signed for a TLS cluster on 127.0.0.1: the
/// members' (serving, and talking to each other) and a client's, written by openssl as PEM.
#[derive(Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Generates a CA and its certificates in `dir` (P-256 keys, valid for a day).
    pub fn generate(dir: &Path) -> TlsFiles {
        fs::create_dir_all(dir).unwrap();
        let path = |name: &str| dir.join(name);
        let files = TlsFiles {
            ca: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server-key.pem"),
            client_cert: path("client.pem"),
            client_key: path("client-key.pem"),
        };
        let ca_key = path("ca-key.pem");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=hacmp test CA",
            "-keyout",
            &display(&ca_key),
            "-out",
            &display(&files.ca),
        ]);
        let sign = |cert: &Path, key: &Path, name: &str, usage: &str| {
            let request = dir.join(format!("{name}.csr"));
            let extensions = dir.join(format!("{name}.ext"));
            fs::write(
                &extensions,
                format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
            )
            .unwrap();
            openssl(&[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &display(key),
                "-out",
                &display(&request),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-days",
                "1",
                "-in",
                &display(&request),
                "-CA",
                &display(&files.ca),
                "-CAkey",
                &display(&ca_key),
                "-CAcreateserial",
                "-extfile",
                &display(&extensions),
                "-out",
                &display(cert),
            ]);
        };
        sign(
            &files.server_cert,
            &files.server_key,
            "member",
            "serverAuth,clientAuth",
        );
        sign(&files.client_cert, &files.client_key, "hacmp", "clientAuth");
        files
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs (make deps installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

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
    /// Clients speak TLS and must present a certificate the CA signed; `None`: plain http.
    tls: Option<TlsFiles>,
    /// More of etcd's options, for every member.
    options: Vec<String>,
}

impl EtcdCluster {
    /// Starts three members in `dir` and waits until the cluster has a leader and answers.
    pub fn start(dir: &Path, token: &str) -> EtcdCluster {
        EtcdCluster::start_with(dir, token, None)
    }

    /// The same, with clients speaking TLS and authenticated by certificate (`tls`).
    pub fn start_with(dir: &Path, token: &str, tls: Option<TlsFiles>) -> EtcdCluster {
        EtcdCluster::start_with_options(dir, token, tls, &[])
    }

    /// The same, each member with `options` besides those the cluster needs.
    pub fn start_with_options(
        dir: &Path,
        token: &str,
        tls: Option<TlsFiles>,
        options: &[&str],
    ) -> EtcdCluster {
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
            tls,
            options: options.iter().map(|option| option.to_string()).collect(),
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
        let client_url = self.endpoint(index);
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
            .args(&self.options);
        if let Some(tls) = &self.tls {
            command
                .arg(format!("--cert-file={}", tls.server_cert.display()))
                .arg(format!("--key-file={}", tls.server_key.display()))
                .arg(format!("--trusted-ca-file={}", tls.ca.display()))
                .arg("--client-cert-auth");
        }
        command
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
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.members[index].client_port)
    }

    /// etcdctl with this cluster's client certificate, when it has TLS.
    fn etcdctl_command(&self, endpoints: &str) -> Command {
        let mut command = Command::new("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"))
            .arg(ETCDCTL_TIMEOUT)
            .stdin(Stdio::null());
        if let Some(tls) = &self.tls {
            command
                .arg(format!("--cacert={}", tls.ca.display()))
                .arg(format!("--cert={}", tls.client_cert.display()))
                .arg(format!("--key={}", tls.client_key.display()));
        }
        command
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
        let output = self
            .etcdctl_command(&self.endpoint(index))
            .args(["endpoint", "status", "--write-out=json"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        parsed.as_array()?.first().cloned()
    }

    /// Runs etcdctl against the whole cluster and returns its standard output.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let output = self
            .etcdctl_command(&self.endpoints().join(","))
            .args(args)
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

/// Short enough for tests, long enough for a loaded machine: a 5-second etcd lease, a 4-second
/// lease of the guard, 1-second request deadlines (`hacmp::timing::Timing::new`).
pub const FAILE_OVER_TIME: u64 = 5;
pub const LOOP_TIME: u64 = 1;
/// Every process of a test (daemons, guards, applications) inherits this variable, set to the
/// test's marker, so that cleanup finds them all whatever their command lines.
const MARKER_VARIABLE: &str = "HACMP_ETCD_MARKER";
/// Every process of one node inherits this variable, set to the marker and the host name, so
/// that a test can end a whole host (daemon, guard, application) as a host crash does.
const NODE_VARIABLE: &str = "HACMP_ETCD_NODE";
/// Limits of the waits below: generous, because they bound a hang, not a speed.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);
pub const ACTIVE: usize = 0;
pub const STANDBY: usize = 1;
pub const HOSTS: [&str; 2] = ["nodeA", "nodeB"];

/// Two hacmp daemons with hacmpBackend=etcd on a three-member etcd cluster, and an oracle
/// watching their application instances.
///
/// The fields are dropped in this order after `Drop::drop` has ended every process: the oracle
/// stops, the etcd members are killed, the temporary directory goes last.
pub struct EtcdNodes {
    pub oracle: Oracle,
    pub nodes: Vec<Node>,
    pub etcd: EtcdCluster,
    marker: String,
    _root: tempfile::TempDir,
}

impl EtcdNodes {
    /// `endpoints(etcd, node)` gives each node's hacmpEtcdEndpoints.
    pub fn new(label: &str, endpoints: fn(&EtcdCluster, usize) -> Vec<String>) -> EtcdNodes {
        let root = tempfile::tempdir().unwrap();
        let marker = unique_marker(label);
        let etcd = EtcdCluster::start(root.path(), &marker);
        let events = root.path().join("app-events");
        let prefix = format!("/hacmp/{marker}");
        let nodes = HOSTS
            .iter()
            .enumerate()
            .map(|(index, host)| {
                let vars = NodeVariables {
                    host_name: host.to_string(),
                    // The etcd backend keeps nothing there, and it need not exist.
                    heart_beat_dir: root.path().join("no-heartbeat-directory"),
                    marker: marker.clone(),
                    faile_over_time: FAILE_OVER_TIME,
                    loop_time: LOOP_TIME,
                };
                let mut node = Node::new(root.path(), vars);
                node.set_variable("hacmpProfile", "safe");
                node.set_variable("hacmpBackend", "etcd");
                node.set_variable("hacmpEtcdEndpoints", &endpoints(&etcd, index).join(","));
                node.set_variable("hacmpEtcdPrefix", &prefix);
                node.set_env("APP_EVENTS", events.to_str().unwrap());
                node.set_env(MARKER_VARIABLE, &marker);
                node.set_env(NODE_VARIABLE, &format!("{marker}-{host}"));
                node
            })
            .collect();
        EtcdNodes {
            oracle: Oracle::start(&events, &marker),
            nodes,
            etcd,
            marker,
            _root: root,
        }
    }

    /// Both nodes on every member of the cluster.
    pub fn on_every_member(label: &str) -> EtcdNodes {
        EtcdNodes::new(label, |etcd, _| etcd.endpoints())
    }

    /// Gives both daemons another faileOverTime (the variable file's last assignment wins), for
    /// tests that measure no failover: an etcd election on a loaded machine can take longer than
    /// the default's 4-second lease, and a lease lost to it is no failure of hacmp's.
    pub fn with_faile_over_time(mut self, seconds: u64) -> EtcdNodes {
        for node in &mut self.nodes {
            node.set_variable("faileOverTime", &seconds.to_string());
        }
        self
    }

    pub fn start(&mut self, node: usize) {
        self.nodes[node].start(Daemon::Hacmp);
    }

    /// Starts the active node, waits for its application, then starts the standby and waits
    /// until it has looked at the leader key a few times; returns the active node's instance.
    pub fn start_both(&mut self) -> Instance {
        self.start(ACTIVE);
        let first = self.wait_for_instance(ACTIVE);
        self.start(STANDBY);
        self.wait_for_rounds(STANDBY, 3);
        self.assert_running(
            &[&first],
            "the standby runs nothing while the master is healthy",
        );
        first
    }

    /// Ends every process of `node` at once with SIGKILL (daemon, guard, application), as the
    /// loss of its host does, and returns the moment on the boot clock.
    pub fn lose_host(&mut self, node: usize) -> Duration {
        let value = format!("{}-{}", self.marker, HOSTS[node]);
        lose_host(&mut self.nodes[node], NODE_VARIABLE, &value)
    }
}

impl Watched for EtcdNodes {
    const WAIT_LIMIT: Duration = WAIT_LIMIT;
    const LOOP_TIME: u64 = LOOP_TIME;
    const HOSTS: &'static [&'static str] = &HOSTS;

    fn oracle(&self) -> &Oracle {
        &self.oracle
    }

    fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    fn more_report(&self) -> String {
        self.etcd.logs()
    }
}

impl Drop for EtcdNodes {
    fn drop(&mut self) {
        end_every_process(&mut self.nodes, MARKER_VARIABLE, &self.marker);
    }
}
