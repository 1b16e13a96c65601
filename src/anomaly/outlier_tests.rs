use chrono::{DateTime, TimeDelta};

use super::*;
use crate::sessions::machine::{RecordState, SessionRecord};

fn t(s: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::days(20_000) + TimeDelta::seconds(s)
}

fn session(
    id: &str,
    start_s: i64,
    hours: f64,
    energy_wh: u64,
    state: RecordState,
) -> SessionRecord {
    SessionRecord {
        state,
        charging_started_at: Some(t(start_s)),
        ended_at: (state != RecordState::Active).then(|| t(start_s + (hours * 3600.0) as i64)),
        energy_wh,
        ..SessionRecord::new(id.into(), "cp-1".into(), t(start_s))
    }
}

/// Ten ordinary sessions: 2–3 h, 10–14 kWh.
fn primed() -> SessionWatch {
    let s = Settings::default();
    let mut w = SessionWatch::default();
    for i in 0..10 {
        let r = session(
            &format!("old-{i}"),
            i * 86_400,
            2.0 + (i % 3) as f64 * 0.5,
            10_000 + (i as u64 % 5) * 1000,
            RecordState::Completed,
        );
        assert!(w.session(&r, &s).is_empty(), "too few to judge yet");
    }
    w
}

#[test]
fn the_bound_is_the_median_plus_scaled_mads_with_a_floor() {
    let xs = [10.0, 11.0, 12.0, 13.0, 14.0];
    // median 12, MAD 1 → 12 + 5 × 1.4826.
    assert!((upper_bound(&xs, 5.0) - (12.0 + 5.0 * 1.4826)).abs() < 1e-9);
    // All alike: the spread is a tenth of the median.
    assert!((upper_bound(&[10.0; 5], 5.0) - 15.0).abs() < 1e-9);
}

#[test]
fn an_ordinary_session_is_not_an_outlier() {
    let s = Settings::default();
    let mut w = primed();
    let r = session("new", 20 * 86_400, 2.5, 13_000, RecordState::Completed);
    assert!(w.session(&r, &s).is_empty());
}

#[test]
fn a_session_with_far_more_energy_is_raised_at_completion() {
    let s = Settings::default();
    let mut w = primed();
    let r = session("big", 20 * 86_400, 2.5, 60_000, RecordState::Completed);
    let v = w.session(&r, &s);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(matches!(&v[0], Verdict::On(m) if m.contains("big") && m.contains("60000 Wh")));
}

#[test]
fn a_running_session_is_raised_once_when_it_outlasts_the_bound() {
    let s = Settings::default();
    let mut w = primed();
    let start = 20 * 86_400;
    let r = session("long", start, 0.0, 0, RecordState::Active);
    assert!(w.session(&r, &s).is_empty());
    assert_eq!(
        w.tick("cp-1", t(start + 3 * 3600).into(), &s),
        None,
        "3 h is ordinary"
    );
    let v = w.tick("cp-1", t(start + 12 * 3600).into(), &s);
    assert!(
        matches!(&v, Some(Verdict::On(m)) if m.contains("long")),
        "{v:?}"
    );
    assert_eq!(
        w.tick("cp-1", t(start + 13 * 3600).into(), &s),
        None,
        "once"
    );
    // Its completion does not raise its duration again.
    let done = session("long", start, 13.0, 12_000, RecordState::Completed);
    assert!(w.session(&done, &s).is_empty());
}

#[test]
fn interrupted_sessions_are_neither_judged_nor_learned() {
    let s = Settings::default();
    let mut w = SessionWatch::default();
    for i in 0..20 {
        let r = session(
            &format!("x-{i}"),
            i * 86_400,
            1.0,
            500,
            RecordState::Interrupted,
        );
        w.session(&r, &s);
    }
    let r = session("big", 30 * 86_400, 10.0, 60_000, RecordState::Completed);
    assert!(w.session(&r, &s).is_empty(), "no history to judge by");
}
