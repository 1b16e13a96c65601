//! Who pays, against a real mosquitto and a real sled store: `assign_session` names the owner
//! of a stored ended session, which is re-priced by the group's tariff, stored and announced
//! again under the same `session_id`; an unknown session or token is refused and changes
//! nothing. Stored identity fields read back, and rows written before them still read.

use crate::support::mosquitto;
use crate::support::schemas::{assert_valid, schema};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use evsite::clock::Clock;
use evsite::commands::{serve, CommandContext, RawCommand};
use evsite::config::Config;
use evsite::sessions::energy::Sample;
use evsite::sessions::machine::{RecordState, SessionRecord, StopReason};
use evsite::sessions::tracker::assign_ended;
use evsite::site::SiteState;
use evsite::store::Store;
use evsite::sync::{self, SyncOptions};
use evsite::tokens::{AuthorizedBy, Identity};
use mosquitto::{Mosquitto, Setup, Subscriber};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};

const WAIT: Duration = Duration::from_secs(30);

/// The base site with a company tariff and a token list, read as the daemon reads it.
fn config(dir: &std::path::Path, port: u16) -> Config {
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\nid = \"04A1B2\"\nuser = \"Anna Berg\"\nvehicle = { name = \"ID.3\", battery_kwh = 58 }\ngroup = \"company\"\n",
    )
    .expect("token file");
    let base = include_str!("../fixtures/config/base.toml")
        .lines()
        .filter(|l| !l.starts_with("cert_file") && !l.starts_with("key_file"))
        .map(|l| {
            if l.starts_with("url = \"mqtt://") {
                format!("url = \"mqtt://127.0.0.1:{port}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!(
        "{base}\n\n[tariff.groups.company]\ncurrency = \"EUR\"\nenergy_price = \"0.20\"\n\n[auth]\ntokens_file = {:?}\n",
        tokens.display().to_string()
    );
    let path = dir.join("evsite.toml");
    std::fs::write(&path, text).expect("config file");
    // As `run` reads it: with the token list.
    match evsite::config::check(&path, evsite::config::FileScope::Site).result {
        Ok(c) => c,
        Err(e) => panic!("config: {e}"),
    }
}

fn t0() -> DateTime<Utc> {
    // A Saturday morning: the base tariff's weekday window does not apply.
    "2026-11-21T09:00:00Z".parse().expect("time")
}

/// An hour of charging, 100 Wh a minute, ended and billed at the site's tariff, no owner.
fn ended_session(cfg: &Config, id: &str) -> (SessionRecord, Vec<Sample>) {
    let samples: Vec<Sample> = (0..60)
        .map(|m| Sample {
            minute_start: t0() + TimeDelta::minutes(m),
            energy_wh: 100.0,
        })
        .collect();
    let mut r = SessionRecord::new(id.into(), cfg.chargers[0].id.clone(), t0());
    r.state = RecordState::Completed;
    r.charging_started_at = Some(t0());
    r.ended_at = Some(t0() + TimeDelta::minutes(60));
    r.updated_at = r.ended_at;
    r.stop_reason = Some(StopReason::Unplugged);
    r.energy_wh = 6_000;
    assign_ended(&mut r, &samples, Identity::default(), cfg.tariff.clone());
    (r, samples)
}

fn total(r: &Value) -> Decimal {
    r["cost"]["total"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no cost total in {r}"))
}

/// The cloud's side and the site's command handler and sync, against `broker`: `cloud`
/// hears `P/cmd/reply` and `P/sessions`. Returned once the site is online.
struct Rig {
    cloud: Subscriber,
    handle: sync::SyncHandle,
    handler: tokio::task::JoinHandle<()>,
    prefix: String,
}

impl Rig {
    async fn start(broker: &Mosquitto, cfg: &Arc<Config>, store: &Store, name: &str) -> Rig {
        let site = cfg.site.id.clone();
        let prefix = format!("evsite/{site}");
        let topic = |leaf: &str| format!("{prefix}/{leaf}");
        let cloud = Subscriber::connect(
            broker.port(),
            &format!("cloud-{name}"),
            &[&topic("cmd/reply"), &topic("sessions")],
            false,
        )
        .await;
        let mut watcher = Subscriber::connect(
            broker.port(),
            &format!("watcher-{name}"),
            &[&topic("status")],
            false,
        )
        .await;
        let (cmd_tx, cmd_rx) = mpsc::channel::<RawCommand>(16);
        let (control, _queued) = mpsc::unbounded_channel();
        let handler = tokio::spawn(serve(
            cmd_rx,
            CommandContext {
                cfg: cfg.clone(),
                store: store.clone(),
                control,
                clock: Clock::system(),
                sessions: None,
            },
        ));
        let (_view, view_rx) = watch::channel(Arc::new(SiteState::default()));
        let client_id = format!("evsite-{name}");
        let mut opts = SyncOptions::plain(&site, "127.0.0.1", broker.port(), &client_id, t0());
        opts.outbox_poll = Duration::from_millis(50);
        let handle = sync::spawn(
            opts,
            store.clone(),
            view_rx,
            Arc::new(Notify::new()),
            cmd_tx,
        );
        watcher.next(WAIT).await.expect("online");
        Rig {
            cloud,
            handle,
            handler,
            prefix,
        }
    }

    async fn stop(self) {
        self.handle.shutdown().await;
        self.handler.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_session_names_and_reprices_a_stored_session_and_announces_it_again() {
    let broker = Mosquitto::start(Setup::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Arc::new(config(dir.path(), broker.port()));
    let (store, _) = Store::open(dir.path().join("db")).expect("store");
    let (record, samples) = ended_session(&cfg, "s-assign-1");
    store
        .put_session(&record, &samples, None)
        .await
        .expect("stored");
    let site_total = record.cost.as_ref().map(|c| c.total).expect("billed");
    let kwh = Decimal::from(6);
    assert_eq!(
        site_total,
        kwh * cfg.tariff.as_ref().expect("tariff").energy_price
    );

    let mut rig = Rig::start(&broker, &cfg, &store, "billing").await;
    let prefix = rig.prefix.clone();
    let topic = |leaf: &str| format!("{prefix}/{leaf}");
    let client = rig.cloud.client.clone();
    let send = |body: Value| {
        let client = client.clone();
        let topic = topic("cmd/assign_session");
        async move {
            client
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, body.to_string())
                .await
                .expect("publish");
        }
    };
    let cloud = &mut rig.cloud;
    let cmd_schema = schema("cmd-assign_session.json");

    // Refused: an unknown session, an unknown token. Nothing is stored or announced.
    let bad_session = json!({"request_id": "a-1", "session_id": "s-nobody", "token": "04A1B2"});
    assert_valid(&cmd_schema, &bad_session);
    send(bad_session).await;
    let r = cloud.next(WAIT).await.expect("a reply").json();
    assert_eq!(
        (r["request_id"].clone(), r["ok"].clone()),
        (json!("a-1"), json!(false))
    );
    assert!(
        r["error"]
            .as_str()
            .unwrap_or("")
            .contains("unknown session"),
        "{r}"
    );
    send(json!({"request_id": "a-2", "session_id": "s-assign-1", "token": "FFFF"})).await;
    let r = cloud.next(WAIT).await.expect("a reply").json();
    assert_eq!(r["ok"], false);
    assert!(
        r["error"].as_str().unwrap_or("").contains("unknown token"),
        "{r}"
    );
    assert_eq!(
        store.session("s-assign-1").expect("read"),
        Some(record.clone())
    );
    assert_eq!(store.outbox_len(), 0);

    // Assigned by token (the token list's spelling need not match): stored, re-priced by the
    // company tariff, announced again under the same id, then the reply.
    let good = json!({"request_id": "a-3", "session_id": "s-assign-1", "token": "04a1b2"});
    assert_valid(&cmd_schema, &good);
    send(good).await;
    let msgs = cloud
        .collect_until(WAIT, |m| m.iter().any(|x| x.topic == topic("cmd/reply")))
        .await;
    let reply = msgs
        .iter()
        .find(|m| m.topic == topic("cmd/reply"))
        .expect("a reply")
        .json();
    assert_eq!(
        (reply["request_id"].clone(), reply["ok"].clone()),
        (json!("a-3"), json!(true)),
        "{reply}"
    );
    let stored = store
        .session("s-assign-1")
        .expect("read")
        .expect("still stored");
    let company = cfg.tariff_groups["company"].energy_price;
    assert_eq!(stored.identity.token.as_deref(), Some("04A1B2"));
    assert_eq!(stored.identity.user.as_deref(), Some("Anna Berg"));
    assert_eq!(stored.identity.vehicle.as_deref(), Some("ID.3"));
    assert_eq!(stored.identity.group.as_deref(), Some("company"));
    assert_eq!(stored.identity.authorized_by, Some(AuthorizedBy::Assigned));
    assert_eq!(stored.cost.as_ref().map(|c| c.total), Some(kwh * company));
    assert_eq!(stored.energy_wh, record.energy_wh);

    let announced = match msgs.iter().find(|m| m.topic == topic("sessions")) {
        Some(m) => m.json(),
        None => cloud
            .collect_until(WAIT, |m| m.iter().any(|x| x.topic == topic("sessions")))
            .await
            .into_iter()
            .find(|m| m.topic == topic("sessions"))
            .expect("the session announced again")
            .json(),
    };
    assert_valid(&schema("session.v1.json"), &announced);
    assert_eq!(announced["type"], "session.completed");
    let data = &announced["data"];
    assert_eq!(data["session_id"], "s-assign-1");
    assert_eq!(data["authorized_by"], "assigned");
    assert_eq!(data["group"], "company");
    assert_eq!(total(data), kwh * company);
    assert!(total(data) < site_total);

    // The same request id again: the stored reply, nothing applied twice.
    send(json!({"request_id": "a-3", "session_id": "s-assign-1", "user": "someone else"})).await;
    let again = cloud
        .collect_until(WAIT, |m| m.iter().any(|x| x.topic == topic("cmd/reply")))
        .await;
    let again = again
        .iter()
        .find(|m| m.topic == topic("cmd/reply"))
        .expect("a reply")
        .json();
    assert_eq!(again, reply);
    assert_eq!(
        store
            .session("s-assign-1")
            .expect("read")
            .map(|r| r.identity),
        Some(stored.identity.clone())
    );

    rig.stop().await;
}

#[tokio::test]
async fn identity_fields_round_trip_in_the_store_and_rows_without_them_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let cfg = config(dir.path(), mosquitto::free_port());
    let (mut owned, samples) = ended_session(&cfg, "s-owned");
    owned.identity = Identity {
        token: Some("04A1B2".into()),
        user: Some("Anna Berg".into()),
        vehicle: Some("ID.3".into()),
        group: Some("company".into()),
        authorized_by: Some(AuthorizedBy::Cloud),
    };
    let (old, _) = ended_session(&cfg, "s-old");
    {
        let (store, _) = Store::open(&path).expect("store");
        store
            .put_session(&owned, &samples, None)
            .await
            .expect("stored");
        store
            .put_session(&owned, &[], None)
            .await
            .expect("stored again");
        let mut also_owned = old.clone();
        also_owned.identity = owned.identity.clone();
        store
            .put_session(&also_owned, &samples, None)
            .await
            .expect("stored");
        assert_eq!(store.session("s-owned").expect("read"), Some(owned.clone()));
    }
    crate::support::db::wait_released(&path);

    // As an earlier build wrote it: the row of s-old without any identity field.
    {
        let db = sled::open(&path).expect("open the database directly");
        let sessions = db.open_tree("sessions").expect("sessions tree");
        let raw = sessions.get("s-old").expect("read").expect("a row");
        let mut row: Value = serde_json::from_slice(&raw).expect("a JSON row");
        let rec = row["record"].as_object_mut().expect("a record");
        for key in ["token", "user", "vehicle", "group", "authorized_by"] {
            assert!(rec.remove(key).is_some(), "{key} was stored");
        }
        sessions
            .insert("s-old", serde_json::to_vec(&row).expect("JSON"))
            .expect("rewrite");
        db.flush().expect("flush");
    }
    crate::support::db::wait_released(&path);

    let (store, _) = Store::open(&path).expect("store reopens");
    assert_eq!(store.session("s-owned").expect("read"), Some(owned));
    let read = store
        .session("s-old")
        .expect("the old row reads")
        .expect("there");
    assert!(read.identity.is_empty());
    assert_eq!(read, old);
    let json = serde_json::to_value(&read).expect("JSON");
    assert!(json.get("token").is_none() && json.get("authorized_by").is_none());
    // An old consumer's record (no identity fields) is still a valid session.v1 message.
    let msg = json!({"schema": "evsite.session.v1", "msg_id": "0b5e0d49-5f3c-4a52-9c4e-7f0e2f6b2a11",
        "seq": 1, "site": "test-site", "type": "session.completed", "ts": "2026-11-21T10:00:00Z",
        "data": json});
    assert_valid(&schema("session.v1.json"), &msg);
    let all = store.sessions(&Default::default()).expect("list");
    assert_eq!(all.len(), 2);
}

#[test]
fn check_config_warns_of_a_token_group_without_a_tariff() {
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path(), mosquitto::free_port());
    let path = dir.path().join("evsite.toml");
    let tokens = dir.path().join("tokens.toml");
    let mut list = std::fs::read_to_string(&tokens).expect("token file");
    list.push_str("\n[[token]]\nid = \"0C0C\"\nuser = \"Guest\"\ngroup = \"visitors\"\n");
    std::fs::write(&tokens, list).expect("token file");
    let checked = evsite::config::check(&path, evsite::config::FileScope::Site);
    let cfg = checked
        .result
        .unwrap_or_else(|e| panic!("a warning does not refuse: {e}"));
    assert!(cfg.tariff_groups.contains_key("company"));
    let shown: Vec<String> = checked.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        shown
            .iter()
            .any(|w| w.contains("tariff.groups") && w.contains("\"visitors\"")),
        "{shown:#?}"
    );
    assert!(
        !shown.iter().any(|w| w.contains("\"company\"")),
        "{shown:#?}"
    );
}

/// `[auth] publish_identity = "hashed"`: what goes to the cloud carries the token and the
/// user only as the site's salted hash — one token, one hash, however it was spelt — while
/// the store keeps them plain for the site's own reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_identities_leave_the_site_only_as_their_salted_hash() {
    let broker = Mosquitto::start(Setup::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), broker.port());
    cfg.auth.publish_identity = evsite::tokens::privacy::PublishIdentity::Hashed;
    let cfg = Arc::new(cfg);
    let (store, _) = Store::open(dir.path().join("db")).expect("store");
    for id in ["s-hash-1", "s-hash-2"] {
        let (record, samples) = ended_session(&cfg, id);
        store
            .put_session(&record, &samples, None)
            .await
            .expect("stored");
    }
    let mut rig = Rig::start(&broker, &cfg, &store, "hash").await;
    let prefix = rig.prefix.clone();
    let topic = |leaf: &str| format!("{prefix}/{leaf}");
    let cloud = &mut rig.cloud;

    // The same card, spelt two ways, on two sessions.
    let mut announced = Vec::new();
    for (n, (session, token)) in [("s-hash-1", "04a1b2"), ("s-hash-2", " 04A1B2")]
        .into_iter()
        .enumerate()
    {
        let body = json!({"request_id": format!("h-{n}"), "session_id": session, "token": token});
        cloud
            .client
            .publish(
                topic("cmd/assign_session"),
                rumqttc::QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .await
            .expect("publish");
        let msgs = cloud
            .collect_until(WAIT, |m| {
                m.iter().any(|x| x.topic == topic("sessions"))
                    && m.iter().any(|x| x.topic == topic("cmd/reply"))
            })
            .await;
        let reply = msgs
            .iter()
            .find(|m| m.topic == topic("cmd/reply"))
            .expect("reply");
        assert_eq!(reply.json()["ok"], true, "{}", reply.json());
        let msg = msgs
            .iter()
            .find(|m| m.topic == topic("sessions"))
            .expect("announced");
        announced.push(msg.json());
    }
    let stored = store.session("s-hash-1").expect("read").expect("stored");
    let plain_token = stored
        .identity
        .token
        .clone()
        .expect("the store keeps the token");
    let plain_user = stored.identity.user.clone().expect("and the user");
    let v1 = schema("session.v1.json");
    let mut hashes = Vec::new();
    for m in &announced {
        assert_valid(&v1, m);
        let text = m.to_string();
        assert!(!text.contains(&plain_token), "the token leaks: {text}");
        assert!(!text.contains(&plain_user), "the user leaks: {text}");
        let data = &m["data"];
        for key in ["token", "user"] {
            let h = data[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} in {data}"));
            assert!(h.starts_with("sha256:") && h.len() == 39, "{key}: {h}");
        }
        assert_eq!(data["group"], "company", "the tariff group stays readable");
        hashes.push((data["token"].clone(), data["user"].clone()));
    }
    assert_eq!(hashes[0], hashes[1], "one card, one hash");

    rig.stop().await;
}
