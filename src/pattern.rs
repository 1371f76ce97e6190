//! pgrepProgramName: a POSIX extended regular expression, as `pgrep -f` reads it.
//!
//! procps-ng's pgrep compiles the pattern with glibc's `regcomp(REG_EXTENDED | REG_NOSUB)` after
//! `setlocale(LC_ALL, "")`, so what the pattern means depends on the locale: its character set
//! (in a UTF-8 locale `.` and bracket expressions match whole characters, elsewhere single
//! bytes), its character table (the members of `[:alpha:]` and the other classes) and its
//! collation (the extent of a range). `ere` translates the part of the ERE grammar on which glibc and the `regex` crate agree and
//! rejects the rest, so that a pattern never silently matches other processes than pgrep would.

mod classes;
mod ere;

use std::ffi::CStr;
use std::fmt;
use std::sync::OnceLock;

/// The character classes glibc knows in every locale.
const CLASSES: [&str; 12] = [
    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "xdigit",
];

/// Patterns longer than this are refused; a command-line pattern has no use for more.
pub const MAX_PATTERN_BYTES: usize = 4096;

/// The character set of the locale, which decides both how the pattern is read and how pgrep
/// escapes the command lines it matches against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A UTF-8 locale (`C.UTF-8`, `en_US.UTF-8`, ...): characters are UTF-8 sequences.
    Utf8,
    /// The C/POSIX locale, or any locale whose character set is not UTF-8: every byte is one
    /// character.
    SingleByte,
}

impl Encoding {
    /// The encoding pgrep would run with in this process's environment (LC_ALL, LC_CTYPE, LANG).
    pub fn from_environment() -> Encoding {
        environment_locale().0
    }
}

/// How glibc orders the characters of a range `[a-z]` in the locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collation {
    /// By code point: the C locale, POSIX and C.UTF-8, whose LC_COLLATE has no rules.
    CodePoints,
    /// By the locale's collation rules (en_US.UTF-8, de_DE.ISO-8859-1, ...): there `[a-z]`
    /// takes in `é` and `ß`, `[0-9]` other scripts' digits, and `[!-~]` not even all of ASCII.
    Rules,
}

impl Collation {
    /// The collation pgrep would run with in this process's environment.
    pub fn from_environment() -> Collation {
        environment_locale().1
    }
}

/// glibc's `_NL_COLLATE_NRULES` (`_NL_ITEM (LC_COLLATE, 0)`), which the libc crate does not
/// declare: `nl_langinfo` returns the number of collation rules in place of a string.
const NL_COLLATE_NRULES: libc::nl_item = 3 << 16;

/// The character set and collation of the locale pgrep would use.
///
/// pgrep calls `setlocale(LC_ALL, "")`, which leaves the C locale in place when any category
/// names a locale that is not installed; `newlocale` with every category fails the same way.
fn environment_locale() -> (Encoding, Collation) {
    static DETECTED: OnceLock<(Encoding, Collation)> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        // SAFETY: newlocale with a null base allocates a fresh locale object or returns null;
        // nl_langinfo_l returns a string owned by that object (or, for the number of rules, a
        // number in its place), which is read before freelocale releases it.
        unsafe {
            let locale = libc::newlocale(libc::LC_ALL_MASK, c"".as_ptr(), std::ptr::null_mut());
            if locale.is_null() {
                return (Encoding::SingleByte, Collation::CodePoints);
            }
            let codeset = CStr::from_ptr(libc::nl_langinfo_l(libc::CODESET, locale))
                .to_bytes()
                .to_ascii_uppercase();
            // glibc keeps the number as a 32-bit word in a union with the string pointer it
            // returns, so only the low 32 bits of the "pointer" are the number; the rest is
            // whatever the union held.
            let rules = libc::nl_langinfo_l(NL_COLLATE_NRULES, locale) as usize as u32;
            libc::freelocale(locale);
            let encoding = if codeset == b"UTF-8" {
                Encoding::Utf8
            } else {
                Encoding::SingleByte
            };
            let collation = if rules == 0 {
                Collation::CodePoints
            } else {
                Collation::Rules
            };
            (encoding, collation)
        }
    })
}

#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    encoding: Encoding,
    regex: regex::bytes::Regex,
}

/// Why a pattern was refused: one line, without the variable's name (the caller adds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Pattern {
    /// Reads the pattern as pgrep would in this process's locale.
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        Pattern::in_locale(
            source.as_bytes(),
            Encoding::from_environment(),
            Collation::from_environment(),
        )
    }

    /// Reads the pattern as pgrep would in C (single byte) or C.UTF-8.
    pub fn with_encoding(source: &str, encoding: Encoding) -> Result<Pattern, PatternError> {
        Pattern::in_locale(source.as_bytes(), encoding, Collation::CodePoints)
    }

    /// Reads a pattern that may not be UTF-8 text, as pgrep would read it from its arguments,
    /// in a locale with the given character set and collation.
    pub fn in_locale(
        source: &[u8],
        encoding: Encoding,
        collation: Collation,
    ) -> Result<Pattern, PatternError> {
        if source.len() > MAX_PATTERN_BYTES {
            return Err(PatternError(format!(
                "is longer than {MAX_PATTERN_BYTES} bytes"
            )));
        }
        if source.contains(&0) {
            return Err(PatternError(
                "contains a NUL byte, which ends the pattern early for pgrep".to_string(),
            ));
        }
        if source.len() > 1 && source.starts_with(b"-") {
            return Err(PatternError(
                "starts with '-', which pgrep reads as options rather than a pattern (its run fails, or with -P, -u and the like lists other processes)".to_string(),
            ));
        }
        let translated = ere::translate(source, encoding, collation)?;
        let regex = regex::bytes::Regex::new(&translated).map_err(|e| {
            PatternError(format!(
                "is too complex to compile: {}",
                e.to_string().lines().last().unwrap_or_default()
            ))
        })?;
        Ok(Pattern {
            source: String::from_utf8_lossy(source).into_owned(),
            encoding,
            regex,
        })
    }

    /// The pattern as the operator wrote it (bytes that are not UTF-8 shown as U+FFFD).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The character set the pattern was read for; command lines must be escaped for it.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Whether a command line (arguments joined by single spaces) matches.
    pub fn is_match(&self, command_line: &[u8]) -> bool {
        self.regex.is_match(command_line)
    }
}
