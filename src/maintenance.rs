//! `hacmp maintenance on|off|status`: the maintenance file, made and removed safely.
//!
//! bash only checks that the file exists, so a file hacmp writes freezes bash nodes too. Its
//! content records who switched maintenance on, when and why, for the next operator.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::config::{EtcdSettings, Variables};
use crate::real::etcd::Cluster;
use crate::status::{self, Maintenance};
use crate::world::{EtcdAnswer, EtcdRequest, Io};

/// How long `hacmp maintenance` waits for each answer of the etcd cluster.
const ETCD_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What `on` or `off` did; both are idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    SwitchedOn,
    AlreadyOn,
    SwitchedOff,
    AlreadyOff,
}

/// The note written into the maintenance file.
pub fn note(reason: Option<&str>, now: chrono::DateTime<chrono::Local>) -> String {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| user_name());
    let host = crate::config::local_host_name();
    let mut text = format!(
        "maintenance switched on by {who}@{host} at {}\n",
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    );
    if let Some(reason) = reason {
        text.push_str(&format!("reason: {reason}\n"));
    }
    text
}

/// The name of the user we run as, from the password database, or `uid N` without an entry.
fn user_name() -> String {
    // SAFETY: getuid cannot fail. getpwuid returns null or a pointer to a static entry, read
    // at once; this command runs on one thread.
    unsafe {
        let uid = libc::getuid();
        let entry = libc::getpwuid(uid);
        if entry.is_null() || (*entry).pw_name.is_null() {
            return format!("uid {uid}");
        }
        std::ffi::CStr::from_ptr((*entry).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Creates the maintenance file with `text`, complete or not at all: the text goes into a
/// temporary file in the same directory, which is then linked to the final name. Linking fails
/// when the file already exists, so a note written by someone else in the meantime is kept.
pub fn switch_on(file: &str, text: &str) -> io::Result<Outcome> {
    if Path::new(file).exists() {
        return Ok(Outcome::AlreadyOn);
    }
    let path = Path::new(file);
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temporary = dir.join(format!(
        ".{}.hacmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = (|| {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        fs::hard_link(&temporary, path)
    })();
    let _ = fs::remove_file(&temporary);
    match written {
        Ok(()) => Ok(Outcome::SwitchedOn),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(Outcome::AlreadyOn),
        Err(error) => Err(error),
    }
}

pub fn switch_off(file: &str) -> io::Result<Outcome> {
    match fs::remove_file(file) {
        Ok(()) => Ok(Outcome::SwitchedOff),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Outcome::AlreadyOff),
        Err(error) => Err(error),
    }
}

/// With the etcd backend: creates the maintenance key with `text` unless it exists, in one
/// transaction, so that a note set by someone else in the meantime is kept. The key has no
/// lease: it stays until `off`, whoever set it and whatever becomes of their host.
pub fn switch_key_on(settings: &EtcdSettings, text: &str) -> Result<Outcome, String> {
    let create = EtcdRequest::Campaign {
        key: settings.maintenance_key(),
        value: text.to_string(),
        lease: 0,
    };
    match ask(settings, &create)? {
        EtcdAnswer::Campaign { won: true, .. } => Ok(Outcome::SwitchedOn),
        EtcdAnswer::Campaign { won: false, .. } => Ok(Outcome::AlreadyOn),
        other => Err(format!("etcd answered {other:?} to a create")),
    }
}

/// With the etcd backend: deletes the maintenance key.
pub fn switch_key_off(settings: &EtcdSettings) -> Result<Outcome, String> {
    let key = settings.maintenance_key();
    if key_note(settings)?.is_none() {
        return Ok(Outcome::AlreadyOff);
    }
    ask(settings, &EtcdRequest::Delete { key })?;
    Ok(Outcome::SwitchedOff)
}

/// With the etcd backend: the maintenance key's value, `None` when it does not exist.
pub fn key_note(settings: &EtcdSettings) -> Result<Option<String>, String> {
    let get = EtcdRequest::Get {
        key: settings.maintenance_key(),
    };
    match ask(settings, &get)? {
        EtcdAnswer::Value(value) => Ok(value.map(|kv| kv.value)),
        other => Err(format!("etcd answered {other:?} to a read")),
    }
}

fn ask(settings: &EtcdSettings, request: &EtcdRequest) -> Result<EtcdAnswer, String> {
    match Cluster::new(settings.clone()).request(request, ETCD_LIMIT) {
        Io::Done(answer) => Ok(answer),
        Io::Failed(error) => Err(error),
        Io::TimedOut => Err(format!(
            "hacmp: etcd: no answer from {} within {} s",
            settings.endpoints.join(","),
            ETCD_LIMIT.as_secs()
        )),
    }
}

/// Why the maintenance file would freeze only this host instead of the whole cluster, if it
/// would.
pub fn node_local_warning(vars: &Variables) -> Option<String> {
    let file = &vars.maintenance_file;
    if !file.starts_with('/') {
        return Some(format!(
            "maintenanceFile {file} is a relative path: it freezes only hosts whose daemon runs in this working directory"
        ));
    }
    let parent = Path::new(file).parent()?;
    match status::same_filesystem(parent, Path::new(&vars.heart_beat_dir)) {
        Some(false) => Some(format!(
            "maintenanceFile {file} is not on the heartbeat directory's filesystem: it freezes only this host, not the cluster"
        )),
        _ => None,
    }
}

/// The one line that says what maintenance looks like now.
pub fn describe(maintenance: &Maintenance) -> String {
    let source = status::maintenance_source(maintenance);
    let key_note = maintenance.key.as_ref().and_then(|key| key.note.as_ref());
    match (maintenance.active, key_note.or(maintenance.note.as_ref())) {
        (false, _) => format!("maintenance is off ({source})"),
        (true, None) => format!("maintenance is ON ({source})"),
        (true, Some(note)) => format!(
            "maintenance is ON ({source}): {}",
            note.lines().collect::<Vec<_>>().join("; ")
        ),
    }
}
