//! `pgrep -f`, `kill` and `kill -9`.
//!
//! procps-ng 4.0.2's `pgrep -f` matches each process's command line as its library prepares it
//! for display: /proc/PID/cmdline read into a 128 KiB buffer, NULs and newlines turned into
//! spaces, then non-printable bytes replaced ("escaped") according to the locale's character
//! set. A process without a command line (kernel thread, zombie) is matched as `[comm]`, a
//! zombie as `[comm] <defunct>`. `command_line` rebuilds that string byte for byte.

use std::fs::File;
use std::io::Read;

use crate::pattern::{Encoding, Pattern};
use crate::world::Signal;

use super::ToolError;

/// The kernel's largest PID (`pid_max` cannot exceed 2^22), plus room for /proc's other entries;
/// bounds the directory scan.
const MAX_PROC_ENTRIES: usize = 4_194_304 + 1024;
/// procps reads at most this many bytes of a command line and keeps one fewer.
const COMMAND_LINE_BUFFER: u64 = 128 * 1024;
/// What procps 4.0.2 shows when a command line it read turns out empty (only NULs).
const NO_COMMAND_LINE: &[u8] = b"?";
/// /proc/PID/stat starts with "PID (comm) S", comm at most 64 bytes; more is never needed.
const STAT_PREFIX_BYTES: u64 = 256;

/// The processes whose command line matches, ascending, never `own_pid`. Processes that end
/// during the scan are left out.
pub fn find(pattern: &Pattern, own_pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .take(MAX_PROC_ENTRIES)
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own_pid)
        .filter(|&pid| {
            command_line(pid, pattern.encoding()).is_some_and(|line| pattern.is_match(&line))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The command line `pgrep -f` matches for the process (and `pgrep -a` prints), or `None` when
/// the process no longer exists.
pub fn command_line(pid: u32, encoding: Encoding) -> Option<Vec<u8>> {
    let raw = read_command_line(pid);
    if raw.is_empty() {
        return name_line(pid, encoding);
    }
    let joined = join_arguments(&raw);
    if joined.is_empty() {
        return Some(NO_COMMAND_LINE.to_vec());
    }
    Some(escape(&joined, encoding))
}

/// The raw /proc/PID/cmdline as far as procps reads it; empty when unreadable, as for procps.
fn read_command_line(pid: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    let Ok(file) = File::open(format!("/proc/{pid}/cmdline")) else {
        return raw;
    };
    if file
        .take(COMMAND_LINE_BUFFER)
        .read_to_end(&mut raw)
        .is_err()
    {
        raw.clear();
    }
    if raw.len() as u64 == COMMAND_LINE_BUFFER {
        // procps fills its whole buffer and then gives up the last byte to the terminating NUL.
        raw.pop();
    }
    raw
}

/// The arguments joined by spaces: trailing NULs dropped, every other NUL and every newline
/// turned into a space, and, when the buffer did not end in a NUL (argv rewritten, or cut at
/// the buffer's end), a final space dropped too.
fn join_arguments(raw: &[u8]) -> Vec<u8> {
    let kept = raw.len() - raw.iter().rev().take_while(|&&b| b == 0).count();
    let mut joined: Vec<u8> = raw[..kept]
        .iter()
        .map(|&b| if b == 0 || b == b'\n' { b' ' } else { b })
        .collect();
    if kept == raw.len() && joined.last() == Some(&b' ') {
        joined.pop();
    }
    joined
}

/// `[comm]` for a process without a command line, `[comm] <defunct>` for a zombie.
fn name_line(pid: u32, encoding: Encoding) -> Option<Vec<u8>> {
    let mut stat = Vec::new();
    File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .take(STAT_PREFIX_BYTES)
        .read_to_end(&mut stat)
        .ok()?;
    // comm may itself contain ')' and spaces; the state letter follows the last ") ".
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let name = stat.get(open + 1..close)?;
    let state = stat.get(close + 2).copied();
    let mut line = vec![b'['];
    line.extend(escape(name, encoding));
    line.push(b']');
    if state == Some(b'Z') {
        line.extend_from_slice(b" <defunct>");
    }
    Some(line)
}

/// procps's replacement of what a terminal should not see, which pgrep's regex then sees.
///
/// In a single-byte locale control characters become '.' and every non-ASCII byte '?'. In a
/// UTF-8 locale control characters become '?' and multibyte sequences are kept, judged by their
/// first byte alone; from the first byte that cannot start a sequence, or a sequence cut short
/// by the end, the rest is escaped as in a single-byte locale.
fn escape(text: &[u8], encoding: Encoding) -> Vec<u8> {
    let mut escaped = text.to_vec();
    let mut index = 0;
    if encoding == Encoding::Utf8 {
        while index < escaped.len() {
            let lead = escaped[index];
            match utf8_sequence_length(lead) {
                Some(length) if index + length <= escaped.len() => {
                    if lead < 0x20 || lead == 0x7F {
                        escaped[index] = b'?';
                    }
                    index += length;
                }
                _ => break,
            }
        }
    }
    for byte in &mut escaped[index..] {
        *byte = match *byte {
            0x01..=0x1F | 0x7F => b'.',
            0x80..=0xFF => b'?',
            printable => printable,
        };
    }
    escaped
}

/// The length of the UTF-8 sequence a byte starts, as procps judges it.
fn utf8_sequence_length(lead: u8) -> Option<usize> {
    match lead {
        0x00..=0x7F => Some(1),
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

/// `kill PID` (SIGTERM) or `kill -9 PID`, with bash's builtin's error line.
pub fn signal(pid: u32, signal: Signal) -> Result<(), ToolError> {
    // kill(0) would signal our own process group, and a PID never is 0.
    assert!(pid > 0, "PID 0 is not a process");
    let number = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    let Ok(target) = libc::pid_t::try_from(pid) else {
        return Err(ToolError(format!("kill: ({pid}) - No such process")));
    };
    // SAFETY: kill has no memory effects; the PID came from /proc.
    if unsafe { libc::kill(target, number) } == 0 {
        Ok(())
    } else {
        let error = std::io::Error::last_os_error();
        Err(ToolError(format!(
            "kill: ({pid}) - {}",
            super::files::describe(&error)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_joined_as_procps_joins_them() {
        assert_eq!(join_arguments(b"sleep\x001\x00"), b"sleep 1");
        assert_eq!(join_arguments(b"a\x00\x00b\x00\x00\x00"), b"a  b");
        assert_eq!(join_arguments(b"a\nb\x00"), b"a b");
        assert_eq!(join_arguments(b"rewritten "), b"rewritten");
        assert_eq!(join_arguments(b"\x00\x00"), b"");
    }

    #[test]
    fn escaping_follows_the_character_set() {
        let text = "a\tb\u{7f}é".as_bytes();
        assert_eq!(escape(text, Encoding::SingleByte), b"a.b.??");
        assert_eq!(escape(text, Encoding::Utf8), "a?b?é".as_bytes());
        assert_eq!(escape(b"\xff\t\xc3\xa9", Encoding::Utf8), b"?.??");
        assert_eq!(escape(b"a\xc3", Encoding::Utf8), b"a?");
    }
}
