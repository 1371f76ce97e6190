//! Reads the variable assignments of a shell file the way `. FILE` would set them.
//!
//! PLACEHOLDER: understands only `NAME=value` and `NAME='value'` lines; the full reader replaces it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One assignment, with where it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub value: String,
    pub file: PathBuf,
    pub line: usize,
}

/// A line the reader cannot take, or a file it cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Every assignment the file makes, in order; `environment` is what `$VAR` sees when the file has
/// not assigned VAR itself.
pub fn read_assignments(
    path: &Path,
    environment: &HashMap<String, String>,
) -> Result<Vec<Assignment>, ShellError> {
    let _ = environment;
    let text = std::fs::read_to_string(path).map_err(|e| ShellError {
        file: path.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut assignments = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        assignments.push(Assignment {
            name: name.to_string(),
            value: value.trim_matches('\'').to_string(),
            file: path.to_path_buf(),
            line: index + 1,
        });
    }
    Ok(assignments)
}
