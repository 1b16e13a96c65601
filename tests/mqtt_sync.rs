//! The MQTT sync against a real mosquitto: sessions and alerts from a real store arrive in
//! order with every field and valid against schemas/, nothing is lost across a broker restart
//! or an abrupt stop of the sync, status is retained with a last will, commands get replies.

#[path = "support/mosquitto.rs"]
mod mosquitto;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use evsite::commands::RawCommand;
use evsite::control::view::{ChargerView, SiteView};
use evsite::devices::model::ChargeState;
use evsite::sessions::machine::SessionRecord;
use evsite::store::{Envelope, OutboxEvent, Store};
use evsite::sync::{self, Backoff, SyncHandle, SyncOptions};
use mosquitto::{Mosquitto, Msg, Setup, Subscriber};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

const SITE: &str = "depot-7";
const WAIT: Duration = Duration::from_secs(30);

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("schema file");
    let value: Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::validator_for(&value).expect("a valid schema")
}

fn assert_valid(v: &jsonschema::Validator, instance: &Value) {
    let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{instance}\n{errors:#?}");
}

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

fn view() -> SiteView {
    SiteView {
        at: Some(t0()),
        mode: None,
        grid_a: Some([20.0, 18.5, 22.0]),
        limit_a: 61.0,
        chargers: vec![ChargerView {
            id: "cp-1".into(),
            online: true,
            state: Some(ChargeState::C),
            current_a: [16.0, 16.0, 16.0],
            power_w: Some(11_000.0),
            energy_wh: Some(1_000_500.0),
            setpoint_a: Some(16.0),
            reason: "fair share".into(),
        }],
        cycle_ms: 1.0,
    }
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
    _view: watch::Sender<Arc<SiteView>>,
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
    }

    // A new message is published as soon as the daemon wakes the sync.
    fill(&store, 40, 1).await;
    run.wake.notify_one();
    let more = sub.collect_until(WAIT, |m| !m.is_empty()).await;
    assert_eq!(more[0].json()["seq"], 41);
    run.handle.shutdown().await;
}
