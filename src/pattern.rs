//! pgrepProgramName: a POSIX extended regular expression, as `pgrep -f` reads it.
//!
//! procps-ng's pgrep compiles the pattern with glibc's `regcomp(REG_EXTENDED | REG_NOSUB)` after
//! `setlocale(LC_ALL, "")`, so what the pattern means depends on the locale's character set: in
//! a UTF-8 locale `.` and bracket expressions match whole characters, elsewhere single bytes.
//! `ere` translates the part of the ERE grammar on which glibc and the `regex` crate agree and
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
    ///
    /// pgrep calls `setlocale(LC_ALL, "")`, which leaves the C locale in place when any category
    /// names a locale that is not installed; `newlocale` with every category fails the same way.
    pub fn from_environment() -> Encoding {
        static DETECTED: OnceLock<Encoding> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            // SAFETY: newlocale with a null base allocates a fresh locale object or returns null;
            // nl_langinfo_l returns a string owned by that object, which is copied before
            // freelocale releases it.
            unsafe {
                let locale = libc::newlocale(libc::LC_ALL_MASK, c"".as_ptr(), std::ptr::null_mut());
                if locale.is_null() {
                    return Encoding::SingleByte;
                }
                let codeset = CStr::from_ptr(libc::nl_langinfo_l(libc::CODESET, locale))
                    .to_bytes()
                    .to_ascii_uppercase();
                libc::freelocale(locale);
                if codeset == b"UTF-8" {
                    Encoding::Utf8
                } else {
                    Encoding::SingleByte
                }
            }
        })
    }
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
        Pattern::with_encoding(source, Encoding::from_environment())
    }

    /// Reads the pattern as pgrep would in a locale with the given character set.
    pub fn with_encoding(source: &str, encoding: Encoding) -> Result<Pattern, PatternError> {
        Pattern::from_bytes(source.as_bytes(), encoding)
    }

    /// Reads a pattern that may not be UTF-8 text, as pgrep would read it from its arguments.
    pub fn from_bytes(source: &[u8], encoding: Encoding) -> Result<Pattern, PatternError> {
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
        let translated = ere::translate(source, encoding)?;
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
