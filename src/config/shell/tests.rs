//! The reader's errors, limits and script handling. How values compare with bash is the business
//! of tests/config_vs_bash.rs.

use super::*;

fn environment() -> HashMap<String, String> {
    HashMap::from([("HOME".to_string(), "/home/tester".to_string())])
}

/// Writes `text` to a file in `directory` and reads it.
fn read_in(directory: &Path, name: &str, text: &str) -> Result<Vec<Assignment>, ShellError> {
    let path = directory.join(name);
    std::fs::write(&path, text).expect("the temporary directory is writable");
    read_assignments(&path, &environment())
}

/// Each assignment as (name, value, line).
fn read(text: &str) -> Vec<(String, String, usize)> {
    let directory = tempfile::tempdir().expect("a temporary directory");
    read_in(directory.path(), "vars.sh", text)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|a| (a.name, a.value, a.line))
        .collect()
}

/// The error's line and message; its file must be the file read.
fn error(text: &str) -> (usize, String) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let error = read_in(directory.path(), "vars.sh", text).expect_err("the text is rejected");
    assert_eq!(error.file, directory.path().join("vars.sh"));
    (error.line, error.message)
}

fn triple(name: &str, value: &str, line: usize) -> (String, String, usize) {
    (name.to_string(), value.to_string(), line)
}

#[test]
fn the_error_display_is_file_line_message() {
    let error = ShellError {
        file: PathBuf::from("/etc/hacmp.vars"),
        line: 3,
        message: "unparsable line".to_string(),
    };
    assert_eq!(error.to_string(), "/etc/hacmp.vars:3: unparsable line");
}

#[test]
fn a_variable_file_rejects_other_commands() {
    for text in ["a=1\necho hi\n", "a=1\nb=2 echo hi\n", "a=1\nshift\n"] {
        let (line, message) = error(text);
        assert_eq!(line, 2, "{text:?}");
        assert!(message.starts_with("unparsable line: "), "{message}");
    }
    assert_eq!(error("a=1\n\ntrue | x=2\n").0, 3);
    assert_eq!(error("a=1 &\n").0, 1);
}

#[test]
fn a_script_ignores_other_commands() {
    let text =
        "#!/bin/bash\necho \"starting\"\nset -x\nb=2 echo hi\nexport -f f\ncat x | grep y\na=1\n";
    assert_eq!(read(text), [triple("a", "1", 7)]);
}

#[test]
fn an_assignment_is_on_the_line_where_its_word_starts() {
    let text = "a='one\ntwo' b=2 \\\n  c=3; d=4\n";
    assert_eq!(
        read(text),
        [
            triple("a", "one\ntwo", 1),
            triple("b", "2", 2),
            triple("c", "3", 3),
            triple("d", "4", 3),
        ]
    );
}

#[test]
fn unterminated_constructs_are_reported_where_they_start() {
    let cases = [
        ("a=1\nb='x\ny\n", 2, "unterminated single quote"),
        ("a=\"x\n\ny\n", 1, "unterminated double quote"),
        ("\na=`hostname\n", 2, "unterminated backquote"),
        ("a=$(echo\nb=2\n", 1, "unterminated $(: no matching )"),
        ("a=1\na=${b:-x\n", 2, "unterminated ${"),
        (
            "#!/bin/sh\ncat <<END\nEN\n",
            2,
            "unterminated here-document: no line `END` before the end of the file",
        ),
    ];
    for (text, line, message) in cases {
        assert_eq!(error(text), (line, message.to_string()), "{text:?}");
    }
}

#[test]
fn unmatched_compound_keywords_are_reported_where_the_construct_starts() {
    let cases = [
        (
            "a=1\nwhile true\ndo\n  a=2\n",
            2,
            "`while` is never closed by `done`",
        ),
        (
            "if x; then\n  y\ndone\n",
            1,
            "`if` is closed by `done` on line 3, not by `fi`",
        ),
        ("a=1\nfi\n", 2, "unexpected `fi`: nothing is open"),
        ("a=1\n)\n", 2, "unexpected `)`"),
        ("f()\n\n", 1, "function definition has no body"),
    ];
    for (text, line, message) in cases {
        assert_eq!(error(text), (line, message.to_string()), "{text:?}");
    }
}

#[test]
fn keywords_in_quotes_comments_and_words_do_not_count() {
    let text = "#!/bin/sh\nf() {\n  echo \"done }\" 'fi' # esac done\n  echo done fi\n}\n\
                function g {\n  case $1 in\n    a) { echo; } ;;\n  esac\n}\nwhile false; do if :; then :; fi; done\na=1\n";
    assert_eq!(read(text), [triple("a", "1", 12)]);
}

#[test]
fn unsupported_expansions_are_errors_on_their_line() {
    let cases = [
        (
            "a=1\nb=$((a+1))\n",
            2,
            "arithmetic expansion $((…)) is not supported",
        ),
        ("a=$1\n", 1, "the special parameter $1 is not supported"),
        ("a=\"$?\"\n", 1, "the special parameter $? is not supported"),
        ("a=$'x'\n", 1, "ANSI-C quoting $'…' is not supported"),
        (
            "a=~root/x\n",
            1,
            "the tilde prefix `~root` is not supported: only `~` and `~/…` are",
        ),
    ];
    for (text, line, message) in cases {
        assert_eq!(error(text), (line, message.to_string()), "{text:?}");
    }
    let (line, message) = error("a=1\nb=${a#x}\n");
    assert_eq!(line, 2);
    assert!(
        message.starts_with("unsupported parameter expansion `${a#x}`: only ${NAME}"),
        "{message}"
    );
}

#[test]
fn unsupported_expansions_in_skipped_code_are_no_error() {
    let text = "#!/bin/sh\nf() { echo $((1+2)) ${x#y} $1; }\necho $?\na=1\n";
    assert_eq!(read(text), [triple("a", "1", 4)]);
}

#[test]
fn a_readonly_variable_cannot_be_assigned_again() {
    let (line, message) = error("readonly a=1\nexport b\nreadonly b\nb=2\n");
    assert_eq!(
        (line, message.as_str()),
        (4, "b is readonly and cannot be assigned again")
    );
}

#[test]
fn here_documents_in_scripts_are_skipped() {
    let text = "#!/bin/sh\ncat <<-END >x\n\tit's \"unbalanced\n\tEND\na=1\n";
    assert_eq!(read(text), [triple("a", "1", 5)]);
}

#[test]
fn exit_ends_all_reading_and_return_ends_the_file() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let dir = directory.path();
    read_in(dir, "returns.sh", "a=1\nreturn\na=2\n").expect("valid");
    read_in(dir, "exits.sh", "b=1\nexit 0\nb=2\n").expect("valid");
    let main = format!(
        "#!/bin/sh\n. {0}/returns.sh\nc=1\n. {0}/exits.sh\nc=2\n",
        dir.display()
    );
    let names: Vec<(String, String)> = read_in(dir, "main.sh", &main)
        .expect("valid")
        .into_iter()
        .map(|a| (a.name, a.value))
        .collect();
    let expected = [("a", "1"), ("c", "1"), ("b", "1")].map(|(n, v)| (n.into(), v.into()));
    assert_eq!(names, expected);
}

#[test]
fn sourced_files_keep_their_own_path_and_lines() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let dir = directory.path();
    read_in(dir, "inner.sh", "\ninner=$outer-in\n").expect("valid");
    let main = format!("outer=out\n. {}/inner.sh\n", dir.display());
    let assignments = read_in(dir, "main.sh", &main).expect("valid");
    let inner = &assignments[1];
    assert_eq!(
        (inner.value.as_str(), inner.file.clone(), inner.line),
        ("out-in", dir.join("inner.sh"), 2)
    );
}

#[test]
fn source_errors_name_the_sourcing_line() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let dir = directory.path();
    let main = dir.join("main.sh");
    let cycle = format!("a=1\n. {}\n", main.display());
    let error = read_in(dir, "main.sh", &cycle).expect_err("a cycle");
    assert_eq!((error.file.clone(), error.line), (main.clone(), 2));
    assert!(
        error
            .message
            .ends_with("the file is already being read: sourcing it again would never end")
    );

    let missing = format!("\n\n. {}/missing.sh\n", dir.display());
    let error = read_in(dir, "main.sh", &missing).expect_err("a missing file");
    assert_eq!((error.file.clone(), error.line), (main.clone(), 3));
    assert!(error.message.contains("No such file"), "{}", error.message);

    let error = read_in(dir, "main.sh", ". a b\n").expect_err("arguments");
    assert_eq!(
        error.message,
        "`. FILE` must name exactly one file: arguments are not supported"
    );
}

#[test]
fn sourcing_nests_at_most_the_limit() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let dir = directory.path();
    for level in 0..=MAX_SOURCE_DEPTH {
        let text = format!("level{level}=1\n. {}/file{}.sh\n", dir.display(), level + 1);
        std::fs::write(dir.join(format!("file{level}.sh")), text).expect("writable");
    }
    let error = read_assignments(&dir.join("file0.sh"), &environment()).expect_err("too deep");
    assert_eq!(
        error.file,
        dir.join(format!("file{}.sh", MAX_SOURCE_DEPTH - 1))
    );
    assert!(
        error
            .message
            .ends_with("sourced files nest more than 8 deep"),
        "{}",
        error.message
    );
}

#[test]
fn a_missing_file_is_an_error_on_line_0() {
    let error =
        read_assignments(Path::new("/nonexistent/vars.sh"), &environment()).expect_err("missing");
    assert_eq!(error.line, 0);
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/vars.sh:0: No such file")
    );
}

#[test]
fn file_size_and_line_count_are_limited() {
    let too_big = "#".repeat(MAX_FILE_BYTES as usize + 1);
    assert_eq!(
        error(&too_big),
        (
            0,
            format!("the file is larger than the limit of {MAX_FILE_BYTES} bytes")
        )
    );
    let too_long = "\n".repeat(MAX_LINES + 1);
    assert_eq!(
        error(&too_long),
        (0, format!("the file has more than {MAX_LINES} lines"))
    );
}

#[test]
fn nesting_is_limited() {
    let deep_braces = format!("{}\n", "{ ".repeat(65));
    assert_eq!(
        error(&deep_braces),
        (1, "compound commands nested more than 64 deep".to_string())
    );
    let deep_defaults = format!("a={}x\n", "${b:-".repeat(40));
    assert_eq!(
        error(&deep_defaults),
        (
            1,
            "quotes and expansions nested more than 32 deep".to_string()
        )
    );
}

#[test]
fn values_are_limited_in_length() {
    let text = format!("a={}\n{}", "x".repeat(1024), "a=$a$a\n".repeat(11));
    assert_eq!(
        error(&text),
        (
            12,
            format!(
                "the value is longer than the limit of {} bytes",
                expand::MAX_VALUE_BYTES
            )
        )
    );
}

#[test]
fn command_substitutions_are_limited_in_number_and_output() {
    let many = "a=$(:)\n".repeat(MAX_SUBSTITUTIONS + 1);
    assert_eq!(
        error(&many),
        (
            MAX_SUBSTITUTIONS + 1,
            format!("more than {MAX_SUBSTITUTIONS} command substitutions in all")
        )
    );
    let big = format!(
        "\na=$(head -c {} /dev/zero | tr '\\0' x)\n",
        substitution::MAX_OUTPUT_BYTES + 1
    );
    let (line, message) = error(&big);
    assert_eq!(line, 2);
    assert!(
        message.ends_with("the output is longer than the limit of 65536 bytes"),
        "{message}"
    );
}

#[test]
fn a_command_substitution_that_does_not_end_is_stopped() {
    let marker = format!("hacmp-shell-test-{}", std::process::id());
    let (line, message) = error(&format!("a=$(sleep 60 # {marker}\n)\n"));
    assert_eq!(line, 1);
    assert!(
        message.ends_with("did not finish within 10 seconds"),
        "{message}"
    );
}

#[test]
fn command_substitutions_see_earlier_assignments_and_strip_newlines() {
    // As in bash, the commands see every variable, but only exported ones reach the programs
    // they run.
    let text = "who='bob '\\''b'\nexport CONFIG_TEST=x\nhostName=`echo \"$who\"; echo; echo`\n\
                b=$(sh -c 'echo \"$CONFIG_TEST/$who/$HOME\"')\n";
    let values: Vec<String> = read(text).into_iter().map(|(_, v, _)| v).collect();
    assert_eq!(values, ["bob 'b", "x", "bob 'b", "x///home/tester"]);
}

#[test]
fn hostname_comes_from_the_environment_else_the_kernel() {
    assert_eq!(read("h=$HOSTNAME\n")[0].1, crate::config::local_host_name());
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("vars.sh");
    std::fs::write(&path, "h=$HOSTNAME\n").expect("writable");
    let mut environment = environment();
    environment.insert("HOSTNAME".to_string(), "from-env".to_string());
    let assignments = read_assignments(&path, &environment).expect("valid");
    assert_eq!(assignments[0].value, "from-env");
}

#[test]
fn variables_that_commands_not_run_may_set_cannot_be_read() {
    let (line, message) = error("a=1\nif true; then a=2; fi\nb=$a\n");
    assert_eq!(line, 3);
    assert!(
        message.starts_with("$a may have been set by the command at ")
            && message.ends_with("vars.sh:2, which the reader does not run"),
        "{message}"
    );
    // A plain assignment after the command makes the variable known again.
    assert_eq!(
        read("for a in x; do :; done\na=3\nb=$a\n")[1],
        triple("b", "3", 3)
    );
    let (line, message) = error("#!/bin/sh\ntrue && startCmd=/x\n");
    assert_eq!(line, 2);
    assert!(message.starts_with("startCmd may be set here"), "{message}");
    let (line, message) = error("#!/bin/sh\nf() { eval \"$1\"; }\nf startCmd=/x\n");
    assert_eq!(
        (line, message.as_str()),
        (
            2,
            "`eval` here may change variables, and the reader does not run it"
        )
    );
}

#[test]
fn an_endless_loop_ends_the_reading() {
    let text = "#!/bin/bash\na=1\nwhile [ 1 ]\ndo\n  a=2\n  sleep 1\ndone\na=3\n";
    assert_eq!(read(text), [triple("a", "1", 2)]);
    // With a way out of the loop, what follows is read, and what the loop sets is unknown.
    let (line, _) = error("a=1\nwhile true; do a=2; break; done\nb=$a\n");
    assert_eq!(line, 3);
}

#[test]
fn what_bash_rejects_as_a_syntax_error_is_refused() {
    for text in [
        "a=1;;\n",
        "a=1 &&\n",
        "&& a=1\n",
        "a=$$(echo x)\n",
        "a=1 ; ;\n",
    ] {
        let (line, message) = error(text);
        assert_eq!(line, 1, "{text:?}");
        assert!(
            message.starts_with("syntax error") || message.starts_with("the command ends"),
            "{text:?}: {message}"
        );
    }
    // A newline after `&&` continues the command.
    assert!(
        error("#!/bin/sh\ntrue &&\n  startCmd=/x\n")
            .1
            .starts_with("startCmd may be set")
    );
}

#[test]
fn nul_bytes_and_other_bytes_are_refused_on_their_line() {
    assert_eq!(
        error("a=1\nb=x\0y\n"),
        (
            2,
            "a NUL byte, which bash silently drops: remove it".to_string()
        )
    );
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("vars.sh");
    std::fs::write(&path, b"a=1\n\nb=\xff\n").expect("writable");
    let error = read_assignments(&path, &environment()).expect_err("not UTF-8");
    assert_eq!(
        (error.line, error.message.as_str()),
        (3, "bytes that are not UTF-8 text")
    );
}

#[test]
fn a_sourced_file_name_bash_could_split_or_glob_is_refused() {
    for text in [". ./vars*.sh\n", "d='a b'\n. \"$d\"\n", ". {a,b}.sh\n"] {
        let (_, message) = error(text);
        assert_eq!(
            message, "`. FILE` naming a file with blanks or glob characters is not supported",
            "{text:?}"
        );
    }
}

#[test]
fn a_shift_in_skipped_arithmetic_is_no_here_document() {
    let text = "#!/bin/sh\nf() { echo $((1 << 2)) $[3<<1]; }\na=1\n";
    assert_eq!(read(text), [triple("a", "1", 3)]);
    let (line, message) = error("a=$(cat <<E\nx\nE\n)\n");
    assert_eq!(
        (line, message.as_str()),
        (
            1,
            "a here-document inside a command substitution is not supported"
        )
    );
}
