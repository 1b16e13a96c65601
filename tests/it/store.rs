//! The sled store on a real database in a temporary directory: round trips, the gap-free seq,
//! atomic session + outbox writes, durability without a clean shutdown, recovery of a corrupt
//! database, the schema guard, retention and outbox streaming.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use evsite::sessions::energy::Sample;
use evsite::sessions::machine::{RecordState, SessionRecord, StopReason};
use evsite::store::{
    OutboxEvent, OutboxTopic, SessionFilter, Store, StoreError, ALERT_SCHEMA, SCHEMA_VERSION,
    SESSION_SCHEMA,
};
use serde_json::json;

use crate::support::db::wait_released;
use crate::support::schema1;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0)
        .single()
        .unwrap()
}

fn record(id: &str, charger: &str, plugged: DateTime<Utc>, state: RecordState) -> SessionRecord {
    let ended = state != RecordState::Active;
    SessionRecord {
        state,
        charging_started_at: Some(plugged + TimeDelta::minutes(1)),
        ended_at: ended.then(|| plugged + TimeDelta::hours(2)),
        energy_wh: 12_345,
        meter_start_wh: Some(1_000_000),
        meter_end_wh: ended.then_some(1_012_345),
        max_power_w: Some(11_000),
        stop_reason: ended.then_some(StopReason::Unplugged),
        ..SessionRecord::new(id.to_owned(), charger.to_owned(), plugged)
    }
}

fn samples(from: DateTime<Utc>, n: i64) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            minute_start: from + TimeDelta::minutes(i),
            energy_wh: 150.0 + i as f64 * 0.5,
        })
        .collect()
}

fn event(kind: &str, r: &SessionRecord) -> Option<OutboxEvent> {
    Some(OutboxEvent::new(
        "depot-7",
        kind,
        r.plugged_in_at,
        serde_json::to_value(r).unwrap(),
    ))
}

fn open(path: &Path) -> Store {
    let (store, report) = Store::open(path).unwrap();
    assert_eq!(report.moved_aside, None);
    store
}

/// A copy of the database files as they are on disk right now, with the store still open:
/// what a crash at this instant would leave behind.
fn snapshot(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            snapshot(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn seqs(store: &Store, from: u64) -> Vec<u64> {
    store
        .outbox_from(from)
        .map(|e| e.unwrap().0)
        .collect::<Vec<_>>()
}

#[tokio::test]
async fn a_session_its_samples_and_its_message_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let r = record("s-1", "cp-1", t(8, 0), RecordState::Active);
    let seq = store
        .put_session(&r, &samples(t(8, 1), 3), event("session.started", &r))
        .await
        .unwrap();
    assert_eq!(seq, Some(1));

    assert_eq!(store.session("s-1").unwrap(), Some(r.clone()));
    assert_eq!(store.samples("s-1").unwrap(), samples(t(8, 1), 3));
    assert_eq!(store.is_synced("s-1").unwrap(), Some(false));
    let (seq, env) = store.oldest().unwrap().unwrap();
    assert_eq!(seq, 1);
    assert_eq!(env.seq, 1);
    assert_eq!(env.schema, SESSION_SCHEMA);
    assert_eq!(env.site, "depot-7");
    assert_eq!(env.kind, "session.started");
    assert_eq!(env.data["session_id"], "s-1");
    // The wire form has the contract's field names.
    let wire = serde_json::to_value(&env).unwrap();
    assert_eq!(wire["type"], "session.started");
    assert_eq!(wire["msg_id"], env.msg_id.to_string());

    // Updating the last minute replaces it; a new minute is added.
    let more = vec![
        Sample {
            minute_start: t(8, 3),
            energy_wh: 190.0,
        },
        Sample {
            minute_start: t(8, 4),
            energy_wh: 10.0,
        },
    ];
    store.put_session(&r, &more, None).await.unwrap();
    let stored = store.samples("s-1").unwrap();
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[2], more[0]);
    assert_eq!(stored[3], more[1]);
    assert_eq!(store.outbox_len(), 1, "no event, no message");

    // A session whose id starts with another's must not share its samples.
    let other = record("s-10", "cp-2", t(12, 0), RecordState::Completed);
    store
        .put_session(&other, &samples(t(12, 0), 2), None)
        .await
        .unwrap();
    assert_eq!(store.samples("s-1").unwrap().len(), 4);
    assert_eq!(store.samples("s-10").unwrap().len(), 2);

    let by_charger = store
        .sessions(&SessionFilter {
            charger: Some("cp-2".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_charger, vec![other.clone()]);
    let morning = store
        .sessions(&SessionFilter {
            from: Some(t(7, 0)),
            to: Some(t(12, 0)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(morning, vec![r.clone()]);
    assert_eq!(store.open_sessions().unwrap(), vec![r]);

    let alert = json!({"alert_id": "a-1", "kind": "meter_lost", "state": "raised"});
    let ev = OutboxEvent::new("depot-7", "alert.raised", t(9, 0), alert.clone());
    assert_eq!(
        store.put_alert("a-1", &alert, Some(ev)).await.unwrap(),
        Some(2)
    );
    assert_eq!(store.alert("a-1").unwrap(), Some(alert));
    let (_, env) = store.outbox_from(2).next().unwrap().unwrap();
    assert_eq!(env.schema, ALERT_SCHEMA);
}

/// A session write's message goes to `sessions` and an alert's to `alerts`, and the topic is
/// kept beside the payload, which is the envelope's JSON as published.
#[tokio::test]
async fn each_message_is_stored_with_its_topic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let r = record("s-1", "cp-1", t(8, 0), RecordState::Active);
    store
        .put_session(&r, &[], event("session.started", &r))
        .await
        .unwrap();
    let alert = json!({"alert_id": "a-1", "kind": "meter_lost", "state": "raised"});
    let ev = OutboxEvent::new("depot-7", "alert.raised", t(9, 0), alert.clone());
    store.put_alert("a-1", &alert, Some(ev)).await.unwrap();
    let raw: Vec<_> = store.outbox_raw_from(1).map(|m| m.unwrap()).collect();
    let envelopes: Vec<_> = store.outbox_from(1).map(|e| e.unwrap().1).collect();
    let topics: Vec<_> = raw.iter().map(|m| (m.seq, m.topic)).collect();
    assert_eq!(
        topics,
        vec![(1, OutboxTopic::Sessions), (2, OutboxTopic::Alerts)]
    );
    for (m, env) in raw.iter().zip(&envelopes) {
        let wire: serde_json::Value = serde_json::from_slice(m.payload()).unwrap();
        assert_eq!(wire, serde_json::to_value(env).unwrap());
        assert_eq!(env.schema, m.topic.schema());
    }
}

/// An outbox written by schema 1 (bare JSON, the topic only in the envelope's schema) is
/// tagged when opened, and drains as if this build had written it.
#[tokio::test]
async fn a_schema_1_outbox_is_given_its_topics_and_drains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let r = record("s-1", "cp-1", t(8, 0), RecordState::Completed);
    {
        let store = open(&path);
        store
            .put_session(&r, &samples(t(8, 1), 2), event("session.completed", &r))
            .await
            .unwrap();
        let alert = json!({"alert_id": "a-1", "kind": "meter_lost", "state": "raised"});
        let ev = OutboxEvent::new("depot-7", "alert.raised", t(9, 0), alert.clone());
        store.put_alert("a-1", &alert, Some(ev)).await.unwrap();
    }
    let old = schema1::downgrade_to_schema_1(&path);
    assert_eq!(old.len(), 2);
    assert!(old[0].starts_with(br#"{"schema":"evsite.session.v1""#));
    assert!(old[1].starts_with(br#"{"schema":"evsite.alert.v1""#));
    // Schema 1 readers (the history commands of this build) wait for the daemon's migration.
    assert!(matches!(
        Store::open_existing(&path),
        Err(evsite::store::OpenExistingError::Store {
            source: StoreError::NoMigration { from: 1, .. },
            ..
        })
    ));

    let (store, report) = Store::open(&path).unwrap();
    assert_eq!(report.migrated_from, Some(1));
    let raw: Vec<_> = store.outbox_raw_from(1).map(|m| m.unwrap()).collect();
    assert_eq!(
        raw.iter().map(|m| m.topic).collect::<Vec<_>>(),
        vec![OutboxTopic::Sessions, OutboxTopic::Alerts]
    );
    for (m, old) in raw.iter().zip(&old) {
        assert_eq!(
            m.payload(),
            old.as_slice(),
            "published byte for byte as before"
        );
    }
    assert_eq!(seqs(&store, 1), vec![1, 2]);
    assert_eq!(store.next_seq().unwrap(), 3);
    // Acknowledging the session's message still marks the session synced.
    assert_eq!(store.is_synced("s-1").unwrap(), Some(false));
    assert_eq!(store.ack_many(&[1, 2]).unwrap(), 2);
    assert_eq!(store.is_synced("s-1").unwrap(), Some(true));
    assert_eq!(store.outbox_len(), 0);
    drop(store);
    wait_released(&path);
    let (_, report) = Store::open(&path).unwrap();
    assert_eq!(report.migrated_from, None, "migrated once");
}

/// The step is idempotent: a crash after part of the outbox was tagged, before the version
/// was written, only means it runs again over entries of both layouts.
#[tokio::test]
async fn a_migration_cut_short_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = open(&path);
        for i in 0..3 {
            let r = record(&format!("s-{i}"), "cp-1", t(8, i), RecordState::Active);
            store
                .put_session(&r, &[], event("session.started", &r))
                .await
                .unwrap();
        }
    }
    let old = schema1::downgrade_to_schema_1(&path);
    {
        // One entry already tagged, as a step cut short leaves it.
        let db = sled::open(&path).unwrap();
        let mut tagged = vec![1u8];
        tagged.extend_from_slice(&old[1]);
        db.open_tree("outbox")
            .unwrap()
            .insert(2u64.to_be_bytes(), tagged)
            .unwrap();
        db.flush().unwrap();
    }
    wait_released(&path);
    let (store, report) = Store::open(&path).unwrap();
    assert_eq!(report.migrated_from, Some(1));
    let raw: Vec<_> = store.outbox_raw_from(1).map(|m| m.unwrap()).collect();
    assert_eq!(raw.len(), 3);
    for (m, old) in raw.iter().zip(&old) {
        assert_eq!(m.topic, OutboxTopic::Sessions);
        assert_eq!(m.payload(), old.as_slice());
    }
}

#[tokio::test]
async fn seq_is_gap_free_and_continues_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut ids = Vec::new();
    {
        let store = open(&path);
        for i in 0..3 {
            let r = record(&format!("s-{i}"), "cp-1", t(8, i), RecordState::Active);
            let seq = store
                .put_session(&r, &[], event("session.started", &r))
                .await
                .unwrap();
            assert_eq!(seq, Some(u64::from(i) + 1));
        }
        // A write without a message takes no seq.
        let r = record("s-0", "cp-1", t(8, 0), RecordState::Active);
        assert_eq!(store.put_session(&r, &[], None).await.unwrap(), None);
        assert_eq!(store.next_seq().unwrap(), 4);
    }
    let store = open(&path);
    assert_eq!(store.next_seq().unwrap(), 4);
    let ev = OutboxEvent::new("depot-7", "alert.raised", t(9, 0), json!({"alert_id": "a"}));
    assert_eq!(
        store.put_alert("a", &json!({}), Some(ev)).await.unwrap(),
        Some(4)
    );
    let r = record("s-9", "cp-1", t(9, 0), RecordState::Active);
    assert_eq!(
        store
            .put_session(&r, &[], event("session.started", &r))
            .await
            .unwrap(),
        Some(5)
    );
    // Delivery does not give seqs back.
    assert!(store.ack(5).await.unwrap());
    let r = record("s-9", "cp-1", t(9, 0), RecordState::Completed);
    assert_eq!(
        store
            .put_session(&r, &[], event("session.completed", &r))
            .await
            .unwrap(),
        Some(6)
    );

    assert_eq!(seqs(&store, 0), vec![1, 2, 3, 4, 6]);
    for entry in store.outbox_from(0) {
        ids.push(entry.unwrap().1.msg_id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "every message has its own msg_id");
}

#[tokio::test]
async fn a_session_and_its_message_are_written_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let r = record("s-1", "cp-1", t(8, 0), RecordState::Active);
    {
        let store = open(&path);
        store
            .put_session(&r, &samples(t(8, 0), 2), event("session.started", &r))
            .await
            .unwrap();
    }
    // Both are there after a reopen.
    {
        let store = open(&path);
        assert_eq!(store.session("s-1").unwrap(), Some(r.clone()));
        assert_eq!(store.samples("s-1").unwrap().len(), 2);
        assert_eq!(store.oldest().unwrap().unwrap().1.data["session_id"], "s-1");
    }
    // Break the seq counter so the message cannot be added: the session and its samples,
    // written earlier in the same transaction, must not be either.
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("next_seq", &[1u8, 2, 3][..])
            .unwrap();
        db.flush().unwrap();
    }
    wait_released(&path);
    let r2 = record("s-2", "cp-2", t(9, 0), RecordState::Active);
    {
        let store = open(&path);
        let err = store
            .put_session(&r2, &samples(t(9, 0), 2), event("session.started", &r2))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
    let store = open(&path);
    assert_eq!(store.session("s-2").unwrap(), None);
    assert!(store.samples("s-2").unwrap().is_empty());
    assert_eq!(store.outbox_len(), 1);
}

#[tokio::test]
async fn a_write_that_returned_ok_is_on_disk_without_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open(&path);
    let r = record("s-1", "cp-1", t(8, 0), RecordState::Completed);
    store
        .put_session(&r, &samples(t(8, 0), 5), event("session.completed", &r))
        .await
        .unwrap();
    let alert = json!({"alert_id": "a-1"});
    let ev = OutboxEvent::new("depot-7", "alert.raised", t(9, 0), alert.clone());
    store.put_alert("a-1", &alert, Some(ev)).await.unwrap();

    // The store stays open (no drop, no shutdown flush): copy what is on disk now.
    let crashed = dir.path().join("crashed");
    snapshot(&path, &crashed);
    {
        let copy = open(&crashed);
        assert_eq!(copy.session("s-1").unwrap(), Some(r.clone()));
        assert_eq!(copy.samples("s-1").unwrap(), samples(t(8, 0), 5));
        assert_eq!(copy.alert("a-1").unwrap(), Some(alert));
        assert_eq!(seqs(&copy, 0), vec![1, 2]);
        assert_eq!(copy.next_seq().unwrap(), 3);
    }

    // An ack is as durable: a crash after it returned does not resend the message.
    assert!(store.ack(1).await.unwrap());
    let crashed = dir.path().join("crashed-after-ack");
    snapshot(&path, &crashed);
    let copy = open(&crashed);
    assert_eq!(seqs(&copy, 0), vec![2]);
    assert_eq!(copy.is_synced("s-1").unwrap(), Some(true));
    drop(store);
}

fn corrupt_files(path: &Path) {
    for name in ["conf", "db"] {
        let file = path.join(name);
        assert!(file.exists(), "sled keeps {name}");
        std::fs::write(&file, b"\xde\xad\xbe\xef not a sled file at all").unwrap();
    }
}

fn aside_dirs(parent: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect()
}

#[tokio::test]
async fn a_corrupt_database_is_moved_aside_and_a_fresh_one_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = open(&path);
        let r = record("s-1", "cp-1", t(8, 0), RecordState::Active);
        store
            .put_session(&r, &[], event("session.started", &r))
            .await
            .unwrap();
    }
    corrupt_files(&path);

    let (store, report) = Store::open(&path).unwrap();
    let aside = report.moved_aside.expect("moved aside");
    assert_eq!(aside_dirs(dir.path()), vec![aside.clone()]);
    assert!(aside
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("db.corrupt-"));
    // The bad files are kept for inspection, not deleted.
    assert_eq!(
        std::fs::read(aside.join("conf")).unwrap(),
        b"\xde\xad\xbe\xef not a sled file at all"
    );
    // The fresh store is empty and works.
    assert_eq!(store.session("s-1").unwrap(), None);
    let r = record("s-2", "cp-1", t(9, 0), RecordState::Active);
    assert_eq!(
        store
            .put_session(&r, &[], event("session.started", &r))
            .await
            .unwrap(),
        Some(1)
    );
    drop(store);
    wait_released(&path);

    // A second corruption the same second gets its own name.
    corrupt_files(&path);
    let (_, report) = Store::open(&path).unwrap();
    assert!(report.moved_aside.is_some());
    assert_eq!(aside_dirs(dir.path()).len(), 2);
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = open(&path);
        let r = record("s-1", "cp-1", t(8, 0), RecordState::Active);
        store.put_session(&r, &[], None).await.unwrap();
    }
    {
        let db = sled::open(&path).unwrap();
        let meta = db.open_tree("meta").unwrap();
        assert_eq!(
            meta.get("schema_version").unwrap().unwrap().as_ref(),
            SCHEMA_VERSION.to_be_bytes()
        );
        meta.insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    wait_released(&path);
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{err}"
    );
    assert!(aside_dirs(dir.path()).is_empty());
    wait_released(&path);
    let db = sled::open(&path).unwrap();
    assert!(db
        .open_tree("sessions")
        .unwrap()
        .get("s-1")
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn an_older_schema_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &0u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    wait_released(&path);
    let (_, report) = Store::open(&path).unwrap();
    assert_eq!(report.migrated_from, Some(0));
    wait_released(&path);
    let (_, report) = Store::open(&path).unwrap();
    assert_eq!(report.migrated_from, None, "the new version was written");
}

#[tokio::test]
async fn prune_removes_only_old_samples_of_synced_finished_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let now = t(12, 0);
    let old = now - TimeDelta::days(40);
    let recent = now - TimeDelta::days(2);

    // Synced through delivery of its latest message.
    let a = record("a", "cp-1", old, RecordState::Completed);
    store
        .put_session(&a, &samples(old, 10), event("session.started", &a))
        .await
        .unwrap();
    let last = store
        .put_session(&a, &samples(recent, 4), event("session.completed", &a))
        .await
        .unwrap();
    // Unsynced (its message is still in the outbox).
    let b = record(
        "b",
        "cp-2",
        old - TimeDelta::days(1),
        RecordState::Completed,
    );
    store
        .put_session(
            &b,
            &samples(old - TimeDelta::days(1), 10),
            event("session.completed", &b),
        )
        .await
        .unwrap();
    // Synced but still active.
    let c = record("c", "cp-3", old, RecordState::Active);
    store
        .put_session(&c, &samples(old, 10), None)
        .await
        .unwrap();
    assert!(store.mark_synced("c").await.unwrap());

    // Delivering an earlier message of a session does not sync it; the latest does.
    assert!(store.ack(1).await.unwrap());
    assert_eq!(store.is_synced("a").unwrap(), Some(false));
    assert!(store.ack(last.unwrap()).await.unwrap());
    assert_eq!(store.is_synced("a").unwrap(), Some(true));
    let outbox_before = seqs(&store, 0);
    assert_eq!(outbox_before, vec![3]);

    let report = store
        .prune(now, TimeDelta::days(30), u64::MAX)
        .await
        .unwrap();
    assert_eq!(report.expired, 10);
    assert_eq!(report.for_size, 0);
    assert_eq!(store.samples("a").unwrap(), samples(recent, 4));
    assert_eq!(store.samples("b").unwrap().len(), 10);
    assert_eq!(store.samples("c").unwrap().len(), 10);

    // Over the cap: the remaining synced samples go, nothing else.
    let report = store.prune(now, TimeDelta::days(30), 0).await.unwrap();
    assert_eq!(report.for_size, 4);
    assert!(store.samples("a").unwrap().is_empty());
    assert_eq!(store.samples("b").unwrap().len(), 10);
    assert_eq!(store.samples("c").unwrap().len(), 10);
    assert_eq!(seqs(&store, 0), outbox_before);
    for id in ["a", "b", "c"] {
        assert!(
            store.session(id).unwrap().is_some(),
            "session rows are never pruned"
        );
    }

    // A new write makes a session unsynced again, and so unprunable.
    store
        .put_session(&a, &samples(recent, 1), event("session.updated", &a))
        .await
        .unwrap();
    assert_eq!(store.is_synced("a").unwrap(), Some(false));
    store.prune(now, TimeDelta::days(1), 0).await.unwrap();
    assert_eq!(store.samples("a").unwrap().len(), 1);
}

#[tokio::test]
async fn outbox_streams_in_seq_order_from_any_point() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    assert!(store.oldest().unwrap().is_none());
    for i in 0..300u32 {
        let alert = json!({"alert_id": format!("a-{i}"), "n": i});
        let ev = OutboxEvent::new("depot-7", "alert.raised", t(8, 0), alert.clone());
        store
            .put_alert(&format!("a-{i}"), &alert, Some(ev))
            .await
            .unwrap();
    }
    let got: Vec<_> = store.outbox_from(250).map(|e| e.unwrap()).collect();
    assert_eq!(got.len(), 51);
    for (i, (seq, env)) in got.iter().enumerate() {
        assert_eq!(*seq, 250 + i as u64);
        assert_eq!(env.seq, *seq);
        assert_eq!(env.data["n"], *seq - 1);
    }
    // Past the end: nothing.
    assert_eq!(store.outbox_from(301).count(), 0);
    assert!(store.ack(1).await.unwrap());
    assert!(!store.ack(1).await.unwrap(), "a second ack finds nothing");
    assert_eq!(store.oldest().unwrap().unwrap().0, 2);
    // Byte order is numeric order across the 255/256 boundary.
    let all = seqs(&store, 0);
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(all.len(), 299);
}

/// sled reads garbage in its data file as a torn write and opens an empty database without an
/// error; the missing schema version gives it away.
#[tokio::test]
async fn a_database_sled_silently_emptied_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = open(&path);
        for i in 0..20 {
            let r = record(&format!("s-{i}"), "cp-1", t(8, 0), RecordState::Active);
            store
                .put_session(&r, &samples(t(8, 0), 20), event("session.started", &r))
                .await
                .unwrap();
        }
    }
    let data = path.join("db");
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::write(&data, vec![0xab; usize::try_from(len).unwrap()]).unwrap();

    let (store, report) = Store::open(&path).unwrap();
    assert!(report.moved_aside.is_some());
    assert_eq!(aside_dirs(dir.path()).len(), 1);
    assert_eq!(store.next_seq().unwrap(), 1);
    drop(store);
    wait_released(&path);
    // The fresh database is accepted on the next start: no loop of moves.
    let (_, report) = Store::open(&path).unwrap();
    assert_eq!(report.moved_aside, None);
}

/// A session restamped after a clock step: its corrected record and message, and its samples
/// on the corrected clock replacing those stored on the stale one, in one write.
#[tokio::test]
async fn a_restamped_session_replaces_its_samples_and_announces_the_corrected_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    let step = TimeDelta::days(646);
    let stale = record("s-1", "cp-1", t(8, 0) - step, RecordState::Active);
    store
        .put_session(
            &stale,
            &samples(t(8, 1) - step, 3),
            event("session.started", &stale),
        )
        .await
        .unwrap();
    let fixed = record("s-1", "cp-1", t(8, 0), RecordState::Active);
    let seq = store
        .put_restamped_session(
            &fixed,
            &samples(t(8, 1), 4),
            event("session.updated", &fixed),
        )
        .await
        .unwrap();
    assert_eq!(seq, Some(2));
    assert_eq!(store.session("s-1").unwrap(), Some(fixed.clone()));
    assert_eq!(
        store.samples("s-1").unwrap(),
        samples(t(8, 1), 4),
        "only the corrected samples are left"
    );
    let (_, env) = store
        .outbox_from(2)
        .next()
        .expect("the corrected record's message")
        .unwrap();
    assert_eq!(env.kind, "session.updated");
    assert_eq!(
        env.data["plugged_in_at"],
        serde_json::to_value(t(8, 0)).unwrap()
    );
}
