//! The Debian package as an installer gets it: built with cargo-deb (from the test build's
//! binary, not a release build), its contents and control files, its unit checked by
//! `systemd-analyze verify` where that tool is installed, and a whole life in a scratch root
//! with dpkg: install (service user created there, the shipped config passes the installed
//! binary's check-config), upgrade (config and data kept), remove, purge (data gone).
//!
//! Needs cargo-deb and dpkg; `scripts/test.sh` installs them. Without cargo-deb these tests
//! fail, saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The cargo-deb release the packaging metadata is written for.
const CARGO_DEB: &str = "3.8.0";
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn require_cargo_deb() {
    let found = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "cargo-deb is not installed: run scripts/test.sh, or \
         `cargo install cargo-deb --version {CARGO_DEB} --locked`"
    );
}

/// Build the package from the debug binary this test run was built with. `revision` is the
/// Debian revision, so an upgrade can be tested.
fn build_deb(out: &Path, revision: u32) -> PathBuf {
    require_cargo_deb();
    // The manual pages, from this binary's own command definitions, where the package
    // metadata takes them (`target/release/man` stands for the profile's directory).
    let exe = Path::new(env!("CARGO_BIN_EXE_evsite"));
    let man = exe.parent().expect("the binary's directory").join("man");
    run(Command::new(exe).arg("manpages").arg(&man));
    let version = format!("{VERSION}-{revision}");
    let built = run(Command::new("cargo")
        .current_dir(ROOT)
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            // Stripped (a copy) as a release build is, which lintian insists on.
            "--fast",
        ])
        .args(["--deb-version", &version, "--output"])
        .arg(out));
    let path = text(&built.stdout).trim().lines().last().map(PathBuf::from);
    let path = path.expect("cargo deb prints the package path");
    assert!(path.is_file(), "{} was not written", path.display());
    path
}

/// The package, built once for every test here (kept in a directory that lives as long as
/// the test process).
fn deb() -> &'static Path {
    static DEB: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_dir, path) = DEB.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = build_deb(dir.path(), 1);
        (dir, path)
    });
    path
}

fn deb_arch() -> String {
    let out = run(Command::new("dpkg").arg("--print-architecture"));
    text(&out.stdout).trim().to_owned()
}

#[test]
fn the_package_holds_the_binary_the_unit_the_conffile_and_the_scripts() {
    let deb = deb();
    let name = deb.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert_eq!(name, format!("evsite_{VERSION}-1_{}.deb", deb_arch()));

    let listing = text(&run(Command::new("dpkg-deb").arg("-c").arg(deb)).stdout);
    for (path, mode) in [
        ("./usr/bin/evsite", "-rwxr-xr-x"),
        ("./usr/lib/systemd/system/evsite.service", "-rw-r--r--"),
        ("./usr/lib/sysusers.d/evsite.conf", "-rw-r--r--"),
        ("./etc/evsite/evsite.toml", "-rw-r--r--"),
        ("./etc/evsite/models.d/README", "-rw-r--r--"),
        ("./usr/share/doc/evsite/devices.md", "-rw-r--r--"),
        ("./usr/share/doc/evsite/operations.md", "-rw-r--r--"),
        ("./usr/share/doc/evsite/examples/evsite.toml", "-rw-r--r--"),
        ("./usr/share/doc/evsite/changelog.Debian.gz", "-rw-r--r--"),
        ("./usr/share/doc/evsite/copyright", "-rw-r--r--"),
        ("./usr/share/man/man1/evsite.1.gz", "-rw-r--r--"),
    ] {
        let line = listing.lines().find(|l| l.ends_with(&format!(" {path}")));
        let line = line.unwrap_or_else(|| panic!("{path} missing from:\n{listing}"));
        assert!(line.starts_with(mode), "{line}");
        assert!(line.contains(" 0/0 "), "owned by root: {line}");
    }

    let info = text(&run(Command::new("dpkg-deb").arg("-I").arg(deb)).stdout);
    for part in [
        "conffiles",
        "postinst",
        "postrm",
        "prerm",
        "Package: evsite",
    ] {
        assert!(info.contains(part), "{part} missing from:\n{info}");
    }
    let field = |f: &str| text(&run(Command::new("dpkg-deb").args(["-f"]).arg(deb).arg(f)).stdout);
    assert!(field("Depends").contains("systemd-sysusers"));

    let control = tempfile::tempdir().expect("temp dir");
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb)
        .arg(control.path()));
    let read = |f: &str| std::fs::read_to_string(control.path().join(f)).expect(f);
    assert_eq!(
        read("conffiles").trim(),
        "/etc/evsite/evsite.toml\n/etc/evsite/models.d/README"
    );
    // The models directory holds its README only: no model is installed there.
    let models: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|p| p.starts_with("./etc/evsite/models.d/"))
        .collect();
    assert_eq!(
        models,
        ["./etc/evsite/models.d/", "./etc/evsite/models.d/README"],
        "{listing}"
    );
    let postinst = read("postinst");
    assert!(postinst.contains("systemd-sysusers"), "{postinst}");
    assert!(
        postinst.contains("try-restart evsite.service"),
        "{postinst}"
    );
    assert!(
        !postinst.contains("deb-systemd-invoke start"),
        "not started before the site is described:\n{postinst}"
    );
    let postrm = read("postrm");
    assert!(
        postrm.contains("rm -rf \"${DPKG_ROOT:-}/var/lib/evsite\""),
        "{postrm}"
    );
    assert!(read("prerm").contains("stop evsite.service"));
}

/// The subcommands `evsite --help` lists.
fn subcommands() -> Vec<String> {
    let help = text(&run(Command::new(env!("CARGO_BIN_EXE_evsite")).arg("--help")).stdout);
    let commands = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .split("\n\n")
        .next()
        .unwrap_or_default();
    commands
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_manual_has_a_page_for_evsite_and_each_command_it_lists() {
    let deb = deb();
    let root = tempfile::tempdir().expect("temp dir");
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root.path()));
    let man1 = root.path().join("usr/share/man/man1");
    let page = |name: &str| {
        let gz = man1.join(format!("{name}.1.gz"));
        assert!(gz.is_file(), "{} missing", gz.display());
        text(&run(Command::new("zcat").arg(&gz)).stdout)
    };
    let main = page("evsite");
    let commands = subcommands();
    for c in [
        "run",
        "check-config",
        "probe",
        "models",
        "status",
        "sessions",
        "report",
    ] {
        assert!(commands.iter().any(|x| x == c), "{c} not in {commands:?}");
    }
    for c in &commands {
        let named = c.replace('-', "\\-");
        assert!(main.contains(&named), "evsite.1 does not name {c}:\n{main}");
        let sub = page(&format!("evsite-{c}"));
        // roff writes a hyphen as \-.
        let title = format!("evsite-{c}").replace('-', "\\-");
        assert!(sub.contains(&title), "evsite-{c}.1 names {title}:\n{sub}");
    }
    // Every page of the package is one of these: no hidden command leaks into the manual.
    let pages = std::fs::read_dir(&man1).expect("man1").count();
    assert_eq!(pages, commands.len() + 1);
    // The page follows the definitions: an option added to a command shows in its page.
    assert!(page("evsite-check-config").contains("\\-\\-config"));
}

/// lintian, Debian's package checker, on the built package: not one error or warning. An
/// override must come with its reason in the package's lintian-overrides.
#[test]
fn lintian_finds_nothing_wrong_with_the_package() {
    let deb = deb();
    let found = Command::new("lintian").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "lintian is not installed: run scripts/test.sh, or apt-get install lintian"
    );
    let out = Command::new("lintian")
        .args(["--no-tag-display-limit", "--display-info"])
        .arg(deb)
        .output()
        .expect("lintian runs");
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    assert!(bad.is_empty(), "lintian:\n{report}");
}

#[test]
fn the_unit_is_a_hardened_notify_service_that_systemd_accepts() {
    let unit =
        std::fs::read_to_string(Path::new(ROOT).join("systemd/evsite.service")).expect("unit file");
    for line in [
        "Type=notify",
        "WatchdogSec=30",
        "Restart=always",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=evsite",
        "SupplementaryGroups=dialout",
        "StateDirectory=evsite",
        "ConfigurationDirectory=evsite",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == line),
            "{line} missing from the unit"
        );
    }

    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: unit not verified");
        return;
    };
    assert!(version.status.success());
    // verify checks that the commands exist: point ExecStart at the binary under test.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("evsite.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/evsite", env!("CARGO_BIN_EXE_evsite")),
    )
    .expect("unit copy");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A scratch root that dpkg can install into without a chroot: maintainer scripts run here
/// with `DPKG_ROOT` set, and must touch nothing outside it.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("temp dir");
        for d in [
            "var/lib/dpkg/info",
            "var/lib/dpkg/updates",
            "var/lib/dpkg/triggers",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).expect("dpkg dirs");
        }
        std::fs::write(dir.path().join("var/lib/dpkg/status"), "").expect("status");
        Scratch { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn dpkg(&self, args: &[&str], deb: Option<&Path>) -> Output {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", self.dir.path().display()))
            // Its dependencies (libc, systemd) are not in the scratch root.
            .args([
                "--force-script-chrootless",
                "--force-depends",
                "--force-confold",
            ])
            .args(args)
            .stdin(std::process::Stdio::null());
        if let Some(deb) = deb {
            cmd.arg(deb);
        }
        run(&mut cmd)
    }

    fn installed_version(&self) -> Option<String> {
        let out = Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                self.path("var/lib/dpkg").display()
            ))
            .args(["-W", "-f=${Version} ${db:Status-Status}", "evsite"])
            .output()
            .expect("dpkg-query runs");
        out.status.success().then(|| text(&out.stdout))
    }
}

#[test]
fn install_upgrade_remove_and_purge_in_a_scratch_root() {
    let deb = deb();
    let root = Scratch::new();
    root.dpkg(&["--install"], Some(deb));
    assert_eq!(
        root.installed_version().as_deref(),
        Some(format!("{VERSION}-1 installed").as_str())
    );

    // The service user, in the scratch root's own files and in group dialout.
    let passwd = std::fs::read_to_string(root.path("etc/passwd")).expect("passwd written");
    let user = passwd.lines().find(|l| l.starts_with("evsite:"));
    let user = user.unwrap_or_else(|| panic!("no evsite user in:\n{passwd}"));
    assert!(
        user.ends_with(":/var/lib/evsite:/usr/sbin/nologin"),
        "{user}"
    );
    let group = std::fs::read_to_string(root.path("etc/group")).expect("group written");
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("dialout:") && l.split(':').nth(3) == Some("evsite")),
        "{group}"
    );

    // The installed binary accepts the shipped config.
    let config = root.path("etc/evsite/evsite.toml");
    let check = Command::new(root.path("usr/bin/evsite"))
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .env_remove("EVSITE_CONFIG")
        .output()
        .expect("installed evsite runs");
    assert!(
        check.status.success(),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert!(
        text(&check.stdout).contains(": ok"),
        "{}",
        text(&check.stdout)
    );

    // The models directory, for the installer's own model files.
    let models = root.path("etc/evsite/models.d");
    assert!(models.join("README").is_file(), "{}", models.display());
    let mine = models.join("my-meter.toml");
    std::fs::write(&mine, "# the installer's model\n").expect("a model file");

    // The installer's edits and the session data survive an upgrade.
    let edited = std::fs::read_to_string(&config)
        .expect("config")
        .replace("grid_limit_a = 63.0", "grid_limit_a = 50.0");
    std::fs::write(&config, &edited).expect("edit config");
    let data = root.path("var/lib/evsite/db");
    std::fs::create_dir_all(root.path("var/lib/evsite")).expect("state dir");
    std::fs::write(&data, "sessions").expect("data");
    let newer = tempfile::tempdir().expect("temp dir");
    let deb2 = build_deb(newer.path(), 2);
    root.dpkg(&["--install"], Some(&deb2));
    assert_eq!(
        root.installed_version().as_deref(),
        Some(format!("{VERSION}-2 installed").as_str())
    );
    assert_eq!(std::fs::read_to_string(&config).expect("config"), edited);
    assert_eq!(std::fs::read_to_string(&data).expect("data"), "sessions");

    // Remove keeps config and data; purge removes both.
    root.dpkg(&["--remove", "evsite"], None);
    assert!(!root.path("usr/bin/evsite").exists());
    assert!(config.exists() && data.exists());
    root.dpkg(&["--purge", "evsite"], None);
    assert!(!config.exists(), "purge removes the conffile");
    assert!(
        mine.is_file(),
        "the installer's own model files are never the package's to remove"
    );
    assert!(
        !root.path("var/lib/evsite").exists(),
        "purge removes the data"
    );
    assert_eq!(root.installed_version(), None);
}
