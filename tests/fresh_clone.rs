//! `make test` as a fresh clone runs it: the bash original is found first (.ci/original), or the
//! run stops with one line saying how to provide it before anything is built or run. Cargo is
//! a stub here that only records its calls, so these tests check the entry, not the suite.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The upstream heartbeat.sh that .ci/original downloads, by its SHA-256.
const UPSTREAM_SHA256: &str = "85b956ec58ecd16d00b8a5eb14e9701ae28fa7290460ccb1dd22c486b3117084";

/// What `make test` did.
#[derive(Debug)]
enum Outcome {
    /// It recorded this original and went on to lint and test.
    Found(PathBuf),
    /// It stopped with this one line, having called cargo for nothing.
    Stopped(String),
}

/// A clone of the project's entry (the Makefile and .ci/) at `root/clone/hacmp`, so that its
/// `../shared` is `root/clone/shared`, absent unless a test creates it.
fn fresh_clone(root: &Path) -> PathBuf {
    let repo = root.join("clone/hacmp");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    fs::create_dir_all(repo.join(".ci")).unwrap();
    fs::copy(source.join("Makefile"), repo.join("Makefile")).unwrap();
    for entry in fs::read_dir(source.join(".ci")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), repo.join(".ci").join(entry.file_name())).unwrap();
    }
    repo
}

fn executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `make test` in `repo` with a cargo that records its arguments, HACMP_ORIGINAL as given
/// and `path_first` (a directory of stub tools) ahead of PATH.
fn make_test(repo: &Path, original: Option<&Path>, path_first: Option<&Path>) -> Outcome {
    let calls = repo.join("cargo-calls");
    let _ = fs::remove_file(&calls);
    let cargo = repo.join("cargo-stub");
    executable(
        &cargo,
        &format!("#!/bin/sh\necho \"$*\" >> {}\n", calls.display()),
    );
    let mut make = Command::new("make");
    make.arg("test")
        .arg(format!("CARGO={}", cargo.display()))
        .current_dir(repo)
        .env_remove("HACMP_ORIGINAL")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL");
    if let Some(original) = original {
        make.env("HACMP_ORIGINAL", original);
    }
    if let Some(dir) = path_first {
        let path = std::env::var("PATH").unwrap();
        make.env("PATH", format!("{}:{path}", dir.display()));
    }
    let output = make.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let called = fs::read_to_string(&calls).unwrap_or_default();
    if output.status.success() {
        assert_eq!(
            called.lines().collect::<Vec<_>>(),
            [
                "fmt --check",
                "clippy --all-targets -- -D warnings",
                "test --all-targets --no-fail-fast"
            ],
            "stderr: {stderr}"
        );
        let record = fs::read_to_string(repo.join("target/original/path")).unwrap();
        return Outcome::Found(PathBuf::from(record.trim_end()));
    }
    assert_eq!(called, "", "nothing ran before the stop");
    // make adds its own `make: *** [...] Error 1` after the script's line.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with("make: ***"))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains("set HACMP_ORIGINAL=/path/to/heartbeat.sh"),
        "it says how to provide the original: {}",
        lines[0]
    );
    assert!(
        !repo.join("target/original/path").exists(),
        "no original recorded"
    );
    Outcome::Stopped(lines[0].to_string())
}

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_string()
}

#[test]
fn a_fresh_clone_downloads_the_pinned_original_or_stops_with_one_line() {
    let root = tempfile::tempdir().unwrap();
    let repo = fresh_clone(root.path());
    match make_test(&repo, None, None) {
        Outcome::Found(path) => {
            assert_eq!(path, repo.join("target/original/heartbeat.sh"));
            assert_eq!(sha256(&path), UPSTREAM_SHA256);
        }
        Outcome::Stopped(line) => assert!(
            line.contains("could not be downloaded"),
            "without a network it says so: {line}"
        ),
    }
}

#[test]
fn an_original_beside_the_clone_is_found() {
    let root = tempfile::tempdir().unwrap();
    let repo = fresh_clone(root.path());
    let shared = root.path().join("clone/shared/seed/heartbeat.sh");
    fs::create_dir_all(shared.parent().unwrap()).unwrap();
    fs::copy(support::original_script(), &shared).unwrap();
    match make_test(&repo, None, None) {
        Outcome::Found(path) => assert_eq!(path, shared.canonicalize().unwrap()),
        Outcome::Stopped(line) => panic!("the original beside the clone was not found: {line}"),
    }
}

#[test]
fn hacmp_original_wins_and_a_wrong_one_stops_the_run() {
    let root = tempfile::tempdir().unwrap();
    let repo = fresh_clone(root.path());
    let original = support::original_script().canonicalize().unwrap();
    match make_test(&repo, Some(&original), None) {
        Outcome::Found(path) => assert_eq!(path, original),
        Outcome::Stopped(line) => panic!("HACMP_ORIGINAL was not used: {line}"),
    }
    let missing = root.path().join("no-such-heartbeat.sh");
    match make_test(&repo, Some(&missing), None) {
        Outcome::Stopped(line) => assert!(
            line.contains(&format!(
                "HACMP_ORIGINAL={} is not a file",
                missing.display()
            )),
            "{line}"
        ),
        Outcome::Found(path) => panic!("a missing HACMP_ORIGINAL fell through to {path:?}"),
    }
}

#[test]
fn a_download_with_another_checksum_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let repo = fresh_clone(root.path());
    let tools = root.path().join("tools");
    fs::create_dir(&tools).unwrap();
    // A curl that "downloads" something else, as a tampered or moved file would be.
    executable(
        &tools.join("curl"),
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n\t[ \"$1\" = -o ] && echo 'echo not heartbeat.sh' > \"$2\"\n\tshift\ndone\n",
    );
    match make_test(&repo, None, Some(&tools)) {
        Outcome::Stopped(line) => assert!(
            line.contains(&format!("its SHA-256 is not {UPSTREAM_SHA256}")),
            "{line}"
        ),
        Outcome::Found(path) => panic!("an unverified download was used: {path:?}"),
    }
    let kept: Vec<_> = fs::read_dir(repo.join("target/original"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(kept.is_empty(), "the download was deleted: {kept:?}");
}
