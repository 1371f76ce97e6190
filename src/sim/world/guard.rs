//! The safe profile's host-level operations: the boot clock, short pauses, and the guard.
//!
//! The guard is a process of its own on the node, apart from the daemon: it holds the apps it
//! started and a deadline on the node's boot clock, and kills them (SIGKILL, at once) when the
//! boot clock reaches the deadline. It keeps running while the daemon is paused, killed or
//! crashed, and dies with its apps when the host crashes. While the host is frozen it does
//! nothing; at thaw it acts on a deadline that passed before the apps may execute again (the
//! scheduler calls `guard_deadline_check` first).
//!
//! A guard that dies (`guard_kill`) enforces nothing any more: its apps (the application's whole
//! tree) run on until the daemon finds it gone, in `guard_state`, `guard_stop` or, at its next
//! start, `guard_attach`, where the daemon kills them before it answers, as the real world
//! does.

use std::mem;
use std::time::Duration;

use super::{Cluster, OnSigterm, Timer};
use crate::sim::request::{Outcome, Request, Value};
use crate::world::{GuardState, HeldLease};

#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// The apps it started that still run.
    apps: Vec<u32>,
    /// Boot-clock milliseconds at which it kills them.
    deadline_ms: u64,
    /// The fencing token its apps were started with.
    token: u64,
    /// The incarnation of the daemon run it answers to.
    incarnation: u64,
    /// The incarnation of the run that attached, kept from its first extension on.
    adopting: Option<u64>,
    /// An end of its apps not yet reported by `guard_state`.
    report: Option<GuardState>,
    /// The guard died; its apps, if any, are orphans that nothing fences.
    dead: bool,
}

impl Guard {
    /// One of the node's apps ended; if the guard held it and held nothing else, the end is
    /// the app's own doing (a crash, or a signal from someone other than the guard).
    pub(super) fn app_ended(&mut self, pid: u32) {
        if let Some(index) = self.apps.iter().position(|&app| app == pid) {
            self.apps.remove(index);
            if self.apps.is_empty() {
                self.report = Some(GuardState::Exited);
            }
        }
    }
}

impl Cluster {
    /// Serves the boot clock, a pause or a guard operation; `None` for any other request.
    pub(super) fn serve_host_op(
        &mut self,
        node: usize,
        request: &Request,
        latency_ms: u64,
    ) -> Option<(Outcome, u64)> {
        let (value, cost) = match request {
            Request::Elapsed => (Value::Millis(self.elapsed_ms(node)), latency_ms),
            Request::Incarnation => (Value::Number(self.next_incarnation()), latency_ms),
            Request::Pause(ms) => (Value::Unit, *ms),
            Request::GuardStart {
                command,
                log_file,
                deadline_ms,
                token,
                incarnation,
            } => {
                let started = self.guard_start(node, command, log_file, *deadline_ms);
                if started {
                    let guard = &mut self.nodes[node].guard;
                    (guard.token, guard.incarnation, guard.adopting) = (*token, *incarnation, None);
                }
                (Value::Flag(started), latency_ms)
            }
            Request::GuardAttach(incarnation) => (
                Value::Held(self.guard_attach(node, *incarnation)),
                latency_ms,
            ),
            Request::GuardExtend(deadline_ms) => {
                self.guard_extend(node, *deadline_ms);
                (Value::Unit, latency_ms)
            }
            Request::GuardState => (Value::Guard(self.guard_state(node)), latency_ms),
            Request::GuardStop(grace_ms) => {
                let cost = self.guard_stop(node, *grace_ms);
                (Value::Unit, latency_ms.max(cost))
            }
            _ => return None,
        };
        Some((Outcome::ok(value), cost))
    }

    fn guard_start(&mut self, node: usize, command: &str, log_file: &str, deadline: u64) -> bool {
        if self.elapsed_ms(node) >= deadline {
            return false;
        }
        let pid = self.start_app(node, command, log_file);
        let guard = &mut self.nodes[node].guard;
        guard.apps.push(pid);
        guard.deadline_ms = deadline;
        guard.report = None;
        self.schedule_guard(node);
        true
    }

    fn schedule_guard(&mut self, node: usize) {
        let state = &self.nodes[node];
        let at = state.booted_at_ms + state.guard.deadline_ms as i64;
        self.schedule(
            at.max(self.now_ms as i64) as u64,
            Timer::GuardDeadline(node),
        );
    }

    /// The simulated guard is always the one the node's daemon started (no other process can
    /// pose as it), so the proof the real world makes always holds here; it is there while its
    /// apps run, and exits with the last of them.
    fn guard_attach(&mut self, node: usize, incarnation: u64) -> Option<HeldLease> {
        if self.nodes[node].guard.dead {
            // No guard answers: the daemon ends the orphaned tree before anything else.
            self.end_orphaned_tree(node);
            self.nodes[node].guard = Guard::default();
            return None;
        }
        let guard = &mut self.nodes[node].guard;
        if guard.apps.is_empty() {
            return None;
        }
        let held = HeldLease {
            token: guard.token,
            incarnation: guard.incarnation,
            deadline: Duration::from_millis(guard.deadline_ms),
        };
        guard.adopting = Some(incarnation);
        Some(held)
    }

    fn guard_extend(&mut self, node: usize, deadline: u64) {
        let guard = &mut self.nodes[node].guard;
        if let Some(incarnation) = guard.adopting.take() {
            guard.incarnation = incarnation;
        }
        if deadline > guard.deadline_ms {
            guard.deadline_ms = deadline;
            self.schedule_guard(node);
        }
    }

    fn guard_state(&mut self, node: usize) -> GuardState {
        if self.nodes[node].guard.dead {
            self.end_orphaned_tree(node);
            self.nodes[node].guard = Guard::default();
            return GuardState::Lost;
        }
        let guard = &mut self.nodes[node].guard;
        if guard.apps.is_empty() {
            guard.report.take().unwrap_or(GuardState::Idle)
        } else {
            GuardState::Running
        }
    }

    /// Kills the guarded apps if the boot clock has reached the deadline (and the host is not
    /// frozen: a frozen guard acts at thaw).
    pub fn guard_deadline_check(&mut self, node: usize) {
        let state = &self.nodes[node];
        if state.guard.dead
            || state.guard.apps.is_empty()
            || self.elapsed_ms(node) < state.guard.deadline_ms
        {
            return;
        }
        let guard = &mut self.nodes[node].guard;
        let pids = mem::take(&mut guard.apps);
        guard.report = Some(GuardState::Fenced);
        for pid in pids {
            self.audit.signalled(true);
            self.end_app(node, pid);
        }
    }

    /// SIGTERM to the guarded apps, SIGKILL to those still there after `grace_ms` (at once
    /// when it is zero). Returns how long until they are gone.
    fn guard_stop(&mut self, node: usize, grace_ms: u64) -> u64 {
        if self.nodes[node].guard.dead {
            self.end_orphaned_tree(node);
            self.nodes[node].guard = Guard::default();
            return 0;
        }
        let guard = &mut self.nodes[node].guard;
        let pids = mem::take(&mut guard.apps);
        guard.report = None;
        if pids.is_empty() {
            return 0;
        }
        let exits_in_time = self.on_sigterm == OnSigterm::Exit && self.exit_delay_ms <= grace_ms;
        for pid in pids {
            if grace_ms == 0 {
                self.audit.signalled(true);
                self.end_app(node, pid);
                continue;
            }
            self.audit.signalled(false);
            let timer = if exits_in_time {
                Timer::AppExit { node, pid }
            } else {
                Timer::AppKill { node, pid }
            };
            let at = self.now_ms
                + if exits_in_time {
                    self.exit_delay_ms
                } else {
                    grace_ms
                };
            self.schedule(at, timer);
        }
        if grace_ms == 0 {
            0
        } else if exits_in_time {
            self.exit_delay_ms
        } else {
            grace_ms
        }
    }

    /// The node's guard dies; its apps run on, unfenced.
    pub fn guard_killed(&mut self, node: usize) {
        let guard = &mut self.nodes[node].guard;
        if !guard.apps.is_empty() {
            guard.dead = true;
        }
    }

    /// The daemon kills the tree of a guard that died, and it is gone before the daemon goes on.
    fn end_orphaned_tree(&mut self, node: usize) {
        for pid in mem::take(&mut self.nodes[node].guard.apps) {
            self.audit.signalled(true);
            self.end_app(node, pid);
        }
    }

    /// SIGKILL to one app, if it still runs (`Timer::AppKill`).
    pub fn kill_app(&mut self, node: usize, pid: u32) {
        if self.nodes[node].apps.iter().any(|app| app.pid == pid) {
            self.audit.signalled(true);
            self.end_app(node, pid);
        }
    }
}
