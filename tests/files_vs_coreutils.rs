//! `touch`, `stat -c %Y`, `date +%s` and `[ -f ]` against the real coreutils and bash, run in
//! the C locale on the same paths.

mod support;

use std::ffi::CString;
use std::os::unix::fs::symlink;
use std::process::Command;

use hacmp::real::files;

/// Runs `script` under bash with the paths as $1..., returning (exit status, stdout, stderr).
fn run_bash(script: &str, arguments: &[&str]) -> (i32, String, String) {
    let output = Command::new("bash")
        .env("LC_ALL", "C")
        .arg("-c")
        .arg(script)
        .arg("bash")
        .args(arguments)
        .output()
        .expect("bash runs");
    (
        output.status.code().expect("bash exits"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The places every path test uses: a file, a directory, links to both, a dangling link, a fifo.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("file"), "x").unwrap();
        std::fs::create_dir(root.join("dir")).unwrap();
        symlink("file", root.join("link-to-file")).unwrap();
        symlink("dir", root.join("link-to-dir")).unwrap();
        symlink("nowhere", root.join("dangling")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let fifo = CString::new(root.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        Fixture { dir }
    }

    fn path(&self, relative: &str) -> String {
        format!("{}/{relative}", self.dir.path().display())
    }

    /// Paths exercising every kind and every way of failing to reach a file.
    fn cases(&self) -> Vec<String> {
        let relatives = [
            "file",
            "dir",
            "link-to-file",
            "link-to-dir",
            "dangling",
            "loop",
            "fifo",
            "missing",
            "missing/below",
            "file/below",
            "it's",
            "tab\there",
            "new\nline",
        ];
        let mut cases: Vec<String> = relatives.iter().map(|r| self.path(r)).collect();
        cases.push(String::new());
        cases.push(self.path(&"n".repeat(300)));
        cases
    }
}

#[test]
fn is_regular_file_agrees_with_test_f() {
    let fixture = Fixture::new();
    for path in fixture.cases() {
        let (status, _, _) = run_bash(r#"[ -f "$1" ]"#, &[&path]);
        assert_eq!(
            files::is_regular_file(&path),
            status == 0,
            "[ -f {path:?} ]"
        );
    }
}

#[test]
fn modification_time_agrees_with_stat() {
    let fixture = Fixture::new();
    let root = fixture.dir.path();
    // Times around and before the epoch, where rounding down differs from truncating.
    support::set_mtime(&root.join("file"), -2, 500_000_000);
    support::set_mtime(&root.join("dir"), 0, 0);
    support::set_mtime(&root.join("link-to-file"), 1_700_000_000, 999_999_999);
    support::set_mtime(&root.join("dangling"), -1, 1);
    for path in fixture.cases() {
        let (status, stdout, stderr) = run_bash(r#"stat -c %Y "$1""#, &[&path]);
        let ours = files::modification_time(&path);
        match ours {
            Ok(seconds) => {
                assert_eq!(status, 0, "stat {path:?} failed: {stderr}");
                assert_eq!(stdout, format!("{seconds}\n"), "stat -c %Y {path:?}");
            }
            Err(error) => assert_eq!(stderr, format!("{error}\n"), "stat -c %Y {path:?}"),
        }
    }
}

#[test]
fn wall_clock_agrees_with_date() {
    let before = files::wall_clock_seconds();
    let (_, stdout, _) = run_bash("date +%s", &[]);
    let after = files::wall_clock_seconds();
    let date: i64 = stdout.trim().parse().expect("date prints a number");
    assert!(
        before <= date && date <= after,
        "{before} <= {date} <= {after}"
    );
}

#[test]
fn touch_agrees_with_touch() {
    let ours = Fixture::new();
    let theirs = Fixture::new();
    let mut paths: Vec<(String, String)> = ours.cases().into_iter().zip(theirs.cases()).collect();
    paths.push((
        "/sys/hacmp-cannot-create".into(),
        "/sys/hacmp-cannot-create".into(),
    ));
    for fixture in [&ours, &theirs] {
        support::set_mtime(&fixture.dir.path().join("file"), 1_000, 0);
        support::set_mtime(&fixture.dir.path().join("dir"), 1_000, 0);
    }
    for (our_path, their_path) in paths {
        let (status, _, stderr) = run_bash(r#"touch "$1""#, &[&their_path]);
        let expected = stderr.replace(&theirs.path(""), &ours.path(""));
        match files::touch(&our_path) {
            Ok(()) => assert_eq!(status, 0, "touch {their_path:?}: {stderr}"),
            Err(error) => assert_eq!(expected, format!("{error}\n"), "touch {our_path:?}"),
        }
    }
    // Both sides must now hold the same names, each touched to a current time.
    let now = files::wall_clock_seconds();
    let listing = |fixture: &Fixture| {
        let mut names: Vec<(String, bool)> = std::fs::read_dir(fixture.dir.path())
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let modified = files::modification_time(entry.path().to_str().unwrap()).unwrap();
                (
                    entry.file_name().into_string().unwrap(),
                    modified > now - 60,
                )
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(listing(&ours), listing(&theirs));
}
