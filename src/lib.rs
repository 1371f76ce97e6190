//! hacmp: keeps exactly one instance of an application running across hosts that share a
//! heartbeat directory; a drop-in replacement for heartbeat.sh. See ARCHITECTURE.md.

/// Exit status for a configuration that cannot be used, for every command.
pub const EXIT_INVALID: u8 = 2;

pub mod advice;
pub mod check;
pub mod config;
pub mod engine;
pub mod event;
pub mod maintenance;
pub mod manual;
pub mod operator;
pub mod pattern;
pub mod preflight;
pub mod real;
pub mod safe;
pub mod sim;
pub mod status;
pub mod storage;
pub mod table;
pub mod timing;
pub mod words;
pub mod world;
