//! One exchange with one etcd member through its JSON gateway: HTTP/1.1 POSTs of JSON to
//! `/v3/...` on the client port, keys and values in base64, 64-bit integers as strings, fields
//! at their default value left out of the answer.
//!
//! Each exchange has a deadline of its own (ureq's global timeout covers connecting, TLS,
//! sending and reading the whole answer), so a member that hangs costs at most that deadline.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use ureq::Agent;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::config::EtcdTls;

/// The oldest etcd whose gateway serves `/v3/` (3.3 served `/v3beta/`).
pub const OLDEST_VERSION: (u64, u64) = (3, 4);
/// The header by which the gateway passes etcd's "require leader" flag: a member cut off from
/// the others answers "no leader" at once instead of holding the request.
pub const REQUIRE_LEADER: (&str, &str) = ("Grpc-Metadata-Hasleader", "true");

/// gRPC's codes (etcd's answers carry them as `code`) that say this member cannot serve now,
/// where another member may: cancelled, deadline exceeded, unavailable ("no leader").
const UNAVAILABLE_CODES: [i64; 3] = [1, 4, 14];
/// gRPC's "not found": a lease the cluster no longer has.
pub const NOT_FOUND: i64 = 5;

/// Why one exchange with one member gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The member cannot serve: no connection, no leader, no gateway, too old. Another member
    /// may serve.
    Unreachable(String),
    /// The member did not answer within the time it was given; another member may serve.
    TimedOut(Duration),
    /// The member answered and etcd refused the request; any member would.
    Refused { code: i64, message: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(reason) => f.write_str(reason),
            Failure::TimedOut(limit) => write!(f, "no answer within {} ms", limit.as_millis()),
            Failure::Refused { message, .. } => f.write_str(message),
        }
    }
}

/// The HTTP client shared by every exchange: its connections stay open between requests.
pub fn agent(tls: Option<&EtcdTls>) -> Result<Agent, String> {
    let mut config = Agent::config_builder()
        // etcd's errors come as JSON with status 4xx or 5xx; they are read, not raised.
        .http_status_as_error(false)
        // The members are named in hacmpEtcdEndpoints; a proxy from the environment has no say.
        .proxy(None)
        .max_redirects(0)
        .user_agent(concat!("hacmp/", env!("CARGO_PKG_VERSION")));
    if let Some(tls) = tls {
        config = config.tls_config(tls_config(tls)?);
    }
    Ok(config.build().new_agent())
}

/// hacmpEtcdCacert, and hacmpEtcdCert with hacmpEtcdKey when given, read from their PEM files.
fn tls_config(tls: &EtcdTls) -> Result<TlsConfig, String> {
    let read = |variable: &str, path: &str| {
        std::fs::read(path).map_err(|error| format!("{variable} {path} cannot be read: {error}"))
    };
    let certificates = |variable: &str, path: &str| -> Result<Vec<Certificate<'static>>, String> {
        let pem = read(variable, path)?;
        let parsed: Result<Vec<_>, _> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(certificate)) => Some(Ok(certificate)),
                Ok(_) => None,
                Err(error) => Some(Err(error)),
            })
            .collect();
        match parsed {
            Ok(found) if !found.is_empty() => Ok(found),
            Ok(_) => Err(format!("{variable} {path} holds no PEM certificate")),
            Err(error) => Err(format!("{variable} {path}: {error}")),
        }
    };
    let mut config = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::new_with_certs(&certificates(
            "hacmpEtcdCacert",
            &tls.cacert,
        )?));
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        let chain = certificates("hacmpEtcdCert", cert)?;
        let key = PrivateKey::from_pem(&read("hacmpEtcdKey", key)?)
            .map_err(|error| format!("hacmpEtcdKey {key}: {error}"))?;
        config = config.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(config.build())
}

/// Checks that `endpoint` runs etcd 3.4 or later (`GET /version`), within `limit`.
pub fn probe_version(agent: &Agent, endpoint: &str, limit: Duration) -> Result<(), Failure> {
    let answer = agent
        .get(format!("{}/version", endpoint.trim_end_matches('/')))
        .config()
        .timeout_global(Some(limit))
        .build()
        .call();
    let text = read_answer(answer, limit)?.1;
    let version = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|answer| answer["etcdserver"].as_str().map(str::to_string))
        .ok_or_else(|| {
            Failure::Unreachable(format!(
                "/version answered {}, not etcd's",
                first_line(&text)
            ))
        })?;
    check_version(&version).map_err(Failure::Unreachable)
}

/// Whether etcd `version` ("3.4.23") serves the gateway at `/v3/`.
pub fn check_version(version: &str) -> Result<(), String> {
    let mut parts = version.split('.').map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= OLDEST_VERSION => Ok(()),
        (Some(Ok(_)), Some(Ok(_))) => Err(format!(
            "etcd {version} is older than {}.{}, whose JSON gateway hacmp needs",
            OLDEST_VERSION.0, OLDEST_VERSION.1
        )),
        _ => Err(format!("etcd answered the unknown version {version:?}")),
    }
}

/// POSTs `body` to `path` (`/v3/...`) of `endpoint` and returns etcd's answer, within `limit`.
pub fn post(
    agent: &Agent,
    endpoint: &str,
    path: &str,
    body: &Value,
    require_leader: bool,
    limit: Duration,
) -> Result<Value, Failure> {
    let mut request = agent
        .post(format!("{}{path}", endpoint.trim_end_matches('/')))
        .config()
        .timeout_global(Some(limit))
        .build()
        .header("Content-Type", "application/json");
    if require_leader {
        request = request.header(REQUIRE_LEADER.0, REQUIRE_LEADER.1);
    }
    let (status, text) = read_answer(request.send(body.to_string().as_bytes()), limit)?;
    // A streaming call (the keep-alive) answers one JSON object a line; we send one message.
    // Only an object is etcd's: "404 page not found" would begin with a JSON number.
    let answer = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .filter(Value::is_object);
    let Some(answer) = answer else {
        if status == 404 {
            return Err(Failure::Unreachable(format!(
                "{path} is not found: etcd's JSON gateway is off (--enable-grpc-gateway=false) or etcd is older than {}.{}",
                OLDEST_VERSION.0, OLDEST_VERSION.1
            )));
        }
        return Err(Failure::Unreachable(format!(
            "HTTP {status} with {}",
            first_line(&text)
        )));
    };
    // A unary call's error is the whole answer; a stream's comes as {"error": {...}}.
    let error = if status == 200 {
        answer.get("error").filter(|error| error.is_object())
    } else {
        Some(&answer)
    };
    match error {
        None => Ok(answer),
        Some(error) => Err(refusal(error, status)),
    }
}

/// etcd's error answer as a failure: `{"error": "...", "code": 14, "message": "..."}`, or a
/// stream's `{"grpc_code": 14, "message": "..."}`.
fn refusal(error: &Value, status: u16) -> Failure {
    let code = error["code"]
        .as_i64()
        .or_else(|| error["grpc_code"].as_i64())
        .unwrap_or(0);
    let message = error["message"]
        .as_str()
        .or_else(|| error["error"].as_str())
        .map_or_else(|| format!("HTTP {status} with {error}"), str::to_string);
    if UNAVAILABLE_CODES.contains(&code) || (code == 0 && status >= 500) {
        Failure::Unreachable(message)
    } else {
        Failure::Refused { code, message }
    }
}

/// The status and text of an answer, or why there was none.
fn read_answer(
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    limit: Duration,
) -> Result<(u16, String), Failure> {
    let unreachable = |error: ureq::Error| match error {
        ureq::Error::Timeout(_) => Failure::TimedOut(limit),
        ureq::Error::Io(error) => Failure::Unreachable(error.to_string()),
        other => Failure::Unreachable(other.to_string()),
    };
    let mut answer = answer.map_err(unreachable)?;
    let status = answer.status().as_u16();
    let text = answer.body_mut().read_to_string().map_err(unreachable)?;
    Ok((status, text))
}

/// The first line of an answer that is not etcd's JSON, for an error message.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "an empty answer".to_string()
    } else {
        format!("{:?}", line.chars().take(80).collect::<String>())
    }
}

/// A key or value as the gateway carries it.
pub fn encode(bytes: &str) -> String {
    BASE64.encode(bytes)
}

/// A key's value from the gateway's base64; text as hacmp writes it, anything else lossily.
pub fn decode(value: &Value) -> Result<String, String> {
    let text = value.as_str().unwrap_or("");
    BASE64
        .decode(text)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|error| format!("etcd sent a value that is not base64 ({error})"))
}

/// A 64-bit integer of etcd's answer: a string in JSON, absent when 0.
pub fn integer<T: std::str::FromStr + Default>(value: &Value) -> Result<T, String> {
    let parsed = match value {
        Value::Null => return Ok(T::default()),
        Value::String(text) => text.parse(),
        Value::Number(number) => number.to_string().parse(),
        other => return Err(format!("etcd sent {other} where a number belongs")),
    };
    parsed.map_err(|_| format!("etcd sent {value} where a number belongs"))
}
