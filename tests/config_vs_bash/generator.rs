//! Random plausible variable files, for comparing the reader with bash. Each file mixes the
//! constructs operators write (quotes of every kind, escapes, continuations, substitutions,
//! parameter operators, comments) with the ones the reader must read exactly or refuse
//! (here-documents, declarations, arrays, arithmetic, tildes and braces, bash's own variables,
//! CRLF, NUL and bytes that are not UTF-8). Command substitutions only ever run `echo` or
//! `printf` with literal words, so no generated file can do harm when bash sources it.

use hacmp::config::VARIABLE_NAMES;

/// A small deterministic generator (splitmix64): a seed names a file for good.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Names values read from: hacmp's variables, helpers the file sets, unset ones, and those of
/// bash's own that hacmp provides.
const READ_NAMES: [&str; 18] = [
    "startCmd",
    "hostName",
    "heartBeatDir",
    "a",
    "b",
    "nope",
    "HOME",
    "PWD",
    "UID",
    "EUID",
    "HOSTNAME",
    "IFS",
    "OLDPWD",
    "TERM",
    "PATH",
    "USER",
    "OPTIND",
    "PS4",
];

/// bash's own variables that the hand-written reader refused or took from the environment
/// (RANDOM is left out: two runs of bash differ in it).
const RARE_READ_NAMES: [&str; 8] = [
    "SHLVL",
    "BASH_SOURCE",
    "PPID",
    "LINENO",
    "OSTYPE",
    "SHELL",
    "BASH_VERSION",
    "_",
];

fn read_name(random: &mut Random) -> &'static str {
    if random.chance(10) {
        random.pick(&RARE_READ_NAMES)
    } else {
        random.pick(&READ_NAMES)
    }
}

/// Names assigned: mostly hacmp's variables, some helpers.
fn assigned_name(random: &mut Random) -> String {
    if random.chance(70) {
        VARIABLE_NAMES[random.below(VARIABLE_NAMES.len())].to_string()
    } else {
        random
            .pick(&["a", "b", "HOME", "PWD", "IFS", "a", "b"])
            .to_string()
    }
}

fn literal_word(random: &mut Random) -> String {
    let length = 1 + random.below(6);
    (0..length)
        .map(|_| {
            random
                .pick(&[
                    "a", "b", "z", "0", "7", "/", ".", "-", "_", ":", ",", "@", "%", "+", "=", "x",
                    "é",
                ])
                .to_string()
        })
        .collect()
}

/// Characters that mean something to the shell somewhere, for text inside quotes.
fn tricky_text(random: &mut Random) -> String {
    let length = random.below(5);
    (0..length)
        .map(|_| {
            random
                .pick(&[
                    "a", " ", "}", "{", "$", "\\", "\"", "'", "`", "#", ")", "(", "~", "*", ";",
                    "\n", "\t", "\\\n", "!", "[", "]", ",",
                ])
                .to_string()
        })
        .collect()
}

fn parameter(random: &mut Random, depth: usize) -> String {
    let name = read_name(random);
    match random.below(12) {
        0 => format!("${{{name}}}"),
        1..=4 => {
            let operator = random.pick(&["-", ":-", "+", ":+"]);
            format!("${{{name}{operator}{}}}", value(random, depth + 1))
        }
        5 if random.chance(30) => {
            format!(
                "${{{name}{}}}",
                random.pick(&["%x", "#/", "/a/b", ":0:1", "=v", "?"])
            )
        }
        6 if random.chance(30) => format!("${{#{name}}}"),
        // Not `$$`, which differs between any two runs of bash, nor `$-`, which shows the
        // reading bash's own options (compat/DIVERGENCES.md, "Reading the variable file").
        7 if random.chance(20) => {
            format!("${}", random.pick(&["1", "?", "#", "@", "*", "!", "0"]))
        }
        8 => {
            let (head, tail) = name.split_at(name.len() / 2);
            format!("${head}\\\n{tail}")
        }
        _ => format!("${name}"),
    }
}

fn substitution(random: &mut Random) -> String {
    let word = literal_word(random);
    match random.below(7) {
        0 => format!("$(echo {word})"),
        1 => format!("`echo {word}`"),
        2 => format!("$(printf '%s\\n' '{word}' '')"),
        3 => format!("$( (echo {word})#c\n)"),
        4 => format!("$(echo \"{word}\" # ) x\n)"),
        5 => format!("$(echo {word}; echo)"),
        _ => format!("$(printf %s {word})"),
    }
}

fn double_quoted(random: &mut Random, depth: usize) -> String {
    let mut text = String::from("\"");
    for _ in 0..random.below(4) {
        match random.below(9) {
            0 => text.push_str(&parameter(random, depth + 1)),
            1 => text.push_str(&substitution(random)),
            2 => text.push_str(random.pick(&["\\\\", "\\$", "\\\"", "\\`", "\\x", "\\}", "\\\n"])),
            3 => text.push_str(&format!(
                "${{{}{}'{}'}}",
                read_name(random),
                random.pick(&["-", ":-", "+", ":+"]),
                random.pick(&["q", "}", "a}b", "$a", "\\}", "x y"])
            )),
            4 => text.push_str(random.pick(&["'", "~", "{a,b}", "*", "$[1+2]", "$((1+2))"])),
            _ => text.push_str(&literal_word(random)),
        }
    }
    text.push('"');
    text
}

/// One assignment value (or `${x-word}` word): a concatenation of fragments.
fn value(random: &mut Random, depth: usize) -> String {
    if depth > 2 {
        return literal_word(random);
    }
    let mut text = String::new();
    for _ in 0..1 + random.below(3) {
        let fragment = match random.below(20) {
            0..=3 => literal_word(random),
            4 => format!("'{}'", tricky_text(random).replace('\'', "")),
            5 | 6 => double_quoted(random, depth),
            7 | 8 => parameter(random, depth),
            9 => substitution(random),
            10 if random.chance(30) => random
                .pick(&["$((1+2))", "$[1+2]", "$[ 2 * 3 ]", "$(( 4 ))"])
                .to_string(),
            11 if random.chance(20) => random.pick(&["~root", "~+", "~nobody/z"]).to_string(),
            11 => random.pick(&["~", "~/x", ":~/y", "~/a:~"]).to_string(),
            12 => random
                .pick(&["{a,b}", "m{1..3}", "{x}", "a{,}"])
                .to_string(),
            13 => random
                .pick(&["\\ ", "\\\\", "\\$", "\\'", "\\\"", "\\\n", "\\#"])
                .to_string(),
            14 => random
                .pick(&["$'a\\tb'", "$\"t\"", "$", "#x", "*", "?"])
                .to_string(),
            15 if random.chance(5) => random.pick(&["\u{0}", "\u{ff}"]).to_string(),
            15 => "\r".to_string(),
            _ => literal_word(random),
        };
        text.push_str(&fragment);
    }
    text
}

/// A here-document, inside a function so that a plain file may hold it; its body has lines that
/// look like the delimiter but are continued, and assignments bash never sees as such.
fn here_document(random: &mut Random) -> String {
    let delimiter = random.pick(&["END", "'END'", "\"END\"", "E\\ND", "-END"]);
    let (operator, delimiter) = match delimiter.strip_prefix('-') {
        Some(rest) => ("<<-", rest),
        None => ("<<", delimiter),
    };
    let plain = delimiter.replace(['\'', '"', '\\'], "");
    let mut body = String::new();
    for _ in 0..1 + random.below(3) {
        body.push_str(random.pick(&[
            "x\\\n",
            "x\\\\\n",
            "\tEN\\\nD\n",
            "startCmd=/bin/in-body\n",
            "it's \"odd\n",
            "$(echo x)\n",
        ]));
        if random.chance(40) {
            body.push_str(&format!("{plain}\\\n"));
        }
    }
    format!("f() {{\ncat {operator}{delimiter}\n{body}{plain}\n}}\n")
}

fn statement(random: &mut Random, is_script: bool) -> String {
    let name = assigned_name(random);
    // Most lines of real files are plain assignments; the other forms come one in three.
    if random.chance(65) {
        return format!("{name}={}", value(random, 0));
    }
    match random.below(30) {
        0..=9 => format!("{name}={}", value(random, 0)),
        10 => format!("{name}+={}", value(random, 0)),
        11 => format!(
            "{} {name}={}",
            random.pick(&[
                "export",
                "readonly",
                "declare",
                "local",
                "typeset",
                "declare -x"
            ]),
            value(random, 0)
        ),
        12 => format!(
            "export {}",
            random.pick(&[
                "\"maintenanceFile=/x\"",
                "a=/m{a,b}",
                "hostName=n{1,2}",
                "-n a",
                "a",
                "'a'=1",
            ])
        ),
        13 => format!("{name}=({} {})", literal_word(random), literal_word(random)),
        14 => format!("{name}[1]={}", literal_word(random)),
        15 => format!("# comment {}", tricky_text(random).replace('\n', " ")),
        16 => here_document(random),
        17 => format!("if true; then {name}={}; fi", literal_word(random)),
        18 => format!("f() {{ {name}={}; }}\nf", literal_word(random)),
        19 => format!("{name}={} >/dev/null", literal_word(random)),
        20 => format!("true && {name}={}", literal_word(random)),
        21 => format!("echo {}", literal_word(random)),
        22 => format!("a={}; {name}=\"$a\"", value(random, 0)),
        23 => format!("unset {name}"),
        24 => random.pick(&["cd /", "set -u", "shift", ":"]).to_string(),
        25 => format!("{name}={} # trailing", value(random, 0)),
        26 => format!(
            "{name}={}\\\n{}",
            literal_word(random),
            literal_word(random)
        ),
        27 if is_script => "return".to_string(),
        27 => format!(
            "{} {name}",
            random.pick(&["export", "readonly", "export -p", "export -f"])
        ),
        28 => format!(
            "{}{}\nstartCmd=/after-here-document",
            random.pick(&[": <<END\n", "cat >/dev/null <<-'END'\n"]),
            random.pick(&["a=1\nEND\\\nEND", "x\nEND", "\tEND"])
        ),
        29 => format!(
            "{name}={}{}",
            random.pick(&["${nope-", "${a:+", "\"${nope:-", "${b-\""]),
            random.pick(&[
                "'x y'}",
                "\"q}\"}",
                "a\\}b}",
                "'}'}\"",
                "$(echo })}",
                "x}\""
            ])
        ),
        _ => format!("{name}={}", value(random, 0)),
    }
}

/// A generated file, and the line of its top level where bash stops before the loop of a
/// script (0: it reads the whole file).
pub struct Generated {
    pub text: Vec<u8>,
    pub stop_line: usize,
}

/// A whole file: sometimes a `#!` script, with CRLF line ends now and then. In a script, the
/// first call of a function it defines is where hacmp's bash stops (src/config/boundary.rs).
pub fn variable_file(random: &mut Random) -> Generated {
    let is_script = random.chance(30);
    let mut text = String::new();
    if is_script {
        text.push_str("#!/bin/bash\n");
    }
    let mut stop_line = 0;
    for _ in 0..1 + random.below(6) {
        let statement = statement(random, is_script);
        let line_end = if random.chance(5) { "\r\n" } else { "\n" };
        if is_script && stop_line == 0 && statement.ends_with("\nf") && line_end == "\n" {
            stop_line = text.matches('\n').count() + statement.matches('\n').count() + 1;
        }
        text.push_str(&statement);
        text.push_str(line_end);
    }
    let mut bytes: Vec<u8> = text.into_bytes();
    // "\u{ff}" stands for a byte that is not UTF-8; NUL is written as it is.
    let mut index = 0;
    while index + 1 < bytes.len() {
        if bytes[index] == 0xC3 && bytes[index + 1] == 0xBF {
            bytes.splice(index..index + 2, [0xFF]);
        }
        index += 1;
    }
    Generated {
        text: bytes,
        stop_line,
    }
}
