//! The daemon's state file: what its loop last told `World::report` (role, master, a long wait
//! and when it ends), for `hacmp status` on the same host. Standbys write nothing to the shared
//! storage, so this file is the only place a status learns that a daemon stands by, or is
//! waiting to start or to kill.
//!
//! It lives in the state directory (`state_directories`), one file per daemon, named after its
//! host and its store, replaced whole after each change and each round; the file names the
//! process (PID and start time), so a file left by a daemon that died reads as stopped.

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::containment::start_time;

/// Sets the state directory for the daemon and `hacmp status` alike (tests, or a daemon whose
/// service sets no RuntimeDirectory=).
pub const STATE_DIRECTORY_VARIABLE: &str = "HACMP_STATE_DIR";
/// The state directory of daemons that run as root.
const SYSTEM_DIRECTORY: &str = "/run/hacmp";
/// How a state file's name ends.
const SUFFIX: &str = ".state";

/// One daemon's state, as its file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonState {
    pub host: String,
    /// The store the daemon's lease lives in (`config::Store::identity`).
    pub store: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot, which a reused PID does not share.
    pub started: u64,
    /// "starting", "master", "standby", "claiming", "fenced" or "maintenance".
    pub role: String,
    /// The master the loop takes, when it knows one.
    pub master: Option<String>,
    /// The long wait under way, if any.
    pub wait: Option<PendingWait>,
    /// When the daemon last wrote the file, in seconds since the epoch.
    pub written: i64,
    /// What the operator must fix that the daemon's last round found (`Event::Warning`), such
    /// as another daemon with this hostName.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A long wait of the loop and when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWait {
    /// `event::Wait::words`.
    pub what: String,
    /// When it ends, in milliseconds since the epoch.
    pub until_ms: i64,
}

impl DaemonState {
    /// Whether the process that wrote the file still runs.
    pub fn running(&self) -> bool {
        start_time(self.pid).is_ok_and(|started| started == self.started)
    }
}

/// Where state files are looked for, the daemon's own first: $HACMP_STATE_DIR alone when set,
/// else systemd's $RUNTIME_DIRECTORY, /run/hacmp, $XDG_RUNTIME_DIR/hacmp and /tmp/hacmp-UID.
pub fn state_directories() -> Vec<PathBuf> {
    if let Some(dir) = chosen_directory() {
        return vec![dir];
    }
    // SAFETY: geteuid has no failure mode and no memory effects.
    let user = unsafe { libc::geteuid() };
    let mut dirs: Vec<PathBuf> = super::guard::runtime_directory().into_iter().collect();
    if user == 0 {
        dirs.push(PathBuf::from(SYSTEM_DIRECTORY));
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        dirs.push(Path::new(&runtime).join("hacmp"));
    }
    dirs.push(PathBuf::from(format!("/tmp/hacmp-{user}")));
    dirs
}

/// $HACMP_STATE_DIR, when set.
fn chosen_directory() -> Option<PathBuf> {
    let dir = std::env::var_os(STATE_DIRECTORY_VARIABLE)?;
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// The daemon's end: writes its state file, saying once on stderr when it cannot.
pub struct StateFile {
    path: Option<PathBuf>,
    reported_failure: bool,
}

impl StateFile {
    /// The file of the daemon of `host` on `store`, in the first state directory.
    pub fn new(host: &str, store: &str) -> StateFile {
        let path = state_directories()
            .into_iter()
            .next()
            .map(|dir| dir.join(format!("{host}.{:016x}{SUFFIX}", fnv1a(store.as_bytes()))));
        StateFile {
            path,
            reported_failure: false,
        }
    }

    /// A file that is never written: for worlds built outside `hacmp run`.
    pub fn none() -> StateFile {
        StateFile {
            path: None,
            reported_failure: false,
        }
    }

    /// Replaces the file with `state`: a temporary file beside it, renamed over it.
    pub fn write(&mut self, state: &DaemonState) {
        let Some(path) = &self.path else {
            return;
        };
        let written = (|| {
            let dir = path.parent().expect("a state file lies in a directory");
            // Readable by all, so that an operator's `hacmp status` sees it; writable by us alone.
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)?;
            own_directory(dir)?;
            let temporary = dir.join(format!(".{}{SUFFIX}", state.pid));
            let _ = fs::remove_file(&temporary);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temporary)?;
            file.write_all(&serde_json::to_vec(state).expect("the state serializes"))?;
            fs::rename(&temporary, path)
        })();
        // Said once, not every round: the loop goes on without it, only status sees less.
        match written {
            Err(error) if !self.reported_failure => {
                eprintln!("hacmp: state file {}: {error}", path.display());
                self.reported_failure = true;
            }
            Err(_) => {}
            Ok(()) => self.reported_failure = false,
        }
    }
}

/// Whether `dir` is a directory of this user that nobody else may write in: a directory in
/// /tmp that another user made could hold links that turn our writes against other files.
fn own_directory(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::symlink_metadata(dir)?;
    // SAFETY: geteuid has no failure mode and no memory effects.
    let user = unsafe { libc::geteuid() };
    if !metadata.is_dir() || metadata.uid() != user || metadata.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "not a directory of user {user} that only it may write in"
        )));
    }
    Ok(())
}

/// The state of every daemon on `store` whose file this host holds, in the state directories
/// and one level below them, by host name; of two files for one host (a daemon started with
/// another state directory), the newer.
pub fn read_all(store: &str) -> Vec<DaemonState> {
    let mut dirs = state_directories();
    // A root daemon's directory, which other users may read though they cannot write in it.
    let system = PathBuf::from(SYSTEM_DIRECTORY);
    if chosen_directory().is_none() && !dirs.contains(&system) {
        dirs.push(system);
    }
    read_all_in(dirs, store)
}

fn read_all_in(directories: Vec<PathBuf>, store: &str) -> Vec<DaemonState> {
    let mut found: Vec<DaemonState> = Vec::new();
    // A unit's RuntimeDirectory=hacmp/%i (compat/reattach.conf) is one level below /run/hacmp.
    let below = |dir: &Path| -> Vec<PathBuf> {
        let entries = fs::read_dir(dir).into_iter().flatten().flatten();
        entries
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect()
    };
    let dirs = directories.into_iter().flat_map(|dir| {
        let inner = below(&dir);
        std::iter::once(dir).chain(inner)
    });
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().ends_with(SUFFIX) || name.to_string_lossy().starts_with('.')
            {
                continue;
            }
            let Some(state) = fs::read(entry.path())
                .ok()
                .and_then(|bytes| serde_json::from_slice::<DaemonState>(&bytes).ok())
                .filter(|state| state.store == store)
            else {
                continue;
            };
            match found.iter_mut().find(|known| known.host == state.host) {
                Some(known) if known.written < state.written => *known = state,
                Some(_) => {}
                None => found.push(state),
            }
        }
    }
    found.sort_by(|a, b| a.host.cmp(&b.host));
    found
}

/// FNV-1a, 64 bits: a file name that stays the same from one build to the next.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_of_a_dead_process_reads_as_stopped() {
        let me = std::process::id();
        let mut state = DaemonState {
            host: "nodeA".to_string(),
            store: "directories /srv/hb".to_string(),
            pid: me,
            started: start_time(me).unwrap(),
            role: "standby".to_string(),
            master: None,
            wait: None,
            written: 0,
            warnings: Vec::new(),
        };
        assert!(state.running());
        state.started += 1;
        assert!(!state.running(), "the PID was reused by another process");
    }

    #[test]
    fn state_files_are_written_only_in_a_directory_of_our_own() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own");
        assert!(own_directory(dir.path()).is_ok());
        fs::create_dir(&own).unwrap();
        fs::set_permissions(&own, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(own_directory(&own).is_err(), "others may write in it");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(own_directory(&link).is_err(), "a link, not a directory");
    }

    #[test]
    fn states_are_found_one_level_down_and_kept_per_store_and_host() {
        let root = tempfile::tempdir().unwrap();
        let unit = root.path().join("app");
        fs::create_dir(&unit).unwrap();
        let state = |host: &str, store: &str, written: i64| DaemonState {
            host: host.to_string(),
            store: store.to_string(),
            pid: 1,
            started: 1,
            role: "standby".to_string(),
            master: None,
            wait: None,
            written,
            warnings: Vec::new(),
        };
        let put = |dir: &Path, name: &str, state: &DaemonState| {
            fs::write(dir.join(name), serde_json::to_vec(state).unwrap()).unwrap();
        };
        put(root.path(), "nodeA.1.state", &state("nodeA", "ours", 5));
        put(&unit, "nodeA.2.state", &state("nodeA", "ours", 9));
        put(&unit, "nodeB.1.state", &state("nodeB", "ours", 1));
        put(&unit, "nodeC.1.state", &state("nodeC", "theirs", 1));
        put(&unit, ".nodeD.state", &state("nodeD", "ours", 1));
        fs::write(unit.join("garbage.state"), "not json").unwrap();
        let found = read_all_in(vec![root.path().to_path_buf()], "ours");
        let seen: Vec<(&str, i64)> = (found.iter())
            .map(|state| (state.host.as_str(), state.written))
            .collect();
        assert_eq!(seen, [("nodeA", 9), ("nodeB", 1)]);
    }

    #[test]
    fn file_names_do_not_depend_on_the_build() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
