//! Unit tests of the alert lifecycle.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::alerts::Severity;

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap() + TimeDelta::seconds(s)
}

fn book() -> AlertBook {
    AlertBook::new(AlertPolicy {
        clear_holdoff: TimeDelta::seconds(60),
    })
}

fn raised(changes: &[AlertChange]) -> usize {
    changes
        .iter()
        .filter(|c| matches!(c, AlertChange::Raised(_)))
        .count()
}

#[test]
fn a_flapping_charger_gives_one_raise_and_one_clear() {
    let mut b = book();
    let mut changes = Vec::new();
    // Offline and back every 10 s for five minutes.
    for i in 0..30 {
        let on = i % 2 == 0;
        changes.extend(b.signal(
            AlertKind::ChargerOffline,
            Some("cp-1"),
            on,
            format!("no answer ({i})"),
            t(i * 10),
        ));
        changes.extend(b.tick(t(i * 10 + 5)));
    }
    assert_eq!(changes.len(), 1, "{changes:?}");
    let AlertChange::Raised(first) = &changes[0] else {
        panic!("raised first")
    };
    assert_eq!(first.message, "no answer (0)");
    assert_eq!(first.severity, Severity::Warning);
    // Last signal was off at 290 s; the hold-off ends at 350 s.
    assert!(b.tick(t(349)).is_empty());
    let cleared = b.tick(t(350));
    assert_eq!(cleared.len(), 1);
    let AlertChange::Cleared(c) = &cleared[0] else {
        panic!("cleared")
    };
    assert_eq!(c.alert_id, first.alert_id);
    assert_eq!(c.state, AlertState::Cleared);
    assert_eq!(c.cleared_at, Some(t(290)));
    assert_eq!(b.active().count(), 0);
}

#[test]
fn chargers_and_kinds_are_separate_alerts() {
    let mut b = book();
    let mut changes = b.signal(AlertKind::ChargerFault, Some("cp-1"), true, "E", t(0));
    changes.extend(b.signal(AlertKind::ChargerFault, Some("cp-2"), true, "F", t(0)));
    changes.extend(b.signal(AlertKind::ChargerOffline, Some("cp-1"), true, "x", t(0)));
    changes.extend(b.signal(AlertKind::MeterOffline, None, true, "meter", t(0)));
    assert_eq!(raised(&changes), 4);
    assert_eq!(b.active().count(), 4);
    // Signalled off and the hold-off is over at the same signal: cleared there and then.
    assert!(b
        .signal(AlertKind::MeterOffline, None, false, "", t(1))
        .is_empty());
    let c = b.signal(AlertKind::MeterOffline, None, false, "", t(61));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].alert().kind, AlertKind::MeterOffline);
    assert_eq!(c[0].alert().severity, Severity::Critical);
}

#[test]
fn one_shots_are_raised_per_occurrence_and_stay_until_cleared() {
    let mut b = book();
    let k = AlertKind::SessionInterrupted;
    assert_eq!(
        raised(&b.signal(k, Some("cp-1"), true, "s-1: power loss", t(0))),
        1
    );
    // The same occurrence again: de-duplicated.
    assert!(b
        .signal(k, Some("cp-1"), true, "s-1: power loss", t(5))
        .is_empty());
    // Another occurrence: its own alert.
    assert_eq!(
        raised(&b.signal(k, Some("cp-1"), true, "s-2: restart", t(9))),
        1
    );
    assert!(
        b.tick(t(100_000)).is_empty(),
        "no hold-off clears a one-shot"
    );
    assert_eq!(b.active().count(), 2);
    let cleared = b.signal(k, Some("cp-1"), false, "", t(200));
    assert_eq!(cleared.len(), 2);
    assert!(cleared
        .iter()
        .all(|c| matches!(c, AlertChange::Cleared(a) if a.cleared_at == Some(t(200)))));
    assert_eq!(b.active().count(), 0);
}

#[test]
fn restored_alerts_continue_without_a_second_raise() {
    let mut before = book();
    let raised = before.signal(AlertKind::Overload, None, true, "L1 over", t(0));
    let alert = raised[0].alert().clone();

    let mut after = book();
    after.restore(vec![alert.clone()]);
    assert!(after
        .signal(AlertKind::Overload, None, true, "L1 still over", t(30))
        .is_empty());
    assert!(after
        .signal(AlertKind::Overload, None, false, "", t(40))
        .is_empty());
    let cleared = after.tick(t(100));
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0].alert().alert_id, alert.alert_id);
    assert_eq!(cleared[0].alert().message, "L1 over");
}

#[test]
fn a_cloud_link_that_starts_clears_its_alert_at_once() {
    let mut b = book();
    let up = b.signal(
        AlertKind::CloudLinkDown,
        None,
        true,
        "no password file",
        t(0),
    );
    assert_eq!(raised(&up), 1);
    assert_eq!(up[0].alert().severity, Severity::Warning);
    let down = b.signal(AlertKind::CloudLinkDown, None, false, "", t(5));
    assert!(
        matches!(&down[..], [AlertChange::Cleared(a)] if a.cleared_at == Some(t(5))),
        "{down:?}"
    );
    assert_eq!(b.active().count(), 0);
}
