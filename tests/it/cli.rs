//! The `evsite` binary as an installer uses it: `check-config` on broken and good files,
//! `models`, and `probe` against a simulated site served in this process over TCP and a
//! pseudo-terminal.

use std::path::{Path, PathBuf};
use std::process::Output;

use evsite::devices::registry;
use evsite::simulator::{serve_site, write_config, Scenario, ServedSite, SharedSite, SiteModel};

const EX_CONFIG: i32 = 78;

fn evsite() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_evsite"));
    // The environment must not override the files under test.
    cmd.env_remove("EVSITE_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("EVSITE__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config with one mistake per marked line; each `# <key>` comment names the key that the
/// error on that line must name.
const BROKEN: &str = r#"[site]
id = "depot 7"                # site.id
grid_limit_a = 63.0
phases = 2                    # site.phases
voltage_v = 230.0

[control]
interval_ms = 5               # control.interval_ms

[meter]
model = "eastron-sdm999"      # meter.model
host = "10.0.0.2"

[[charger]]
id = "cp-01"
model = "alfen-eve"
host = "10.0.0.21"
max_current_a = 120.0         # charger[0].max_current_a
"#;

/// (line, key) of every marked line of `BROKEN`, 1-based.
fn marked_lines() -> Vec<(usize, String)> {
    BROKEN
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            l.split_once("# ")
                .map(|(_, k)| (i + 1, k.trim().to_string()))
        })
        .collect()
}

#[test]
fn check_config_reports_every_error_with_its_position_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, BROKEN).unwrap();
    let out = evsite()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{out:?}");
    let stderr = text(&out.stderr);
    let prefix = format!("{}:", path.display());
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut found = Vec::new();
    for l in &lines {
        // file:line:col: key: reason
        let rest = l
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("not file:line:col: {l:?}\n{stderr}"));
        let mut parts = rest.splitn(4, ':');
        let line: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{l}: {e}"));
        let col: usize = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{l}: {e}"));
        let key = parts.next().unwrap_or_default().trim().to_string();
        let reason = parts.next().unwrap_or_default().trim();
        assert!(col >= 1, "{l}");
        assert!(!reason.is_empty(), "no reason: {l}");
        found.push((line, key));
    }
    let expected = marked_lines();
    assert_eq!(expected.len(), 5);
    for (line, key) in &expected {
        assert!(
            found.iter().any(|(l, k)| l == line && k == key),
            "no error for {key} at line {line}:\n{stderr}"
        );
    }
    assert_eq!(
        found.len(),
        expected.len(),
        "one error per broken key, nothing else:\n{stderr}"
    );
}

/// The example as an installer completes it: the files it names (under /etc/evsite/ there)
/// written here, a CA, a client certificate and key made for the test, a password.
#[test]
fn check_config_accepts_the_example() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml"))
            .unwrap();
    let files = format!("{}/", dir.path().display());
    let completed = example.replace("/etc/evsite/", &files);
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    for (name, content) in [
        ("ca.pem", ca_cert.pem()),
        ("client.pem", cert.pem()),
        ("client.key", key.serialize_pem()),
        ("mqtt.pass", "s3cret\n".to_owned()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = dir.path().join("evsite.toml");
    std::fs::write(&config, completed).unwrap();
    let out = evsite()
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(stdout.contains("depot-7"), "{stdout}");
    assert!(stdout.contains("4 chargers"), "{stdout}");
}

#[test]
fn models_lists_every_model() {
    let out = evsite().arg("models").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(!registry::all().is_empty());
    for spec in registry::all() {
        let rows = stdout
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w == spec.name))
            .count();
        assert_eq!(rows, 1, "{} in:\n{stdout}", spec.name);
    }
}

#[test]
fn models_as_markdown_are_the_device_tables_of_the_docs() {
    let out = evsite()
        .args(["models", "--format", "markdown"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout, evsite::devices::docs::markdown());
    for spec in registry::all() {
        assert!(
            stdout.contains(&format!("| `{}` |", spec.name)),
            "{}",
            spec.name
        );
    }
}

/// The shipped small site (SDM630 and an AMTRON on RS-485, three TCP chargers), served here,
/// and its evsite config written into a tempdir.
async fn served_small() -> (SharedSite, ServedSite, PathBuf, tempfile::TempDir) {
    served_small_with(|text| text).await
}

/// The small site with its scenario text changed by `edit` first.
async fn served_small_with(
    edit: impl FnOnce(String) -> String,
) -> (SharedSite, ServedSite, PathBuf, tempfile::TempDir) {
    let text = edit(
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sim/scenarios/small.toml"
        ))
        .unwrap(),
    );
    let scenario = Scenario::parse(&text, "small").unwrap();
    let s = SiteModel::from_registry(&scenario).unwrap().into_shared();
    s.lock().unwrap().step(5.0);
    let served = serve_site(s.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evsite.toml");
    {
        let model = s.lock().unwrap();
        write_config::write_config(&path, &model, &served.endpoints, dir.path()).unwrap();
    }
    (s, served, path, dir)
}

async fn probe(config: &Path) -> Output {
    let mut cmd = tokio::process::Command::from(evsite());
    cmd.arg("probe").arg("--config").arg(config);
    // The site is served by this process, so wait without blocking its runtime.
    tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("probe finishes")
        .unwrap()
}

/// The table row of `device`, split into its cells (cells are separated by 2+ spaces).
fn row<'a>(stdout: &'a str, device: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(device))
        .unwrap_or_else(|| panic!("no row for {device}:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reads_every_device_over_tcp_and_rtu() {
    let (_s, served, path, _dir) = served_small().await;
    let out = probe(&path).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut devices = vec!["meter".to_string()];
    devices.extend(
        served
            .endpoints
            .iter()
            .filter(|e| e.device.index != evsite::simulator::METER)
            .map(|e| e.device.id.clone()),
    );
    assert_eq!(devices.len(), 5);
    for d in &devices {
        let r = row(&stdout, d);
        let cells: Vec<&str> = r.split_whitespace().collect();
        assert!(cells.contains(&"ok"), "{d}: {r}");
        assert!(!r.contains("error:"), "{d}: {r}");
    }
    // Over RS-485: the meter and the AMTRON; over TCP the others.
    assert!(row(&stdout, "meter").contains("rtu sim-rtu"), "{stdout}");
    assert!(row(&stdout, "cp-4").contains("rtu "), "{stdout}");
    assert!(row(&stdout, "cp-1").contains("tcp 127.0.0.1:"), "{stdout}");
    // The meter sees 230 V on each phase and the base load's current.
    let meter = row(&stdout, "meter");
    assert!(meter.contains("230.0/230.0/230.0"), "{meter}");
}

/// The RS-485 devices of the small site moved behind Ethernet gateways: the SDM630 behind a
/// transparent serial converter, the AMTRON behind a Modbus TCP gateway. The link column says
/// which kind of link each device was read over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_names_the_link_kind_of_devices_behind_gateways() {
    let behind = |text: String| {
        text.replace(
            "model = \"eastron-sdm630\"\ntransport = \"rtu\"\n",
            "model = \"eastron-sdm630\"\ntransport = \"rtu\"\nlink = \"gateway-rtu\"\n",
        )
        .replace(
            "model = \"mennekes-amtron-compact\"\ntransport = \"rtu\"\n",
            "model = \"mennekes-amtron-compact\"\ntransport = \"rtu\"\nlink = \"gateway-tcp\"\n",
        )
    };
    let (_s, _served, path, _dir) = served_small_with(behind).await;
    let config = std::fs::read_to_string(&path).unwrap();
    assert!(config.contains("framing = \"rtu-over-tcp\""), "{config}");
    let out = probe(&path).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for d in ["meter", "cp-1", "cp-2", "cp-3", "cp-4"] {
        let r = row(&stdout, d);
        assert!(r.split_whitespace().any(|c| c == "ok"), "{d}: {r}");
    }
    assert!(
        row(&stdout, "meter").contains("rtu-over-tcp 127.0.0.1:"),
        "{stdout}"
    );
    assert!(row(&stdout, "cp-4").contains("tcp 127.0.0.1:"), "{stdout}");
    assert!(!row(&stdout, "cp-4").contains("rtu"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_shows_a_dead_charger_in_its_row_and_carries_on() {
    let (_s, _served, path, _dir) = served_small().await;
    // A port nothing listens on: bound, read back, released.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let chargers = doc["charger"].as_array_of_tables_mut().unwrap();
    let cp1 = chargers
        .iter_mut()
        .find(|c| c["id"].as_str() == Some("cp-1"))
        .unwrap();
    cp1["port"] = toml_edit::value(i64::from(dead));
    std::fs::write(&path, doc.to_string()).unwrap();
    let out = probe(&path).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let bad = row(&stdout, "cp-1");
    assert!(bad.contains("error:"), "{bad}");
    assert!(bad.contains(&format!(":{dead}")), "{bad}");
    for d in ["meter", "cp-2", "cp-3", "cp-4"] {
        let r = row(&stdout, d);
        assert!(r.split_whitespace().any(|c| c == "ok"), "{d}: {r}");
    }
}
