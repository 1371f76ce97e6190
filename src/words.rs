//! What bash does to an unquoted `$startCmd`: field splitting on the default IFS, then pathname
//! expansion of each field. Quotes in the value are ordinary characters; they were consumed when
//! the variable was assigned, not when it is expanded.

mod glob_pattern;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use glob_pattern::GlobPattern;

/// More words than any start command has; later words are dropped.
pub const MAX_WORDS: usize = 10_000;

/// More entries than we read from one directory while expanding a pattern.
const MAX_DIRECTORY_ENTRIES: usize = 100_000;

/// The characters bash splits unquoted expansions on: the default IFS.
pub fn is_ifs(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n')
}

/// The fields of an unquoted expansion of `text` before pathname expansion: split on IFS, with
/// empty fields dropped, as `echo $X` and `f $X` see them.
pub fn fields(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_ifs).filter(|field| !field.is_empty())
}

/// The argument vector bash builds from an unquoted expansion of `text`, in the current
/// directory, with the default IFS and default shell options, in the C locale.
pub fn expand_unquoted(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for field in fields(text) {
        words.extend(expand_pathname(field));
        if words.len() >= MAX_WORDS {
            words.truncate(MAX_WORDS);
            break;
        }
    }
    words
}

/// The pathnames matching `word`, sorted bytewise, or the word itself when it is not a pattern
/// or matches nothing (bash's default: neither nullglob nor failglob).
fn expand_pathname(word: &str) -> Vec<String> {
    if !glob_pattern::is_pattern(word.as_bytes()) {
        return vec![word.to_owned()];
    }
    let (pattern, directories_only) = without_trailing_slashes(word.as_bytes());
    let components: Vec<&[u8]> = pattern.split(|&b| b == b'/').collect();
    let mut paths: Vec<Vec<u8>> = vec![Vec::new()];
    for (index, component) in components.iter().enumerate() {
        let mut extended = Vec::new();
        for path in &paths {
            extend_path(path, component, &mut extended);
        }
        if index + 1 < components.len() {
            for path in &mut extended {
                path.push(b'/');
            }
        }
        extended.truncate(MAX_WORDS);
        paths = extended;
    }
    // Entries read from a directory exist; a literal last component still has to be checked.
    if components
        .last()
        .is_some_and(|last| !glob_pattern::is_pattern(last))
    {
        paths.retain(|path| {
            Path::new(std::ffi::OsStr::from_bytes(path))
                .symlink_metadata()
                .is_ok()
        });
    }
    if directories_only {
        paths.retain(|path| Path::new(std::ffi::OsStr::from_bytes(path)).is_dir());
        for path in &mut paths {
            path.push(b'/');
        }
    }
    if paths.is_empty() {
        return vec![word.to_owned()];
    }
    paths.sort_unstable();
    // A name that is not UTF-8 cannot travel in a String; it is converted lossily.
    paths
        .into_iter()
        .map(|path| String::from_utf8_lossy(&path).into_owned())
        .collect()
}

/// A pattern ending in slashes names directories: bash matches what comes before them and
/// appends one slash, however many there were (`*//` gives `d/`). Lone backslashes among those
/// slashes escape nothing and go too (`*/\` gives `d/`).
fn without_trailing_slashes(pattern: &[u8]) -> (&[u8], bool) {
    let kept = pattern
        .iter()
        .rposition(|&b| b != b'/' && b != b'\\')
        .map_or(0, |last| last + 1);
    if pattern[kept..].contains(&b'/') {
        (&pattern[..kept], true)
    } else {
        (pattern, false)
    }
}

/// Appends to `out` every path that `path` followed by the pattern `component` names.
fn extend_path(path: &[u8], component: &[u8], out: &mut Vec<Vec<u8>>) {
    if !glob_pattern::is_pattern(component) {
        out.push([path, &glob_pattern::unescape(component)].concat());
        return;
    }
    let pattern = GlobPattern::parse(component);
    let directory = if path.is_empty() {
        b".".as_slice()
    } else {
        path
    };
    let Ok(entries) = std::fs::read_dir(std::ffi::OsStr::from_bytes(directory)) else {
        return;
    };
    for entry in entries.take(MAX_DIRECTORY_ENTRIES).flatten() {
        let name = entry.file_name();
        if pattern.matches_file_name(name.as_bytes()) {
            out.push([path, name.as_bytes()].concat());
        }
    }
}
