//! Chaos tests of the safe profile on real processes (issue 6): two hacmp daemons, each seeing
//! the shared heartbeat directory through its own faultfs mount, and an oracle independent of
//! hacmp that records when each application instance lives.

mod support;

use std::fs;
use std::sync::mpsc;
use std::time::Duration;

use support::fuse_fs::{FaultFs, Mode};

/// faultfs itself: a faithful passthrough until told otherwise, per mount.
#[test]
fn faultfs_passes_through_fails_and_hangs_per_mount() {
    let root = tempfile::tempdir().unwrap();
    let backing = root.path().join("shared");
    fs::create_dir(&backing).unwrap();
    let a = FaultFs::mount(&backing, &root.path().join("a"));
    let b = FaultFs::mount(&backing, &root.path().join("b"));

    fs::write(a.path().join("nodeA"), "one\n").unwrap();
    assert_eq!(fs::read_to_string(backing.join("nodeA")).unwrap(), "one\n");
    assert_eq!(fs::read_to_string(b.path().join("nodeA")).unwrap(), "one\n");
    fs::write(backing.join("nodeA"), "two, longer\n").unwrap();
    assert_eq!(
        fs::read_to_string(a.path().join("nodeA")).unwrap(),
        "two, longer\n",
        "no stale cache"
    );
    let touched = std::process::Command::new("touch")
        .args(["-d", "@1000000000"])
        .arg(b.path().join("nodeB"))
        .status()
        .unwrap();
    assert!(touched.success());
    let mtime = fs::metadata(backing.join("nodeB"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        mtime,
        std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000)
    );
    fs::rename(a.path().join("nodeB"), a.path().join("nodeC")).unwrap();
    let mut names: Vec<String> = fs::read_dir(b.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["nodeA", "nodeC"]);

    a.set_mode(Mode::Fail);
    let error = fs::read_to_string(a.path().join("nodeA")).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO));
    assert!(fs::read_dir(a.path()).is_err());
    assert_eq!(
        fs::read_to_string(b.path().join("nodeA")).unwrap(),
        "two, longer\n",
        "the other mount still answers"
    );

    a.set_mode(Mode::Hang);
    let (sender, receiver) = mpsc::channel();
    let blocked = a.path().join("nodeA");
    let reader = std::thread::spawn(move || {
        sender.send(fs::read_to_string(blocked).unwrap()).unwrap();
    });
    assert!(
        receiver.recv_timeout(Duration::from_millis(500)).is_err(),
        "a read on a hung mount blocks"
    );
    fs::write(b.path().join("nodeA"), "three\n").unwrap();
    a.set_mode(Mode::Normal);
    assert_eq!(
        receiver.recv_timeout(Duration::from_secs(10)).unwrap(),
        "three\n"
    );
    reader.join().unwrap();
}

/// Dropping a hung mount releases the operations blocked on it and unmounts.
#[test]
fn dropping_a_hung_faultfs_releases_its_callers_and_unmounts() {
    let root = tempfile::tempdir().unwrap();
    let backing = root.path().join("shared");
    fs::create_dir(&backing).unwrap();
    fs::write(backing.join("nodeA"), "record\n").unwrap();
    let mountpoint = root.path().join("a");
    let mount = FaultFs::mount(&backing, &mountpoint);
    mount.set_mode(Mode::Hang);
    let (sender, receiver) = mpsc::channel();
    let blocked = mountpoint.join("nodeA");
    let reader = std::thread::spawn(move || sender.send(fs::metadata(blocked).is_ok()).unwrap());
    assert!(receiver.recv_timeout(Duration::from_millis(500)).is_err());
    drop(mount);
    receiver.recv_timeout(Duration::from_secs(10)).unwrap();
    reader.join().unwrap();
    assert!(
        !mountpoint.join("nodeA").exists(),
        "the mountpoint shows the empty directory beneath again"
    );
}
