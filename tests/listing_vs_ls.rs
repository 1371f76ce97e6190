//! `listing::newest_entry` against `ls -1tr DIR | tail -1` from GNU coreutils in the C locale,
//! over fixed corner cases and random directories full of modification-time ties.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use hacmp::real::listing::newest_entry;
use proptest::prelude::*;

/// What `latestHB=$(ls -1tr "$DIR" | tail -1)` holds, and what ls printed on stderr.
fn real_ls(dir: &str) -> (String, String) {
    let output = Command::new("bash")
        .env("LC_ALL", "C")
        .args([
            "-c",
            r#"printf '%s' "$(ls -1tr "$1" | tail -1)""#,
            "bash",
            dir,
        ])
        .output()
        .expect("bash runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_same_as_ls(dir: &str) {
    let ours = match newest_entry(dir) {
        Ok(name) => (name, String::new()),
        Err(error) => (String::new(), format!("{error}\n")),
    };
    assert_eq!(ours, real_ls(dir), "ls -1tr {dir:?} | tail -1");
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    File,
    Directory,
    Symlink,
}

fn create(path: &Path, kind: Kind) {
    match kind {
        Kind::File => std::fs::write(path, "").unwrap(),
        Kind::Directory => std::fs::create_dir(path).unwrap(),
        // A dangling link: its own time must count, and following it would fail.
        Kind::Symlink => symlink("no-such-target", path).unwrap(),
    }
}

#[test]
fn corner_cases_agree_with_ls() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let path = |relative: &str| format!("{}/{relative}", root.display());
    std::fs::create_dir(root.join("empty")).unwrap();
    std::fs::create_dir(root.join("only-dot-files")).unwrap();
    std::fs::write(root.join("only-dot-files/.hidden"), "").unwrap();
    std::fs::create_dir(root.join("newline")).unwrap();
    std::fs::write(root.join("newline/first\nsecond"), "").unwrap();
    std::fs::create_dir(root.join("trailing-newline")).unwrap();
    std::fs::write(root.join("trailing-newline/name\n"), "").unwrap();
    std::fs::write(root.join("file"), "").unwrap();
    std::fs::write(root.join("new\nline file"), "").unwrap();
    symlink("newline", root.join("link-to-dir")).unwrap();
    symlink("file", root.join("link-to-file")).unwrap();
    symlink("nowhere", root.join("dangling")).unwrap();
    symlink("loop", root.join("loop")).unwrap();
    let cases = [
        path("empty"),
        path("only-dot-files"),
        path("newline"),
        path("trailing-newline"),
        path("file"),
        path("new\nline file"),
        path("link-to-dir"),
        path("link-to-dir/"),
        path("link-to-file"),
        path("dangling"),
        path("loop"),
        path("missing"),
        path("file/below"),
        path("it's missing"),
        path("tab\tmissing"),
        path(&"n".repeat(300)),
        String::new(),
    ];
    for case in cases {
        assert_same_as_ls(&case);
    }
}

/// Names: mostly plain, some with characters a shell or ls might treat specially.
fn entry_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c]{1,3}",
        "[a-cA-C0-9 _.~'\"*?\\\\$-]{1,6}",
        "[ab]{0,2}[\t\n][ab]{0,2}",
    ]
    .prop_filter("not . or ..", |name| name != "." && name != "..")
}

fn entry() -> impl Strategy<Value = (String, Kind, i64, i64)> {
    let kind = prop_oneof![Just(Kind::File), Just(Kind::Directory), Just(Kind::Symlink)];
    // Few distinct seconds and nanoseconds, so that ties are common, including before 1970.
    let seconds = prop_oneof![
        Just(-5_i64),
        Just(0),
        Just(1_000_000_000),
        Just(1_000_000_001)
    ];
    let nanoseconds = prop_oneof![Just(0_i64), Just(1), Just(999_999_999)];
    (entry_name(), kind, seconds, nanoseconds)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_directories_agree_with_ls(entries in prop::collection::vec(entry(), 0..12)) {
        let dir = tempfile::tempdir().unwrap();
        // One entry per name; the last generated wins.
        let unique: BTreeMap<_, _> = entries
            .into_iter()
            .map(|(name, kind, seconds, nanoseconds)| (name, (kind, seconds, nanoseconds)))
            .collect();
        for (name, (kind, seconds, nanoseconds)) in &unique {
            let path = dir.path().join(name);
            create(&path, *kind);
            support::set_mtime(&path, *seconds, *nanoseconds);
        }
        assert_same_as_ls(dir.path().to_str().unwrap());
    }
}
