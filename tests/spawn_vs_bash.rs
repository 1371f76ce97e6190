//! `words::expand_unquoted` against bash's own expansion of an unquoted variable, and
//! `Children::start_detached` against `nohup $startCmd > $log 2>&1 &` run by bash: what the
//! started program sees, what lands in the log, and that no zombie is left behind.
//!
//! Every started process carries a random marker in its command line, runs from its own temp
//! directory and exits by itself; any still alive at the end is ended by its PID.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hacmp::real::spawn::Children;
use hacmp::words::expand_unquoted;
use proptest::prelude::*;

/// The words bash makes of an unquoted `$X` in `cwd`, NUL-separated by the loop.
fn bash_words(text: &str, cwd: &Path) -> Vec<String> {
    let output = Command::new("bash")
        .env("LC_ALL", "C")
        .env("X", text)
        .current_dir(cwd)
        .args(["-c", r#"for word in $X; do printf '%s\0' "$word"; done"#])
        .output()
        .expect("bash runs");
    let mut words: Vec<String> = output
        .stdout
        .split(|&b| b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    assert_eq!(
        words.pop().as_deref(),
        Some(""),
        "output ends with NUL or is empty"
    );
    words
}

/// A directory whose names exercise globbing: hidden files, brackets, backslashes, spaces.
fn glob_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "a", "ab", "b.c", ".h", "a b", "x]", "[x", "\\a", "a*", "-b", "a-b",
    ] {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    for sub in ["d", "a.d"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        std::fs::write(dir.path().join(sub).join("a"), "").unwrap();
    }
    dir
}

fn random_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("a"),
            Just("b"),
            Just("x"),
            Just("d"),
            Just("."),
            Just("/"),
            Just("*"),
            Just("?"),
            Just("["),
            Just("]"),
            Just("!"),
            Just("^"),
            Just("-"),
            Just("\\"),
            Just("'"),
            Just("\""),
            Just(" "),
            Just("\t"),
            Just("\n"),
            Just("[:alpha:]"),
            Just("$"),
        ],
        0..10,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Each text is tried as given (matching in the working directory, which bash shares) and after
    /// the fixture's absolute path.
    #[test]
    fn expansion_agrees_with_bash(text in random_text()) {
        let dir = glob_fixture();
        let cwd = std::env::current_dir().unwrap();
        for prefixed in [text.clone(), format!("{}/{text}", dir.path().display())] {
            prop_assert_eq!(expand_unquoted(&prefixed), bash_words(&prefixed, &cwd),
                "unquoted {:?}", prefixed);
        }
    }
}

/// Slashes after the last glob collapse into one, and a backslash among them escapes nothing and
/// disappears (found by the property test above with `*/\ ` and `*//`).
#[test]
fn trailing_slashes_and_backslashes_after_a_glob_agree_with_bash() {
    let dir = glob_fixture();
    let cwd = std::env::current_dir().unwrap();
    let root = dir.path().display();
    for text in [
        "*/\\ ".to_string(),
        format!("{root}/*/\\"),
        format!("{root}/d*/a\\"),
        format!("{root}/*\\"),
        format!("{root}/*//"),
        format!("{root}/*///\\/"),
    ] {
        assert_eq!(
            expand_unquoted(&text),
            bash_words(&text, &cwd),
            "unquoted {text:?}"
        );
    }
}

/// Collating symbols and equivalence classes in bracket expressions: `[.a.]` and `[=a=]` stand
/// for `a`, a `[.` without its `.]` makes the '[' before it an ordinary character, a `[=` without
/// its `=]` is two members (found by the property test above with `[![.]`).
#[test]
fn collating_symbols_in_brackets_agree_with_bash() {
    let dir = glob_fixture();
    let cwd = std::env::current_dir().unwrap();
    let root = dir.path().display();
    for pattern in [
        "[![.]", "[[.a.]]", "[![.a.]]", "[[=a=]]", "[[.]", "[[=]", "[a[.]", "[[.a.]d]", "[[.ab.]]",
        "[[.].]",
    ] {
        let text = format!("{root}/{pattern}");
        assert_eq!(
            expand_unquoted(&text),
            bash_words(&text, &cwd),
            "unquoted {text:?}"
        );
    }
}

/// A script recording what the started program sees, then exiting by itself.
const RECORDER: &str = r#"#!/bin/sh
dir=$(dirname "$0")
{
    printf '<%s>' "$@"; echo
    while read key value rest; do
        case $key in SigIgn:|SigBlk:) echo "$key $value" ;; esac
    done < /proc/$$/status
    read -r stat < /proc/$$/stat
    set -- ${stat##*) }
    echo "pgid=$3 sid=$4"
    echo "stdin=$(readlink /proc/$$/fd/0)"
    echo "stdout=$(readlink /proc/$$/fd/1) stderr=$(readlink /proc/$$/fd/2)"
    echo "to the log"
    echo "to the log on stderr" >&2
} > "$dir/record.tmp"
mv "$dir/record.tmp" "$dir/record"
"#;

fn marker() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    format!("marker{}", u64::from_ne_bytes(bytes))
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Waits, boundedly, for `path` to exist and returns its content.
fn await_file(path: &Path) -> String {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} never appeared", path.display());
}

/// bash running the script's line; `wait` only so that the log is complete when we read it.
fn bash_start(command: &str, log: &str) -> String {
    let output = Command::new("env")
        .env("LC_ALL", "C")
        .env("startCmd", command)
        .env("startCmdLogFile", log)
        .args([
            "--default-signal",
            "bash",
            "-c",
            "nohup $startCmd > $startCmdLogFile 2>&1 & wait",
        ])
        .output()
        .expect("bash runs");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ours_start(command: &str, log: &str) -> String {
    match Children::default().start_detached(command, log) {
        Ok(()) => String::new(),
        Err(error) => format!("{error}\n"),
    }
}

#[test]
fn started_program_sees_what_bash_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    write_script(&dir.path().join("recorder"), RECORDER);
    std::fs::write(dir.path().join("g1"), "").unwrap();
    std::fs::write(dir.path().join("g2"), "").unwrap();
    let command = format!(
        "{root}/recorder {} 'quoted words' a\\b\t{root}/g* {root}/none*",
        marker()
    );
    let log = format!("{root}/log");

    let mut records = Vec::new();
    for start in [bash_start, ours_start] {
        assert_eq!(start(&command, &log), "");
        let record = await_file(&dir.path().join("record"));
        std::fs::remove_file(dir.path().join("record")).unwrap();
        records.push((record, await_file(Path::new(&log))));
    }
    // Ours resets everything but HUP, INT and QUIT, as the requirement says.
    assert!(
        records[1].0.contains("SigIgn: 0000000000000007\n"),
        "{}",
        records[1].0
    );
    let comparable =
        |(record, log): &(String, String)| (without_reserved_signals(record), log.clone());
    assert_eq!(comparable(&records[0]), comparable(&records[1]));
    let own_stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let own: Vec<&str> = own_stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert!(
        records[1]
            .0
            .contains(&format!("pgid={} sid={}", own[2], own[3])),
        "{}",
        records[1].0
    );
}

/// The record with signals 32 and 33 cleared from SigIgn: the C library reserves them, so
/// neither `env --default-signal` nor bash can reset them, and bash's child inherits whatever
/// the environment running the tests left there.
fn without_reserved_signals(record: &str) -> String {
    let reserved: u64 = (1 << 31) | (1 << 32);
    let lines = record
        .lines()
        .map(|line| match line.strip_prefix("SigIgn: ") {
            Some(hex) => {
                let ignored = u64::from_str_radix(hex, 16).expect("SigIgn is hexadecimal");
                format!("SigIgn: {:016x}", ignored & !reserved)
            }
            None => line.to_owned(),
        });
    lines.collect::<Vec<_>>().join("\n")
}

#[test]
fn log_and_failures_agree_with_bash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let marker = marker();
    write_script(
        &dir.path().join("no-shebang"),
        "echo ran by sh: $0 \"$@\"\n",
    );
    std::fs::write(dir.path().join("not-executable"), "#!/bin/sh\n").unwrap();
    let commands = [
        format!("printf short-{marker}"),
        format!("no-such-command-{marker} argument"),
        format!("{root}/not-executable {marker}"),
        format!("{root}/no-shebang {marker}"),
        format!("-- printf dashes-{marker}"),
        String::new(),
        " \t".to_owned(),
    ];
    for command in &commands {
        let mut logs = Vec::new();
        for start in [bash_start, ours_start] {
            let log = format!("{root}/log");
            std::fs::write(
                &log,
                "a long previous log that must be truncated away\n".repeat(9),
            )
            .unwrap();
            assert_eq!(start(command, &log), "", "{command:?}");
            // The commands here end at once; our start has no `wait`, so give it a bound.
            let mut text = std::fs::read_to_string(&log).unwrap();
            for _ in 0..500 {
                if !text.is_empty() && !text.contains("previous") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                text = std::fs::read_to_string(&log).unwrap();
            }
            logs.push(text);
        }
        assert_eq!(logs[0], logs[1], "{command:?}");
    }
}

#[test]
fn unopenable_log_starts_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let marker = marker();
    let log = format!("{}/missing/log", dir.path().display());
    let command = format!("touch {}/started-{marker}", dir.path().display());
    let theirs = bash_start(&command, &log);
    let ours = ours_start(&command, &log);
    assert_eq!(
        theirs.strip_prefix("bash: line 1: "),
        ours.strip_prefix("hacmp: "),
        "{theirs:?} vs {ours:?}"
    );
    assert!(!dir.path().join(format!("started-{marker}")).exists());
}

/// A PID whose command line contains `marker`, found among our own children.
fn child_with_marker(marker: &str) -> u32 {
    for _ in 0..500 {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(marker) {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no process with {marker}");
}

#[test]
fn exited_child_is_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let marker = marker();
    let release = dir.path().join("release");
    write_script(
        &dir.path().join("waiter"),
        &format!(
            "#!/bin/sh\nfor i in $(seq 500); do [ -e {} ] && exit 0; sleep 0.02; done\n",
            release.display()
        ),
    );
    let mut children = Children::default();
    let command = format!("{}/waiter {marker}", dir.path().display());
    children
        .start_detached(&command, &format!("{}/log", dir.path().display()))
        .unwrap();
    let pid = child_with_marker(&marker);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains(&format!("PPid:\t{}\n", std::process::id())),
        "{status}"
    );
    std::fs::write(&release, "").unwrap();
    let mut state = String::new();
    for _ in 0..500 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return,
            Ok(stat) => state = stat,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill has no memory effects; the PID is our own child carrying our marker.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    panic!("child {pid} was never reaped: {state}");
}
