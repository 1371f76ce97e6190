//! Differential test of the shell variable reader: every file in tests/config-corpus/ is sourced
//! by bash and read by `read_assignments`, and the variables must come out the same. The original
//! heartbeat.sh is compared too, against bash running only its assignment lines.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use hacmp::config::VARIABLE_NAMES;
use hacmp::config::shell::{Assignment, read_assignments};

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
    let seed = std::env::var_os("HACMP_ORIGINAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/seed/heartbeat.sh"));
    assert!(
        seed.is_file(),
        "{} is missing: set HACMP_ORIGINAL to the original heartbeat.sh",
        seed.display()
    );
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
