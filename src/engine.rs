//! The monitoring loop of heartbeat.sh, step for step (the compat profile).
//!
//! Read it beside the script: every function here is the script's function of the same name, and
//! every world call is the command the script runs at that point. The strings printed are the
//! script's own, typos included, because operators grep their journals for them.

use crate::config::Variables;
use crate::event::{Event, Wait};
use crate::words;
use crate::world::{Signal, Step, World};

/// How the loop ended. The script's loop never ends by itself except through one shell error,
/// which `hasHeartBeat` runs into when a heartbeat file vanishes between two of its commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// bash aborted the `while` loop on an arithmetic syntax error and the script exited with
    /// status 1 (systemd's `Restart=on-failure` then starts it again).
    ArithmeticError,
}

impl Ended {
    /// The exit status bash leaves behind.
    pub fn exit_status(self) -> u8 {
        match self {
            Ended::ArithmeticError => 1,
        }
    }
}

/// The duration of the conflict-avoidance pause in `startInstance`.
pub const START_RECHECK_SECONDS: u64 = 5;
/// How long `killInstance` waits between SIGTERM and SIGKILL.
const GRACEFUL_KILL_SECONDS: u64 = 30;

/// Runs the main loop of heartbeat.sh until it ends or the world halts it.
pub fn run(world: &mut dyn World, vars: &Variables) -> Step<Ended> {
    let own_heartbeat = format!("{}/{}", vars.heart_beat_dir, vars.host_name);
    world.print("starting monitoring")?;
    loop {
        world.report(&Event::RoundEnds);
        world.print(&format!("In monitoring loop sleep {}", vars.loop_time))?;
        world.sleep(vars.loop_time)?;
        world.report(&Event::RoundBegins);
        let maintenance = world.is_regular_file(&vars.maintenance_file)?;
        world.report(&Event::Maintenance(maintenance));
        if maintenance {
            world.print("We are in maintenance mode, so we do nothing")?;
            continue;
        }
        let latest = world.newest_entry(&vars.heart_beat_dir)?;
        if latest.is_empty() {
            world.touch(&own_heartbeat)?;
            start_instance(world, vars)?;
            continue;
        }
        if latest == vars.host_name {
            if is_alive(world, vars)? {
                world.touch(&own_heartbeat)?;
                continue;
            }
            world.report(&Event::Incident);
            send_incident(world)?;
            world.sleep(vars.faile_over_time)?;
            world.sleep(vars.faile_over_time)?;
        } else {
            world.report(&Event::Standby {
                master: Some(first_word(&latest).to_string()).filter(|host| !host.is_empty()),
            });
            world.print("We are not master, so kill any running instances")?;
            kill_instance(world, vars)?;
        }
        let latest = world.newest_entry(&vars.heart_beat_dir)?;
        world.print(&echo_unquoted(&latest))?;
        world.print("checking last heartbeat if we shll tak eover")?;
        match has_heart_beat(world, vars, first_word(&latest))? {
            HeartBeat::Alive => {}
            HeartBeat::Absent => {
                world.print("no master taking over")?;
                world.print("trying to be master")?;
                world.touch(&own_heartbeat)?;
                start_instance(world, vars)?;
            }
            HeartBeat::ScriptAborted => return Ok(Ended::ArithmeticError),
        }
    }
}

fn send_incident(world: &mut dyn World) -> Step<()> {
    world.print("####")?;
    world.print("#### ERROR, we sent last heartbeat but is not alive")?;
    world.print("####")
}

/// `pgrep -f "$pgrepProgramName"` with its output going to stdout, as in the script.
fn is_alive(world: &mut dyn World, vars: &Variables) -> Step<bool> {
    let pids = world.find_processes(&vars.pgrep_program_name)?;
    for pid in &pids {
        world.print(&pid.to_string())?;
    }
    let running = !pids.is_empty();
    if running {
        world.report(&Event::Running { pids });
    }
    Ok(running)
}

enum HeartBeat {
    Alive,
    Absent,
    /// The script died in an arithmetic expansion; see `Ended::ArithmeticError`.
    ScriptAborted,
}

/// `hasHeartBeat $latestHB`: is the host that wrote the newest heartbeat still alive?
fn has_heart_beat(world: &mut dyn World, vars: &Variables, host: &str) -> Step<HeartBeat> {
    if host.is_empty() {
        return Ok(HeartBeat::Absent);
    }
    let path = format!("{}/{}", vars.heart_beat_dir, host);
    if !world.is_regular_file(&path)? {
        return Ok(HeartBeat::Absent);
    }
    // The script runs `eval $(stat -s FILE)`, a BSD option that GNU stat rejects on every call;
    // its two error lines are part of what operators see in the journal.
    world.print_error("stat: invalid option -- 's'")?;
    world.print_error("Try 'stat --help' for more information.")?;
    let modified = world.modification_time(&path)?;
    let current = world.now()?;
    world.print(&current.to_string())?;
    let Some(modified) = modified else {
        // `echo $st_mtime` prints an empty line, then `$(($curentTime - $st_mtime))` is a
        // syntax error, which makes bash abandon the whole main loop and exit.
        world.print("")?;
        world.print_error(&format!(
            "hacmp: {current} - : syntax error: operand expected (error token is \"- \")"
        ))?;
        return Ok(HeartBeat::ScriptAborted);
    };
    world.print(&modified.to_string())?;
    let age = current - modified;
    let margin = age - vars.faile_over_time as i64;
    world.report(&Event::HeartbeatAge {
        host: host.to_string(),
        seconds: age,
    });
    world.print(&age.to_string())?;
    world.print(&margin.to_string())?;
    if margin < 0 {
        world.print(&format!("Instance is alive on node {host}"))?;
        Ok(HeartBeat::Alive)
    } else {
        world.print("Instance down")?;
        Ok(HeartBeat::Absent)
    }
}

fn kill_instance(world: &mut dyn World, vars: &Variables) -> Step<()> {
    world.print("Killing server Instance")?;
    signal_all(world, vars, Signal::Term)?;
    world.report(&Event::Waits {
        wait: Wait::KillGrace,
        seconds: GRACEFUL_KILL_SECONDS,
    });
    world.sleep(GRACEFUL_KILL_SECONDS)?;
    signal_all(world, vars, Signal::Kill)
}

fn signal_all(world: &mut dyn World, vars: &Variables, signal: Signal) -> Step<()> {
    for pid in world.find_processes(&vars.pgrep_program_name)? {
        world.signal(pid, signal)?;
    }
    Ok(())
}

fn start_instance(world: &mut dyn World, vars: &Variables) -> Step<()> {
    world.print("in Starting server")?;
    world.print("Sleep 5 second to give room for avoiding conflicts")?;
    world.report(&Event::Waits {
        wait: Wait::StartRecheck,
        seconds: START_RECHECK_SECONDS,
    });
    world.sleep(START_RECHECK_SECONDS)?;
    world.print("Check if we are still master")?;
    let latest = world.newest_entry(&vars.heart_beat_dir)?;
    if latest == vars.host_name {
        world.print("We are master so start server")?;
        world.start_detached(&vars.start_cmd, &vars.start_cmd_log_file)?;
        world.report(&Event::Started { token: None });
    }
    Ok(())
}

/// `echo $VALUE`: the unquoted expansion is split into words, which echo joins with one space.
fn echo_unquoted(value: &str) -> String {
    words::fields(value).collect::<Vec<_>>().join(" ")
}

/// `f $VALUE` passes the first word of the split expansion as `$1`, or nothing at all.
fn first_word(value: &str) -> &str {
    words::fields(value).next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoted_expansion_splits_on_blanks() {
        assert_eq!(echo_unquoted("  a \t b\nc "), "a b c");
        assert_eq!(echo_unquoted(""), "");
        assert_eq!(first_word(" host1 host2"), "host1");
        assert_eq!(first_word(" \t"), "");
    }
}
