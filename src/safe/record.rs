//! The content of a heartbeat file in the safe profile.
//!
//! bash and the compat profile only look at a heartbeat file's name and modification time, so
//! the safe profile is free to write a line into it: which lease it holds (the token), the run
//! of the daemon that wrote it (the incarnation) and a counter that changes with every renewal.
//! Peers judge a host by whether this line changes, timed on their own clock, never by comparing
//! timestamps; so a line must never repeat, not even after the daemon restarts with its counter
//! at 1 and takes the same token again: the incarnation, new for every start, sees to that.
//! The line also carries the identities of its writer's heartbeat directories (each directory's
//! own random number, kept in it), so that a host configured with another list, whose
//! majorities need not meet ours, is noticed even where hosts mount the directories at
//! different paths.

use std::collections::BTreeSet;

use std::fmt;

/// A record's first word, so that no other file's content is mistaken for a record.
const MAGIC: &str = "hacmp-safe";
/// Version 3 added the directories' identities, version 2 the incarnation. Version 2 records
/// (from a node not yet upgraded) are read without identities, so a rolling upgrade still
/// sees their tokens; version 1 records are refused (`is_version_1`): without an incarnation,
/// a restarted writer's line could repeat.
const VERSION: &str = "3";
const VERSION_WITHOUT_DIRECTORIES: &str = "2";
const VERSION_WITHOUT_INCARNATION: &str = "1";
/// More directories than validation lets through; a record that names more is not one.
const MAX_DIRECTORIES: usize = 9;
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
    /// The identities of the writer's heartbeat directories, in its order, as it last read
    /// them (`None`: not read yet); the whole `None` in a version 2 record.
    pub directories: Option<Vec<Option<u64>>>,
}

/// Whether two hosts' directory identities show that they list different directories: another
/// count, or an identity one host knows that the other, knowing all of its own, does not have.
/// Identities not read yet (a directory that did not answer) prove nothing.
pub fn lists_differ(ours: &[Option<u64>], theirs: &[Option<u64>]) -> bool {
    let known = |list: &[Option<u64>]| list.iter().flatten().copied().collect::<BTreeSet<u64>>();
    let complete = |list: &[Option<u64>]| list.iter().all(Option::is_some);
    let (mine, other) = (known(ours), known(theirs));
    ours.len() != theirs.len()
        || (complete(ours) && !other.is_subset(&mine))
        || (complete(theirs) && !mine.is_subset(&other))
}

/// Directory identities as a record writes them: hexadecimal, `?` for one not read yet.
pub fn identities_text(list: &[Option<u64>]) -> String {
    list.iter()
        .map(|id| id.map_or("?".to_string(), |id| format!("{id:016x}")))
        .collect::<Vec<_>>()
        .join(",")
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
        let has_directories = match words.next()? {
            VERSION => true,
            VERSION_WITHOUT_DIRECTORIES => false,
            _ => return None,
        };
        let mut field = |name: &str| words.next()?.strip_prefix(name)?.strip_prefix('=');
        let host = field("host")?.to_string();
        let token = field("token")?.parse().ok()?;
        let incarnation = field("incarnation")?.parse().ok()?;
        let counter = field("counter")?.parse().ok()?;
        let phase = match field("state")? {
            "claim" => Phase::Claim,
            "master" => Phase::Master,
            _ => return None,
        };
        let directories = match has_directories {
            true => Some(
                field("dirs")?
                    .split(',')
                    .map(|id| match id {
                        "?" => Some(None),
                        id => u64::from_str_radix(id, 16).ok().map(Some),
                    })
                    .collect::<Option<Vec<_>>>()
                    .filter(|ids| ids.len() <= MAX_DIRECTORIES)?,
            ),
            false => None,
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
            directories,
        })
    }

    /// Whether `text` is a record of format version 1, which is no longer read: the line to
    /// say so, naming `path`.
    pub fn version_1_refusal(text: &str, path: &str) -> Option<String> {
        text.starts_with(&format!("{MAGIC} {VERSION_WITHOUT_INCARNATION} ")).then(|| {
            format!(
                "hacmp: {path}: a record of format version 1 (written by an hacmp older than its incarnation field), no longer read; upgrade hacmp on that host"
            )
        })
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.phase {
            Phase::Claim => "claim",
            Phase::Master => "master",
        };
        let version = match self.directories {
            Some(_) => VERSION,
            None => VERSION_WITHOUT_DIRECTORIES,
        };
        write!(
            f,
            "{MAGIC} {version} host={} token={} incarnation={} counter={} state={state}",
            self.host, self.token, self.incarnation, self.counter
        )?;
        match &self.directories {
            Some(ids) => writeln!(f, " dirs={}", identities_text(ids)),
            None => writeln!(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            host: "nodeA".into(),
            token: 7,
            incarnation: 99,
            counter: 42,
            phase: Phase::Master,
            directories: Some(vec![Some(0xfe), None, Some(1)]),
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let text = record().to_string();
        assert_eq!(
            text,
            "hacmp-safe 3 host=nodeA token=7 incarnation=99 counter=42 state=master dirs=00000000000000fe,?,0000000000000001\n"
        );
        assert_eq!(Record::parse(&text), Some(record()));
    }

    #[test]
    fn a_version_2_record_reads_without_directories() {
        let read =
            Record::parse("hacmp-safe 2 host=a token=3 incarnation=4 counter=5 state=claim\n")
                .unwrap();
        assert_eq!(
            (read.token, read.incarnation, read.directories.clone()),
            (3, 4, None)
        );
        assert_eq!(Record::parse(&read.to_string()), Some(read));
    }

    #[test]
    fn a_version_1_record_is_refused_with_a_line_naming_it() {
        let text = "hacmp-safe 1 host=a token=3 counter=5 state=claim\n";
        assert_eq!(Record::parse(text), None);
        let line = Record::version_1_refusal(text, "/mnt/dc1/hb/a").unwrap();
        assert!(line.starts_with("hacmp: /mnt/dc1/hb/a: a record of format version 1"));
        assert_eq!(Record::version_1_refusal(&record().to_string(), "p"), None);
    }

    #[test]
    fn lists_differ_only_on_what_is_known() {
        let (x, y, z, w) = (Some(1), Some(2), Some(3), Some(4));
        assert!(
            !lists_differ(&[x, y, z], &[z, x, y]),
            "the order is the host's own"
        );
        assert!(lists_differ(&[x, y, z], &[x, y, w]), "a typo in one path");
        assert!(
            lists_differ(&[x, y, z], &[x, y, z, w, Some(5)]),
            "another count"
        );
        assert!(
            !lists_differ(&[x, y, None], &[x, y, z]),
            "not read yet proves nothing"
        );
        assert!(
            lists_differ(&[x, y, z], &[x, w, None]),
            "a known identity we lack"
        );
        assert!(!lists_differ(&[x, None, None], &[None, y, None]));
    }

    #[test]
    fn other_content_is_not_a_record() {
        for text in [
            "",
            "\n",
            "hacmp-safe 4 host=a token=1 incarnation=1 counter=1 state=claim dirs=1\n",
            "hacmp-safe 3 host=a token=1 incarnation=1 counter=1 state=claim\n",
            "hacmp-safe 3 host=a token=1 incarnation=1 counter=1 state=claim dirs=xyz\n",
            "hacmp-safe 3 host=a token=1 incarnation=1 counter=1 state=claim dirs=1,2,3,4,5,6,7,8,9,a\n",
            "hacmp-safe 2 host=a token=1 counter=1 state=claim\n",
            "hacmp-safe 2 host=a token=x incarnation=1 counter=1 state=claim\n",
            "hacmp-safe 2 host=a token=1 incarnation=1 counter=1 state=claim extra\n",
            "hacmp-safe 2 host=a token=1 incarnation=1 counter=1 state=claim",
        ] {
            assert_eq!(Record::parse(text), None, "{text:?}");
        }
    }
}
