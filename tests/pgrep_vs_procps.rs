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

use hacmp::pattern::{Collation, Encoding, Pattern};
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
    started.shell_with_arguments(
        marker,
        &[&with(
            b"lead\xc3A surrogate\xed\xa0\x80 beyond\xf4\x90\x80\x80 end",
        )],
    );
    started.shell_with_arguments(marker, &[&with("letters é٣ǅ\u{85}\u{3000}€".as_bytes())]);
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
        format!("({marker}|x{marker})(é|[^a-z ])"),
        format!("^sh .*[[:space:]]{marker}[[:punct:]]"),
        format!("{marker}lead.A"),
        format!("{marker}lead[^a]A"),
        format!("{marker}lead\\?A"),
        format!("{marker}lead.* surrogate. beyond. end"),
        format!("{marker}lead.* surrogate. beyond. end|[a-c]x"),
        format!("{marker}lead.* surrogate[^a] beyond"),
        format!("{marker}lead.* beyond[^a] end"),
        format!("{marker}letters [[:alpha:]]{{3}}[[:cntrl:]][[:space:]][[:punct:]]"),
        format!("{marker}letters [^[:alpha:]]"),
        format!("{marker}letters [[:alpha:]]+[^[:alpha:][:space:]][^[:alpha:][:cntrl:]]"),
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

/// How many random patterns `random_patterns_match_as_pgrep_f_does` tries unless FUZZ_CASES
/// says otherwise (`make fuzz-pattern` asks for thousands).
const DEFAULT_FUZZ_CASES: usize = 100;
/// Patterns tried against one batch of started processes before a fresh batch is started.
const PATTERNS_PER_BATCH: usize = 500;
/// Processes started per batch, each with a random command line.
const PROCESSES_PER_BATCH: usize = 24;
/// glibc backtracks exponentially on some patterns; a pgrep run slower than this is skipped.
const PGREP_TIME_LIMIT: Duration = Duration::from_secs(3);

/// A small deterministic generator (xorshift64*), so that a failing run can be repeated with
/// FUZZ_SEED.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T: ?Sized>(&mut self, choices: &[&'a T]) -> &'a T {
        choices[self.below(choices.len())]
    }
}

/// Pieces of command lines: ASCII the patterns mention, controls, non-ASCII characters of
/// several classes, and byte sequences that glibc and the regex crate decode differently (a lone
/// lead byte, a surrogate, code points above U+10FFFF, an overlong form).
const LINE_PIECES: &[&[u8]] = &[
    b"a",
    b"b",
    b"A",
    b"Z",
    b"1",
    b"-",
    b".",
    b"]",
    b"_",
    b" ",
    b"\t",
    b"\n",
    b"\x01",
    b"\x7f",
    "é".as_bytes(),
    "É".as_bytes(),
    "€".as_bytes(),
    "\u{85}".as_bytes(),
    "\u{a0}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{3000}".as_bytes(),
    "٣".as_bytes(),
    "𝄞".as_bytes(),
    b"\xc3",
    b"\xc3\x01",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe0\x80\x80",
];
/// Bytes that start no UTF-8 sequence: procps escapes everything from them on, so they are
/// rarer than the other pieces.
const ESCAPING_PIECES: &[&[u8]] = &[b"\xff", b"\x80", b"\xf5\x80\x80\x80"];

fn random_argument(random: &mut Random) -> Vec<u8> {
    let length = match random.below(10) {
        0 => 0,
        1 => 200 + random.below(2000),
        _ => random.below(8),
    };
    let mut argument = Vec::new();
    for _ in 0..length {
        let pieces = if random.chance(2) {
            ESCAPING_PIECES
        } else {
            LINE_PIECES
        };
        argument.extend_from_slice(random.pick(pieces));
    }
    argument
}

/// `sh -c 'read x'` named by a random argv[0] (empty too), with random arguments and the
/// marker among them.
fn start_random_process(started: &mut Started, marker: &str, random: &mut Random) -> u32 {
    let mut command = Command::new("sh");
    command.arg0(OsString::from_vec(random_argument(random)));
    command.args(["-c", "read x"]);
    let count = if random.chance(10) {
        50 + random.below(200)
    } else {
        random.below(5)
    };
    let marker_at = random.below(count + 1);
    for index in 0..=count {
        if index == marker_at {
            command.arg(marker);
        }
        command.arg(OsString::from_vec(random_argument(random)));
    }
    started.start(command, |cmdline| contains(cmdline, marker.as_bytes()))
}

/// Pattern atoms that stand for themselves, matched against `LINE_PIECES`.
const PATTERN_LITERALS: &[&[u8]] = &[
    b"a",
    b"b",
    b"A",
    b"1",
    b"-",
    b" ",
    b"_",
    b"c",
    "é".as_bytes(),
    "€".as_bytes(),
    "\u{85}".as_bytes(),
    "𝄞".as_bytes(),
    b"\\.",
    b"\\?",
    b"\\\\",
    b"\\*",
    b"\\[",
    b"\\(",
    b"\\{",
    b"}",
    b"]",
];
const BRACKET_MEMBERS: &[&[u8]] = &[
    b"a",
    b"b",
    b"A",
    b"-",
    b"?",
    b".",
    b" ",
    b"\\",
    b"^",
    "é".as_bytes(),
    "€".as_bytes(),
    "\u{a0}".as_bytes(),
    b"a-c",
    b"A-Z",
    b"!-~",
    b"\x01-\x1f",
    b" -@",
    b"[:alpha:]",
    b"[:alnum:]",
    b"[:blank:]",
    b"[:cntrl:]",
    b"[:digit:]",
    b"[:graph:]",
    b"[:lower:]",
    b"[:print:]",
    b"[:punct:]",
    b"[:space:]",
    b"[:upper:]",
    b"[:xdigit:]",
];
const REPETITIONS: &[&[u8]] = &[b"*", b"+", b"?", b"{2}", b"{0,}", b"{1,3}", b"{0,1}"];
/// What glibc refuses, reads as a GNU extension, or hacmp refuses; rarer, so that most
/// patterns are compared.
const MALFORMED: &[&[u8]] = &[
    b"\xc3",
    b"\xff",
    b"\xa9",
    b"\\d",
    b"\\w",
    b"{,2}",
    b"{3,1}",
    b"{",
    b"[c-a]",
    "[é-z]".as_bytes(),
    b"[[:word:]]",
    b"[[.a.]]",
    b"[[=a=]]",
    b"[",
    b")",
    b"*",
    b"\\1",
];

/// A random extended regular expression, mostly well-formed, sometimes not.
fn random_pattern(random: &mut Random, depth: usize) -> Vec<u8> {
    let mut pattern = Vec::new();
    let branches = 1 + usize::from(random.chance(25)) + usize::from(random.chance(10));
    for branch in 0..branches {
        if branch > 0 {
            pattern.push(b'|');
        }
        for _ in 0..1 + random.below(4) {
            pattern.extend(random_piece(random, depth));
        }
    }
    pattern
}

fn random_piece(random: &mut Random, depth: usize) -> Vec<u8> {
    let mut piece = match random.below(20) {
        0 if random.chance(20) => random.pick(MALFORMED).to_vec(),
        0..=6 => random.pick(PATTERN_LITERALS).to_vec(),
        7..=9 => b".".to_vec(),
        10..=13 => random_bracket(random),
        14 => b"^".to_vec(),
        15 => b"$".to_vec(),
        _ if depth < 3 => [b"(".as_slice(), &random_pattern(random, depth + 1), b")"].concat(),
        _ => b"a".to_vec(),
    };
    let is_anchor = piece == b"^" || piece == b"$";
    if !is_anchor && random.chance(30) {
        piece.extend_from_slice(random.pick(REPETITIONS));
        if random.chance(10) {
            piece.extend_from_slice(random.pick(REPETITIONS));
        }
    }
    piece
}

fn random_bracket(random: &mut Random) -> Vec<u8> {
    let mut bracket = b"[".to_vec();
    if random.chance(40) {
        bracket.push(b'^');
    }
    if random.chance(10) {
        bracket.push(b']');
    }
    for _ in 0..1 + random.below(3) {
        bracket.extend_from_slice(random.pick(BRACKET_MEMBERS));
    }
    if random.chance(10) {
        bracket.push(b'-');
    }
    bracket.push(b']');
    bracket
}

/// What one `pgrep -f PATTERN` run did.
enum PgrepRun {
    /// It listed these children of this test (ascending).
    Listed(Vec<u32>),
    /// It refused the pattern (glibc's regcomp did, or it took the pattern for options).
    Refused,
    /// It took longer than `PGREP_TIME_LIMIT` and was ended.
    TooSlow,
}

/// `pgrep -f PATTERN` in the locale, restricted to the children of this test.
fn pgrep_children(pattern: &[u8], locale: &str) -> PgrepRun {
    let mut child = Command::new("pgrep")
        .arg("-f")
        .args(["-P", &std::process::id().to_string()])
        .arg(OsString::from_vec(pattern.to_vec()))
        .env("LC_ALL", locale)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + PGREP_TIME_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            // Only this pgrep, by its PID; it lists processes and signals none.
            let _ = child.kill();
            let _ = child.wait();
            return PgrepRun::TooSlow;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // pgrep exits 0 when it lists something, 1 when nothing matches, 2 or 3 on an error.
    if status.code().is_none_or(|code| code > 1) {
        return PgrepRun::Refused;
    }
    let mut listing = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut listing).unwrap();
    let mut pids: Vec<u32> = listing.lines().map(|l| l.parse().unwrap()).collect();
    pids.sort_unstable();
    PgrepRun::Listed(pids)
}

/// Keeps a difference the fuzzer found, and shows it at once, so that a long run cut short still
/// tells what it found.
fn report(differences: &mut Vec<String>, difference: String) {
    eprintln!("  {difference}");
    differences.push(difference);
}

/// What one fuzzing run saw.
#[derive(Default, Debug)]
struct FuzzCounts {
    compared: usize,
    refused: usize,
    pgrep_too_slow: usize,
    matched_some: usize,
    matched_not_all: usize,
}

#[test]
fn random_patterns_match_as_pgrep_f_does() {
    let cases: usize = std::env::var("FUZZ_CASES")
        .map(|v| v.parse().expect("FUZZ_CASES is a number"))
        .unwrap_or(DEFAULT_FUZZ_CASES);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .map(|v| v.parse().expect("FUZZ_SEED is a number"))
        .unwrap_or_else(|_| RandomState::new().build_hasher().finish() | 1);
    eprintln!("pattern fuzzing: FUZZ_SEED={seed} FUZZ_CASES={cases}");
    let mut random = Random(seed);
    let mut counts = FuzzCounts::default();
    let mut differences = Vec::new();
    let mut done = 0;
    while done < cases {
        let marker = marker();
        let mut started = Started::new();
        for _ in 0..PROCESSES_PER_BATCH {
            start_random_process(&mut started, &marker, &mut random);
        }
        let batch = started.pids();
        eprintln!(
            "pattern fuzzing: {done} of {cases} patterns, {counts:?}, {} differences",
            differences.len()
        );
        for _ in 0..PATTERNS_PER_BATCH.min(cases - done) {
            done += 1;
            let pattern = random_pattern(&mut random, 0);
            for (encoding, locale) in ENCODINGS {
                let Ok(compiled) = Pattern::in_locale(&pattern, encoding, Collation::CodePoints)
                else {
                    counts.refused += 1;
                    continue;
                };
                let expected = match pgrep_children(&pattern, locale) {
                    // Other tests of this binary start children of their own, which the
                    // comparison leaves out on both sides.
                    PgrepRun::Listed(pids) => pids
                        .into_iter()
                        .filter(|pid| batch.contains(pid))
                        .collect::<Vec<u32>>(),
                    PgrepRun::Refused => {
                        report(
                            &mut differences,
                            format!(
                                "{:?} in {locale}: accepted, but pgrep refuses it",
                                String::from_utf8_lossy(&pattern)
                            ),
                        );
                        continue;
                    }
                    PgrepRun::TooSlow => {
                        counts.pgrep_too_slow += 1;
                        continue;
                    }
                };
                let ours: Vec<u32> = find(&compiled, std::process::id())
                    .into_iter()
                    .filter(|pid| batch.contains(pid))
                    .collect();
                counts.compared += 1;
                counts.matched_some += usize::from(!expected.is_empty());
                counts.matched_not_all += usize::from(expected.len() < batch.len());
                if ours != expected {
                    let lines: Vec<String> = batch
                        .iter()
                        .filter(|pid| ours.contains(pid) != expected.contains(pid))
                        .filter_map(|&pid| command_line(pid, encoding))
                        .map(|line| {
                            let shown: String =
                                String::from_utf8_lossy(&line).chars().take(120).collect();
                            format!("{shown:?}")
                        })
                        .collect();
                    report(
                        &mut differences,
                        format!(
                            "{:?} in {locale}: ours {}, pgrep {} (differing lines {})",
                            String::from_utf8_lossy(&pattern),
                            ours.len(),
                            expected.len(),
                            lines.join(", ")
                        ),
                    );
                }
            }
        }
    }
    eprintln!(
        "pattern fuzzing: {counts:?}, {} differences",
        differences.len()
    );
    assert!(differences.is_empty(), "{} differences", differences.len());
    assert!(counts.compared >= cases / 2, "{counts:?}");
    assert!(
        counts.matched_some > 0 && counts.matched_not_all > 0,
        "{counts:?}"
    );
}
