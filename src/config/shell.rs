//! Reads the variable assignments of a shell file the way `. FILE` would set them, without
//! running the file: assignments, `export`, `readonly` and `. FILE` are evaluated, compound
//! commands and functions are skipped, and in a script (a file starting with `#!`) every other
//! command is ignored. In a plain variable file any other command is an error.

mod bash_variables;
mod commands;
mod effects;
mod expand;
mod lexer;
mod substitution;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use commands::Statement;
use effects::Effects;
use expand::{Scope, Tildes, expand};
use lexer::{Part, Word};

/// The largest file the reader reads.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// The most lines a file may have.
pub const MAX_LINES: usize = 50_000;
/// How deeply `. FILE` may nest.
pub const MAX_SOURCE_DEPTH: usize = 8;
/// The most files one read may take in, counting each `. FILE` again.
pub const MAX_FILES: usize = 64;
/// The most command substitutions one read may run.
pub const MAX_SUBSTITUTIONS: usize = 64;

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

/// An error on a line of the file being read; the reader adds the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fault {
    line: usize,
    message: String,
}

impl Fault {
    fn new(line: usize, message: impl Into<String>) -> Fault {
        Fault {
            line,
            message: message.into(),
        }
    }
}

/// Every assignment the file makes, in order; `environment` is what `$VAR` sees when the file has
/// not assigned VAR itself.
pub fn read_assignments(
    path: &Path,
    environment: &HashMap<String, String>,
) -> Result<Vec<Assignment>, ShellError> {
    let mut reader = Reader {
        environment,
        values: HashMap::new(),
        readonly: HashSet::new(),
        exported: HashSet::new(),
        assignments: Vec::new(),
        functions: HashMap::new(),
        unknown: HashMap::new(),
        sourcing: Vec::new(),
        files_read: 0,
        substitutions_run: 0,
        nounset: false,
    };
    reader.read_file(path, None)?;
    let ours = crate::config::VARIABLE_NAMES
        .iter()
        .chain(crate::config::HACMP_VARIABLE_NAMES.iter());
    for name in ours {
        if let Some((file, line)) = reader.unknown.get(*name) {
            return Err(ShellError {
                file: file.clone(),
                line: *line,
                message: format!(
                    "{name} may be set here by a command the reader does not run; \
                     set it with a plain assignment after it"
                ),
            });
        }
    }
    Ok(reader.assignments)
}

/// Whether reading goes on after a command.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// `return`: the rest of this file is not read.
    Return,
    /// `exit`: nothing more is read, in any file.
    Exit,
}

struct Reader<'e> {
    environment: &'e HashMap<String, String>,
    /// The current value of each variable the files have assigned.
    values: HashMap<String, String>,
    readonly: HashSet<String>,
    /// The variables marked by `export`; those from the environment are exported too.
    exported: HashSet<String>,
    assignments: Vec<Assignment>,
    /// What each function defined so far may do to variables.
    functions: HashMap<String, Effects>,
    /// Variables a command the reader did not run may have set, with where that command is.
    unknown: HashMap<String, (PathBuf, usize)>,
    /// The files being read, outermost first: each one's canonical path, to find `. FILE`
    /// cycles, and the path it was named by, for the assignments it makes.
    sourcing: Vec<(PathBuf, PathBuf)>,
    files_read: usize,
    substitutions_run: usize,
    /// `set -u`: expanding an unset variable is an error, which ends bash's reading.
    nounset: bool,
}

/// Attaches the file to an error on one of its lines.
fn located(file: &Path, fault: Fault) -> ShellError {
    ShellError {
        file: file.to_path_buf(),
        line: fault.line,
        message: fault.message,
    }
}

/// The text of a file, within the size and line limits; faults about the whole file are on
/// line 0.
fn file_text(path: &Path) -> Result<String, Fault> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Fault::new(0, e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Fault::new(0, e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Fault::new(
            0,
            format!("the file is larger than the limit of {MAX_FILE_BYTES} bytes"),
        ));
    }
    let line_of = |offset: usize| 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(Fault::new(
            line_of(offset),
            "a NUL byte, which bash silently drops: remove it",
        ));
    }
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(Fault::new(
            line_of(e.valid_up_to()),
            "bytes that are not UTF-8 text",
        ));
    }
    let text = String::from_utf8(bytes).expect("checked to be UTF-8");
    if text.lines().count() > MAX_LINES {
        return Err(Fault::new(
            0,
            format!("the file has more than {MAX_LINES} lines"),
        ));
    }
    Ok(text)
}

/// The name, whether it is `+=`, and the value's parts, of an assignment word.
fn split_assignment(word: &Word) -> Option<(&str, bool, Vec<Part>)> {
    let Some(Part::Unquoted(first)) = word.parts.first() else {
        return None;
    };
    let (target, rest) = first.split_once('=')?;
    let (name, append) = match target.strip_suffix('+') {
        Some(name) => (name, true),
        None => (target, false),
    };
    if !is_name(name) {
        return None;
    }
    let mut value = Vec::with_capacity(word.parts.len());
    if !rest.is_empty() {
        value.push(Part::Unquoted(rest.to_string()));
    }
    value.extend_from_slice(&word.parts[1..]);
    Some((name, append, value))
}

fn is_name(text: &str) -> bool {
    text.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
        && text.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A command a plain variable file may not hold.
fn unparsable(line: usize) -> Fault {
    Fault::new(
        line,
        "unparsable line: a variable file (one not starting with `#!`) may hold only \
         assignments, export, readonly, `. FILE`, comments and compound commands",
    )
}

/// The first line of a command's text, shortened, to name it in an error.
fn excerpt(script: &str) -> String {
    const MAX_CHARS: usize = 40;
    let first_line = script.trim().lines().next().unwrap_or_default();
    if first_line.chars().count() > MAX_CHARS || script.trim().contains('\n') {
        format!(
            "{}…",
            first_line.chars().take(MAX_CHARS).collect::<String>()
        )
    } else {
        first_line.to_string()
    }
}

impl Reader<'_> {
    /// Reads one file. `sourced_from` is the `. FILE` line that names it, where an error
    /// opening it belongs; errors opening the first file are on its line 0.
    fn read_file(
        &mut self,
        path: &Path,
        sourced_from: Option<(&Path, usize)>,
    ) -> Result<Flow, ShellError> {
        let opening_error = |message: String| match sourced_from {
            Some((file, line)) => ShellError {
                file: file.to_path_buf(),
                line,
                message: format!("`. {}`: {message}", path.display()),
            },
            None => ShellError {
                file: path.to_path_buf(),
                line: 0,
                message,
            },
        };
        if self.sourcing.len() >= MAX_SOURCE_DEPTH {
            return Err(opening_error(format!(
                "sourced files nest more than {MAX_SOURCE_DEPTH} deep"
            )));
        }
        if self.files_read >= MAX_FILES {
            return Err(opening_error(format!(
                "more than {MAX_FILES} files sourced in all"
            )));
        }
        let text = file_text(path).map_err(|fault| match fault.line {
            0 => opening_error(fault.message),
            _ => located(path, fault),
        })?;
        let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.sourcing.iter().any(|(open, _)| *open == identity) {
            return Err(opening_error(
                "the file is already being read: sourcing it again would never end".to_string(),
            ));
        }
        self.sourcing.push((identity, path.to_path_buf()));
        self.files_read += 1;
        let flow = self.read_text(path, &text);
        self.sourcing.pop();
        flow
    }

    fn read_text(&mut self, path: &Path, text: &str) -> Result<Flow, ShellError> {
        let is_script = text.starts_with("#!");
        let tokens = lexer::tokenize(text).map_err(|f| located(path, f))?;
        let statements = commands::statements(&tokens).map_err(|f| located(path, f))?;
        for statement in statements {
            let flow = match statement {
                Statement::Compound {
                    function: Some(name),
                    inner,
                } => {
                    let effects = effects::of_commands(&inner, &self.functions);
                    self.functions.insert(name, effects);
                    Flow::Continue
                }
                Statement::Compound {
                    function: None,
                    inner,
                } if effects::is_endless_loop(&inner) => Flow::Exit,
                Statement::Compound { inner, .. } => {
                    let effects = effects::of_commands(&inner, &self.functions);
                    self.not_run(path, effects)?;
                    Flow::Continue
                }
                Statement::Other { inner, .. } if is_script => {
                    let effects = effects::of_commands(&inner, &self.functions);
                    self.not_run(path, effects)?;
                    Flow::Continue
                }
                Statement::Other { line, .. } => return Err(located(path, unparsable(line))),
                Statement::Simple(words) => self.simple_command(path, is_script, &words)?,
            };
            match flow {
                Flow::Continue => {}
                Flow::Return => return Ok(Flow::Continue),
                Flow::Exit => return Ok(Flow::Exit),
            }
        }
        Ok(Flow::Continue)
    }

    /// Records what commands the reader does not run may have done: the variables they may set
    /// become unknown, and a command whose effect cannot be bounded is refused.
    fn not_run(&mut self, path: &Path, effects: Effects) -> Result<(), ShellError> {
        if let Some(fault) = effects.opaque {
            return Err(located(path, fault));
        }
        for (name, line) in effects.assigned {
            self.unknown.insert(name, (path.to_path_buf(), line));
        }
        Ok(())
    }

    fn simple_command(
        &mut self,
        path: &Path,
        is_script: bool,
        words: &[Word],
    ) -> Result<Flow, ShellError> {
        let command = words.iter().position(|w| split_assignment(w).is_none());
        let Some(command) = command else {
            for word in words {
                self.assign(word).map_err(|f| located(path, f))?;
            }
            return Ok(Flow::Continue);
        };
        let line = words[command].line;
        let name = words[command].literal();
        let arguments = &words[command + 1..];
        if command > 0
            && let Some(name) = name.filter(|name| {
                effects::uses_prefix_assignments(name) || self.functions.contains_key(*name)
            })
        {
            return Err(located(
                path,
                Fault::new(
                    line,
                    format!("assignments before `{name}` are not supported"),
                ),
            ));
        }
        match name.filter(|_| command == 0) {
            Some(builtin @ ("export" | "readonly")) => {
                let declaration = if builtin == "export" {
                    Declaration::Export
                } else {
                    Declaration::Readonly
                };
                self.declare(builtin, arguments, declaration)
                    .map_err(|f| located(path, f))?;
                Ok(Flow::Continue)
            }
            Some("." | "source") => match arguments {
                [file_name] => self.source(path, file_name),
                _ => Err(located(
                    path,
                    Fault::new(
                        line,
                        "`. FILE` must name exactly one file: arguments are not supported",
                    ),
                )),
            },
            Some("return") => Ok(Flow::Return),
            Some("exit") => Ok(Flow::Exit),
            Some("set") if is_script => match shell_options(arguments) {
                Some(nounset) => {
                    self.nounset = nounset.unwrap_or(self.nounset);
                    Ok(Flow::Continue)
                }
                None => Err(located(
                    path,
                    Fault::new(
                        line,
                        "`set` with options other than -e, -u, -x, -v and -o pipefail is not \
                         supported",
                    ),
                )),
            },
            _ if is_script => {
                let mut effects = Effects::default();
                effects::add_command(&words[command], arguments, &self.functions, &mut effects);
                self.not_run(path, effects)?;
                Ok(Flow::Continue)
            }
            _ => Err(located(path, unparsable(line))),
        }
    }

    /// `export` and `readonly` arguments: unquoted assignments or names. Any other argument is
    /// refused: bash expands it as a word (splitting, brace expansion) and then takes it as an
    /// assignment, which the reader does not imitate.
    fn declare(
        &mut self,
        builtin: &str,
        arguments: &[Word],
        declaration: Declaration,
    ) -> Result<(), Fault> {
        // `export -f NAME` marks functions and `-p` prints: neither touches a variable.
        if let [option, names @ ..] = arguments
            && matches!(option.literal(), Some("-f" | "-p"))
            && names.iter().all(|word| word.literal().is_some_and(is_name))
        {
            return Ok(());
        }
        for word in arguments {
            let name = match split_assignment(word) {
                Some((name, _, value)) if !brace_expands(&value) => {
                    self.assign(word)?;
                    name.to_string()
                }
                Some(_) => {
                    return Err(Fault::new(
                        word.line,
                        format!("`{builtin}` with brace expansion in a value is not supported"),
                    ));
                }
                None => match word.literal().filter(|text| is_name(text)) {
                    Some(name) => name.to_string(),
                    None => {
                        return Err(Fault::new(
                            word.line,
                            format!(
                                "`{builtin}` arguments other than unquoted NAME or NAME=value \
                                 are not supported"
                            ),
                        ));
                    }
                },
            };
            match declaration {
                Declaration::Export => self.exported.insert(name),
                Declaration::Readonly => self.readonly.insert(name),
            };
        }
        Ok(())
    }

    /// Evaluates an assignment word, records it and returns the name.
    fn assign(&mut self, word: &Word) -> Result<String, Fault> {
        let (name, append, value_parts) =
            split_assignment(word).expect("assign() is given assignment words");
        if bash_variables::refuses_assignment(name) {
            return Err(Fault::new(
                word.line,
                format!("{name} is one of bash's own variables; assigning it is not supported"),
            ));
        }
        if self.readonly.contains(name) {
            return Err(Fault::new(
                word.line,
                format!("{name} is readonly and cannot be assigned again"),
            ));
        }
        let mut value = expand(&value_parts, Tildes::LeadingAndAfterColons, word.line, self)?;
        if append {
            value = self.variable(name, word.line)?.unwrap_or_default() + &value;
        }
        let file = self
            .sourcing
            .last()
            .map(|(_, named)| named.clone())
            .expect("assignments are made while a file is read");
        self.unknown.remove(name);
        self.values.insert(name.to_string(), value.clone());
        self.assignments.push(Assignment {
            name: name.to_string(),
            value,
            file,
            line: word.line,
        });
        Ok(name.to_string())
    }

    /// `. FILE`: FILE is taken relative to the current directory, as bash takes it when no
    /// directory on PATH holds it.
    fn source(&mut self, path: &Path, file_name: &Word) -> Result<Flow, ShellError> {
        let line = file_name.line;
        let target =
            expand(&file_name.parts, Tildes::Leading, line, self).map_err(|f| located(path, f))?;
        // The lexer does not say whether an expansion was quoted, so an expansion whose value
        // bash could split or glob is refused either way.
        let separators = self
            .variable("IFS", line)
            .map_err(|f| located(path, f))?
            .unwrap_or_default();
        let expanded = file_name
            .parts
            .iter()
            .any(|part| matches!(part, Part::Parameter { .. } | Part::Command { .. }));
        let unquoted_glob = file_name.parts.iter().any(
            |part| matches!(part, Part::Unquoted(text) if text.contains(['*', '?', '[', '{'])),
        );
        if unquoted_glob
            || expanded && target.contains(|c: char| separators.contains(c) || "*?[".contains(c))
        {
            return Err(located(
                path,
                Fault::new(
                    line,
                    "`. FILE` naming a file with blanks or glob characters is not supported",
                ),
            ));
        }
        if target.is_empty() {
            return Err(located(
                path,
                Fault::new(file_name.line, "`. FILE` names an empty file name"),
            ));
        }
        self.read_file(Path::new(&target), Some((path, file_name.line)))
    }
}

#[derive(Clone, Copy)]
enum Declaration {
    Export,
    Readonly,
}

/// The options of a top-level `set` the reader understands: `-e`, `-u`, `-x`, `-v` (and `+`),
/// `-o` with errexit, nounset, xtrace or pipefail. `Some(Some(on))` when nounset is switched,
/// `Some(None)` when not, `None` for anything else (positional parameters included).
/// errexit changes no value: where a command would fail and end bash's script, bash never
/// reaches its loop at all (compat/DIVERGENCES.md, entry 20).
fn shell_options(arguments: &[Word]) -> Option<Option<bool>> {
    let mut nounset = None;
    let mut words = arguments.iter().map(Word::literal);
    while let Some(word) = words.next() {
        let word = word?;
        let (on, letters) = match word.split_at_checked(1)? {
            ("-", letters) => (true, letters),
            ("+", letters) => (false, letters),
            _ => return None,
        };
        for letter in letters.chars() {
            match letter {
                'u' => nounset = Some(on),
                'e' | 'x' | 'v' => {}
                'o' => match words.next()?? {
                    "nounset" => nounset = Some(on),
                    "errexit" | "xtrace" | "pipefail" => {}
                    _ => return None,
                },
                _ => return None,
            }
        }
    }
    Some(nounset)
}

/// Whether unquoted text of a value has both braces, which bash may brace-expand in an
/// argument of `export` or `readonly` (it never does in a plain assignment).
fn brace_expands(value: &[Part]) -> bool {
    let unquoted: String = value
        .iter()
        .filter_map(|part| match part {
            Part::Unquoted(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    unquoted.contains('{') && unquoted.contains('}')
}

impl Scope for Reader<'_> {
    fn variable(&self, name: &str, line: usize) -> Result<Option<String>, Fault> {
        if let Some((file, set_at)) = self.unknown.get(name) {
            return Err(Fault::new(
                line,
                format!(
                    "${name} may have been set by the command at {}:{set_at}, which the reader \
                     does not run",
                    file.display()
                ),
            ));
        }
        if let Some(value) = self.values.get(name) {
            return Ok(Some(value.clone()));
        }
        match bash_variables::value(name, self.environment) {
            Some(value) => value.map_err(|why| Fault::new(line, why)),
            None => Ok(self.environment.get(name).cloned()),
        }
    }

    fn default_home(&self) -> Option<String> {
        bash_variables::password_database_home()
    }

    fn unset_is_error(&self) -> bool {
        self.nounset
    }

    fn command_output(&mut self, script: &str, line: usize) -> Result<String, Fault> {
        if self.substitutions_run >= MAX_SUBSTITUTIONS {
            return Err(Fault::new(
                line,
                format!("more than {MAX_SUBSTITUTIONS} command substitutions in all"),
            ));
        }
        self.substitutions_run += 1;
        // bash runs the commands in a subshell, which has all its variables, but passes only
        // exported ones to the programs the commands start. So exported variables go into the
        // environment and the others become assignments before the commands.
        let mut environment: HashMap<&String, &String> = self.environment.iter().collect();
        let mut preamble = String::new();
        for (name, value) in &self.values {
            if self.exported.contains(name) || self.environment.contains_key(name) {
                environment.insert(name, value);
            } else {
                preamble.push_str(&format!("{name}='{}'\n", value.replace('\'', r"'\''")));
            }
        }
        substitution::run(&(preamble + script), environment).map_err(|e| {
            Fault::new(
                line,
                format!("command substitution `{}`: {e}", excerpt(script)),
            )
        })
    }
}
