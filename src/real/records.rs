//! The safe profile's record operations on the real machine. Each runs on a storage worker
//! (`bounded.rs`), so it may block on a hung mount without blocking the loop.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use std::time::Duration;

use super::batch::{Job, Outcome, Pools};
use super::files::describe;
use super::listing;
use crate::safe::files::MAINTENANCE_ENTRY;
use crate::safe::record::MAX_RECORD_BYTES;
use crate::world::EntryRead;

fn failure(path: &str, error: &std::io::Error) -> String {
    format!("hacmp: {path}: {}", describe(error))
}

/// How often a record is read again when NFS answers ESTALE: the record was replaced by its
/// node between our lookup and our read, and a new open finds the replacement. A node replaces
/// its record once a loopTime, so a third stale answer in a row says more than a race.
const STALE_TRIES: usize = 3;

/// Reads a record past the page cache: opening the file revalidates it with an NFS server
/// (close-to-open consistency), and dropping its cached pages makes the read go to the server.
/// The modification time comes from the open file (fstat), so it is as fresh as the content
/// and needs no second, unbounded `stat` that an attribute cache could answer.
pub fn read(path: &str) -> Result<EntryRead, String> {
    let mut tries = 1;
    loop {
        match read_once(path) {
            Err(error) if error.raw_os_error() == Some(libc::ESTALE) && tries < STALE_TRIES => {
                tries += 1;
            }
            result => return result.map_err(|error| failure(path, &error)),
        }
    }
}

fn read_once(path: &str) -> std::io::Result<EntryRead> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(EntryRead::Missing);
        }
        Err(error) if error.raw_os_error() == Some(libc::EISDIR) => {
            return Ok(EntryRead::NotAFile);
        }
        Err(error) => return Err(error),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Ok(EntryRead::NotAFile);
    }
    // SAFETY: fadvise only drops clean cached pages of this open file.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let mut bytes = Vec::with_capacity(MAX_RECORD_BYTES);
    // One byte more than a record may have, so that an over-long file is seen as foreign.
    file.take(MAX_RECORD_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
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

/// How long `hacmp maintenance` waits for each heartbeat directory, as `hacmp status` does.
pub const MARKER_LIMIT: Duration = Duration::from_secs(5);

/// `hacmp maintenance on` (`note`: the marker's text) or `off` (`None`) for the files backend:
/// writes or removes the maintenance marker in every heartbeat directory at once. Returns the
/// line to print, or the error line when less than a majority of the directories did it: the
/// loop obeys what a majority shows.
pub fn switch_maintenance_markers(dirs: &[String], note: Option<&str>) -> Result<String, String> {
    let state = if note.is_some() { "on" } else { "off" };
    let note = note.map(str::to_string);
    let (done, failures) = on_every_directory(dirs, move |dir| {
        let path = format!("{dir}/{MAINTENANCE_ENTRY}");
        match &note {
            Some(note) => write(&path, note),
            // No marker in a directory that is there is off; a directory that is not there
            // has not been switched.
            None => match fs::remove_file(&path) {
                Err(error)
                    if error.kind() == std::io::ErrorKind::NotFound && Path::new(dir).is_dir() =>
                {
                    Ok(())
                }
                result => result.map_err(|error| failure(&path, &error)),
            },
        }
    });
    let line = format!(
        "maintenance {state} in {} of {} heartbeat directories",
        done.len(),
        dirs.len()
    );
    if done.len() > dirs.len() / 2 {
        for failure in &failures {
            eprintln!("{failure}");
        }
        Ok(line)
    } else {
        Err(format!("{line}, not a majority: {}", failures.join("; ")))
    }
}

/// The maintenance markers as the loop reads them: on when any directory of an answering
/// majority holds one (its note is returned), an error when less than a majority answers.
pub fn read_maintenance_markers(dirs: &[String]) -> Result<Option<String>, String> {
    let (read, failures) =
        on_every_directory(dirs, |dir| read(&format!("{dir}/{MAINTENANCE_ENTRY}")));
    if read.len() <= dirs.len() / 2 {
        return Err(format!(
            "maintenance markers: {} of {} heartbeat directories answered, not a majority: {}",
            read.len(),
            dirs.len(),
            failures.join("; ")
        ));
    }
    Ok(read.into_iter().find_map(|entry| match entry {
        EntryRead::Missing => None,
        EntryRead::NotAFile => Some(String::new()),
        EntryRead::File { text, .. } => Some(text),
    }))
}

/// Runs `work` on every heartbeat directory at once, each within `MARKER_LIMIT`: what the
/// directories that did it returned, and a line for each that did not.
fn on_every_directory<T: Send + 'static>(
    dirs: &[String],
    work: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
) -> (Vec<T>, Vec<String>) {
    let work = std::sync::Arc::new(work);
    let jobs = (dirs.iter())
        .map(|dir| {
            let (work, directory) = (work.clone(), dir.clone());
            Job {
                directory: dir.clone(),
                work: Box::new(move || work(&directory))
                    as Box<dyn FnOnce() -> Result<T, String> + Send>,
            }
        })
        .collect();
    let outcomes = Pools::default().run_all(jobs, MARKER_LIMIT, usize::MAX, Result::is_ok);
    let (mut done, mut failures) = (Vec::new(), Vec::new());
    for (dir, outcome) in dirs.iter().zip(outcomes) {
        match outcome {
            Outcome::Answered {
                value: Ok(value), ..
            } => done.push(value),
            Outcome::Answered {
                value: Err(error), ..
            } => failures.push(error),
            Outcome::NoAnswer { .. } | Outcome::Refused { .. } => failures.push(format!(
                "hacmp: {dir}: no answer within {} s",
                MARKER_LIMIT.as_secs()
            )),
        }
    }
    (done, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_markers_are_written_and_removed_in_every_directory() {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<String> = ["dc1", "dc2", "witness"]
            .iter()
            .map(|name| {
                let dir = root.path().join(name);
                fs::create_dir(&dir).unwrap();
                dir.display().to_string()
            })
            .collect();
        let line = switch_maintenance_markers(&dirs, Some("why\n")).unwrap();
        assert_eq!(line, "maintenance on in 3 of 3 heartbeat directories");
        for dir in &dirs {
            let marker = format!("{dir}/{MAINTENANCE_ENTRY}");
            assert_eq!(fs::read_to_string(&marker).unwrap(), "why\n");
            assert_eq!(
                list(dir).unwrap(),
                Vec::<String>::new(),
                "ls never lists it"
            );
        }
        assert_eq!(
            read_maintenance_markers(&dirs),
            Ok(Some("why\n".to_string()))
        );
        fs::remove_dir_all(&dirs[2]).unwrap();
        let line = switch_maintenance_markers(&dirs, None).unwrap();
        assert_eq!(line, "maintenance off in 2 of 3 heartbeat directories");
        assert_eq!(read_maintenance_markers(&dirs), Ok(None));
        fs::remove_dir_all(&dirs[1]).unwrap();
        let error = switch_maintenance_markers(&dirs, Some("why\n")).unwrap_err();
        assert!(
            error.contains("1 of 3 heartbeat directories, not a majority"),
            "{error}"
        );
    }
}
