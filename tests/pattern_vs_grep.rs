//! Differential tests of `Pattern` against glibc's own `regcomp`/`regexec` (the library pgrep
//! calls, with pgrep's flags) and against `grep -E`, in the C locale and in C.UTF-8.

use std::ffi::CString;
use std::io::Write;
use std::process::{Command, Stdio};

use hacmp::pattern::{Collation, Encoding, Pattern};
use proptest::prelude::*;

const ENCODINGS: [Encoding; 2] = [Encoding::SingleByte, Encoding::Utf8];

fn locale_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::SingleByte => "C",
        Encoding::Utf8 => "C.UTF-8",
    }
}

/// What glibc makes of `pattern` on `subject` in the locale: `None` when regcomp refuses it.
fn glibc(pattern: &str, subject: &[u8], encoding: Encoding) -> Option<bool> {
    let pattern = CString::new(pattern).unwrap();
    let subject = CString::new(subject).unwrap();
    let name = CString::new(locale_name(encoding)).unwrap();
    // SAFETY: the locale object is installed for this thread only and restored before it is
    // freed; regex_t is plain data that regcomp fills and regfree releases.
    unsafe {
        let locale = libc::newlocale(libc::LC_ALL_MASK, name.as_ptr(), std::ptr::null_mut());
        assert!(!locale.is_null(), "locale {name:?} is not installed");
        let previous = libc::uselocale(locale);
        let mut compiled: libc::regex_t = std::mem::zeroed();
        let status = libc::regcomp(
            &mut compiled,
            pattern.as_ptr(),
            libc::REG_EXTENDED | libc::REG_NOSUB,
        );
        let result = (status == 0).then(|| {
            let found = libc::regexec(&compiled, subject.as_ptr(), 0, std::ptr::null_mut(), 0) == 0;
            libc::regfree(&mut compiled);
            found
        });
        libc::uselocale(previous);
        libc::freelocale(locale);
        result
    }
}

/// What `grep -E` makes of `pattern` on the one-line `subject`: `None` when grep refuses it.
fn grep(pattern: &str, subject: &[u8], encoding: Encoding) -> Option<bool> {
    let mut child = Command::new("grep")
        .args(["-E", "-q", "-e", pattern])
        .env("LC_ALL", locale_name(encoding))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("grep runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(subject).unwrap();
    stdin.write_all(b"\n").unwrap();
    drop(stdin);
    match child.wait().unwrap().code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

fn ours(pattern: &str, subject: &[u8], encoding: Encoding) -> bool {
    Pattern::with_encoding(pattern, encoding)
        .unwrap_or_else(|e| panic!("{pattern:?} refused in {encoding:?}: {e}"))
        .is_match(subject)
}

/// Accepted patterns, each with subjects chosen to sit on both sides of its meaning.
const ACCEPTED: &[(&str, &[&[u8]])] = &[
    ("", &[b"", b"x"]),
    ("abc", &[b"abc", b"xabcx", b"ab", b"ABC"]),
    (
        "sh.*exmapleApplication.sh.*",
        &[
            b"sh ./exmapleApplication.sh",
            b"bash exmapleApplicationXsh",
            b"exmapleApplication.sh",
        ],
    ),
    (
        "a.c",
        &[b"abc", b"a\nc", b"ac", "aéc".as_bytes(), b"a\xffc"],
    ),
    ("^a.$", &["aé".as_bytes(), b"ab", b"a"]),
    ("^a..$", &["aé".as_bytes(), b"ab"]),
    ("a*", &[b"", b"b"]),
    ("^a*$", &[b"", b"aaa", b"aab"]),
    ("^ab+c", &[b"ac", b"abc", b"abbbc"]),
    ("^ab?c$", &[b"ac", b"abc", b"abbc"]),
    ("^a{2}$", &[b"a", b"aa", b"aaa"]),
    ("^a{2,}$", &[b"a", b"aa", b"aaaaa"]),
    ("^a{1,3}$", &[b"", b"a", b"aaa", b"aaaa"]),
    ("^a{0}b$", &[b"b", b"ab"]),
    ("^a{0,0}b$", &[b"b", b"ab"]),
    ("^a{01}$", &[b"a", b"aa"]),
    ("^a{255}$", &[b"aaa"]),
    ("^(ab){2}$", &[b"abab", b"ab", b"ababab"]),
    ("^a{2}{3}$", &[b"aaaaaa", b"aa", b"aaaaa"]),
    ("^a**$", &[b"", b"aaa", b"b"]),
    ("^a+*$", &[b"", b"aa"]),
    ("^a*?$", &[b"", b"aa"]),
    ("^a?+$", &[b"", b"aa"]),
    ("^a{1,2}{3}$", &[b"aaa", b"aa", b"aaaaaa", b"aaaaaaa"]),
    ("cat|dog", &[b"hotdog", b"cats", b"cow"]),
    ("^(cat|dog)$", &[b"dog", b"cat", b"catdog"]),
    ("a||b", &[b"", b"x"]),
    ("|a", &[b"x"]),
    ("^(a|)$", &[b"", b"a", b"b"]),
    ("^()$", &[b"", b"a"]),
    ("^(){2}a$", &[b"a"]),
    ("^((a|b)c)+$", &[b"acbc", b"ac", b"ab", b""]),
    ("(^a)", &[b"a", b"ba"]),
    ("(^a)b", &[b"ab", b"b"]),
    ("x(^a)", &[b"xa"]),
    ("(a|^)b", &[b"b", b"xb", b"ab"]),
    ("a^b", &[b"a^b", b"ab"]),
    ("a$b", &[b"a$b", b"ab"]),
    ("(a$)", &[b"a", b"ab"]),
    ("^(^a$)$", &[b"a"]),
    ("$", &[b"", b"x"]),
    ("^", &[b"x"]),
    ("\\.", &[b".", b"a"]),
    (
        "\\*\\+\\?\\{\\}\\(\\)\\|\\^\\$\\[\\]\\\\",
        &[b"*+?{}()|^$[]\\", b"x"],
    ),
    (
        "\\/\\-\\\"\\#\\=\\,\\%\\~\\!\\&\\;\\:\\@\\_",
        &[b"/-\"#=,%~!&;:@_"],
    ),
    ("a]", &[b"a]", b"a"]),
    ("a\\ b", &[b"a b", b"ab"]),
    ("a}", &[b"a}", b"a"]),
    ("^[abc]$", &[b"a", b"c", b"d", b"ab"]),
    ("^[^abc]$", &[b"d", b"a", b"\n", "é".as_bytes(), b"\xff"]),
    ("^[]a]$", &[b"]", b"a", b"b"]),
    ("^[^]a]$", &[b"]", b"b"]),
    ("^[a-]$", &[b"-", b"a", b"b"]),
    ("^[-a]$", &[b"-", b"a"]),
    ("^[^-a]$", &[b"-", b"b"]),
    ("^[]-a]$", &[b"]", b"^", b"a", b"b"]),
    ("^[%--]$", &[b",", b"%", b"-", b"."]),
    ("^[--/]$", &[b".", b"-", b"/", b","]),
    ("^[a-c-]$", &[b"-", b"b", b"d"]),
    ("^[a-z0-9_]+$", &[b"abc_09", b"ABC", b"a-b"]),
    ("^[a-z]$", &[b"B", "é".as_bytes()]),
    ("^[\\d]+$", &[b"d", b"\\", b"1"]),
    ("^[\\]]$", &[b"\\]", b"]"]),
    ("^[[]$", &[b"[", b"a"]),
    ("^[a[]$", &[b"[", b"a"]),
    ("^[.]$", &[b".", b"a"]),
    ("^[=]$", &[b"=", b"a"]),
    ("^[:a]$", &[b":", b"a", b"b"]),
    ("^[*+?{|()]+$", &[b"*+?{|()", b"a"]),
    ("^[é]$", &["é".as_bytes(), b"\xc3", b"e"]),
    ("^[^é]$", &["é".as_bytes(), b"\xc3", b"e"]),
    ("xé*", &[b"x", "xé".as_bytes(), b"x\xc3"]),
    ("^é+$", &["éé".as_bytes(), b"\xc3\xa9\xa9"]),
    ("^[[:alpha:]]+$", &[b"abcXYZ", b"ab1"]),
    ("^[[:digit:]]+$", &[b"0123456789", b"12a"]),
    ("^[[:alnum:]]+$", &[b"a1", b"a_1"]),
    ("^[[:upper:]]$", &[b"A", b"a"]),
    ("^[[:lower:]]$", &[b"A", b"a"]),
    ("^[[:space:]]$", &[b" ", b"\t", b"\x0b", b"a"]),
    ("^[[:blank:]]$", &[b" ", b"\t", b"\x0b"]),
    (
        "^[[:punct:]]+$",
        &[b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", b"a"],
    ),
    ("^[[:print:]]+$", &[b"a b~", b"a\x7f"]),
    ("^[[:graph:]]+$", &[b"a~", b"a b"]),
    ("^[[:cntrl:]]+$", &[b"\x01\x1f\x7f", b" "]),
    ("^[[:xdigit:]]+$", &[b"09afAF", b"g"]),
    ("^[^[:digit:]x]+$", &[b"abc", b"a1", b"x"]),
    ("^[[:alpha:][:digit:]]+$", &[b"a1", b"a-1"]),
    ("^[[:alpha:]-]+$", &[b"a-b", b"a_b"]),
    (
        "^java .*-jar (app|server)\\.jar",
        &[b"java -Xmx1g -jar app.jar --port 80", b"java -jar appXjar"],
    ),
];

#[test]
fn accepted_patterns_match_as_glibc_and_grep_do() {
    let mut compared = 0;
    for &(pattern, subjects) in ACCEPTED {
        for encoding in ENCODINGS {
            for &subject in subjects {
                let expected = glibc(pattern, subject, encoding)
                    .unwrap_or_else(|| panic!("glibc refuses {pattern:?}"));
                let actual = ours(pattern, subject, encoding);
                assert_eq!(
                    actual, expected,
                    "{pattern:?} on {subject:?} in {encoding:?}: ours {actual}, glibc {expected}"
                );
                if !subject.contains(&b'\n') {
                    assert_eq!(
                        grep(pattern, subject, encoding),
                        Some(expected),
                        "grep -E disagrees with glibc on {pattern:?} / {subject:?} in {encoding:?}"
                    );
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 300, "only {compared} comparisons");
}

/// Patterns and subjects on which glibc's reading in a UTF-8 locale is subtle (grep -E, with its
/// own matcher, is not asked): bytes that are not UTF-8, which procps passes on to the pattern,
/// and non-ASCII characters against POSIX classes, which glibc takes from the locale's table.
const UTF8_SUBTLETIES: &[(&str, &[&[u8]])] = &[
    // No bracket expression needs characters: glibc matches byte by byte, and `.` takes a
    // surrogate or a code point above U+10FFFF for one character, but no lone lead byte.
    (
        "^.$",
        &[
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80",
            b"\xc3A",
            b"\xe0\x80\x80",
            b"\xc3",
        ],
    ),
    ("^.A$", &[b"\xc3A", "éA".as_bytes()]),
    ("^a.b$", &[b"a\xed\xa0\x80b", b"a\xc3\x01b"]),
    // A range makes glibc decode characters: a surrogate is no longer one, U+110000 still is.
    (
        "^.$|[a-c]x",
        &[
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf8\x88\x80\x80\x80",
            "é".as_bytes(),
        ],
    ),
    (
        "^[^a]$",
        &[
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xc3",
            "é".as_bytes(),
        ],
    ),
    (
        "^[^a-z]+$",
        &[
            b"\xc3A",
            b"\xf4\x90\x80\x80\xf4\x90\x80\x80",
            "€".as_bytes(),
        ],
    ),
    ("^[é]A$", &[b"\xc3A", "éA".as_bytes()]),
    // Classes hold what the locale's table says, beyond ASCII too; a negated one leaves out the
    // non-ASCII members.
    (
        "^[[:alpha:]]$",
        &[
            "é".as_bytes(),
            "٣".as_bytes(),
            "ǅ".as_bytes(),
            "€".as_bytes(),
        ],
    ),
    (
        "^[^[:alpha:]]$",
        &["é".as_bytes(), "€".as_bytes(), b"\xf4\x90\x80\x80"],
    ),
    (
        "^[[:space:]]$",
        &[
            "\u{2028}".as_bytes(),
            "\u{a0}".as_bytes(),
            "\u{3000}".as_bytes(),
        ],
    ),
    (
        "^[^[:space:][:punct:]]$",
        &["\u{3000}".as_bytes(), "§".as_bytes(), "€".as_bytes()],
    ),
    (
        "^[[:cntrl:]]$",
        &["\u{85}".as_bytes(), "\u{200b}".as_bytes()],
    ),
    (
        "^[[:upper:][:digit:]]$",
        &["É".as_bytes(), "٣".as_bytes(), "é".as_bytes()],
    ),
    (
        "^[[:print:]]$",
        &["\u{ffff}".as_bytes(), "\u{e000}".as_bytes(), "𝄞".as_bytes()],
    ),
];

#[test]
fn utf8_subtleties_match_as_glibc_does() {
    for &(pattern, subjects) in UTF8_SUBTLETIES {
        for encoding in ENCODINGS {
            for &subject in subjects {
                let expected = glibc(pattern, subject, encoding)
                    .unwrap_or_else(|| panic!("glibc refuses {pattern:?}"));
                assert_eq!(
                    ours(pattern, subject, encoding),
                    expected,
                    "{pattern:?} on {subject:?} in {encoding:?}"
                );
            }
        }
    }
}

#[test]
fn patterns_pgrep_would_read_differently_are_refused() {
    // pgrep takes a leading '-' for options; "-" alone is a pattern.
    for encoding in ENCODINGS {
        assert!(Pattern::with_encoding("-x", encoding).is_err());
        assert!(Pattern::with_encoding("-P1", encoding).is_err());
        assert!(Pattern::with_encoding("-", encoding).is_ok());
    }
    // A pattern that is not UTF-8 is read byte by byte in the C locale and refused in a UTF-8
    // one, where glibc's reading of it depends on the rest of the pattern.
    let not_utf8 = b"a\xffb";
    let single_byte =
        Pattern::in_locale(not_utf8, Encoding::SingleByte, Collation::CodePoints).unwrap();
    assert!(single_byte.is_match(b"xa\xffb"));
    assert!(Pattern::in_locale(not_utf8, Encoding::Utf8, Collation::CodePoints).is_err());
}

/// How a refused pattern is shown to deserve refusal.
enum Evidence {
    /// glibc's regcomp refuses it too (pgrep would exit with "regex error").
    GlibcRefuses,
    /// glibc accepts it but matches this subject differently from the regex crate reading the
    /// same text.
    ReadDifferently(&'static [u8]),
    /// glibc gives the escape a special meaning (a GNU extension): on this subject it decides
    /// otherwise than for the same pattern without the backslash.
    GnuSpecial(&'static [u8]),
}

const REFUSED: &[(&str, Evidence)] = &[
    ("*a", Evidence::GlibcRefuses),
    ("a|*b", Evidence::GlibcRefuses),
    ("(*a)", Evidence::GlibcRefuses),
    ("+a", Evidence::GlibcRefuses),
    ("?a", Evidence::GlibcRefuses),
    ("{1}a", Evidence::GlibcRefuses),
    ("^*", Evidence::GlibcRefuses),
    ("a$+", Evidence::GlibcRefuses),
    ("a{", Evidence::GlibcRefuses),
    ("a{1", Evidence::GlibcRefuses),
    ("a{1,2", Evidence::GlibcRefuses),
    ("a{x}", Evidence::GlibcRefuses),
    ("a{2,1}", Evidence::GlibcRefuses),
    ("a{ 1}", Evidence::GlibcRefuses),
    ("a{,2}", Evidence::ReadDifferently(b"a{,2}")),
    ("(a", Evidence::GlibcRefuses),
    ("a)", Evidence::ReadDifferently(b"a)")),
    (")", Evidence::ReadDifferently(b")")),
    ("a\\", Evidence::GlibcRefuses),
    ("(a)\\1", Evidence::ReadDifferently(b"aa")),
    ("\\1", Evidence::GlibcRefuses),
    ("\\d", Evidence::ReadDifferently(b"d")),
    ("\\D", Evidence::ReadDifferently(b"x")),
    ("\\n", Evidence::ReadDifferently(b"n")),
    ("\\t", Evidence::ReadDifferently(b"t")),
    ("\\q", Evidence::ReadDifferently(b"q")),
    ("\\0", Evidence::ReadDifferently(b"0")),
    ("\\w", Evidence::GnuSpecial(b"x")),
    ("\\W", Evidence::GnuSpecial(b"-")),
    ("\\s", Evidence::GnuSpecial(b" ")),
    ("\\S", Evidence::GnuSpecial(b"x")),
    ("a\\b", Evidence::GnuSpecial(b"ab")),
    ("a\\B", Evidence::GnuSpecial(b"ax")),
    ("\\<a", Evidence::GnuSpecial(b"a")),
    ("a\\>", Evidence::GnuSpecial(b"a")),
    ("\\`a", Evidence::GnuSpecial(b"a")),
    ("a\\'", Evidence::GnuSpecial(b"a")),
    ("[a", Evidence::GlibcRefuses),
    ("[]", Evidence::GlibcRefuses),
    ("[^]", Evidence::GlibcRefuses),
    ("[z-a]", Evidence::GlibcRefuses),
    ("[a-c-e]", Evidence::GlibcRefuses),
    ("[[:alpha:]-z]", Evidence::GlibcRefuses),
    ("[a-[:alpha:]]", Evidence::GlibcRefuses),
    ("[[:foo:]]", Evidence::GlibcRefuses),
    ("[[:word:]]", Evidence::GlibcRefuses),
    ("[[:ALPHA:]]", Evidence::GlibcRefuses),
    ("[[:alpha:]", Evidence::GlibcRefuses),
    ("[[:]", Evidence::GlibcRefuses),
    ("[[.]", Evidence::GlibcRefuses),
    ("[[=]", Evidence::GlibcRefuses),
    ("[[.a.]]", Evidence::ReadDifferently(b".")),
    ("[[=a=]]", Evidence::ReadDifferently(b"=")),
    ("[[.space.]]", Evidence::GlibcRefuses),
    ("(b$){2}", Evidence::ReadDifferently(b"bb")),
    ("(^b){2}", Evidence::ReadDifferently(b"bb")),
    ("(^b)+c", Evidence::ReadDifferently(b"bbc")),
];

/// What the regex crate makes of the pattern's text as it stands, if it accepts it.
fn regex_crate_verbatim(pattern: &str, subject: &[u8]) -> Option<bool> {
    regex::bytes::Regex::new(pattern)
        .ok()
        .map(|r| r.is_match(subject))
}

#[test]
fn refused_patterns_are_errors_extensions_or_read_differently() {
    for (pattern, evidence) in REFUSED {
        for encoding in ENCODINGS {
            let refusal = Pattern::with_encoding(pattern, encoding)
                .expect_err(&format!("{pattern:?} accepted in {encoding:?}"));
            let reason = refusal.to_string();
            assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
            match evidence {
                Evidence::GlibcRefuses => {
                    assert_eq!(glibc(pattern, b"", encoding), None, "{pattern:?}");
                }
                Evidence::ReadDifferently(subject) => {
                    let expected = glibc(pattern, subject, encoding);
                    assert!(expected.is_some(), "glibc refuses {pattern:?}");
                    assert_ne!(
                        regex_crate_verbatim(pattern, subject),
                        expected,
                        "{pattern:?} on {subject:?}"
                    );
                }
                Evidence::GnuSpecial(subject) => {
                    let plain = pattern.replace('\\', "");
                    assert_ne!(
                        glibc(pattern, subject, encoding),
                        glibc(&plain, subject, encoding),
                        "{pattern:?} on {subject:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn limits_are_refused_with_one_line_reasons() {
    let long = "a".repeat(hacmp::pattern::MAX_PATTERN_BYTES + 1);
    let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
    for pattern in [
        long.as_str(),
        deep.as_str(),
        "a\0b",
        "[é-z]",
        "[a-é]",
        "a{256}",
        "a{1,999}",
    ] {
        let reason = Pattern::with_encoding(pattern, Encoding::Utf8)
            .unwrap_err()
            .to_string();
        assert!(!reason.contains('\n'), "{reason:?}");
    }
    let fits = "a".repeat(hacmp::pattern::MAX_PATTERN_BYTES);
    assert!(Pattern::with_encoding(&fits, Encoding::Utf8).is_ok());
}

/// Random anchor-free patterns from the accepted grammar over a small alphabet.
fn unanchored_ere() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just(".".to_string()),
        Just("[ab]".to_string()),
        Just("[^a]".to_string()),
        Just("[]a-]".to_string()),
        Just("\\.".to_string()),
        Just("é".to_string()),
        Just("[[:upper:]]".to_string()),
    ];
    atom.prop_recursive(4, 24, 3, |inner| {
        let repetition = prop_oneof![
            Just("*"),
            Just("+"),
            Just("?"),
            Just("{2}"),
            Just("{0,}"),
            Just("{1,2}")
        ];
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("{x}{y}")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("{x}|{y}")),
            inner.clone().prop_map(|x| format!("({x})")),
            (inner, repetition).prop_map(|(x, r)| format!("({x}){r}")),
        ]
    })
}

/// Random patterns from the accepted grammar: anchors anywhere except in repeated groups.
fn ere() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        3 => unanchored_ere(),
        1 => Just("^".to_string()),
        1 => Just("$".to_string()),
        1 => unanchored_ere().prop_map(|x| format!("(^{x}|{x}$)")),
    ];
    let sequence = proptest::collection::vec(part, 1..4).prop_map(|parts| parts.concat());
    prop_oneof![
        3 => sequence.clone(),
        1 => (sequence.clone(), sequence).prop_map(|(x, y)| format!("{x}|{y}")),
    ]
}

fn subject() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b"a".to_vec()),
            Just(b"b".to_vec()),
            Just(b".".to_vec()),
            Just(b"A".to_vec()),
            Just(b"-".to_vec()),
            Just(b"]".to_vec()),
            Just("é".as_bytes().to_vec()),
            Just(b"\xc3".to_vec()),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn random_eres_match_as_glibc_does(pattern in ere(), subject in subject()) {
        for encoding in ENCODINGS {
            let expected = glibc(&pattern, &subject, encoding);
            prop_assert!(expected.is_some(), "glibc refuses {:?}", pattern);
            prop_assert_eq!(ours(&pattern, &subject, encoding), expected.unwrap(),
                "{:?} on {:?} in {:?}", pattern, subject, encoding);
        }
    }
}
