//! `pgrep -f`, `kill` and `kill -9`.
//!
//! PLACEHOLDER: the /proc scan tested against procps replaces the scan.

use crate::pattern::Pattern;
use crate::world::Signal;

use super::ToolError;

pub fn find(pattern: &Pattern, own_pid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == own_pid {
            continue;
        }
        let Ok(mut cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.last() == Some(&0) {
            cmdline.pop();
        }
        for byte in cmdline.iter_mut() {
            if *byte == 0 {
                *byte = b' ';
            }
        }
        if pattern.is_match(&cmdline) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// `kill PID` (SIGTERM) or `kill -9 PID`, with bash's builtin's error line.
pub fn signal(pid: u32, signal: Signal) -> Result<(), ToolError> {
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
