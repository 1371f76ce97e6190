//! Containing the safe profile's application: everything startCmd starts (children,
//! grandchildren, setsid'd and double-forked daemons) is one unit, killed as one by mechanisms
//! the kernel enforces.
//!
//! Where a cgroup v2 can be had, each guard's application runs in a cgroup of its own,
//! `app-GUARDPID-GUARDSTART` under the containment root: the unit's cgroup under systemd with
//! Delegate=yes, otherwise `hacmp-HASH` (of startCmdLogFile, so that a restarted daemon finds it
//! again) under the daemon's own cgroup. No process leaves it by forking, setsid or
//! double-forking; `cgroup.kill` kills all of it at once and `cgroup.events` says when nothing is
//! left. The name carries the guard's identity, so a daemon tells a cgroup whose guard is gone
//! (`Containment::sweep`) from one a live guard holds.
//!
//! In any case the daemon and the guard are child subreapers (PR_SET_CHILD_SUBREAPER): orphans
//! of the application reparent to the guard, or to the daemon once the guard is gone, never to
//! init. Without a cgroup, that is the containment: the tree is walked through
//! /proc/PID/task/PID/children and peeled child by child until none is left.
//!
//! The guard's kill path allocates nothing: the cgroup's files are opened beforehand, paths are
//! formatted and files read into buffers on the stack.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The prefix of an application's cgroup under the containment root.
const APPLICATION_PREFIX: &str = "app-";
/// How often a kill is repeated while something of the tree is still there.
const KILL_RECHECK: Duration = Duration::from_millis(10);
/// How often removing an empty cgroup is tried while the kernel says it is busy.
const REMOVE_TRIES: usize = 100;
/// The most PIDs one walk of the tree holds at once; a larger tree takes more rounds.
const WALK_CAPACITY: usize = 1024;
/// The daemon's OOM score adjustment: far below any application's, above the guard's -1000.
const DAEMON_OOM_SCORE_ADJ: i32 = -900;
/// The guard's: the OOM killer never picks it.
pub const GUARD_OOM_SCORE_ADJ: i32 = -1000;

/// How the application's process tree is held together on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Containment {
    /// Each application runs in a cgroup of its own under this directory.
    Cgroup(PathBuf),
    /// No cgroup can be had, for the reason given: the subreapers hold the tree.
    Subreaper(String),
}

impl Containment {
    /// What the daemon of `log_file` would use on this host, creating nothing (`hacmp check`).
    pub fn plan(log_file: &str) -> Containment {
        match cgroup_root(log_file) {
            Ok(root) => Containment::Cgroup(root),
            Err(why) => Containment::Subreaper(why),
        }
    }

    /// What the daemon of `log_file` uses, once it has made sure it can create the containment
    /// root. A root it created for that is removed again: each guard creates it for its
    /// application's cgroup and the last one out removes it, so that a daemon that is never
    /// master leaves no cgroup behind.
    pub fn establish(log_file: &str) -> Containment {
        match Containment::plan(log_file) {
            Containment::Cgroup(root) if root.is_dir() => Containment::Cgroup(root),
            Containment::Cgroup(root) => match fs::create_dir_all(&root) {
                Ok(()) => {
                    let _ = fs::remove_dir(&root);
                    Containment::Cgroup(root)
                }
                Err(error) => Containment::Subreaper(format!("{}: {error}", root.display())),
            },
            subreaper => subreaper,
        }
    }

    /// One line for the start-up message and `hacmp check`.
    pub fn describe(&self) -> String {
        match self {
            Containment::Cgroup(root) => {
                format!("a cgroup per application under {}", root.display())
            }
            Containment::Subreaper(why) => {
                format!("subreaper process tree only, no cgroup ({why})")
            }
        }
    }

    /// The cgroup root, when cgroups are in force.
    pub fn root(&self) -> Option<&Path> {
        match self {
            Containment::Cgroup(root) => Some(root),
            Containment::Subreaper(_) => None,
        }
    }

    /// The cgroup of the application that the guard with PID `guard` holds, while that guard's
    /// start time can still be read (it runs, or is a zombie not yet reaped).
    pub fn application_cgroup(&self, guard: u32) -> Option<PathBuf> {
        let root = self.root()?;
        let started = start_time(guard).ok()?;
        Some(root.join(application_cgroup_name(guard, started)))
    }

    /// Kills the application of every cgroup under the root whose guard is gone, waits until
    /// nothing of it is left and removes the cgroup; a cgroup whose guard still runs is left
    /// alone. Returns how many were ended.
    pub fn sweep(&self) -> usize {
        let Some(entries) = self.root().and_then(|root| fs::read_dir(root).ok()) else {
            return 0;
        };
        let mut ended = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some((guard, started)) = name.to_str().and_then(parse_application_cgroup_name)
            else {
                continue;
            };
            if running_since(guard).ok() == Some(started) {
                continue;
            }
            if let Ok(cgroup) = ApplicationCgroup::open(&entry.path()) {
                cgroup.kill_and_wait();
                cgroup.remove();
                ended += 1;
            }
        }
        ended
    }
}

/// The name of the cgroup of the application held by the guard with this PID and start time.
pub fn application_cgroup_name(guard: u32, started: u64) -> String {
    format!("{APPLICATION_PREFIX}{guard}-{started}")
}

fn parse_application_cgroup_name(name: &str) -> Option<(u32, u64)> {
    let (guard, started) = name.strip_prefix(APPLICATION_PREFIX)?.split_once('-')?;
    Some((guard.parse().ok()?, started.parse().ok()?))
}

/// Where applications' cgroups go on this host for the daemon of `log_file`, or why nowhere.
fn cgroup_root(log_file: &str) -> Result<PathBuf, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|error| format!("/proc/self/mountinfo: {error}"))?;
    let mount = cgroup2_mount(&mountinfo)
        .ok_or("no cgroup2 filesystem is mounted (/proc/self/mountinfo)")?;
    let own_table = fs::read_to_string("/proc/self/cgroup")
        .map_err(|error| format!("/proc/self/cgroup: {error}"))?;
    let own =
        unified_cgroup(&own_table).ok_or("this process has no cgroup v2 (/proc/self/cgroup)")?;
    let here = mount.join(own.trim_start_matches('/'));
    if std::env::var_os("INVOCATION_ID").is_some() && own != "/" {
        // A systemd service: its cgroup is ours to divide only when systemd delegated it.
        return if delegated(&here) {
            Ok(here)
        } else {
            Err(format!(
                "{}: the systemd unit has no Delegate=yes",
                here.display()
            ))
        };
    }
    if !writable(&here) {
        return Err(format!("{}: cannot create a cgroup here", here.display()));
    }
    // The log file's absolute path names this daemon's application on this host.
    let log_file = std::path::absolute(log_file).unwrap_or_else(|_| PathBuf::from(log_file));
    Ok(here.join(format!(
        "hacmp-{:016x}",
        fnv1a(log_file.as_os_str().as_bytes())
    )))
}

/// The mount point of the first cgroup2 filesystem in a mountinfo table.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (mount, filesystem) = line.split_once(" - ")?;
        if filesystem.split(' ').next()? != "cgroup2" {
            return None;
        }
        mount
            .split(' ')
            .nth(4)
            .map(|point| PathBuf::from(unescape_octal(point)))
    })
}

/// mountinfo writes blanks, tabs, newlines and backslashes in paths as `\OOO`.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let octal = bytes.get(at + 1..at + 4).filter(|digits| {
            bytes[at] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match octal {
            Some(digits) => {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |value, digit| value * 8 + (digit - b'0')),
                );
                at += 4;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path (`0::PATH`) in a /proc/PID/cgroup table.
fn unified_cgroup(table: &str) -> Option<&str> {
    table.lines().find_map(|line| line.strip_prefix("0::"))
}

/// Whether systemd delegated this cgroup: it marks delegated cgroups with an extended
/// attribute, `trusted.delegate` (or `user.delegate` for a user's manager).
fn delegated(cgroup: &Path) -> bool {
    let Ok(path) = CString::new(cgroup.as_os_str().as_bytes()) else {
        return false;
    };
    [c"trusted.delegate", c"user.delegate"].iter().any(|name| {
        let mut value = [0u8; 8];
        // SAFETY: getxattr writes at most value.len() bytes into the valid buffer.
        let length = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        length == 1 && value[0] == b'1'
    })
}

fn writable(directory: &Path) -> bool {
    let Ok(path) = CString::new(directory.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access reads the valid nul-terminated path.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// 64-bit FNV-1a: a name that stays the same across upgrades of hacmp, unlike the standard
/// library's hasher, whose output may change between releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A process's start time in clock ticks since boot (/proc/PID/stat, field 22): with its PID it
/// names one process for the whole boot, even after the PID is reused.
pub fn start_time(pid: u32) -> io::Result<u64> {
    stat_fields(pid).map(|(_, started)| started)
}

/// The start time of a process that still runs: an error for one that ended, even while it
/// waits as a zombie for its parent (or init) to reap it.
fn running_since(pid: u32) -> io::Result<u64> {
    match stat_fields(pid)? {
        ('Z' | 'X', _) => Err(io::Error::other(format!("process {pid} has ended"))),
        (_, started) => Ok(started),
    }
}

/// A process's state (field 3) and start time (field 22) from /proc/PID/stat.
fn stat_fields(pid: u32) -> io::Result<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold blanks and parentheses; it ends at the last ')'.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after_name.split_ascii_whitespace();
    let state = fields.next().and_then(|field| field.chars().next());
    let started = fields.nth(18).and_then(|field| field.parse().ok());
    state
        .zip(started)
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: no state or start time")))
}

/// An application's cgroup, its files open so that killing it needs no allocation.
pub struct ApplicationCgroup {
    path: PathBuf,
    procs: OwnedFd,
    kill: Option<OwnedFd>,
    events: OwnedFd,
}

impl ApplicationCgroup {
    /// Creates the cgroup, and the root above it when no other application's cgroup keeps it.
    pub fn create(path: &Path) -> io::Result<ApplicationCgroup> {
        const TRIES: usize = 3;
        let mut tried = 1;
        loop {
            match fs::create_dir_all(path) {
                // The last guard out of the root removed it between our two mkdirs.
                Err(error) if error.kind() == io::ErrorKind::NotFound && tried < TRIES => {
                    tried += 1;
                }
                created => break created?,
            }
        }
        ApplicationCgroup::open(path)
    }

    pub fn open(path: &Path) -> io::Result<ApplicationCgroup> {
        let open = |name: &str, flags: libc::c_int| -> io::Result<OwnedFd> {
            let file = CString::new(path.join(name).as_os_str().as_bytes())?;
            // SAFETY: open reads the valid nul-terminated path; the descriptor is ours.
            let fd = unsafe { libc::open(file.as_ptr(), flags | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd is a descriptor open only here.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        Ok(ApplicationCgroup {
            path: path.to_path_buf(),
            procs: open("cgroup.procs", libc::O_RDWR)?,
            // cgroup.kill came with Linux 5.14; before it, every process is signalled by PID.
            kill: open("cgroup.kill", libc::O_WRONLY).ok(),
            events: open("cgroup.events", libc::O_RDONLY)?,
        })
    }

    /// The descriptor of `cgroup.procs`, open for writing: a child that writes "0" to it (between
    /// fork and exec) moves itself in.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// Sends `signal` to every process in the cgroup.
    pub fn signal_all(&self, signal: libc::c_int) {
        for_each_number(self.procs.as_raw_fd(), |pid| {
            // SAFETY: kill has no memory effects; the process is in the application's cgroup.
            unsafe { libc::kill(pid, signal) };
        });
    }

    /// The processes in the cgroup now.
    pub fn members(&self) -> Vec<libc::pid_t> {
        let mut members = Vec::new();
        for_each_number(self.procs.as_raw_fd(), |pid| members.push(pid));
        members
    }

    /// Whether any process is left in the cgroup (`populated 1` in cgroup.events).
    pub fn populated(&self) -> bool {
        let mut buffer = [0u8; 256];
        // SAFETY: pread writes at most buffer.len() bytes into the valid buffer.
        let read = unsafe {
            libc::pread(
                self.events.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        let Ok(read) = usize::try_from(read) else {
            // An unreadable cgroup.events: the cgroup was removed, so nothing is left in it.
            return false;
        };
        buffer[..read]
            .windows(b"populated 1".len())
            .any(|window| window == b"populated 1")
    }

    /// SIGKILL to every process in the cgroup, again until none is left.
    pub fn kill_and_wait(&self) {
        loop {
            let killed_at_once = self.kill.as_ref().is_some_and(|kill| {
                // SAFETY: write reads one byte of the static buffer.
                unsafe { libc::write(kill.as_raw_fd(), b"1".as_ptr().cast(), 1) == 1 }
            });
            if !killed_at_once {
                self.signal_all(libc::SIGKILL);
            }
            if !self.populated() {
                return;
            }
            std::thread::sleep(KILL_RECHECK);
        }
    }

    /// Removes the cgroup, now empty, and the root above it if that is empty too (another
    /// guard's cgroup or the daemon keeps it otherwise).
    pub fn remove(self) {
        let ApplicationCgroup { path, .. } = self;
        // Right after its last process exited the kernel may still count it busy a moment.
        for _ in 0..REMOVE_TRIES {
            match fs::remove_dir(&path) {
                Err(error) if error.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(KILL_RECHECK);
                }
                _ => break,
            }
        }
        if let Some(root) = path.parent()
            && root
                .file_name()
                .is_some_and(|name| name.as_bytes().starts_with(b"hacmp-"))
        {
            let _ = fs::remove_dir(root);
        }
    }
}

/// Calls `each` for every decimal number in the file open at `fd`, read from its start
/// through a buffer on the stack.
fn for_each_number(fd: RawFd, mut each: impl FnMut(libc::pid_t)) {
    let mut buffer = [0u8; 4096];
    let mut offset: libc::off_t = 0;
    let mut number: Option<libc::pid_t> = None;
    loop {
        // SAFETY: pread writes at most buffer.len() bytes into the valid buffer.
        let read = unsafe { libc::pread(fd, buffer.as_mut_ptr().cast(), buffer.len(), offset) };
        let Ok(read) = usize::try_from(read) else {
            break;
        };
        if read == 0 {
            break;
        }
        offset += read as libc::off_t;
        for byte in &buffer[..read] {
            if byte.is_ascii_digit() {
                let digit = libc::pid_t::from(byte - b'0');
                number = Some(number.unwrap_or(0).saturating_mul(10).saturating_add(digit));
            } else if let Some(done) = number.take() {
                each(done);
            }
        }
    }
    if let Some(done) = number {
        each(done);
    }
}

/// Makes this process a child subreaper: its descendants' orphans reparent to it, not to init.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER has no memory effects.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The daemon's side: a subreaper, so that the application's orphans come to it once the guard
/// is gone, and a low OOM score. Returns its OOM score adjustment from before, which the
/// application is to keep.
pub fn prepare_daemon() -> Option<i32> {
    if let Err(error) = become_subreaper() {
        eprintln!("hacmp: cannot become a child subreaper: {error}");
    }
    let before = oom_score_adj()?;
    if let Err(error) = set_oom_score_adj(before.min(DAEMON_OOM_SCORE_ADJ)) {
        // Lowering it needs CAP_SYS_RESOURCE; without it the daemon and the guard keep theirs.
        eprintln!(
            "hacmp: warning: cannot lower the OOM score of the daemon and the guard ({error}; it needs CAP_SYS_RESOURCE)"
        );
    }
    Some(before)
}

/// This process's OOM score adjustment (/proc/self/oom_score_adj).
pub fn oom_score_adj() -> Option<i32> {
    fs::read_to_string("/proc/self/oom_score_adj")
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub fn set_oom_score_adj(value: i32) -> io::Result<()> {
    fs::write("/proc/self/oom_score_adj", value.to_string())
}

/// What the application's first process does between fork and exec: it joins its cgroup and
/// takes back the OOM score adjustment the guard lowered for itself.
#[derive(Debug, Clone, Copy)]
pub struct Confinement {
    /// `ApplicationCgroup::procs_fd` of its cgroup.
    pub cgroup_procs: Option<RawFd>,
    pub oom_score_adj: Option<i32>,
}

impl Confinement {
    /// Runs in the child between fork and exec: only async-signal-safe calls, no allocation.
    pub fn enter(&self) -> io::Result<()> {
        if let Some(procs) = self.cgroup_procs {
            // SAFETY: write reads one byte of the static buffer; "0" moves the writer.
            if unsafe { libc::write(procs, b"0".as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(score) = self.oom_score_adj {
            let path = StackPath::new().text(b"/proc/self/oom_score_adj");
            let value = StackPath::new().number(score);
            // SAFETY: open reads the nul-terminated path on the stack, write the digits there.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let written = libc::write(fd, value.as_ptr().cast(), value.length);
                libc::close(fd);
                if written != value.length as isize {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}

/// A path or number of at most 63 bytes built on the stack, nul-terminated, for calls between
/// fork and exec or on the kill path.
struct StackPath {
    bytes: [u8; 64],
    length: usize,
}

impl StackPath {
    fn new() -> StackPath {
        StackPath {
            bytes: [0; 64],
            length: 0,
        }
    }

    fn text(mut self, text: &[u8]) -> StackPath {
        for byte in text {
            assert!(self.length + 1 < self.bytes.len(), "stack paths are short");
            self.bytes[self.length] = *byte;
            self.length += 1;
        }
        self
    }

    fn number(mut self, value: i32) -> StackPath {
        if value < 0 {
            self = self.text(b"-");
        }
        let mut digits = [0u8; 12];
        let mut at = digits.len();
        let mut left = value.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (left % 10) as u8;
            left /= 10;
            if left == 0 {
                break;
            }
        }
        self.text(&digits[at..])
    }

    fn as_ptr(&self) -> *const libc::c_char {
        self.bytes.as_ptr().cast()
    }
}

/// The PIDs of the children of `pid`'s main thread (/proc/PID/task/PID/children), at most
/// `into.len()`; how many were written.
fn children(pid: libc::pid_t, into: &mut [libc::pid_t]) -> usize {
    let path = StackPath::new()
        .text(b"/proc/")
        .number(pid)
        .text(b"/task/")
        .number(pid)
        .text(b"/children");
    // SAFETY: open reads the nul-terminated path on the stack.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return 0;
    }
    let mut count = 0;
    for_each_number(fd, |child| {
        if count < into.len() {
            into[count] = child;
            count += 1;
        }
    });
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    count
}

/// Sends `signal` to every descendant of `root` (not to `root`), walking the tree depth first
/// with a stack of PIDs on the stack.
pub fn signal_descendants(root: libc::pid_t, signal: libc::c_int) {
    let mut pending = [0 as libc::pid_t; WALK_CAPACITY];
    let mut count = children(root, &mut pending);
    while count > 0 {
        count -= 1;
        let pid = pending[count];
        // SAFETY: kill has no memory effects; the process descends from `root`.
        unsafe { libc::kill(pid, signal) };
        count += children(pid, &mut pending[count..]);
    }
}

/// Kills every child of this process's main thread, with all its descendants, reaps
/// each by its PID, and again until none is left: as a child subreaper this process receives
/// every orphan of the tree, so when it has no child left, nothing of the tree is left either.
/// A process that is no subreaper (a test's) receives no orphans: it does nothing.
pub fn kill_children_and_wait() {
    let mut subreaper: libc::c_int = 0;
    // SAFETY: prctl writes one int into the valid pointer.
    let asked = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut subreaper) };
    if asked != 0 || subreaper == 0 {
        return;
    }
    // SAFETY: getpid has no failure mode and no memory effects.
    let own = unsafe { libc::getpid() };
    let mut found = [0 as libc::pid_t; WALK_CAPACITY];
    loop {
        let count = children(own, &mut found);
        if count == 0 {
            return;
        }
        for &child in &found[..count] {
            signal_descendants(child, libc::SIGKILL);
            // SAFETY: kill and waitpid have no memory effects beyond the null status pointer.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Reaps those of `pids` that are this process's children and have ended, leaving the others.
pub fn reap(pids: &[libc::pid_t]) {
    for &pid in pids {
        // SAFETY: waitpid with a null status has no memory effects; it fails for a stranger.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    }
}

/// Whether this process's main thread has a child.
pub fn has_children() -> bool {
    // SAFETY: getpid has no failure mode and no memory effects.
    let own = unsafe { libc::getpid() };
    children(own, &mut [0 as libc::pid_t; 1]) > 0
}

/// Reaps the orphans that reparented to this process and have ended, leaving `keep`'s status
/// for whoever waits for it: a subreaper must, or they stay zombies.
pub fn reap_orphans(keep: libc::pid_t) {
    loop {
        // SAFETY: waitid writes into the valid siginfo; WNOWAIT leaves the child waitable.
        let mut info = unsafe { std::mem::zeroed::<libc::siginfo_t>() };
        let status = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is valid in a siginfo that waitid filled for an ended child.
        let pid = unsafe { info.si_pid() };
        if status != 0 || pid == 0 || pid == keep {
            return;
        }
        // SAFETY: waitpid with a null status has no memory effects.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_comes_from_mountinfo_wherever_it_is() {
        let hybrid = "25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let escaped = "30 23 0:26 / /mnt/c\\040g rw - cgroup2 none rw\n";
        assert_eq!(cgroup2_mount(escaped), Some(PathBuf::from("/mnt/c g")));
        assert_eq!(cgroup2_mount("1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn the_unified_cgroup_is_the_zero_line() {
        let table = "4:memory:/a/b\n0::/system.slice/hacmp@x.service\n";
        assert_eq!(unified_cgroup(table), Some("/system.slice/hacmp@x.service"));
        assert_eq!(unified_cgroup("4:memory:/a\n"), None);
    }

    #[test]
    fn application_cgroup_names_read_back() {
        let name = application_cgroup_name(4242, 987_654);
        assert_eq!(parse_application_cgroup_name(&name), Some((4242, 987_654)));
        assert_eq!(parse_application_cgroup_name("supervisor"), None);
        assert_eq!(parse_application_cgroup_name("app-x-1"), None);
    }

    #[test]
    fn the_root_name_is_fnv1a_of_the_log_file() {
        // FNV-1a's published test vectors: the name must not change between releases.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn stack_paths_format_numbers() {
        let path = StackPath::new()
            .text(b"/proc/")
            .number(0)
            .text(b"/")
            .number(123_456);
        assert_eq!(&path.bytes[..path.length + 1], b"/proc/0/123456\0");
        let negative = StackPath::new().number(-1000);
        assert_eq!(&negative.bytes[..negative.length], b"-1000");
    }
}
