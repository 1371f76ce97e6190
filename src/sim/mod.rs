//! The parity simulator: runs the unmodified bash original and hacmp's loop side by side in
//! virtual time against one simulated cluster, and compares their traces.
//!
//! Modules: `scenario` (the TOML format), `world` (the simulated cluster), `request` (the
//! operations both drivers send), `scheduler` (discrete-event runs), `bash` and `hacmp` (the two
//! drivers), `audit` (app instance accounting), `random` (seeded fault schedules), `kinds`
//! (the table of kinds of random schedule, and their seeds), `explore`
//! (faults at every protocol step, and protocol-aware schedules), `parity` (comparison),
//! `safety` (the safe profile's rules), `report` and `safety_report` (markdown), `options`
//! (the command line's options), `progress` (its progress line) and `cli`.

pub mod audit;
mod bash;
pub mod cli;
mod daemon;
mod explain;
pub mod explore;
mod hacmp;
pub mod kinds;
pub mod options;
pub mod parallel;
pub mod parity;
pub mod progress;
pub mod random;
pub mod report;
pub mod request;
pub mod safety;
mod safety_report;
pub mod scenario;
pub mod scheduler;
pub mod world;

/// Bounds that keep every run finite and small.
pub mod limits {
    pub const MAX_NODES: usize = 8;
    /// The most shared storages (heartbeat directories) a scenario has.
    pub const MAX_SITES: usize = 7;
    /// etcd advises clusters of at most seven members.
    pub const MAX_ETCD_MEMBERS: usize = 7;
    pub const MAX_DURATION_SECONDS: u64 = 24 * 3600;
    pub const MAX_EVENTS: usize = 1000;
    pub const MAX_LATENCY_MS: u64 = 60_000;
    /// The largest clock jump or skew change, and the oldest attribute cache: ten years.
    pub const MAX_JUMP_SECONDS: u64 = 10 * 365 * 24 * 3600;
    pub const MAX_TRACE_ENTRIES: usize = 1_000_000;
    /// The most random schedules one command runs.
    pub const MAX_RANDOM: u64 = 1_000_000;
    /// The most scenario files one directory (`--catalog`) may hold.
    pub const MAX_SCENARIO_FILES: usize = 10_000;
}
