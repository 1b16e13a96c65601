//! The MQTT sync against a real mosquitto: sessions and alerts from a real store arrive in
//! order with every field and valid against schemas/, nothing is lost across a broker restart
//! or an abrupt stop of the sync, status is retained with a last will, commands get replies.

use crate::support::mosquitto;
use crate::support::schema1;
use crate::support::schemas::{assert_valid, schema};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use evsite::commands::RawCommand;
use evsite::control::demand::DemandStatus;
use evsite::control::record::{ChargerCycle, CycleRecord, LimitSource};
use evsite::control::why::{Why, WhyCode};
use evsite::devices::model::ChargeState;
use evsite::sessions::machine::SessionRecord;
use evsite::site::SiteState;
use evsite::store::{Envelope, OutboxEvent, Store};
use evsite::sync::{self, Backoff, SyncHandle, SyncOptions};
use mosquitto::{Mosquitto, Msg, Setup, Subscriber};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

const SITE: &str = "depot-7";
const WAIT: Duration = Duration::from_secs(30);

fn t0() -> DateTime<Utc> {
    "2026-11-21T17:00:00Z".parse().expect("time")
}

/// A realistic record: the shape the session machine writes, with cost lines.
fn record(i: usize, ended: bool) -> SessionRecord {
    let plugged = t0() + TimeDelta::minutes(i as i64);
    let end = plugged + TimeDelta::hours(2);
    let v = json!({
        "session_id": format!("s-{i:06}"),
        "charger": format!("cp-{}", i % 4 + 1),
        "state": if ended { "completed" } else { "active" },
        "plugged_in_at": plugged,
        "charging_started_at": plugged + TimeDelta::seconds(20),
        "charging_completed_at": null,
        "ended_at": if ended { json!(end) } else { Value::Null },
        "energy_wh": 12_345 + i as u64,
        "meter_start_wh": 1_000_000,
        "meter_end_wh": if ended { json!(1_012_345 + i as u64) } else { Value::Null },
        "max_power_w": 11_040,
        "stop_reason": if ended { json!("unplugged") } else { Value::Null },
        "energy_source": "register",
        "estimated_end_at": if ended { Value::Null } else { json!(end) },
        "cost": {"currency": "EUR", "total": "5.09", "lines": [
            {"kind": "energy", "label": "standard", "quantity": "8.345", "unit": "kWh",
             "unit_price": "0.35", "amount": "2.92"},
            {"kind": "energy", "label": "peak 17:00-21:00", "quantity": "4.000", "unit": "kWh",
             "unit_price": "0.45", "amount": "1.80"},
            {"kind": "session_fee", "label": "session fee", "quantity": "1", "unit": "session",
             "unit_price": "0.37", "amount": "0.37"}
        ]}
    });
    serde_json::from_value(v).expect("a SessionRecord")
}

fn alert(i: usize, cleared: bool) -> Value {
    let raised = t0() + TimeDelta::minutes(i as i64);
    json!({
        "alert_id": format!("a-{i:06}"),
        "kind": "charger_offline",
        "severity": "warning",
        "charger": "cp-2",
        "state": if cleared { "cleared" } else { "raised" },
        "message": "cp-2 has not answered for 30 s",
        "raised_at": raised,
        "cleared_at": if cleared { json!(raised + TimeDelta::minutes(3)) } else { Value::Null },
    })
}

/// Appends `n` messages (mostly session events, every fifth an alert) the way the daemon
/// does: each with the write that caused it.
async fn fill(store: &Store, from: usize, n: usize) {
    for i in from..from + n {
        if i % 5 == 4 {
            let body = alert(i, i % 10 == 9);
            let kind = if i % 10 == 9 {
                "alert.cleared"
            } else {
                "alert.raised"
            };
            let ev = OutboxEvent::new(SITE, kind, t0(), body.clone());
            store
                .put_alert(&format!("a-{i:06}"), &body, Some(ev))
                .await
                .expect("put_alert");
        } else {
            let ended = i % 5 == 3;
            let r = record(i, ended);
            let kind = if ended {
                "session.completed"
            } else if i % 5 == 0 {
                "session.started"
            } else {
                "session.updated"
            };
            let data = serde_json::to_value(&r).expect("record JSON");
            let ev = OutboxEvent::new(SITE, kind, t0(), data);
            store
                .put_session(&r, &[], Some(ev))
                .await
                .expect("put_session");
        }
    }
}

fn stored(store: &Store) -> Vec<Envelope> {
    store
        .outbox_from(1)
        .map(|e| e.expect("outbox entry").1)
        .collect()
}

fn view() -> SiteState {
    SiteState::of_cycle(Arc::new(CycleRecord {
        grid_a: Some([20.0, 18.5, 22.0]),
        chargers: vec![ChargerCycle {
            online: true,
            state: Some(ChargeState::C),
            current_a: [Some(16.0); 3],
            power_w: Some(11_000.0),
            energy_wh: Some(1_000_500.0),
            setpoint_a: Some(16.0),
            why: Why {
                code: WhyCode::Circuit,
                source: Some(LimitSource::Installer),
                constraint: Some("hall-a".into()),
                phase: Some(2),
                limit_a: Some(16.0),
                until: Some(t0() + TimeDelta::hours(1)),
                text: "limited by circuit hall-a on L2 (16 A, installer)".into(),
            },
            ..ChargerCycle::unread("cp-1")
        }],
        demand: Some(DemandStatus {
            window_start: t0(),
            window_end: t0() + TimeDelta::minutes(15),
            energy_wh: 1_520.0,
            limit_kw: 25.0,
            projected_kw: 18.2,
            allowed_kw: 26.1,
            month_peak_kw: 23.9,
            finished: None,
            building_exceeds: false,
        }),
        cycle_ms: 1.0,
        ..CycleRecord::blank(t0(), 61.0)
    }))
}

fn options(port: u16) -> SyncOptions {
    let mut o = SyncOptions::plain(SITE, "127.0.0.1", port, "evsite-depot-7", t0());
    o.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(800),
        reset_after: Duration::from_secs(5),
    };
    o.telemetry_interval = Duration::from_secs(1);
    o.window = 50;
    o.command_timeout = Duration::from_millis(500);
    o
}

struct Running {
    handle: SyncHandle,
    wake: Arc<Notify>,
    _view: watch::Sender<Arc<SiteState>>,
}

/// Starts the sync; commands are answered by `answer` (None: nobody answers).
fn start(opts: SyncOptions, store: &Store, answer: Option<fn(&RawCommand) -> Value>) -> Running {
    let (view_tx, view_rx) = watch::channel(Arc::new(view()));
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<RawCommand>(16);
    tokio::spawn(async move {
        // Holds unanswered commands so their reply channels stay open until the test ends.
        let mut held = Vec::new();
        while let Some(cmd) = cmd_rx.recv().await {
            match answer {
                Some(f) => {
                    let reply = f(&cmd);
                    let _ = cmd.reply.send(reply);
                }
                None => held.push(cmd),
            }
        }
    });
    let wake = Arc::new(Notify::new());
    let handle = sync::spawn(opts, store.clone(), view_rx, wake.clone(), cmd_tx);
    Running {
        handle,
        wake,
        _view: view_tx,
    }
}

fn topic(leaf: &str) -> String {
    format!("evsite/{SITE}/{leaf}")
}

async fn outbox_drains(store: &Store) {
    let deadline = Instant::now() + WAIT;
    while store.outbox_len() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} messages never acknowledged",
            store.outbox_len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks that every seq in `expected` arrived, that copies of one seq are identical
/// (same msg_id), and returns the first copy of each in seq order.
fn by_seq(msgs: &[Msg]) -> Vec<Value> {
    let mut seen: HashMap<u64, Value> = HashMap::new();
    for m in msgs {
        let v = m.json();
        let seq = v["seq"].as_u64().expect("seq");
        if let Some(first) = seen.get(&seq) {
            assert_eq!(
                first["msg_id"], v["msg_id"],
                "a duplicate with another msg_id"
            );
            assert_eq!(first, &v, "a duplicate that differs");
        } else {
            seen.insert(seq, v);
        }
    }
    let mut all: Vec<(u64, Value)> = seen.into_iter().collect();
    all.sort_by_key(|(s, _)| *s);
    all.into_iter().map(|(_, v)| v).collect()
}

fn count_seqs(msgs: &[Msg]) -> usize {
    let mut seqs: Vec<u64> = msgs
        .iter()
        .filter_map(|m| serde_json::from_slice::<Value>(&m.payload).ok())
        .filter_map(|v| v["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_alerts_arrive_in_order_with_every_field() {
    let broker = Mosquitto::start(Setup::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path().join("db")).expect("store");
    fill(&store, 0, 40).await;
    let expected = stored(&store);
    assert_eq!(expected.len(), 40);

    let mut sub = Subscriber::connect(
        broker.port(),
        "cloud",
        &[&topic("sessions"), &topic("alerts")],
        false,
    )
    .await;
    let mut live = Subscriber::connect(
        broker.port(),
        "watcher",
        &[&topic("status"), &topic("telemetry")],
        false,
    )
    .await;
    let run = start(options(broker.port()), &store, None);

    let msgs = sub.collect_until(WAIT, |m| m.len() >= 40).await;
    assert_eq!(msgs.len(), 40, "a clean run has no duplicates");
    let session_schema = schema("session.v1.json");
    let alert_schema = schema("alert.v1.json");
    // In seq order on the wire, per topic and across both (one connection, one order).
    for (m, want) in msgs.iter().zip(&expected) {
        let got = m.json();
        assert_eq!(got, serde_json::to_value(want).expect("envelope JSON"));
        match want.schema.as_str() {
            "evsite.alert.v1" => {
                assert_eq!(m.topic, topic("alerts"));
                assert_valid(&alert_schema, &got);
            }
            _ => {
                assert_eq!(m.topic, topic("sessions"));
                assert_valid(&session_schema, &got);
            }
        }
    }
    outbox_drains(&store).await;
    // Acknowledged session messages mark their sessions as synced.
    assert_eq!(store.is_synced("s-000003").expect("read"), Some(true));

    // Status and telemetry, valid against their schemas.
    let status_schema = schema("status.json");
    let telemetry_schema = schema("telemetry.v1.json");
    let live_msgs = live
        .collect_until(WAIT, |m| {
            m.iter().any(|x| x.topic == topic("status"))
                && m.iter().filter(|x| x.topic == topic("telemetry")).count() >= 2
        })
        .await;
    let status = live_msgs
        .iter()
        .find(|m| m.topic == topic("status"))
        .expect("a status message");
    assert_valid(&status_schema, &status.json());
    assert_eq!(status.json()["online"], true);
    for t in live_msgs.iter().filter(|m| m.topic == topic("telemetry")) {
        let v = t.json();
        assert_valid(&telemetry_schema, &v);
        assert_eq!(v["chargers"][0]["setpoint_a"], 16.0);
        assert_eq!(v["grid"]["current_a"], json!([20.0, 18.5, 22.0]));
        assert_eq!(v["demand"]["projected_kw"], 18.2);
        assert_eq!(v["demand"]["window_end"], "2026-11-21T17:15:00Z");
        // The charger's why, compact: every part the record names, as the record has it.
        let rec = view();
        let why = &rec.cycle.as_ref().expect("a cycle").chargers[0].why;
        let sent = &v["chargers"][0]["why"];
        assert_eq!(sent["code"], serde_json::to_value(why.code).unwrap());
        assert_eq!(sent["source"], serde_json::to_value(why.source).unwrap());
        assert_eq!(sent["constraint"].as_str(), why.constraint.as_deref());
        assert_eq!(sent["phase"].as_u64(), why.phase.map(u64::from));
        assert_eq!(sent["limit_a"].as_f64(), why.limit_a);
        assert_eq!(
            sent["until"]
                .as_str()
                .and_then(|u| u.parse::<DateTime<Utc>>().ok()),
            why.until
        );
        assert!(
            sent.get("text").is_none(),
            "no sentence on the wire: {sent}"
        );
    }
    // A why needs its code, and holds its parts to their types.
    let one = live_msgs
        .iter()
        .find(|m| m.topic == topic("telemetry"))
        .expect("telemetry")
        .json();
    for (key, value) in [
        ("code", Value::Null),
        ("phase", json!(4)),
        ("until", json!("soon")),
    ] {
        let mut bad = one.clone();
        match value {
            Value::Null => {
                bad["chargers"][0]["why"]
                    .as_object_mut()
                    .expect("why")
                    .remove(key);
            }
            v => bad["chargers"][0]["why"][key] = v,
        }
        assert!(!telemetry_schema.is_valid(&bad), "{key}: {bad}");
    }
    // A site without [demand] has no demand object, and the schema holds one that has it
    // to its types.
    let plain = sync::telemetry(SITE, 230.0, &CycleRecord::blank(t0(), 61.0));
    assert!(plain.get("demand").is_none());
    assert_valid(&telemetry_schema, &plain);
    let mut bad = live_msgs
        .iter()
        .find(|m| m.topic == topic("telemetry"))
        .expect("telemetry")
        .json();
    bad["demand"]["limit_kw"] = json!("25");
    assert!(
        !telemetry_schema.is_valid(&bad),
        "a demand with a string limit"
    );

    // A new message is published as soon as the daemon wakes the sync.
    fill(&store, 40, 1).await;
    run.wake.notify_one();
    let more = sub.collect_until(WAIT, |m| !m.is_empty()).await;
    assert_eq!(more[0].json()["seq"], 41);
    run.handle.shutdown().await;
}

/// A backlog left by the previous build (schema 1: no topic stored) is published after the
/// upgrade byte for byte as before, each message on the topic its schema names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_from_schema_1_drains_to_its_topics() {
    let broker = Mosquitto::start(Setup::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let (store, _) = Store::open(&path).expect("store");
        fill(&store, 0, 10).await;
    }
    let old = schema1::downgrade_to_schema_1(&path);
    let (store, report) = Store::open(&path).expect("store");
    assert_eq!(report.migrated_from, Some(1));

    let mut sub = Subscriber::connect(
        broker.port(),
        "cloud",
        &[&topic("sessions"), &topic("alerts")],
        false,
    )
    .await;
    let run = start(options(broker.port()), &store, None);
    let msgs = sub.collect_until(WAIT, |m| m.len() >= 10).await;
    assert_eq!(msgs.len(), 10);
    for (m, old) in msgs.iter().zip(&old) {
        assert_eq!(m.payload.as_slice(), old.as_slice());
        let leaf = match m.json()["schema"].as_str() {
            Some("evsite.alert.v1") => "alerts",
            _ => "sessions",
        };
        assert_eq!(m.topic, topic(leaf));
    }
    assert_eq!(
        msgs.iter().filter(|m| m.topic == topic("alerts")).count(),
        2,
        "every fifth is an alert"
    );
    outbox_drains(&store).await;
    assert_eq!(store.is_synced("s-000003").expect("read"), Some(true));
    run.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing() {
    let mut broker = Mosquitto::start(Setup {
        persistence: true,
        ..Setup::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path().join("db")).expect("store");
    fill(&store, 0, 1500).await;
    // A persistent session: the broker keeps queueing for the cloud while it reconnects.
    let mut sub = Subscriber::connect(
        broker.port(),
        "cloud-ingest",
        &[&topic("sessions"), &topic("alerts")],
        true,
    )
    .await;
    let run = start(options(broker.port()), &store, None);

    let mut msgs = sub.collect_until(WAIT, |m| m.len() >= 200).await;
    assert!(msgs.len() >= 200, "the drain did not start");
    broker.stop().await;
    // Written while the broker is away: queued in the store, published after.
    fill(&store, 1500, 100).await;
    run.wake.notify_one();
    assert!(
        store.outbox_len() > 100,
        "stopped too late to test anything"
    );
    broker.restart().await;

    let rest = sub
        .collect_until(WAIT, |m| count_seqs(&[&msgs[..], m].concat()) >= 1600)
        .await;
    msgs.extend(rest);
    let all = by_seq(&msgs);
    let seqs: Vec<u64> = all.iter().map(|v| v["seq"].as_u64().unwrap_or(0)).collect();
    assert_eq!(
        seqs,
        (1..=1600).collect::<Vec<u64>>(),
        "every message, none lost"
    );
    outbox_drains(&store).await;
    run.handle.shutdown().await;
}

/// Opens the store again once whatever the aborted sync left running (a flush on a blocking
/// thread) has let go of its lock; bounded.
async fn reopen(path: &std::path::Path) -> Store {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match Store::open(path) {
            Ok((store, _)) => return store,
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("lock"), "reopen: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("reopen: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_messages_go_out_after_an_abrupt_stop() {
    let broker = Mosquitto::start(Setup::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let (store, _) = Store::open(&path).expect("store");
    fill(&store, 0, 1000).await;
    let mut sub = Subscriber::connect(
        broker.port(),
        "cloud",
        &[&topic("sessions"), &topic("alerts")],
        false,
    )
    .await;
    let run = start(options(broker.port()), &store, None);
    let mut msgs = sub.collect_until(WAIT, |m| m.len() >= 100).await;
    // As a crash would: no clean shutdown, acks in memory lost or not.
    run.handle.abort().await;
    drop(store);
    let left = {
        let store = reopen(&path).await;
        store.outbox_len()
    };
    assert!(left > 0, "stopped too late to test anything");

    let store = reopen(&path).await;
    let run = start(options(broker.port()), &store, None);
    let rest = sub
        .collect_until(WAIT, |m| count_seqs(&[&msgs[..], m].concat()) >= 1000)
        .await;
    msgs.extend(rest);
    let seqs: Vec<u64> = by_seq(&msgs)
        .iter()
        .map(|v| v["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, (1..=1000).collect::<Vec<u64>>());
    outbox_drains(&store).await;
    run.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_retained_with_a_last_will() {
    let broker = Mosquitto::start(Setup::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path().join("db")).expect("store");
    let status_schema = schema("status.json");
    let mut watcher =
        Subscriber::connect(broker.port(), "watcher", &[&topic("status")], false).await;

    let run = start(options(broker.port()), &store, None);
    let online = watcher.next(WAIT).await.expect("online status");
    assert_valid(&status_schema, &online.json());
    assert_eq!(online.json()["online"], true);
    assert_eq!(online.json()["started_at"], json!(t0()));

    // Killed: the broker publishes the last will.
    run.handle.abort().await;
    let will = watcher.next(WAIT).await.expect("the last will");
    assert_eq!(will.json(), json!({"online": false}));
    let mut late = Subscriber::connect(broker.port(), "late-1", &[&topic("status")], false).await;
    let retained = late.next(WAIT).await.expect("a retained status");
    assert!(retained.retain);
    assert_eq!(retained.json(), json!({"online": false}));

    // Back: online again, retained; a clean shutdown leaves offline retained.
    let run = start(options(broker.port()), &store, None);
    let online = watcher.next(WAIT).await.expect("online again");
    assert_eq!(online.json()["online"], true);
    run.handle.shutdown().await;
    let offline = watcher.next(WAIT).await.expect("offline on shutdown");
    assert_eq!(offline.json(), json!({"online": false}));
    assert_valid(&status_schema, &offline.json());
    let mut late = Subscriber::connect(broker.port(), "late-2", &[&topic("status")], false).await;
    let retained = late.next(WAIT).await.expect("a retained status");
    assert!(retained.retain);
    assert_eq!(retained.json(), json!({"online": false}));
    // A clean shutdown sends DISCONNECT: no will follows the offline status.
    assert!(watcher.next(Duration::from_millis(500)).await.is_none());
}

fn answer_ok(cmd: &RawCommand) -> Value {
    let body: Value = serde_json::from_slice(&cmd.payload).unwrap_or(Value::Null);
    json!({"request_id": body["request_id"], "ok": true, "error": null, "seen": cmd.name})
}

async fn command(sub: &Subscriber, name: &str, body: &[u8]) {
    sub.client
        .publish(
            topic(&format!("cmd/{name}")),
            rumqttc::QoS::AtLeastOnce,
            false,
            body.to_vec(),
        )
        .await
        .expect("publish a command");
}

async fn reply(sub: &mut Subscriber) -> Value {
    let m = sub.next(WAIT).await.expect("a reply");
    assert_eq!(m.topic, topic("cmd/reply"));
    let v = m.json();
    assert_valid(&schema("cmd-reply.json"), &v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_get_replies() {
    let broker = Mosquitto::start(Setup::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path().join("db")).expect("store");
    let mut cloud =
        Subscriber::connect(broker.port(), "cloud", &[&topic("cmd/reply")], false).await;
    let mut watcher =
        Subscriber::connect(broker.port(), "watcher", &[&topic("status")], false).await;
    let run = start(options(broker.port()), &store, Some(answer_ok));
    // Subscribed to commands by the time its status is out (both follow the CONNACK).
    watcher.next(WAIT).await.expect("online");

    command(
        &cloud,
        "set_charger",
        br#"{"request_id":"c-1","charger":"cp-1","enabled":false}"#,
    )
    .await;
    let r = reply(&mut cloud).await;
    assert_eq!(
        (r["request_id"].clone(), r["ok"].clone()),
        (json!("c-1"), json!(true))
    );
    assert_eq!(r["seen"], "set_charger", "answered by the handler");

    command(&cloud, "set_charger", b"{oops").await;
    let r = reply(&mut cloud).await;
    assert_eq!(r["request_id"], Value::Null);
    assert_eq!(r["ok"], false);
    assert!(
        r["error"].as_str().unwrap_or("").contains("malformed JSON"),
        "{r}"
    );

    command(&cloud, "set_site_limit", br#"{"limit_a":20}"#).await;
    let r = reply(&mut cloud).await;
    assert_eq!(r["request_id"], Value::Null);
    assert!(
        r["error"].as_str().unwrap_or("").contains("request_id"),
        "{r}"
    );

    // resync: refused below what the store holds or beyond what was written, accepted
    // from what it holds (here the next seq: nothing to send again).
    fill(&store, 0, 3).await;
    run.wake.notify_one();
    outbox_drains(&store).await;
    command(&cloud, "resync", br#"{"request_id":"r-1","from_seq":1}"#).await;
    let r = reply(&mut cloud).await;
    assert_eq!(
        (r["request_id"].clone(), r["ok"].clone()),
        (json!("r-1"), json!(false))
    );
    assert!(
        r["error"]
            .as_str()
            .unwrap_or("")
            .contains("the next seq is 4"),
        "{r}"
    );
    command(&cloud, "resync", br#"{"request_id":"r-2","from_seq":9}"#).await;
    let r = reply(&mut cloud).await;
    assert!(
        r["error"]
            .as_str()
            .unwrap_or("")
            .contains("not been written"),
        "{r}"
    );
    command(&cloud, "resync", br#"{"request_id":"r-3","from_seq":4}"#).await;
    let r = reply(&mut cloud).await;
    assert_eq!(
        (r["request_id"].clone(), r["ok"].clone()),
        (json!("r-3"), json!(true))
    );
    run.handle.shutdown().await;

    // Nobody answers: the sync replies for the handler after its timeout.
    let run = start(options(broker.port()), &store, None);
    watcher.next(WAIT).await.expect("offline");
    watcher.next(WAIT).await.expect("online");
    command(
        &cloud,
        "set_profile",
        br#"{"request_id":"p-1","profile":{}}"#,
    )
    .await;
    let r = reply(&mut cloud).await;
    assert_eq!(
        (r["request_id"].clone(), r["ok"].clone()),
        (json!("p-1"), json!(false))
    );
    assert!(
        r["error"].as_str().unwrap_or("").contains("no answer"),
        "{r}"
    );
    run.handle.shutdown().await;
}
