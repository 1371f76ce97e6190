//! The safe profile's record operations on the real machine. Each runs on a storage worker
//! (`bounded.rs`), so it may block on a hung mount without blocking the loop.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::files::describe;
use super::listing;
use crate::safe::record::MAX_RECORD_BYTES;
use crate::world::EntryRead;

fn failure(path: &str, error: &std::io::Error) -> String {
    format!("hacmp: {path}: {}", describe(error))
}

/// Reads a record past the page cache: opening the file revalidates it with an NFS server
/// (close-to-open consistency), and dropping its cached pages makes the read go to the server.
/// The modification time comes from the open file (fstat), so it is as fresh as the content
/// and needs no second, unbounded `stat` that an attribute cache could answer.
pub fn read(path: &str) -> Result<EntryRead, String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(EntryRead::Missing);
        }
        Err(error) if error.raw_os_error() == Some(libc::EISDIR) => {
            return Ok(EntryRead::NotAFile);
        }
        Err(error) => return Err(failure(path, &error)),
    };
    let metadata = file.metadata().map_err(|e| failure(path, &e))?;
    if !metadata.is_file() {
        return Ok(EntryRead::NotAFile);
    }
    // SAFETY: fadvise only drops clean cached pages of this open file.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let mut bytes = Vec::with_capacity(MAX_RECORD_BYTES);
    // One byte more than a record may have, so that an over-long file is seen as foreign.
    file.take(MAX_RECORD_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failure(path, &e))?;
    Ok(EntryRead::File {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        modified: metadata.mtime(),
    })
}

/// Replaces a record so that readers see the old content or the new, never a mixture: the new
/// content goes to a hidden file beside it (ls, and so bash, never list names starting with
/// '.'), is flushed to the storage, and is renamed over the record.
pub fn write(path: &str, content: &str) -> Result<(), String> {
    let target = Path::new(path);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = target.with_file_name(format!(".{name}.hacmp-new"));
    let written = (|| {
        let mut file = File::create(&temporary)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, target)
    })();
    written.map_err(|e| failure(path, &e))
}

/// The names `ls` would list in `dir`, sorted.
pub fn list(dir: &str) -> Result<Vec<String>, String> {
    let entries = listing::entries(dir).map_err(|e| e.0)?;
    let mut names: Vec<String> = entries
        .into_iter()
        .map(|entry| String::from_utf8_lossy(&entry.name).into_owned())
        .collect();
    names.sort();
    Ok(names)
}
