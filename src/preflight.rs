//! Checks that this machine can run the variables before the loop starts.
//!
//! bash carries on through each of these problems, printing a tool error on every loop and never
//! doing its job (a missing heartbeat directory means no heartbeat is ever written; a missing
//! command means the log fills with nohup errors while the host believes it is master). hacmp
//! refuses to start instead, with one line that names the variable and where it was set, before
//! anything is started or killed.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::advice;
use crate::config::{ConfigError, Profile, Setting, Settings, Store, Variables};
use crate::real::batch::{Outcome, Pools};
use crate::real::files::describe;
use crate::storage::{self, Listings, RealStorage, StorageProbe};

pub fn check(settings: &Settings, variables: &Variables) -> Result<(), ConfigError> {
    advice::refusal(settings, variables, is_executable_command)?;
    match &variables.store {
        // The etcd backend keeps its lease in the cluster: heartBeatDir is not used, and an
        // operator who never had a shared directory need not make one.
        Store::Etcd(_) => {}
        Store::Directories(dirs) if dirs.len() > 1 => {
            let setting = settings.get("hacmpHeartBeatDirs");
            for warning in several_directories(&RealStorage, setting, dirs)? {
                eprintln!("hacmp: warning: {warning}");
            }
        }
        Store::Directories(_) => heart_beat_dir(settings, variables)?,
    }
    let log = settings.get("startCmdLogFile");
    if !can_write_file(&variables.start_cmd_log_file) {
        return Err(log.error(&format!(
            "cannot be written{}",
            relative_to_working_directory(&variables.start_cmd_log_file)
        )));
    }
    let start_cmd = settings.get("startCmd");
    let program = variables.start_program();
    if !is_executable_command(program) {
        return Err(start_cmd.error(&format!(
            "names a program that is not an executable file{}",
            if program.contains('/') {
                relative_to_working_directory(program)
            } else {
                " in PATH".to_string()
            }
        )));
    }
    if let Some(metrics_file) = &variables.metrics_file {
        // The file is replaced by renaming a temporary file beside it, so what matters is the
        // directory.
        if !can_write_file(metrics_file) || !can_write_file(&format!("{metrics_file}.tmp")) {
            return Err(settings
                .get("hacmpMetricsFile")
                .error("cannot be written (its directory must exist and be writable)"));
        }
    }
    Ok(())
}

/// heartBeatDir alone: it must be a directory now, since the loop can do nothing without it.
fn heart_beat_dir(settings: &Settings, variables: &Variables) -> Result<(), ConfigError> {
    let heartbeat_dir = settings.get("heartBeatDir");
    let dir = Path::new(&variables.heart_beat_dir);
    if !dir.is_dir() {
        return Err(heartbeat_dir.error(&format!(
            "is not a directory{}",
            relative_to_working_directory(&variables.heart_beat_dir)
        )));
    }
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if matches!(variables.profile, Profile::Safe(_)) {
        match listings(&RealStorage, &canonical) {
            Listings::Cached(reason) => return Err(heartbeat_dir.error(&reason)),
            Listings::Unknown(reason) => {
                eprintln!("hacmp: warning: heartBeatDir {reason}");
            }
            Listings::Fresh => {}
        }
    }
    Ok(())
}

/// How long the start waits for each of several heartbeat directories to answer: a directory
/// whose site is down must not keep the daemon from starting (a hard NFS mount would hang it).
const REACH_LIMIT: Duration = Duration::from_secs(5);

/// hacmpHeartBeatDirs: a directory that cannot be reached now is no reason to refuse the start
/// (a data centre may be down while this host boots; the loop acts only with a majority), so it
/// gives a warning, returned here. A directory on a mount that caches listings is refused, and
/// one whose caching the mount table does not show gives a warning, reachable or not: the
/// mount table says so without asking its server.
fn several_directories(
    probe: &dyn StorageProbe,
    setting: &Setting,
    dirs: &[String],
) -> Result<Vec<String>, ConfigError> {
    let outcomes = Pools::default().on_each_directory(dirs, REACH_LIMIT, reach);
    let mut warnings = Vec::new();
    for (dir, outcome) in dirs.iter().zip(outcomes) {
        let (canonical, unreachable) = match outcome {
            Outcome::Answered {
                value: Ok(canonical),
                ..
            } => (canonical, None),
            Outcome::Answered {
                value: Err(why), ..
            } => (PathBuf::from(dir), Some(why)),
            Outcome::NoAnswer { .. } | Outcome::Refused { .. } => (
                PathBuf::from(dir),
                Some(format!("no answer within {} s", REACH_LIMIT.as_secs())),
            ),
        };
        match listings(probe, &canonical) {
            Listings::Cached(reason) => {
                return Err(setting.error(&format!("lists {dir}, which {reason}")));
            }
            Listings::Unknown(reason) => {
                warnings.push(format!("hacmpHeartBeatDirs lists {dir}, which {reason}"));
            }
            Listings::Fresh => {}
        }
        if let Some(why) = unreachable {
            warnings.push(format!(
                "hacmpHeartBeatDirs lists {dir}, which cannot be reached now ({why}); the loop acts only while a majority of the {} directories answers",
                dirs.len()
            ));
        }
    }
    Ok(warnings)
}

/// Whether `dir` answers as a directory now; its canonical path when it does.
fn reach(dir: &str) -> Result<PathBuf, String> {
    let path = Path::new(dir);
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => path.canonicalize().map_err(|e| describe(&e)),
        Ok(_) => Err("not a directory".to_string()),
        Err(error) => Err(describe(&error)),
    }
}

/// Whether the storage holding `dir` (canonical, or as configured when it cannot be reached)
/// lists it fresh: when two standbys claim at once, each must see the other's new file when it
/// lists the directory after the settle (docs/safe-profile.md), and a network client answers
/// listings from its cache unless told not to (`Mount::listings`). Reads of known files are
/// fresh anyway (opening a file revalidates it).
fn listings(probe: &dyn StorageProbe, dir: &Path) -> Listings {
    let mount = probe
        .mount_table()
        .ok()
        .and_then(|table| storage::mount_of(&table, dir));
    mount.map_or(Listings::Fresh, |mount| mount.listings())
}

/// Says where a relative path points, because systemd starts services in `/` and a path that
/// worked in a terminal may not work there.
fn relative_to_working_directory(path: &str) -> String {
    if path.starts_with('/') {
        return String::new();
    }
    match std::env::current_dir() {
        Ok(dir) => format!(" (relative to the working directory {})", dir.display()),
        Err(_) => String::new(),
    }
}

/// Whether `access(2)` grants `mode` on `path`: the kernel's answer for our credentials, which
/// also covers read-only mounts that permission bits do not show.
fn access(path: &Path, mode: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(name) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(name.as_ptr(), mode) == 0 }
}

/// Whether `> FILE` would succeed: an existing file we may write, or a new one in a directory we
/// may write. Nothing is created, so a refused start leaves no trace.
fn can_write_file(file: &str) -> bool {
    let path = Path::new(file);
    if path.is_dir() {
        return false;
    }
    if path.exists() {
        return access(path, libc::W_OK);
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    parent.is_dir() && access(parent, libc::W_OK | libc::X_OK)
}

/// Whether execvp would find `program`: a path is taken as it is, a bare name is looked up in
/// PATH.
pub(crate) fn is_executable_command(program: &str) -> bool {
    let is_executable_file = |path: &Path| path.is_file() && access(path, libc::X_OK);
    if program.contains('/') {
        return is_executable_file(Path::new(program));
    }
    let search_path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&search_path).any(|dir| is_executable_file(&dir.join(program)))
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// A host whose root filesystem is an NFS mount with the given options.
    struct NfsRoot(&'static str);

    impl StorageProbe for NfsRoot {
        fn filesystem_magic(&self, _: &Path) -> io::Result<i64> {
            Ok(0x6969)
        }
        fn mount_table(&self) -> io::Result<String> {
            Ok(format!("1 0 0:50 / / rw - nfs4 srv:/e {}\n", self.0))
        }
    }

    #[test]
    fn an_nfs_mount_that_caches_listings_is_refused_with_the_options_to_use() {
        match listings(&NfsRoot("rw,hard,acregmax=10"), Path::new("/")) {
            Listings::Cached(reason) => assert!(reason.contains("actimeo=0"), "{reason}"),
            other => panic!("{other:?}"),
        }
        for fresh in ["rw,hard,noac", "rw,hard,acdirmin=0,acdirmax=0"] {
            assert_eq!(listings(&NfsRoot(fresh), Path::new("/")), Listings::Fresh);
        }
    }

    fn heartbeat_dirs_setting(dirs: &[String]) -> Settings {
        let environment = [
            ("pgrepProgramName", "app".to_string()),
            ("startCmd", "/bin/true".to_string()),
            ("hacmpProfile", "safe".to_string()),
            ("hacmpHeartBeatDirs", dirs.join(" ")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        crate::config::resolve(None, &environment).unwrap()
    }

    #[test]
    fn a_heartbeat_directory_that_cannot_be_reached_is_a_warning_not_an_error() {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<String> = ["dc1", "dc2", "witness"]
            .iter()
            .map(|site| root.path().join(site).display().to_string())
            .collect();
        std::fs::create_dir(&dirs[0]).unwrap();
        std::fs::create_dir(&dirs[2]).unwrap();
        let settings = heartbeat_dirs_setting(&dirs);
        let setting = settings.get("hacmpHeartBeatDirs");
        let local = NfsRoot("rw,hard,noac");
        let warnings = several_directories(&local, setting, &dirs).unwrap();
        assert_eq!(
            warnings,
            [format!(
                "hacmpHeartBeatDirs lists {}, which cannot be reached now (No such file or directory); the loop acts only while a majority of the 3 directories answers",
                dirs[1]
            )]
        );
        std::fs::remove_dir(&dirs[0]).unwrap();
        std::fs::remove_dir(&dirs[2]).unwrap();
        let warnings = several_directories(&local, setting, &dirs).unwrap();
        assert_eq!(
            warnings.len(),
            3,
            "none reachable still starts: {warnings:?}"
        );
    }

    #[test]
    fn every_heartbeat_directory_on_a_listing_cache_is_refused_even_unreachable() {
        let dirs: Vec<String> = ["/nonexistent/dc1", "/nonexistent/dc2", "/nonexistent/w"]
            .iter()
            .map(|dir| dir.to_string())
            .collect();
        let settings = heartbeat_dirs_setting(&dirs);
        let error = several_directories(
            &NfsRoot("rw,hard,acregmax=10"),
            settings.get("hacmpHeartBeatDirs"),
            &dirs,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("lists /nonexistent/dc1, which is on an NFS mount (/) that answers directory listings from a cache"),
            "{error}"
        );
    }
}
