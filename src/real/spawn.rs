//! `nohup $startCmd > $startCmdLogFile 2>&1 &`.
//!
//! PLACEHOLDER: the nohup-exact implementation replaces it.

use std::process::{Command, Stdio};

use super::ToolError;

#[derive(Default)]
pub struct Children {
    _reapers: Vec<std::thread::JoinHandle<()>>,
}

impl Children {
    pub fn start_detached(&mut self, command: &str, log_file: &str) -> Result<(), ToolError> {
        let words: Vec<&str> = command.split_whitespace().collect();
        let log = std::fs::File::create(log_file)
            .map_err(|e| ToolError(format!("hacmp: {log_file}: {e}")))?;
        let err = log.try_clone().map_err(|e| ToolError(e.to_string()))?;
        let mut child = Command::new(words[0])
            .args(&words[1..])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| ToolError(e.to_string()))?;
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(())
    }
}
