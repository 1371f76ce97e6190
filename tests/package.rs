//! The Debian package (`make deb`): built by cargo-deb from what `make generated` writes, and
//! read back with dpkg-deb. The files a package holds do not depend on how its binary was
//! optimised, so this test packs the debug binary `cargo test` has already built, under a
//! cargo profile of its own (`deb-check`, a directory nothing else writes), instead of paying
//! for a release build; `make deb` packs the release binary with the same metadata.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The profile whose target directory this test puts the binary in.
const PROFILE: &str = "deb-check";

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

/// The package built once for every test of this file: `make generated` rewrites
/// target/generated, so two tests must not build it at the same time.
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = Path::new(env!("CARGO_BIN_EXE_hacmp"));
    let target_dir = binary.parent().and_then(Path::parent).unwrap();
    run(Command::new("make")
        .current_dir(root)
        .args(["-s", "generated", "BINDIR=/usr/bin"])
        .arg(format!("HACMP={}", binary.display())));
    std::fs::create_dir_all(target_dir.join(PROFILE)).unwrap();
    std::fs::copy(binary, target_dir.join(PROFILE).join("hacmp")).unwrap();
    // Under the profile's own directory rather than a temporary one: a static is never dropped.
    let out = target_dir.join(PROFILE).join("package");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    run(cargo()
        .current_dir(root)
        .args([
            "deb",
            "--no-build",
            "--fast",
            "--quiet",
            "--profile",
            PROFILE,
            "--output",
        ])
        .arg(&out));
    let deb = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "deb"))
        .expect("cargo deb wrote a .deb");
    let unpacked = out.join("unpacked");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    Some(Package { deb, unpacked })
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
    expected.extend(docs().map(|doc| format!("usr/share/doc/hacmp/docs/{doc}")));
    // `dpkg-deb -c` lists like `tar tv`: the path is the last field, directories end in '/'.
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
