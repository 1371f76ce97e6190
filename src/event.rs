//! What the loops tell the world about what happens, beyond the commands they run: role changes,
//! incidents, maintenance, and the rhythm of their rounds.
//!
//! The loops stay free of I/O: they hand each `Event` to `World::report`, and only the real world
//! turns it into something visible (systemd's status and watchdog, the operator's event hook, the
//! metrics file; see `real::report`). The simulator ignores events, so reporting can never change
//! a trace the parity catalog compares.

/// Why an application was fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// The lease ran out before a renewal succeeded; the guard killed the application.
    LeaseRanOut,
    /// The guard died; the daemon killed the application's whole tree and waited for its end.
    GuardLost,
}

/// One thing that happened in a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// This host became master and started its application: after a takeover, at a cold start,
    /// or again after an incident. `token` is the safe profile's fencing token.
    Started { token: Option<u64> },
    /// A restarted safe daemon took over the lease and the application of its previous run
    /// (`token`) without restarting it.
    Reattached { token: u64 },
    /// A master's round found its application running with these PIDs (the compat profile's
    /// `pgrep -f`).
    Running { pids: Vec<u32> },
    /// This host is not master (any more). `master` names the host whose heartbeat is newest,
    /// when the loop knows it.
    Standby { master: Option<String> },
    /// The age of a host's heartbeat as the loop computed it (the compat profile's hasHeartBeat).
    HeartbeatAge { host: String, seconds: i64 },
    /// heartbeat.sh's sendIncident: this host is master but its application is not running.
    Incident,
    /// The safe profile's application was killed as a fence: by its guard because the lease ran
    /// out, or by the daemon because the guard died.
    Fenced(Fence),
    /// Whether the maintenance file exists, as this round saw it.
    Maintenance(bool),
    /// The loop begins one of the script's long waits, of `seconds`; it ends at the next event.
    Waits { wait: Wait, seconds: u64 },
    /// Something the operator must fix, which the loop waits out or works around: another
    /// host's record written with another list of heartbeat directories (no claim while it is
    /// seen), a maintenance file that cannot be read while a majority of the directories
    /// answers. `name` is the event hook's name for it.
    Warning { name: &'static str, message: String },
    /// A round begins: the loop woke from its pause.
    RoundBegins,
    /// A round ended: the loop is about to pause until the next one.
    RoundEnds,
}

/// The script's long waits, which status and systemd's STATUS= show with the time left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// startInstance's pause before it checks that this host is still master and starts.
    StartRecheck,
    /// killInstance's pause between SIGTERM and SIGKILL for the local instances.
    KillGrace,
}

impl Wait {
    /// The wait in words, as status and STATUS= say it.
    pub fn words(self) -> &'static str {
        match self {
            Wait::StartRecheck => "recheck before start",
            Wait::KillGrace => "killing local instances",
        }
    }
}
