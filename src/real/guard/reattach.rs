//! Reattaching to a running guard: the runtime directory, the guard's socket, and the proof a
//! later run of the daemon makes before it takes a guard over (see the parent module and
//! docs/safe-profile.md, "Restart without failover").

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::nanos;
use crate::real::containment::start_time;
use crate::world::{GuardState, HeldLease};

/// The directory systemd creates for a unit's RuntimeDirectory=.
const RUNTIME_DIRECTORY_VARIABLE: &str = "RUNTIME_DIRECTORY";
/// Where the guard listens, and what the daemon that started it wrote, in the runtime directory.
pub(super) const SOCKET_NAME: &str = "guard.socket";
pub(super) const STATE_NAME: &str = "guard.state";
/// How long a daemon waits for a guard's answer on the socket; a guard that is paused or busy
/// for longer is not attached to (and keeps its deadline).
const ATTACH_LIMIT: Duration = Duration::from_secs(1);
/// The longest line either side sends over the socket; anything longer is not ours.
const MAX_LINE: u64 = 256;

/// The daemon's runtime directory, `$RUNTIME_DIRECTORY` (the first one when systemd lists
/// several), if set.
pub fn runtime_directory() -> Option<PathBuf> {
    let directories = std::env::var_os(RUNTIME_DIRECTORY_VARIABLE)?;
    let first = directories.to_string_lossy().split(':').next()?.to_string();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

/// `directory`, if it is safe to keep the guard's socket in: a directory that this user owns
/// and nobody else may enter, so that only this user (or root) can have made what is in it.
/// `Err` says why it is not.
pub(super) fn safe_directory(directory: &Path) -> Result<PathBuf, String> {
    let shown = directory.display();
    let metadata = fs::symlink_metadata(directory)
        .map_err(|error| format!("RUNTIME_DIRECTORY={shown}: {error}"))?;
    // SAFETY: geteuid has no failure mode and no memory effects.
    let user = unsafe { libc::geteuid() };
    if !metadata.is_dir() || metadata.uid() != user || metadata.mode() & 0o077 != 0 {
        return Err(format!(
            "RUNTIME_DIRECTORY={shown}: not a directory of user {user} with mode 0700 (RuntimeDirectoryMode=0700)"
        ));
    }
    Ok(directory.to_path_buf())
}

/// Writes `guard.state` (only this user may read it): which process the guard is and the
/// secret it was given, for a later run to check.
pub(super) fn write_state(runtime: &Path, pid: u32, secret: u64) -> io::Result<()> {
    let started = start_time(pid)?;
    let path = runtime.join(STATE_NAME);
    let hidden = runtime.join(format!(".{STATE_NAME}.{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&hidden)?;
    writeln!(file, "pid={pid} start={started} secret={secret}")?;
    fs::rename(&hidden, &path)
}

/// Reads the guard's first line and proves it is the guard the earlier run started: it is a
/// process of this user (SO_PEERCRED), the process (PID and start time) that run wrote into
/// `guard.state`, and it knows the secret that run gave it. Which executable it runs is no part
/// of the proof, so that a guard started by the hacmp before an upgrade is adopted by the one
/// after it (docs/safe-profile.md says why the rest suffices).
pub(super) fn prove(
    runtime: &Path,
    stream: UnixStream,
) -> Result<(BufReader<UnixStream>, HeldLease), String> {
    stream
        .set_read_timeout(Some(ATTACH_LIMIT))
        .map_err(|error| error.to_string())?;
    let credentials = peer_credentials(&stream).map_err(|error| error.to_string())?;
    let mut stream = BufReader::new(stream);
    let hello = read_line(&mut stream).ok_or("it did not say what it holds in time")?;
    let (held, secret) = parse_hello(&hello).ok_or("it does not speak as a guard")?;
    // SAFETY: geteuid has no failure mode and no memory effects.
    if credentials.uid != unsafe { libc::geteuid() } {
        return Err(format!("it runs as user {}", credentials.uid));
    }
    let pid = u32::try_from(credentials.pid).map_err(|_| "it has no PID here")?;
    let state = fs::read_to_string(runtime.join(STATE_NAME))
        .map_err(|error| format!("{STATE_NAME}: {error}"))?;
    let expected = format!(
        "pid={pid} start={} secret={secret}\n",
        start_time(pid).map_err(|error| error.to_string())?
    );
    if state != expected {
        return Err(format!(
            "process {pid} is not the one the previous run started, or not with its secret"
        ));
    }
    Ok((stream, held))
}

/// One line from the socket without its newline, if it came within the read timeout.
fn read_line(stream: &mut BufReader<UnixStream>) -> Option<String> {
    let mut line = String::new();
    let read = io::Read::take(stream, MAX_LINE).read_line(&mut line).ok()?;
    line.strip_suffix('\n')
        .filter(|_| read > 0)
        .map(str::to_string)
}

fn parse_hello(line: &str) -> Option<(HeldLease, u64)> {
    let mut words = line.split(' ');
    if words.next()? != "guard" {
        return None;
    }
    let mut field = |name: &str| -> Option<u128> {
        words
            .next()?
            .strip_prefix(name)?
            .strip_prefix('=')?
            .parse()
            .ok()
    };
    let token = u64::try_from(field("token")?).ok()?;
    let incarnation = u64::try_from(field("incarnation")?).ok()?;
    let deadline = nanos(field("deadline")?);
    let secret = u64::try_from(field("secret")?).ok()?;
    words.next().is_none().then_some((
        HeldLease {
            token,
            incarnation,
            deadline,
        },
        secret,
    ))
}

/// How an attached guard's application ended, if it has: its `end` line, or the connection
/// closing without one (the guard died, leaving its application's tree to the daemon).
pub(super) fn attached_end(stream: &mut BufReader<UnixStream>) -> Option<GuardState> {
    let nothing_waiting =
        stream.buffer().is_empty() && !wait_readable(stream.get_ref().as_raw_fd(), Duration::ZERO);
    if nothing_waiting {
        return None;
    }
    let _ = stream.get_ref().set_read_timeout(Some(ATTACH_LIMIT));
    Some(match read_line(stream).as_deref() {
        Some("end fenced") => GuardState::Fenced,
        Some("end exited" | "end stopped") => GuardState::Exited,
        _ => GuardState::Lost,
    })
}

/// The user and PID of the process at the other end of a unix socket, from the kernel.
pub(super) fn peer_credentials(stream: &UnixStream) -> io::Result<libc::ucred> {
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut size = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `size` bytes into the valid ucred.
    let status = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut credentials).cast(),
            &mut size,
        )
    };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(credentials)
}

/// Whether `fd` has input (or its end) waiting, within `wait`.
pub(super) fn wait_readable(fd: RawFd, wait: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes the one valid pollfd passed.
    unsafe { libc::poll(&mut poll, 1, millis) > 0 }
}

/// The socket a later run of the daemon attaches through.
pub(super) struct Listener {
    socket: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode, to tell it from a file put in its place.
    identity: (u64, u64),
    secret: u64,
}

impl Listener {
    /// Listens on `path`, replacing what a guard before left there; `None` (said on stderr)
    /// when it cannot, and then no later run can attach.
    pub(super) fn bind(path: PathBuf, secret: u64) -> Option<Listener> {
        let _ = fs::remove_file(&path);
        let bound = UnixListener::bind(&path).and_then(|socket| {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            socket.set_nonblocking(true)?;
            let metadata = fs::symlink_metadata(&path)?;
            Ok((socket, (metadata.dev(), metadata.ino())))
        });
        match bound {
            Ok((socket, identity)) => Some(Listener {
                socket,
                path,
                identity,
                secret,
            }),
            Err(error) => {
                eprintln!("hacmp guard: {}: {error}", path.display());
                None
            }
        }
    }

    /// Whether our socket file is gone (its directory removed), so nobody can reach us.
    pub(super) fn gone(&self) -> bool {
        fs::symlink_metadata(&self.path).map_or(true, |metadata| {
            (metadata.dev(), metadata.ino()) != self.identity
        })
    }

    /// Accepts a connection from a process of our own user and says what we hold.
    pub(super) fn accept(&self, held: &HeldLease) -> Option<UnixStream> {
        let (mut stream, _) = self.socket.accept().ok()?;
        let credentials = peer_credentials(&stream).ok()?;
        // SAFETY: geteuid has no failure mode and no memory effects.
        if credentials.uid != unsafe { libc::geteuid() } {
            return None;
        }
        stream.set_nonblocking(false).ok()?;
        stream.set_write_timeout(Some(ATTACH_LIMIT)).ok()?;
        writeln!(
            stream,
            "guard token={} incarnation={} deadline={} secret={}",
            held.token,
            held.incarnation,
            held.deadline.as_nanos(),
            self.secret
        )
        .ok()?;
        Some(stream)
    }

    /// The listening socket's file descriptor, to wait on.
    pub(super) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Removes our socket file, unless something else has taken its place, as the guard exits.
    pub(super) fn give_up(self) {
        if !self.gone() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
