//! `ls -1tr DIR | tail -1`.
//!
//! PLACEHOLDER: the differential implementation replaces it.

use super::ToolError;

pub fn newest_entry(dir: &str) -> Result<String, ToolError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| ToolError(format!("ls: cannot access '{dir}': {e}")))?;
    let mut newest: Option<(std::time::SystemTime, String)> = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if newest
            .as_ref()
            .is_none_or(|(t, n)| modified > *t || (modified == *t && name < *n))
        {
            newest = Some((modified, name));
        }
    }
    Ok(newest.map(|(_, name)| name).unwrap_or_default())
}
