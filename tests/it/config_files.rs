//! The files a config names, as an installer meets them: `check-config` refuses each bad one
//! (missing, empty, not PEM, not readable by the service user) at its key, and warns about a
//! secret anyone may read; `run` refuses a bad local file (exit 78) but runs the site
//! without a cloud link whose files are bad, raising `cloud_link_down` on the page, in
//! `evsite status` and in `/metrics` until the files are right, when the link starts.

use crate::support::daemon;
use crate::support::http;
use crate::support::mosquitto;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use daemon::{field, Daemon, Served};
use mosquitto::{Mosquitto, Setup, Subscriber};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

const EX_CONFIG: i32 = 78;

const NOT_PEM: &str = "-----BEGIN NOTHING-----\nnot base64 at all\n";

/// Every bad file the cloud link can name: (file, its bad content or None to remove it, key,
/// what the reason says).
const BAD_MQTT_FILES: [(&str, Option<&str>, &str, &str); 5] = [
    ("mqtt.pass", None, "mqtt.password_file", "no such file"),
    ("mqtt.pass", Some("\n"), "mqtt.password_file", "is empty"),
    (
        "ca.pem",
        Some(NOT_PEM),
        "mqtt.ca_file",
        "holds no PEM certificate",
    ),
    (
        "client.pem",
        Some("hello\n"),
        "mqtt.cert_file",
        "holds no PEM certificate",
    ),
    (
        "client.key",
        Some(NOT_PEM),
        "mqtt.key_file",
        "holds no PEM private key",
    ),
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Good files for every key: a CA, a client certificate signed by it and its key, a
/// password and an API token, all mode 0600.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "depot-7");
        let key = KeyPair::generate().unwrap();
        let cert = client.signed_by(&key, &ca_cert, &ca_key).unwrap();
        let d = dir.path();
        write(d, "ca.pem", &ca_cert.pem(), 0o600);
        write(d, "client.pem", &cert.pem(), 0o600);
        write(d, "client.key", &key.serialize_pem(), 0o600);
        write(d, "mqtt.pass", "s3cret\n", 0o600);
        write(d, "api.token", "t0ken\n", 0o600);
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The test fixture's config with every file key pointing here; returns the config path
    /// and the 1-based line of each key.
    fn config(&self) -> (PathBuf, Vec<(&'static str, usize)>) {
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/base.toml"),
        )
        .unwrap();
        let mut lines: Vec<String> = Vec::new();
        let mut at = Vec::new();
        for l in base.lines() {
            match l.trim() {
                "url = \"mqtt://127.0.0.1:1883\"" => {
                    lines.push("url = \"mqtts://127.0.0.1:8883\"".into());
                    lines.push("username = \"depot-7\"".into());
                    for (key, file) in [
                        ("mqtt.password_file", "mqtt.pass"),
                        ("mqtt.ca_file", "ca.pem"),
                    ] {
                        let leaf = key.trim_start_matches("mqtt.");
                        lines.push(format!("{leaf} = {:?}", self.path(file)));
                        at.push((key, lines.len()));
                    }
                }
                "cert_file = \"/etc/evsite/client.pem\"" => {
                    lines.push(format!("cert_file = {:?}", self.path("client.pem")));
                    at.push(("mqtt.cert_file", lines.len()));
                }
                "key_file = \"/etc/evsite/client.key\"" => {
                    lines.push(format!("key_file = {:?}", self.path("client.key")));
                    at.push(("mqtt.key_file", lines.len()));
                }
                "listen = \"127.0.0.1:8787\"" => {
                    lines.push(l.to_owned());
                    lines.push(format!("token_file = {:?}", self.path("api.token")));
                    at.push(("api.token_file", lines.len()));
                }
                _ => lines.push(l.to_owned()),
            }
        }
        assert_eq!(at.len(), 5, "the fixture has every key this test edits");
        let config = write(self.dir.path(), "evsite.toml", &lines.join("\n"), 0o644);
        (config, at)
    }
}

/// The column of the value of `key` as the config writes it (`leaf = "…"`).
fn col(key: &str) -> usize {
    key.rsplit('.').next().unwrap_or(key).len() + 4
}

fn evsite(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evsite"));
    cmd.args(args).arg("--config").arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("evsite runs")
}

#[test]
fn check_config_names_each_bad_file_at_its_key() {
    let files = Files::new();
    let (config, at) = files.config();
    let line = |key: &str| at.iter().find(|(k, _)| *k == key).unwrap().1;
    let ok = evsite(&["check-config"], &config, &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stderr).is_empty(),
        "no warning for 0600 files: {}",
        text(&ok.stderr)
    );

    // (file, its bad content or None to remove it, key, what the reason says)
    let token_cases = [
        ("api.token", Some(""), "api.token_file", "is empty"),
        ("api.token", None, "api.token_file", "no such file"),
    ];
    let cases = BAD_MQTT_FILES.into_iter().chain(token_cases);
    for (file, content, key, reason) in cases {
        let path = files.path(file);
        let good = std::fs::read(&path).unwrap();
        match content {
            Some(c) => std::fs::write(&path, c).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        let out = evsite(&["check-config"], &config, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(EX_CONFIG), "{file}: {err}");
        let want = format!(
            "{}:{}:{}: {key}: {}: {reason}",
            config.display(),
            line(key),
            col(key),
            path.display()
        );
        assert_eq!(err.trim_end(), want, "{file}: one error, at its key");
        std::fs::write(&path, &good).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn check_config_judges_access_as_the_service_user_and_warns_about_open_secrets() {
    let files = Files::new();
    let (config, at) = files.config();
    let line = |key: &str| at.iter().find(|(k, _)| *k == key).unwrap().1;
    // The files are this user's, mode 0600: `nobody` cannot read them.
    let out = evsite(
        &["check-config"],
        &config,
        &[("EVSITE_SERVICE_USER", "nobody")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{err}");
    assert_eq!(err.lines().count(), 5, "one error per file: {err}");
    assert!(
        err.contains(&format!(
            "{}:{}:{}: mqtt.key_file: {}: not readable by the service user nobody (mode 0600 (rw-------)",
            config.display(),
            line("mqtt.key_file"),
            col("mqtt.key_file"),
            files.path("client.key").display()
        )),
        "{err}"
    );

    // Readable by all: accepted, with a warning for the secrets only (not the certificates).
    for f in [
        "mqtt.pass",
        "ca.pem",
        "client.pem",
        "client.key",
        "api.token",
    ] {
        std::fs::set_permissions(files.path(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = evsite(
        &["check-config"],
        &config,
        &[("EVSITE_SERVICE_USER", "nobody")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let mut warned: Vec<&str> = err
        .lines()
        .map(|l| {
            assert!(
                l.contains(": warning: ") && l.contains("readable by every user"),
                "{l}"
            );
            l.split(": ").nth(1).unwrap()
        })
        .collect();
    warned.sort();
    assert_eq!(
        warned,
        ["api.token_file", "mqtt.key_file", "mqtt.password_file"]
    );
}

/// The daemon against a served site and a password-protected broker, its password file not
/// yet written.
async fn daemon_with_broken_link() -> (Served, Mosquitto, Daemon, SocketAddr, PathBuf) {
    let scenario = daemon::site_scenario(
        "link-site",
        "2026-11-21T08:00:00Z",
        &[("cp-1", "alfen-eve", "1, 2, 3", 3600)],
    );
    let served = Served::start(&scenario).await;
    let broker_dir = tempfile::tempdir().unwrap();
    let passwd = mosquitto::password_file(broker_dir.path(), "link-site", "s3cret");
    let broker = Mosquitto::start(Setup {
        password_file: Some(passwd),
        ..Setup::default()
    })
    .await;
    let pass = served.dir.path().join("mqtt.pass");
    // A fixed address in the config, so `evsite status` finds the daemon.
    let api_port = http::free_port();
    served.add_config(&format!(
        "\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nusername = \"link-site\"\npassword_file = {pass:?}\n\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n",
        broker.port()
    ));
    let mut d = Daemon::start(&served.config);
    let line = d.line_with(&["local API listening"]).await;
    let addr: SocketAddr = field(&line, "addr").parse().expect("the logged address");
    (served, broker, d, addr, pass)
}

fn link_alert(state: &serde_json::Value) -> Option<&serde_json::Value> {
    state["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["kind"] == "cloud_link_down")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_its_password_file_raises_cloud_link_down_until_the_file_is_written() {
    let (served, broker, d, addr, pass) = daemon_with_broken_link().await;
    let state = http::until_json(addr, "/api/state", "cloud_link_down is raised", |s| {
        link_alert(s).is_some()
    })
    .await;
    let alert = link_alert(&state).unwrap();
    let message = alert["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "mqtt.password_file: {}: no such file",
            pass.display()
        )),
        "{message}"
    );
    assert_eq!(alert["severity"], "warning");
    // The site is controlled all the same.
    let chargers = state["cycle"]["chargers"].as_array();
    assert!(
        chargers.is_some_and(|c| c.len() == 1 && c[0]["online"] == true),
        "{state}"
    );

    let metrics = http::get(addr, "/metrics").await;
    assert!(
        metrics
            .body
            .contains("evsite_alerts_open{kind=\"cloud_link_down\"} 1\n"),
        "{}",
        metrics.body
    );
    let status = Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["status", "--config"])
        .arg(&served.config)
        .output()
        .unwrap();
    let shown = text(&status.stdout);
    assert!(
        shown.contains("cloud_link_down"),
        "{shown}{}",
        text(&status.stderr)
    );

    // The installer writes the file: the link starts, the alert clears, the broker hears.
    let mut sub = Subscriber::with_options(
        {
            let mut o = rumqttc::MqttOptions::new("watcher", "127.0.0.1", broker.port());
            o.set_credentials("link-site", "s3cret");
            o
        },
        &["evsite/link-site/status"],
    )
    .await;
    write(served.dir.path(), "mqtt.pass", "s3cret\n", 0o600);
    http::until_json(addr, "/api/state", "cloud_link_down clears", |s| {
        link_alert(s).is_none()
    })
    .await;
    let online = sub
        .collect_until(Duration::from_secs(30), |m| {
            m.iter().any(|m| m.json()["online"] == true)
        })
        .await;
    assert!(online.iter().any(|m| m.json()["online"] == true));
    let metrics = http::get(addr, "/metrics").await;
    assert!(metrics
        .body
        .contains("evsite_alerts_open{kind=\"cloud_link_down\"} 0\n"));
    d.signal("-TERM");
    assert!(d.exit().await.success());
}

/// Every bad MQTT file `check-config` refuses, in `run`: the site is controlled, and
/// `cloud_link_down` names the key and the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_each_bad_mqtt_file_runs_the_site_and_says_why_the_link_is_down() {
    let cases = BAD_MQTT_FILES;
    let scenario = daemon::site_scenario(
        "link-site",
        "2026-11-21T08:00:00Z",
        &[("cp-1", "alfen-eve", "1, 2, 3", 3600)],
    );
    let served = Served::start(&scenario).await;
    let files = Files::new();
    served.add_config(&format!(
        "\n[mqtt]\nurl = \"mqtts://127.0.0.1:{}\"\nusername = \"link-site\"\npassword_file = {:?}\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n\n[api]\nlisten = \"127.0.0.1:0\"\n",
        http::free_port(),
        files.path("mqtt.pass"),
        files.path("ca.pem"),
        files.path("client.pem"),
        files.path("client.key"),
    ));
    for (file, content, key, reason) in cases {
        let path = files.path(file);
        let good = std::fs::read(&path).unwrap();
        match content {
            Some(c) => std::fs::write(&path, c).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        let mut d = Daemon::start(&served.config);
        let line = d.line_with(&["local API listening"]).await;
        let addr: SocketAddr = field(&line, "addr").parse().expect("the logged address");
        let state = http::until_json(addr, "/api/state", "cloud_link_down is raised", |s| {
            link_alert(s).is_some() && s["cycle"]["chargers"][0]["online"] == true
        })
        .await;
        let message = link_alert(&state).unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains(&format!("{key}: {}: {reason}", path.display())),
            "{file}: {message}"
        );
        d.signal("-TERM");
        assert!(d.exit().await.success(), "{file}");
        std::fs::write(&path, &good).unwrap();
    }
}

#[test]
fn run_refuses_a_bad_local_file_with_exit_78_at_its_key() {
    let files = Files::new();
    let (config, at) = files.config();
    let line = at.iter().find(|(k, _)| *k == "api.token_file").unwrap().1;
    std::fs::write(files.path("api.token"), "").unwrap();
    let out = evsite(&["run"], &config, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "{}:{line}:{}: api.token_file: {}: is empty",
            config.display(),
            col("api.token_file"),
            files.path("api.token").display()
        )
    );
}

/// The token list is a file the config names: `check-config` reads it as the service user,
/// names every mistake at its place in the token file, and warns when anyone may read the
/// personal data it holds.
#[test]
fn check_config_reads_the_token_list_and_names_each_mistake_in_its_file() {
    let files = Files::new();
    let (config, _) = files.config();
    let base = std::fs::read_to_string(&config).unwrap();
    let dir = files.dir.path();
    let tokens = dir.join("tokens.toml");
    let config = write(
        dir,
        "evsite.toml",
        &format!(
            "{base}\n[auth]\ntokens_file = {:?}\n",
            tokens.display().to_string()
        ),
        0o644,
    );
    let out = evsite(&["check-config"], &config, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{err}");
    assert!(
        err.contains("auth.tokens_file:") && err.contains("no such file"),
        "{err}"
    );

    write(
        dir,
        "tokens.toml",
        "[[token]]\nid = \"04 AA\"\nuser = \"Anna\"\n\n[[token]]\nid = \"04BB\"\nuser = \"Ben\"\nvehicle = { name = \"e-Golf\", battery_kwh = -1 }\n",
        0o600,
    );
    let out = evsite(&["check-config"], &config, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{err}");
    let t = tokens.display();
    for want in [
        format!("{t}:2:6: token[1].id: holds ' '"),
        format!("{t}:8:44: token[2].vehicle.battery_kwh: -1 kWh is not a battery size"),
    ] {
        assert!(err.contains(&want), "want {want:?} in:\n{err}");
    }

    write(
        dir,
        "tokens.toml",
        "[[token]]\nid = \"04AA\"\nuser = \"Anna\"\ngroup = \"residents\"\n",
        0o600,
    );
    let out = evsite(&["check-config"], &config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );

    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = evsite(&["check-config"], &config, &[]);
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning does not refuse: {err}"
    );
    assert!(
        err.contains("auth.tokens_file: warning:") && err.contains("personal data"),
        "{err}"
    );
}
