//! Runs the commands of a command substitution with `/bin/sh -c`, bounded in time and in output.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most output a substitution may produce.
pub(super) const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// How long a substitution may run.
pub(super) const TIMEOUT: Duration = Duration::from_secs(10);

/// How often to check whether the shell has exited after its output ended.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The output of `/bin/sh -c script`, with NUL bytes and trailing newlines removed as bash
/// removes them. The shell gets exactly `environment`; its exit status is ignored, as an
/// assignment ignores it.
pub(super) fn run<'e>(
    script: &str,
    environment: impl IntoIterator<Item = (&'e String, &'e String)>,
) -> Result<String, String> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .envs(environment)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Its own process group, so that on a timeout the commands it started end with it.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run /bin/sh: {e}"))?;
    let deadline = Instant::now() + TIMEOUT;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut output = Vec::new();
        let result = (&mut stdout)
            .take(MAX_OUTPUT_BYTES as u64 + 1)
            .read_to_end(&mut output)
            .map(|_| output);
        // The receiver is gone only after a timeout, when nobody needs the output.
        let _ = sender.send(result);
    });
    let output = match receiver.recv_timeout(TIMEOUT) {
        Ok(Ok(output)) if output.len() <= MAX_OUTPUT_BYTES => output,
        Ok(Ok(_)) => {
            end_group(&mut child);
            return Err(format!(
                "the output is longer than the limit of {MAX_OUTPUT_BYTES} bytes"
            ));
        }
        Ok(Err(e)) => {
            end_group(&mut child);
            return Err(format!("cannot read the output: {e}"));
        }
        Err(_) => {
            end_group(&mut child);
            return Err(timed_out());
        }
    };
    wait_until(&mut child, deadline)?;
    let output: Vec<u8> = output.into_iter().filter(|&b| b != 0).collect();
    let text = String::from_utf8(output).map_err(|_| "the output is not UTF-8".to_string())?;
    Ok(text.trim_end_matches('\n').to_string())
}

fn timed_out() -> String {
    format!("did not finish within {} seconds", TIMEOUT.as_secs())
}

/// Waits for the shell, which has closed its output, to exit.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<(), String> {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL_INTERVAL),
            Ok(None) => {
                end_group(child);
                return Err(timed_out());
            }
            Err(e) => return Err(format!("cannot wait for /bin/sh: {e}")),
        }
    }
}

/// Kills the process group this module started for `child`, then reaps the child.
fn end_group(child: &mut Child) {
    let group = i32::try_from(child.id()).expect("process ids fit in pid_t");
    // SAFETY: kill has no memory-safety preconditions. The group is the one created for this
    // child, whose leader is not yet reaped, so the id cannot have been reused.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
    let _ = child.wait();
}
