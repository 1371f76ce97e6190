//! faultfs: a FUSE filesystem for tests that passes every operation through to a backing
//! directory, and can be switched at any moment to fail every operation (EIO, as an unreadable
//! NFS mount answers), to hang every operation (as a hard NFS mount whose server is gone), or to
//! answer every operation late (as a distant or overloaded server does).
//!
//! Several mounts may share one backing directory, one per simulated host: failing or hanging
//! one mount models one host losing its view of the shared storage while the others keep theirs.
//!
//! The filesystem runs on a thread of the test process; only the processes using the mount (the
//! daemons under test) block on it. Caches are off (zero time-to-live for names and attributes,
//! direct I/O for file contents), so each mount sees the backing directory as it is now, as a
//! storage without client caches would. It handles a flat directory of regular files, which is
//! all a heartbeat directory holds; subdirectories are refused.
//!
//! Cleanup: dropping a `FaultFs` (also while unwinding from a panic) first releases every
//! blocked operation, then detaches the mount lazily, so no hung mount outlives the test. A hung
//! operation also gives up by itself after `HANG_LIMIT`.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};

/// How the mount answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every operation reaches the backing directory.
    Normal,
    /// Every operation fails with EIO.
    Fail,
    /// Every operation blocks until the mode changes (then follows the new mode).
    Hang,
    /// Every operation reaches the backing directory at once, and its answer comes this much
    /// later, as over a slow link.
    Slow(Duration),
}

/// The longest an operation stays blocked in `Mode::Hang`; then it fails with EIO. Longer than
/// any test hangs a mount, so it never shortens a hang a test asked for.
pub const HANG_LIMIT: Duration = Duration::from_secs(300);
/// The most bytes one read returns; the kernel asks for at most 1 MiB at a time.
const MAX_READ: u32 = 1 << 20;
/// The most entries a directory listing returns; a heartbeat directory holds a few.
const MAX_ENTRIES: usize = 1024;
/// The names and attributes the kernel may cache: none, so each call reaches the backing files.
const NO_CACHE: Duration = Duration::ZERO;
const ROOT: INodeNo = INodeNo(1);

/// The mode shared between the test and the filesystem thread.
struct Switch {
    mode: Mutex<Mode>,
    changed: Condvar,
}

impl Switch {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
        self.changed.notify_all();
    }

    /// Whether an operation may go ahead now: waits while the mount hangs.
    fn admit(&self) -> Result<(), Errno> {
        let started = Instant::now();
        let mut mode = self.mode.lock().unwrap();
        loop {
            match *mode {
                Mode::Normal | Mode::Slow(_) => return Ok(()),
                Mode::Fail => return Err(Errno::EIO),
                Mode::Hang => {
                    let left = HANG_LIMIT.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(Errno::EIO);
                    }
                    mode = self.changed.wait_timeout(mode, left).unwrap().0;
                }
            }
        }
    }

    /// Sends an answer: at once, or in `Mode::Slow` from a thread of its own after the delay, so
    /// that the session's one thread reads on and several requests wait their delays side by side.
    fn answer(&self, send: impl FnOnce() + Send + 'static) {
        match *self.mode.lock().unwrap() {
            Mode::Slow(delay) => {
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    send();
                });
            }
            Mode::Normal | Mode::Fail | Mode::Hang => send(),
        }
    }
}

/// A mounted faultfs; unmounted when dropped.
pub struct FaultFs {
    mountpoint: PathBuf,
    switch: Arc<Switch>,
    session: Option<BackgroundSession>,
}

impl FaultFs {
    /// Mounts a view of `backing` (an existing directory) on `mountpoint` (created if missing),
    /// in `Mode::Normal`.
    pub fn mount(backing: &Path, mountpoint: &Path) -> FaultFs {
        fs::create_dir_all(mountpoint).unwrap();
        let switch = Arc::new(Switch {
            mode: Mutex::new(Mode::Normal),
            changed: Condvar::new(),
        });
        let filesystem = Passthrough {
            backing: backing.to_path_buf(),
            switch: switch.clone(),
            names: Mutex::new(HashMap::new()),
            open_files: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        };
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("faultfs".to_string())];
        let session = fuser::spawn_mount(filesystem, mountpoint, &config).unwrap_or_else(|error| {
            panic!("mounting faultfs on {}: {error}", mountpoint.display())
        });
        FaultFs {
            mountpoint: mountpoint.to_path_buf(),
            switch,
            session: Some(session),
        }
    }

    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    pub fn set_mode(&self, mode: Mode) {
        self.switch.set(mode);
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        // Blocked operations must finish first: a process waiting on this mount cannot even be
        // killed until its operation is answered.
        self.switch.set(Mode::Normal);
        let path = CString::new(self.mountpoint.as_os_str().as_bytes()).unwrap();
        // A lazy unmount succeeds even while daemons still hold files open on the mount; the
        // kernel ends the connection once they let go, and the filesystem thread ends with it.
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        // The session's own unmount finds nothing left to unmount; its thread is detached.
        drop(self.session.take());
    }
}

/// The filesystem proper: a flat passthrough with a switch in front of every operation.
struct Passthrough {
    backing: PathBuf,
    switch: Arc<Switch>,
    /// The name of each file the kernel knows, by inode number (the backing file's own).
    names: Mutex<HashMap<u64, OsString>>,
    open_files: Mutex<HashMap<u64, File>>,
    next_handle: AtomicU64,
}

/// Flags the backing open must not see: creation is handled by `create`, and O_DIRECT would
/// demand aligned buffers of the backing filesystem.
const FLAGS_NOT_PASSED: i32 = libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_DIRECT;

impl Passthrough {
    fn backing_path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        if ino == ROOT {
            return Ok(self.backing.clone());
        }
        // An inode forgotten since its lookup was replaced under its name: ESTALE, as NFS
        // answers, makes the kernel look the name up again instead of failing the open.
        let names = self.names.lock().unwrap();
        let name = names.get(&ino.0).ok_or(Errno::ESTALE)?;
        Ok(self.backing.join(name))
    }

    /// The attributes of a known inode; a name now holding another file means the inode is gone.
    fn attributes(&self, ino: INodeNo) -> Result<FileAttr, Errno> {
        let metadata = fs::symlink_metadata(self.backing_path(ino)?)?;
        if ino != ROOT && metadata.ino() != ino.0 {
            return Err(Errno::ESTALE);
        }
        Ok(attributes_of(ino, &metadata))
    }

    /// Looks up `name` in the root directory and remembers its inode.
    fn learn(&self, parent: INodeNo, name: &OsStr) -> Result<FileAttr, Errno> {
        if parent != ROOT {
            return Err(Errno::ENOENT);
        }
        let metadata = fs::symlink_metadata(self.backing.join(name))?;
        if !metadata.is_file() {
            // Only regular files are served; anything else would need more than a flat map.
            return Err(Errno::EACCES);
        }
        let ino = INodeNo(metadata.ino());
        assert_ne!(
            ino, ROOT,
            "a backing file cannot have the root's inode number"
        );
        let mut names = self.names.lock().unwrap();
        // A file replaced under the same name (a record renamed over its predecessor) is gone
        // from the directory: forgetting it keeps the map as small as the directory.
        names.retain(|_, known| known != name);
        names.insert(ino.0, name.to_os_string());
        Ok(attributes_of(ino, &metadata))
    }

    fn keep_open(&self, file: File) -> FileHandle {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.open_files.lock().unwrap().insert(handle, file);
        FileHandle(handle)
    }

    fn with_open_file<T>(
        &self,
        handle: FileHandle,
        action: impl FnOnce(&File) -> std::io::Result<T>,
    ) -> Result<T, Errno> {
        let files = self.open_files.lock().unwrap();
        let file = files.get(&handle.0).ok_or(Errno::EBADF)?;
        Ok(action(file)?)
    }

    fn set_attributes(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
    ) -> Result<FileAttr, Errno> {
        let path = self.backing_path(ino)?;
        if let Some(mode) = mode {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
        }
        if let Some(size) = size {
            OpenOptions::new().write(true).open(&path)?.set_len(size)?;
        }
        if atime.is_some() || mtime.is_some() {
            let times = [timespec_of(atime), timespec_of(mtime)];
            let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
            // SAFETY: `c_path` is NUL-terminated and `times` holds the two entries utimensat reads.
            let status =
                unsafe { libc::utimensat(libc::AT_FDCWD, c_path.as_ptr(), times.as_ptr(), 0) };
            if status != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
        }
        self.attributes(ino)
    }

    /// The root directory's entries from `offset` on, each with the offset of the next one.
    fn entries(&self, offset: u64) -> Result<Vec<(u64, INodeNo, FileType, OsString)>, Errno> {
        let mut listing = vec![
            (ROOT, FileType::Directory, OsString::from(".")),
            (ROOT, FileType::Directory, OsString::from("..")),
        ];
        let mut names: Vec<OsString> = fs::read_dir(&self.backing)?
            .take(MAX_ENTRIES)
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            // An entry that vanished since the listing, or is not a file, is left out.
            if let Ok(attr) = self.learn(ROOT, &name) {
                listing.push((attr.ino, attr.kind, name));
            }
        }
        Ok(listing
            .into_iter()
            .enumerate()
            .skip(offset as usize)
            .map(|(index, (ino, kind, name))| (index as u64 + 1, ino, kind, name))
            .collect())
    }
}

fn attributes_of(ino: INodeNo, metadata: &fs::Metadata) -> FileAttr {
    let time = |seconds: i64, nanos: i64| {
        UNIX_EPOCH + Duration::new(seconds.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
    };
    let kind = if metadata.is_dir() {
        FileType::Directory
    } else {
        FileType::RegularFile
    };
    FileAttr {
        ino,
        size: metadata.size(),
        blocks: metadata.blocks(),
        atime: time(metadata.atime(), metadata.atime_nsec()),
        mtime: time(metadata.mtime(), metadata.mtime_nsec()),
        ctime: time(metadata.ctime(), metadata.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind,
        perm: (metadata.mode() & 0o7777) as u16,
        nlink: metadata.nlink() as u32,
        uid: metadata.uid(),
        gid: metadata.gid(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn timespec_of(time: Option<TimeOrNow>) -> libc::timespec {
    let (tv_sec, tv_nsec) = match time {
        None => (0, libc::UTIME_OMIT),
        Some(TimeOrNow::Now) => (0, libc::UTIME_NOW),
        Some(TimeOrNow::SpecificTime(time)) => {
            let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
            (
                since_epoch.as_secs() as libc::time_t,
                since_epoch.subsec_nanos() as libc::c_long,
            )
        }
    };
    libc::timespec { tv_sec, tv_nsec }
}

/// Opens a backing file with the caller's flags, less those the passthrough handles itself.
fn open_backing(path: &Path, flags: i32, create_mode: Option<u32>) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    match flags & libc::O_ACCMODE {
        libc::O_WRONLY => options.write(true),
        libc::O_RDWR => options.read(true).write(true),
        _ => options.read(true),
    };
    if let Some(mode) = create_mode {
        options.create(true).mode(mode);
    }
    options
        .custom_flags(flags & !libc::O_ACCMODE & !FLAGS_NOT_PASSED)
        .open(path)
}

impl Filesystem for Passthrough {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let result = self.switch.admit().and_then(|()| self.learn(parent, name));
        self.switch.answer(move || match result {
            Ok(attr) => reply.entry(&NO_CACHE, &attr, Generation(0)),
            Err(error) => reply.error(error),
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let result = self.switch.admit().and_then(|()| self.attributes(ino));
        self.switch.answer(move || match result {
            Ok(attr) => reply.attr(&NO_CACHE, &attr),
            Err(error) => reply.error(error),
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = self.switch.admit().and_then(|()| {
            if uid.is_some() || gid.is_some() {
                // Nothing here changes owners; saying so beats pretending.
                return Err(Errno::EPERM);
            }
            self.set_attributes(ino, mode, size, atime, mtime)
        });
        self.switch.answer(move || match result {
            Ok(attr) => reply.attr(&NO_CACHE, &attr),
            Err(error) => reply.error(error),
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = self.switch.admit().and_then(|()| {
            if parent != ROOT {
                return Err(Errno::ENOENT);
            }
            fs::remove_file(self.backing.join(name))?;
            self.names.lock().unwrap().retain(|_, known| known != name);
            Ok(())
        });
        self.switch.answer(move || match result {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = self.switch.admit().and_then(|()| {
            if parent != ROOT || newparent != ROOT {
                return Err(Errno::ENOENT);
            }
            if !flags.is_empty() {
                return Err(Errno::EINVAL);
            }
            fs::rename(self.backing.join(name), self.backing.join(newname))?;
            self.names.lock().unwrap().retain(|_, known| known != name);
            self.learn(ROOT, newname).map(|_| ())
        });
        self.switch.answer(move || match result {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = self.switch.admit().and_then(|()| {
            if ino == ROOT {
                return Err(Errno::EISDIR);
            }
            let file = open_backing(&self.backing_path(ino)?, flags.0, None)?;
            Ok(self.keep_open(file))
        });
        self.switch.answer(move || match result {
            Ok(handle) => reply.opened(handle, FopenFlags::FOPEN_DIRECT_IO),
            Err(error) => reply.error(error),
        });
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = self.switch.admit().and_then(|()| {
            if parent != ROOT {
                return Err(Errno::ENOENT);
            }
            let file = open_backing(&self.backing.join(name), flags, Some(mode & !umask))?;
            let attr = self.learn(parent, name)?;
            Ok((attr, self.keep_open(file)))
        });
        self.switch.answer(move || match result {
            Ok((attr, handle)) => reply.created(
                &NO_CACHE,
                &attr,
                Generation(0),
                handle,
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(error) => reply.error(error),
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let result = self.switch.admit().and_then(|()| {
            self.with_open_file(fh, |file| {
                let mut buffer = vec![0; size.min(MAX_READ) as usize];
                let mut filled = 0;
                while filled < buffer.len() {
                    match file.read_at(&mut buffer[filled..], offset + filled as u64)? {
                        0 => break,
                        read => filled += read,
                    }
                }
                buffer.truncate(filled);
                Ok(buffer)
            })
        });
        self.switch.answer(move || match result {
            Ok(data) => reply.data(&data),
            Err(error) => reply.error(error),
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let written = data.len() as u32;
        let result = self
            .switch
            .admit()
            .and_then(|()| self.with_open_file(fh, |file| file.write_all_at(data, offset)));
        self.switch.answer(move || match result {
            Ok(()) => reply.written(written),
            Err(error) => reply.error(error),
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() reports a flush error, as it reports an NFS write-back error.
        let admitted = self.switch.admit();
        self.switch.answer(move || match admitted {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let result = self
            .switch
            .admit()
            .and_then(|()| self.with_open_file(fh, File::sync_all));
        self.switch.answer(move || match result {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(error),
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // Not switched: the kernel ignores the answer, and the backing file must be closed.
        self.open_files.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let admitted = self.switch.admit();
        self.switch.answer(move || match admitted {
            Ok(()) if ino == ROOT => reply.opened(FileHandle(0), FopenFlags::empty()),
            Ok(()) => reply.error(Errno::ENOTDIR),
            Err(error) => reply.error(error),
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = self.switch.admit().and_then(|()| {
            if ino != ROOT {
                return Err(Errno::ENOTDIR);
            }
            self.entries(offset)
        });
        self.switch.answer(move || match result {
            Ok(entries) => {
                for (next, ino, kind, name) in entries {
                    if reply.add(ino, next, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(error) => reply.error(error),
        });
    }
}
