//! Where heartbeat.sh's top level ends and its loop begins, so that bash runs only what comes
//! before.
//!
//! The boundary of a script (a file starting with `#!`) is the first line on which a top-level
//! command starts that is a `while` or `until` loop, or a call of a function the script defined
//! at its top level before that line. "Top level" means outside every function body and
//! compound command. A script without such a command is read whole, as a plain variable file
//! always is. The scanner only tells commands apart: it follows quotes, expansions, comments,
//! here-documents and nesting, and never evaluates anything.

use std::collections::HashSet;

/// The line where bash stops, and what starts there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    pub line: usize,
    pub command: String,
}

/// Text the scanner cannot follow to its end, with the line where the construct opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub line: usize,
    pub what: &'static str,
}

/// The boundary of `text`, if it has one.
pub fn boundary(text: &[u8]) -> Result<Option<Boundary>, Unfinished> {
    let mut lexer = Lexer {
        bytes: text,
        at: 0,
        line: 1,
        here_documents: Vec::new(),
    };
    let mut parser = Parser {
        reports: true,
        ..Parser::default()
    };
    while let Some(token) = lexer.next_token()? {
        if let Some(found) = parser.step(token, &mut lexer)? {
            return Ok(Some(found));
        }
    }
    match parser.open.last() {
        Some(open) => Err(Unfinished {
            line: open.line,
            what: "a compound command that is never closed",
        }),
        None => Ok(None),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A word; `plain` when it has no quotes, escapes or expansions, as reserved words must be.
    Word {
        text: String,
        plain: bool,
        line: usize,
    },
    /// A control operator (`;`, `&&`, `(`, `;;` …) or a newline (`"\n"`).
    Operator { text: &'static str, line: usize },
    /// A redirection operator; the next word is its target, not a command.
    Redirection { here_document: Option<bool> },
}

struct Lexer<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
    /// Here-documents whose bodies start after the next newline: delimiter, and whether leading
    /// tabs are stripped (`<<-`).
    here_documents: Vec<(Vec<u8>, bool)>,
}

const CONTROL_OPERATORS: [&str; 12] = [
    ";;&", ";;", ";&", "&&", "||", "|&", ";", "&", "|", "(", ")", "\n",
];
const REDIRECTIONS: [&str; 10] = ["<<<", "<<-", "<<", "<&", "<>", ">>", ">&", ">|", "<", ">"];

fn unfinished(line: usize, what: &'static str) -> Unfinished {
    Unfinished { line, what }
}

impl Lexer<'_> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.at + offset).copied()
    }

    fn starts_with(&self, text: &str) -> bool {
        self.bytes[self.at..].starts_with(text.as_bytes())
    }

    /// Moves on one byte, counting lines.
    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek(0)?;
        self.at += 1;
        if byte == b'\n' {
            self.line += 1;
        }
        Some(byte)
    }

    fn next_token(&mut self) -> Result<Option<Token>, Unfinished> {
        loop {
            match self.peek(0) {
                None => return Ok(None),
                Some(b' ' | b'\t') => {
                    self.bump();
                }
                Some(b'\\') if self.peek(1) == Some(b'\n') => {
                    self.bump();
                    self.bump();
                }
                Some(b'#') => {
                    while self.peek(0).is_some_and(|b| b != b'\n') {
                        self.bump();
                    }
                }
                Some(_) => break,
            }
        }
        let line = self.line;
        if self.starts_with("((") || self.starts_with("$((") {
            // An arithmetic command: one word, as far as commands go.
            return self.word(line).map(Some);
        }
        if self.starts_with("&>") {
            self.at += if self.starts_with("&>>") { 3 } else { 2 };
            return Ok(Some(Token::Redirection {
                here_document: None,
            }));
        }
        if let Some(text) = CONTROL_OPERATORS.iter().find(|op| self.starts_with(op)) {
            for _ in 0..text.len() {
                self.bump();
            }
            if *text == "\n" {
                self.read_here_documents()?;
            }
            return Ok(Some(Token::Operator { text, line }));
        }
        if self.starts_with("<(") || self.starts_with(">(") {
            return self.word(line).map(Some);
        }
        if let Some(text) = REDIRECTIONS.iter().find(|op| self.starts_with(op)) {
            self.at += text.len();
            let here_document = match *text {
                "<<" => Some(false),
                "<<-" => Some(true),
                _ => None,
            };
            return Ok(Some(Token::Redirection { here_document }));
        }
        self.word(line).map(Some)
    }

    fn word(&mut self, line: usize) -> Result<Token, Unfinished> {
        let start = self.at;
        let mut plain = true;
        while let Some(byte) = self.peek(0) {
            match byte {
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b')' => break,
                b'<' | b'>' if self.peek(1) != Some(b'(') => break,
                b'(' if self.at == start => {
                    if self.starts_with("((") {
                        plain = false;
                        self.balanced(b'(', b')', line)?;
                    } else {
                        break;
                    }
                }
                b'(' if !matches!(
                    self.bytes[self.at - 1],
                    b'=' | b'@' | b'*' | b'+' | b'?' | b'!'
                ) =>
                {
                    break;
                }
                b'(' => {
                    // `a=(…)`, `@(…)` and the like belong to the word.
                    plain = false;
                    self.balanced(b'(', b')', line)?;
                }
                b'\\' => {
                    plain = false;
                    self.bump();
                    self.bump();
                }
                b'\'' => {
                    plain = false;
                    self.single_quoted(line)?;
                }
                b'"' => {
                    plain = false;
                    self.double_quoted(line)?;
                }
                b'`' => {
                    plain = false;
                    self.backquoted(line)?;
                }
                b'$' | b'<' | b'>' => {
                    plain = false;
                    self.dollar(line)?;
                }
                _ => {
                    self.bump();
                }
            }
        }
        Ok(Token::Word {
            text: String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned(),
            plain,
            line,
        })
    }

    fn single_quoted(&mut self, line: usize) -> Result<(), Unfinished> {
        self.bump();
        loop {
            match self.bump() {
                Some(b'\'') => return Ok(()),
                Some(_) => {}
                None => return Err(unfinished(line, "a single quote that is never closed")),
            }
        }
    }

    fn double_quoted(&mut self, line: usize) -> Result<(), Unfinished> {
        self.bump();
        loop {
            match self.peek(0) {
                Some(b'"') => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => self.skip_one(line)?,
                None => return Err(unfinished(line, "a double quote that is never closed")),
            }
        }
    }

    /// Skips what starts at the current byte inside quotes or brackets: an escaped byte, a
    /// backquoted command, a `$` expansion, or the byte itself.
    fn skip_one(&mut self, line: usize) -> Result<(), Unfinished> {
        match self.peek(0) {
            Some(b'\\') => {
                self.bump();
                self.bump();
            }
            Some(b'`') => self.backquoted(line)?,
            Some(b'$') => self.dollar(line)?,
            _ => {
                self.bump();
            }
        }
        Ok(())
    }

    fn backquoted(&mut self, line: usize) -> Result<(), Unfinished> {
        self.bump();
        loop {
            match self.bump() {
                Some(b'`') => return Ok(()),
                Some(b'\\') => {
                    self.bump();
                }
                Some(_) => {}
                None => return Err(unfinished(line, "a backquote that is never closed")),
            }
        }
    }

    /// `$…`, `<(…)` or `>(…)` at the current byte.
    fn dollar(&mut self, line: usize) -> Result<(), Unfinished> {
        self.bump();
        match self.peek(0) {
            Some(b'(') if self.peek(1) == Some(b'(') => self.balanced(b'(', b')', line),
            Some(b'(') => {
                self.bump();
                self.commands_until_close(line)
            }
            Some(b'{') => self.balanced(b'{', b'}', line),
            Some(b'\'') => {
                self.bump();
                loop {
                    match self.bump() {
                        Some(b'\'') => return Ok(()),
                        Some(b'\\') => {
                            self.bump();
                        }
                        Some(_) => {}
                        None => return Err(unfinished(line, "a $'…' that is never closed")),
                    }
                }
            }
            Some(b'"') => self.double_quoted(line),
            _ => Ok(()),
        }
    }

    /// From an opening byte to its match, through quotes and expansions inside.
    fn balanced(&mut self, open: u8, close: u8, line: usize) -> Result<(), Unfinished> {
        let mut depth = 0usize;
        loop {
            match self.peek(0) {
                Some(b) if b == open => {
                    depth += 1;
                    self.bump();
                }
                Some(b) if b == close => {
                    self.bump();
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Some(b'\'') => self.single_quoted(line)?,
                Some(b'"') => self.double_quoted(line)?,
                Some(_) => self.skip_one(line)?,
                None => return Err(unfinished(line, "a bracket that is never closed")),
            }
        }
    }

    /// The commands of `$(…)`, up to its closing parenthesis, which is consumed.
    fn commands_until_close(&mut self, line: usize) -> Result<(), Unfinished> {
        let mut parser = Parser::default();
        loop {
            match self.next_token()? {
                None => return Err(unfinished(line, "a $( that is never closed")),
                Some(Token::Operator { text: ")", .. }) if parser.closes_substitution() => {
                    return Ok(());
                }
                Some(token) => {
                    parser.step(token, self)?;
                }
            }
        }
    }

    /// After a newline: the bodies of the here-documents its line started.
    fn read_here_documents(&mut self) -> Result<(), Unfinished> {
        for (delimiter, strip_tabs) in std::mem::take(&mut self.here_documents) {
            let opened = self.line;
            loop {
                if self.peek(0).is_none() {
                    // bash warns and ends the document at the end of the file.
                    let _ = opened;
                    return Ok(());
                }
                let start = self.at;
                while self.peek(0).is_some_and(|b| b != b'\n') {
                    self.bump();
                }
                let mut text = &self.bytes[start..self.at];
                self.bump();
                if strip_tabs {
                    while let [b'\t', rest @ ..] = text {
                        text = rest;
                    }
                }
                if text == delimiter.as_slice() {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// A here-document's delimiter as bash compares it: the word with its quotes removed.
fn delimiter_of(word: &str) -> Vec<u8> {
    word.bytes()
        .filter(|b| !matches!(b, b'\'' | b'"' | b'\\'))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Construct {
    Loop,
    If,
    Case,
    Brace,
    Paren,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    construct: Construct,
    line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Expecting {
    /// The start of a command, where reserved words count.
    #[default]
    Command,
    /// The rest of a simple command, or of a compound command's head (`for x in …`).
    Arguments,
    /// The word after a redirection operator.
    Target {
        here_document: Option<bool>,
    },
    /// After `case`: its word, then `in`.
    CaseWord,
    CaseIn,
    /// A `case` pattern, up to its `)`.
    Pattern,
    /// After `NAME (`: the `)` of a function definition.
    DefinitionClose,
    /// The words of `[[ … ]]`.
    Test,
}

#[derive(Default)]
struct Parser {
    open: Vec<Open>,
    expecting: Expecting,
    /// The state to return to after a redirection's target.
    after_target: Expecting,
    functions: HashSet<String>,
    /// The first word of the current simple command, while it could still start `NAME ()`.
    maybe_definition: Option<String>,
    /// `function NAME`: the next word is a function's name.
    naming_function: bool,
    /// Just after `function NAME`, where `()` may follow.
    function_parens: bool,
    /// Whether this parser finds the boundary (the main file's), not one of a `$(…)`.
    reports: bool,
}

impl Parser {
    fn closes_substitution(&self) -> bool {
        self.open.is_empty() && !matches!(self.expecting, Expecting::Pattern)
    }

    /// Takes one token; returns the boundary when this token starts it.
    fn step(&mut self, token: Token, lexer: &mut Lexer) -> Result<Option<Boundary>, Unfinished> {
        let top_level = self.reports && self.open.is_empty();
        let parens_may_follow = std::mem::take(&mut self.function_parens);
        match token {
            Token::Redirection { .. } if self.expecting == Expecting::Test => {}
            Token::Redirection { here_document } => {
                if !matches!(self.expecting, Expecting::Target { .. }) {
                    self.after_target = match self.expecting {
                        Expecting::Command => Expecting::Command,
                        other => other,
                    };
                }
                self.expecting = Expecting::Target { here_document };
            }
            Token::Word { text, plain, line } => match self.expecting {
                Expecting::Target { here_document } => {
                    if let Some(strip_tabs) = here_document {
                        lexer.here_documents.push((delimiter_of(&text), strip_tabs));
                    }
                    self.expecting = self.after_target;
                }
                Expecting::CaseWord => self.expecting = Expecting::CaseIn,
                Expecting::CaseIn => self.expecting = Expecting::Pattern,
                Expecting::Pattern => {
                    if plain && text == "esac" {
                        self.close(Construct::Case, line)?;
                        self.expecting = Expecting::Arguments;
                    }
                }
                Expecting::Test => {
                    if plain && text == "]]" {
                        self.expecting = Expecting::Arguments;
                    }
                }
                Expecting::DefinitionClose => {
                    return Err(unfinished(line, "a function definition without `)`"));
                }
                Expecting::Arguments => {
                    if self.naming_function {
                        self.functions.insert(text);
                        self.naming_function = false;
                        self.function_parens = true;
                        self.expecting = Expecting::Command;
                    } else if plain
                        && matches!(text.as_str(), "do" | "in")
                        && self
                            .open
                            .last()
                            .is_some_and(|o| o.construct == Construct::Loop)
                    {
                        // `for x in …` and `for x; do`: the head ends with `do`.
                        if text == "do" {
                            self.expecting = Expecting::Command;
                        }
                    }
                    self.maybe_definition = None;
                }
                Expecting::Command => {
                    return Ok(self.command_word(text, plain, line, top_level));
                }
            },
            Token::Operator { text, line } => match (self.expecting, text) {
                (Expecting::Pattern, ")") => self.expecting = Expecting::Command,
                (Expecting::Pattern, _) => {}
                (Expecting::DefinitionClose, ")") => {
                    self.expecting = Expecting::Command;
                }
                (Expecting::Test, _) => {}
                (_, ";;" | ";&" | ";;&") => self.expecting = Expecting::Pattern,
                (Expecting::Command, "(") if parens_may_follow => {
                    self.expecting = Expecting::DefinitionClose;
                }
                (Expecting::Command, "(") => {
                    self.open.push(Open {
                        construct: Construct::Paren,
                        line,
                    });
                }
                (Expecting::Arguments, "(") => match self.maybe_definition.take() {
                    Some(name) => {
                        self.functions.insert(name);
                        self.expecting = Expecting::DefinitionClose;
                    }
                    None => return Err(unfinished(line, "a `(` out of place")),
                },
                (_, ")") => {
                    self.close(Construct::Paren, line)?;
                    self.expecting = Expecting::Arguments;
                }
                (Expecting::CaseIn | Expecting::CaseWord, "\n") => {}
                _ => {
                    self.expecting = Expecting::Command;
                    self.maybe_definition = None;
                }
            },
        }
        Ok(None)
    }

    /// A word where a command starts.
    fn command_word(
        &mut self,
        text: String,
        plain: bool,
        line: usize,
        top_level: bool,
    ) -> Option<Boundary> {
        self.expecting = Expecting::Arguments;
        if !plain {
            return None;
        }
        let open = |parser: &mut Parser, construct| parser.open.push(Open { construct, line });
        match text.as_str() {
            "while" | "until" if top_level => {
                return Some(Boundary {
                    line,
                    command: format!("the `{text}` loop"),
                });
            }
            "while" | "until" | "for" | "select" => open(self, Construct::Loop),
            "if" => {
                open(self, Construct::If);
                self.expecting = Expecting::Command;
            }
            "then" | "else" | "elif" | "do" | "!" | "time" => self.expecting = Expecting::Command,
            "fi" => self.close_quietly(Construct::If),
            "done" => self.close_quietly(Construct::Loop),
            "case" => {
                open(self, Construct::Case);
                self.expecting = Expecting::CaseWord;
            }
            "esac" => self.close_quietly(Construct::Case),
            "{" => {
                open(self, Construct::Brace);
                self.expecting = Expecting::Command;
            }
            "}" => self.close_quietly(Construct::Brace),
            "[[" => self.expecting = Expecting::Test,
            "function" => self.naming_function = true,
            _ if is_assignment(&text) => self.expecting = Expecting::Command,
            _ if top_level && self.functions.contains(&text) => {
                return Some(Boundary {
                    line,
                    command: format!("the call of the function {text}"),
                });
            }
            _ => self.maybe_definition = Some(text),
        }
        None
    }

    fn close(&mut self, construct: Construct, line: usize) -> Result<(), Unfinished> {
        match self.open.pop() {
            Some(open) if open.construct == construct => Ok(()),
            _ => Err(unfinished(
                line,
                "a compound command closed that was never opened",
            )),
        }
    }

    /// Closing words out of place are bash's syntax error; bash itself reports them.
    fn close_quietly(&mut self, construct: Construct) {
        if self.open.last().is_some_and(|o| o.construct == construct) {
            self.open.pop();
        }
    }
}

fn is_assignment(word: &str) -> bool {
    let Some((name, _)) = word.split_once('=') else {
        return false;
    };
    let name = name.strip_suffix('+').unwrap_or(name);
    let name = name.split_once('[').map_or(name, |(name, _)| name);
    name.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
        && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of(text: &str) -> Option<usize> {
        boundary(text.as_bytes()).unwrap().map(|b| b.line)
    }

    #[test]
    fn the_first_top_level_while_or_until_is_the_boundary() {
        assert_eq!(
            line_of("#!/bin/bash\na=1\nwhile [ 1 ]\ndo\n  sleep 1\ndone\n"),
            Some(3)
        );
        assert_eq!(line_of("a=1\nuntil false; do :; done\n"), Some(2));
        assert_eq!(line_of("a=1\nb=2\n"), None);
    }

    #[test]
    fn loops_inside_functions_and_compound_commands_are_not_the_boundary() {
        let text = "f() {\n while :; do :; done\n}\nif x; then while :; do :; done; fi\n\
                    for d in a b; do x=$d; done\ncase $x in a) while :; do :; done;; esac\n\
                    g()\n{\n  until x; do :; done\n}\nwhile true; do :; done\n";
        assert_eq!(line_of(text), Some(11));
    }

    #[test]
    fn a_call_of_a_function_the_script_defines_is_the_boundary() {
        let text = "function main\n{\n  echo\n}\nfoo=1 echo main\nx=1\nmain \"$@\"\n";
        assert_eq!(line_of(text), Some(7));
        let upstream = "hb() {\n :\n}\nLOG=1 hb\n";
        assert_eq!(line_of(upstream), Some(4));
    }

    #[test]
    fn quotes_expansions_comments_and_here_documents_hide_their_words() {
        let text = "# while\na='while'\nb=\"$(while false; do :; done; echo ')')\"\n\
                    c=$(case x in x) echo;; esac)\ncat <<-END\n\twhile\n\tEND\n\
                    d=${x:-while} e=$((1 + (2)))\narr=(while until)\n[[ ( -n x ) ]]\n\
                    ((i = 2))\nuntil :; do :; done\n";
        assert_eq!(line_of(text), Some(12));
    }

    #[test]
    fn text_that_never_closes_is_refused() {
        assert!(boundary(b"if true; then\n a=1\n").is_err());
        assert!(boundary(b"a='x\n").is_err());
        assert!(boundary(b"a=$(echo\n").is_err());
    }
}
