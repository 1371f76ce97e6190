//! The etcd cluster, for the safe profile's etcd backend (src/safe/etcd.rs) and the operator
//! commands, through etcd's JSON gateway (`/v3/...` on each member's client port) with a small
//! blocking HTTP client (gateway.rs). The loop's thread sends each request itself and waits at
//! most the request's limit: no async runtime, no thread of the client's own.
//!
//! Nothing is sent before the first request, so a cluster that cannot be reached when the
//! daemon starts is no error (the requests fail, the loop says so and goes on trying). Before
//! an endpoint's first request, and again after it failed, `GET /version` checks that it runs
//! etcd 3.4 or later. Every request carries etcd's "require leader" flag, so a member cut off
//! from the others answers "no leader" at once. A request goes first to the endpoint that
//! answered last and, when that one cannot serve, to the others in turn, all within the
//! request's limit.

mod gateway;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::EtcdSettings;
use crate::world::{EtcdAnswer, EtcdRequest, Io, KeyValue};
use gateway::Failure;

/// The pause before the endpoints are tried again (within the request's limit) after none
/// served: long enough not to spin on members that refuse at once, short enough to leave
/// several tries within a second.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The daemon's handle on the etcd cluster of `hacmpEtcdEndpoints`.
pub struct Cluster {
    settings: EtcdSettings,
    /// The HTTP client with its open connections, once the first request has set it up.
    agent: Option<ureq::Agent>,
    /// Per endpoint: its version was checked since it last failed.
    verified: Vec<bool>,
    /// The endpoint asked first: the one that answered last.
    preferred: usize,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unanswered {
    /// No endpoint could serve; each endpoint tried, with why.
    Unreachable(Vec<(String, String)>),
    /// etcd answered and refused the request.
    Refused {
        endpoint: String,
        code: i64,
        message: String,
    },
    /// The client could not be set up: a TLS file that cannot be read.
    Setup(String),
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unanswered::Unreachable(reasons) => {
                let each: Vec<String> = reasons
                    .iter()
                    .map(|(endpoint, reason)| format!("{endpoint}: {reason}"))
                    .collect();
                write!(f, "etcd unreachable: {}", each.join("; "))
            }
            Unanswered::Refused {
                endpoint, message, ..
            } => write!(f, "{endpoint}: {message}"),
            Unanswered::Setup(error) => f.write_str(error),
        }
    }
}

impl Cluster {
    /// A handle that connects at its first request.
    pub fn new(settings: EtcdSettings) -> Cluster {
        assert!(
            !settings.endpoints.is_empty(),
            "the configuration refuses an empty hacmpEtcdEndpoints"
        );
        Cluster {
            verified: vec![false; settings.endpoints.len()],
            settings,
            agent: None,
            preferred: 0,
        }
    }

    /// Sends `request` and waits at most `limit` for its answer.
    pub fn request(&mut self, request: &EtcdRequest, limit: Duration) -> Io<EtcdAnswer> {
        let (path, body) = wire_request(request);
        let answer = match self.exchange(path, &body, limit) {
            Ok(answer) => answer,
            // Revoking a lease that has expired already achieves what was asked.
            Err(Unanswered::Refused {
                code: gateway::NOT_FOUND,
                ..
            }) if matches!(request, EtcdRequest::Revoke { .. }) => {
                return Io::Done(EtcdAnswer::Done);
            }
            Err(unreachable @ Unanswered::Unreachable(_)) => {
                return Io::Failed(format!("hacmp: {unreachable}"));
            }
            Err(other) => {
                return Io::Failed(format!(
                    "hacmp: etcd: {} failed: {other}",
                    operation_name(request)
                ));
            }
        };
        match wire_answer(request, &answer) {
            Ok(answer) => Io::Done(answer),
            Err(error) => Io::Failed(format!(
                "hacmp: etcd: {} failed: {error}",
                operation_name(request)
            )),
        }
    }

    /// POSTs `body` to `path` of the endpoint asked first and, while none has answered, of the
    /// others in turn, again and again until `limit` has passed. Trying again is sound for
    /// every request of the seam: the backend dates a keep-alive by its first sending, which is
    /// earlier than any retry's; a campaign that took effect before its answer was lost shows
    /// on the retry as the key held by our own lease; the others are idempotent.
    fn exchange(&mut self, path: &str, body: &Value, limit: Duration) -> Result<Value, Unanswered> {
        let deadline = Instant::now() + limit;
        let agent = self.agent()?;
        let count = self.settings.endpoints.len();
        let mut reasons: Vec<Option<String>> = vec![None; count];
        loop {
            for offset in 0..count {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                // Half of what is left, so that a member that hangs leaves time for the
                // others; the last of a round gets all of it.
                let budget = if offset + 1 < count { left / 2 } else { left };
                let index = (self.preferred + offset) % count;
                match self.attempt(&agent, index, path, body, budget) {
                    Ok(answer) => {
                        self.preferred = index;
                        return Ok(answer);
                    }
                    Err(Failure::Refused { code, message }) => {
                        return Err(Unanswered::Refused {
                            endpoint: self.settings.endpoints[index].clone(),
                            code,
                            message,
                        });
                    }
                    // Running out of our own time says less than why the member failed
                    // before: the last try of a request often gets only milliseconds.
                    Err(Failure::TimedOut(_)) if reasons[index].is_some() => {}
                    Err(failure) => reasons[index] = Some(failure.to_string()),
                }
            }
            // The next request starts with another endpoint than the one that just failed.
            self.preferred = (self.preferred + 1) % count;
            if Instant::now() + RETRY_PAUSE >= deadline {
                break;
            }
            std::thread::sleep(RETRY_PAUSE);
        }
        let tried = self.settings.endpoints.iter().zip(reasons);
        Err(Unanswered::Unreachable(
            tried
                .filter_map(|(endpoint, reason)| Some((endpoint.clone(), reason?)))
                .collect(),
        ))
    }

    /// One POST to endpoint `index` within `budget`, after checking its version if needed.
    fn attempt(
        &mut self,
        agent: &ureq::Agent,
        index: usize,
        path: &str,
        body: &Value,
        budget: Duration,
    ) -> Result<Value, Failure> {
        let started = Instant::now();
        let endpoint = &self.settings.endpoints[index];
        if !self.verified[index] {
            gateway::probe_version(agent, endpoint, budget)?;
        }
        let left = budget.saturating_sub(started.elapsed());
        let answer = gateway::post(agent, endpoint, path, body, true, left);
        self.verified[index] = matches!(answer, Ok(_) | Err(Failure::Refused { .. }));
        answer
    }

    /// The HTTP client, set up at the first request (reading the TLS files) and kept.
    fn agent(&mut self) -> Result<ureq::Agent, Unanswered> {
        if self.agent.is_none() {
            let agent = gateway::agent(self.settings.tls.as_ref()).map_err(Unanswered::Setup)?;
            self.agent = Some(agent);
        }
        Ok(self.agent.clone().expect("set up just now"))
    }

    /// Reads `key`; `None` when it does not exist.
    fn read_key(&mut self, key: &str, limit: Duration) -> Result<Option<KeyValue>, String> {
        let (path, body) = wire_request(&EtcdRequest::Get {
            key: key.to_string(),
        });
        let answer = self
            .exchange(path, &body, limit)
            .map_err(|error| error.to_string())?;
        first_key_value(&answer)
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

/// The gateway's path and JSON body of one request of the seam.
fn wire_request(request: &EtcdRequest) -> (&'static str, Value) {
    let key = |key: &str| json!({ "key": gateway::encode(key) });
    // A transaction on the key's create revision: `If CreateRevision(key) == revision`.
    let created_at = |key: &str, revision: i64| {
        json!([{
            "key": gateway::encode(key),
            "target": "CREATE",
            "result": "EQUAL",
            "create_revision": revision.to_string(),
        }])
    };
    match request {
        EtcdRequest::Grant { ttl } => ("/v3/lease/grant", json!({ "TTL": ttl.to_string() })),
        // The gateway sends the one message to the stream and ends it: a one-shot keep-alive.
        EtcdRequest::KeepAlive { id } => ("/v3/lease/keepalive", json!({ "ID": id.to_string() })),
        EtcdRequest::Revoke { id } => ("/v3/lease/revoke", json!({ "ID": id.to_string() })),
        EtcdRequest::Campaign {
            key: name,
            value,
            lease,
        } => (
            "/v3/kv/txn",
            json!({
                "compare": created_at(name, 0),
                // Lease 0 puts the key without a lease: `hacmp maintenance on` creates its key so.
                "success": [{ "request_put": {
                    "key": gateway::encode(name),
                    "value": gateway::encode(value),
                    "lease": lease.to_string(),
                } }],
                "failure": [{ "request_range": key(name) }],
            }),
        ),
        EtcdRequest::Resign {
            key: name,
            create_revision,
        } => (
            "/v3/kv/txn",
            json!({
                "compare": created_at(name, *create_revision),
                "success": [{ "request_delete_range": key(name) }],
            }),
        ),
        EtcdRequest::Get { key: name } => ("/v3/kv/range", key(name)),
        EtcdRequest::Put { key: name, value } => (
            "/v3/kv/put",
            json!({ "key": gateway::encode(name), "value": gateway::encode(value) }),
        ),
        EtcdRequest::Delete { key: name } => ("/v3/kv/deleterange", key(name)),
    }
}

/// etcd's answer to `request` as the seam defines it (src/world.rs).
fn wire_answer(request: &EtcdRequest, answer: &Value) -> Result<EtcdAnswer, String> {
    match request {
        EtcdRequest::Grant { .. } => match answer["error"].as_str() {
            Some(error) if !error.is_empty() => Err(error.to_string()),
            _ => Ok(EtcdAnswer::Lease {
                id: gateway::integer(&answer["ID"])?,
                ttl: gateway::integer(&answer["TTL"])?,
            }),
        },
        // etcd answers a lease it no longer has with no TTL, which the gateway leaves out: 0.
        EtcdRequest::KeepAlive { .. } => match &answer["result"] {
            Value::Null => Err(format!("the keep-alive's answer holds no result: {answer}")),
            result => Ok(EtcdAnswer::Ttl(gateway::integer(&result["TTL"])?)),
        },
        EtcdRequest::Campaign { value, lease, .. } => {
            if answer["succeeded"].as_bool().unwrap_or(false) {
                // The put's revision is the transaction's: the key's create revision.
                let revision = gateway::integer(&answer["header"]["revision"])?;
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
            let range = &answer["responses"][0]["response_range"];
            // The comparison and the read ran in one transaction: the key existed for both.
            let holder = first_key_value(range)?
                .ok_or_else(|| "etcd lost the key within a transaction".to_string())?;
            Ok(EtcdAnswer::Campaign { won: false, holder })
        }
        EtcdRequest::Get { .. } => first_key_value(answer).map(EtcdAnswer::Value),
        EtcdRequest::Revoke { .. }
        | EtcdRequest::Resign { .. }
        | EtcdRequest::Put { .. }
        | EtcdRequest::Delete { .. } => Ok(EtcdAnswer::Done),
    }
}

/// The first key of a range's answer, `None` when there is none.
fn first_key_value(range: &Value) -> Result<Option<KeyValue>, String> {
    let Some(kv) = range["kvs"].as_array().and_then(|kvs| kvs.first()) else {
        return Ok(None);
    };
    Ok(Some(KeyValue {
        value: gateway::decode(&kv["value"])?,
        create_revision: gateway::integer(&kv["create_revision"])?,
        mod_revision: gateway::integer(&kv["mod_revision"])?,
        lease: gateway::integer(&kv["lease"])?,
    }))
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

impl Cluster {
    /// Asks every endpoint for its member's status, and the cluster for its members, the leader
    /// key with its lease and the maintenance key; each request waits at most `limit`. The
    /// metrics thread keeps one `Cluster` and surveys through it every round.
    pub fn survey(&mut self, limit: Duration) -> Survey {
        let endpoints: Vec<EndpointHealth> = (0..self.settings.endpoints.len())
            .map(|index| self.endpoint_health(index, limit))
            .collect();
        let mut survey = Survey {
            quorum: quorum(&endpoints, None),
            endpoints,
            members: None,
            leader_key: None,
            maintenance_key: None,
            errors: Vec::new(),
        };
        // Ask first a member that just answered with a leader.
        let Some(serving) = survey.endpoints.iter().position(|e| e.healthy) else {
            let reasons = survey.endpoints.iter().map(|endpoint| {
                let reason = endpoint.error.clone().unwrap_or_default();
                (endpoint.endpoint.clone(), reason)
            });
            let unreachable = Unanswered::Unreachable(reasons.collect());
            survey.errors.push(unreachable.to_string());
            return survey;
        };
        self.preferred = serving;
        match self.member_list(limit) {
            Ok(listed) => survey.members = Some(listed),
            Err(error) => survey.errors.push(format!("the member list: {error}")),
        }
        let key = self.settings.leader_key();
        match self.leader_key(&key, limit) {
            Ok(held) => survey.leader_key = held,
            Err(error) => survey.errors.push(format!("{key}: {error}")),
        }
        let key = self.settings.maintenance_key();
        match self.read_key(&key, limit) {
            Ok(value) => survey.maintenance_key = value.map(|kv| kv.value),
            Err(error) => survey.errors.push(format!("{key}: {error}")),
        }
        survey.quorum = quorum(&survey.endpoints, survey.members.as_deref());
        survey
    }

    fn member_list(&mut self, limit: Duration) -> Result<Vec<Member>, String> {
        let answer = self
            .exchange("/v3/cluster/member/list", &json!({}), limit)
            .map_err(|error| error.to_string())?;
        let urls = |urls: &Value| -> Vec<String> {
            let urls = urls.as_array().into_iter().flatten();
            urls.filter_map(|url| url.as_str().map(str::to_string))
                .collect()
        };
        let members = answer["members"].as_array().into_iter().flatten();
        members
            .map(|member| {
                Ok(Member {
                    id: format!("{:x}", gateway::integer::<u64>(&member["ID"])?),
                    name: member["name"].as_str().unwrap_or("").to_string(),
                    peer_urls: urls(&member["peerURLs"]),
                    client_urls: urls(&member["clientURLs"]),
                })
            })
            .collect()
    }

    /// The leader key and how long its lease has left.
    fn leader_key(&mut self, key: &str, limit: Duration) -> Result<Option<LeaderKey>, String> {
        let Some(kv) = self.read_key(key, limit)? else {
            return Ok(None);
        };
        let ttl = json!({ "ID": kv.lease.to_string() });
        let left = self.exchange("/v3/lease/timetolive", &ttl, limit);
        Ok(Some(LeaderKey {
            holder: kv.value,
            token: kv.create_revision,
            lease: crate::safe::etcd::lease_id(kv.lease),
            lease_seconds_left: left
                .ok()
                .and_then(|answer| gateway::integer(&answer["TTL"]).ok()),
        }))
    }

    /// The status of the member behind endpoint `index`, asked of that endpoint alone and
    /// without requiring a leader, so that a member cut off from the others still says so
    /// itself.
    fn endpoint_health(&mut self, index: usize, limit: Duration) -> EndpointHealth {
        let endpoint = self.settings.endpoints[index].clone();
        let mut health = EndpointHealth {
            endpoint: endpoint.clone(),
            healthy: false,
            member_id: None,
            leader_id: None,
            raft_term: None,
            version: None,
            error: None,
        };
        let asked = self
            .agent()
            .map_err(|error| error.to_string())
            .and_then(|agent| {
                let path = "/v3/maintenance/status";
                gateway::post(&agent, &endpoint, path, &json!({}), false, limit)
                    .map_err(|failure| failure.to_string())
            });
        let status = asked.and_then(|status| {
            let version = status["version"].as_str().unwrap_or("").to_string();
            health.version = Some(version.clone());
            gateway::check_version(&version)?;
            let member: u64 = gateway::integer(&status["header"]["member_id"])?;
            let leader: u64 = gateway::integer(&status["leader"])?;
            Ok((member, leader, gateway::integer(&status["raftTerm"])?))
        });
        match status {
            Err(error) => health.error = Some(error),
            Ok((member, leader, term)) => {
                health.member_id = Some(format!("{member:x}"));
                health.raft_term = Some(term);
                if leader == 0 {
                    health.error = Some("the member has no leader".to_string());
                } else {
                    health.leader_id = Some(format!("{leader:x}"));
                    health.healthy = true;
                }
            }
        }
        health
    }
}

/// `hacmp status` and `hacmp check`, which survey once: through a client of their own.
pub fn survey(settings: &EtcdSettings, limit: Duration) -> Survey {
    Cluster::new(settings.clone()).survey(limit)
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Answers of etcd 3.4.23's gateway, as curl showed them.
    const GRANTED: &str = r#"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"1","raft_term":"2"},"ID":"4111120453646590469","TTL":"10"}"#;
    const KEPT_ALIVE: &str = r#"{"result":{"header":{"revision":"1","raft_term":"2"},"ID":"4111120453646590469","TTL":"10"}}
"#;
    const KEEP_ALIVE_OF_A_LOST_LEASE: &str =
        r#"{"result":{"header":{"revision":"1","raft_term":"2"},"ID":"123"}}"#;
    const CAMPAIGN_WON: &str = r#"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"2","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"2"}}}]}"#;
    const CAMPAIGN_LOST: &str = r#"{"header":{"revision":"2","raft_term":"2"},"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[{"key":"L3QvbGVhZGVy","create_revision":"2","mod_revision":"2","version":"1","value":"bm9kZUE=","lease":"4111120453646590469"}],"count":"1"}}]}"#;
    const NOTHING_IN_RANGE: &str = r#"{"header":{"revision":"2","raft_term":"2"}}"#;
    const VERSION: &str = r#"{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}"#;
    const NO_LEADER: &str =
        r#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#;
    const LEASE_NOT_FOUND: &str = r#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#;

    const STATUS: &str = r#"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"1","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"13668033151171901709","raftIndex":"5","raftTerm":"2","raftAppliedIndex":"5","dbSizeInUse":"16384"}"#;
    const MEMBERS: &str = r#"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","raft_term":"2"},"members":[{"ID":"13668033151171901709","name":"i21","peerURLs":["http://127.0.0.1:23801"],"clientURLs":["http://127.0.0.1:23791"]}]}"#;

    const LEASE: i64 = 4111120453646590469;
    const LIMIT: Duration = Duration::from_secs(1);

    fn decoded(request: &EtcdRequest, answer: &str) -> Result<EtcdAnswer, String> {
        wire_answer(request, &serde_json::from_str(answer.trim()).unwrap())
    }

    fn campaign() -> EtcdRequest {
        EtcdRequest::Campaign {
            key: "/t/leader".to_string(),
            value: "nodeB".to_string(),
            lease: 7,
        }
    }

    #[test]
    fn etcd_3_4_answers_read_as_the_seam_says() {
        assert_eq!(
            decoded(&EtcdRequest::Grant { ttl: 10 }, GRANTED),
            Ok(EtcdAnswer::Lease { id: LEASE, ttl: 10 })
        );
        let keep_alive = EtcdRequest::KeepAlive { id: LEASE };
        assert_eq!(decoded(&keep_alive, KEPT_ALIVE), Ok(EtcdAnswer::Ttl(10)));
        assert_eq!(
            decoded(&keep_alive, KEEP_ALIVE_OF_A_LOST_LEASE),
            Ok(EtcdAnswer::Ttl(0)),
            "a lease etcd no longer has answers without a TTL"
        );
        let won = EtcdAnswer::Campaign {
            won: true,
            holder: KeyValue {
                value: "nodeB".to_string(),
                create_revision: 2,
                mod_revision: 2,
                lease: 7,
            },
        };
        assert_eq!(decoded(&campaign(), CAMPAIGN_WON), Ok(won));
        let lost = EtcdAnswer::Campaign {
            won: false,
            holder: KeyValue {
                value: "nodeA".to_string(),
                create_revision: 2,
                mod_revision: 2,
                lease: LEASE,
            },
        };
        assert_eq!(decoded(&campaign(), CAMPAIGN_LOST), Ok(lost));
        let get = EtcdRequest::Get {
            key: "/t/leader".to_string(),
        };
        assert_eq!(decoded(&get, NOTHING_IN_RANGE), Ok(EtcdAnswer::Value(None)));
    }

    #[test]
    fn the_campaign_creates_only_where_the_key_has_no_create_revision() {
        let (path, body) = wire_request(&campaign());
        assert_eq!(path, "/v3/kv/txn");
        let key = gateway::encode("/t/leader");
        assert_eq!(
            body["compare"],
            json!([{"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}])
        );
        assert_eq!(
            body["success"][0]["request_put"],
            json!({"key": key, "value": gateway::encode("nodeB"), "lease": "7"})
        );
        assert_eq!(body["failure"][0]["request_range"], json!({ "key": key }));
    }

    #[test]
    fn etcd_older_than_3_4_is_refused() {
        for serves in ["3.4.0", "3.4.23", "3.5.17", "3.10.1", "4.0.0"] {
            assert_eq!(gateway::check_version(serves), Ok(()), "{serves}");
        }
        let old = gateway::check_version("3.3.25").unwrap_err();
        assert_eq!(
            old,
            "etcd 3.3.25 is older than 3.4, whose JSON gateway hacmp needs"
        );
        assert!(gateway::check_version("").is_err());
    }

    /// What a fake member was asked: method and path, whether the require-leader header came,
    /// and on which of its connections (numbered from 0).
    type Seen = Arc<Mutex<Vec<(String, bool, usize)>>>;

    /// How a fake member answers a request, given its method and path.
    type Answer = dyn Fn(&str) -> (u16, &'static str) + Send + Sync;

    /// A member on 127.0.0.1 that answers each request with `answer(method and path)`, keeping
    /// connections open as etcd does; it records what it was asked.
    fn member(
        answer: impl Fn(&str) -> (u16, &'static str) + Send + Sync + 'static,
    ) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Seen::default();
        let recorded = Arc::clone(&seen);
        let answer: Arc<Answer> = Arc::new(answer);
        std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                let recorded = Arc::clone(&recorded);
                let answer = Arc::clone(&answer);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.unwrap());
                    while let Some((asked, leader)) = serve_one(&mut reader, &*answer) {
                        recorded.lock().unwrap().push((asked, leader, connection));
                    }
                });
            }
        });
        (endpoint, seen)
    }

    /// Answers one request on the connection; `None` once the client has closed it.
    fn serve_one(reader: &mut BufReader<TcpStream>, answer: &Answer) -> Option<(String, bool)> {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let asked: String = line.split(' ').take(2).collect::<Vec<_>>().join(" ");
        let (mut length, mut require_leader) = (0, false);
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            require_leader |= header == "grpc-metadata-hasleader: true";
        }
        reader.read_exact(&mut vec![0; length]).unwrap();
        let (status, body) = answer(&asked);
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        // A client that gave up has closed the connection; the next read ends the loop.
        let _ = reader.get_mut().write_all(response.as_bytes());
        Some((asked, require_leader))
    }

    /// A member of etcd 3.4 that grants leases.
    fn serving(asked: &str) -> (u16, &'static str) {
        match asked {
            "GET /version" => (200, VERSION),
            "POST /v3/lease/grant" => (200, GRANTED),
            _ => (404, "404 page not found\n"),
        }
    }

    /// An endpoint where nothing listens: connections are refused at once.
    fn refusing() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    /// A member whose kernel accepts connections but that never answers (SIGSTOP); it counts
    /// the connections.
    fn hanging() -> (String, Arc<Mutex<Vec<TcpStream>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let held = Arc::new(Mutex::new(Vec::new()));
        let holding = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                holding.lock().unwrap().push(stream.unwrap());
            }
        });
        (endpoint, held)
    }

    fn cluster(endpoints: &[&str]) -> Cluster {
        Cluster::new(EtcdSettings {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            prefix: "/hacmp/test".to_string(),
            tls: None,
        })
    }

    fn timed(cluster: &mut Cluster, request: &EtcdRequest) -> Io<EtcdAnswer> {
        let started = Instant::now();
        let answer = cluster.request(request, LIMIT);
        let late = Duration::from_millis(300);
        assert!(started.elapsed() < LIMIT + late, "{:?}", started.elapsed());
        answer
    }

    #[test]
    fn a_request_goes_on_to_a_member_that_serves_and_always_requires_a_leader() {
        let (serves, seen) = member(serving);
        let (stopped, held) = hanging();
        let mut cluster = cluster(&[&refusing(), &stopped, &serves]);
        let grant = EtcdRequest::Grant { ttl: 10 };
        let granted = Io::Done(EtcdAnswer::Lease { id: LEASE, ttl: 10 });
        assert_eq!(timed(&mut cluster, &grant), granted);
        assert_eq!(timed(&mut cluster, &grant), granted);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ("GET /version".to_string(), false, 0),
                ("POST /v3/lease/grant".to_string(), true, 0),
                ("POST /v3/lease/grant".to_string(), true, 0),
            ],
            "the version once, then each request with the require-leader header, all on one connection kept open"
        );
        assert_eq!(
            held.lock().unwrap().len(),
            1,
            "the second request went straight to the member that answered the first"
        );
    }

    #[test]
    fn when_no_member_serves_the_error_names_each_and_why() {
        let (no_leader, _) = member(|asked| match asked {
            "GET /version" => (200, VERSION),
            _ => (503, NO_LEADER),
        });
        let (old, _) = member(|_| (200, r#"{"etcdserver":"3.3.25","etcdcluster":"3.3.0"}"#));
        let (gateway_off, _) = member(|asked| match asked {
            "GET /version" => (200, VERSION),
            _ => (404, "404 page not found\n"),
        });
        let refused = refusing();
        let (stopped, _) = hanging();
        let mut cluster = cluster(&[&no_leader, &old, &gateway_off, &refused, &stopped]);
        let Io::Failed(error) = timed(&mut cluster, &EtcdRequest::Grant { ttl: 10 }) else {
            panic!("a cluster without a member that serves answered");
        };
        let expected = [
            format!("hacmp: etcd unreachable: {no_leader}: etcdserver: no leader; "),
            format!("{old}: etcd 3.3.25 is older than 3.4, whose JSON gateway hacmp needs; "),
            format!(
                "{gateway_off}: /v3/lease/grant is not found: etcd's JSON gateway is off (--enable-grpc-gateway=false) or etcd is older than 3.4; "
            ),
            format!("{refused}: Connection refused"),
            format!("; {stopped}: no answer within "),
        ];
        for part in expected {
            assert!(error.contains(&part), "{part:?} is not in {error:?}");
        }
        assert!(!error.contains('\n'), "one line: {error:?}");
    }

    /// The last try of a request has only what is left of its limit; that it runs out says
    /// nothing of the member, whose earlier answer is the reason given (a CI run under load).
    #[test]
    fn a_member_that_stops_answering_is_named_with_why_it_failed_before() {
        let posts = std::sync::atomic::AtomicUsize::new(0);
        let (gateway_off, _) = member(move |asked| {
            if asked == "GET /version" {
                return (200, VERSION);
            }
            if posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                std::thread::sleep(2 * LIMIT);
            }
            (404, "404 page not found\n")
        });
        let mut cluster = cluster(&[&gateway_off]);
        let Io::Failed(error) = timed(&mut cluster, &EtcdRequest::Grant { ttl: 10 }) else {
            panic!("a member without the gateway answered");
        };
        assert_eq!(
            error,
            format!(
                "hacmp: etcd unreachable: {gateway_off}: /v3/lease/grant is not found: etcd's JSON gateway is off (--enable-grpc-gateway=false) or etcd is older than 3.4"
            )
        );
    }

    #[test]
    fn a_refusal_is_final_and_a_lost_lease_is_revoked_already() {
        let (other, others_seen) = member(serving);
        let (refusing, seen) = member(|asked| match asked {
            "GET /version" => (200, VERSION),
            _ => (404, LEASE_NOT_FOUND),
        });
        let mut cluster = cluster(&[&refusing, &other]);
        assert_eq!(
            timed(&mut cluster, &EtcdRequest::Revoke { id: 5 }),
            Io::Done(EtcdAnswer::Done)
        );
        assert_eq!(
            timed(&mut cluster, &EtcdRequest::KeepAlive { id: 5 }),
            Io::Failed(format!(
                "hacmp: etcd: keep-alive failed: {refusing}: etcdserver: requested lease not found"
            ))
        );
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert!(
            others_seen.lock().unwrap().is_empty(),
            "etcd's refusal is not asked again of another member"
        );
    }

    #[test]
    fn surveys_through_one_cluster_keep_one_connection() {
        let (alone, seen) = member(|asked| match asked {
            "GET /version" => (200, VERSION),
            "POST /v3/maintenance/status" => (200, STATUS),
            "POST /v3/cluster/member/list" => (200, MEMBERS),
            "POST /v3/kv/range" => (200, NOTHING_IN_RANGE),
            _ => (404, "404 page not found\n"),
        });
        let mut cluster = cluster(&[&alone]);
        for _ in 0..2 {
            let survey = cluster.survey(LIMIT);
            assert!(survey.errors.is_empty(), "{:?}", survey.errors);
            let endpoint = &survey.endpoints[0];
            assert!(endpoint.healthy && endpoint.member_id == endpoint.leader_id);
            assert_eq!(survey.endpoints[0].version.as_deref(), Some("3.4.23"));
            let members = survey.members.expect("the member list");
            assert_eq!(members[0].name, "i21");
            assert_eq!(members[0].id, format!("{:x}", 13668033151171901709_u64));
            assert_eq!((survey.leader_key, survey.maintenance_key), (None, None));
        }
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter().all(|(_, _, connection)| *connection == 0),
            "{seen:?}"
        );
        // A member's own status is asked without requiring a leader, so that a member cut off
        // from the others still answers; everything else requires one.
        for (asked, require_leader, _) in seen.iter() {
            let probe = asked == "POST /v3/maintenance/status" || asked == "GET /version";
            assert_eq!(*require_leader, !probe, "{asked}");
        }
    }

    #[test]
    fn a_tls_file_that_cannot_be_read_is_named_with_its_variable() {
        let missing = tempfile::tempdir().unwrap().path().join("ca.pem");
        let missing = missing.display().to_string();
        let mut cluster = Cluster::new(EtcdSettings {
            endpoints: vec![refusing().replace("http:", "https:")],
            prefix: "/hacmp/test".to_string(),
            tls: Some(crate::config::EtcdTls {
                cacert: missing.clone(),
                cert: None,
                key: None,
            }),
        });
        let Io::Failed(error) = timed(&mut cluster, &EtcdRequest::Grant { ttl: 10 }) else {
            panic!("a grant without its CA file was answered");
        };
        let expected =
            format!("hacmp: etcd: grant failed: hacmpEtcdCacert {missing} cannot be read: ");
        assert!(error.starts_with(&expected), "{error}");
    }
}
