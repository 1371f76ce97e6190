//! The content of a heartbeat file in the safe profile.
//!
//! bash and the compat profile only look at a heartbeat file's name and modification time, so
//! the safe profile is free to write a line into it: which lease it holds (the token), the run
//! of the daemon that wrote it (the incarnation) and a counter that changes with every renewal.
//! Peers judge a host by whether this line changes, timed on their own clock, never by comparing
//! timestamps; so a line must never repeat, not even after the daemon restarts with its counter
//! at 1 and takes the same token again: the incarnation, new for every start, sees to that.

use std::fmt;

/// A record's first word, so that no other file's content is mistaken for a record.
const MAGIC: &str = "hacmp-safe";
/// Version 2 added the incarnation. Version 1 records (from a node not yet upgraded) are read
/// with incarnation 0, so a rolling upgrade still sees their tokens.
const VERSION: &str = "2";
const VERSION_WITHOUT_INCARNATION: &str = "1";
/// Longer content cannot be a record, and is not parsed.
pub const MAX_RECORD_BYTES: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Asking for the lease; not yet running the application.
    Claim,
    /// Holding the lease.
    Master,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub host: String,
    /// The fencing token: one more than any token its writer had seen when it claimed.
    pub token: u64,
    /// Differs for every start of the writing daemon.
    pub incarnation: u64,
    /// Changes with every write, so that each renewal is visible as a change.
    pub counter: u64,
    pub phase: Phase,
}

impl Record {
    /// Orders competing claims: the higher token wins, then the greater host name.
    pub fn rank(&self) -> (u64, &str) {
        (self.token, &self.host)
    }

    pub fn parse(text: &str) -> Option<Record> {
        if text.len() > MAX_RECORD_BYTES {
            return None;
        }
        let mut words = text.strip_suffix('\n')?.split(' ');
        if words.next()? != MAGIC {
            return None;
        }
        let has_incarnation = match words.next()? {
            VERSION => true,
            VERSION_WITHOUT_INCARNATION => false,
            _ => return None,
        };
        let mut field = |name: &str| words.next()?.strip_prefix(name)?.strip_prefix('=');
        let host = field("host")?.to_string();
        let token = field("token")?.parse().ok()?;
        let incarnation = match has_incarnation {
            true => field("incarnation")?.parse().ok()?,
            false => 0,
        };
        let counter = field("counter")?.parse().ok()?;
        let phase = match field("state")? {
            "claim" => Phase::Claim,
            "master" => Phase::Master,
            _ => return None,
        };
        if words.next().is_some() || host.is_empty() {
            return None;
        }
        Some(Record {
            host,
            token,
            incarnation,
            counter,
            phase,
        })
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.phase {
            Phase::Claim => "claim",
            Phase::Master => "master",
        };
        writeln!(
            f,
            "{MAGIC} {VERSION} host={} token={} incarnation={} counter={} state={state}",
            self.host, self.token, self.incarnation, self.counter
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let record = Record {
            host: "nodeA".into(),
            token: 7,
            incarnation: 99,
            counter: 42,
            phase: Phase::Master,
        };
        let text = record.to_string();
        assert_eq!(
            text,
            "hacmp-safe 2 host=nodeA token=7 incarnation=99 counter=42 state=master\n"
        );
        assert_eq!(Record::parse(&text), Some(record));
    }

    #[test]
    fn a_version_1_record_reads_with_incarnation_0() {
        let record = Record::parse("hacmp-safe 1 host=a token=3 counter=5 state=claim\n").unwrap();
        assert_eq!(
            (record.token, record.incarnation, record.counter),
            (3, 0, 5)
        );
    }

    #[test]
    fn other_content_is_not_a_record() {
        for text in [
            "",
            "\n",
            "hacmp-safe 3 host=a token=1 incarnation=1 counter=1 state=claim\n",
            "hacmp-safe 2 host=a token=1 counter=1 state=claim\n",
            "hacmp-safe 2 host=a token=x incarnation=1 counter=1 state=claim\n",
            "hacmp-safe 2 host=a token=1 incarnation=1 counter=1 state=claim extra\n",
            "hacmp-safe 2 host=a token=1 incarnation=1 counter=1 state=claim",
        ] {
            assert_eq!(Record::parse(text), None, "{text:?}");
        }
    }
}
