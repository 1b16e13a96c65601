//! The alert lifecycle under arbitrary signal sequences (proptest), and an alert's round trip
//! through the real store with its outbox message.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use evsite::alerts::{Alert, AlertBook, AlertChange, AlertKind, AlertPolicy, AlertState};
use evsite::site::recorder::alert_message;
use evsite::store::{Store, ALERT_SCHEMA};
use proptest::prelude::*;

const HOLDOFF_S: i64 = 30;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

/// One step: after `gap_s` seconds, a signal (kind, charger, on, message) or a tick.
#[derive(Debug, Clone)]
enum Step {
    Signal {
        kind: usize,
        charger: Option<u8>,
        on: bool,
        message: u8,
    },
    Tick,
}

fn step() -> impl Strategy<Value = (i64, Step)> {
    let signal = (
        0..AlertKind::ALL.len(),
        proptest::option::of(0u8..3),
        any::<bool>(),
        0u8..2,
    )
        .prop_map(|(kind, charger, on, message)| Step::Signal {
            kind,
            charger,
            on,
            message,
        });
    (0i64..45, prop_oneof![4 => signal, 1 => Just(Step::Tick)])
}

/// (kind, charger, message for one-shots): what the book promises one alert for.
type Key = (AlertKind, Option<String>, Option<String>);

fn key_of(a: &Alert) -> Key {
    (
        a.kind,
        a.charger.clone(),
        a.kind.is_one_shot().then(|| a.message.clone()),
    )
}

proptest! {
    #[test]
    fn one_alert_per_key_and_clears_only_after_the_holdoff(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        let mut book = AlertBook::new(AlertPolicy { clear_holdoff: TimeDelta::seconds(HOLDOFF_S) });
        let mut now = t0();
        // The open alert per key, and since when its condition has been off (condition kinds).
        let mut open: BTreeMap<Key, String> = BTreeMap::new();
        let mut off_since: BTreeMap<Key, DateTime<Utc>> = BTreeMap::new();
        for (gap, step) in steps {
            now += TimeDelta::seconds(gap);
            let changes = match step {
                Step::Signal { kind, charger, on, message } => {
                    let kind = AlertKind::ALL[kind];
                    let charger = charger.map(|c| format!("cp-{c}"));
                    let message = format!("m{message}");
                    let k = (kind, charger.clone(), kind.is_one_shot().then(|| message.clone()));
                    if !kind.is_one_shot() {
                        if on {
                            off_since.remove(&k);
                        } else if open.contains_key(&k) {
                            off_since.entry(k).or_insert(now);
                        }
                    }
                    book.signal(kind, charger.as_deref(), on, message, now)
                }
                Step::Tick => book.tick(now),
            };
            for change in changes {
                let k = key_of(change.alert());
                match change {
                    AlertChange::Raised(a) => {
                        prop_assert_eq!(a.state, AlertState::Raised);
                        prop_assert!(!open.contains_key(&k), "second raise for {:?}", k);
                        prop_assert_eq!(a.raised_at, now);
                        open.insert(k, a.alert_id);
                    }
                    AlertChange::Cleared(a) => {
                        prop_assert_eq!(a.state, AlertState::Cleared);
                        let id = open.remove(&k);
                        prop_assert_eq!(id.as_deref(), Some(a.alert_id.as_str()), "clear without raise");
                        if !a.kind.is_one_shot() {
                            let since = off_since.remove(&k);
                            prop_assert!(since.is_some(), "cleared while on");
                            prop_assert_eq!(a.cleared_at, since);
                            prop_assert!(
                                a.kind.clears_at_once()
                                    || now - since.unwrap_or(now) >= TimeDelta::seconds(HOLDOFF_S)
                            );
                        }
                    }
                }
            }
            // The book's active set is exactly the open alerts, one per key.
            let active: BTreeMap<Key, String> =
                book.active().map(|a| (key_of(a), a.alert_id.clone())).collect();
            prop_assert_eq!(active.len(), book.active().count());
            prop_assert_eq!(&active, &open);
        }
        // Every condition alert whose hold-off has run out clears on the next tick.
        let later = now + TimeDelta::seconds(HOLDOFF_S);
        let due: Vec<Key> = off_since.keys().cloned().collect();
        let cleared: Vec<Key> = book.tick(later).iter().map(|c| key_of(c.alert())).collect();
        prop_assert_eq!(cleared, due);
    }

    #[test]
    fn a_restored_book_never_raises_again_what_was_active(
        signals in proptest::collection::vec((0..AlertKind::ALL.len(), proptest::option::of(0u8..3)), 1..20)
    ) {
        let mut before = AlertBook::new(AlertPolicy::default());
        for (i, (kind, charger)) in signals.iter().enumerate() {
            let charger = charger.map(|c| format!("cp-{c}"));
            before.signal(AlertKind::ALL[*kind], charger.as_deref(), true, "m", t0() + TimeDelta::seconds(i as i64));
        }
        let active: Vec<Alert> = before.active().cloned().collect();
        let mut after = AlertBook::new(AlertPolicy::default());
        after.restore(active.clone());
        for (kind, charger) in &signals {
            let charger = charger.map(|c| format!("cp-{c}"));
            let changes = after.signal(AlertKind::ALL[*kind], charger.as_deref(), true, "m", t0() + TimeDelta::hours(1));
            prop_assert!(changes.is_empty(), "{:?}", changes);
        }
        prop_assert_eq!(after.active().cloned().collect::<Vec<_>>(), active);
    }
}

#[tokio::test]
async fn an_alert_and_its_message_round_trip_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path().join("db")).unwrap();
    let mut book = AlertBook::new(AlertPolicy::default());
    let raised = book.signal(AlertKind::ChargerFault, Some("cp-3"), true, "state F", t0());
    let holdoff_over = t0() + TimeDelta::seconds(70);
    book.signal(
        AlertKind::ChargerFault,
        Some("cp-3"),
        false,
        "",
        t0() + TimeDelta::seconds(10),
    );
    let cleared = book.tick(holdoff_over);
    assert_eq!(cleared.len(), 1);

    for (change, kind) in [(&raised[0], "alert.raised"), (&cleared[0], "alert.cleared")] {
        let alert = change.alert();
        let event = alert_message("depot-7", alert).unwrap();
        assert_eq!(event.kind, kind);
        let seq = store
            .put_alert(&alert.alert_id, alert, Some(event))
            .await
            .unwrap()
            .unwrap();
        let stored: Alert =
            serde_json::from_value(store.alert(&alert.alert_id).unwrap().unwrap()).unwrap();
        assert_eq!(&stored, alert);
        let (_, envelope) = store.outbox_from(seq).next().unwrap().unwrap();
        assert_eq!(envelope.schema, ALERT_SCHEMA);
        assert_eq!(envelope.kind, kind);
        let data: Alert = serde_json::from_value(envelope.data.clone()).unwrap();
        assert_eq!(&data, alert);
        // The contract's fields, with its names.
        for field in [
            "alert_id",
            "kind",
            "severity",
            "charger",
            "state",
            "message",
            "raised_at",
            "cleared_at",
        ] {
            assert!(envelope.data.get(field).is_some(), "{field}");
        }
        assert_eq!(envelope.data["kind"], "charger_fault");
        assert_eq!(envelope.data["severity"], "warning");
    }
    let (_, first) = store.oldest().unwrap().unwrap();
    assert_eq!(first.data["state"], "raised");
    assert_eq!(first.ts, t0());
    let stored: Alert =
        serde_json::from_value(store.alert(&raised[0].alert().alert_id).unwrap().unwrap()).unwrap();
    assert_eq!(
        stored.state,
        AlertState::Cleared,
        "the row holds the latest state"
    );
    assert_eq!(stored.cleared_at, Some(t0() + TimeDelta::seconds(10)));
}
