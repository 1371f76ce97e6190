//! Differential tests of the /proc scan against procps-ng's `pgrep`, and of `signal` against
//! bash's `kill`, on processes this test starts. Every process carries a random marker in its
//! command line (or its name), every pattern contains the marker, and only the processes the
//! test started are ever signalled, by PID.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::hash::{BuildHasher, Hasher};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hacmp::pattern::{Encoding, Pattern};
use hacmp::real::processes::{command_line, find, signal};
use hacmp::world::Signal;

const ENCODINGS: [(Encoding, &str); 2] = [(Encoding::SingleByte, "C"), (Encoding::Utf8, "C.UTF-8")];
/// How often to look whether a started process has reached the expected state.
const POLL_ATTEMPTS: usize = 1000;
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A random marker short enough to fit in a process name (15 bytes).
fn marker() -> String {
    let random = RandomState::new().build_hasher().finish();
    format!("hq{:010x}", random & 0xff_ffff_ffff)
}

/// The processes a test started; all are killed by PID and reaped when it ends.
struct Started {
    children: Vec<Child>,
    directory: tempfile::TempDir,
}

impl Started {
    fn new() -> Started {
        Started {
            children: Vec::new(),
            directory: tempfile::tempdir().unwrap(),
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Starts `command` with its stdin held open, and waits until `ready` holds for its
    /// /proc/PID/cmdline (it has executed, and rewritten its arguments if it does so).
    fn start(&mut self, mut command: Command, ready: impl Fn(&[u8]) -> bool) -> u32 {
        let child = command
            .current_dir(self.directory.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        wait_for(|| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| ready(&c)));
        pid
    }

    /// `sh -c 'read x' ARGS...`: a shell blocked on its stdin, with ARGS in its command line.
    fn shell_with_arguments(&mut self, marker: &str, arguments: &[&[u8]]) -> u32 {
        let mut command = Command::new("sh");
        command.args(["-c", "read x"]);
        command.args(arguments.iter().map(|a| OsString::from_vec(a.to_vec())));
        self.start(command, |cmdline| contains(cmdline, marker.as_bytes()))
    }

    /// A child that has exited and is not reaped yet, named after the marker.
    fn zombie(&mut self, marker: &str) -> u32 {
        let name = self.directory.path().join(marker);
        std::os::unix::fs::symlink("/bin/true", &name).unwrap();
        let child = Command::new(&name).stdin(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        self.children.push(child);
        wait_for(|| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.rsplit(')').next().unwrap_or("").starts_with(" Z"))
        });
        pid
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for(condition: impl Fn() -> bool) {
    for _ in 0..POLL_ATTEMPTS {
        if condition() {
            return;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    panic!("a started process never reached the expected state");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Starts one process for each way a command line can be unusual.
fn start_unusual_processes(started: &mut Started, marker: &str) {
    let m = marker.as_bytes();
    let with = |tail: &[u8]| [m, tail].concat();
    let long_a = with(&vec![b'a'; 100_000]);
    let long_b = vec![b'b'; 100_000];
    started.shell_with_arguments(marker, &[m, b"two words", b"", b"after-empty", b"", b""]);
    started.shell_with_arguments(marker, &[&with(b"\ttab\x7fdel\nnewline\x01")]);
    started.shell_with_arguments(marker, &[&with("é€\u{200b}\u{85}".as_bytes())]);
    started.shell_with_arguments(marker, &[&with(b"\xffbad\xc3\xa9after")]);
    started.shell_with_arguments(marker, &[&with(b"cut\xe2\x82")]);
    started.shell_with_arguments(marker, &[&long_a, &long_b, b"tail"]);
    started.shell_with_arguments(marker, &[&with(b" trailing space ")]);
    let mut perl = Command::new("perl");
    perl.args(["-e", &format!("$0 = \"{marker} rewritten  \"; <STDIN>")]);
    started.start(perl, |cmdline| cmdline.starts_with(m));
    let mut unnamed = Command::new("cat");
    unnamed.arg0("");
    started.start(unnamed, |cmdline| cmdline == b"\0");
    started.zombie(marker);
}

/// `pgrep -a -P OUR_PID` in the locale: each child's PID and the command line pgrep matches.
fn pgrep_listing(locale: &str) -> Vec<(u32, Vec<u8>)> {
    let output = Command::new("pgrep")
        .args(["-a", "-P", &std::process::id().to_string()])
        .env("LC_ALL", locale)
        .output()
        .unwrap();
    output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let space = line.iter().position(|&b| b == b' ').unwrap();
            let pid = std::str::from_utf8(&line[..space])
                .unwrap()
                .parse()
                .unwrap();
            (pid, line[space + 1..].to_vec())
        })
        .collect()
}

#[test]
fn command_lines_are_the_ones_pgrep_matches() {
    let marker = marker();
    let mut started = Started::new();
    start_unusual_processes(&mut started, &marker);
    for (encoding, locale) in ENCODINGS {
        let listing = pgrep_listing(locale);
        for pid in started.pids() {
            let (_, expected) = listing
                .iter()
                .find(|(listed, _)| *listed == pid)
                .unwrap_or_else(|| panic!("pgrep does not list child {pid}"));
            let ours = command_line(pid, encoding).expect("the child exists");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(expected),
                "PID {pid} in {locale}"
            );
            assert_eq!(&ours, expected, "PID {pid} in {locale}");
        }
    }
}

/// `pgrep -f PATTERN` in the locale; pgrep never lists itself.
fn pgrep(pattern: &str, locale: &str) -> Vec<u32> {
    let output = Command::new("pgrep")
        .args(["-f", pattern])
        .env("LC_ALL", locale)
        .output()
        .unwrap();
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "pgrep failed on {pattern:?}"
    );
    let mut pids: Vec<u32> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    pids.sort_unstable();
    pids
}

#[test]
fn find_lists_what_pgrep_f_lists() {
    let marker = marker();
    let mut started = Started::new();
    start_unusual_processes(&mut started, &marker);
    let patterns = [
        marker.clone(),
        format!("^sh -c read x {marker} two words  after-empty$"),
        format!("{marker} two words  after"),
        format!("{marker}.tab.del newline.$"),
        format!("{marker}\\?tab\\?del newline\\?$"),
        format!("{marker}é€"),
        format!("{marker}..€"),
        format!("{marker}\\?bad\\?\\?after"),
        format!("{marker}cut\\?\\?$"),
        format!("{marker}a+ b+"),
        format!("{marker}a+ b+ tail"),
        format!("{marker}.* tail$"),
        format!("{marker} trailing space $"),
        format!("^{marker} rewritten  $"),
        format!("^\\[{marker}\\] <defunct>$"),
        format!("^\\[{marker}\\]$"),
        format!("({marker}|x)(é|[^a-z ])"),
        format!("^sh .*[[:space:]]{marker}[[:punct:]]"),
    ];
    let mut matched = 0;
    for (encoding, locale) in ENCODINGS {
        for pattern in &patterns {
            let expected = pgrep(pattern, locale);
            let compiled = Pattern::with_encoding(pattern, encoding).unwrap();
            let ours = find(&compiled, std::process::id());
            assert_eq!(ours, expected, "{pattern:?} in {locale}");
            matched += usize::from(!expected.is_empty());
        }
    }
    assert!(matched >= 20, "only {matched} patterns matched anything");
}

#[test]
fn find_leaves_out_the_given_own_pid() {
    let marker = marker();
    let mut started = Started::new();
    let pid = started.shell_with_arguments(&marker, &[marker.as_bytes()]);
    let pattern = Pattern::with_encoding(&marker, Encoding::Utf8).unwrap();
    assert_eq!(find(&pattern, std::process::id()), vec![pid]);
    assert_eq!(find(&pattern, pid), Vec::<u32>::new());
}

#[test]
fn term_ends_a_process_and_kill_ends_one_that_ignores_term() {
    let marker = marker();
    let mut started = Started::new();
    let plain = started.shell_with_arguments(&marker, &[marker.as_bytes()]);
    let mut stubborn = Command::new("sh");
    stubborn.args(["-c", "trap '' TERM; echo ready; read x", &marker]);
    let stubborn_pid = started.start(stubborn, |c| contains(c, marker.as_bytes()));
    // The trap is set before "ready" is printed; wait for the shell to get that far.
    let child = &mut started.children[1];
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout is piped")),
        &mut ready,
    )
    .unwrap();
    signal(plain, Signal::Term).unwrap();
    signal(stubborn_pid, Signal::Term).unwrap();
    signal(stubborn_pid, Signal::Kill).unwrap();
    let statuses: Vec<Option<i32>> = started
        .children
        .iter_mut()
        .map(|c| c.wait().unwrap().signal())
        .collect();
    assert_eq!(statuses, vec![Some(libc::SIGTERM), Some(libc::SIGKILL)]);
}

#[test]
fn a_missing_process_gets_bash_kill_error_line() {
    // Above the kernel's largest possible PID, so no process can have it.
    let missing = 4_194_305;
    for (signal_kind, option) in [(Signal::Term, None), (Signal::Kill, Some("-9"))] {
        let script = format!("kill {} {missing}", option.unwrap_or(""));
        let bash = Command::new("bash").args(["-c", &script]).output().unwrap();
        let bash_line = String::from_utf8(bash.stderr).unwrap();
        let expected = bash_line
            .trim_end()
            .strip_prefix("bash: line 1: ")
            .expect("bash names itself and the line");
        let ours = signal(missing, signal_kind).unwrap_err().to_string();
        assert_eq!(ours, expected);
    }
}
