//! The link's security against a real mosquitto, set up through the config as an installer
//! would: TLS with a CA made here (rcgen), mutual TLS, a password-protected listener, and a
//! wrong password refused and retried with growing gaps.

use crate::support::mosquitto;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use evsite::config::load_str;
use evsite::site::SiteState;
use evsite::store::{OutboxEvent, Store};
use evsite::sync::{self, Backoff, LinkStatus, SyncHandle, SyncOptions};
use mosquitto::{Mosquitto, Setup, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(20);

struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A CA that signed nothing here.
    other_ca: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write PEM");
    p
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA cert");
    (cert, key)
}

fn pki(dir: &Path) -> Pki {
    let (ca_cert, ca_key) = ca("evsite test CA");
    let (other, _) = ca("someone else's CA");

    let mut server = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    server
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    server.distinguished_name.push(DnType::CommonName, "broker");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().expect("key");
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .expect("server cert");

    let mut client = CertificateParams::new(Vec::<String>::new()).expect("params");
    client
        .distinguished_name
        .push(DnType::CommonName, "depot-7");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().expect("key");
    let client_cert = client
        .signed_by(&client_key, &ca_cert, &ca_key)
        .expect("client cert");

    Pki {
        ca: write(dir, "ca.pem", &ca_cert.pem()),
        server_cert: write(dir, "server.pem", &server_cert.pem()),
        server_key: write(dir, "server.key", &server_key.serialize_pem()),
        client_cert: write(dir, "client.pem", &client_cert.pem()),
        client_key: write(dir, "client.key", &client_key.serialize_pem()),
        other_ca: write(dir, "other-ca.pem", &other.pem()),
    }
}

/// The sync's options from a config file's `[mqtt]` section, as the daemon makes them.
fn options_from_config(mqtt_section: &str) -> SyncOptions {
    let base = include_str!("../fixtures/config/base.toml");
    let head = base.split("[mqtt]").next().unwrap_or(base);
    let text = format!("{head}[mqtt]\n{mqtt_section}\n[api]\nlisten = \"127.0.0.1:8787\"\n");
    let cfg = load_str(&text, "test.toml").expect("a valid config");
    let mut o = SyncOptions::from_config(&cfg, Utc::now()).expect("sync options");
    o.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
        reset_after: Duration::from_secs(30),
    };
    o
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

struct Running {
    handle: SyncHandle,
    status: watch::Receiver<LinkStatus>,
    _view: watch::Sender<Arc<SiteState>>,
}

fn start(opts: SyncOptions, store: &Store) -> Running {
    let (view_tx, view_rx) = watch::channel(Arc::new(SiteState::default()));
    let (cmd_tx, _cmd_rx) = mpsc::channel(1);
    let handle = sync::spawn(
        opts,
        store.clone(),
        view_rx,
        Arc::new(Notify::new()),
        cmd_tx,
    );
    Running {
        status: handle.status(),
        handle,
        _view: view_tx,
    }
}

async fn store_with_messages(dir: &Path, n: usize) -> Store {
    let (store, _) = Store::open(dir.join("db")).expect("store");
    for i in 0..n {
        let body = serde_json::json!({"alert_id": format!("a-{i}"), "kind": "overload",
            "severity": "critical", "charger": null, "state": "raised", "message": "x",
            "raised_at": Utc::now(), "cleared_at": null});
        let ev = OutboxEvent::new("test-site", "alert.raised", Utc::now(), body.clone());
        store
            .put_alert(&format!("a-{i}"), &body, Some(ev))
            .await
            .expect("put_alert");
    }
    store
}

/// Connected, and every message acknowledged by the broker over this link.
async fn delivers(run: &mut Running, store: &Store) {
    tokio::time::timeout(WAIT, run.status.wait_for(|s| s.connected))
        .await
        .expect("never connected")
        .expect("status");
    let deadline = Instant::now() + WAIT;
    while store.outbox_len() > 0 {
        assert!(Instant::now() < deadline, "not drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// At least `n` failed attempts, never connected.
async fn refused(run: &mut Running, n: u64) -> LinkStatus {
    let s = tokio::time::timeout(WAIT, run.status.wait_for(|s| s.failed_attempts >= n))
        .await
        .expect("no failed attempts")
        .expect("status")
        .clone();
    assert_eq!(s.connections, 0, "connected where it must not");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_configured_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let broker = Mosquitto::start(Setup {
        tls: Some(TlsFiles {
            ca: pki.ca.clone(),
            cert: pki.server_cert.clone(),
            key: pki.server_key.clone(),
        }),
        ..Setup::default()
    })
    .await;
    let store = store_with_messages(dir.path(), 5).await;
    let opts = options_from_config(&format!(
        "url = \"mqtts://127.0.0.1:{}\"\nca_file = {}\n",
        broker.port(),
        toml_path(&pki.ca)
    ));
    let mut run = start(opts, &store);
    delivers(&mut run, &store).await;
    run.handle.shutdown().await;

    // A broker whose certificate the configured CA did not sign is never trusted.
    let opts = options_from_config(&format!(
        "url = \"mqtts://127.0.0.1:{}\"\nca_file = {}\n",
        broker.port(),
        toml_path(&pki.other_ca)
    ));
    let mut run = start(opts, &store);
    let s = refused(&mut run, 2).await;
    assert!(!s.refused, "a TLS failure, not a CONNACK refusal");
    run.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let broker = Mosquitto::start(Setup {
        tls: Some(TlsFiles {
            ca: pki.ca.clone(),
            cert: pki.server_cert.clone(),
            key: pki.server_key.clone(),
        }),
        require_certificate: true,
        ..Setup::default()
    })
    .await;
    let store = store_with_messages(dir.path(), 5).await;

    let without = options_from_config(&format!(
        "url = \"mqtts://127.0.0.1:{}\"\nca_file = {}\n",
        broker.port(),
        toml_path(&pki.ca)
    ));
    let mut run = start(without, &store);
    refused(&mut run, 2).await;
    run.handle.shutdown().await;
    assert_eq!(store.outbox_len(), 5);

    let with = options_from_config(&format!(
        "url = \"mqtts://127.0.0.1:{}\"\nca_file = {}\ncert_file = {}\nkey_file = {}\n",
        broker.port(),
        toml_path(&pki.ca),
        toml_path(&pki.client_cert),
        toml_path(&pki.client_key)
    ));
    let mut run = start(with, &store);
    delivers(&mut run, &store).await;
    run.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwd = mosquitto::password_file(dir.path(), "depot-7", "correct horse");
    let broker = Mosquitto::start(Setup {
        password_file: Some(passwd),
        ..Setup::default()
    })
    .await;
    let store = store_with_messages(dir.path(), 5).await;
    let good = dir.path().join("good.pass");
    // As an editor leaves it: with a trailing newline, which is not part of the password.
    std::fs::write(&good, "correct horse\n").expect("write");
    let opts = options_from_config(&format!(
        "url = \"mqtt://127.0.0.1:{}\"\nusername = \"depot-7\"\npassword_file = {}\n",
        broker.port(),
        toml_path(&good)
    ));
    assert!(
        !format!("{opts:?}").contains("correct horse"),
        "the password shows in Debug"
    );
    let mut run = start(opts, &store);
    delivers(&mut run, &store).await;
    run.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_retried_with_growing_gaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwd = mosquitto::password_file(dir.path(), "depot-7", "correct horse");
    let broker = Mosquitto::start(Setup {
        password_file: Some(passwd),
        ..Setup::default()
    })
    .await;
    let store = store_with_messages(dir.path(), 1).await;
    let bad = dir.path().join("bad.pass");
    std::fs::write(&bad, "battery staple\n").expect("write");
    let opts = options_from_config(&format!(
        "url = \"mqtt://127.0.0.1:{}\"\nusername = \"depot-7\"\npassword_file = {}\n",
        broker.port(),
        toml_path(&bad)
    ));
    let mut run = start(opts, &store);
    // The instant of each failed attempt.
    let mut at = Vec::new();
    let mut seen = 0;
    while at.len() < 5 {
        let s = refused(&mut run, seen + 1).await;
        assert!(s.refused, "refused by the broker, not a network failure");
        seen = s.failed_attempts;
        at.push(Instant::now());
    }
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // Ceilings 100, 200, 400, 800 ms with jitter in the upper half of each: the first gap
    // is under 100 ms (plus a round trip), the fourth at least 400 ms.
    assert!(gaps[3] > gaps[0] * 2, "gaps do not grow: {gaps:?}");
    assert!(gaps[3] >= Duration::from_millis(400), "{gaps:?}");
    assert_eq!(store.outbox_len(), 1, "nothing delivered");
    run.handle.shutdown().await;
}
