//! The markdown report of audit figures, per scenario, for bash and for hacmp.

use std::fmt::Write as _;

use super::audit::Audit;
use super::parity::Verdict;

pub(super) fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The failover times of the faults that stopped the last app: "12.003", or "none" when an
/// outage never ended, "-" when no fault stopped the app.
pub(super) fn failovers(audit: &Audit) -> String {
    let times: Vec<String> = audit
        .faults
        .iter()
        .filter(|fault| fault.caused_outage)
        .map(|fault| fault.failover_ms.map_or("none".to_string(), seconds))
        .collect();
    if times.is_empty() {
        "-".to_string()
    } else {
        times.join(", ")
    }
}

fn figures(audit: &Audit) -> String {
    format!(
        "{} | {} | {} | {}/{}/{}",
        seconds(audit.overlap_ms),
        audit.max_alive,
        failovers(audit),
        audit.starts,
        audit.terms,
        audit.kills
    )
}

pub fn markdown(verdicts: &[Verdict]) -> String {
    let mut text = String::from(
        "# Shell parity report\n\n\
         Overlap: seconds with more than one app instance alive. Max: most instances at once. \
         Failover: seconds from each fault that stopped the last instance until one ran again \
         (\"none\": not before the end). Starts/TERM/KILL: apps started and signals sent.\n\n\
         | Scenario | Seed | Parity | bash overlap | bash max | bash failover | bash starts/TERM/KILL \
         | hacmp overlap | hacmp max | hacmp failover | hacmp starts/TERM/KILL |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for verdict in verdicts {
        let parity = if verdict.difference.is_none() {
            "same"
        } else {
            "DIFFERENT"
        };
        let _ = writeln!(
            text,
            "| {} | {} | {parity} | {} | {} |",
            verdict.scenario,
            verdict.seed,
            figures(&verdict.bash),
            figures(&verdict.hacmp)
        );
    }
    text
}
