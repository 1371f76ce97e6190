//! Human output: aligned tables, and colour only where a person reads it.

use std::io::IsTerminal;

/// Whether to colour output: only on a terminal, and never when NO_COLOR is set to anything
/// (no-color.org).
pub fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Warning,
    Bad,
}

/// Wraps `text` in the ANSI colour for `tone` when `colour` is on.
pub fn paint(text: &str, tone: Tone, colour: bool) -> String {
    let code = match tone {
        Tone::Plain => return text.to_string(),
        Tone::Good => "32",
        Tone::Warning => "33",
        Tone::Bad => "1;31",
    };
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Lays out rows in columns separated by two spaces; the last column is not padded. Each cell
/// is (text, tone); widths count characters, not the colour codes added after padding.
pub fn render(rows: &[Vec<(String, Tone)>], colour: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|(t, _)| t.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (index, (text, tone)) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(&paint(text, *tone, colour));
            if index + 1 < row.len() {
                let pad = widths[index] - text.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Writes to stdout, ignoring a closed pipe (`hacmp status | head`).
pub fn print(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// `lines` in a box of `#`, in the colour of bad news: for what must not be missed.
pub fn boxed(lines: &[String], colour: bool) -> String {
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let rule = "#".repeat(width + 6);
    let mut out = format!("{}\n", paint(&rule, Tone::Bad, colour));
    for line in lines {
        let pad = width - line.chars().count();
        let boxed = format!("## {line}{} ##", " ".repeat(pad));
        out.push_str(&format!("{}\n", paint(&boxed, Tone::Bad, colour)));
    }
    out.push_str(&format!("{}\n", paint(&rule, Tone::Bad, colour)));
    out
}

/// An age in seconds as people read it ("1m 5s"); a negative one lies in the future.
pub fn age(seconds: i64) -> String {
    let magnitude =
        humantime::format_duration(std::time::Duration::from_secs(seconds.unsigned_abs()));
    if seconds < 0 {
        format!("in {magnitude} (future)")
    } else {
        format!("{magnitude}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_without_counting_colour_codes() {
        let rows = vec![
            vec![
                ("a".to_string(), Tone::Plain),
                ("x".to_string(), Tone::Good),
                ("1".to_string(), Tone::Plain),
            ],
            vec![
                ("long".to_string(), Tone::Plain),
                ("yy".to_string(), Tone::Bad),
                ("2".to_string(), Tone::Plain),
            ],
        ];
        assert_eq!(render(&rows, false), "a     x   1\nlong  yy  2\n");
        assert_eq!(
            render(&rows, true).lines().next().unwrap(),
            "a     \x1b[32mx\x1b[0m   1"
        );
    }
}
