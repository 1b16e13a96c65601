use chrono::{TimeDelta, TimeZone};
use rust_decimal::Decimal;

use std::sync::Arc;

use super::*;
use crate::alerts::{AlertSignal, AlertState};
use crate::control::record::ChargerCycle;
use crate::devices::model::ChargeState::{self, A, B, C};
use crate::sessions::machine::RecordState;
use crate::sessions::tracker::SessionChange;

/// One charger on the demo's tariff.
fn cfg() -> Config {
    let text = format!(
        r#"
[site]
id = "demo"
grid_limit_a = 40.0

[[bus]]
name = "rs485"
device = "/dev/ttyUSB0"

[meter]
model = "eastron-sdm630"
bus = "rs485"
unit = 1

[[charger]]
id = "cp-1"
model = "alfen-eve"
host = "127.0.0.1"
port = 1503
unit = 1
phases = 3
phase_map = [1, 2, 3]
max_current_a = 32.0
{}"#,
        crate::app::demo::TARIFF
    );
    match crate::config::load_str(&text, "pipeline test") {
        Ok(c) => c,
        Err(e) => panic!("test config: {e}"),
    }
}

/// Site time: the demo site's start plus `s` seconds.
fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 17, 0, 0).unwrap() + TimeDelta::seconds(s)
}

/// One cycle at site time `at`.
fn view(at: DateTime<Utc>, state: ChargeState, amps: f64, wh: f64) -> Arc<CycleRecord> {
    Arc::new(CycleRecord {
        chargers: vec![ChargerCycle {
            online: true,
            state: Some(state),
            current_a: [Some(amps); 3],
            power_w: Some(amps * 230.0 * 3.0),
            energy_wh: Some(wh),
            setpoint_a: Some(16.0),
            ..ChargerCycle::unread("cp-1")
        }],
        ..CycleRecord::blank(at, 40.0)
    })
}

fn alerts(events: &[SiteEvent]) -> Vec<(AlertKind, AlertState)> {
    events
        .iter()
        .filter_map(|n| match n {
            SiteEvent::Alert(c) => Some((c.alert().kind, c.alert().state)),
            _ => None,
        })
        .collect()
}

fn sessions(events: &[SiteEvent], change: SessionChange) -> Vec<&SessionRecord> {
    events
        .iter()
        .filter_map(|n| match n {
            SiteEvent::Session(u) if u.change == change => Some(&u.record),
            _ => None,
        })
        .collect()
}

/// The running sessions as a display sees them after `rec`.
fn active(p: &Pipeline, rec: &Arc<CycleRecord>) -> Vec<SessionRecord> {
    p.state(rec).sessions
}

#[test]
fn a_session_runs_on_the_site_clock_and_ends_billed_with_its_idle_time() {
    let mut l = Pipeline::new(&cfg());
    let mut notes = l.observe(&view(t(0), B, 0.0, 10_000.0));
    let started = sessions(&notes, SessionChange::Started);
    assert!(
        matches!(&started[..], [r] if r.plugged_in_at == t(0)),
        "{notes:?}"
    );
    // Ten minutes at 16 A on three phases, one view every ten seconds of site time.
    let per_step = 16.0 * 230.0 * 3.0 * 10.0 / 3600.0;
    let mut wh = 10_000.0;
    let mut last = view(t(0), B, 0.0, wh);
    for s in (10..=600).step_by(10) {
        wh += per_step;
        last = view(t(s), C, 16.0, wh);
        notes.extend(l.observe(&last));
    }
    let running = active(&l, &last);
    assert_eq!(running.len(), 1);
    let r = &running[0];
    assert!(
        (r.energy_wh as f64 - (wh - 10_000.0)).abs() <= 1.0,
        "{} Wh",
        r.energy_wh
    );
    let cost = r.cost.as_ref().map(|c| c.total).unwrap_or_default();
    assert!(cost > Decimal::ZERO, "a running cost");
    assert!(
        r.estimated_end_at.is_some_and(|e| e > t(600)),
        "an estimate ahead of the site's clock: {:?}",
        r.estimated_end_at
    );

    // The car is full and stays plugged in for ten minutes, then leaves.
    for s in (610..=1200).step_by(10) {
        last = view(t(s), B, 0.0, wh);
        notes.extend(l.observe(&last));
    }
    assert_eq!(
        alerts(&notes),
        vec![(AlertKind::ChargingComplete, AlertState::Raised)]
    );
    let idle = active(&l, &last);
    assert_eq!(idle[0].charging_completed_at, Some(t(610)));
    let idle_cost = idle[0].cost.as_ref().map(|c| c.total).unwrap_or_default();
    assert!(
        idle_cost > cost,
        "idle fee after the grace: {idle_cost} > {cost}"
    );

    let gone = l.observe(&view(t(1210), A, 0.0, wh));
    let ended = sessions(&gone, SessionChange::Completed);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].state, RecordState::Completed);
    assert_eq!(ended[0].ended_at, Some(t(1210)));
    let final_cost = ended[0].cost.as_ref().map(|c| c.total).unwrap_or_default();
    assert!(final_cost >= idle_cost, "{final_cost} >= {idle_cost}");

    // The complete alert clears after its hold-off on the site's clock, not before.
    let mut later = Vec::new();
    for s in (1220..=1260).step_by(10) {
        later.extend(l.observe(&view(t(s), A, 0.0, wh)));
    }
    assert!(alerts(&later).is_empty(), "held off: {later:?}");
    let last = view(t(1270), A, 0.0, wh);
    later.extend(l.observe(&last));
    assert_eq!(
        alerts(&later),
        vec![(AlertKind::ChargingComplete, AlertState::Cleared)]
    );
    let state = l.state(&last);
    assert!(state.sessions.is_empty());
    assert!(state.alerts.is_empty());
}

#[test]
fn controller_alerts_are_stamped_with_the_record_time_and_held_off() {
    let mut l = Pipeline::new(&cfg());
    let cycle = |s: i64, raised: Option<bool>| {
        let mut r = CycleRecord::blank(t(s), 40.0);
        r.alerts = raised
            .map(|raised| AlertSignal {
                kind: AlertKind::ChargerOffline,
                raised,
                charger: Some("cp-1".into()),
                message: "no answer".into(),
            })
            .into_iter()
            .collect();
        Arc::new(r)
    };
    let raised = l.observe(&cycle(100, Some(true)));
    match &raised[..] {
        [SiteEvent::Alert(AlertChange::Raised(a))] => {
            assert_eq!(a.raised_at, t(100));
            assert_eq!(a.kind, AlertKind::ChargerOffline);
        }
        other => panic!("{other:?}"),
    }
    assert!(l.observe(&cycle(110, Some(false))).is_empty(), "held off");
    let quiet = cycle(150, None);
    assert!(l.observe(&quiet).is_empty(), "still held off");
    assert_eq!(l.state(&quiet).alerts.len(), 1);
    match &l.observe(&cycle(171, None))[..] {
        [SiteEvent::Alert(AlertChange::Cleared(a))] => assert_eq!(a.cleared_at, Some(t(110))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn estimates_start_from_the_history_given() {
    // The same charging seen by a ledger with no history (15 kWh assumed) and one whose
    // earlier sessions took 2 kWh: the latter expects the car to finish sooner.
    let mut fresh = Pipeline::new(&cfg());
    let mut known = Pipeline::new(&cfg());
    known.tracker_mut().learn([2_000, 2_000, 2_000]);
    let mut wh = 0.0;
    let mut v = view(t(0), B, 0.0, wh);
    for s in (0..=300).step_by(10) {
        if s > 0 {
            wh += 16.0 * 230.0 * 3.0 * 10.0 / 3600.0;
            v = view(t(s), C, 16.0, wh);
        }
        fresh.observe(&v);
        known.observe(&v);
    }
    let end = |l: &Pipeline| active(l, &v)[0].estimated_end_at;
    match (end(&fresh), end(&known)) {
        (Some(f), Some(k)) => assert!(k < f, "{k} < {f}"),
        other => panic!("{other:?}"),
    }
}

/// A completed 30-minute session of `wh` on cp-1, `days` days before the test's time.
fn past(days: i64, wh: u64) -> SessionRecord {
    let plugged = t(0) - TimeDelta::days(days);
    SessionRecord {
        state: RecordState::Completed,
        charging_started_at: Some(plugged),
        ended_at: Some(plugged + TimeDelta::minutes(30 + days % 3)),
        energy_wh: wh,
        ..SessionRecord::new(format!("past-{days}"), "cp-1".into(), plugged)
    }
}

#[test]
fn a_session_outlasting_the_chargers_primed_history_is_raised_once_and_tallied() {
    let mut l = Pipeline::new(&cfg());
    let history: Vec<SessionRecord> = (1..=12).map(|d| past(d, 5_000)).collect();
    l.anomalies_mut().learn_sessions(&history);
    let mut notes = Vec::new();
    let mut wh = 10_000.0;
    let mut last = view(t(0), B, 0.0, wh);
    notes.extend(l.observe(&last));
    // Charging for two hours, against sessions of about half an hour.
    for s in (10..=7200).step_by(10) {
        wh += 16.0 * 230.0 * 3.0 * 10.0 / 3600.0;
        last = view(t(s), C, 16.0, wh);
        notes.extend(l.observe(&last));
    }
    let outliers: Vec<&AlertChange> = notes
        .iter()
        .filter_map(|n| match n {
            SiteEvent::Alert(c) if c.alert().kind == AlertKind::SessionOutlier => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(outliers.len(), 1, "{outliers:?}");
    let a = outliers[0].alert();
    assert_eq!(a.charger.as_deref(), Some("cp-1"));
    // Median 31 min, MAD 1 min: the bound is 31 + 5 × 3.1 min (the floor, a tenth of the
    // median, is above 1.4826 × MAD).
    let bound = 31.0 * 60.0 + 5.0 * 0.1 * 31.0 * 60.0;
    let after = (a.raised_at - t(0)).num_seconds() as f64;
    assert!(
        after > bound && after <= bound + 10.0,
        "raised {after} s in, bound {bound} s"
    );
    let stations = l.state(&last).stations;
    assert_eq!(stations.len(), 1);
    assert_eq!(stations[0].anomaly_alerts, Some(1));
    assert_eq!(stations[0].energy_share_ratio, Some(1.0));
}

/// One cycle at `at` with cp-1's Modbus counters at `requests` sent, `ok` answered well.
fn linked(at: DateTime<Utc>, requests: u64, ok: u64) -> Arc<CycleRecord> {
    let mut rec = (*view(at, A, 0.0, 0.0)).clone();
    rec.chargers[0].link.requests = requests;
    rec.chargers[0].link.ok = ok;
    Arc::new(rec)
}

fn tallies(events: &[SiteEvent]) -> Vec<&LinkTally> {
    events
        .iter()
        .filter_map(|e| match e {
            SiteEvent::LinkTally(t) => Some(t),
            _ => None,
        })
        .collect()
}

#[test]
fn modbus_counts_are_handed_on_per_quarter_hour_and_a_counter_restart_counts_from_zero() {
    let mut p = Pipeline::new(&cfg());
    let mut out = Vec::new();
    // 17:00–17:15: 40 requests in all (the first record counts from zero), 4 failed.
    for (s, req, ok) in [(0, 10, 10), (300, 20, 18), (600, 40, 36)] {
        out.extend(p.observe(&linked(t(s), req, ok)));
    }
    assert!(tallies(&out).is_empty(), "nothing before the quarter ends");
    // 17:15: the quarter before is handed on; this record's 5 requests (1 failed) count in
    // the next. Then the counters restart (the link was made again): 3 sent, 2 failed.
    out.extend(p.observe(&linked(t(900), 45, 40)));
    out.extend(p.observe(&linked(t(960), 3, 1)));
    out.extend(p.observe(&linked(t(1020), 6, 4)));
    let first = tallies(&out);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].from, t(0));
    assert_eq!(first[0].to, t(600));
    assert_eq!(
        first[0].chargers,
        [LinkCount {
            charger: "cp-1".into(),
            requests: 40,
            failed: 4
        }]
    );
    // At the end, the quarter under way: 5 + 3 + 3 sent, 1 + 2 + 0 failed.
    let last = p.finish();
    assert_eq!(
        last,
        [SiteEvent::LinkTally(LinkTally {
            from: t(900),
            to: t(1020),
            chargers: vec![LinkCount {
                charger: "cp-1".into(),
                requests: 11,
                failed: 3
            }]
        })]
    );
    assert!(p.finish().is_empty(), "handed on once");
    // A quarter without requests hands nothing on.
    out = p.observe(&linked(t(1800), 6, 4));
    out.extend(p.observe(&linked(t(2700), 6, 4)));
    assert!(tallies(&out).is_empty(), "{out:?}");
}

/// The alerts of 100 one-second cycles: the main meter is lost at 0 and back at 5 (its
/// alert clears after the 60 s hold-off), and the charger draws 25 A over its 16 A setpoint
/// from 10 (raised after the 7 s hold). `step` moves the wall time of every record from
/// cycle `at` on as a step of the system clock would; the steady time goes on undisturbed.
fn stepped_alerts(step: Option<(i64, TimeDelta)>) -> Vec<(i64, AlertKind, AlertState, Alert)> {
    let mut l = Pipeline::new(&cfg());
    let mut out = Vec::new();
    for s in 0..100 {
        let amps = if s >= 10 { 25.0 } else { 16.0 };
        let wh = (16.0 * s as f64 + 9.0 * (s - 10).max(0) as f64) * 230.0 * 3.0 / 3600.0;
        let mut r = (*view(t(s), C, amps, wh.floor())).clone();
        r.seq = s as u64 + 1;
        if s == 0 || s == 5 {
            r.alerts.push(AlertSignal {
                kind: AlertKind::MeterOffline,
                raised: s == 0,
                charger: None,
                message: "main meter unreadable".into(),
            });
        }
        if let Some((from, by)) = step {
            r.steady_at = Some(r.at);
            if s >= from {
                r.at += by;
            }
            if s == from {
                r.clock.step_ms = Some(by.num_milliseconds());
            }
        }
        for e in l.observe(&Arc::new(r)) {
            if let SiteEvent::Alert(c) = e {
                let a = c.alert().clone();
                out.push((s, a.kind, a.state, a));
            }
        }
    }
    out
}

#[test]
fn a_step_of_the_wall_clock_neither_raises_nor_clears_an_alert_early() {
    let when =
        |alerts: &[(i64, AlertKind, AlertState, Alert)]| -> Vec<(i64, AlertKind, AlertState)> {
            alerts.iter().map(|(s, k, st, _)| (*s, *k, *st)).collect()
        };
    let plain = stepped_alerts(None);
    let held = when(&plain);
    let ignored = held
        .iter()
        .find(|(_, k, _)| *k == AlertKind::SetpointIgnored)
        .map(|a| a.0);
    assert!(
        ignored.is_some_and(|s| (17..=22).contains(&s)),
        "raised after its hold: {held:?}"
    );
    assert!(
        held.contains(&(65, AlertKind::MeterOffline, AlertState::Cleared)),
        "cleared after its hold-off: {held:?}"
    );
    for by in [TimeDelta::days(646), -TimeDelta::hours(1)] {
        // Mid-way through the over-draw's hold, and through the meter alert's hold-off.
        for at in [13, 30] {
            let stepped = stepped_alerts(Some((at, by)));
            assert_eq!(when(&stepped), held, "step {by} at {at}");
            // Stamps follow the wall clock: the clear is stamped when the meter answered
            // (before the step), the over-draw when it was raised.
            for ((s, _, state, a), (_, _, _, b)) in stepped.iter().zip(&plain) {
                let moved = if *s >= at { by } else { TimeDelta::zero() };
                if *state == AlertState::Raised {
                    assert_eq!(a.raised_at, b.raised_at + moved, "{a:?}");
                } else if a.kind == AlertKind::MeterOffline {
                    assert_eq!(a.cleared_at, Some(t(5)), "{a:?}");
                }
            }
        }
    }
}
