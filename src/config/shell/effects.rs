//! What the commands the reader does not run (compound commands, functions, lists, and the
//! program of a `#!` script) may do to variables. The reader does not run them, so a variable
//! they may set is marked unknown, and reading it later is refused; a command whose effect
//! cannot be bounded at all (`eval`, `. FILE` inside a loop) is refused where it stands.

use std::collections::HashMap;

use super::commands::InnerCommand;
use super::lexer::{Part, Word};
use super::{Fault, is_name, split_assignment};

/// Builtins that set variables named by their arguments.
const ASSIGNING_BUILTINS: [&str; 13] = [
    "export",
    "readonly",
    "declare",
    "typeset",
    "local",
    "unset",
    "read",
    "let",
    "mapfile",
    "readarray",
    "getopts",
    "wait",
    "printf",
];

/// Builtins whose effect on variables the reader cannot bound.
const OPAQUE_BUILTINS: [&str; 7] = [
    ".", "source", "eval", "builtin", "command", "enable", "exec",
];

/// Whether `x=1 NAME` would keep or use the assignment beyond a plain command's environment.
pub(super) fn uses_prefix_assignments(name: &str) -> bool {
    ASSIGNING_BUILTINS.contains(&name) || OPAQUE_BUILTINS.contains(&name)
}

#[derive(Debug, Clone, Default)]
pub(super) struct Effects {
    /// The variables the commands may set, each with the line of the command.
    pub assigned: Vec<(String, usize)>,
    /// Why their effect cannot be known, if it cannot.
    pub opaque: Option<Fault>,
}

/// The effects of `commands`; `functions` holds those of the functions defined so far.
pub(super) fn of_commands(
    commands: &[InnerCommand],
    functions: &HashMap<String, Effects>,
) -> Effects {
    let mut effects = Effects::default();
    for command in commands {
        add_command(&command.name, &command.arguments, functions, &mut effects);
    }
    effects
}

/// The text of a word made only of literal text, quoted or not.
fn plain_text(word: &Word) -> Option<String> {
    word.parts
        .iter()
        .map(|part| match part {
            Part::Unquoted(text) | Part::Quoted(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// The variable name an argument like `NAME`, `NAME=…`, `NAME+=…` or `NAME[…]` names.
fn named_variable(word: &Word) -> Option<String> {
    let text = match word.parts.first()? {
        Part::Unquoted(text) | Part::Quoted(text) => text,
        _ => return None,
    };
    let end = text
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    let ends_name = rest.is_empty() && word.parts.len() == 1 || rest.starts_with(['=', '[', '+']);
    (is_name(name) && ends_name).then(|| name.to_string())
}

/// Adds the effects of one command to `effects`.
pub(super) fn add_command(
    name: &Word,
    arguments: &[Word],
    functions: &HashMap<String, Effects>,
    effects: &mut Effects,
) {
    let line = name.line;
    let mut assign = |variable: String| effects.assigned.push((variable, line));
    if let Some((variable, _, _)) = split_assignment(name) {
        assign(variable.to_string());
        for argument in arguments {
            match split_assignment(argument) {
                Some((variable, _, _)) => assign(variable.to_string()),
                None => break,
            }
        }
        return;
    }
    let Some(text) = plain_text(name) else {
        effects.opaque = Some(Fault::new(
            line,
            "a command whose name is an expansion may set variables, and the reader does not run it",
        ));
        return;
    };
    if (text.contains("]=") || text.contains("]+="))
        && let Some(variable) = named_variable(name)
    {
        assign(variable);
        return;
    }
    let options_only = |allowed: &[&str]| {
        arguments
            .iter()
            .all(|a| a.literal().is_some_and(|t| allowed.contains(&t)))
    };
    match text.as_str() {
        "for" | "select" => {
            if let Some(variable) = arguments.first().and_then(named_variable) {
                assign(variable);
            }
        }
        "cd" | "pushd" | "popd" => {
            assign("PWD".to_string());
            assign("OLDPWD".to_string());
        }
        "printf" => {
            if let [option, target, ..] = arguments
                && option.literal() == Some("-v")
                && let Some(variable) = named_variable(target)
            {
                assign(variable);
            }
        }
        "set" if options_only(&["-x", "+x", "-v", "+v"]) => {}
        "exec" if arguments.is_empty() => {}
        builtin if builtin == "set" || OPAQUE_BUILTINS.contains(&builtin) => {
            effects.opaque = Some(Fault::new(
                line,
                format!("`{builtin}` here may change variables, and the reader does not run it"),
            ));
        }
        builtin if ASSIGNING_BUILTINS.contains(&builtin) => {
            for variable in arguments.iter().filter_map(named_variable) {
                assign(variable);
            }
        }
        function => {
            if let Some(called) = functions.get(function) {
                effects.assigned.extend(called.assigned.iter().cloned());
                if effects.opaque.is_none() {
                    effects.opaque.clone_from(&called.opaque);
                }
            }
        }
    }
}

/// Whether `commands` is `while true`, `while :` or `while [ 1 ]` (as heartbeat.sh has it) with
/// no `break`, `return` or `exit`: bash never gets past it, so nothing it or the rest of the
/// file does changes the values the loop starts with.
pub(super) fn is_endless_loop(commands: &[InnerCommand]) -> bool {
    let [first, second, ..] = commands else {
        return false;
    };
    first.name.literal() == Some("while")
        && match (second.name.literal(), second.arguments.as_slice()) {
            (Some("true" | ":"), []) => true,
            (Some("["), [operand, close]) => {
                operand.literal().is_some_and(|text| !text.is_empty())
                    && close.literal() == Some("]")
            }
            _ => false,
        }
        && !commands
            .iter()
            .any(|c| matches!(c.name.literal(), Some("break" | "exit" | "return")))
}
