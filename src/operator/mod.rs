//! The seam between the operator commands (`hacmp status`, `hacmp check`, `hacmp maintenance`)
//! and the store that holds the lease, as `safe::backend` is the loop's.
//!
//! The commands own what does not depend on the store: the variables, this host's application,
//! the maintenance file, the layout of the output. A `LeaseStore` owns the rest: one look at the
//! store for the status, the store's hazards for the check, and the store's own maintenance
//! switch. `directories::Directories` is heartbeat.sh's directory (or a majority of several),
//! `etcd::Etcd` the etcd cluster; another store is one more module and one line in `of`.

pub mod directories;
pub mod etcd;

use std::path::Path;

use serde::Serialize;

use crate::config::{Profile, Settings, Store, Variables};
use crate::storage::StorageProbe;

/// The store of `vars`, for the operator commands: the one registration of each backend.
pub fn of(vars: &Variables) -> Box<dyn LeaseStore> {
    match &vars.store {
        Store::Directories(dirs) => {
            let markers = matches!(vars.profile, Profile::Safe(_));
            Box::new(directories::Directories::new(dirs.clone(), markers))
        }
        Store::Etcd(settings) => Box::new(etcd::Etcd::new(settings.clone())),
    }
}

/// What the operator commands need of the store that holds the lease.
pub trait LeaseStore {
    /// The same text for the daemon and for `hacmp status` of one cluster on this host, and
    /// another for another cluster: what ties a daemon's state file to this store.
    fn identity(&self) -> String;

    /// One look at the store for `hacmp status`, bounded in time however the store fares.
    fn look(&self, vars: &Variables, now: i64) -> Look;

    /// The store's hazards for `hacmp check`.
    fn hazards(&self, storage: &dyn StorageProbe, working_directory: &Path) -> Vec<Hazard>;

    /// The directories `hacmp check --json` lists as holding the lease, when directories do.
    fn heartbeat_dirs(&self) -> Option<&[String]> {
        None
    }

    /// Whether heartBeatDir itself holds heartbeats (not with etcd, nor when hacmpHeartBeatDirs
    /// replaces it), so that where it lies matters.
    fn uses_heart_beat_dir(&self) -> bool {
        false
    }

    /// What becomes of heartBeatDir when the store does not simply use it, in one sentence.
    fn heart_beat_dir_fate(&self, _settings: &Settings) -> Option<String> {
        None
    }

    /// Whether the store survives the loss of one site's storage (several directories, etcd):
    /// then a maintenance file kept on one site's storage is its weak point.
    fn spans_sites(&self) -> bool {
        false
    }

    /// Why the maintenance file would freeze only this host instead of the whole cluster, when
    /// the store has no switch of its own that freezes every host.
    fn maintenance_warning(&self, _vars: &Variables) -> Option<String> {
        None
    }

    /// The store's own maintenance switch, which every host obeys as it obeys the maintenance
    /// file (etcd's key); none when the store keeps none.
    fn maintenance_switch(&self) -> Option<Box<dyn MaintenanceSwitch>> {
        None
    }
}

/// A maintenance switch written by `hacmp maintenance on|off`: the maintenance file, or one the
/// store keeps.
pub trait MaintenanceSwitch {
    /// Its name in the JSON status (etcd: the key).
    fn name(&self) -> String;
    /// Where it lives, for people: "etcd key /hacmp/x/maintenance".
    fn place(&self) -> String;
    /// Its note when it is on; `None` when it is off.
    fn read(&self) -> Result<Option<String>, String>;
    /// Switches it on with `note` unless it is on already, keeping a note set meanwhile.
    fn switch_on(&self, note: &str) -> Result<Switched, String>;
    fn switch_off(&self) -> Result<Switched, String>;
}

/// A maintenance switch as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchReading {
    /// `MaintenanceSwitch::name`.
    pub name: String,
    /// `MaintenanceSwitch::place`.
    pub place: String,
    /// Its note when it is on; `None` when it is off or could not be read.
    pub value: Option<String>,
}

/// What `on` or `off` did; both are idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switched {
    On,
    AlreadyOn,
    Off,
    AlreadyOff,
}

/// A risk in a configuration that runs: it is legal, but it will hurt in some failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hazard {
    pub variable: &'static str,
    pub reason: String,
}

pub fn hazard(variable: &'static str, reason: String) -> Hazard {
    Hazard { variable, reason }
}

/// One entry of a heartbeat directory, as the loop judges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heartbeat {
    pub host: String,
    /// "file", "directory", "symlink", "other" or "vanished".
    pub kind: &'static str,
    /// Modification time in whole seconds since the epoch (`stat -c %Y`).
    pub modified: i64,
    /// `now - modified`; negative when the heartbeat is in the future.
    pub age_seconds: i64,
    /// The loop's judgement: a regular file whose age is less than faileOverTime.
    pub alive: bool,
}

/// What one look at the store showed.
pub struct Look {
    /// The host the loop would take as master now.
    pub master: Option<String>,
    /// Whether that master's lease (heartbeat, leader key) still holds.
    pub master_alive: bool,
    /// The entries of the heartbeat directories, each host's youngest; empty with etcd.
    pub heartbeats: Vec<Heartbeat>,
    /// Every host the store shows.
    pub nodes: Vec<StoreNode>,
    /// What the store cannot show, in one line: hosts that write nothing to it.
    pub unseen: &'static str,
    /// The store's maintenance switch as this look read it.
    pub maintenance: Option<SwitchReading>,
    pub warnings: Vec<String>,
    pub details: Box<dyn StoreDetails>,
}

/// A host as the store shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreNode {
    pub host: String,
    /// "master" or "claiming" when the store says so.
    pub role: Option<&'static str>,
    /// Whether its lease (heartbeat, leader key) still holds.
    pub alive: bool,
    /// How old its heartbeat is; none without one.
    pub age_seconds: Option<i64>,
}

/// What only this store shows, in the JSON status and the human one.
pub trait StoreDetails {
    /// The store's own fields of the JSON status (docs/status-json.md).
    fn json(&self) -> serde_json::Map<String, serde_json::Value>;
    /// A banner for a store that is about to stop, or stopped, serving.
    fn banner(&self, colour: bool) -> Option<String>;
    /// Where the lease lives, for the status's first line.
    fn place(&self) -> String;
    /// The store's tables.
    fn render(&self, colour: bool) -> String;
}

/// The fields of a serializable store part, for `StoreDetails::json`.
pub fn json_of(part: &impl Serialize) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(part).expect("the store's status serializes") {
        serde_json::Value::Object(fields) => fields,
        other => unreachable!("a store's status is an object, not {other}"),
    }
}
