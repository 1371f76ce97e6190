//! Differential test of the shell variable reader: every file in tests/config-corpus/ is sourced
//! by bash and read by `read_assignments`, and the variables must come out the same. The original
//! heartbeat.sh is compared too, against bash running only its assignment lines. Then the
//! mechanisms of issue 10, and random files from `generator`: each is either read exactly as
//! bash reads it, under a systemd-like and a login-like environment, or refused.

#[path = "config_vs_bash/generator.rs"]
mod generator;
mod support;

use std::collections::{BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hacmp::config::shell::{Assignment, read_assignments};
use hacmp::config::{Origin, VARIABLE_NAMES};

const CORPUS: &str = "tests/config-corpus";

/// The whole environment both bash and the reader see: fixed, so that results do not depend on
/// the machine, except PATH, which command substitutions need to find their programs.
fn environment() -> HashMap<String, String> {
    let mut environment: HashMap<String, String> = [
        ("HOME", "/tmp/hacmp-corpus-home"),
        ("CORPUS_NAME", "alice"),
        ("CORPUS_EMPTY", ""),
        ("CORPUS_SPACED", "two  words"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let path = std::env::var("PATH").expect("the test runs with a PATH");
    environment.insert("PATH".to_string(), path);
    environment
}

/// Runs `script` in bash with the fixed environment, `$1` set to `file`, and returns its
/// standard output. bash must succeed and print no warnings, or the corpus file is not valid.
fn bash(script: &str, file: &Path) -> String {
    let output = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("bash")
        .arg(file)
        .env_clear()
        .envs(environment())
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "bash failed on {}: {stderr}",
        file.display()
    );
    String::from_utf8(output.stdout).expect("bash printed UTF-8")
}

/// The variable names bash has after running `prelude`, less those it has before.
fn names_bash_assigns(prelude: &str, file: &Path) -> BTreeSet<String> {
    let names = |script: &str| -> BTreeSet<String> {
        bash(&format!("{script}\ncompgen -v"), file)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let before = names(":");
    let mut after = names(prelude);
    after.retain(|name| !before.contains(name) && name != "_");
    after
}

/// Each variable as bash has it after `prelude`: `set:VALUE`, or `:` when it is unset.
fn bash_values(prelude: &str, file: &Path, names: &[String]) -> Vec<String> {
    let arguments: Vec<String> = names
        .iter()
        .map(|name| format!("\"${{{name}+set}}:${{{name}}}\""))
        .collect();
    let script = format!("{prelude}\nprintf '%s\\0' {}", arguments.join(" "));
    let output = bash(&script, file);
    let mut values: Vec<String> = output.split('\0').map(str::to_string).collect();
    assert_eq!(values.pop().as_deref(), Some(""), "output ends with NUL");
    values
}

/// Each variable as the reader has it: the last assignment wins, then the environment.
fn reader_values(assignments: &[Assignment], names: &[String]) -> Vec<String> {
    let environment = environment();
    names
        .iter()
        .map(|name| {
            let assigned = assignments.iter().rev().find(|a| &a.name == name);
            match assigned.map(|a| &a.value).or_else(|| environment.get(name)) {
                Some(value) => format!("set:{value}"),
                None => ":".to_string(),
            }
        })
        .collect()
}

/// Compares the reader with bash on `file`, where bash runs `prelude` to set the variables.
fn compare(prelude: &str, file: &Path) -> Vec<Assignment> {
    let assignments = read_assignments(file, &environment())
        .unwrap_or_else(|e| panic!("the reader rejects {}: {e}", file.display()));
    let mut names: BTreeSet<String> = assignments.iter().map(|a| a.name.clone()).collect();
    names.extend(names_bash_assigns(prelude, file));
    let names: Vec<String> = names.into_iter().collect();
    let expected = bash_values(prelude, file, &names);
    let actual = reader_values(&assignments, &names);
    for ((name, expected), actual) in names.iter().zip(&expected).zip(&actual) {
        assert_eq!(
            actual,
            expected,
            "{}: variable {name} differs (reader left, bash right)",
            file.display()
        );
    }
    assignments
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("the corpus directory exists")
        .map(|entry| entry.expect("the corpus directory is readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "sh"))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_files_read_as_bash_sources_them() {
    let files = corpus_files();
    assert!(
        files.len() >= 30,
        "the corpus has only {} files",
        files.len()
    );
    for file in &files {
        let assignments = compare("{ . \"$1\"; } >/dev/null", file);
        assert!(
            !assignments.is_empty(),
            "{} assigns nothing",
            file.display()
        );
    }
}

#[test]
fn the_original_heartbeat_script_reads_as_its_assignment_lines() {
    let seed = support::original_script();
    // bash cannot source the script, which would run its loop; its top-level assignments are
    // exactly its lines that start with NAME=.
    let assignments = compare(
        "eval \"$(sed -n '/^[A-Za-z_][A-Za-z_0-9]*=/p' \"$1\")\"",
        &seed,
    );
    let names: Vec<&str> = assignments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names, VARIABLE_NAMES,
        "only the top-level assignments, in order"
    );
    let text = std::fs::read_to_string(&seed).expect("the script is readable");
    let lines: Vec<&str> = text.lines().collect();
    for assignment in &assignments {
        assert!(
            lines[assignment.line - 1].starts_with(&format!("{}=", assignment.name)),
            "{} is not assigned on line {}",
            assignment.name,
            assignment.line
        );
    }
}

/// How bash and the reader each see one file under one environment.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The reader's values are bash's, every one of the eight.
    Same,
    /// The reader refused the file with this message.
    Refused(String),
    /// bash did not finish within its time limit; nothing is compared.
    BashTimedOut,
    /// A silent difference: the variables as (name, reader, bash).
    Differs(Vec<(String, String, String)>),
}

/// How long bash may take over one generated file.
const BASH_SECONDS: &str = "10";

/// An environment hacmp and bash both start in.
struct Environment {
    variables: HashMap<String, String>,
}

fn path_variable() -> String {
    std::env::var("PATH").expect("the test runs with a PATH")
}

/// As systemd starts a service: no HOME, no PWD, only what the unit sets.
fn systemd_like() -> Environment {
    Environment {
        variables: HashMap::from([("PATH".to_string(), path_variable())]),
    }
}

/// As a login shell leaves things: HOME, PWD, SHLVL, USER and friends.
fn login_like() -> Environment {
    let here = std::env::current_dir().expect("a working directory");
    let variables = [
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
    ];
    Environment {
        variables: variables
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Each of the eight variables as bash has it after `. FILE` (also when the file exits, or stops
/// at an error under `set -u`):
/// `set:VALUE` or `:` when unset, as bytes; `None` when bash ran out of time.
fn bash_variables(file: &Path, environment: &Environment) -> Option<Vec<Vec<u8>>> {
    let arguments: Vec<String> = VARIABLE_NAMES
        .iter()
        .map(|name| format!("\"${{{name}+set}}:${{{name}}}\""))
        .collect();
    let script = format!(
        "exec 3>&1; trap 'set +u; printf \"%s\\0\" {} >&3' EXIT; . \"$1\" >/dev/null 2>&1",
        arguments.join(" ")
    );
    let output = Command::new("timeout")
        .args(["-s", "KILL", BASH_SECONDS, "bash", "-c", &script, "bash"])
        .arg(file)
        .env_clear()
        .envs(&environment.variables)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("timeout and bash run");
    if output.status.code() == Some(137) || output.status.code().is_none() {
        return None;
    }
    let mut values: Vec<Vec<u8>> = output
        .stdout
        .split(|&b| b == 0)
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(
        values.pop(),
        Some(Vec::new()),
        "bash's output ends with NUL"
    );
    assert_eq!(
        values.len(),
        VARIABLE_NAMES.len(),
        "bash printed no values for {:?}",
        std::fs::read(file).map(|text| String::from_utf8_lossy(&text).into_owned())
    );
    Some(values)
}

/// Reads `file` as hacmp does and compares each of the eight variables with bash.
fn compare_with_bash(file: &Path, environment: &Environment) -> Outcome {
    let settings = match hacmp::config::resolve(Some(file), &environment.variables) {
        Ok(settings) => settings,
        Err(error) => return Outcome::Refused(error.to_string()),
    };
    let Some(expected) = bash_variables(file, environment) else {
        return Outcome::BashTimedOut;
    };
    let mut differences = Vec::new();
    for (name, expected) in VARIABLE_NAMES.iter().zip(expected) {
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

/// The environments `compare_text` uses, in its order.
const ENVIRONMENTS: [&str; 2] = ["systemd-like", "login-like"];

/// Writes `text` to a fresh file in `directory` and compares it under both environments.
fn compare_text(directory: &Path, text: &[u8]) -> [Outcome; 2] {
    let file = directory.join("vars.sh");
    std::fs::write(&file, text).expect("the temporary directory is writable");
    [systemd_like(), login_like()].map(|environment| compare_with_bash(&file, &environment))
}

/// The mechanisms issue 10 found, each a file that hacmp once read differently from bash: now
/// each is read as bash reads it (`Same`) or refused, and the table says which.
#[test]
fn each_mechanism_of_issue_10_is_read_as_bash_or_refused() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let read_as_bash: &[&str] = &[
        // 1. bash's own variables, from the working directory, the ids and the kernel.
        "maintenanceFile=$PWD/maintenance\n",
        "startCmd=\"$UID:$EUID\"\n",
        "hostName=$HOSTNAME\n",
        "heartBeatDir=~/hb\nstartCmdLogFile=~\n",
        "startCmd=\"[$IFS]$OPTIND$PS4\"\n",
        "startCmd=${HOME-none}\n",
        // Found by the generator: tildes in ${x-word} expand as in the assignment around it.
        "startCmd=${nope-x:~/y}\nhostName=x${nope-~/y}\nheartBeatDir=\"${nope-~/y}\"\n",
        "#!/bin/bash\nset -euo pipefail\nstartCmd=/x${nope-}\nset +u\nhostName=$nope\n",
        // 4. '…' inside "${x-…}": the quotes stay, the brace inside them does not close.
        "startCmd=\"${nope-'a}b'}\"\nhostName=\"${nope:-'$PWD'}\"\n",
        // 5. `#` after `)` inside $( ) starts a comment.
        "startCmd=$( (echo a)#b)\n)\n",
        // 6. backslash-newline inside a name and after `$`.
        "hm=1\nhmx=2\nstartCmd=$hm\\\nx\nhostName=${hm\\\nx}$\\\nhmx\n",
        // 7. a continued line that looks like the delimiter is not one.
        "f() {\ncat <<END\nx\\\nEND\nstartCmd=/in/body\nEND\n}\nstartCmd=/after\n",
        "f() {\ncat <<END\nEN\\\nD\n}\nstartCmd=/after\n",
    ];
    for text in read_as_bash {
        let outcomes = compare_text(directory.path(), text.as_bytes());
        assert_eq!(outcomes, [Outcome::Same, Outcome::Same], "{text:?}");
    }
    let refused: &[&[u8]] = &[
        // 1. bash's own variables whose value the reader cannot know.
        b"startCmd=$SHLVL\n",
        b"startCmd=$BASH_SOURCE\n",
        b"startCmd=$PPID\n",
        b"startCmd=$RANDOM\n",
        b"startCmd=$LINENO\n",
        b"startCmd=$OSTYPE\n",
        b"UID=5\n",
        // 2. old arithmetic.
        b"startCmd=$[1+2]\n",
        b"startCmd=\"$[1+2]\"\n",
        // 3. export and readonly arguments bash expands as words, and a script's hidden
        // assignments.
        b"#!/bin/bash\nexport \"maintenanceFile=/x\"\n",
        b"export maintenanceFile=/m{a,b}\n",
        b"#!/bin/bash\nstartCmd=(a b)\n",
        b"#!/bin/bash\nstartCmd=/x >/dev/null\n",
        b"#!/bin/bash\ntrue && startCmd=/x\n",
        b"if true; then startCmd=/x; fi\n",
        b"#!/bin/bash\nf() { startCmd=/x; }\nf\n",
        b"#!/bin/bash\nunset startCmd\n",
        b"#!/bin/bash\nset -u\nstartCmd=$nope\n",
        b"#!/bin/bash\nset -- a\nstartCmd=/x\n",
        b"#!/bin/bash\nstartCmd[1]=/x\n",
        // 4. a form bash rejects.
        b"startCmd=\"${nope-'}\"\n",
        // Found by the generator: $"…" inside "${x-…}" loses its `$`.
        b"startCmd=\"${nope-$\"t\"}\"\n",
        // 5. what only a full parse of $( ) finds the end of.
        b"startCmd=$(case a in a) echo a;; esac)\n",
        b"startCmd=$(cat <<E\nx)\nE\n)\n",
        // 8. a NUL byte, and bytes that are not UTF-8.
        b"startCmd=/x\0y\n",
        b"startCmd=/x\xff\n",
    ];
    for text in refused {
        for outcome in compare_text(directory.path(), text) {
            assert!(
                matches!(outcome, Outcome::Refused(_)),
                "{:?} is not refused: {outcome:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
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
    let (mut same, mut refused, mut timed_out) = (0, 0, 0);
    let mut differing = Vec::new();
    for seed in first_seed..first_seed + cases {
        let text = generator::variable_file(&mut generator::Random::new(seed));
        for (environment, outcome) in ENVIRONMENTS
            .iter()
            .zip(compare_text(directory.path(), &text))
        {
            match outcome {
                Outcome::Same => same += 1,
                Outcome::Refused(why) => {
                    refused += 1;
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
        "{cases} files from seed {first_seed}, two environments each, in {:.1?}: \
         {same} read as bash, {refused} refused, {timed_out} bash timeouts, {} differ",
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
