//! Differential test of reading the variable file: hacmp has bash read it (src/config/bash.rs),
//! and what hacmp then runs with must be what bash itself has after `. FILE`, for each of the
//! eight variables and hacmp's own, or hacmp refuses. Compared: the corpus in
//! tests/config-corpus/ (constructs, and realistic operator files in `operators/`), the
//! original heartbeat.sh in both layouts (bash stopped at its loop), the mechanisms of issues 10
//! and 18, and random files from two generators: `generator` (the reader's old hard cases) and
//! `hard_generator` (what commands and declarations do to variables, scripts with a loop).

#[path = "config_vs_bash/generator.rs"]
mod generator;
#[path = "config_vs_bash/hard_generator.rs"]
mod hard_generator;
mod support;

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hacmp::config::{HACMP_VARIABLE_NAMES, Origin, VARIABLE_NAMES};

const CORPUS: &str = "tests/config-corpus";

/// Every variable hacmp reads: the eight of heartbeat.sh and hacmp's own.
fn our_names() -> Vec<&'static str> {
    VARIABLE_NAMES
        .iter()
        .chain(HACMP_VARIABLE_NAMES.iter())
        .copied()
        .collect()
}

/// How long the reference bash may take over one file; hacmp's own limit is the same.
const BASH_LIMIT: Duration = Duration::from_secs(10);

/// What the reference bash has after reading a file.
#[derive(Debug, PartialEq, Eq)]
enum Reference {
    /// Each of our variables as `set:VALUE`, or `:` when unset.
    Read(Vec<Vec<u8>>),
    /// bash ended (`exit`, `set -u`, `set -e`, an arithmetic error) before the file's end.
    Ended,
    /// bash ran out of time.
    TimedOut,
}

/// bash sourcing `file` in `environment` from this process (so that PPID is the same as for the
/// bash hacmp runs), with `$0` the file and no positional parameters; with `stop_line`, bash
/// stops before the first command of the file's top level on or after that line, which the
/// caller knows from how it wrote the file.
fn reference(
    file: &Path,
    environment: &HashMap<String, String>,
    stop_line: usize,
    names: &[String],
) -> Reference {
    let values: String = names
        .iter()
        .map(|name| format!(" \"${{{name}+set}}:${{{name}-}}\""))
        .collect();
    let script = format!(
        r#"_ref_stop=$1; set --
exec 3>&1
_ref_print() {{ _ref_done=1; printf '%s\0' read{values} >&3; }}
trap '[[ -n ${{_ref_done-}} ]] || printf "ended\0" >&3' EXIT
if (( _ref_stop > 0 )); then
  set -T
  trap '[[ ${{BASH_SOURCE[0]-}} == "$0" && -z ${{FUNCNAME[1]+x}} && $LINENO -ge $_ref_stop ]] && {{ set +u; _ref_print; exit 0; }}' DEBUG
fi
: "$0"
. "$0" >/dev/null 2>&1
set +u
_ref_print
"#
    );
    let mut child = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .arg(file)
        .arg(stop_line.to_string())
        .env_clear()
        .envs(environment)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let started = Instant::now();
    let timed_out = loop {
        if child.try_wait().expect("waitable").is_some() {
            break false;
        }
        if started.elapsed() > BASH_LIMIT {
            break true;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // SAFETY: kill takes no pointers; the group is the reference bash's own.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.wait();
    let output = reader.join().expect("the reader does not panic");
    if timed_out {
        return Reference::TimedOut;
    }
    let mut fields: Vec<Vec<u8>> = output.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    assert_eq!(fields.pop(), Some(Vec::new()), "the output ends with NUL");
    match fields.first().map(Vec::as_slice) {
        Some(b"read") => {
            fields.remove(0);
            assert_eq!(fields.len(), names.len());
            Reference::Read(fields)
        }
        Some(b"ended") => Reference::Ended,
        other => panic!(
            "the reference printed {other:?} for {:?}",
            String::from_utf8_lossy(&std::fs::read(file).unwrap_or_default())
        ),
    }
}

/// How hacmp and bash each see one file under one environment.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// hacmp's values are bash's, every one of ours.
    Same,
    /// hacmp refused the file with this message; `bash_failed` when bash did not read it to
    /// its end (or its boundary) either.
    Refused { message: String, bash_failed: bool },
    /// bash did not finish within its time limit; nothing is compared.
    BashTimedOut,
    /// A silent difference: the variables as (name, hacmp, bash), or hacmp reading a file bash
    /// stops on.
    Differs(Vec<(String, String, String)>),
}

/// Reads `file` as hacmp does and compares each variable with the reference.
fn compare_with_bash(
    file: &Path,
    environment: &HashMap<String, String>,
    stop_line: usize,
) -> Outcome {
    let read = hacmp::config::resolve(Some(file), environment);
    let names: Vec<String> = our_names().into_iter().map(String::from).collect();
    let expected = match reference(file, environment, stop_line, &names) {
        Reference::TimedOut => return Outcome::BashTimedOut,
        Reference::Ended => None,
        Reference::Read(values) => Some(values),
    };
    let settings = match (read, expected) {
        (Err(error), expected) => {
            return Outcome::Refused {
                message: error.to_string(),
                bash_failed: expected.is_none(),
            };
        }
        (Ok(_), None) => {
            return Outcome::Differs(vec![(
                "(file)".to_string(),
                "read".to_string(),
                "bash ended before its end".to_string(),
            )]);
        }
        (Ok(settings), Some(expected)) => (settings, expected),
    };
    let (settings, expected) = settings;
    let mut differences = Vec::new();
    for (name, expected) in our_names().into_iter().zip(expected) {
        let setting = settings.get(name);
        let actual = match setting.origin {
            Origin::File { .. } | Origin::Environment => format!("set:{}", setting.value),
            _ => ":".to_string(),
        };
        if actual.as_bytes() != expected {
            differences.push((
                name.to_string(),
                actual,
                String::from_utf8_lossy(&expected).into_owned(),
            ));
        }
    }
    if differences.is_empty() {
        Outcome::Same
    } else {
        Outcome::Differs(differences)
    }
}

/// The whole environment of the corpus: fixed, so that results do not depend on the machine,
/// except PATH, which commands need to find their programs.
fn corpus_environment() -> HashMap<String, String> {
    let mut environment: HashMap<String, String> = [
        ("HOME", "/tmp/hacmp-corpus-home"),
        ("HOSTNAME", "web01.dc1.example.com"),
        ("CORPUS_NAME", "alice"),
        ("CORPUS_EMPTY", ""),
        ("CORPUS_SPACED", "two  words"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    environment.insert("PATH".to_string(), path_variable());
    environment
}

fn sh_files(directory: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .expect("the corpus directory exists")
        .map(|entry| entry.expect("the corpus directory is readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "sh"))
        .collect();
    files.sort();
    files
}

/// Every file of a corpus directory is accepted and read exactly as bash reads it.
fn corpus_reads_as_bash(directory: &Path, at_least: usize) {
    let files = sh_files(directory);
    assert!(
        files.len() >= at_least,
        "{} has only {} files",
        directory.display(),
        files.len()
    );
    for file in &files {
        let outcome = compare_with_bash(file, &corpus_environment(), 0);
        assert_eq!(outcome, Outcome::Same, "{}", file.display());
        every_variable_reads_as_bash(file);
    }
}

/// Not only ours: every variable the file creates comes through bash's report as bash has it,
/// whatever its bytes.
fn every_variable_reads_as_bash(file: &Path) {
    let environment = corpus_environment();
    let environment: Vec<(std::ffi::OsString, std::ffi::OsString)> = environment
        .iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let ask = |watched: &[String]| {
        hacmp::config::bash::evaluate(&hacmp::config::bash::Request {
            file,
            environment: &environment,
            watched,
            stop_line: None,
        })
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    };
    let created = ask(&[]).created;
    assert!(
        !created.is_empty(),
        "{} creates no variable",
        file.display()
    );
    let evaluation = ask(&created);
    let Reference::Read(expected) = reference(file, &corpus_environment(), 0, &created) else {
        panic!("bash does not read {}", file.display());
    };
    for (variable, expected) in evaluation.variables.iter().zip(expected) {
        let actual = match &variable.value {
            Some(value) => [b"set:".as_slice(), value].concat(),
            None => b":".to_vec(),
        };
        assert_eq!(
            String::from_utf8_lossy(&actual),
            String::from_utf8_lossy(&expected),
            "{}: {}",
            file.display(),
            variable.name
        );
    }
}

#[test]
fn corpus_files_read_as_bash_sources_them() {
    corpus_reads_as_bash(Path::new(CORPUS), 30);
}

#[test]
fn operators_variable_files_are_all_accepted_and_read_as_bash() {
    corpus_reads_as_bash(&Path::new(CORPUS).join("operators"), 30);
}

/// heartbeat.sh as upstream lays it out: each function's `{` on a line of its own, and more
/// blank lines.
fn upstream_layout(text: &str) -> String {
    let braces = regex::Regex::new(r"(?m)^function (\w+) \{$").unwrap();
    let text = braces.replace_all(text, "function $1\n{");
    text.replace("\n\n", "\n\n\n")
}

#[test]
fn the_original_heartbeat_script_in_either_layout_reads_as_bash_before_its_loop() {
    let seed = std::fs::read_to_string(support::original_script()).expect("the script is readable");
    let directory = tempfile::tempdir().unwrap();
    for text in [seed.clone(), upstream_layout(&seed)] {
        let file = directory.path().join("heartbeat.sh");
        std::fs::write(&file, &text).unwrap();
        // The main loop is the script's first line that starts with `while`.
        let lines: Vec<&str> = text.lines().collect();
        let loop_line = 1 + lines.iter().position(|l| l.starts_with("while")).unwrap();
        let outcome = compare_with_bash(&file, &corpus_environment(), loop_line);
        assert_eq!(outcome, Outcome::Same);
        let settings = hacmp::config::resolve(Some(&file), &corpus_environment()).unwrap();
        for name in VARIABLE_NAMES {
            let Origin::File { line, .. } = settings.get(name).origin else {
                panic!("{name} is not from the script");
            };
            assert!(
                lines[line - 1].starts_with(&format!("{name}=")),
                "{name} is not assigned on line {line}"
            );
        }
    }
}

fn path_variable() -> String {
    std::env::var("PATH").expect("the test runs with a PATH")
}

/// As systemd starts a service: no HOME, no PWD, only what the unit sets.
fn systemd_like() -> HashMap<String, String> {
    HashMap::from([("PATH".to_string(), path_variable())])
}

/// As a login shell leaves things: HOME, PWD, SHLVL, USER and friends.
fn login_like() -> HashMap<String, String> {
    let here = std::env::current_dir().expect("a working directory");
    [
        ("HOME", "/tmp/hacmp-fuzz-home"),
        ("USER", "operator"),
        ("LOGNAME", "operator"),
        ("SHELL", "/bin/bash"),
        ("SHLVL", "1"),
        ("TERM", "xterm"),
        ("LANG", "C.UTF-8"),
        ("OLDPWD", "/tmp"),
        ("PWD", here.to_str().expect("a UTF-8 working directory")),
        ("PATH", &path_variable()),
        ("startCmd", "/from/the/environment"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The environments `compare_text` uses, in its order.
const ENVIRONMENTS: [&str; 2] = ["systemd-like", "login-like"];

/// Writes `text` to a fresh file in `directory` and compares it under both environments;
/// `stop_line` is where bash stops (0: nowhere).
fn compare_text(directory: &Path, text: &[u8], stop_line: usize) -> [Outcome; 2] {
    let file = directory.join("vars.sh");
    std::fs::write(&file, text).expect("the temporary directory is writable");
    [systemd_like(), login_like()]
        .map(|environment| compare_with_bash(&file, &environment, stop_line))
}

/// Issue 10's and issue 18's mechanisms, each a file the hand-written reader once read
/// differently from bash or refused although bash reads it: now every one reads as bash reads
/// it. Then what bash itself fails on, and what hacmp refuses for the operator's sake.
#[test]
fn each_mechanism_of_issues_10_and_18_is_read_as_bash() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let read_as_bash: &[(&str, usize)] = &[
        // Issue 10: bash's own variables, tildes, quotes in ${x-…}, comments in $( ).
        ("maintenanceFile=$PWD/maintenance\n", 0),
        (
            "startCmd=\"$UID:$EUID:$SHLVL:$PPID:$OSTYPE:$BASH_SOURCE:$LINENO\"\n",
            0,
        ),
        (
            "hostName=$HOSTNAME\nheartBeatDir=~/hb\nstartCmdLogFile=~\n",
            0,
        ),
        (
            "startCmd=${nope-x:~/y}\nhostName=x${nope-~/y}\nheartBeatDir=\"${nope-~/y}\"\n",
            0,
        ),
        (
            "startCmd=\"${nope-'a}b'}\"\nhostName=\"${nope:-'$PWD'}\"\n",
            0,
        ),
        ("startCmd=$( (echo a)#b)\n)\n", 0),
        (
            "hm=1\nhmx=2\nstartCmd=$hm\\\nx\nhostName=${hm\\\nx}$\\\nhmx\n",
            0,
        ),
        (
            "startCmd=$[1+2]\nhostName=$(case a in a) echo a;; esac)\n",
            0,
        ),
        (
            "#!/bin/bash\nexport \"maintenanceFile=/x\"\nstartCmd=(a b)\nhostName[1]=x\n",
            0,
        ),
        // Issue 18: what a skipped command does, in a script and inside compound commands.
        (
            "#!/bin/bash\n: ${HB_DIR:=/mnt/hb}\nmaintenanceFile=$HB_DIR/maint\nwhile :; do :; done\n",
            4,
        ),
        (
            "if true; then : ${HB_DIR:=/mnt/hb}; fi\nmaintenanceFile=$HB_DIR/maint\n",
            0,
        ),
        (
            "(( x = 7 ))\nloopTime=$x\nfaileOverTime=$(( y = 20 ))$y\n",
            0,
        ),
        (
            "let \"x = 5\"\nloopTime=$x\nprintf -v startCmd '%s' /opt/app\n",
            0,
        ),
        (
            "IFS=: read -r a b <<< 'n1:/hb'\nhostName=$a heartBeatDir=$b\n",
            0,
        ),
        (
            "declare -u hostName\nhostName=node1\ndeclare -l startCmd=/OPT/X\n",
            0,
        ),
        (
            "declare -i loopTime\nloopTime=2+3\ndeclare -n ref=startCmd\nref=/via/nameref\n",
            0,
        ),
        ("v=startCmd\nexport \"$v=/x\"\n", 0),
        (
            "shopt -s expand_aliases\nalias setit='startCmd=/aliased'\nsetit\n",
            0,
        ),
        ("f() { trap 'startCmd=/on-return' RETURN; }\nf\n", 0),
        ("startCmd=$(echo $UID)\nhostName=$(echo $HOSTNAME)\n", 0),
        (
            "startCmd=$(x=(a b); echo ${x[1]})\nhostName=$([[ a == a ]] && cat <<< yes)\n",
            0,
        ),
        ("startCmd=$(echo 'a\\tb')\n", 0),
        (
            "[ -f /nonexistent ] && . /nonexistent\nif [ -r /nonexistent ]; then . /nonexistent; fi\nstartCmd=/x\n",
            0,
        ),
        (
            "declare -r startCmd=/ro\ntypeset -i loopTime=4\nset -u\nh=x\nunset h\n[ -z \"${x:-}\" ] && x=1\n",
            0,
        ),
        ("hostName=${HOSTNAME%%.*}\nfaileOverTime=$((2*60))\n", 0),
    ];
    for (text, stop_line) in read_as_bash {
        let outcomes = compare_text(directory.path(), text.as_bytes(), *stop_line);
        assert_eq!(outcomes, [Outcome::Same, Outcome::Same], "{text:?}");
    }
    // bash fails: hacmp refuses with bash's message, naming the file and line.
    let bash_fails: &[(&str, &str)] = &[
        (
            "declare -i loopTime\nloopTime=abc+\n",
            ":2: bash: abc+: syntax error",
        ),
        (
            "set -u\nstartCmd=$nope\n",
            ":2: bash: nope: unbound variable",
        ),
        (
            "startCmd=/x\nexit 3\n",
            ":2: bash ended here with exit status 3",
        ),
        (
            "set -e\nfalse\nstartCmd=/x\n",
            ":2: bash ended here with exit status 1",
        ),
        (
            "startCmd=/x\nif then\n",
            ":2: bash: syntax error near unexpected token `then'",
        ),
    ];
    for (text, message) in bash_fails {
        for outcome in compare_text(directory.path(), text.as_bytes(), 0) {
            let Outcome::Refused {
                message: refusal,
                bash_failed,
            } = &outcome
            else {
                panic!("{text:?} is not refused: {outcome:?}");
            };
            assert!(
                refusal.contains(&format!("vars.sh{message}")),
                "{text:?}: {refusal}"
            );
            // A syntax error ends only the file that holds it: bash would carry on.
            assert!(
                *bash_failed || message.contains("syntax error near"),
                "{text:?}"
            );
        }
    }
    // hacmp refuses what bash reads, for the operator's sake.
    let refused: &[(&[u8], &str)] = &[
        (
            b"startCmd=/x\r\n",
            "vars.sh:1: startCmd holds a carriage return: the file has Windows line ends, convert it with dos2unix",
        ),
        (
            b"hostName=nodeX\r\n",
            "vars.sh:1: hostName holds a carriage return",
        ),
        (
            b"faileoverTime=30\n",
            "vars.sh:1: faileoverTime is set, but hacmp reads no such variable: did you mean faileOverTime?",
        ),
        (
            b"x=1\nhacmpProfle=safe\n",
            "vars.sh:2: hacmpProfle is set, but hacmp reads no such variable: did you mean hacmpProfile?",
        ),
        (b"heartbeatDir=/mnt/hb\n", "did you mean heartBeatDir?"),
        (
            b"\xef\xbb\xbfstartCmd=/x\n",
            "vars.sh:1: the file starts with a byte order mark",
        ),
        (
            b"startCmd=/x\xff\n",
            "vars.sh:1: startCmd is not UTF-8 text",
        ),
    ];
    for (text, message) in refused {
        for outcome in compare_text(directory.path(), text, 0) {
            let Outcome::Refused {
                message: refusal, ..
            } = &outcome
            else {
                panic!(
                    "{:?} is not refused: {outcome:?}",
                    String::from_utf8_lossy(text)
                );
            };
            assert!(refusal.contains(message), "{refusal}");
            assert!(
                !refusal.contains('\r'),
                "a raw carriage return: {refusal:?}"
            );
        }
    }
    // Helpers unrelated to our names are the file's business.
    let helpers = "HB_DIR=/mnt/hb\nAPP_HOME=/opt/app\nhostname=$(hostname)\nhostName=$hostname\n";
    let outcomes = compare_text(directory.path(), helpers.as_bytes(), 0);
    assert_eq!(outcomes, [Outcome::Same, Outcome::Same]);
}

/// A refusal's message without its file and line, to count refusals by kind.
fn refusal_kind(message: &str) -> &str {
    message.splitn(3, ':').nth(2).unwrap_or(message).trim()
}

/// How many random files `cargo test` compares; `make fuzz-config` sets FUZZ_CASES higher.
const DEFAULT_FUZZ_CASES: u64 = 400;

/// Random files from `generator`, each compared with bash under both environments. FUZZ_SEED
/// replays a run; a failure names each differing file's seed.
#[test]
fn random_variable_files_read_as_bash_or_are_refused() {
    fuzz("generator", |seed| {
        let generated = generator::variable_file(&mut generator::Random::new(seed));
        (generated.text, generated.stop_line)
    });
}

/// Random files from `hard_generator`, aimed at what commands and declarations do to variables,
/// at `$(…)` with bash's own syntax, sourced files and scripts with a loop. `make fuzz-config`
/// runs it too.
#[test]
fn hard_random_variable_files_read_as_bash_or_are_refused() {
    fuzz("hard_generator", |seed| {
        let generated = hard_generator::variable_file(&mut generator::Random::new(seed));
        (generated.text, generated.stop_line)
    });
}

/// Compares FUZZ_CASES files from `generate` (text and the line where bash stops) with bash,
/// from seed FUZZ_SEED, and reports the counts: read as bash, refused (and of those, how many
/// bash itself fails on), differing.
fn fuzz(name: &str, generate: impl Fn(u64) -> (Vec<u8>, usize)) {
    let cases: u64 = std::env::var("FUZZ_CASES")
        .ok()
        .map(|n| n.parse().expect("FUZZ_CASES is a number"))
        .unwrap_or(DEFAULT_FUZZ_CASES);
    let first_seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .map(|n| n.parse().expect("FUZZ_SEED is a number"))
        .unwrap_or(1);
    let show_refusals = std::env::var_os("FUZZ_SHOW_REFUSALS").is_some();
    let directory = tempfile::tempdir().expect("a temporary directory");
    let started = Instant::now();
    let (mut same, mut refused, mut bash_failed, mut timed_out) = (0, 0, 0, 0);
    let mut differing = Vec::new();
    let mut not_comparable = 0;
    for seed in first_seed..first_seed + cases {
        let (text, stop_line) = generate(seed);
        // `$$` differs between any two runs of bash, and `$-` shows the reading bash's own
        // options (compat/DIVERGENCES.md, entry 19): a file that expands either is not compared.
        if text.windows(2).any(|pair| pair == b"$$" || pair == b"$-") {
            not_comparable += 1;
            continue;
        }
        for (environment, outcome) in
            ENVIRONMENTS
                .iter()
                .zip(compare_text(directory.path(), &text, stop_line))
        {
            match outcome {
                Outcome::Same => same += 1,
                Outcome::Refused {
                    message: why,
                    bash_failed: failed,
                } => {
                    refused += 1;
                    bash_failed += usize::from(failed);
                    if show_refusals {
                        eprintln!("refused: {}", refusal_kind(&why));
                    }
                }
                Outcome::BashTimedOut => timed_out += 1,
                Outcome::Differs(differences) => differing.push(format!(
                    "seed {seed}, {environment}: {:?}\n  (name, hacmp, bash): {differences:?}",
                    std::ffi::OsStr::from_bytes(&text)
                )),
            }
        }
    }
    eprintln!(
        "{name}: {cases} files from seed {first_seed}, two environments each, in {:.1?}: \
         {same} read as bash, {refused} refused ({bash_failed} of them where bash itself fails), \
         {timed_out} bash timeouts, {} differ; {not_comparable} files not compared ($$ or $-)",
        started.elapsed(),
        differing.len()
    );
    assert!(
        differing.is_empty(),
        "silent differences from bash:\n{}",
        differing.join("\n")
    );
    assert!(
        same > 0 && refused > 0,
        "the generator must produce both readable and refused files"
    );
}
