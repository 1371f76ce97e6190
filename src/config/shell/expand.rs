//! Turns a word's parts into its value, as sh expands an assignment's value: parameters, command
//! substitution, tildes and quote removal, with no word splitting and no globbing.

use super::Fault;
use super::lexer::{Alternative, Part};

/// The longest value a word may expand to. Without it, `a=$a$a` repeated would grow the value
/// exponentially.
pub(super) const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// What expansion reads from and runs in.
pub(super) trait Scope {
    /// The variable's value, or `None` when it is unset; an error when the reader cannot know
    /// the value bash would have. `line` is where it is read.
    fn variable(&self, name: &str, line: usize) -> Result<Option<String>, Fault>;
    /// The home directory `~` means when HOME is unset.
    fn default_home(&self) -> Option<String>;
    /// Whether expanding an unset variable is an error (`set -u`).
    fn unset_is_error(&self) -> bool;
    /// The output of `script` with its trailing newlines removed.
    fn command_output(&mut self, script: &str, line: usize) -> Result<String, Fault>;
}

/// Where a `~` expands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Tildes {
    /// Only at the start of the word, as in any word.
    Leading,
    /// Also after each unquoted `:`, as in an assignment's value.
    LeadingAndAfterColons,
}

/// The value of the word made of `parts`, which starts on `line`.
pub(super) fn expand(
    parts: &[Part],
    tildes: Tildes,
    line: usize,
    scope: &mut impl Scope,
) -> Result<String, Fault> {
    let mut value = String::new();
    for (index, part) in parts.iter().enumerate() {
        match part {
            Part::Unquoted(text) => {
                let ends_word = index + 1 == parts.len();
                value.push_str(&expand_tildes(
                    text,
                    index == 0,
                    ends_word,
                    tildes,
                    line,
                    scope,
                )?);
            }
            Part::Quoted(text) => value.push_str(text),
            Part::Parameter { name, alternative } => {
                value.push_str(&parameter(name, alternative.as_ref(), tildes, line, scope)?);
            }
            Part::Command { script, line } => {
                value.push_str(&scope.command_output(script, *line)?);
            }
            Part::Unsupported { message, line } => return Err(Fault::new(*line, message)),
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(Fault::new(
                line,
                format!("the value is longer than the limit of {MAX_VALUE_BYTES} bytes"),
            ));
        }
    }
    Ok(value)
}

/// `$NAME` or `${NAME-word}`; the word's tildes expand as the enclosing word's do (after colons
/// too in an assignment), each counted from the start of the word.
fn parameter(
    name: &str,
    alternative: Option<&Alternative>,
    tildes: Tildes,
    line: usize,
    scope: &mut impl Scope,
) -> Result<String, Fault> {
    let value = scope.variable(name, line)?;
    let Some(alternative) = alternative else {
        if value.is_none() && scope.unset_is_error() {
            return Err(Fault::new(
                line,
                format!("${name} is unset under `set -u`, where bash stops reading"),
            ));
        }
        return Ok(value.unwrap_or_default());
    };
    let counts_as_set = value
        .as_ref()
        .is_some_and(|v| !(alternative.empty_is_unset && v.is_empty()));
    if counts_as_set == alternative.when_set {
        expand(&alternative.word, tildes, line, scope)
    } else {
        Ok(value.filter(|_| !alternative.when_set).unwrap_or_default())
    }
}

/// Expands the tildes of one run of unquoted text. A tilde prefix runs from `~` to the first `/`
/// (or `:` in an assignment); when it runs on past this text into quoted or expanded parts,
/// sh leaves it alone.
fn expand_tildes(
    text: &str,
    starts_word: bool,
    ends_word: bool,
    tildes: Tildes,
    line: usize,
    scope: &impl Scope,
) -> Result<String, Fault> {
    let segments: Vec<&str> = match tildes {
        Tildes::Leading => vec![text],
        Tildes::LeadingAndAfterColons => text.split(':').collect(),
    };
    let mut expanded = Vec::with_capacity(segments.len());
    for (index, segment) in segments.iter().enumerate() {
        let may_expand = if index == 0 { starts_word } else { true };
        let is_last = index + 1 == segments.len();
        let Some(rest) = segment.strip_prefix('~').filter(|_| may_expand) else {
            expanded.push(segment.to_string());
            continue;
        };
        let (prefix, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let prefix_complete = !path.is_empty() || !is_last || ends_word;
        let home = match scope.variable("HOME", line)? {
            Some(home) => Some(home),
            None => scope.default_home(),
        };
        match (prefix_complete, prefix.is_empty(), home) {
            (true, true, Some(home)) => expanded.push(format!("{home}{path}")),
            (true, false, _) => {
                return Err(Fault::new(
                    line,
                    format!(
                        "the tilde prefix `~{prefix}` is not supported: only `~` and `~/…` are"
                    ),
                ));
            }
            _ => expanded.push(segment.to_string()),
        }
    }
    Ok(expanded.join(":"))
}
