//! Groups tokens into top-level commands. Compound commands and function definitions are
//! recognised only to be skipped whole: the reader never runs a script's loop or functions.

use super::Fault;
use super::lexer::{Operator, Token, Word};

/// How deeply compound commands may nest; it bounds the stack of open constructs.
const MAX_COMPOUND_NESTING: usize = 64;

/// One top-level command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Statement {
    /// Words ending at `;`, a newline or the end of the file, with no operator among them.
    Simple(Vec<Word>),
    /// A compound command, or a function definition with its name.
    Compound {
        function: Option<String>,
        inner: Vec<InnerCommand>,
    },
    /// Any other command: a pipeline, an and-or list, a redirection, a background job or a
    /// subshell. `line` is where it starts.
    Other {
        line: usize,
        inner: Vec<InnerCommand>,
    },
}

/// A command inside a compound or other statement, which the reader does not run: the word in
/// command position (a reserved word, an assignment or a command name) and the words after it up
/// to the next operator or command. The reader refuses those that would set a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InnerCommand {
    pub name: Word,
    pub arguments: Vec<Word>,
}

/// A construct opened and not yet closed.
struct Open<'t> {
    opener: &'t str,
    closer: &'static str,
    line: usize,
}

/// The word or operator that closes what `opener` opens.
fn closer_of(opener: &str) -> Option<&'static str> {
    match opener {
        "if" => Some("fi"),
        "while" | "until" | "for" | "select" => Some("done"),
        "case" => Some("esac"),
        "{" => Some("}"),
        "(" => Some(")"),
        _ => None,
    }
}

/// Reserved words after which a command follows, so that a reserved word there counts.
const BEFORE_COMMAND: [&str; 10] = [
    "if", "then", "else", "elif", "while", "until", "do", "{", "!", "time",
];

/// Closing reserved words; `)` is an operator and handled apart.
const CLOSERS: [&str; 4] = ["fi", "done", "esac", "}"];

pub(super) fn statements(tokens: &[Token]) -> Result<Vec<Statement>, Fault> {
    let mut statements = Vec::new();
    let mut index = 0;
    while index < tokens.len() {
        if matches!(
            tokens[index],
            Token::Operator {
                operator: Operator::Newline,
                ..
            }
        ) {
            index += 1;
            continue;
        }
        let (statement, next) = statement(tokens, index)?;
        statements.push(statement);
        index = next;
    }
    Ok(statements)
}

fn line_of(token: &Token) -> usize {
    match token {
        Token::Word(word) => word.line,
        Token::Operator { line, .. } => *line,
    }
}

fn is_operator(token: Option<&Token>, expected: Operator) -> bool {
    matches!(token, Some(Token::Operator { operator, .. }) if *operator == expected)
}

/// How many tokens a function definition's header (`function NAME`, `function NAME ()` or
/// `NAME ()`) starting at `start` takes, if one does.
fn function_header_length(tokens: &[Token], start: usize) -> Option<usize> {
    let Some(Token::Word(first)) = tokens.get(start) else {
        return None;
    };
    let name = first.literal()?;
    let has_parens = |at: usize| {
        is_operator(tokens.get(at), Operator::OpenParen)
            && is_operator(tokens.get(at + 1), Operator::CloseParen)
    };
    if name == "function" {
        Some(if has_parens(start + 2) { 4 } else { 2 })
    } else if !name.contains('=') && has_parens(start + 1) {
        Some(3)
    } else {
        None
    }
}

/// The command starting at `start` and the index after it.
fn statement(tokens: &[Token], start: usize) -> Result<(Statement, usize), Fault> {
    let first_line = line_of(&tokens[start]);
    let header = function_header_length(tokens, start);
    let mut index = start + header.unwrap_or(0);
    let mut awaiting_body = header.is_some();
    let mut compound = header.is_some();
    let mut only_words = header.is_none();
    let mut command_start = true;
    let mut open: Vec<Open> = Vec::new();
    let mut words = Vec::new();
    let mut inner: Vec<InnerCommand> = Vec::new();
    let mut in_command = false;
    // The operator just read, `None` after a word: bash's grammar errors that the reader must not
    // read past are found from it, since bash stops reading the file at such an error.
    let mut previous: Option<Operator> = None;
    loop {
        let Some(token) = tokens.get(index) else {
            if let Some(construct) = open.last() {
                return Err(never_closed(construct));
            }
            if matches!(
                previous,
                Some(Operator::And | Operator::Or | Operator::Pipe)
            ) {
                return Err(Fault::new(
                    first_line,
                    "the command ends in `&&`, `||` or `|`",
                ));
            }
            if awaiting_body {
                return Err(Fault::new(first_line, "function definition has no body"));
            }
            break;
        };
        let at_start = index == start;
        index += 1;
        match token {
            Token::Operator { operator, line } => {
                let after_word = !at_start && previous.is_none();
                let continues = matches!(
                    previous,
                    Some(Operator::And | Operator::Or | Operator::Pipe)
                );
                let in_case = open.last().is_some_and(|c| c.closer == "esac");
                let misplaced = match operator {
                    Operator::And | Operator::Or | Operator::Pipe => {
                        !(after_word || previous == Some(Operator::CloseParen))
                    }
                    Operator::Semicolon | Operator::Background => {
                        at_start
                            || continues
                            || matches!(previous, Some(Operator::Semicolon | Operator::Background))
                    }
                    Operator::CaseBranchEnd => !in_case,
                    Operator::OpenParen => !command_start && !in_case,
                    _ => false,
                };
                if misplaced {
                    return Err(Fault::new(*line, "syntax error: an operator out of place"));
                }
                // A newline after `&&`, `||` or `|` continues the command.
                if *operator == Operator::Newline && continues {
                    continue;
                }
                previous = Some(*operator);
                let ends_command = matches!(
                    operator,
                    Operator::Newline | Operator::Semicolon | Operator::Background
                );
                if open.is_empty() && !awaiting_body && ends_command {
                    only_words &= *operator != Operator::Background;
                    break;
                }
                only_words = false;
                in_command &= *operator == Operator::Redirect;
                match operator {
                    Operator::OpenParen => {
                        compound |= at_start;
                        awaiting_body = false;
                        open.push(Open {
                            opener: "(",
                            closer: ")",
                            line: *line,
                        });
                    }
                    Operator::CloseParen => match open.last() {
                        Some(construct) if construct.closer == ")" => {
                            open.pop();
                        }
                        // A `case` pattern ends with `)`.
                        Some(construct) if construct.closer == "esac" => {}
                        _ => return Err(Fault::new(*line, "unexpected `)`")),
                    },
                    _ => {}
                }
                command_start = *operator != Operator::Redirect;
            }
            Token::Word(word) => {
                previous = None;
                match inner.last_mut() {
                    Some(command) if in_command && !command_start => {
                        command.arguments.push(word.clone())
                    }
                    _ => inner.push(InnerCommand {
                        name: word.clone(),
                        arguments: Vec::new(),
                    }),
                }
                in_command = true;
                let reserved = word.literal().filter(|_| command_start);
                command_start = false;
                if let Some(text) = reserved {
                    if let Some(closer) = closer_of(text) {
                        compound |= at_start || awaiting_body;
                        awaiting_body = false;
                        open.push(Open {
                            opener: text,
                            closer,
                            line: word.line,
                        });
                    } else if CLOSERS.contains(&text) {
                        close(&mut open, text, word.line)?;
                    }
                    command_start = BEFORE_COMMAND.contains(&text);
                }
                if open.is_empty() && only_words {
                    words.push(word.clone());
                }
            }
        }
        if open.len() > MAX_COMPOUND_NESTING {
            return Err(Fault::new(
                line_of(token),
                format!("compound commands nested more than {MAX_COMPOUND_NESTING} deep"),
            ));
        }
    }
    let function = header.map(|length| {
        let name = &tokens[start + usize::from(length == 2 || length == 4)];
        match name {
            Token::Word(word) => word.literal().unwrap_or_default().to_string(),
            Token::Operator { .. } => unreachable!("a function header starts with words"),
        }
    });
    let statement = if compound {
        Statement::Compound { function, inner }
    } else if only_words {
        Statement::Simple(words)
    } else {
        Statement::Other {
            line: first_line,
            inner,
        }
    };
    Ok((statement, index))
}

fn never_closed(construct: &Open) -> Fault {
    Fault::new(
        construct.line,
        format!(
            "`{}` is never closed by `{}`",
            construct.opener, construct.closer
        ),
    )
}

fn close(open: &mut Vec<Open>, closer: &str, line: usize) -> Result<(), Fault> {
    match open.last() {
        Some(construct) if construct.closer == closer => {
            open.pop();
            Ok(())
        }
        Some(construct) => Err(Fault::new(
            construct.line,
            format!(
                "`{}` is closed by `{closer}` on line {line}, not by `{}`",
                construct.opener, construct.closer
            ),
        )),
        None => Err(Fault::new(
            line,
            format!("unexpected `{closer}`: nothing is open"),
        )),
    }
}
