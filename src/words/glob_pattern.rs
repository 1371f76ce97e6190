//! One component of a bash pathname pattern (no '/'), matched against file names bytewise as in
//! the C locale: `*`, `?`, bracket expressions with ranges and character classes, and backslash
//! escapes. Extended globbing is off in a non-interactive bash, so it is not supported.

/// Whether bash would treat `word` as a pattern: it has an unescaped `*` or `?`, or an unescaped
/// `[` followed somewhere later by an unescaped `]`.
pub fn is_pattern(word: &[u8]) -> bool {
    let mut open_bracket = false;
    let mut bytes = word.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'\\' => {
                bytes.next();
            }
            b'*' | b'?' => return true,
            b'[' => open_bracket = true,
            b']' if open_bracket => return true,
            _ => {}
        }
    }
    false
}

/// `word` with its escaping backslashes removed, as bash leaves a literal part of a pattern.
pub fn unescape(word: &[u8]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(word.len());
    let mut bytes = word.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'\\' {
            // A trailing backslash escapes nothing and goes, as in bash: `d*/a\` finds `d/a`.
            if let Some(&escaped) = bytes.next() {
                plain.push(escaped);
            }
        } else {
            plain.push(byte);
        }
    }
    plain
}

enum Token {
    Byte(u8),
    AnyByte,
    AnyString,
    OneOf(Box<[bool; 256]>),
}

pub struct GlobPattern {
    tokens: Vec<Token>,
}

impl GlobPattern {
    pub fn parse(component: &[u8]) -> GlobPattern {
        debug_assert!(
            !component.contains(&b'/'),
            "patterns are matched per path component"
        );
        let mut tokens = Vec::with_capacity(component.len());
        let mut index = 0;
        while index < component.len() {
            let (token, next) = match component[index] {
                b'*' => (Token::AnyString, index + 1),
                b'?' => (Token::AnyByte, index + 1),
                b'[' => match parse_bracket(component, index + 1) {
                    Some((members, next)) => (Token::OneOf(members), next),
                    None => (Token::Byte(b'['), index + 1),
                },
                b'\\' if index + 1 < component.len() => {
                    (Token::Byte(component[index + 1]), index + 2)
                }
                byte => (Token::Byte(byte), index + 1),
            };
            tokens.push(token);
            index = next;
        }
        GlobPattern { tokens }
    }

    /// Pathname expansion's rule on top of matching: a name starting with '.' is matched only by
    /// a pattern starting with a literal '.'.
    pub fn matches_file_name(&self, name: &[u8]) -> bool {
        let hidden = name.first() == Some(&b'.');
        if hidden && !matches!(self.tokens.first(), Some(Token::Byte(b'.'))) {
            return false;
        }
        self.matches(name)
    }

    /// Every token but `*` consumes exactly one byte, so remembering only the latest `*` and
    /// retrying it one byte further on each mismatch finds a match if there is one, in at most
    /// (pattern length × name length) steps.
    fn matches(&self, name: &[u8]) -> bool {
        let (mut token, mut byte) = (0, 0);
        let mut last_star: Option<(usize, usize)> = None;
        while byte < name.len() {
            let advanced = match self.tokens.get(token) {
                Some(Token::AnyString) => {
                    last_star = Some((token, byte));
                    token += 1;
                    continue;
                }
                Some(Token::AnyByte) => true,
                Some(Token::Byte(expected)) => *expected == name[byte],
                Some(Token::OneOf(members)) => members[usize::from(name[byte])],
                None => false,
            };
            if advanced {
                token += 1;
                byte += 1;
            } else if let Some((star, star_byte)) = last_star {
                token = star + 1;
                byte = star_byte + 1;
                last_star = Some((star, star_byte + 1));
            } else {
                return false;
            }
        }
        self.tokens[token..]
            .iter()
            .all(|t| matches!(t, Token::AnyString))
    }
}

/// Parses a bracket expression whose body starts at `start` (just after '['); returns the set
/// and the index after the closing ']', or None when there is no closing ']' and the '[' is an
/// ordinary character.
fn parse_bracket(pattern: &[u8], start: usize) -> Option<(Box<[bool; 256]>, usize)> {
    let mut members = Box::new([false; 256]);
    let mut index = start;
    let negated = matches!(pattern.get(index), Some(b'!' | b'^'));
    if negated {
        index += 1;
    }
    let body_start = index;
    loop {
        let byte = *pattern.get(index)?;
        // A ']' right at the start of the body is a member, not the end.
        if byte == b']' && index > body_start {
            index += 1;
            break;
        }
        let class_end = (byte == b'[' && pattern.get(index + 1) == Some(&b':'))
            .then(|| find_class_end(pattern, index + 2))
            .flatten();
        if let Some(end) = class_end {
            let name = &pattern[index + 2..end];
            for (member, slot) in members.iter_mut().enumerate() {
                *slot |= in_class(name, member as u8);
            }
            index = end + 2;
            continue;
        }
        // A collating symbol `[.c.]` or an equivalence class `[=c=]` stands for its one
        // character, as in bash in the C locale. bash takes a `[.` without its `.]`, or a name
        // longer than one character, for a bracket expression that does not parse, and the
        // '[' before it for an ordinary character; a `[=` without its `=]` is two members.
        if byte == b'[' && matches!(pattern.get(index + 1), Some(b'.' | b'=')) {
            let delimiter = pattern[index + 1];
            let end = find_closing(pattern, index + 2, delimiter);
            match end {
                Some(end) if end == index + 3 => {
                    members[usize::from(pattern[index + 2])] = true;
                    index = end + 2;
                    continue;
                }
                Some(_) => return None,
                None if delimiter == b'.' => return None,
                None => {}
            }
        }
        let (low, after_low) = escaped_byte(pattern, index)?;
        let is_range = pattern.get(after_low) == Some(&b'-')
            && pattern.get(after_low + 1).is_some_and(|&b| b != b']');
        if is_range {
            let (high, after_high) = escaped_byte(pattern, after_low + 1)?;
            for member in low..=high {
                members[usize::from(member)] = true;
            }
            index = after_high;
        } else {
            members[usize::from(low)] = true;
            index = after_low;
        }
    }
    if negated {
        for slot in members.iter_mut() {
            *slot = !*slot;
        }
    }
    Some((members, index))
}

/// The byte at `index`, taking a backslash as escaping the byte after it.
fn escaped_byte(pattern: &[u8], index: usize) -> Option<(u8, usize)> {
    match *pattern.get(index)? {
        b'\\' => pattern.get(index + 1).map(|&b| (b, index + 2)),
        byte => Some((byte, index + 1)),
    }
}

/// The index of the ":]" closing a character class name that starts at `start`.
fn find_class_end(pattern: &[u8], start: usize) -> Option<usize> {
    find_closing(pattern, start, b':')
}

/// The index of the `delimiter` followed by ']' that closes a name starting at `start`.
fn find_closing(pattern: &[u8], start: usize, delimiter: u8) -> Option<usize> {
    pattern
        .get(start..)?
        .windows(2)
        .position(|pair| pair == [delimiter, b']'])
        .map(|offset| start + offset)
}

/// POSIX character classes in the C locale; an unknown class matches nothing.
fn in_class(name: &[u8], byte: u8) -> bool {
    match name {
        b"alnum" => byte.is_ascii_alphanumeric(),
        b"alpha" => byte.is_ascii_alphabetic(),
        b"blank" => byte == b' ' || byte == b'\t',
        b"cntrl" => byte.is_ascii_control(),
        b"digit" => byte.is_ascii_digit(),
        b"graph" => byte.is_ascii_graphic(),
        b"lower" => byte.is_ascii_lowercase(),
        b"print" => byte.is_ascii_graphic() || byte == b' ',
        b"punct" => byte.is_ascii_punctuation(),
        b"space" => byte.is_ascii_whitespace() || byte == 0x0b,
        b"upper" => byte.is_ascii_uppercase(),
        b"xdigit" => byte.is_ascii_hexdigit(),
        _ => false,
    }
}
