//! Where the safe profile keeps its lease: the variables hacmpBackend, hacmpHeartBeatDirs and
//! hacmpEtcd*, checked into a `Store`.
//!
//! Each of these variables has one meaning with one backend, so a value set where its backend is
//! not in use is refused rather than ignored: an operator who wrote hacmpEtcdEndpoints but forgot
//! hacmpBackend=etcd would otherwise run on the heartbeat directory believing they ran on etcd.

use std::collections::BTreeSet;
use std::path::Path;

use super::{ConfigError, Origin, Setting, Settings};
use crate::timing::Timing;

/// The most heartbeat directories accepted: one per site of a deployment far larger than any
/// that heartbeat.sh serves, and few enough that a round's reads stay cheap.
pub const MAX_HEARTBEAT_DIRS: usize = 9;
/// The most etcd endpoints accepted: etcd itself advises clusters of at most seven members.
pub const MAX_ETCD_ENDPOINTS: usize = 9;
/// The longest hacmpEtcdPrefix accepted: etcd's keys may be longer, but a prefix that names an
/// application never needs to be.
pub const MAX_ETCD_PREFIX_BYTES: usize = 256;

/// Where the safe profile keeps its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// The files backend over these directories: heartBeatDir alone, or hacmpHeartBeatDirs.
    Directories(Vec<String>),
    Etcd(EtcdSettings),
}

/// How to reach the etcd cluster (hacmpEtcd*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    /// hacmpEtcdEndpoints: the members' client URLs, as etcdctl's `--endpoints`.
    pub endpoints: Vec<String>,
    /// hacmpEtcdPrefix: every key of this application lives below it.
    pub prefix: String,
    pub tls: Option<EtcdTls>,
}

/// Certificates for https endpoints: the CA that signed the members' certificates, and this
/// host's client certificate when the cluster asks for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTls {
    pub cacert: String,
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl EtcdSettings {
    /// The key whose holder is master; its create revision is the fencing token.
    pub fn leader_key(&self) -> String {
        format!("{}/leader", self.prefix)
    }

    /// The key whose presence puts every node in maintenance.
    pub fn maintenance_key(&self) -> String {
        format!("{}/maintenance", self.prefix)
    }
}

/// The etcd variables, in the order `hacmp check` shows them.
const ETCD_VARIABLES: [&str; 5] = [
    "hacmpEtcdEndpoints",
    "hacmpEtcdPrefix",
    "hacmpEtcdCacert",
    "hacmpEtcdCert",
    "hacmpEtcdKey",
];

/// Checks the store variables for `heart_beat_dir` (heartBeatDir, already checked) and the
/// profile's timing (`None` for the compat profile, which knows only heartBeatDir).
pub fn store(
    settings: &Settings,
    heart_beat_dir: &str,
    timing: Option<Timing>,
) -> Result<Store, ConfigError> {
    let backend = settings.get("hacmpBackend");
    let dirs = settings.get("hacmpHeartBeatDirs");
    match backend.value.as_str() {
        "files" => {
            if let Some(setting) = ETCD_VARIABLES
                .iter()
                .map(|name| settings.get(name))
                .find(|setting| is_set(setting))
            {
                return Err(setting.error("is set, but hacmpBackend is not etcd"));
            }
            if !is_set(dirs) {
                return Ok(Store::Directories(vec![heart_beat_dir.to_string()]));
            }
            if timing.is_none() {
                return Err(dirs
                    .error("needs hacmpProfile=safe: the compat profile knows only heartBeatDir"));
            }
            directories(dirs, settings.get("heartBeatDir")).map(Store::Directories)
        }
        "etcd" => {
            let Some(timing) = timing else {
                return Err(backend
                    .error("needs hacmpProfile=safe: the compat profile knows only heartBeatDir"));
            };
            if is_set(dirs) {
                return Err(dirs.error("is set, but hacmpBackend is etcd"));
            }
            etcd(settings, timing).map(Store::Etcd)
        }
        _ => Err(backend.error("is neither files nor etcd")),
    }
}

fn is_set(setting: &Setting) -> bool {
    !setting.value.is_empty()
}

/// hacmpHeartBeatDirs: an odd number (at least 3) of distinct absolute directories. heartBeatDir,
/// when set by the operator, must be one of them, so that nobody believes a directory matters
/// that the loop no longer reads.
fn directories(setting: &Setting, heart_beat_dir: &Setting) -> Result<Vec<String>, ConfigError> {
    let dirs: Vec<String> = setting
        .value
        .split_ascii_whitespace()
        .map(|dir| normalize(dir).to_string())
        .collect();
    if dirs.len() > MAX_HEARTBEAT_DIRS {
        return Err(setting.error(&format!(
            "lists {} directories, more than the limit of {MAX_HEARTBEAT_DIRS}",
            dirs.len()
        )));
    }
    if dirs.len() < 3 || dirs.len().is_multiple_of(2) {
        return Err(setting.error(&format!(
            "lists {} directories; a majority needs an odd number, at least 3 (one per data centre and a witness)",
            dirs.len()
        )));
    }
    if let Some(relative) = dirs.iter().find(|dir| !dir.starts_with('/')) {
        return Err(setting.error(&format!("lists {relative}, which is not an absolute path")));
    }
    if let Some(glob) = dirs.iter().find(|dir| dir.contains(['*', '?', '['])) {
        return Err(setting.error(&format!(
            "lists {glob}, which contains a glob character; name each directory as it is"
        )));
    }
    let mut seen = BTreeSet::new();
    if let Some(duplicate) = dirs.iter().find(|dir| !seen.insert(dir.as_str())) {
        return Err(setting.error(&format!(
            "lists {duplicate} twice; each directory must be on its own storage"
        )));
    }
    if heart_beat_dir.origin != Origin::Default
        && !dirs
            .iter()
            .any(|dir| dir == normalize(&heart_beat_dir.value))
    {
        return Err(heart_beat_dir.error(
            "is not one of hacmpHeartBeatDirs, which replace it in the safe profile; list it there or leave heartBeatDir unset",
        ));
    }
    Ok(dirs)
}

/// A directory without its trailing slashes, so that `/a/` and `/a` are one directory.
fn normalize(dir: &str) -> &str {
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }
}

fn etcd(settings: &Settings, timing: Timing) -> Result<EtcdSettings, ConfigError> {
    let endpoints = endpoints(settings.get("hacmpEtcdEndpoints"))?;
    let prefix = prefix(settings.get("hacmpEtcdPrefix"))?;
    let tls = tls(settings, &endpoints)?;
    // A lease of faileOverTime survives one lost keep-alive only if the loop sends two within
    // it, each allowed io_limit to answer.
    let ttl = timing.takeover_after;
    if 2 * timing.loop_pause + timing.io_limit >= ttl {
        return Err(settings.get("loopTime").error(&format!(
            "is too long for the etcd backend: the lease of faileOverTime ({} s) must see at least two keep-alives, each sent every loopTime and allowed {} ms",
            ttl.as_secs(),
            timing.io_limit.as_millis()
        )));
    }
    Ok(EtcdSettings {
        endpoints,
        prefix,
        tls,
    })
}

/// hacmpEtcdEndpoints: comma-separated `http://HOST:PORT` or `https://HOST:PORT` URLs.
fn endpoints(setting: &Setting) -> Result<Vec<String>, ConfigError> {
    if !is_set(setting) {
        return Err(setting.error("must be set with hacmpBackend=etcd (e.g. http://10.0.1.5:2379,http://10.0.2.5:2379,http://10.0.3.5:2379)"));
    }
    let endpoints: Vec<String> = setting
        .value
        .split(',')
        .map(|endpoint| endpoint.trim().to_string())
        .collect();
    if endpoints.len() > MAX_ETCD_ENDPOINTS {
        return Err(setting.error(&format!(
            "lists {} endpoints, more than the limit of {MAX_ETCD_ENDPOINTS}",
            endpoints.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for endpoint in &endpoints {
        if let Some(why) = endpoint_problem(endpoint) {
            return Err(setting.error(&format!("lists '{endpoint}', which {why}")));
        }
        if !seen.insert(endpoint.as_str()) {
            return Err(setting.error(&format!("lists {endpoint} twice")));
        }
    }
    if endpoints
        .iter()
        .map(|e| e.starts_with("https://"))
        .collect::<BTreeSet<_>>()
        .len()
        > 1
    {
        return Err(setting.error("mixes http and https endpoints; one cluster speaks one of them"));
    }
    Ok(endpoints)
}

/// Why `endpoint` is not a URL etcd's clients accept, if it is not.
fn endpoint_problem(endpoint: &str) -> Option<&'static str> {
    let Some(authority) = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
    else {
        return Some("does not start with http:// or https://");
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Some("has no :PORT");
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#']) || host.contains(char::is_whitespace)
    {
        return Some("has no plain host name or address");
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => None,
        _ => Some("has no port between 1 and 65535"),
    }
}

/// hacmpEtcdPrefix: an absolute key path that names this application, so that two applications
/// never share a leader key by accident.
fn prefix(setting: &Setting) -> Result<String, ConfigError> {
    let value = &setting.value;
    if !is_set(setting) {
        return Err(setting.error("must be set with hacmpBackend=etcd, to a prefix only this application uses (e.g. /hacmp/payments)"));
    }
    if !value.starts_with('/') || value.len() < 2 || value.ends_with('/') {
        return Err(setting.error(
            "must start with '/', name something, and not end with '/' (e.g. /hacmp/payments)",
        ));
    }
    if value.len() > MAX_ETCD_PREFIX_BYTES {
        return Err(setting.error(&format!(
            "is longer than the limit of {MAX_ETCD_PREFIX_BYTES} bytes"
        )));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(setting.error("contains a blank or a control character"));
    }
    Ok(value.clone())
}

/// The certificate variables: only with https endpoints, a CA always, a client certificate
/// and its key together.
fn tls(settings: &Settings, endpoints: &[String]) -> Result<Option<EtcdTls>, ConfigError> {
    let [cacert, cert, key] =
        ["hacmpEtcdCacert", "hacmpEtcdCert", "hacmpEtcdKey"].map(|name| settings.get(name));
    let https = endpoints.iter().any(|e| e.starts_with("https://"));
    if !https {
        return match [cacert, cert, key].into_iter().find(|s| is_set(s)) {
            Some(setting) => Err(setting.error("is set, but hacmpEtcdEndpoints are not https")),
            None => Ok(None),
        };
    }
    if !is_set(cacert) {
        return Err(cacert.error(
            "must be set with https endpoints: the CA that signed the members' certificates",
        ));
    }
    if is_set(cert) != is_set(key) {
        let missing = if is_set(cert) { key } else { cert };
        return Err(missing.error("must be set together with hacmpEtcdCert and hacmpEtcdKey"));
    }
    for setting in [cacert, cert, key].into_iter().filter(|s| is_set(s)) {
        if !Path::new(&setting.value).is_absolute() {
            return Err(setting.error("is not an absolute path"));
        }
    }
    let optional = |setting: &Setting| is_set(setting).then(|| setting.value.clone());
    Ok(Some(EtcdTls {
        cacert: cacert.value.clone(),
        cert: optional(cert),
        key: optional(key),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::resolve;

    /// The store, or the error, for a safe configuration with these variables added.
    fn store_of(pairs: &[(&str, &str)]) -> Result<Store, String> {
        let mut environment: HashMap<String, String> = [
            ("pgrepProgramName", "app"),
            ("startCmd", "./app"),
            ("hacmpProfile", "safe"),
            ("faileOverTime", "10"),
            ("loopTime", "3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        environment.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = resolve(None, &environment).expect("no file to read");
        settings
            .validate()
            .map(|vars| vars.store)
            .map_err(|e| e.to_string())
    }

    const ETCD: [(&str, &str); 3] = [
        ("hacmpBackend", "etcd"),
        (
            "hacmpEtcdEndpoints",
            "http://10.0.1.5:2379, http://10.0.2.5:2379,http://[::1]:2379",
        ),
        ("hacmpEtcdPrefix", "/hacmp/payments"),
    ];

    fn with_etcd(extra: &[(&'static str, &'static str)]) -> Result<Store, String> {
        let mut pairs = ETCD.to_vec();
        pairs.extend_from_slice(extra);
        store_of(&pairs)
    }

    #[test]
    fn without_store_variables_the_lease_lives_in_heart_beat_dir() {
        assert_eq!(
            store_of(&[("heartBeatDir", "/mnt/hb")]),
            Ok(Store::Directories(vec!["/mnt/hb".to_string()]))
        );
    }

    #[test]
    fn heartbeat_dirs_are_normalised_and_may_include_heart_beat_dir() {
        assert_eq!(
            store_of(&[
                ("heartBeatDir", "/mnt/dc1/hb/"),
                (
                    "hacmpHeartBeatDirs",
                    " /mnt/dc1/hb/\t/mnt/dc2/hb\n/mnt/witness/hb "
                ),
            ]),
            Ok(Store::Directories(
                ["/mnt/dc1/hb", "/mnt/dc2/hb", "/mnt/witness/hb"]
                    .map(String::from)
                    .to_vec()
            ))
        );
        let nine = "/a /b /c /d /e /f /g /h /i";
        assert!(store_of(&[("hacmpHeartBeatDirs", nine)]).is_ok());
        let eleven = "/a /b /c /d /e /f /g /h /i /j /k";
        assert!(
            store_of(&[("hacmpHeartBeatDirs", eleven)])
                .unwrap_err()
                .contains("limit of 9")
        );
        let glob = store_of(&[("hacmpHeartBeatDirs", "/a /b /mnt/*")]).unwrap_err();
        assert!(glob.contains("glob character"), "{glob}");
    }

    #[test]
    fn the_etcd_settings_are_read_and_name_their_keys() {
        let Ok(Store::Etcd(etcd)) = with_etcd(&[]) else {
            panic!("the etcd store");
        };
        assert_eq!(
            etcd.endpoints,
            [
                "http://10.0.1.5:2379",
                "http://10.0.2.5:2379",
                "http://[::1]:2379"
            ]
        );
        assert_eq!(etcd.leader_key(), "/hacmp/payments/leader");
        assert_eq!(etcd.maintenance_key(), "/hacmp/payments/maintenance");
        assert_eq!(etcd.tls, None);
    }

    #[test]
    fn bad_endpoints_are_named() {
        for (endpoints, why) in [
            ("10.0.1.5:2379", "does not start with http://"),
            ("http://10.0.1.5", "has no :PORT"),
            ("http://10.0.1.5:0", "no port between"),
            ("http://:2379", "no plain host"),
            ("http://a:2379,http://a:2379", "twice"),
            ("http://a:2379,https://b:2379", "mixes http and https"),
        ] {
            let error = store_of(&[
                ("hacmpBackend", "etcd"),
                ("hacmpEtcdEndpoints", endpoints),
                ("hacmpEtcdPrefix", "/p"),
            ])
            .unwrap_err();
            assert!(
                error.starts_with("environment: hacmpEtcdEndpoints=") && error.contains(why),
                "{endpoints}: {error}"
            );
        }
    }

    #[test]
    fn a_prefix_must_name_something_absolute() {
        for prefix in ["hacmp", "/", "/hacmp/", "/hac mp"] {
            let mut pairs = ETCD.to_vec();
            pairs[2].1 = prefix;
            let error = store_of(&pairs).unwrap_err();
            assert!(
                error.starts_with("environment: hacmpEtcdPrefix="),
                "{prefix}: {error}"
            );
        }
    }

    #[test]
    fn certificates_go_with_https_endpoints_only() {
        let https = [
            ("hacmpBackend", "etcd"),
            ("hacmpEtcdEndpoints", "https://a:2379"),
            ("hacmpEtcdPrefix", "/p"),
        ];
        let error = store_of(&https).unwrap_err();
        assert!(
            error.contains("hacmpEtcdCacert='' must be set with https"),
            "{error}"
        );
        let mut pairs = https.to_vec();
        pairs.push(("hacmpEtcdCacert", "/etc/etcd/ca.pem"));
        pairs.push(("hacmpEtcdCert", "/etc/etcd/client.pem"));
        let error = store_of(&pairs).unwrap_err();
        assert!(
            error.contains("hacmpEtcdKey='' must be set together"),
            "{error}"
        );
        pairs.push(("hacmpEtcdKey", "/etc/etcd/client-key.pem"));
        let Ok(Store::Etcd(etcd)) = store_of(&pairs) else {
            panic!("the etcd store");
        };
        assert_eq!(
            etcd.tls,
            Some(EtcdTls {
                cacert: "/etc/etcd/ca.pem".to_string(),
                cert: Some("/etc/etcd/client.pem".to_string()),
                key: Some("/etc/etcd/client-key.pem".to_string()),
            })
        );
        let error = with_etcd(&[("hacmpEtcdCacert", "/etc/etcd/ca.pem")]).unwrap_err();
        assert!(error.contains("are not https"), "{error}");
    }

    #[test]
    fn a_loop_that_cannot_renew_twice_per_lease_is_refused_with_etcd() {
        // faileOverTime=10, loopTime=3: 2*3 s + 1.9 s of storage time fits in 10 s; with
        // loopTime=5, 2*5 s alone does not.
        assert!(with_etcd(&[]).is_ok());
        let error = with_etcd(&[("loopTime", "5")]).unwrap_err();
        assert!(
            error.starts_with("environment: loopTime='5' is too long for the etcd backend"),
            "{error}"
        );
    }

    #[test]
    fn directories_and_etcd_exclude_each_other() {
        let error = with_etcd(&[("hacmpHeartBeatDirs", "/a /b /c")]).unwrap_err();
        assert!(
            error.contains("is set, but hacmpBackend is etcd"),
            "{error}"
        );
        let error = store_of(&[("hacmpBackend", "zookeeper")]).unwrap_err();
        assert!(error.contains("is neither files nor etcd"), "{error}");
    }
}
