//! `ls -1tr DIR | tail -1` as GNU ls prints it into a pipe in the C locale.
//!
//! ls sorts by modification time, newest first, breaking ties by name (strcmp in the C locale);
//! -r reverses that whole order, so the last line is the newest entry and, among entries equally
//! new, the one whose name sorts first. Names starting with '.' are not listed. Entries inside the
//! directory are examined with lstat, so a symbolic link counts with its own time. Into a pipe ls
//! writes names unquoted, so a name containing a newline spans lines and `tail -1` keeps only the
//! part after its last newline; command substitution then drops the final newline.

use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use super::ToolError;
use super::files::{describe, quote};

/// More entries than any heartbeat directory holds; beyond it we refuse rather than read forever.
pub const MAX_ENTRIES: usize = 100_000;

/// The name of the newest entry of `dir`, or of `dir` itself when it is not a directory.
pub fn newest_entry(dir: &str) -> Result<String, ToolError> {
    let target = command_line_status(dir)?;
    if !target.is_dir() {
        return Ok(last_line(dir.as_bytes()));
    }
    let newest = entries(dir)?.into_iter().reduce(|best, entry| {
        let is_newer = entry.modified > best.modified
            || (entry.modified == best.modified && entry.name < best.name);
        if is_newer { entry } else { best }
    });
    Ok(newest
        .map(|entry| last_line(&entry.name))
        .unwrap_or_default())
}

/// One entry of a heartbeat directory as `ls -l` would see it (lstat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub modified: Stamp,
    /// `None` for an entry removed between readdir and lstat.
    pub kind: Option<EntryKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    RegularFile,
    Directory,
    SymbolicLink,
    Other,
}

/// Every entry of the directory `dir` that ls lists (names starting with '.' are not), in
/// directory order.
pub fn entries(dir: &str) -> Result<Vec<Entry>, ToolError> {
    let cannot_open = |e: io::Error| {
        ToolError(format!(
            "ls: cannot open directory {}: {}",
            quote(dir),
            describe(&e)
        ))
    };
    let mut listed = Vec::new();
    for (count, entry) in std::fs::read_dir(dir).map_err(cannot_open)?.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(ToolError(format!(
                "hacmp: {}: more than {MAX_ENTRIES} entries, not listing it",
                quote(dir)
            )));
        }
        let entry = entry.map_err(|e| {
            ToolError(format!(
                "ls: reading directory {}: {}",
                quote(dir),
                describe(&e)
            ))
        })?;
        let name = entry.file_name().as_bytes().to_vec();
        if name.starts_with(b".") {
            continue;
        }
        // DirEntry::metadata does not follow symbolic links. An entry removed since readdir
        // keeps its place in ls's listing with all times zero, so it sorts as of the epoch.
        let metadata = entry.metadata().ok();
        listed.push(Entry {
            name,
            modified: metadata.as_ref().map_or(Stamp::EPOCH, Stamp::of),
            kind: metadata.as_ref().map(|m| {
                let kind = m.file_type();
                if kind.is_file() {
                    EntryKind::RegularFile
                } else if kind.is_dir() {
                    EntryKind::Directory
                } else if kind.is_symlink() {
                    EntryKind::SymbolicLink
                } else {
                    EntryKind::Other
                }
            }),
        });
    }
    Ok(listed)
}

/// A modification time with nanoseconds; fields in this order compare chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    pub seconds: i64,
    pub nanoseconds: i64,
}

impl Stamp {
    const EPOCH: Stamp = Stamp {
        seconds: 0,
        nanoseconds: 0,
    };

    fn of(metadata: &Metadata) -> Stamp {
        Stamp {
            seconds: metadata.mtime(),
            nanoseconds: metadata.mtime_nsec(),
        }
    }
}

/// What ls learns about a name given on its command line: it follows a symbolic link, but falls
/// back to the link itself when the target is missing (not when links loop: ls 9.1 reports
/// that).
fn command_line_status(path: &str) -> Result<Metadata, ToolError> {
    let followed = std::fs::metadata(path).or_else(|error| match error.raw_os_error() {
        Some(libc::ENOENT) => std::fs::symlink_metadata(path),
        _ => Err(error),
    });
    followed.map_err(|e| {
        ToolError(format!(
            "ls: cannot access {}: {}",
            quote(path),
            describe(&e)
        ))
    })
}

/// What `tail -1` and command substitution leave of a name printed on its own line. Names that
/// are not UTF-8 are converted lossily: they cannot equal a host name we compare them with.
fn last_line(name: &[u8]) -> String {
    let tail = match name.iter().rposition(|&b| b == b'\n') {
        Some(newline) => &name[newline + 1..],
        None => name,
    };
    String::from_utf8_lossy(tail).into_owned()
}
