//! Checks that the machine can run the variables before the loop starts, so that bad input stops
//! hacmp with one clear line instead of the silent misbehaviour bash would show.
//!
//! PLACEHOLDER for the checks: heartBeatDir exists, the log can be written, startCmd can be found.

use std::path::Path;

use crate::config::{ConfigError, Variables};

pub fn check(variables: &Variables, file: Option<&Path>) -> Result<(), ConfigError> {
    let _ = (variables, file);
    Ok(())
}
