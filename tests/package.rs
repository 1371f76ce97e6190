//! The Debian package (`make deb`): built by cargo-deb from what `make generated` writes, and
//! read back with dpkg-deb. The files a package holds do not depend on how its binary was
//! optimised, so this test packs the debug binary `cargo test` has already built, under a
//! cargo profile of its own (`deb-check`, a directory nothing else writes), instead of paying
//! for a release build; `make deb` packs the release binary with the same metadata.
//!
//! The upgrade path: a safe master installed from the package keeps its application when the
//! package is upgraded to a rebuilt binary and the daemon restarted.

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// `make generated` writes one directory for every package; one test at a time writes it.
static GENERATED: Mutex<()> = Mutex::new(());

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8(run(command).stdout).expect("dpkg-deb prints UTF-8 here")
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Whether cargo-deb runs, installing it as `make deps` does when it is missing.
fn cargo_deb_available() -> Result<(), String> {
    let works = |command: &mut Command| command.output().is_ok_and(|o| o.status.success());
    if works(cargo().args(["deb", "--version"])) {
        return Ok(());
    }
    eprintln!("cargo-deb is missing; installing it with `cargo install cargo-deb --locked`");
    let installed = cargo()
        .args(["install", "cargo-deb", "--locked"])
        .output()
        .map_err(|e| format!("cargo install cannot run: {e}"))?;
    if !installed.status.success() {
        return Err(format!(
            "cargo install cargo-deb failed: {}",
            String::from_utf8_lossy(&installed.stderr).trim_end()
        ));
    }
    Ok(())
}

/// The names of the project's docs/*.md, which README and --help point to.
fn docs() -> impl Iterator<Item = String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .collect();
    names.sort();
    names.into_iter()
}

/// The pages hacmp.1 refers to, as "hacmp-run" for hacmp-run(1).
fn pages_named_in(page: &str) -> BTreeSet<String> {
    let reference = regex::Regex::new(r"hacmp\\-([a-z-]+)\(1\)").unwrap();
    reference
        .captures_iter(page)
        .map(|found| format!("hacmp-{}", &found[1]))
        .collect()
}

/// The package the tests that only read it share, built once.
struct Package {
    deb: PathBuf,
    /// Where `dpkg-deb -x` unpacked it.
    unpacked: PathBuf,
}

/// The package, or `None` (the test is skipped) where cargo-deb cannot run.
fn package() -> Option<&'static Package> {
    static PACKAGE: OnceLock<Option<Package>> = OnceLock::new();
    PACKAGE.get_or_init(build_package).as_ref()
}

fn build_package() -> Option<Package> {
    if let Err(reason) = cargo_deb_available() {
        eprintln!("SKIPPED: the package cannot be built here: {reason}");
        return None;
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_hacmp"));
    let target_dir = binary.parent().and_then(Path::parent).unwrap();
    // Under the profile's own directory rather than a temporary one: a static is never dropped.
    let out = target_dir.join("deb-check").join("package");
    let _ = std::fs::remove_dir_all(&out);
    let deb = pack("deb-check", binary, 1, &out);
    let unpacked = out.join("unpacked");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    Some(Package { deb, unpacked })
}

/// Packs `binary` with the package's metadata into a .deb in `out`, with `revision` as the
/// Debian revision; `profile` names the target directory (nothing else writes it) from which
/// cargo-deb takes the binary.
fn pack(profile: &str, binary: &Path, revision: u32, out: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let test_binary = Path::new(env!("CARGO_BIN_EXE_hacmp"));
    let target_dir = test_binary.parent().and_then(Path::parent).unwrap();
    let _generating = GENERATED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    run(Command::new("make")
        .current_dir(root)
        .args(["-s", "generated", "BINDIR=/usr/bin"])
        .arg(format!("HACMP={}", test_binary.display())));
    std::fs::create_dir_all(target_dir.join(profile)).unwrap();
    std::fs::copy(binary, target_dir.join(profile).join("hacmp")).unwrap();
    std::fs::create_dir_all(out).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    run(cargo()
        .current_dir(root)
        .args([
            "deb",
            "--no-build",
            "--fast",
            "--quiet",
            "--profile",
            profile,
            "--deb-version",
            &format!("{version}-{revision}"),
            "--output",
        ])
        .arg(out));
    std::fs::read_dir(out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "deb"))
        .expect("cargo deb wrote a .deb")
}

#[test]
fn the_package_holds_binary_pages_completions_units_docs_and_a_conffile() {
    let Some(Package { deb, unpacked }) = package() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("hacmp_{version}-1_")),
        "{}",
        deb.display()
    );

    let generated = root.join("target/generated");
    let main_page = std::fs::read_to_string(generated.join("man/hacmp.1")).unwrap();
    let subcommand_pages = pages_named_in(&main_page);
    for subcommand in ["run", "status", "maintenance", "check", "parity"] {
        assert!(
            subcommand_pages.contains(&format!("hacmp-{subcommand}")),
            "hacmp.1 names hacmp-{subcommand}(1): {subcommand_pages:?}"
        );
    }
    let units: Vec<String> = std::fs::read_dir(root.join("compat"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".service"))
        .collect();
    assert!(units.iter().any(|unit| unit == "hacmp.service"));

    let mut expected: BTreeSet<String> = [
        "usr/bin/hacmp",
        "usr/share/man/man1/hacmp.1.gz",
        "usr/share/bash-completion/completions/hacmp",
        "usr/share/zsh/vendor-completions/_hacmp",
        "usr/share/fish/vendor_completions.d/hacmp.fish",
        "etc/hacmp/heartbeat.vars",
        "usr/share/doc/hacmp/README.md",
        "usr/share/doc/hacmp/DIVERGENCES.md",
        "usr/share/doc/hacmp/reattach.conf",
        "usr/share/doc/hacmp/copyright",
    ]
    .map(String::from)
    .into();
    expected.extend(
        subcommand_pages
            .iter()
            .map(|page| format!("usr/share/man/man1/{page}.1.gz")),
    );
    expected.extend(
        units
            .iter()
            .map(|unit| format!("usr/lib/systemd/system/{unit}")),
    );
    // `dpkg-deb -c` lists like `tar tv`: the path is the last field, directories end in '/'.
    expected.extend(docs().map(|doc| format!("usr/share/doc/hacmp/docs/{doc}")));
    let listed: BTreeSet<String> = stdout(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter(|path| !path.ends_with('/'))
        .map(|path| path.trim_start_matches("./").to_string())
        .collect();
    assert_eq!(listed, expected);

    let control = stdout(Command::new("dpkg-deb").arg("-I").arg(deb));
    for field in [
        "Package: hacmp".to_string(),
        format!("Version: {version}-1"),
        "Section: admin".to_string(),
    ] {
        assert!(
            control.contains(&format!(" {field}\n")),
            "{field}: {control}"
        );
    }
    assert!(
        control.contains(" Depends: libc6"),
        "dpkg-shlibdeps found the C library: {control}"
    );
    let conffiles = stdout(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"));
    assert_eq!(conffiles, "/etc/hacmp/heartbeat.vars\n");

    // What was packed runs, and its units start it where the package put it.
    let reported = stdout(Command::new(unpacked.join("usr/bin/hacmp")).arg("--version"));
    assert_eq!(reported, format!("hacmp {version}\n"));
    for unit in &units {
        let path: PathBuf = unpacked.join("usr/lib/systemd/system").join(unit);
        let text = std::fs::read_to_string(&path).unwrap();
        let starts: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("ExecStart="))
            .collect();
        assert!(
            !starts.is_empty()
                && starts
                    .iter()
                    .all(|line| line.starts_with("ExecStart=/usr/bin/hacmp ")),
            "{unit}: {text}"
        );
        assert!(!text.contains("/usr/local/bin/hacmp"), "{unit}: {text}");
    }
}

/// A daemon run from the installed package, killed by PID when dropped.
struct InstalledDaemon(Child);

impl InstalledDaemon {
    fn start(root: &Path, node: &support::Node, runtime: &Path) -> InstalledDaemon {
        let stdout = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("daemon.out"))
            .unwrap();
        let child = Command::new(root.join("usr/bin/hacmp"))
            .arg("run")
            .arg(node.dir.join("heartbeat.vars"))
            .env("RUNTIME_DIRECTORY", runtime)
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        InstalledDaemon(child)
    }
}

impl Drop for InstalledDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What tells the rebuilt binary from the one the test built.
const REBUILT_NOTE: &[u8] = b"hacmp rebuilt for the upgrade test";

/// `dpkg -i` into a root of its own (its own database, its own log), never this machine's.
fn dpkg_install(root: &Path, deb: &Path) {
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg(format!("--log={}", root.join("dpkg.log").display()))
        // The C library is this machine's, not in the private root's database.
        .arg("--force-depends")
        .arg("-i")
        .arg(deb));
}

/// Upgrade keeps the application: install the package, become master in the safe profile, upgrade
/// to a rebuilt package (another binary, a bumped revision), restart the daemon: it reattaches
/// to the guard the old binary started, and the application keeps its PID.
#[test]
fn an_upgrade_keeps_a_safe_masters_application() {
    if let Err(reason) = cargo_deb_available() {
        eprintln!("SKIPPED: the package cannot be built here: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_hacmp"));
    let old = pack("deb-upgrade-old", binary, 1, &dir.path().join("old"));
    // A rebuilt binary: the same program with a note section more (one that cargo-deb's strip
    // keeps), so another file in every respect.
    let rebuilt = dir.path().join("rebuilt-hacmp");
    let note = dir.path().join("note");
    std::fs::write(&note, REBUILT_NOTE).unwrap();
    run(Command::new("objcopy")
        .arg(format!(
            "--add-section=.note.hacmp-rebuilt={}",
            note.display()
        ))
        .arg(binary)
        .arg(&rebuilt));
    let new = pack("deb-upgrade-new", &rebuilt, 2, &dir.path().join("new"));

    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    dpkg_install(&root, &old);

    let marker = support::unique_marker("upgrade");
    let node = support::node_in(dir.path(), "nodeA", &marker, 5, 1);
    let variables: String = node
        .vars
        .assignments()
        .into_iter()
        .chain([("hacmpProfile", "safe".to_string())])
        .map(|(name, value)| format!("{name}='{value}'\n"))
        .collect();
    std::fs::write(node.dir.join("heartbeat.vars"), variables).unwrap();
    let runtime = node.dir.join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();

    let daemon = InstalledDaemon::start(&root, &node, &runtime);
    let app = support::wait_for_app(&node, 60);
    dpkg_install(&root, &new);
    let status = stdout(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args(["-s", "hacmp"]),
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        status.contains(&format!("\nVersion: {version}-2\n")),
        "{status}"
    );
    let installed = std::fs::read(root.join("usr/bin/hacmp")).unwrap();
    assert!(
        installed
            .windows(REBUILT_NOTE.len())
            .any(|window| window == REBUILT_NOTE),
        "the rebuilt binary is installed"
    );

    drop(daemon);
    let _daemon = InstalledDaemon::start(&root, &node, &runtime);
    support::wait_until(
        "the upgraded daemon to reattach",
        Duration::from_secs(30),
        || {
            node.output()
                .iter()
                .any(|line| line.starts_with("reattached to the application of the previous run"))
        },
    );
    // Longer than the lease: the upgraded daemon renews it.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        node.app_pids(),
        [app],
        "the same application after the upgrade"
    );
}

#[test]
fn the_package_holds_every_doc_and_man_pages_with_every_variable() {
    let Some(Package { unpacked, .. }) = package() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let installed_docs = unpacked.join("usr/share/doc/hacmp/docs");
    for doc in docs() {
        assert_eq!(
            std::fs::read(installed_docs.join(&doc)).unwrap(),
            std::fs::read(root.join("docs").join(&doc)).unwrap(),
            "{doc} is packed as it is"
        );
    }
    let readme = std::fs::read_to_string(unpacked.join("usr/share/doc/hacmp/README.md")).unwrap();
    let linked = regex::Regex::new(r"\]\((docs/[a-z-]+\.md)\)").unwrap();
    for link in linked.captures_iter(&readme) {
        assert!(
            unpacked
                .join("usr/share/doc/hacmp")
                .join(&link[1])
                .is_file(),
            "README's link {} resolves in the package",
            &link[1]
        );
    }

    let variables = hacmp::manual::variables();
    for page in ["hacmp", "hacmp-run", "hacmp-check"] {
        let path = unpacked.join(format!("usr/share/man/man1/{page}.1.gz"));
        let roff = stdout(Command::new("gzip").arg("-dc").arg(&path));
        assert!(roff.contains("\n.SH VARIABLES\n"), "{page}: {roff}");
        for variable in &variables {
            let entry = format!(
                "\\fB{}\\fR (default: {})\n",
                variable.name, variable.default
            );
            assert!(roff.contains(&entry), "{page} lacks {entry:?}");
        }
        // man renders the page without a complaint about its markup.
        let rendered = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        let complaints = String::from_utf8_lossy(&rendered.stderr);
        assert!(
            rendered.status.success() && complaints.is_empty(),
            "{page}: {complaints}"
        );
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(
            text.contains("hacmpEtcdEndpoints (default: none)"),
            "{page}: {text}"
        );
    }

    let copyright =
        std::fs::read_to_string(unpacked.join("usr/share/doc/hacmp/copyright")).unwrap();
    assert!(
        copyright.contains("License: MIT OR Apache-2.0"),
        "{copyright}"
    );
}
