//! A session billed from integrated power after a register fault, through a real sled
//! database: the note and the corrected samples survive storing and reading back, and the
//! outbox message carries them.

use chrono::{TimeDelta, TimeZone};

use super::*;
use crate::sessions::energy::{MeterNote, RegisterFault};
use crate::store::outbox::OutboxEvent;

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 14, 0, 0)
        .single()
        .unwrap_or_default()
        + TimeDelta::seconds(s)
}

fn samples(wh: f64) -> Vec<Sample> {
    (0..3)
        .map(|i| Sample {
            minute_start: t(60 * i),
            energy_wh: wh,
        })
        .collect()
}

#[tokio::test]
async fn a_session_on_integrated_power_keeps_its_note_and_samples_in_the_store() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (store, _) = Store::open(dir.path().join("db")).unwrap_or_else(|e| panic!("open: {e}"));
    let mut r = SessionRecord::new("s-1".into(), "cp-1".into(), t(0));
    r.energy_wh = 300;
    store
        .put_session(&r, &samples(100.0), None)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));

    // Found frozen: the record with its note, all samples replaced, announced.
    r.energy_wh = 540;
    r.energy_notes.push(MeterNote::IntegratedPower {
        at: t(170),
        since: t(50),
        reason: RegisterFault::RegisterFrozen,
    });
    let corrected = samples(180.0);
    let event = OutboxEvent::new(
        "depot-7",
        "session.updated",
        t(170),
        serde_json::to_value(&r).unwrap_or_default(),
    );
    store
        .put_restamped_session(&r, &corrected, Some(event))
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));

    let back = store
        .session("s-1")
        .unwrap_or_else(|e| panic!("read: {e}"))
        .unwrap_or_else(|| panic!("stored session missing"));
    assert_eq!(back, r);
    assert!(matches!(
        back.energy_notes.as_slice(),
        [MeterNote::IntegratedPower { since, reason: RegisterFault::RegisterFrozen, .. }] if *since == t(50)
    ));
    assert_eq!(store.samples("s-1").unwrap_or_default(), corrected);
    let (_, env) = store
        .oldest()
        .unwrap_or_else(|e| panic!("outbox: {e}"))
        .unwrap_or_else(|| panic!("no message"));
    let note = &env.data["energy_notes"][0];
    assert_eq!(note["kind"], "integrated_power");
    assert_eq!(note["reason"], "register_frozen");
    assert_eq!(note["since"], "2026-11-21T14:00:50Z");
}
