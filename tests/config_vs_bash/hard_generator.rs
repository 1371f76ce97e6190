//! A second generator of variable files, aimed at what made a hand-written reader differ from
//! bash: commands and declarations that change variables (attributes, namerefs, arithmetic,
//! `read`, `printf -v`, side effects of expansions inside commands that look skippable),
//! `$(…)` with bash's own syntax, sourced and guarded-sourced files, `set -u`/`set -e`, CRLF, a
//! byte order mark, very long lines, and `#!` scripts with a main loop.

use crate::generator::{Generated, Random};
use hacmp::config::VARIABLE_NAMES;

/// Our variables most of the time, a helper now and then, and sometimes a near miss.
fn name(random: &mut Random) -> String {
    match random.below(20) {
        0..=13 => VARIABLE_NAMES[random.below(VARIABLE_NAMES.len())].to_string(),
        14..=17 => random
            .pick(&["HB_DIR", "APP_HOME", "x", "site"])
            .to_string(),
        18 => random.pick(&["hacmpProfile", "hacmpEventCmd"]).to_string(),
        _ => random
            .pick(&["faileoverTime", "hacmpProfle", "heartbeatDir", "hostname"])
            .to_string(),
    }
}

fn number(random: &mut Random) -> String {
    random
        .pick(&["3", "10", "2*5", "07", "0x10", "x+1", "abc+", "-4"])
        .to_string()
}

/// A value as written after `=`.
fn value(random: &mut Random) -> String {
    match random.below(24) {
        0..=5 => random
            .pick(&[
                "/opt/app/bin/start",
                "node1",
                "/mnt/hb",
                "app.*x",
                "'a b'",
                "\"q\\\"x\"",
            ])
            .to_string(),
        6 => "${HOSTNAME%%.*}".to_string(),
        7 => "${HB_DIR:-/mnt/hb}/maint".to_string(),
        8 => "${x:=set-by-default}".to_string(),
        9 => "$((2*60))".to_string(),
        10 => "$(hostname -s)".to_string(),
        11 => "$(echo $UID:$HOSTNAME)".to_string(),
        12 => "$([[ -n $HOME ]] && echo home || echo none)".to_string(),
        13 => "$(cat <<< here-string)".to_string(),
        14 => "$(a=(1 2 3); echo ${#a[@]}:${a[2]})".to_string(),
        15 => "$(echo 'a\\tb')".to_string(),
        16 => "$(echo $'tab\\there')".to_string(),
        17 => "$(source /dev/null; printf %q 'a b')".to_string(),
        18 => "`echo $HOSTNAME`".to_string(),
        19 => "${site^^}".to_string(),
        20 => "${nope:-~/x}".to_string(),
        21 => "$PWD/$nope".to_string(),
        22 => "$(( ${#HOSTNAME} + 1 ))".to_string(),
        _ => "x".repeat(1 + random.below(200_000)),
    }
}

/// A statement, and in a script the line within it where bash stops: a call of a function the
/// script defines (with CRLF line ends, `f\r` names no function, so then there is none).
fn statement(random: &mut Random, crlf: bool) -> (String, Option<usize>) {
    let kind = random.below(40);
    let calls = matches!(kind, 28 | 29) && !crlf;
    (statement_of_kind(random, kind), calls.then_some(1))
}

fn statement_of_kind(random: &mut Random, kind: usize) -> String {
    let n = name(random);
    let v = value(random);
    match kind {
        0..=9 => format!("{n}={v}"),
        10 => format!(
            "{} {n}={v}",
            random.pick(&[
                "declare -i",
                "declare -u",
                "declare -l",
                "declare -r",
                "declare -x",
                "typeset -i",
                "declare -ix",
                "local",
                "export",
                "readonly",
            ])
        ),
        11 => format!(
            "declare -{} {n}",
            random.pick(&["i", "u", "l", "n", "a", "A", "r"])
        ),
        12 => format!("declare -n ref={n}\nref={v}"),
        13 => format!("false && : ${{{n}:={v}}}"),
        14 => format!(": ${{{n}:={v}}}"),
        15 => format!(
            "if {}; then {n}={v}; else {n}=other; fi",
            random.pick(&["true", "false", "[ -f /nonexistent ]"])
        ),
        16 => format!("case $HOSTNAME in *.dc1.*) {n}=dc1;; *) {n}=elsewhere;; esac"),
        17 => format!("({n}=in-a-subshell)"),
        18 => format!("echo ${{{n}:={v}}} >/dev/null"),
        19 => format!("(( {n} = {} ))", number(random)),
        20 => format!("let \"{n} = {}\"", number(random)),
        21 => format!("printf -v {n} '%s' {v}"),
        22 => format!(
            "IFS=: read -r x {n} <<< 'a:{}'",
            random.pick(&["b", "c d", "/e"])
        ),
        23 => format!("{n}={v}; {n}+=/more"),
        24 => random
            .pick(&[
                ". tests/config-corpus/included/common.sh",
                "[ -f /nonexistent ] && . /nonexistent",
                "if [ -r /nonexistent ]; then . /nonexistent; fi",
                "source <(echo startCmd=/from-process-substitution)",
                ". /dev/null",
            ])
            .to_string(),
        25 => random
            .pick(&["set -u", "set +u", "set -e", "set -o pipefail"])
            .to_string(),
        26 => format!("unset {}{n}", random.pick(&["", "-v "])),
        27 => format!("shopt -s expand_aliases\nalias setit='{n}=aliased'\nsetit"),
        28 => format!("f() {{ trap '{n}=on-return' RETURN; }}\nf\ntrap - RETURN"),
        29 => format!("g() {{ local {n}=local; {n}=still-local; }}\ng"),
        30 => format!("export \"{n}={v}\""),
        31 => format!("for d in /nonexistent /tmp; do [ -d \"$d\" ] && {n}=$d; done"),
        32 => format!("[ -z \"${{{n}:-}}\" ] && {n}={v}"),
        33 => format!("{n}=$nope"),
        34 => random
            .pick(&["false", "exit 3", "return", "true"])
            .to_string(),
        35 => format!("# a comment with {v}"),
        36 => format!("{n}={v} # trailing"),
        37 => format!("(( {n}++ ))"),
        38 => format!("mapfile -t lines <<< $'one\\ntwo'\n{n}=${{lines[1]}}"),
        _ => format!("{{ {n}={v}; }} 2>/dev/null"),
    }
}

/// The main loop of a script, in one of the ways scripts write it; `call` when it sits in a
/// function the script then calls.
fn main_loop(random: &mut Random) -> (String, bool) {
    let body = random.pick(&[
        "while [ 1 ]\ndo\n  sleep 1\ndone",
        "while true; do sleep 1; done",
        "until false\ndo\n\tsleep 1\ndone",
        "while :\ndo\n  startCmd=/in-the-loop\n  sleep 1\ndone",
    ]);
    if random.chance(30) {
        (
            format!("main()\n{{\n{body}\n}}\nstartCmd=/between\nmain \"$@\""),
            true,
        )
    } else {
        (body.to_string(), false)
    }
}

/// A whole file, and the line where bash stops before a script's main loop.
pub fn variable_file(random: &mut Random) -> Generated {
    let is_script = random.chance(35);
    let crlf = random.chance(4);
    let mut text = String::new();
    if random.chance(2) {
        text.push('\u{feff}');
    }
    if is_script {
        text.push_str("#!/bin/bash\n");
    }
    let statements = 1 + random.below(8);
    let loop_at = (is_script && random.chance(70)).then(|| random.below(statements + 1));
    let mut stop_line = 0;
    let mut stop_at = |text: &str, offset: Option<usize>| {
        if let Some(offset) = offset.filter(|_| is_script && stop_line == 0) {
            stop_line = text.matches('\n').count() + 1 + offset;
        }
    };
    for index in 0..=statements {
        if loop_at == Some(index) {
            let (main_loop, called) = main_loop(random);
            let offset = if called {
                main_loop.matches('\n').count()
            } else {
                0
            };
            stop_at(&text, Some(offset));
            text.push_str(&main_loop);
            text.push('\n');
        }
        if index < statements {
            let (statement, offset) = statement(random, crlf);
            stop_at(&text, offset);
            text.push_str(&statement);
            text.push('\n');
        }
    }
    if crlf {
        // Line-based, the boundary stays where it was: `while` still starts its line.
        text = text.replace('\n', "\r\n");
    }
    Generated {
        text: text.into_bytes(),
        stop_line,
    }
}
