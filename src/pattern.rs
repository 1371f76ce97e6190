//! pgrepProgramName: a POSIX extended regular expression, as `pgrep -f` reads it.
//!
//! PLACEHOLDER: compiles the pattern with the regex crate unchanged; the ERE translation that
//! rejects constructs the two dialects read differently replaces this.

use std::fmt;

#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: regex::bytes::Regex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        let regex = regex::bytes::Regex::new(source).map_err(|e| PatternError(e.to_string()))?;
        Ok(Pattern {
            source: source.to_string(),
            regex,
        })
    }

    /// The pattern as the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether a command line (arguments joined by single spaces) matches.
    pub fn is_match(&self, command_line: &[u8]) -> bool {
        self.regex.is_match(command_line)
    }
}
