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

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse,
};
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

    pub fn endpoints(&self) -> &[String] {
        &self.settings.endpoints
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
            None => connect(&settings.endpoints, settings.tls.as_ref())
                .await
                .inspect(|connected| client = Some(connected.clone())),
        };
        let (streams, in_flight) = (Arc::clone(&streams), Arc::clone(&in_flight));
        tokio::spawn(async move {
            let answer = match connected {
                Err(error) => Io::Failed(format!("hacmp: etcd: {error}")),
                Ok(client) => {
                    let performed = perform(client, &job.request, &streams);
                    match tokio::time::timeout(job.limit, performed).await {
                        Ok(Ok(answer)) => Io::Done(answer),
                        Ok(Err(error)) => Io::Failed(format!(
                            "hacmp: etcd: {} failed: {error}",
                            operation_name(&job.request)
                        )),
                        Err(_) => Io::TimedOut,
                    }
                }
            };
            let _ = job.reply.try_send(answer);
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// A client of `endpoints`; nothing is sent yet, so an unreachable cluster is no error here.
async fn connect(endpoints: &[String], tls: Option<&EtcdTls>) -> Result<Client, String> {
    let mut options = ConnectOptions::new()
        .with_require_leader(true)
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
    let failed = |error: etcd_client::Error| error.to_string();
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
            Err(error) => return Err(error.to_string()),
        },
    };
    keeper
        .keep_alive()
        .await
        .map_err(|error| error.to_string())?;
    let answer = stream.message().await.map_err(|error| error.to_string())?;
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
