//! `hacmp maintenance on|off|status`: the maintenance file, made and removed safely, and the
//! store's own switch where it keeps one (`operator::LeaseStore::maintenance_switch`).
//!
//! bash only checks that the file exists, so a file hacmp writes freezes bash nodes too. Its
//! content records who switched maintenance on, when and why, for the next operator.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::config::Variables;
use crate::operator::{self, MaintenanceSwitch, SwitchReading, Switched};
use crate::status::{self, Maintenance};

/// What `hacmp maintenance` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    On,
    Off,
    Status,
}

/// `hacmp maintenance ACTION [FILE]`: switches the file and the store's own switch (if any)
/// together, or shows them; returns the exit status (documented in its --help).
pub fn run(action: Action, file: Option<&Path>, reason: Option<&str>) -> u8 {
    match status::load(file) {
        Some(vars) => switch(action, &vars, reason),
        None => crate::EXIT_INVALID,
    }
}

fn switch(action: Action, vars: &Variables, reason: Option<&str>) -> u8 {
    let store = operator::of(vars);
    if let Some(warning) = store.maintenance_warning(vars) {
        eprintln!("hacmp: warning: {warning}");
    }
    let store_switch = store.maintenance_switch();
    if action == Action::Status {
        let mut now = status::maintenance(&vars.maintenance_file);
        if let Some(switch) = &store_switch {
            match switch.read() {
                Ok(value) => {
                    let reading = SwitchReading {
                        name: switch.name(),
                        place: switch.place(),
                        value,
                    };
                    now = status::with_switch(now, &reading);
                }
                Err(error) => {
                    eprintln!("{error}");
                    return 1;
                }
            }
        }
        println!("{}", describe(&now));
        return if now.active {
            status::exit::MAINTENANCE
        } else {
            0
        };
    }
    let note = note(reason, chrono::Local::now());
    let file: Box<dyn MaintenanceSwitch> = Box::new(File(vars.maintenance_file.clone()));
    let mut code = 0;
    for switch in std::iter::once(file).chain(store_switch) {
        let done = match action {
            Action::On => switch.switch_on(&note),
            Action::Off => switch.switch_off(),
            Action::Status => unreachable!("answered above"),
        };
        match done {
            Ok(done) => println!("{}: {}", said(done), switch.place()),
            Err(error) => {
                eprintln!("{error}");
                code = 1;
            }
        }
    }
    code
}

/// What `hacmp maintenance on|off` did to a switch.
fn said(done: Switched) -> &'static str {
    match done {
        Switched::On => "maintenance switched on",
        Switched::AlreadyOn => "maintenance was already on; left as it was",
        Switched::Off => "maintenance switched off",
        Switched::AlreadyOff => "maintenance was already off",
    }
}

/// The note written into the maintenance file.
pub fn note(reason: Option<&str>, now: chrono::DateTime<chrono::Local>) -> String {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| user_name());
    let host = crate::config::local_host_name();
    let mut text = format!(
        "maintenance switched on by {who}@{host} at {}\n",
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    );
    if let Some(reason) = reason {
        text.push_str(&format!("reason: {reason}\n"));
    }
    text
}

/// The name of the user we run as, from the password database, or `uid N` without an entry.
fn user_name() -> String {
    // SAFETY: getuid cannot fail. getpwuid returns null or a pointer to a static entry, read
    // at once; this command runs on one thread.
    unsafe {
        let uid = libc::getuid();
        let entry = libc::getpwuid(uid);
        if entry.is_null() || (*entry).pw_name.is_null() {
            return format!("uid {uid}");
        }
        std::ffi::CStr::from_ptr((*entry).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// The maintenance file, which every host that sees it obeys (bash's included).
struct File(String);

impl MaintenanceSwitch for File {
    fn name(&self) -> String {
        self.0.clone()
    }

    fn place(&self) -> String {
        self.0.clone()
    }

    fn read(&self) -> Result<Option<String>, String> {
        let shown = status::maintenance(&self.0);
        Ok(shown.active.then(|| shown.note.unwrap_or_default()))
    }

    fn switch_on(&self, note: &str) -> Result<Switched, String> {
        switch_file_on(&self.0, note).map_err(|error| self.failed(&error))
    }

    fn switch_off(&self) -> Result<Switched, String> {
        match fs::remove_file(&self.0) {
            Ok(()) => Ok(Switched::Off),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Switched::AlreadyOff),
            Err(error) => Err(self.failed(&error)),
        }
    }
}

impl File {
    fn failed(&self, error: &io::Error) -> String {
        format!(
            "hacmp: maintenanceFile {}: {}",
            self.0,
            crate::real::files::describe(error)
        )
    }
}

/// Creates the maintenance file with `text`, complete or not at all: the text goes into a
/// temporary file in the same directory, which is then linked to the final name. Linking fails
/// when the file already exists, so a note written by someone else in the meantime is kept.
fn switch_file_on(file: &str, text: &str) -> io::Result<Switched> {
    if Path::new(file).exists() {
        return Ok(Switched::AlreadyOn);
    }
    let path = Path::new(file);
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temporary = dir.join(format!(
        ".{}.hacmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = (|| {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        fs::hard_link(&temporary, path)
    })();
    let _ = fs::remove_file(&temporary);
    match written {
        Ok(()) => Ok(Switched::On),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(Switched::AlreadyOn),
        Err(error) => Err(error),
    }
}

/// The one line that says what maintenance looks like now.
pub fn describe(maintenance: &Maintenance) -> String {
    let source = status::maintenance_source(maintenance);
    let key_note = maintenance.key.as_ref().and_then(|key| key.note.as_ref());
    match (maintenance.active, key_note.or(maintenance.note.as_ref())) {
        (false, _) => format!("maintenance is off ({source})"),
        (true, None) => format!("maintenance is ON ({source})"),
        (true, Some(note)) => format!(
            "maintenance is ON ({source}): {}",
            note.lines().collect::<Vec<_>>().join("; ")
        ),
    }
}
