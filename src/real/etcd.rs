//! The etcd cluster, for the safe profile's etcd backend (src/safe/etcd.rs) and the operator
//! commands, through the etcd-client crate.
//!
//! etcd-client is asynchronous and the loop is not, nor should it become so. The async runtime
//! therefore lives on one thread of this module, started by the first request: connecting is
//! lazy, so a cluster that cannot be reached when the daemon starts is no error (the requests
//! fail, the loop says so and goes on trying). The loop's thread sends each request over a
//! channel and waits at most the request's limit for the answer, as `bounded.rs` does for
//! storage. On the runtime's side each request is abandoned at the same limit, so requests to a
//! hung member never pile up; and at most MAX_IN_FLIGHT are outstanding at once, beyond which
//! requests fail at once.
//!
//! Every request carries etcd's "require leader" flag: a member cut off from the others answers
//! "no leader" at once instead of holding the request, and HTTP/2 pings find a member that
//! stopped answering (SIGSTOP, a dead link) within KEEP_ALIVE_INTERVAL + KEEP_ALIVE_TIMEOUT, after
//! which the client sends to the other endpoints.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse,
};
use serde::Serialize;
use tokio::sync::mpsc as async_mpsc;

use crate::config::{EtcdSettings, EtcdTls};
use crate::world::{EtcdAnswer, EtcdRequest, Io, KeyValue};

/// How many requests may wait for an answer at once; more fail at once. The loop sends one at a
/// time, so only requests abandoned at their limit, and not yet dropped by the runtime, count.
pub const MAX_IN_FLIGHT: usize = 16;
/// How often an idle connection is pinged, and how long a ping may go unanswered before the
/// connection is taken for dead. A second each: the loop's own period is a second or more.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause before a failed request is tried again (within its limit): long enough not to spin
/// on a member that refuses at once, short enough to leave several tries within a second.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How long a TCP (and TLS) connection to one endpoint may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Open keep-alive streams kept between requests (one per lease; a daemon holds one lease).
const MAX_KEEP_ALIVE_STREAMS: usize = 4;

/// One request on its way to the runtime's thread.
struct Job {
    request: EtcdRequest,
    limit: Duration,
    reply: mpsc::SyncSender<Io<EtcdAnswer>>,
}

/// The daemon's handle on the etcd cluster of `hacmpEtcdEndpoints`.
pub struct Cluster {
    settings: EtcdSettings,
    /// The runtime's thread, once the first request has started it.
    jobs: Option<async_mpsc::UnboundedSender<Job>>,
    in_flight: Arc<AtomicUsize>,
}

impl Cluster {
    /// A handle that connects at its first request.
    pub fn new(settings: EtcdSettings) -> Cluster {
        Cluster {
            settings,
            jobs: None,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Sends `request` and waits at most `limit` for its answer.
    pub fn request(&mut self, request: &EtcdRequest, limit: Duration) -> Io<EtcdAnswer> {
        if self.in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            return Io::Failed(format!(
                "hacmp: etcd: {MAX_IN_FLIGHT} requests are still unanswered; not sending more"
            ));
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            request: request.clone(),
            limit,
            reply,
        };
        let jobs = match &self.jobs {
            Some(jobs) if !jobs.is_closed() => jobs,
            _ => match self.start_runtime() {
                Ok(jobs) => self.jobs.insert(jobs),
                Err(error) => return Io::Failed(format!("hacmp: etcd: {error}")),
            },
        };
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if jobs.send(job).is_err() {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Io::Failed("hacmp: etcd: the client's thread has ended".to_string());
        }
        answer.recv_timeout(limit).unwrap_or(Io::TimedOut)
    }

    /// Starts the thread that runs the client's runtime and returns its inbox.
    fn start_runtime(&self) -> Result<async_mpsc::UnboundedSender<Job>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|error| format!("cannot start the etcd client's runtime: {error}"))?;
        let (jobs, inbox) = async_mpsc::unbounded_channel();
        let (settings, in_flight) = (self.settings.clone(), Arc::clone(&self.in_flight));
        std::thread::Builder::new()
            .name("hacmp-etcd".to_string())
            .spawn(move || runtime.block_on(serve(settings, inbox, in_flight)))
            .map_err(|error| format!("cannot start the etcd client's thread: {error}"))?;
        Ok(jobs)
    }
}

/// The operation's name in the metrics (`hacmp_storage_operation_seconds{operation=…}`).
pub fn operation_name(request: &EtcdRequest) -> &'static str {
    match request {
        EtcdRequest::Grant { .. } => "grant",
        EtcdRequest::KeepAlive { .. } => "keep-alive",
        EtcdRequest::Revoke { .. } => "revoke",
        EtcdRequest::Campaign { .. } => "campaign",
        EtcdRequest::Resign { .. } => "resign",
        EtcdRequest::Get { .. } => "get",
        EtcdRequest::Put { .. } => "put",
        EtcdRequest::Delete { .. } => "delete",
    }
}

/// The streams of the leases this daemon keeps alive, kept open between keep-alives. A stream
/// is taken out for one keep-alive and put back only after a complete answer, so an answer that
/// came too late is never read as the answer to a later keep-alive.
type KeepAliveStreams = Arc<Mutex<HashMap<i64, (LeaseKeeper, LeaseKeepAliveStream)>>>;

/// The runtime's thread: each request becomes a task of its own, abandoned at its limit.
async fn serve(
    settings: EtcdSettings,
    mut inbox: async_mpsc::UnboundedReceiver<Job>,
    in_flight: Arc<AtomicUsize>,
) {
    let mut client: Option<Client> = None;
    let streams = KeepAliveStreams::default();
    while let Some(job) = inbox.recv().await {
        let connected = match &client {
            Some(connected) => Ok(connected.clone()),
            None => connect(&settings.endpoints, settings.tls.as_ref(), true)
                .await
                .inspect(|connected| client = Some(connected.clone())),
        };
        let (streams, in_flight) = (Arc::clone(&streams), Arc::clone(&in_flight));
        tokio::spawn(async move {
            let answer = match connected {
                Err(error) => Io::Failed(format!("hacmp: etcd: {error}")),
                Ok(client) => perform_within(&client, &job.request, job.limit, &streams).await,
            };
            let _ = job.reply.try_send(answer);
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Performs `request` within `limit`, trying again after a failure while time remains. The
/// client spreads requests over the endpoints, and one that answers "connection refused" (a
/// member that is down) would otherwise fail every request it draws until the client stops
/// drawing it; a keep-alive lost that way, round after round, lets a healthy cluster's lease run
/// out. Trying again is sound for every request of the seam: the backend dates a keep-alive by
/// its first sending, which is earlier than any retry's; a campaign that took effect before its
/// answer was lost shows on the retry as the key held by our own lease; the others are
/// idempotent.
async fn perform_within(
    client: &Client,
    request: &EtcdRequest,
    limit: Duration,
    streams: &KeepAliveStreams,
) -> Io<EtcdAnswer> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last_error = None;
    loop {
        let performed = perform(client.clone(), request, streams);
        match tokio::time::timeout_at(deadline, performed).await {
            Ok(Ok(answer)) => return Io::Done(answer),
            Ok(Err(error)) => last_error = Some(error),
            Err(_) => break,
        }
        if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
            break;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    match last_error {
        Some(error) => Io::Failed(format!(
            "hacmp: etcd: {} failed: {error}",
            operation_name(request)
        )),
        None => Io::TimedOut,
    }
}

/// A client of `endpoints`; nothing is sent yet, so an unreachable cluster is no error here.
/// `require_leader`: a member without a leader refuses requests instead of holding them.
async fn connect(
    endpoints: &[String],
    tls: Option<&EtcdTls>,
    require_leader: bool,
) -> Result<Client, String> {
    let mut options = ConnectOptions::new()
        .with_require_leader(require_leader)
        .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT)
        .with_keep_alive_while_idle(true)
        .with_connect_timeout(CONNECT_TIMEOUT);
    if let Some(tls) = tls {
        options = options.with_tls(tls_options(tls)?);
    }
    Client::connect(endpoints, Some(options))
        .await
        .map_err(|error| format!("cannot connect to etcd at {}: {error}", endpoints.join(",")))
}

/// The TLS settings of hacmpEtcdCacert, hacmpEtcdCert and hacmpEtcdKey, read from their files.
fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, String> {
    let read = |variable: &str, path: &str| {
        std::fs::read(path).map_err(|error| format!("{variable} {path} cannot be read: {error}"))
    };
    let mut options = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(read("hacmpEtcdCacert", &tls.cacert)?));
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        options = options.identity(Identity::from_pem(
            read("hacmpEtcdCert", cert)?,
            read("hacmpEtcdKey", key)?,
        ));
    }
    Ok(options)
}

/// One request, as the seam defines it (src/world.rs).
async fn perform(
    mut client: Client,
    request: &EtcdRequest,
    streams: &KeepAliveStreams,
) -> Result<EtcdAnswer, String> {
    let failed = |error: etcd_client::Error| describe(&error);
    match request {
        EtcdRequest::Grant { ttl } => {
            let ttl = i64::try_from(*ttl).map_err(|_| format!("a TTL of {ttl} s is too long"))?;
            let granted = client.lease_grant(ttl, None).await.map_err(failed)?;
            Ok(EtcdAnswer::Lease {
                id: granted.id(),
                ttl: granted.ttl(),
            })
        }
        EtcdRequest::KeepAlive { id } => keep_alive(&mut client, *id, streams).await,
        EtcdRequest::Revoke { id } => {
            lock(streams).remove(id);
            match client.lease_revoke(*id).await {
                Ok(_) => Ok(EtcdAnswer::Done),
                // Revoking a lease that has expired already achieves what was asked.
                Err(error) if error.to_string().contains("lease not found") => Ok(EtcdAnswer::Done),
                Err(error) => Err(failed(error)),
            }
        }
        EtcdRequest::Campaign { key, value, lease } => {
            // Lease 0 puts the key without a lease: `hacmp maintenance on` creates its key so.
            let put_options = (*lease != 0).then(|| PutOptions::new().with_lease(*lease));
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.as_str(), value.as_str(), put_options)])
                .or_else([TxnOp::get(key.as_str(), None)]);
            let response = client.txn(txn).await.map_err(failed)?;
            if response.succeeded() {
                // The put's revision is the transaction's: the key's create revision.
                let revision = response.header().map_or(0, |header| header.revision());
                return Ok(EtcdAnswer::Campaign {
                    won: true,
                    holder: KeyValue {
                        value: value.clone(),
                        create_revision: revision,
                        mod_revision: revision,
                        lease: *lease,
                    },
                });
            }
            let holder = response.op_responses().into_iter().find_map(|op| match op {
                TxnOpResponse::Get(get) => get.kvs().first().map(key_value),
                _ => None,
            });
            // The comparison and the get ran in one transaction: the key existed for both.
            let holder = holder.ok_or_else(|| format!("etcd lost {key} within a transaction"))?;
            Ok(EtcdAnswer::Campaign { won: false, holder })
        }
        EtcdRequest::Resign {
            key,
            create_revision,
        } => {
            let txn = Txn::new()
                .when([Compare::create_revision(
                    key.as_str(),
                    CompareOp::Equal,
                    *create_revision,
                )])
                .and_then([TxnOp::delete(key.as_str(), None)]);
            client.txn(txn).await.map_err(failed)?;
            Ok(EtcdAnswer::Done)
        }
        EtcdRequest::Get { key } => {
            let got = client
                .get(key.as_str(), None::<GetOptions>)
                .await
                .map_err(failed)?;
            Ok(EtcdAnswer::Value(got.kvs().first().map(key_value)))
        }
        EtcdRequest::Put { key, value } => {
            client
                .put(key.as_str(), value.as_str(), None)
                .await
                .map_err(failed)?;
            Ok(EtcdAnswer::Done)
        }
        EtcdRequest::Delete { key } => {
            client.delete(key.as_str(), None).await.map_err(failed)?;
            Ok(EtcdAnswer::Done)
        }
    }
}

/// One LeaseKeepAlive of lease `id`, on the lease's open stream or a new one.
async fn keep_alive(
    client: &mut Client,
    id: i64,
    streams: &KeepAliveStreams,
) -> Result<EtcdAnswer, String> {
    let taken = lock(streams).remove(&id);
    let (mut keeper, mut stream) = match taken {
        Some(open) => open,
        // Opening the stream sends a first keep-alive; its answer's TTL is not passed on, so
        // the one sent below gives it.
        None => match client.lease_keep_alive(id).await {
            Ok(open) => open,
            Err(error) if error.to_string().contains("lease not found") => {
                return Ok(EtcdAnswer::Ttl(0));
            }
            Err(error) => return Err(describe(&error)),
        },
    };
    keeper
        .keep_alive()
        .await
        .map_err(|error| describe(&error))?;
    let answer = stream.message().await.map_err(|error| describe(&error))?;
    let Some(answer) = answer else {
        return Err("etcd closed the lease's keep-alive stream".to_string());
    };
    if answer.ttl() > 0 {
        let mut open = lock(streams);
        if open.len() >= MAX_KEEP_ALIVE_STREAMS {
            open.clear();
        }
        open.insert(id, (keeper, stream));
    }
    Ok(EtcdAnswer::Ttl(answer.ttl()))
}

/// An error of the client in one line an operator can read: gRPC's message and, when a transport
/// failure lies beneath it, the innermost cause ("tcp connect error: Connection refused").
fn describe(error: &etcd_client::Error) -> String {
    let etcd_client::Error::GRpcStatus(status) = error else {
        return error.to_string();
    };
    let mut text = status.message().to_string();
    let mut innermost = None;
    let mut cause = std::error::Error::source(status);
    while let Some(found) = cause {
        innermost = Some(found.to_string());
        cause = found.source();
    }
    if let Some(innermost) = innermost.filter(|inner| !text.contains(inner.as_str())) {
        text = format!("{text}: {innermost}");
    }
    text
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map inconsistent: it holds whole entries.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn key_value(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        value: String::from_utf8_lossy(kv.value()).into_owned(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        lease: kv.lease(),
    }
}

/// One endpoint of hacmpEtcdEndpoints as `hacmp status` and `hacmp check` see it: the status
/// of the member behind it (etcdctl's `endpoint status`), or why it did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointHealth {
    pub endpoint: String,
    /// It answered and knows a leader: it can serve the loop's requests.
    pub healthy: bool,
    /// The member's id, in hexadecimal as etcdctl shows it.
    pub member_id: Option<String>,
    /// The leader the member follows (its own id when it leads); none without a leader.
    pub leader_id: Option<String>,
    pub raft_term: Option<u64>,
    pub version: Option<String>,
    /// Why the endpoint did not answer, or said it has no leader.
    pub error: Option<String>,
}

/// A member of the cluster, from its member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

/// The leader key as the cluster holds it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderKey {
    /// The holder's host name (the key's value).
    pub holder: String,
    /// The key's create revision: the holder's HACMP_FENCING_TOKEN.
    pub token: i64,
    /// The holder's etcd lease, in hexadecimal.
    pub lease: String,
    /// How long the lease has left on the etcd cluster unless renewed; none when it could not
    /// be read.
    pub lease_seconds_left: Option<i64>,
}

/// Whether the cluster can lose one more member and still answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quorum {
    /// More members are healthy than a majority needs.
    Healthy,
    /// Exactly a majority (or, counting only the endpoints probed, no more): one more failure
    /// stops the cluster, and with it every application.
    AtRisk,
    /// Fewer than a majority: nobody can hold the leader key.
    Lost,
}

/// What `hacmp status` and `hacmp check` learn from the cluster, each part with its own error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Survey {
    pub endpoints: Vec<EndpointHealth>,
    /// The member list, as any healthy endpoint gives it.
    pub members: Option<Vec<Member>>,
    /// The leader key; none when nobody holds it or it could not be read (then `errors` says).
    pub leader_key: Option<LeaderKey>,
    /// The maintenance key's value when it exists.
    pub maintenance_key: Option<String>,
    pub quorum: Quorum,
    /// What could not be read, one line each.
    pub errors: Vec<String>,
}

/// Asks every endpoint for its member's status, and the cluster for its members, the leader key
/// with its lease and the maintenance key; each request waits at most `limit`. For the operator
/// commands, which run once: the runtime lives on the calling thread for the call's duration.
pub fn survey(settings: &EtcdSettings, limit: Duration) -> Survey {
    match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime.block_on(survey_cluster(settings, limit)),
        Err(error) => Survey {
            endpoints: Vec::new(),
            members: None,
            leader_key: None,
            maintenance_key: None,
            quorum: Quorum::Lost,
            errors: vec![format!("cannot start the etcd client's runtime: {error}")],
        },
    }
}

async fn survey_cluster(settings: &EtcdSettings, limit: Duration) -> Survey {
    let tls = settings.tls.as_ref();
    let mut endpoints = Vec::with_capacity(settings.endpoints.len());
    for endpoint in &settings.endpoints {
        endpoints.push(endpoint_health(endpoint, tls, limit).await);
    }
    let mut errors = Vec::new();
    let (mut members, mut leader, mut maintenance) = (None, None, None);
    // Only the endpoints that just answered: a fresh client would send some reads to a member
    // that is down, and fail them, where the daemon's client has long learnt to avoid it.
    let serving: Vec<String> = endpoints
        .iter()
        .filter(|endpoint| endpoint.healthy)
        .map(|endpoint| endpoint.endpoint.clone())
        .collect();
    if serving.is_empty() {
        errors
            .push("no endpoint serves: the cluster has no quorum or cannot be reached".to_string());
    }
    match connect(&serving, tls, true).await {
        Err(error) if !serving.is_empty() => errors.push(error),
        Err(_) => {}
        Ok(client) => {
            match within(limit, member_list(client.clone())).await {
                Ok(listed) => members = Some(listed),
                Err(error) => errors.push(format!("the member list: {error}")),
            }
            let key = settings.leader_key();
            match within(limit, leader_key(client.clone(), key.clone(), limit)).await {
                Ok(held) => leader = held,
                Err(error) => errors.push(format!("{key}: {error}")),
            }
            let key = settings.maintenance_key();
            match within(limit, value_of(client, key.clone())).await {
                Ok(value) => maintenance = value,
                Err(error) => errors.push(format!("{key}: {error}")),
            }
        }
    }
    let quorum = quorum(&endpoints, members.as_deref());
    Survey {
        endpoints,
        members,
        leader_key: leader,
        maintenance_key: maintenance,
        quorum,
        errors,
    }
}

/// `operation`'s result, or an error once `limit` has passed.
async fn within<T>(
    limit: Duration,
    operation: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", limit.as_millis())))
}

async fn member_list(mut client: Client) -> Result<Vec<Member>, String> {
    let listed = client
        .member_list()
        .await
        .map_err(|error| describe(&error))?;
    Ok(listed
        .members()
        .iter()
        .map(|member| Member {
            id: format!("{:x}", member.id()),
            name: member.name().to_string(),
            peer_urls: member.peer_urls().to_vec(),
            client_urls: member.client_urls().to_vec(),
        })
        .collect())
}

async fn value_of(mut client: Client, key: String) -> Result<Option<String>, String> {
    let got = client
        .get(key, None)
        .await
        .map_err(|error| describe(&error))?;
    Ok(got
        .kvs()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
}

/// `settings` with only the endpoints that serve now (all of them when none does, so that the
/// requests fail with the cluster's own error): for a command that sends a few requests once,
/// on a client too fresh to have learnt which members are down.
pub fn serving(settings: &EtcdSettings, limit: Duration) -> EtcdSettings {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    else {
        return settings.clone();
    };
    let tls = settings.tls.as_ref();
    let mut serving = Vec::new();
    for endpoint in &settings.endpoints {
        if runtime
            .block_on(endpoint_health(endpoint, tls, limit))
            .healthy
        {
            serving.push(endpoint.clone());
        }
    }
    EtcdSettings {
        endpoints: if serving.is_empty() {
            settings.endpoints.clone()
        } else {
            serving
        },
        ..settings.clone()
    }
}

/// The leader key and how long its lease has left.
async fn leader_key(
    mut client: Client,
    key: String,
    limit: Duration,
) -> Result<Option<LeaderKey>, String> {
    let got = client
        .get(key, None)
        .await
        .map_err(|error| describe(&error))?;
    let Some(kv) = got.kvs().first() else {
        return Ok(None);
    };
    let left = tokio::time::timeout(limit, client.lease_time_to_live(kv.lease(), None)).await;
    Ok(Some(LeaderKey {
        holder: String::from_utf8_lossy(kv.value()).into_owned(),
        token: kv.create_revision(),
        lease: format!("{:x}", kv.lease()),
        lease_seconds_left: left.ok().and_then(Result::ok).map(|lease| lease.ttl()),
    }))
}

/// The status of the member behind one endpoint, asked of that endpoint alone and without
/// requiring a leader, so that a member cut off from the others still says so itself.
async fn endpoint_health(endpoint: &str, tls: Option<&EtcdTls>, limit: Duration) -> EndpointHealth {
    let mut health = EndpointHealth {
        endpoint: endpoint.to_string(),
        healthy: false,
        member_id: None,
        leader_id: None,
        raft_term: None,
        version: None,
        error: None,
    };
    let asked = async {
        let mut client = connect(&[endpoint.to_string()], tls, false).await?;
        client.status().await.map_err(|error| describe(&error))
    };
    match tokio::time::timeout(limit, asked).await {
        Err(_) => health.error = Some(format!("no answer within {} ms", limit.as_millis())),
        Ok(Err(error)) => health.error = Some(error),
        Ok(Ok(status)) => {
            health.member_id = status.header().map(|h| format!("{:x}", h.member_id()));
            health.raft_term = Some(status.raft_term());
            health.version = Some(status.version().to_string());
            if status.leader() == 0 {
                health.error = Some("the member has no leader".to_string());
            } else {
                health.leader_id = Some(format!("{:x}", status.leader()));
                health.healthy = true;
            }
        }
    }
    health
}

/// Whether the cluster survives one more failure, from the members that answered with a leader.
/// Without a member list, the endpoints stand for the members.
fn quorum(endpoints: &[EndpointHealth], members: Option<&[Member]>) -> Quorum {
    let healthy: BTreeSet<&str> = endpoints
        .iter()
        .filter(|endpoint| endpoint.healthy)
        .filter_map(|endpoint| endpoint.member_id.as_deref())
        .collect();
    let size = members.map_or(endpoints.len(), <[Member]>::len);
    let majority = size / 2 + 1;
    if healthy.len() < majority {
        Quorum::Lost
    } else if healthy.len() == majority {
        Quorum::AtRisk
    } else {
        Quorum::Healthy
    }
}
