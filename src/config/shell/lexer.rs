//! Splits shell text into words and operators as sh reads a command line. Each word keeps its
//! quoting, because later stages must know which characters were quoted: only unquoted text can
//! be a reserved word, an assignment's `NAME=` or a tilde to expand.

use super::Fault;

/// How deeply quotes and expansions may nest inside one word. It bounds the recursion of the word
/// reader; real files never come close.
const MAX_WORD_NESTING: usize = 32;

/// One piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    /// Text outside any quotes.
    Unquoted(String),
    /// Text that was inside quotes or escaped by a backslash.
    Quoted(String),
    /// `$NAME`, `${NAME}` or `${NAME` operator word `}`.
    Parameter {
        name: String,
        alternative: Option<Alternative>,
    },
    /// `$(…)` or `` `…` ``: the text of the commands and the line where it starts.
    Command { script: String, line: usize },
    /// A well-formed construct the reader does not evaluate. It is an error only when evaluated,
    /// so that script code the reader skips may use it.
    Unsupported { message: String, line: usize },
}

/// The `-word` or `+word` of `${NAME-word}`, `${NAME:-word}`, `${NAME+word}`, `${NAME:+word}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Alternative {
    /// `+` uses the word when the variable is set; `-` when it is not.
    pub when_set: bool,
    /// With `:`, an empty value counts as unset.
    pub empty_is_unset: bool,
    pub word: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    pub parts: Vec<Part>,
    pub line: usize,
}

impl Word {
    /// The word's text when it is entirely unquoted and unexpanded, as reserved words and
    /// command names like `export` must be.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Unquoted(text)] => Some(text),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operator {
    Newline,
    Semicolon,
    /// `;;`, `;&` or `;;&`, which end a `case` branch.
    CaseBranchEnd,
    Background,
    And,
    Or,
    Pipe,
    OpenParen,
    CloseParen,
    /// Any redirection operator; the word after it is a file name, not a command.
    Redirect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Word(Word),
    Operator { operator: Operator, line: usize },
}

/// A here-document whose body starts after the next newline.
struct HereDocument {
    delimiter: String,
    strip_tabs: bool,
    /// A delimiter with any quoting makes the body literal: no line joining.
    quoted: bool,
    line: usize,
}

/// Where a run of word parts is being read; it decides what ends the run and what is quoted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Word,
    DoubleQuotes,
    /// The word inside `${NAME-word}`, itself inside double quotes or not.
    Brace {
        in_double_quotes: bool,
    },
    /// `'…'` inside `"${NAME-word}"`: bash keeps the quotes and expands what is between them as
    /// in double quotes, but a `}` there does not end the expansion.
    SingleQuotesInBrace,
}

impl Context {
    fn quotes_text(self) -> bool {
        matches!(
            self,
            Context::DoubleQuotes
                | Context::SingleQuotesInBrace
                | Context::Brace {
                    in_double_quotes: true
                }
        )
    }
}

struct Lexer {
    chars: Vec<char>,
    position: usize,
    line: usize,
    here_documents: Vec<HereDocument>,
    /// Set by `<<` or `<<-` (with whether tabs are stripped): the next word is a delimiter.
    delimiter_expected: Option<bool>,
    /// How many `${NAME-word}` inside double quotes are being read. There `$"…"` and `$'…'`
    /// read in ways no other context shares, and are refused.
    quoted_braces_open: usize,
}

/// The tokens of `text`, whose first line is line 1.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, Fault> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        position: 0,
        line: 1,
        here_documents: Vec::new(),
        delimiter_expected: None,
        quoted_braces_open: 0,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_blanks();
        let Some(c) = lexer.peek() else { break };
        let line = lexer.line;
        match c {
            '#' => lexer.skip_comment(),
            '\n' => {
                lexer.bump();
                tokens.push(Token::Operator {
                    operator: Operator::Newline,
                    line,
                });
                lexer.skip_here_document_bodies()?;
            }
            ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                let operator = lexer.operator();
                tokens.push(Token::Operator { operator, line });
            }
            _ => {
                let parts = lexer.parts(Context::Word, line, 0)?;
                let word = Word { parts, line };
                if let Some(strip_tabs) = lexer.delimiter_expected.take() {
                    let (delimiter, quoted) = delimiter_text(&word.parts, line)?;
                    lexer.here_documents.push(HereDocument {
                        delimiter,
                        strip_tabs,
                        quoted,
                        line,
                    });
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    match lexer.here_documents.first() {
        Some(document) => Err(unterminated_here_document(document)),
        None => Ok(tokens),
    }
}

/// A here-document delimiter's text, and whether any of it is quoted, which makes the body
/// literal. bash takes a delimiter with `$` or a backquote literally, which this lexer would
/// have read as an expansion: such a delimiter is refused.
fn delimiter_text(parts: &[Part], line: usize) -> Result<(String, bool), Fault> {
    let mut text = String::new();
    let mut quoted = false;
    for part in parts {
        match part {
            Part::Unquoted(piece) => text.push_str(piece),
            Part::Quoted(piece) => {
                quoted = true;
                text.push_str(piece);
            }
            _ => {
                return Err(Fault::new(
                    line,
                    "a here-document delimiter with `$` or a backquote is not supported",
                ));
            }
        }
    }
    Ok((text, quoted))
}

fn unterminated_here_document(document: &HereDocument) -> Fault {
    Fault::new(
        document.line,
        format!(
            "unterminated here-document: no line `{}` before the end of the file",
            document.delimiter
        ),
    )
}

impl Lexer {
    /// The index of the first character at or after `at` that is not part of a backslash-newline.
    /// bash removes those before it reads a token, so that they may split a name or an operator
    /// (`$na\⏎me`, `&\⏎&`); only single quotes, comments, escapes and literal here-document
    /// bodies keep them, and those read the characters raw.
    fn after_continuations(&self, mut at: usize) -> usize {
        while self.chars.get(at) == Some(&'\\') && self.chars.get(at + 1) == Some(&'\n') {
            at += 2;
        }
        at
    }

    fn peek(&self) -> Option<char> {
        self.chars
            .get(self.after_continuations(self.position))
            .copied()
    }

    fn peek_second(&self) -> Option<char> {
        let first = self.after_continuations(self.position);
        self.chars.get(self.after_continuations(first + 1)).copied()
    }

    fn bump(&mut self) -> Option<char> {
        while self.after_continuations(self.position) != self.position {
            self.position += 2;
            self.line += 1;
        }
        self.bump_raw()
    }

    fn peek_raw(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn bump_raw(&mut self) -> Option<char> {
        let c = self.peek_raw()?;
        self.position += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn eat(&mut self, expected: char) -> bool {
        let matches = self.peek() == Some(expected);
        if matches {
            self.bump();
        }
        matches
    }

    /// Skips blanks and backslash-newline continuations between words.
    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// At `#`: skips to the end of the line, leaving the newline, which still ends the command.
    /// A backslash at the end of a comment does not continue it.
    fn skip_comment(&mut self) {
        self.bump();
        while self.peek_raw().is_some_and(|c| c != '\n') {
            self.bump_raw();
        }
    }

    fn skip_here_document_bodies(&mut self) -> Result<(), Fault> {
        for document in std::mem::take(&mut self.here_documents) {
            loop {
                if self.peek_raw().is_none() {
                    return Err(unterminated_here_document(&document));
                }
                let line = self.here_document_line(document.quoted);
                let line = if document.strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    &line
                };
                if line == document.delimiter {
                    break;
                }
            }
        }
        Ok(())
    }

    /// One line of a here-document body and its newline. In an unquoted body a line ending in
    /// an unescaped backslash is joined with the next, as bash joins it before it compares the
    /// line with the delimiter.
    fn here_document_line(&mut self, quoted: bool) -> String {
        let mut line = String::new();
        while let Some(c) = self.bump_raw() {
            if c != '\n' {
                line.push(c);
                continue;
            }
            let trailing_backslashes = line.chars().rev().take_while(|&b| b == '\\').count();
            if quoted || trailing_backslashes % 2 == 0 {
                break;
            }
            line.pop();
        }
        line
    }

    fn operator(&mut self) -> Operator {
        let c = self
            .bump()
            .expect("operator() is called on an operator character");
        match c {
            ';' if self.eat(';') => {
                self.eat('&');
                Operator::CaseBranchEnd
            }
            ';' if self.eat('&') => Operator::CaseBranchEnd,
            ';' => Operator::Semicolon,
            '&' if self.eat('&') => Operator::And,
            '&' if self.eat('>') => {
                self.eat('>');
                Operator::Redirect
            }
            '&' => Operator::Background,
            '|' if self.eat('|') => Operator::Or,
            '|' => {
                self.eat('&');
                Operator::Pipe
            }
            '(' => Operator::OpenParen,
            ')' => Operator::CloseParen,
            '<' if self.eat('<') => {
                if !self.eat('<') {
                    self.delimiter_expected = Some(self.eat('-'));
                }
                Operator::Redirect
            }
            _ => {
                // `<` or `>`, possibly followed by the second character of `>>`, `>&`, `>|`,
                // `<&` or `<>`.
                if matches!(self.peek(), Some('>' | '&' | '|')) {
                    self.bump();
                }
                Operator::Redirect
            }
        }
    }

    /// Reads word parts until the end of `context`; `opened_at` is the line where the quote or
    /// brace being read was opened, for the error when it is never closed.
    fn parts(
        &mut self,
        context: Context,
        opened_at: usize,
        depth: usize,
    ) -> Result<Vec<Part>, Fault> {
        if depth > MAX_WORD_NESTING {
            return Err(Fault::new(
                self.line,
                format!("quotes and expansions nested more than {MAX_WORD_NESTING} deep"),
            ));
        }
        let mut parts = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return match context {
                    Context::Word => Ok(parts),
                    Context::DoubleQuotes => {
                        Err(Fault::new(opened_at, "unterminated double quote"))
                    }
                    Context::Brace { .. } => Err(Fault::new(opened_at, "unterminated ${")),
                    Context::SingleQuotesInBrace => {
                        Err(Fault::new(opened_at, "unterminated single quote"))
                    }
                };
            };
            match (context, c) {
                (Context::Word, '(') if starts_array_assignment(&parts) => {
                    let line = self.line;
                    self.bump();
                    self.matched_text(line, depth, ('(', ')'), false)?;
                    parts.push(Part::Unsupported {
                        message: "array assignment NAME=(…) is not supported".to_string(),
                        line,
                    });
                }
                (Context::Word, ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')') => {
                    return Ok(parts);
                }
                (Context::DoubleQuotes, '"') | (Context::Brace { .. }, '}') => {
                    self.bump();
                    return Ok(parts);
                }
                (_, '\\') => self.backslash(context, &mut parts),
                (
                    Context::Brace {
                        in_double_quotes: true,
                    },
                    '\'',
                ) => {
                    let line = self.line;
                    self.bump();
                    push_text(&mut parts, "'", true);
                    let inner = self.parts(Context::SingleQuotesInBrace, line, depth + 1)?;
                    parts.extend(inner);
                    push_text(&mut parts, "'", true);
                }
                (Context::SingleQuotesInBrace, '\'') => {
                    self.bump();
                    return Ok(parts);
                }
                (Context::SingleQuotesInBrace, '"') => {
                    return Err(Fault::new(
                        self.line,
                        "a double quote inside '…' inside \"${…}\" is not supported",
                    ));
                }
                (_, '\'') if !context.quotes_text() => {
                    let text = self.single_quoted()?;
                    push_text(&mut parts, &text, true);
                }
                (_, '"') => {
                    let line = self.line;
                    self.bump();
                    let inner = self.parts(Context::DoubleQuotes, line, depth + 1)?;
                    // `""` is quoted text too: it keeps `~""` from being a tilde prefix.
                    if inner.is_empty() {
                        push_text(&mut parts, "", true);
                    }
                    parts.extend(inner);
                }
                (_, '$') => {
                    let in_double_quotes = context.quotes_text();
                    if let Some(part) = self.dollar(in_double_quotes, depth)? {
                        parts.push(part);
                    }
                }
                (_, '`') => {
                    let line = self.line;
                    let script = self.backquoted(context.quotes_text())?;
                    parts.push(Part::Command { script, line });
                }
                _ => {
                    self.bump();
                    push_text(&mut parts, &c.to_string(), context.quotes_text());
                }
            }
        }
    }

    /// At a backslash that is not a continuation: the character it escapes is read raw.
    fn backslash(&mut self, context: Context, parts: &mut Vec<Part>) {
        self.bump();
        match self.peek_raw() {
            Some(next) if !context.quotes_text() || escapable_in_double_quotes(next, context) => {
                self.bump_raw();
                push_text(parts, &next.to_string(), true);
            }
            // Inside double quotes a backslash before any other character is kept; at the end
            // of the file it is kept too.
            _ => push_text(parts, "\\", context.quotes_text()),
        }
    }

    /// After `'`: the text up to the closing `'`.
    fn single_quoted(&mut self) -> Result<String, Fault> {
        let opened_at = self.line;
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump_raw() {
                None => return Err(Fault::new(opened_at, "unterminated single quote")),
                Some('\'') => return Ok(text),
                Some(c) => text.push(c),
            }
        }
    }

    /// At `` ` ``: the commands up to the closing backquote, with the backslashes that only
    /// protect `$`, `` ` `` and `\` (and `"` inside double quotes) removed, as sh does.
    fn backquoted(&mut self, in_double_quotes: bool) -> Result<String, Fault> {
        let opened_at = self.line;
        self.bump();
        let mut script = String::new();
        loop {
            match self.bump_raw() {
                None => return Err(Fault::new(opened_at, "unterminated backquote")),
                Some('`') if script.contains("<<") => {
                    return Err(here_document_in_substitution(opened_at));
                }
                Some('`') => return Ok(script),
                Some('\\') => match self.bump_raw() {
                    None => return Err(Fault::new(opened_at, "unterminated backquote")),
                    Some(next @ ('$' | '`' | '\\')) => script.push(next),
                    Some('"') if in_double_quotes => script.push('"'),
                    Some(next) => {
                        script.push('\\');
                        script.push(next);
                    }
                },
                Some(c) => script.push(c),
            }
        }
    }

    /// At `$`: the expansion it starts, or `None` when it starts none.
    fn dollar(&mut self, in_double_quotes: bool, depth: usize) -> Result<Option<Part>, Fault> {
        let line = self.line;
        self.bump();
        let part = match self.peek() {
            Some('(') if self.peek_second() == Some('(') => {
                self.bump();
                self.matched_text(line, depth, ('(', ')'), false)?;
                Part::Unsupported {
                    message: "arithmetic expansion $((…)) is not supported".to_string(),
                    line,
                }
            }
            Some('(') => {
                self.bump();
                let script = self.command_text(line, depth)?;
                Part::Command { script, line }
            }
            Some('[') => {
                self.bump();
                self.matched_text(line, depth, ('[', ']'), false)?;
                Part::Unsupported {
                    message: "arithmetic expansion $[…] is not supported".to_string(),
                    line,
                }
            }
            Some('{') => {
                self.bump();
                self.braced_parameter(line, in_double_quotes, depth)?
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => Part::Parameter {
                name: self.name(),
                alternative: None,
            },
            Some(c @ ('0'..='9' | '@' | '*' | '#' | '?' | '$' | '!' | '-')) => {
                self.bump();
                Part::Unsupported {
                    message: format!("the special parameter ${c} is not supported"),
                    line,
                }
            }
            Some('"' | '\'') if self.quoted_braces_open > 0 => Part::Unsupported {
                message: "$\"…\" or $'…' inside \"${…}\" is not supported".to_string(),
                line,
            },
            Some('\'') if !in_double_quotes => {
                self.single_quoted()?;
                Part::Unsupported {
                    message: "ANSI-C quoting $'…' is not supported".to_string(),
                    line,
                }
            }
            // `$"…"` is a translatable string; untranslated, it is the quoted text.
            Some('"') if !in_double_quotes => return Ok(None),
            _ => {
                if in_double_quotes {
                    Part::Quoted("$".to_string())
                } else {
                    Part::Unquoted("$".to_string())
                }
            }
        };
        Ok(Some(part))
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|&c| c == '_' || c.is_ascii_alphanumeric())
        {
            name.push(c);
            self.bump();
        }
        name
    }

    /// After `${`.
    fn braced_parameter(
        &mut self,
        opened_at: usize,
        in_double_quotes: bool,
        depth: usize,
    ) -> Result<Part, Fault> {
        let text_start = self.position - 2;
        let name = self.name();
        let valid_name = name.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic());
        let context = Context::Brace { in_double_quotes };
        if valid_name {
            if self.eat('}') {
                return Ok(Part::Parameter {
                    name,
                    alternative: None,
                });
            }
            let empty_is_unset =
                self.peek() == Some(':') && matches!(self.peek_second(), Some('-' | '+'));
            if empty_is_unset {
                self.bump();
            }
            if let Some(sign @ ('-' | '+')) = self.peek() {
                self.bump();
                let word = self.brace_word(context, opened_at, depth)?;
                return Ok(Part::Parameter {
                    name,
                    alternative: Some(Alternative {
                        when_set: sign == '+',
                        empty_is_unset,
                        word,
                    }),
                });
            }
        }
        // Read the rest only to find where the expansion ends.
        self.brace_word(context, opened_at, depth)?;
        let text: String = self.chars[text_start..self.position].iter().collect();
        Ok(Part::Unsupported {
            message: format!(
                "unsupported parameter expansion `{text}`: only ${{NAME}}, ${{NAME-word}}, \
                 ${{NAME:-word}}, ${{NAME+word}} and ${{NAME:+word}} are supported"
            ),
            line: opened_at,
        })
    }

    /// The word of `${NAME-word}` and the closing brace.
    fn brace_word(
        &mut self,
        context: Context,
        opened_at: usize,
        depth: usize,
    ) -> Result<Vec<Part>, Fault> {
        let quoted = context.quotes_text();
        self.quoted_braces_open += usize::from(quoted);
        let word = self.parts(context, opened_at, depth + 1);
        self.quoted_braces_open -= usize::from(quoted);
        word
    }

    /// After `$(`: the commands up to the matching `)`.
    fn command_text(&mut self, opened_at: usize, depth: usize) -> Result<String, Fault> {
        self.matched_text(opened_at, depth, ('(', ')'), true)
    }

    /// After `$(`, `$((`, `$[` or `NAME=(`: the text up to the matching `closer`. Quotes, nested
    /// expansions and comments are skipped over so that a closer inside them does not end the
    /// text. In `commands`, what would need a full parse to find the end as bash finds it (a
    /// `case` pattern's `)`, a here-document's body) is refused; in arithmetic `<<` is a shift.
    fn matched_text(
        &mut self,
        opened_at: usize,
        depth: usize,
        (opener, closer): (char, char),
        commands: bool,
    ) -> Result<String, Fault> {
        let start = self.position;
        let mut open = 1usize;
        loop {
            let at_word_start = self.position == start
                || matches!(
                    self.chars[self.position - 1],
                    ' ' | '\t' | '\n' | ';' | '(' | ')' | '&' | '|'
                );
            let Some(c) = self.peek() else {
                return Err(Fault::new(
                    opened_at,
                    format!("unterminated ${opener}: no matching {closer}"),
                ));
            };
            let ahead: String = self.chars[self.position..].iter().take(5).collect();
            let case_word = ahead == "case " || ahead == "case\t" || ahead == "case\n";
            if commands && at_word_start && case_word {
                return Err(Fault::new(
                    self.line,
                    "`case` inside a command substitution is not supported",
                ));
            }
            if commands && ahead.starts_with("<<") && !ahead.starts_with("<<<") {
                return Err(here_document_in_substitution(self.line));
            }
            match c {
                '\'' => {
                    self.single_quoted()?;
                }
                '"' => {
                    let line = self.line;
                    self.bump();
                    self.parts(Context::DoubleQuotes, line, depth + 1)?;
                }
                '`' => {
                    self.backquoted(false)?;
                }
                '#' if at_word_start => self.skip_comment(),
                '<' if ahead.starts_with("<<<") => {
                    self.position += 3;
                }
                _ => {
                    self.bump();
                    if c == '\\' {
                        self.bump_raw();
                    } else if c == opener {
                        open += 1;
                    } else if c == closer {
                        open -= 1;
                        if open == 0 {
                            return Ok(self.chars[start..self.position - 1].iter().collect());
                        }
                    }
                }
            }
        }
    }
}

fn here_document_in_substitution(line: usize) -> Fault {
    Fault::new(
        line,
        "a here-document inside a command substitution is not supported",
    )
}

/// Whether the word read so far is `NAME=` or `NAME+=`, so that a `(` makes it an array.
fn starts_array_assignment(parts: &[Part]) -> bool {
    let [Part::Unquoted(text)] = parts else {
        return false;
    };
    let Some(target) = text.strip_suffix('=') else {
        return false;
    };
    let name = target.strip_suffix('+').unwrap_or(target);
    name.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
        && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Whether a backslash inside double quotes escapes `next` rather than standing for itself.
fn escapable_in_double_quotes(next: char, context: Context) -> bool {
    matches!(next, '$' | '`' | '"' | '\\') || (next == '}' && context != Context::DoubleQuotes)
}

/// Appends text, merging it with the previous part when both are quoted or both unquoted, so that
/// a word like `NAME=value` stays one unquoted part.
fn push_text(parts: &mut Vec<Part>, text: &str, quoted: bool) {
    match (parts.last_mut(), quoted) {
        (Some(Part::Quoted(previous)), true) | (Some(Part::Unquoted(previous)), false) => {
            previous.push_str(text)
        }
        _ => parts.push(if quoted {
            Part::Quoted(text.to_string())
        } else {
            Part::Unquoted(text.to_string())
        }),
    }
}
