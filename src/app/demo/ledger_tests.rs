use chrono::{TimeDelta, TimeZone};
use rust_decimal::Decimal;

use super::*;
use crate::alerts::AlertState;
use crate::control::view::{AlertKind as ControlAlertKind, ChargerView};
use crate::devices::model::ChargeState::{self, A, B, C};

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
        super::super::TARIFF
    );
    match crate::config::load_str(&text, "ledger test") {
        Ok(c) => c,
        Err(e) => panic!("test config: {e}"),
    }
}

/// Site time: the demo site's start plus `s` seconds.
fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 17, 0, 0).unwrap() + TimeDelta::seconds(s)
}

fn view(state: ChargeState, amps: f64, wh: f64) -> SiteView {
    SiteView {
        // The controller's own (wall-clock) stamp, which the ledger must not use.
        at: Some(Utc.with_ymd_and_hms(2030, 6, 1, 3, 0, 0).unwrap()),
        chargers: vec![ChargerView {
            id: "cp-1".into(),
            online: true,
            state: Some(state),
            current_a: [amps; 3],
            power_w: Some(amps * 230.0 * 3.0),
            energy_wh: Some(wh),
            setpoint_a: Some(16.0),
            reason: String::new(),
        }],
        ..SiteView::default()
    }
}

fn alerts(notes: &[Note]) -> Vec<(AlertKind, AlertState)> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Alert(c) => Some((c.alert().kind, c.alert().state)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_session_runs_on_the_site_clock_and_ends_billed_with_its_idle_time() {
    let mut l = Ledger::new(&cfg(), &[]);
    let mut notes = l.observe(&view(B, 0.0, 10_000.0), t(0));
    assert!(
        matches!(&notes[..], [Note::SessionStarted(r)] if r.plugged_in_at == t(0)),
        "{notes:?}"
    );
    // Ten minutes at 16 A on three phases, one view every ten seconds of site time.
    let per_step = 16.0 * 230.0 * 3.0 * 10.0 / 3600.0;
    let mut wh = 10_000.0;
    for s in (10..=600).step_by(10) {
        wh += per_step;
        notes.extend(l.observe(&view(C, 16.0, wh), t(s)));
    }
    let running = l.active(t(600));
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
        notes.extend(l.observe(&view(B, 0.0, wh), t(s)));
    }
    assert_eq!(
        alerts(&notes),
        vec![(AlertKind::ChargingComplete, AlertState::Raised)]
    );
    let idle = l.active(t(1200));
    assert_eq!(idle[0].charging_completed_at, Some(t(610)));
    let idle_cost = idle[0].cost.as_ref().map(|c| c.total).unwrap_or_default();
    assert!(
        idle_cost > cost,
        "idle fee after the grace: {idle_cost} > {cost}"
    );

    let gone = l.observe(&view(A, 0.0, wh), t(1210));
    let ended: Vec<&SessionRecord> = gone
        .iter()
        .filter_map(|n| match n {
            Note::SessionEnded(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].state, RecordState::Completed);
    assert_eq!(ended[0].ended_at, Some(t(1210)));
    let final_cost = ended[0].cost.as_ref().map(|c| c.total).unwrap_or_default();
    assert!(final_cost >= idle_cost, "{final_cost} >= {idle_cost}");

    // The complete alert clears after its hold-off on the site's clock.
    let mut later = gone.clone();
    later.extend(l.tick(t(1210 + 61)));
    assert_eq!(
        alerts(&later),
        vec![(AlertKind::ChargingComplete, AlertState::Cleared)]
    );
    assert!(l.active(t(1300)).is_empty());
    assert_eq!(l.recent_finished().count(), 1);
    assert_eq!(l.recent_alerts().count(), 2);
    assert_eq!(l.active_alerts(), 0);

    let per = l.per_charger(t(1300));
    assert_eq!(per.len(), 1);
    let (id, s) = &per[0];
    assert_eq!(id, "cp-1");
    assert_eq!((s.started, s.completed), (1, 1));
    assert_eq!(s.energy_wh, ended[0].energy_wh);
    assert_eq!(s.cost, Some(final_cost));
}

#[test]
fn controller_alerts_are_stamped_with_the_site_clock_and_held_off() {
    let mut l = Ledger::new(&cfg(), &[]);
    let ev = |raised| ControlEvent::Alert {
        kind: ControlAlertKind::ChargerOffline,
        raised,
        charger: Some("cp-1".into()),
        message: "no answer".into(),
        at: Utc.with_ymd_and_hms(2030, 6, 1, 3, 0, 0).unwrap(),
    };
    let raised = l.control(ev(true), t(100));
    match &raised[..] {
        [Note::Alert(AlertChange::Raised(a))] => {
            assert_eq!(a.raised_at, t(100));
            assert_eq!(a.kind, AlertKind::ChargerOffline);
        }
        other => panic!("{other:?}"),
    }
    assert!(l.control(ev(false), t(110)).is_empty(), "held off");
    assert!(l.tick(t(150)).is_empty(), "still held off");
    assert_eq!(l.active_alerts(), 1);
    match &l.tick(t(171))[..] {
        [Note::Alert(AlertChange::Cleared(a))] => assert_eq!(a.cleared_at, Some(t(110))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn estimates_start_from_the_history_given() {
    // The same charging seen by a ledger with no history (15 kWh assumed) and one whose
    // earlier sessions took 2 kWh: the latter expects the car to finish sooner.
    let mut fresh = Ledger::new(&cfg(), &[]);
    let mut known = Ledger::new(&cfg(), &[2_000, 2_000, 2_000]);
    let mut wh = 0.0;
    for s in (0..=300).step_by(10) {
        let v = if s == 0 {
            view(B, 0.0, wh)
        } else {
            wh += 16.0 * 230.0 * 3.0 * 10.0 / 3600.0;
            view(C, 16.0, wh)
        };
        fresh.observe(&v, t(s));
        known.observe(&v, t(s));
    }
    let end = |l: &Ledger| l.active(t(300))[0].estimated_end_at;
    match (end(&fresh), end(&known)) {
        (Some(f), Some(k)) => assert!(k < f, "{k} < {f}"),
        other => panic!("{other:?}"),
    }
}
