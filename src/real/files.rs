//! `[ -f ]`, `stat -c %Y`, `touch` and `date +%s`.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
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

/// `stat -c %Y PATH`: the modification time in whole seconds (follows symbolic links? no: stat
/// without -L reports the link itself, and so does this).
pub fn modification_time(path: &str) -> Result<i64, ToolError> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .map(|m| m.mtime())
        .map_err(|e| ToolError(format!("stat: cannot statx '{path}': {}", describe(&e))))
}

/// `touch PATH`: creates the file, or sets both its times to "now" with UTIME_NOW so that the
/// server that stores it (NFS, say) stamps its own time, exactly as touch does.
pub fn touch(path: &str) -> Result<(), ToolError> {
    let fail = |e: io::Error| ToolError(format!("touch: cannot touch '{path}': {}", describe(&e)));
    let opened = OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .mode(0o666)
        .open(path);
    match opened {
        Ok(file) => {
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor is open for the whole call; a null times pointer means
            // UTIME_NOW for both times.
            let status = unsafe { libc::futimens(file.as_raw_fd(), std::ptr::null()) };
            if status == 0 {
                Ok(())
            } else {
                Err(fail(io::Error::last_os_error()))
            }
        }
        // touch opens with O_WRONLY and falls back to setting the times by name, which works on
        // directories and on files we may not open for writing but own.
        Err(open_error) => {
            let name = CString::new(path).map_err(|_| fail(io::ErrorKind::InvalidInput.into()))?;
            // SAFETY: `name` is a valid NUL-terminated string; null times mean UTIME_NOW.
            let status =
                unsafe { libc::utimensat(libc::AT_FDCWD, name.as_ptr(), std::ptr::null(), 0) };
            if status == 0 {
                Ok(())
            } else {
                let utime_error = io::Error::last_os_error();
                // When the file does not exist, the open's reason is the one to report.
                if utime_error.kind() == io::ErrorKind::NotFound {
                    Err(fail(open_error))
                } else {
                    Err(fail(utime_error))
                }
            }
        }
    }
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
