//! hacmp: keeps exactly one instance of an application running across hosts that share a
//! heartbeat directory; a drop-in replacement for heartbeat.sh. See ARCHITECTURE.md.

pub mod config;
pub mod engine;
pub mod pattern;
pub mod preflight;
pub mod real;
pub mod sim;
pub mod world;
