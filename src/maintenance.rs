//! `hacmp maintenance on|off|status`: the maintenance file, made and removed safely.
//!
//! bash only checks that the file exists, so a file hacmp writes freezes bash nodes too. Its
//! content records who switched maintenance on, when and why, for the next operator.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::config::Variables;
use crate::status::{self, Maintenance};

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
    match (&maintenance.active, &maintenance.note) {
        (false, _) => format!("maintenance is off ({} does not exist)", maintenance.file),
        (true, None) => format!("maintenance is ON ({})", maintenance.file),
        (true, Some(note)) => format!(
            "maintenance is ON ({}): {}",
            maintenance.file,
            note.lines().collect::<Vec<_>>().join("; ")
        ),
    }
}
