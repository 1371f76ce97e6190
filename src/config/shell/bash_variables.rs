//! The variables bash sets itself. A file may read them (`maintenanceFile=$PWD/maintenance`),
//! and where the environment has none bash still has a value: the reader gives bash's value
//! where it is well defined and cheap to know, and refuses the rest rather than read them as
//! empty.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Variables whose value changes as bash runs (a counter, a clock, the current line or command)
/// or that describe the bash process itself: no reader can know what bash would have.
const DYNAMIC: [&str; 28] = [
    "BASH",
    "BASHOPTS",
    "BASHPID",
    "BASH_ALIASES",
    "BASH_ARGC",
    "BASH_ARGV",
    "BASH_ARGV0",
    "BASH_CMDS",
    "BASH_COMMAND",
    "BASH_EXECUTION_STRING",
    "BASH_LINENO",
    "BASH_LOADABLES_PATH",
    "BASH_REMATCH",
    "BASH_SOURCE",
    "BASH_SUBSHELL",
    "BASH_VERSINFO",
    "BASH_VERSION",
    "COMP_WORDBREAKS",
    "DIRSTACK",
    "EPOCHREALTIME",
    "EPOCHSECONDS",
    "FUNCNAME",
    "GROUPS",
    "HISTCMD",
    "LINENO",
    "PIPESTATUS",
    "RANDOM",
    "SECONDS",
];

/// More of the same kind: the parent's PID, the nesting level, the option strings, `$_`.
const PROCESS: [&str; 5] = ["PPID", "SHLVL", "SHELLOPTS", "SRANDOM", "_"];

/// Variables bash sets when the environment has none, to a value that depends on how bash was
/// built or on the password database: the environment's value is used, else they are refused.
const BUILT_IN_DEFAULTS: [&str; 5] = ["PATH", "SHELL", "HOSTTYPE", "MACHTYPE", "OSTYPE"];

/// Why a variable bash sets itself cannot be read, as the end of an error line.
pub(super) fn refusal(name: &str) -> String {
    format!(
        "${name} is set by bash itself to a value hacmp cannot know; \
         use a literal value or a variable of your own"
    )
}

/// Whether assigning `name` would not make `$name` read back the value assigned (or is an error
/// in bash): those assignments are refused.
pub(super) fn refuses_assignment(name: &str) -> bool {
    DYNAMIC.contains(&name) || PROCESS.contains(&name) || matches!(name, "UID" | "EUID")
}

/// bash's value of `name` when the file has not assigned it: `None` when `name` is not one of
/// bash's own (the environment decides), `Some(Ok(value))` with bash's value (`None` for unset),
/// or `Some(Err(why))` when it is refused.
pub(super) fn value(
    name: &str,
    environment: &HashMap<String, String>,
) -> Option<Result<Option<String>, String>> {
    let from_environment = environment.get(name).cloned();
    let value = match name {
        _ if DYNAMIC.contains(&name) || PROCESS.contains(&name) => return Some(Err(refusal(name))),
        _ if BUILT_IN_DEFAULTS.contains(&name) => match from_environment {
            Some(value) => value,
            None => return Some(Err(refusal(name))),
        },
        "PWD" => match working_directory(environment.get("PWD")) {
            Some(directory) => directory,
            None => return Some(Err(refusal(name))),
        },
        // bash keeps an inherited OLDPWD only when it names a directory.
        "OLDPWD" => {
            return Some(Ok(from_environment.filter(|path| Path::new(path).is_dir())));
        }
        // SAFETY: getuid and geteuid cannot fail and touch no memory of ours.
        "UID" => unsafe { libc::getuid() }.to_string(),
        "EUID" => unsafe { libc::geteuid() }.to_string(),
        "IFS" => " \t\n".to_string(),
        "OPTIND" | "OPTERR" => "1".to_string(),
        "PS4" => "+ ".to_string(),
        "HOSTNAME" => from_environment.unwrap_or_else(super::super::local_host_name),
        "TERM" => from_environment.unwrap_or_else(|| "dumb".to_string()),
        _ => return None,
    };
    Some(Ok(Some(value)))
}

/// bash's PWD: the inherited one when it is absolute and names the working directory, else the
/// working directory's path.
fn working_directory(inherited: Option<&String>) -> Option<String> {
    let here = std::fs::metadata(".").ok()?;
    let names_here = |path: &String| {
        path.starts_with('/')
            && std::fs::metadata(path)
                .is_ok_and(|there| (there.dev(), there.ino()) == (here.dev(), here.ino()))
    };
    match inherited.filter(|path| names_here(path)) {
        Some(path) => Some(path.clone()),
        None => std::env::current_dir()
            .ok()?
            .into_os_string()
            .into_string()
            .ok(),
    }
}

/// The home directory of the user hacmp runs as, from the password database, as bash expands
/// `~` when HOME is unset.
pub(super) fn password_database_home() -> Option<String> {
    const BUFFER_BYTES: usize = 16 * 1024;
    let mut buffer = vec![0 as libc::c_char; BUFFER_BYTES];
    // SAFETY: passwd is plain data that getpwuid_r fills in; every pointer passed is valid for
    // the size given, and the strings it points into live in `buffer`, which outlives their use.
    unsafe {
        let mut entry: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let status = libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        );
        if status != 0 || found.is_null() || entry.pw_dir.is_null() {
            return None;
        }
        CStr::from_ptr(entry.pw_dir)
            .to_str()
            .ok()
            .map(str::to_string)
    }
}
