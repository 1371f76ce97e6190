//! What kind of storage holds a path: the filesystem type and, for NFS, the mount options that
//! decide how fresh a peer's heartbeat looks.
//!
//! `StorageProbe` is the seam: the real one asks the kernel (statfs, /proc/self/mountinfo), tests
//! substitute an NFS mount that this machine does not have.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

pub trait StorageProbe {
    /// statfs(2)'s `f_type` for the filesystem holding `path`.
    fn filesystem_magic(&self, path: &Path) -> io::Result<i64>;
    /// The text of /proc/self/mountinfo.
    fn mount_table(&self) -> io::Result<String>;
    /// `path` with every symbolic link resolved, when it exists.
    fn canonical(&self, path: &Path) -> Option<PathBuf> {
        path.canonicalize().ok()
    }
}

/// The running machine. Questions about a path go to a thread of their own and are given up
/// after `PROBE_LIMIT`: on a hard NFS mount whose server is gone, statfs never returns, and
/// `hacmp check` must still answer while a site is down.
pub struct RealStorage;

/// How long one question about a path may take.
pub const PROBE_LIMIT: Duration = Duration::from_secs(5);

impl StorageProbe for RealStorage {
    fn filesystem_magic(&self, path: &Path) -> io::Result<i64> {
        let name = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        within_limit(move || {
            // SAFETY: statfs fills the zeroed struct; `name` is NUL-terminated and outlives the
            // call.
            unsafe {
                let mut info: libc::statfs = std::mem::zeroed();
                if libc::statfs(name.as_ptr(), &mut info) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(info.f_type as i64)
            }
        })
        .unwrap_or_else(|| Err(no_answer()))
    }

    fn mount_table(&self) -> io::Result<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
    }

    fn canonical(&self, path: &Path) -> Option<PathBuf> {
        let owned = path.to_path_buf();
        within_limit(move || owned.canonicalize().ok()).flatten()
    }
}

fn no_answer() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer within {} s", PROBE_LIMIT.as_secs()),
    )
}

/// Runs `question` on a thread of its own and waits at most `PROBE_LIMIT`; a thread stuck in
/// the kernel is left behind (the commands that probe are short-lived).
fn within_limit<T: Send + 'static>(question: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (reply, answer) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("hacmp-probe".to_string())
        .spawn(move || {
            let _ = reply.send(question());
        })
        .ok()?;
    answer.recv_timeout(PROBE_LIMIT).ok()
}

/// Filesystems that several hosts can share, by statfs magic number (linux/magic.h and the
/// filesystems' own headers).
const SHARED_FILESYSTEMS: [(i64, &str); 11] = [
    (0x6969, "nfs"),
    (0x517B, "smb"),
    (0xFF53_4D42, "cifs"),
    (0xFE53_4D42, "smb2"),
    (0x0116_1970, "gfs2"),
    (0x7461_636f, "ocfs2"),
    (0x00c3_6400, "ceph"),
    (0x0BD0_0BD0, "lustre"),
    (0x5346_414F, "afs"),
    (0x4750_4653, "gpfs"),
    (
        0x6573_5546,
        "fuse (a network filesystem such as glusterfs or sshfs, or a local one)",
    ),
];

/// How a path is stored, as far as sharing it between hosts goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sharing {
    /// A filesystem type that hosts can share; the name says which.
    Shared(&'static str),
    /// A filesystem only this host sees (ext4, xfs, tmpfs, …), with its magic number.
    Local(i64),
}

pub fn sharing(probe: &dyn StorageProbe, path: &Path) -> io::Result<Sharing> {
    let magic = probe.filesystem_magic(path)?;
    Ok(SHARED_FILESYSTEMS
        .iter()
        .find(|(known, _)| *known == magic)
        .map_or(Sharing::Local(magic), |(_, name)| Sharing::Shared(name)))
}

/// With several heartbeat directories or etcd: why the maintenance file's place makes it a
/// single point of failure, if it does. On a filesystem hosts share it lives on one site's
/// storage, lost with that site.
pub fn maintenance_file_on_one_site(probe: &dyn StorageProbe, file: &Path) -> Option<String> {
    match sharing(probe, file.parent()?) {
        Ok(Sharing::Shared(name)) => Some(format!(
            "is on {name} storage, which one site holds: while that site is lost the file cannot be read, and the daemons go by the maintenance state that `hacmp maintenance on|off` also keeps in the heartbeat directories (or etcd); switch maintenance with that command rather than by creating the file"
        )),
        _ => None,
    }
}

/// Whether listings of a directory may come from this host's cache (`Mount::listings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listings {
    /// Every listing asks the storage: a local filesystem, NFS with actimeo=0, a cluster
    /// filesystem whose locks keep it coherent (GFS2, OCFS2, CephFS, Lustre).
    Fresh,
    /// Listings may come from a cache: the safe profile refuses the mount; the text says why
    /// and which option fixes it.
    Cached(String),
    /// A filesystem whose caching the mount table does not show: the safe profile warns.
    Unknown(String),
}

/// One line of /proc/self/mountinfo, the parts of it we read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub filesystem: String,
    /// The device number as `MAJOR:MINOR`, stat(2)'s st_dev: two paths with the same one are on
    /// the same filesystem, however they are mounted (bind mounts included).
    pub device: String,
    /// What is mounted: a device (`/dev/sda1`) or, for NFS, `SERVER:EXPORT`.
    pub source: String,
    /// The per-mount options and the filesystem's own options together.
    pub options: Vec<String>,
}

impl Mount {
    fn option_value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|option| option.strip_prefix(name)?.strip_prefix('='))
    }

    fn has_option(&self, name: &str) -> bool {
        self.options.iter().any(|option| option == name)
    }

    /// For NFS: the longest time, in seconds, that this host may answer `stat` or `ls` from its
    /// attribute cache instead of asking the server; 0 when caching is off.
    pub fn attribute_cache_seconds(&self) -> u64 {
        if self.has_option("noac") {
            return 0;
        }
        // The kernel's defaults when the option is absent (nfs(5)): acregmax 60, acdirmax 60.
        let longest = |name: &str, default: u64| {
            self.option_value(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        longest("acregmax", 60).max(longest("acdirmax", 60))
    }

    /// For NFS: whether this host may answer a directory listing from its cache instead of
    /// asking the server. Directories are cached for acdirmin to acdirmax seconds (30 and 60 by
    /// default, which the mount table does not show); `noac`, or `actimeo=0`, which the table
    /// shows as `acdirmax=0`, turns that off.
    pub fn caches_listings(&self) -> bool {
        !self.has_option("noac") && self.option_value("acdirmax") != Some("0")
    }

    /// Whether this host may answer a listing of a directory on this mount from a cache, as
    /// far as the mount table tells: the safe profile needs every listing fresh (two claimants
    /// must each list the other's new record).
    pub fn listings(&self) -> Listings {
        let at = self.mount_point.display();
        match self.filesystem.as_str() {
            "nfs" | "nfs4" if self.caches_listings() => Listings::Cached(format!(
                "is on an NFS mount ({at}) that answers directory listings from a cache; the safe profile needs every listing fresh: mount it with actimeo=0 (or noac)"
            )),
            "cifs" | "smb3" if self.option_value("actimeo") != Some("0") => {
                Listings::Cached(format!(
                    "is on a CIFS/SMB mount ({at}) that answers attributes and directory listings from a cache; the safe profile needs every listing fresh: mount it with actimeo=0 (and nohandlecache, where the kernel caches directories under leases)"
                ))
            }
            "9p" if !matches!(self.option_value("cache"), None | Some("none")) => {
                Listings::Cached(format!(
                    "is on a 9p mount ({at}) with a cache; the safe profile needs every listing fresh: mount it with cache=none"
                ))
            }
            "virtiofs" => Listings::Unknown(format!(
                "is on a virtiofs mount ({at}), whose caching its daemon sets (virtiofsd --cache), which the mount table does not show; the safe profile needs every listing fresh: run virtiofsd with --cache=never"
            )),
            "afs" => Listings::Unknown(format!(
                "is on an AFS mount ({at}), whose client answers from its cache between callbacks; the safe profile needs every listing fresh"
            )),
            fuse if fuse == "fuse" || fuse.starts_with("fuse.") => Listings::Unknown(format!(
                "is on a FUSE filesystem ({fuse} at {at}), whose caching of listings the mount table does not show (sshfs caches them unless mounted with dir_cache=no, a GlusterFS or other network client per its own options); the safe profile needs every listing fresh"
            )),
            _ => Listings::Fresh,
        }
    }

    pub fn is_soft(&self) -> bool {
        self.has_option("soft") || self.has_option("softerr")
    }

    pub fn is_nfs(&self) -> bool {
        self.filesystem == "nfs" || self.filesystem == "nfs4"
    }

    /// For NFS: the server's name or address, as the mount names it (`[…]` kept around IPv6).
    pub fn nfs_server(&self) -> Option<&str> {
        if !self.is_nfs() {
            return None;
        }
        let (server, _export) = self.source.rsplit_once(":/")?;
        Some(server).filter(|server| !server.is_empty())
    }
}

/// Why two directories are not independent storage, if they are not: one outage (a disk, a
/// filesystem, an NFS server) would take both away, so they count as one vote twice.
pub fn shared_fate(a: &Mount, b: &Mount) -> Option<String> {
    if a.device == b.device {
        return Some(format!(
            "are on the same filesystem (device {}, mounted on {})",
            a.device,
            a.mount_point.display()
        ));
    }
    match (a.nfs_server(), b.nfs_server()) {
        (Some(first), Some(second)) if first == second => {
            Some(format!("are served by the same NFS server ({first})"))
        }
        _ => None,
    }
}

/// The mount that holds `path` (already canonical): the one with the longest mount point that is
/// a prefix of it; later lines win, as later mounts cover earlier ones.
pub fn mount_of(mount_table: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mount_table.lines() {
        let Some(mount) = parse_mount_line(line) else {
            continue;
        };
        if !path.starts_with(&mount.mount_point) {
            continue;
        }
        let longer = best
            .as_ref()
            .is_none_or(|b| mount.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len());
        if longer {
            best = Some(mount);
        }
    }
    best
}

/// mountinfo: `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL…] - TYPE SOURCE SUPER_OPTIONS`,
/// with blanks in paths written as octal escapes.
fn parse_mount_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let before: Vec<&str> = before.split(' ').collect();
    let after: Vec<&str> = after.split(' ').collect();
    let mount_point = unescape_octal(before.get(4)?);
    let mut options: Vec<String> = before.get(5)?.split(',').map(str::to_string).collect();
    options.extend(after.get(2).unwrap_or(&"").split(',').map(str::to_string));
    Some(Mount {
        mount_point: PathBuf::from(mount_point),
        filesystem: after.first()?.to_string(),
        device: before.get(2)?.to_string(),
        source: unescape_octal(after.get(1).unwrap_or(&"")),
        options,
    })
}

fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes.get(i + 1..i + 4).filter(|_| bytes[i] == b'\\');
        match escape.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 27 0:21 / / rw,relatime - ext4 /dev/sda1 rw
40 22 0:50 / /mnt/shared rw,relatime - nfs4 srv:/export rw,vers=4.2,hard,acregmin=3,acregmax=10,acdirmin=3,acdirmax=30
41 22 0:51 / /mnt/soft\\040copy rw - nfs srv:/x rw,soft,noac
";

    #[test]
    fn the_longest_mount_point_holds_the_path() {
        let mount = mount_of(TABLE, Path::new("/mnt/shared/heartbeat")).unwrap();
        assert_eq!(mount.mount_point, Path::new("/mnt/shared"));
        assert!(mount.is_nfs());
        assert_eq!(mount.attribute_cache_seconds(), 30);
        assert!(!mount.is_soft());
        assert!(mount.caches_listings());
        let root = mount_of(TABLE, Path::new("/var/tmp")).unwrap();
        assert_eq!(root.filesystem, "ext4");
    }

    #[test]
    fn octal_escapes_and_noac_are_read() {
        let mount = mount_of(TABLE, Path::new("/mnt/soft copy/hb")).unwrap();
        assert!(mount.is_soft());
        assert_eq!(mount.attribute_cache_seconds(), 0);
        assert!(!mount.caches_listings());
    }

    #[test]
    fn directories_on_one_filesystem_or_one_nfs_server_share_their_fate() {
        let table = "\
1 0 8:1 / / rw - ext4 /dev/sda1 rw
2 1 0:50 / /mnt/dc1 rw - nfs4 filer1.dc1:/hb rw,hard
3 1 0:51 / /mnt/dc2 rw - nfs4 filer2.dc2:/hb rw,hard
4 1 0:52 / /mnt/witness rw - nfs [2001:db8::7]:/witness rw,hard
5 1 0:53 / /mnt/dc1-again rw - nfs4 filer1.dc1:/other rw,hard
6 1 0:50 / /mnt/dc1-bind rw - nfs4 filer1.dc1:/hb rw,hard
";
        let mount = |path: &str| mount_of(table, Path::new(path)).unwrap();
        let (dc1, dc2, witness) = (
            mount("/mnt/dc1/hb"),
            mount("/mnt/dc2/hb"),
            mount("/mnt/witness/hb"),
        );
        assert_eq!(witness.nfs_server(), Some("[2001:db8::7]"));
        assert_eq!(shared_fate(&dc1, &dc2), None);
        assert_eq!(shared_fate(&dc2, &witness), None);
        let bound = shared_fate(&dc1, &mount("/mnt/dc1-bind/hb")).unwrap();
        assert!(bound.contains("same filesystem (device 0:50"), "{bound}");
        let same_server = shared_fate(&dc1, &mount("/mnt/dc1-again/hb")).unwrap();
        assert!(
            same_server.contains("same NFS server (filer1.dc1)"),
            "{same_server}"
        );
        let local = shared_fate(&mount("/var/a"), &mount("/srv/b")).unwrap();
        assert!(local.contains("device 8:1"), "{local}");
    }

    /// A host whose every path is on the filesystem with this statfs magic.
    struct Everywhere(i64);

    impl StorageProbe for Everywhere {
        fn filesystem_magic(&self, _: &Path) -> io::Result<i64> {
            Ok(self.0)
        }
        fn mount_table(&self) -> io::Result<String> {
            Ok(String::new())
        }
    }

    #[test]
    fn a_maintenance_file_on_shared_storage_is_on_one_site() {
        let file = Path::new("/mnt/dc1/maintenance");
        let reason = maintenance_file_on_one_site(&Everywhere(0x6969), file).unwrap();
        assert!(
            reason.starts_with("is on nfs storage, which one site holds"),
            "{reason}"
        );
        // ext4: a file of this host only, which node_local_warning is about.
        assert_eq!(
            maintenance_file_on_one_site(&Everywhere(0xEF53), file),
            None
        );
    }

    #[test]
    fn every_network_filesystem_that_caches_listings_is_named() {
        let table = "\
1 0 0:1 / / rw - ext4 /dev/sda1 rw
2 1 0:2 / /nfs rw - nfs4 srv:/x rw,hard,acdirmax=30
3 1 0:3 / /nfs-fresh rw - nfs4 srv:/x rw,hard,noac
4 1 0:4 / /smb rw - cifs //srv/x rw,vers=3.1.1,actimeo=1
5 1 0:5 / /smb-fresh rw - cifs //srv/x rw,actimeo=0
6 1 0:6 / /9p rw - 9p hostshare rw,trans=virtio,cache=loose
7 1 0:7 / /9p-fresh rw - 9p hostshare rw,trans=virtio
8 1 0:8 / /virtiofs rw - virtiofs share rw
9 1 0:9 / /sshfs rw - fuse.sshfs me@srv:/x rw,user_id=0,group_id=0
10 1 0:10 / /gluster rw - fuse.glusterfs srv:/vol rw,user_id=0
11 1 0:11 / /gfs2 rw - gfs2 /dev/mapper/shared rw
";
        let listings = |path: &str| mount_of(table, Path::new(path)).unwrap().listings();
        for fresh in ["/", "/nfs-fresh", "/smb-fresh", "/9p-fresh", "/gfs2"] {
            assert_eq!(listings(fresh), Listings::Fresh, "{fresh}");
        }
        for (cached, option) in [
            ("/nfs", "actimeo=0"),
            ("/smb", "actimeo=0"),
            ("/9p", "cache=none"),
        ] {
            match listings(cached) {
                Listings::Cached(why) => assert!(why.contains(option), "{why}"),
                other => panic!("{cached}: {other:?}"),
            }
        }
        for unknown in ["/virtiofs", "/sshfs", "/gluster"] {
            assert!(
                matches!(listings(unknown), Listings::Unknown(why) if why.contains(unknown)),
                "{unknown}"
            );
        }
    }

    #[test]
    fn actimeo_0_turns_the_listing_cache_off() {
        let table = "1 0 0:5 / /mnt/hb rw - nfs4 srv:/x rw,hard,acregmin=0,acregmax=0,acdirmin=0,acdirmax=0\n";
        let mount = mount_of(table, Path::new("/mnt/hb/dir")).unwrap();
        assert!(!mount.caches_listings());
    }
}
