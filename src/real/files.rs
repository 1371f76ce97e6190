//! `[ -f ]`, `stat -c %Y`, `touch` and `date +%s`, plus the two helpers every coreutils error
//! line needs: the C library's error text and coreutils' quoting of file names.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::time::{SystemTime, UNIX_EPOCH};

use super::ToolError;

/// `date +%s`: seconds since the epoch, rounded down as date does for times before it too.
pub fn wall_clock_seconds() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => {
            let before = before.duration();
            -(before.as_secs() as i64) - i64::from(before.subsec_nanos() > 0)
        }
    }
}

/// `[ -f PATH ]`: true for a regular file, following symbolic links.
pub fn is_regular_file(path: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// `stat -c %Y PATH`: the modification time in whole seconds. Without -L, stat reports a
/// symbolic link itself, so this does not follow links either. The kernel's seconds field is
/// already rounded down (the nanoseconds are never negative), which is what %Y prints for times
/// before 1970 as well.
pub fn modification_time(path: &str) -> Result<i64, ToolError> {
    std::fs::symlink_metadata(path)
        .map(|m| m.mtime())
        .map_err(|e| {
            ToolError(format!(
                "stat: cannot statx {}: {}",
                quote(path),
                describe(&e)
            ))
        })
}

/// `touch PATH`: creates the file, or sets both its times to "now" with UTIME_NOW so that the
/// server that stores it (NFS, say) stamps its own time, exactly as touch does.
///
/// touch opens the file for writing (creating it) and sets the times through the descriptor;
/// when the open fails it sets them by name, which works on directories. Only if setting the
/// times fails too does it report, and then it prefers the open's reason unless the open failed
/// merely because the path is a directory.
pub fn touch(path: &str) -> Result<(), ToolError> {
    let opened = OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .mode(0o666)
        .open(path);
    let (open_error, times_set) = match opened {
        // SAFETY: the descriptor is open for the whole call; null times mean UTIME_NOW.
        Ok(file) => (
            None,
            unsafe { libc::futimens(file.as_raw_fd(), std::ptr::null()) } == 0,
        ),
        Err(open_error) => (Some(open_error), set_times_to_now_by_name(path)),
    };
    if times_set {
        return Ok(());
    }
    let times_error = io::Error::last_os_error();
    let reported = match open_error {
        Some(open_error) if open_error.raw_os_error() != Some(libc::EISDIR) => {
            format!("cannot touch {}: {}", quote(path), describe(&open_error))
        }
        _ => format!(
            "setting times of {}: {}",
            quote(path),
            describe(&times_error)
        ),
    };
    Err(ToolError(format!("touch: {reported}")))
}

/// utimensat(AT_FDCWD, PATH, NULL, 0); on failure errno holds the reason.
fn set_times_to_now_by_name(path: &str) -> bool {
    let Ok(name) = CString::new(path) else {
        // A NUL byte cannot reach us from a shell variable; the kernel would reject the name.
        // SAFETY: errno is thread-local.
        unsafe { *libc::__errno_location() = libc::EINVAL };
        return false;
    };
    // SAFETY: `name` is a valid NUL-terminated string; null times mean UTIME_NOW.
    unsafe { libc::utimensat(libc::AT_FDCWD, name.as_ptr(), std::ptr::null(), 0) == 0 }
}

/// The C library's message for an error, as coreutils prints it ("No such file or directory"),
/// without the " (os error 2)" that Rust appends.
pub fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => {
            // SAFETY: strerror returns a pointer to a static or thread-local string.
            let message = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) };
            message.to_string_lossy().into_owned()
        }
        None => error.to_string(),
    }
}

/// A file name quoted as coreutils quotes it in error lines in the C locale (gnulib's
/// "shell-escape-always" style): 'name' in single quotes; "name" in double quotes when the name
/// contains a single quote and nothing else a shell would treat specially; otherwise single
/// quotes with each ' written as '\'' and each unprintable byte as a $'\ooo' escape.
pub fn quote(name: &str) -> String {
    let bytes = name.as_bytes();
    let has_single_quote = bytes.contains(&b'\'');
    if has_single_quote && bytes.iter().all(|&b| fits_double_quotes(b)) {
        return format!("\"{name}\"");
    }
    let mut quoted = String::from("'");
    let mut in_escape = false;
    for &byte in bytes {
        let printable = (0x20..0x7f).contains(&byte);
        if printable && byte != b'\'' && in_escape {
            // Leave $'...' and reopen a plain single-quoted stretch.
            quoted.push_str("''");
            in_escape = false;
        }
        if !printable && !in_escape {
            quoted.push_str("'$'");
            in_escape = true;
        }
        match byte {
            // Closing the quotes, an escaped quote and reopening works from either stretch.
            b'\'' => {
                quoted.push_str("'\\''");
                in_escape = false;
            }
            _ if printable => quoted.push(char::from(byte)),
            _ => quoted.push_str(&escape_byte(byte)),
        }
    }
    quoted.push('\'');
    quoted
}

/// Characters a double-quoted string shows literally and that need no quoting elsewhere either.
fn fits_double_quotes(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"'%+,-./:@]_ ".contains(&byte)
}

/// The C escape for one byte inside $'...': a letter for the common controls, else octal.
fn escape_byte(byte: u8) -> String {
    match byte {
        0x07 => "\\a".into(),
        0x08 => "\\b".into(),
        0x0c => "\\f".into(),
        b'\n' => "\\n".into(),
        b'\r' => "\\r".into(),
        b'\t' => "\\t".into(),
        0x0b => "\\v".into(),
        _ => format!("\\{byte:03o}"),
    }
}
