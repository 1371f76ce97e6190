//! The operator side of the etcd backend: the cluster as its endpoints answer, its hazards, and
//! the maintenance key.
//!
//! The status's etcd part has types of its own (`EtcdStatus`), so that the JSON schema does not
//! move with the client in `real::etcd`; `EtcdStatus::from_survey` is the one place that reads
//! that module's survey.

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{
    Hazard, LeaseStore, Look, MaintenanceSwitch, StoreDetails, StoreNode, SwitchReading, Switched,
    hazard,
};
use crate::config::{EtcdSettings, Variables};
use crate::real::etcd::{self as client, Cluster, Survey};
use crate::storage::StorageProbe;
use crate::table::{self, Tone};
use crate::world::{EtcdAnswer, EtcdRequest, Io};

/// How long the operator commands wait for each answer of the etcd cluster.
pub const ETCD_LIMIT: Duration = Duration::from_secs(2);
/// How long `hacmp maintenance` waits for each answer: a switch is worth a longer wait.
const SWITCH_LIMIT: Duration = Duration::from_secs(5);

/// The etcd cluster of hacmpEtcd*, surveyed at most once per command.
pub struct Etcd {
    settings: EtcdSettings,
    seen: OnceCell<EtcdStatus>,
}

impl Etcd {
    pub fn new(settings: EtcdSettings) -> Etcd {
        Etcd {
            settings,
            seen: OnceCell::new(),
        }
    }

    /// The cluster as it was already seen.
    pub fn seen(settings: EtcdSettings, status: EtcdStatus) -> Etcd {
        Etcd {
            settings,
            seen: OnceCell::from(status),
        }
    }

    /// The cluster as `client` surveys it now: for the metrics thread, which keeps one client.
    pub fn surveyed_through(settings: EtcdSettings, client: &mut Cluster) -> Etcd {
        let status = EtcdStatus::from_survey(&settings, client.survey(ETCD_LIMIT));
        Etcd::seen(settings, status)
    }

    fn status(&self) -> &EtcdStatus {
        self.seen.get_or_init(|| {
            EtcdStatus::from_survey(&self.settings, client::survey(&self.settings, ETCD_LIMIT))
        })
    }
}

impl LeaseStore for Etcd {
    /// The prefix: hosts may list the members' endpoints differently.
    fn identity(&self) -> String {
        format!("etcd {}", self.settings.prefix)
    }

    fn look(&self, _vars: &Variables, _now: i64) -> Look {
        let status = self.status().clone();
        let mut warnings = status.warnings();
        if !status.keys_read() {
            warnings.push(
                "the cluster did not answer every read: what status shows of the keys may be incomplete"
                    .to_string(),
            );
        }
        let nodes = (status.leader_key.iter())
            .map(|key| StoreNode {
                host: key.holder.clone(),
                role: Some("master"),
                alive: true,
                age_seconds: None,
            })
            .collect();
        Look {
            nodes,
            unseen: "etcd holds only the master's leader key: a host that stands by shows here only when its daemon runs on this host",
            master: status.leader_key.as_ref().map(|key| key.holder.clone()),
            master_alive: status.leader_key.is_some(),
            heartbeats: Vec::new(),
            maintenance: Some(SwitchReading {
                name: self.settings.maintenance_key(),
                place: MaintenanceKey::place_of(&self.settings),
                value: status.maintenance_key.clone(),
            }),
            warnings,
            details: Box::new(status),
        }
    }

    fn hazards(&self, _: &dyn StorageProbe, _: &Path) -> Vec<Hazard> {
        cluster_hazards(self.status())
    }

    fn spans_sites(&self) -> bool {
        true
    }

    fn maintenance_switch(&self) -> Option<Box<dyn MaintenanceSwitch>> {
        Some(Box::new(MaintenanceKey {
            settings: self.settings.clone(),
        }))
    }
}

/// The cluster as its endpoints answered: the etcd part of the JSON status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdStatus {
    /// hacmpEtcdPrefix.
    pub prefix: String,
    pub endpoints: Vec<Endpoint>,
    /// The member list, as any healthy endpoint gives it.
    pub members: Option<Vec<Member>>,
    /// The leader key; none when nobody holds it or it could not be read (then `errors` says).
    pub leader_key: Option<LeaderKey>,
    /// The maintenance key's value when it exists.
    pub maintenance_key: Option<String>,
    pub quorum: EtcdQuorum,
    /// What could not be read, one line each.
    pub errors: Vec<String>,
}

/// One endpoint of hacmpEtcdEndpoints: the member behind it, or why it did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
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

impl Endpoint {
    fn is_leader(&self) -> bool {
        self.member_id.is_some() && self.member_id == self.leader_id
    }
}

/// A member of the cluster, from its member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

/// The leader key as the cluster holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderKey {
    /// The holder's host name (the key's value).
    pub holder: String,
    /// The key's create revision: the holder's HACMP_FENCING_TOKEN.
    pub token: i64,
    /// The holder's etcd lease, in hexadecimal.
    pub lease: String,
    /// How long the lease has left unless renewed; none when it could not be read.
    pub lease_seconds_left: Option<i64>,
}

/// Whether the cluster can lose one more member and still answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EtcdQuorum {
    /// More members are healthy than a majority needs.
    Healthy,
    /// Exactly a majority: one more failure stops the cluster, and with it every application.
    AtRisk,
    /// Fewer than a majority: nobody can hold the leader key.
    Lost,
}

impl EtcdStatus {
    /// The survey of `real::etcd`, in the status's own terms.
    pub fn from_survey(settings: &EtcdSettings, survey: Survey) -> EtcdStatus {
        EtcdStatus {
            prefix: settings.prefix.clone(),
            endpoints: survey
                .endpoints
                .into_iter()
                .map(|e| Endpoint {
                    endpoint: e.endpoint,
                    healthy: e.healthy,
                    member_id: e.member_id,
                    leader_id: e.leader_id,
                    raft_term: e.raft_term,
                    version: e.version,
                    error: e.error,
                })
                .collect(),
            members: survey.members.map(|members| {
                members
                    .into_iter()
                    .map(|m| Member {
                        id: m.id,
                        name: m.name,
                        peer_urls: m.peer_urls,
                        client_urls: m.client_urls,
                    })
                    .collect()
            }),
            leader_key: survey.leader_key.map(|key| LeaderKey {
                holder: key.holder,
                token: key.token,
                lease: key.lease,
                lease_seconds_left: key.lease_seconds_left,
            }),
            maintenance_key: survey.maintenance_key,
            quorum: match survey.quorum {
                client::Quorum::Healthy => EtcdQuorum::Healthy,
                client::Quorum::AtRisk => EtcdQuorum::AtRisk,
                client::Quorum::Lost => EtcdQuorum::Lost,
            },
            errors: survey.errors,
        }
    }

    /// Whether the leader key and the maintenance key were both read.
    fn keys_read(&self) -> bool {
        self.errors.is_empty()
    }

    /// The members none of whose client URLs hacmpEtcdEndpoints lists: when the listed ones
    /// fail, this host loses the cluster while hosts that list the others keep it. Empty when
    /// the member list could not be read.
    fn unlisted_members(&self) -> Vec<&Member> {
        let listed = |url: &String| {
            let url = url.trim_end_matches('/');
            self.endpoints
                .iter()
                .any(|e| e.endpoint.trim_end_matches('/') == url)
        };
        let members = self.members.iter().flatten();
        members
            .filter(|member| !member.client_urls.iter().any(listed))
            .collect()
    }

    /// What an operator must know about the cluster beyond the table.
    fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self.errors.clone();
        for endpoint in self.endpoints.iter().filter(|e| !e.healthy) {
            warnings.push(format!(
                "{} is not serving: {}",
                endpoint.endpoint,
                endpoint.error.as_deref().unwrap_or("unknown error")
            ));
        }
        let unlisted = self.unlisted_members();
        if let Some(members) = self.members.as_ref().filter(|_| !unlisted.is_empty()) {
            warnings.push(format!(
                "hacmpEtcdEndpoints lists {} of the cluster's {} members: if those fail, this host loses the cluster while the others still have it",
                members.len() - unlisted.len(),
                members.len()
            ));
        }
        warnings
    }
}

impl StoreDetails for EtcdStatus {
    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut fields = serde_json::Map::new();
        fields.insert(
            "etcd".to_string(),
            serde_json::Value::Object(super::json_of(self)),
        );
        fields
    }

    /// The banner that makes a cluster about to stop, or stopped, impossible to miss.
    fn banner(&self, colour: bool) -> Option<String> {
        let lines = match self.quorum {
            EtcdQuorum::Healthy => return None,
            EtcdQuorum::AtRisk => vec![
                "ETCD QUORUM AT RISK".to_string(),
                "one more failed member stops the cluster, and every application with it"
                    .to_string(),
            ],
            EtcdQuorum::Lost => vec![
                "ETCD QUORUM LOST".to_string(),
                "nobody can hold the leader key: every guard ends its application".to_string(),
            ],
        };
        Some(table::boxed(&lines, colour))
    }

    fn place(&self) -> String {
        format!("etcd prefix {}", self.prefix)
    }

    /// Each endpoint's member, the quorum and the leader key.
    fn render(&self, colour: bool) -> String {
        let survey = self;
        let mut out = String::new();
        let mut rows = vec![
            ["ENDPOINT", "HEALTH", "MEMBER", "ROLE", "TERM", "VERSION"]
                .map(|title| (title.to_string(), Tone::Plain))
                .to_vec(),
        ];
        for endpoint in &survey.endpoints {
            let name = endpoint.member_id.as_deref().map_or(String::new(), |id| {
                let named = survey.members.iter().flatten().find(|m| m.id == id);
                named.map_or(id.to_string(), |member| format!("{} ({id})", member.name))
            });
            // Why it is down is among the warnings, whole; the table stays narrow.
            let (health, tone) = if endpoint.healthy {
                ("healthy", Tone::Good)
            } else {
                ("DOWN", Tone::Bad)
            };
            let role = match (endpoint.healthy, endpoint.is_leader()) {
                (true, true) => "leader",
                (true, false) => "follower",
                (false, _) => "",
            };
            rows.push(vec![
                (endpoint.endpoint.clone(), Tone::Plain),
                (health.to_string(), tone),
                (name, Tone::Plain),
                (role.to_string(), Tone::Plain),
                (
                    endpoint.raft_term.map_or(String::new(), |t| t.to_string()),
                    Tone::Plain,
                ),
                (endpoint.version.clone().unwrap_or_default(), Tone::Plain),
            ]);
        }
        out.push_str(&table::render(&rows, colour));
        let quorum = match survey.quorum {
            EtcdQuorum::Healthy => table::paint("healthy", Tone::Good, colour),
            EtcdQuorum::AtRisk => table::paint("AT RISK", Tone::Warning, colour),
            EtcdQuorum::Lost => table::paint("LOST", Tone::Bad, colour),
        };
        let members = survey
            .members
            .as_ref()
            .map_or("members unknown".to_string(), |m| {
                format!("{} members", m.len())
            });
        out.push_str(&format!("\nquorum:       {quorum} ({members})\n"));
        let leader = match &survey.leader_key {
            Some(key) => {
                let left = key
                    .lease_seconds_left
                    .map_or("time left unknown".to_string(), |left| {
                        format!("{left} s left")
                    });
                table::paint(
                    &format!(
                        "{} holds it, token {}, lease {} ({left})",
                        key.holder, key.token, key.lease
                    ),
                    Tone::Good,
                    colour,
                )
            }
            None if survey.keys_read() => {
                "free: the first standby to see it so takes over".to_string()
            }
            None => "unknown: the cluster did not answer".to_string(),
        };
        out.push_str(&format!("leader key:   {leader}\n"));
        out
    }
}

/// The etcd cluster's hazards: endpoints that do not serve, a member count that tolerates no
/// more failures than one member fewer, every member on one host, and members this host cannot
/// reach through hacmpEtcdEndpoints.
fn cluster_hazards(survey: &EtcdStatus) -> Vec<Hazard> {
    let mut found = Vec::new();
    for endpoint in survey.endpoints.iter().filter(|e| !e.healthy) {
        found.push(hazard(
            "hacmpEtcdEndpoints",
            format!(
                "{} does not serve: {}",
                endpoint.endpoint,
                endpoint.error.as_deref().unwrap_or("unknown error")
            ),
        ));
    }
    let Some(members) = &survey.members else {
        let why = survey.errors.join("; ");
        found.push(hazard(
            "hacmpEtcdEndpoints",
            format!("the cluster's member list cannot be read: {why}"),
        ));
        return found;
    };
    if members.len().is_multiple_of(2) {
        found.push(hazard(
            "hacmpEtcdEndpoints",
            format!(
                "the cluster has {} members: an even count survives no more failures than one member fewer ({} of {}), and a split between two sites stops it; use 3 or 5, one per site",
                members.len(),
                (members.len() - 1) / 2,
                members.len()
            ),
        ));
    }
    let hosts: BTreeSet<String> = members
        .iter()
        .flat_map(|member| member.peer_urls.iter().map(|url| url_host(url)))
        .collect();
    if members.len() > 1
        && let [host] = hosts.iter().collect::<Vec<_>>()[..]
    {
        found.push(hazard(
            "hacmpEtcdEndpoints",
            format!(
                "all {} members of the cluster run on one host ({host}): its loss stops the cluster and every application with it; put one member per site",
                members.len()
            ),
        ));
    }
    let unlisted = survey.unlisted_members();
    if !unlisted.is_empty() {
        let mut names: Vec<&str> = unlisted.iter().map(|m| m.name.as_str()).collect();
        // etcd lists members by id, which says nothing to an operator; names sort as written.
        names.sort_unstable();
        found.push(hazard(
            "hacmpEtcdEndpoints",
            format!(
                "lists {} of the cluster's {} members (not {}): if those fail, this host loses the cluster (and its application) while the others still have it; list every member",
                members.len() - unlisted.len(),
                members.len(),
                names.join(", ")
            ),
        ));
    }
    found
}

/// The host of a URL such as `https://10.0.0.1:2380`: what lies between `//` and the port.
fn url_host(url: &str) -> String {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or(authority);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_string(),
        _ => authority.to_string(),
    }
}

/// The maintenance key `{prefix}/maintenance`, which every node obeys as it obeys the file.
struct MaintenanceKey {
    settings: EtcdSettings,
}

impl MaintenanceSwitch for MaintenanceKey {
    fn name(&self) -> String {
        self.settings.maintenance_key()
    }

    fn place(&self) -> String {
        MaintenanceKey::place_of(&self.settings)
    }

    fn read(&self) -> Result<Option<String>, String> {
        let get = EtcdRequest::Get { key: self.name() };
        match self.ask(&get)? {
            EtcdAnswer::Value(value) => Ok(value.map(|kv| kv.value)),
            other => Err(format!("etcd answered {other:?} to a read")),
        }
    }

    /// Creates the key with `note` unless it exists, in one transaction, so that a note set by
    /// someone else in the meantime is kept. The key has no lease: it stays until `off`,
    /// whoever set it and whatever becomes of their host.
    fn switch_on(&self, note: &str) -> Result<Switched, String> {
        let create = EtcdRequest::Campaign {
            key: self.name(),
            value: note.to_string(),
            lease: 0,
        };
        match self.ask(&create)? {
            EtcdAnswer::Campaign { won: true, .. } => Ok(Switched::On),
            EtcdAnswer::Campaign { won: false, .. } => Ok(Switched::AlreadyOn),
            other => Err(format!("etcd answered {other:?} to a create")),
        }
    }

    fn switch_off(&self) -> Result<Switched, String> {
        if self.read()?.is_none() {
            return Ok(Switched::AlreadyOff);
        }
        self.ask(&EtcdRequest::Delete { key: self.name() })?;
        Ok(Switched::Off)
    }
}

impl MaintenanceKey {
    fn place_of(settings: &EtcdSettings) -> String {
        format!("etcd key {}", settings.maintenance_key())
    }

    fn ask(&self, request: &EtcdRequest) -> Result<EtcdAnswer, String> {
        match Cluster::new(self.settings.clone()).request(request, SWITCH_LIMIT) {
            Io::Done(answer) => Ok(answer),
            Io::Failed(error) => Err(error),
            Io::TimedOut => Err(format!(
                "hacmp: etcd: no answer from {} within {} s",
                self.settings.endpoints.join(","),
                SWITCH_LIMIT.as_secs()
            )),
        }
    }
}
