//! The translation of a POSIX extended regular expression, as glibc's `regcomp` reads it, into
//! the `regex` crate's syntax.
//!
//! Accepted: literals; `.`; `^` and `$` anywhere (anchors in both dialects); groups `( )`;
//! alternation `|` with empty branches; the repetitions `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`
//! (bounds up to 255, stacked repetitions repeat the repeated piece, as in glibc); bracket
//! expressions with negation, `]` first, `-` first or last, ASCII ranges, the twelve POSIX
//! classes, and backslash as a plain character; a backslash before ASCII punctuation outside
//! brackets, and a backslash before a space. A repeated group must not contain an anchor:
//! glibc checks such an anchor only in one of the repetitions (it finds `(b$){2}` in "bb").
//! Everything else is refused with the reason, because glibc either refuses it too,
//! reads it as a GNU extension, or reads it differently from what the regex crate would.
//! In a locale that orders ranges by collation rules, ranges are refused too.

use super::{CLASSES, Collation, Encoding, PatternError, classes};

/// POSIX only promises repetition counts up to 255 (`_POSIX_RE_DUP_MAX`); larger ones also
/// make the compiled program needlessly big.
const MAX_REPETITION: u32 = 255;
/// Deeper nesting than this has no use in a process pattern and would only deepen the recursion.
const MAX_GROUP_DEPTH: usize = 64;
/// Escaped, these are GNU word and buffer anchors rather than the plain character.
const GNU_ANCHOR_ESCAPES: &[u8] = b"<>`'";
/// Byte sequences glibc's UTF-8 decoder takes for one character although they encode none the
/// regex crate knows: code points above U+10FFFF, from 4-byte sequences after F4 8F and from
/// 5- and 6-byte sequences (overlong forms excluded, as glibc excludes them).
const BEYOND_UNICODE: &str = r"\xF4[\x90-\xBF][\x80-\xBF]{2}|[\xF5-\xF7][\x80-\xBF]{3}|\xF8[\x88-\xBF][\x80-\xBF]{3}|[\xF9-\xFB][\x80-\xBF]{4}|\xFC[\x84-\xBF][\x80-\xBF]{4}|\xFD[\x80-\xBF]{5}";
/// UTF-16 surrogates written as UTF-8, which glibc's decoder refuses but its byte-wise `.`
/// (below) takes for a character.
const SURROGATE: &str = r"\xED[\xA0-\xBF][\x80-\xBF]";

/// How glibc's compiled pattern looks at the command line.
///
/// In a UTF-8 locale glibc's `regcomp` checks whether any bracket expression needs whole
/// characters: a negated one, or one with a range, a class or a non-ASCII member. If none does,
/// it matches byte by byte, and `.` then takes any sequence that is well-formed by its lead and
/// continuation bytes (surrogates and code points above U+10FFFF too). Otherwise it decodes
/// each character with its UTF-8 decoder, which refuses surrogates and overlong forms but
/// accepts code points above U+10FFFF. Either way a byte that starts no character is matched by
/// no `.` and no bracket expression, only by a literal of the same byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// A single-byte locale: every byte is one character.
    Bytes,
    /// A UTF-8 locale, no bracket expression needs whole characters.
    Utf8Bytes,
    /// A UTF-8 locale, some bracket expression needs whole characters.
    Utf8Characters,
}

/// The translated expression; `.` matches any character (or byte) including newline, as
/// glibc's does without REG_NEWLINE.
pub fn translate(
    source: &[u8],
    encoding: Encoding,
    collation: Collation,
) -> Result<String, PatternError> {
    let new_parser = |symbols, reading| Parser::new(symbols, reading, collation);
    match encoding {
        Encoding::SingleByte => {
            let symbols = source.iter().copied().map(u32::from).collect();
            new_parser(symbols, Reading::Bytes).translate()
        }
        Encoding::Utf8 => {
            let text = std::str::from_utf8(source).map_err(|_| {
                refuse("is not valid UTF-8: in a UTF-8 locale glibc's reading of its stray bytes depends on the rest of the pattern")
            })?;
            let symbols: Vec<u32> = text.chars().map(u32::from).collect();
            // Whether a bracket expression needs whole characters is known only after the
            // whole pattern has been read; the bytes reading stands only if none did.
            let mut bytes = new_parser(symbols.clone(), Reading::Utf8Bytes);
            let translated = bytes.translate()?;
            if bytes.needs_characters {
                new_parser(symbols, Reading::Utf8Characters).translate()
            } else {
                Ok(translated)
            }
        }
    }
}

fn refuse(reason: &str) -> PatternError {
    PatternError(reason.to_string())
}

/// One symbol in the regex crate's syntax: a character in Unicode mode, a byte otherwise.
///
/// The two-digit form is the one that means a byte when Unicode is off (`\x{..}` always
/// means a code point); with Unicode on, both mean the code point.
fn literal(symbol: u32) -> String {
    match char::from_u32(symbol) {
        Some(c) if c.is_ascii_alphanumeric() => c.to_string(),
        _ if symbol <= 0xFF => format!("\\x{symbol:02X}"),
        _ => format!("\\x{{{symbol:X}}}"),
    }
}

/// A character outside brackets as the bytes of its UTF-8 form, grouped so that a repetition
/// repeats the whole character.
fn utf8_bytes_literal(symbol: u32) -> String {
    let character = char::from_u32(symbol).expect("symbols of a UTF-8 reading are characters");
    let mut buffer = [0; 4];
    let bytes = character.encode_utf8(&mut buffer).as_bytes();
    match bytes {
        [single] => literal(u32::from(*single)),
        _ => format!(
            "(?:{})",
            bytes
                .iter()
                .map(|&b| literal(u32::from(b)))
                .collect::<String>()
        ),
    }
}

struct Parser {
    symbols: Vec<u32>,
    position: usize,
    depth: usize,
    anchors: usize,
    reading: Reading,
    collation: Collation,
    /// Set in the bytes reading of a UTF-8 locale when a bracket expression needs characters.
    needs_characters: bool,
}

/// Whether a piece can take a repetition operator.
#[derive(PartialEq)]
enum Atom {
    Repeatable,
    Anchor,
    GroupWithAnchor,
}

impl Parser {
    fn new(symbols: Vec<u32>, reading: Reading, collation: Collation) -> Parser {
        Parser {
            symbols,
            position: 0,
            depth: 0,
            anchors: 0,
            reading,
            collation,
            needs_characters: false,
        }
    }

    fn translate(&mut self) -> Result<String, PatternError> {
        let body = self.alternation()?;
        if self.position < self.symbols.len() {
            return Err(refuse(
                "has a ')' without a matching '(' (glibc would read it as a plain ')'; write \\) for that)",
            ));
        }
        let flags = match self.reading {
            Reading::Utf8Characters => "(?s)",
            Reading::Bytes | Reading::Utf8Bytes => "(?s-u)",
        };
        Ok(format!("{flags}{body}"))
    }

    /// A symbol outside brackets.
    fn literal(&self, symbol: u32) -> String {
        match self.reading {
            Reading::Utf8Bytes => utf8_bytes_literal(symbol),
            Reading::Bytes | Reading::Utf8Characters => literal(symbol),
        }
    }

    /// `.` outside brackets.
    fn any(&self) -> String {
        match self.reading {
            Reading::Bytes => ".".to_string(),
            Reading::Utf8Bytes => format!("(?:(?u:.)|{SURROGATE}|{BEYOND_UNICODE})"),
            Reading::Utf8Characters => format!("(?:.|(?-u:{BEYOND_UNICODE}))"),
        }
    }

    fn peek_at(&self, offset: usize) -> Option<u32> {
        self.symbols.get(self.position + offset).copied()
    }

    fn peek(&self) -> Option<u32> {
        self.peek_at(0)
    }

    fn next_is(&self, c: char) -> bool {
        self.peek() == Some(u32::from(c))
    }

    fn next(&mut self) -> Option<u32> {
        let symbol = self.peek()?;
        self.position += 1;
        Some(symbol)
    }

    fn alternation(&mut self) -> Result<String, PatternError> {
        let mut branches = vec![self.branch()?];
        while self.next_is('|') {
            self.position += 1;
            branches.push(self.branch()?);
        }
        Ok(branches.join("|"))
    }

    fn branch(&mut self) -> Result<String, PatternError> {
        let mut branch = String::new();
        while self.peek().is_some() && !self.next_is('|') && !self.next_is(')') {
            branch.push_str(&self.piece()?);
        }
        Ok(branch)
    }

    fn piece(&mut self) -> Result<String, PatternError> {
        let (mut piece, atom) = self.atom()?;
        let mut repeated = false;
        while let Some(operator) = self.repetition()? {
            match atom {
                Atom::Repeatable => {}
                Atom::Anchor => {
                    return Err(refuse(
                        "repeats an anchor (^ or $), which glibc refuses; write \\^ or \\$ for the character",
                    ));
                }
                Atom::GroupWithAnchor => {
                    return Err(refuse(
                        "repeats a group that contains an anchor (^ or $), which glibc checks in only one repetition",
                    ));
                }
            }
            if repeated {
                piece = format!("(?:{piece})");
            }
            piece.push_str(&operator);
            repeated = true;
        }
        Ok(piece)
    }

    fn atom(&mut self) -> Result<(String, Atom), PatternError> {
        let symbol = self.next().expect("a piece starts at a symbol");
        let atom = match char::from_u32(symbol) {
            Some('(') => {
                let anchors_before = self.anchors;
                let group = self.group()?;
                let kind = if self.anchors > anchors_before {
                    Atom::GroupWithAnchor
                } else {
                    Atom::Repeatable
                };
                return Ok((group, kind));
            }
            Some(anchor @ ('^' | '$')) => {
                self.anchors += 1;
                return Ok((anchor.to_string(), Atom::Anchor));
            }
            Some('.') => self.any(),
            Some('[') => self.bracket()?,
            Some('\\') => self.escape()?,
            Some('*' | '+' | '?' | '{') => {
                return Err(refuse(
                    "has a repetition operator (*, +, ? or {) with nothing before it to repeat, which glibc refuses; write \\* \\+ \\? \\{ for the character",
                ));
            }
            _ => self.literal(symbol),
        };
        Ok((atom, Atom::Repeatable))
    }

    fn group(&mut self) -> Result<String, PatternError> {
        if self.depth == MAX_GROUP_DEPTH {
            return Err(PatternError(format!(
                "nests groups deeper than {MAX_GROUP_DEPTH} levels"
            )));
        }
        self.depth += 1;
        let inner = self.alternation()?;
        self.depth -= 1;
        if self.next() != Some(u32::from(')')) {
            return Err(refuse("has a '(' without a matching ')'"));
        }
        Ok(format!("(?:{inner})"))
    }

    /// The next repetition operator in the regex crate's syntax, if one follows.
    fn repetition(&mut self) -> Result<Option<String>, PatternError> {
        let operator = match self.peek().and_then(char::from_u32) {
            Some(c @ ('*' | '+' | '?')) => {
                self.position += 1;
                c.to_string()
            }
            Some('{') => {
                self.position += 1;
                self.interval()?
            }
            _ => return Ok(None),
        };
        Ok(Some(operator))
    }

    /// `{m}`, `{m,}` or `{m,n}`, after the `{`.
    fn interval(&mut self) -> Result<String, PatternError> {
        let malformed = || {
            refuse(
                "has a '{' that does not start a repetition {m}, {m,} or {m,n}; write \\{ for the character",
            )
        };
        if self.next_is(',') {
            return Err(refuse(
                "has a repetition {,n}, a GNU extension; write {0,n}",
            ));
        }
        let minimum = self.count()?.ok_or_else(malformed)?;
        let operator = match self.next().and_then(char::from_u32) {
            Some('}') => format!("{{{minimum}}}"),
            Some(',') if self.next_is('}') => {
                self.position += 1;
                format!("{{{minimum},}}")
            }
            Some(',') => {
                let maximum = self.count()?.ok_or_else(malformed)?;
                if self.next() != Some(u32::from('}')) {
                    return Err(malformed());
                }
                if maximum < minimum {
                    return Err(refuse(
                        "has a repetition {m,n} with n smaller than m, which glibc refuses",
                    ));
                }
                format!("{{{minimum},{maximum}}}")
            }
            _ => return Err(malformed()),
        };
        Ok(operator)
    }

    /// A decimal repetition count, if digits follow.
    fn count(&mut self) -> Result<Option<u32>, PatternError> {
        let mut count: Option<u32> = None;
        while let Some(digit) = self
            .peek()
            .and_then(char::from_u32)
            .and_then(|c| c.to_digit(10))
        {
            self.position += 1;
            let value = count.unwrap_or(0) * 10 + digit;
            if value > MAX_REPETITION {
                return Err(PatternError(format!(
                    "has a repetition count above {MAX_REPETITION}"
                )));
            }
            count = Some(value);
        }
        Ok(count)
    }

    /// A backslash outside a bracket expression, after the backslash.
    fn escape(&mut self) -> Result<String, PatternError> {
        let Some(symbol) = self.next() else {
            return Err(refuse("ends with a backslash, which glibc refuses"));
        };
        let escaped = char::from_u32(symbol).unwrap_or(char::REPLACEMENT_CHARACTER);
        let is_gnu_anchor = u8::try_from(symbol).is_ok_and(|b| GNU_ANCHOR_ESCAPES.contains(&b));
        if (escaped.is_ascii_punctuation() || escaped == ' ') && !is_gnu_anchor {
            return Ok(literal(symbol));
        }
        let reason = if escaped.is_ascii_digit() && escaped != '0' {
            format!("has a back-reference \\{escaped}, which hacmp cannot match")
        } else if is_gnu_anchor || "wWsSbB".contains(escaped) {
            format!("has \\{escaped}, a GNU extension (word or buffer anchor, or character class)")
        } else {
            format!(
                "has \\{escaped}, which POSIX leaves undefined (glibc reads a plain '{escaped}', other tools a special character); write '{escaped}' without the backslash"
            )
        };
        Err(PatternError(reason))
    }

    /// A bracket expression, after the `[`.
    fn bracket(&mut self) -> Result<String, PatternError> {
        let negated = self.next_is('^');
        if negated {
            self.position += 1;
        }
        // What makes glibc match a bracket expression by whole characters in a UTF-8 locale.
        let mut needs_characters = negated;
        let mut members = String::new();
        let mut first = true;
        loop {
            let Some(symbol) = self.next() else {
                return Err(refuse("has a '[' without a matching ']'"));
            };
            if symbol == u32::from(']') && !first {
                break;
            }
            first = false;
            if symbol == u32::from('[')
                && let Some(class) = self.class()?
            {
                members.push_str(&class);
                needs_characters = true;
                self.refuse_range_from_class()?;
                continue;
            }
            if self.next_is('-') && self.peek_at(1).is_some_and(|s| s != u32::from(']')) {
                self.position += 1;
                members.push_str(&self.range(symbol)?);
                needs_characters = true;
            } else {
                members.push_str(&literal(symbol));
                needs_characters |= symbol > 0x7F;
            }
        }
        if self.reading == Reading::Utf8Bytes && needs_characters {
            self.needs_characters = true;
        }
        let negation = if negated { "^" } else { "" };
        let translated = format!("[{negation}{members}]");
        if negated && self.reading == Reading::Utf8Characters {
            // glibc decodes code points above U+10FFFF, which belong to no class and so are
            // matched by every negated bracket expression.
            return Ok(format!("(?:{translated}|(?-u:{BEYOND_UNICODE}))"));
        }
        Ok(translated)
    }

    /// `[:name:]` inside a bracket expression, after its `[`; `None` for a plain `[`.
    fn class(&mut self) -> Result<Option<String>, PatternError> {
        match self.peek().and_then(char::from_u32) {
            Some('.' | '=') => Err(refuse(
                "has a collating element [. .] or equivalence class [= =], which hacmp does not support",
            )),
            Some(':') => {
                let start = self.position + 1;
                let end = (start..self.symbols.len().saturating_sub(1))
                    .find(|&i| {
                        self.symbols[i] == u32::from(':') && self.symbols[i + 1] == u32::from(']')
                    })
                    .ok_or_else(|| refuse("has a '[:' without a matching ':]'"))?;
                let name: String = self.symbols[start..end]
                    .iter()
                    .filter_map(|&s| char::from_u32(s))
                    .collect();
                if !CLASSES.contains(&name.as_str()) {
                    return Err(PatternError(format!(
                        "has an unknown character class [:{name}:]"
                    )));
                }
                self.position = end + 2;
                if self.reading != Reading::Utf8Characters {
                    return Ok(Some(format!("[:{name}:]")));
                }
                let members = classes::members(&name)?
                    .iter()
                    .map(|&(start, end)| format!("{}-{}", literal(start), literal(end)))
                    .collect();
                Ok(Some(members))
            }
            _ => Ok(None),
        }
    }

    fn refuse_range_from_class(&self) -> Result<(), PatternError> {
        if self.next_is('-') && self.peek_at(1).is_some_and(|s| s != u32::from(']')) {
            return Err(refuse(
                "has a range that starts at a character class, which glibc refuses",
            ));
        }
        Ok(())
    }

    /// A range `start-end` inside a bracket expression, after the `-`.
    fn range(&mut self, start: u32) -> Result<String, PatternError> {
        let end = self.next().expect("the caller saw the end point");
        let class_follows = self
            .peek()
            .is_some_and(|s| [':', '.', '='].iter().any(|&c| s == u32::from(c)));
        if end == u32::from('[') && class_follows {
            return Err(refuse(
                "has a range that ends at a character class or collating element, which glibc refuses",
            ));
        }
        if self.collation == Collation::Rules {
            return Err(refuse(
                "has a range, which glibc orders by the locale's collation rules (LC_COLLATE): in en_US.UTF-8 [a-z] takes in é and ß, [0-9] other scripts' digits; list the characters, use a class such as [:digit:], or run with a C or C.UTF-8 LC_COLLATE",
            ));
        }
        if start > 0x7F || end > 0x7F {
            return Err(refuse(
                "has a range with a non-ASCII end point, whose extent depends on the locale's collation order",
            ));
        }
        if end < start {
            return Err(refuse(
                "has a range whose end comes before its start, which glibc refuses",
            ));
        }
        if self.next_is('-') && self.peek_at(1).is_some_and(|s| s != u32::from(']')) {
            return Err(refuse(
                "has two ranges sharing an end point (like a-c-e), which glibc refuses",
            ));
        }
        Ok(format!("{}-{}", literal(start), literal(end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8(source: &str) -> String {
        translate(source.as_bytes(), Encoding::Utf8, Collation::CodePoints).unwrap()
    }

    fn single_byte(source: &[u8]) -> String {
        translate(source, Encoding::SingleByte, Collation::CodePoints).unwrap()
    }

    #[test]
    fn translates_each_construct() {
        assert_eq!(single_byte(b"sh.*app"), "(?s-u)sh.*app");
        assert_eq!(single_byte(b"a**"), "(?s-u)(?:a*)*");
        assert_eq!(single_byte(b"(a|)b{2,}"), "(?s-u)(?:a|)b{2,}");
        assert_eq!(
            single_byte(b"[]a-c[:digit:]\\]"),
            "(?s-u)[\\x5Da-c[:digit:]\\x5C]"
        );
        assert_eq!(single_byte("é*".as_bytes()), "(?s-u)\\xC3\\xA9*");
        assert_eq!(single_byte(b"\xff"), "(?s-u)\\xFF");
    }

    #[test]
    fn a_utf8_locale_reads_bytes_until_a_bracket_expression_needs_characters() {
        let any_in_bytes = format!("(?:(?u:.)|{SURROGATE}|{BEYOND_UNICODE})");
        assert_eq!(
            utf8("a.é*[b]"),
            format!("(?s-u)a{any_in_bytes}(?:\\xC3\\xA9)*[b]")
        );
        let any_in_characters = format!("(?:.|(?-u:{BEYOND_UNICODE}))");
        assert_eq!(utf8(".[a-c]"), format!("(?s){any_in_characters}[a-c]"));
        assert_eq!(
            utf8("é[^a]"),
            format!("(?s)\\xE9(?:[^a]|(?-u:{BEYOND_UNICODE}))")
        );
        assert!(utf8("[é]").starts_with("(?s)"));
        assert_eq!(utf8("[[:digit:]]"), "(?s)[0-9]");
        assert!(translate(b"\xff", Encoding::Utf8, Collation::CodePoints).is_err());
        assert!(translate(b"[a-z]", Encoding::SingleByte, Collation::Rules).is_err());
        assert!(translate(b"[az]", Encoding::Utf8, Collation::Rules).is_ok());
    }
}
