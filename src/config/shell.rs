//! Reads the variable assignments of a shell file the way `. FILE` would set them, without
//! running the file: assignments, `export`, `readonly` and `. FILE` are evaluated, compound
//! commands and functions are skipped, and in a script (a file starting with `#!`) every other
//! command is ignored. In a plain variable file any other command is an error.

mod commands;
mod expand;
mod lexer;
mod substitution;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use commands::Statement;
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
        sourcing: Vec::new(),
        files_read: 0,
        substitutions_run: 0,
    };
    reader.read_file(path, None)?;
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
    /// The files being read, outermost first: each one's canonical path, to find `. FILE`
    /// cycles, and the path it was named by, for the assignments it makes.
    sourcing: Vec<(PathBuf, PathBuf)>,
    files_read: usize,
    substitutions_run: usize,
}

/// Attaches the file to an error on one of its lines.
fn located(file: &Path, fault: Fault) -> ShellError {
    ShellError {
        file: file.to_path_buf(),
        line: fault.line,
        message: fault.message,
    }
}

/// The text of a file, within the size and line limits.
fn file_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the file is larger than the limit of {MAX_FILE_BYTES} bytes"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_string())?;
    if text.lines().count() > MAX_LINES {
        return Err(format!("the file has more than {MAX_LINES} lines"));
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
        let text = file_text(path).map_err(opening_error)?;
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
                Statement::Compound => Flow::Continue,
                Statement::Other { .. } if is_script => Flow::Continue,
                Statement::Other { line } => return Err(located(path, unparsable(line))),
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
        let name = if command == 0 {
            words[0].literal()
        } else {
            None
        };
        let arguments = &words[1..];
        match name {
            Some("export" | "readonly") if arguments.iter().all(is_declaration) => {
                let declaration = if name == Some("export") {
                    Declaration::Export
                } else {
                    Declaration::Readonly
                };
                self.declare(arguments, declaration)
                    .map_err(|f| located(path, f))?;
                Ok(Flow::Continue)
            }
            Some("." | "source") => match arguments {
                [file_name] => self.source(path, file_name),
                _ => Err(located(
                    path,
                    Fault::new(
                        words[0].line,
                        "`. FILE` must name exactly one file: arguments are not supported",
                    ),
                )),
            },
            Some("return") => Ok(Flow::Return),
            Some("exit") => Ok(Flow::Exit),
            _ if is_script => Ok(Flow::Continue),
            _ => Err(located(path, unparsable(words[0].line))),
        }
    }

    /// `export` and `readonly` arguments: assignments or names.
    fn declare(&mut self, arguments: &[Word], declaration: Declaration) -> Result<(), Fault> {
        for word in arguments {
            let name = match split_assignment(word) {
                Some(_) => self.assign(word)?,
                None => word
                    .literal()
                    .expect("is_declaration accepted the word")
                    .to_string(),
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
        if self.readonly.contains(name) {
            return Err(Fault::new(
                word.line,
                format!("{name} is readonly and cannot be assigned again"),
            ));
        }
        let mut value = expand(&value_parts, Tildes::LeadingAndAfterColons, word.line, self)?;
        if append {
            value = self.variable(name).unwrap_or_default() + &value;
        }
        let file = self
            .sourcing
            .last()
            .map(|(_, named)| named.clone())
            .expect("assignments are made while a file is read");
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
        let target = expand(&file_name.parts, Tildes::Leading, file_name.line, self)
            .map_err(|f| located(path, f))?;
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

/// Whether an `export` or `readonly` argument is one the reader understands: an assignment or a
/// plain name (options such as `-p` are not).
fn is_declaration(word: &Word) -> bool {
    split_assignment(word).is_some() || word.literal().is_some_and(is_name)
}

impl Scope for Reader<'_> {
    fn variable(&self, name: &str) -> Option<String> {
        if let Some(value) = self.values.get(name).or_else(|| self.environment.get(name)) {
            return Some(value.clone());
        }
        // bash sets HOSTNAME itself when the environment does not.
        (name == "HOSTNAME").then(super::local_host_name)
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
