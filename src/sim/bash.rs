//! The bash driver: the original heartbeat.sh runs unmodified as a real `bash` process whose
//! world-touching commands are functions (injected through BASH_ENV, see stubs.bash) that ask
//! the scheduler over two pipes.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::daemon::{Daemon, REAL_TIMEOUT};
use super::request::{Message, Outcome, Request, Value};
use super::world::VIRTUAL_CWD;
use crate::world::Signal;

const STUBS: &str = include_str!("stubs.bash");
/// The descriptors the stubs write requests to and read replies from.
const REQUEST_FD: RawFd = 7;
const REPLY_FD: RawFd = 8;
/// The descriptor on which the nohup stub keeps its stdout (the log file) for the simulator to
/// look at: fd 1 itself is briefly the request pipe while the stub writes its request.
const LOG_FD: RawFd = 9;
/// The longest request accepted from a stub; the script's are a few dozen bytes.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The most stray output kept between two requests.
const MAX_STRAY_BYTES: usize = 64 * 1024;

/// Everything needed to start the original on one node.
pub struct BashSetup<'a> {
    pub script: &'a Path,
    pub node: &'a str,
    /// The node's real working directory, which stands for `VIRTUAL_CWD`.
    pub cwd: &'a Path,
    /// Where this daemon's BASH_ENV file and output files go (outside `cwd`).
    pub files: &'a Path,
    pub overrides: &'a BTreeMap<String, String>,
    /// A unique word added to the command line, so the process is recognisably ours.
    pub marker: &'a str,
}

/// Output the script wrote itself (not through a stub), read as it grows.
struct Stray {
    file: File,
    pending: Vec<u8>,
}

impl Stray {
    /// The complete lines written since the last call.
    fn lines(&mut self) -> Vec<String> {
        let mut chunk = Vec::new();
        let _ = (&mut self.file)
            .take(MAX_STRAY_BYTES as u64)
            .read_to_end(&mut chunk);
        self.pending.extend_from_slice(&chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line[..end]).into_owned());
        }
        lines
    }
}

pub struct BashDaemon {
    child: Child,
    requests: File,
    replies: File,
    buffer: Vec<u8>,
    stdout: Stray,
    stderr: Stray,
    queue: VecDeque<Message>,
    script: String,
    overrides: Vec<String>,
    real_cwd: PathBuf,
    exited: bool,
}

/// A pipe whose ends are above the descriptors the child gets, so moving them into place can
/// never overwrite one another.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_child_fds(read)?, above_child_fds(write)?))
}

fn above_child_fds(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only creates a new descriptor.
    let raised = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if raised < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fcntl returned a fresh open descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(raised) })
}

/// Quotes a value for bash with single quotes.
fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

impl BashDaemon {
    pub fn start(setup: &BashSetup) -> Result<BashDaemon, String> {
        let io = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", setup.node);
        let mut env_text = STUBS.replace("@NODE@", setup.node);
        for (name, value) in setup.overrides {
            env_text.push_str(&format!("readonly {name}={}\n", single_quoted(value)));
        }
        let env_file = setup.files.join("bash_env");
        std::fs::write(&env_file, env_text).map_err(|e| io("write BASH_ENV", e))?;
        let stdout_path = setup.files.join("stdout");
        let stderr_path = setup.files.join("stderr");
        let stdout = File::create(&stdout_path).map_err(|e| io("create stdout", e))?;
        let stderr = File::create(&stderr_path).map_err(|e| io("create stderr", e))?;
        let (request_read, request_write) = pipe().map_err(|e| io("pipe", e))?;
        let (reply_read, reply_write) = pipe().map_err(|e| io("pipe", e))?;
        let (child_request, child_reply) = (request_write.as_raw_fd(), reply_read.as_raw_fd());
        let mut command = Command::new("bash");
        command
            .arg(setup.script)
            .arg(setup.marker)
            .current_dir(setup.cwd)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("BASH_ENV", &env_file)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        // SAFETY: dup2 is async-signal-safe; the source descriptors are open (the parent keeps
        // them until after the spawn) and above the targets.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(child_request, REQUEST_FD) < 0
                    || libc::dup2(child_reply, REPLY_FD) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| io("start bash", e))?;
        drop((request_write, reply_read));
        let reopen = |path: &Path| File::open(path).map_err(|e| io("read output", e));
        Ok(BashDaemon {
            child,
            requests: File::from(request_read),
            replies: File::from(reply_write),
            buffer: Vec::new(),
            stdout: Stray {
                file: reopen(&stdout_path)?,
                pending: Vec::new(),
            },
            stderr: Stray {
                file: reopen(&stderr_path)?,
                pending: Vec::new(),
            },
            queue: VecDeque::new(),
            script: setup.script.display().to_string(),
            overrides: setup.overrides.keys().cloned().collect(),
            real_cwd: setup.cwd.to_path_buf(),
            exited: false,
        })
    }

    /// Waits (with a real-time limit) until more request bytes arrive; false at end of file.
    fn fill(&mut self) -> Result<bool, String> {
        let mut poll = libc::pollfd {
            fd: self.requests.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = REAL_TIMEOUT.as_millis() as libc::c_int;
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout) };
        if ready == 0 {
            return Err("bash made no request in time".to_string());
        }
        let mut chunk = [0u8; 4096];
        match self.requests.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                if self.buffer.len() > MAX_REQUEST_BYTES {
                    return Err("bash sent an oversized request".to_string());
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(format!("reading bash's requests: {e}")),
        }
    }

    /// The next NUL-ended field, or `None` at end of file.
    fn field(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == 0) {
                let field: Vec<u8> = self.buffer.drain(..=end).collect();
                return Ok(Some(String::from_utf8_lossy(&field[..end]).into_owned()));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// The next stub call's arguments, or `None` when bash has ended.
    fn read_call(&mut self) -> Result<Option<Vec<String>>, String> {
        let Some(count) = self.field()? else {
            return Ok(None);
        };
        let count: usize = count
            .parse()
            .map_err(|_| format!("bad request header {count:?}"))?;
        let mut argv = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            argv.push(
                self.field()?
                    .ok_or("bash ended in the middle of a request")?,
            );
        }
        Ok(Some(argv))
    }

    /// Queues what bash printed itself: stdout lines, then stderr lines, with bash's own
    /// "SCRIPT: line N: " prefix written as hacmp writes it, and without the complaints about
    /// the readonly overrides (an artefact of the simulator).
    fn queue_stray_output(&mut self) {
        for line in self.stdout.lines() {
            self.queue.push_back(unanswered(Request::Print(line)));
        }
        let prefix = format!("{}: line ", self.script);
        for line in self.stderr.lines() {
            let line = match line.strip_prefix(&prefix).and_then(|rest| {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                rest[digits..].strip_prefix(": ")
            }) {
                Some(message) => {
                    let artefact = self
                        .overrides
                        .iter()
                        .any(|name| message == format!("{name}: readonly variable"));
                    if artefact {
                        continue;
                    }
                    format!("hacmp: {message}")
                }
                None => line,
            };
            self.queue.push_back(unanswered(Request::PrintError(line)));
        }
    }

    /// The world requests one stub call stands for; the last one is answered.
    fn translate(&self, argv: &[String]) -> Result<Vec<Request>, String> {
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        let request = match words.as_slice() {
            ["sleep", seconds] => Request::Sleep(seconds.parse().map_err(|_| unmodelled(&words))?),
            ["date", "+%s"] => Request::Now,
            ["test-f", path] => Request::IsRegularFile(path.to_string()),
            ["ls", "-1tr", dir] => Request::NewestEntry(dir.to_string()),
            ["stat", "-c", "%Y", path] => Request::ModificationTime(path.to_string()),
            ["stat", "-s", _] => {
                return Ok(vec![
                    Request::PrintError("stat: invalid option -- 's'".to_string()),
                    Request::PrintError("Try 'stat --help' for more information.".to_string()),
                ]);
            }
            ["touch", path] => Request::Touch(path.to_string()),
            ["pgrep", "-f", pattern] => Request::FindProcesses(pattern.to_string()),
            ["kill", pid] => Request::Signal(parse_pid(pid, &words)?, Signal::Term),
            ["kill", "-9", pid] => Request::Signal(parse_pid(pid, &words)?, Signal::Kill),
            ["nohup", shell_pid, command @ ..] if !command.is_empty() => Request::StartDetached {
                command: command.join(" "),
                log_file: self.log_file(shell_pid),
            },
            ["echo", args @ ..] => Request::Print(args.join(" ")),
            _ => return Err(unmodelled(&words)),
        };
        Ok(vec![request])
    }

    /// Where the background shell's stdout goes (its fd `LOG_FD`), as a virtual path.
    fn log_file(&self, shell_pid: &str) -> String {
        let link = std::fs::read_link(format!("/proc/{shell_pid}/fd/{LOG_FD}")).unwrap_or_default();
        match link.strip_prefix(&self.real_cwd) {
            Ok(inside) => format!("{VIRTUAL_CWD}/{}", inside.display()),
            Err(_) => link.display().to_string(),
        }
    }

    fn exit_status(&mut self) -> Result<u8, String> {
        let status = self.child.wait().map_err(|e| e.to_string())?;
        status
            .code()
            .map(|code| code as u8)
            .ok_or_else(|| format!("bash ended by a signal: {status}"))
    }
}

fn unanswered(request: Request) -> Message {
    Message::Request {
        request,
        wants_reply: false,
    }
}

fn unmodelled(words: &[&str]) -> String {
    format!(
        "the script ran `{}`, a form the simulator does not model",
        words.join(" ")
    )
}

fn parse_pid(pid: &str, words: &[&str]) -> Result<u32, String> {
    pid.parse().map_err(|_| unmodelled(words))
}

/// The exit status and output the stub gives back to the script.
fn shell_reply(outcome: &Outcome) -> (u8, String) {
    let failed = u8::from(outcome.error.is_some());
    match &outcome.value {
        Value::Unit => (failed, String::new()),
        Value::Flag(flag) => (u8::from(!flag), String::new()),
        Value::Name(name) if name.is_empty() => (2 * failed, String::new()),
        Value::Name(name) => (0, format!("{name}\n")),
        Value::Seconds(seconds) | Value::MaybeSeconds(Some(seconds)) => (0, format!("{seconds}\n")),
        Value::MaybeSeconds(None) => (1, String::new()),
        Value::Pids(pids) if pids.is_empty() => (1, String::new()),
        Value::Pids(pids) => (0, pids.iter().map(|pid| format!("{pid}\n")).collect()),
        other => unreachable!("the script never asks for a value like {other}"),
    }
}

impl Daemon for BashDaemon {
    fn next(&mut self) -> Result<Message, String> {
        loop {
            if let Some(message) = self.queue.pop_front() {
                return Ok(message);
            }
            if self.exited {
                return Err("bash was asked for a request after it ended".to_string());
            }
            let call = self.read_call()?;
            self.queue_stray_output();
            match call {
                Some(argv) => {
                    let mut requests = self.translate(&argv)?;
                    let last = requests.pop().expect("every call stands for a request");
                    self.queue.extend(requests.into_iter().map(unanswered));
                    self.queue.push_back(Message::Request {
                        request: last,
                        wants_reply: true,
                    });
                }
                None => {
                    self.exited = true;
                    let status = self.exit_status()?;
                    self.queue.push_back(Message::Exited(status));
                }
            }
        }
    }

    fn reply(&mut self, outcome: &Outcome) -> Result<(), String> {
        let (status, output) = shell_reply(outcome);
        let reply = format!("{status}\0{output}\0");
        self.replies
            .write_all(reply.as_bytes())
            .map_err(|e| format!("answering bash: {e}"))
    }

    fn halt(mut self: Box<Self>) {
        if !self.exited {
            let group = self.child.id() as libc::pid_t;
            // SAFETY: kill has no memory effects; the group is the one bash leads, which we
            // started in its own process group, so only its own subshells are in it.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}
