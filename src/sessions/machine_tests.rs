//! Tests of the session state machine: every transition, flapping, faults, unknown states and
//! the record it produces.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::devices::model::ChargeState::{self, A, B, C, F};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 18, 0, 0)
        .single()
        .unwrap_or_default()
}

fn at(s: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(s)
}

fn machine() -> SessionMachine {
    SessionMachine::new(
        "cp1",
        MachineConfig::default(),
        MeterConfig::lifetime(11_000.0),
    )
}

/// Observes `state` at second `s` with a lifetime register and the power drawn.
fn obs(
    m: &mut SessionMachine,
    s: i64,
    state: Option<ChargeState>,
    register_wh: f64,
    power_w: f64,
) -> Vec<SessionEvent> {
    let drawing = power_w > 500.0;
    m.observe(
        at(s),
        state,
        drawing,
        Reading::new(Some(register_wh), Some(power_w)),
        || format!("s-{s}"),
    )
}

fn names(events: &[SessionEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            SessionEvent::Started => "started",
            SessionEvent::ChargingStarted => "charging_started",
            SessionEvent::Paused => "paused",
            SessionEvent::Resumed => "resumed",
            SessionEvent::ChargingComplete => "complete",
            SessionEvent::Ended { .. } => "ended",
        })
        .collect()
}

fn closed(events: &[SessionEvent]) -> Option<&ClosedSession> {
    events.iter().find_map(|e| match e {
        SessionEvent::Ended { session, .. } => Some(session.as_ref()),
        _ => None,
    })
}

#[test]
fn a_full_session_goes_through_every_transition() {
    let mut m = machine();
    assert!(obs(&mut m, 0, Some(A), 1_000.0, 0.0).is_empty());
    assert_eq!(names(&obs(&mut m, 10, Some(B), 1_000.0, 0.0)), ["started"]);
    assert_eq!(
        names(&obs(&mut m, 20, Some(C), 1_000.0, 7_200.0)),
        ["charging_started"]
    );
    assert_eq!(
        names(&obs(&mut m, 620, Some(C), 2_200.0, 7_200.0)),
        [] as [&str; 0]
    );
    assert_eq!(names(&obs(&mut m, 630, Some(B), 2_220.0, 0.0)), ["paused"]);
    assert_eq!(
        names(&obs(&mut m, 640, Some(C), 2_220.0, 7_200.0)),
        ["resumed"]
    );
    assert_eq!(
        names(&obs(&mut m, 1_240, Some(B), 3_420.0, 0.0)),
        ["paused"]
    );
    assert!(obs(&mut m, 1_280, Some(B), 3_420.0, 0.0).is_empty());
    assert_eq!(
        names(&obs(&mut m, 1_300, Some(B), 3_420.0, 0.0)),
        ["complete"]
    );
    let live = m.record();
    assert_eq!(
        live.as_ref().and_then(|r| r.charging_completed_at),
        Some(at(1_240))
    );
    assert_eq!(live.as_ref().map(|r| r.state), Some(RecordState::Active));

    let ended = obs(&mut m, 2_000, Some(A), 3_420.0, 0.0);
    assert_eq!(names(&ended), ["ended"]);
    let s = closed(&ended).map(|c| c.record.clone());
    let want = SessionRecord {
        state: RecordState::Completed,
        charging_started_at: Some(at(20)),
        charging_completed_at: Some(at(1_240)),
        ended_at: Some(at(2_000)),
        energy_wh: 2_420,
        meter_start_wh: Some(1_000),
        meter_end_wh: Some(3_420),
        max_power_w: Some(7_200),
        stop_reason: Some(StopReason::Unplugged),
        updated_at: Some(at(2_000)),
        ..SessionRecord::new("s-10".into(), "cp1".into(), at(10))
    };
    assert_eq!(s, Some(want));
    assert_eq!(m.record(), None);
}

#[test]
fn flapping_between_b_and_c_keeps_one_session_and_never_completes() {
    let mut m = machine();
    let mut all = obs(&mut m, 0, Some(B), 0.0, 0.0);
    all.extend(obs(&mut m, 5, Some(C), 0.0, 7_000.0));
    for i in 0..20 {
        let s = 10 + i * 6;
        let state = if i % 2 == 0 { B } else { C };
        let p = if state == C { 7_000.0 } else { 0.0 };
        all.extend(obs(&mut m, s, Some(state), (s as f64) * 1.5, p));
    }
    let n = names(&all);
    assert_eq!(n.iter().filter(|e| **e == "started").count(), 1, "{n:?}");
    assert!(!n.contains(&"complete"), "{n:?}");
    assert!(!n.contains(&"ended"), "{n:?}");
    assert_eq!(m.record().and_then(|r| r.charging_completed_at), None);
    assert_eq!(m.record().map(|r| r.session_id), Some("s-0".to_string()));
}

#[test]
fn a_vehicle_that_never_draws_gets_an_empty_session_ended_by_unplug() {
    let mut m = machine();
    assert_eq!(names(&obs(&mut m, 0, Some(B), 500.0, 0.0)), ["started"]);
    for s in (60..600).step_by(60) {
        assert!(obs(&mut m, s, Some(B), 500.0, 0.0).is_empty());
    }
    let ended = obs(&mut m, 600, Some(A), 500.0, 0.0);
    let r = closed(&ended).map(|c| &c.record);
    assert_eq!(r.map(|r| r.energy_wh), Some(0));
    assert_eq!(r.and_then(|r| r.charging_started_at), None);
    assert_eq!(r.and_then(|r| r.charging_completed_at), None);
    assert_eq!(r.map(|r| r.state), Some(RecordState::Completed));
}

#[test]
fn an_unknown_state_changes_nothing() {
    let mut m = machine();
    assert!(obs(&mut m, 0, None, 0.0, 7_000.0).is_empty());
    assert_eq!(m.record(), None);
    obs(&mut m, 10, Some(C), 0.0, 7_000.0);
    let before = m.record();
    // A failed read during charging neither pauses nor ends; nor does one long after.
    assert!(obs(&mut m, 20, None, 20.0, 0.0).is_empty());
    assert!(obs(&mut m, 500, None, 20.0, 0.0).is_empty());
    let after = m.record();
    assert_eq!(
        after.as_ref().map(|r| r.session_id.clone()),
        before.map(|r| r.session_id)
    );
    // The energy it saw still counts.
    assert_eq!(after.map(|r| r.energy_wh), Some(20));
}

#[test]
fn completion_waits_while_load_management_withholds_current() {
    let mut m = machine();
    obs(&mut m, 0, Some(C), 0.0, 7_000.0);
    let withheld = |m: &mut SessionMachine, s: i64| {
        m.observe(
            at(s),
            Some(B),
            false,
            Reading {
                offered: false,
                ..Reading::new(Some(100.0), Some(0.0))
            },
            || unreachable!(),
        )
    };
    assert_eq!(names(&withheld(&mut m, 60)), ["paused"]);
    assert!(withheld(&mut m, 600).is_empty());
    // Offered again: the hold-off starts now, not at the pause.
    assert!(obs(&mut m, 610, Some(B), 100.0, 0.0).is_empty());
    assert!(obs(&mut m, 660, Some(B), 100.0, 0.0).is_empty());
    assert_eq!(names(&obs(&mut m, 670, Some(B), 100.0, 0.0)), ["complete"]);
    assert_eq!(
        m.record().and_then(|r| r.charging_completed_at),
        Some(at(610))
    );
}

#[test]
fn drawing_again_after_completion_resumes_and_clears_it() {
    let mut m = machine();
    obs(&mut m, 0, Some(C), 0.0, 7_000.0);
    obs(&mut m, 60, Some(B), 100.0, 0.0);
    assert_eq!(names(&obs(&mut m, 120, Some(B), 100.0, 0.0)), ["complete"]);
    assert_eq!(
        names(&obs(&mut m, 900, Some(C), 100.0, 2_000.0)),
        ["resumed"]
    );
    assert_eq!(m.record().and_then(|r| r.charging_completed_at), None);
}

#[test]
fn plugged_in_while_charging_starts_and_charges_at_once() {
    let mut m = machine();
    let e = obs(&mut m, 0, Some(C), 0.0, 7_000.0);
    assert_eq!(names(&e), ["started", "charging_started"]);
    assert_eq!(m.record().and_then(|r| r.charging_started_at), Some(at(0)));
}

#[test]
fn state_c_without_drawing_is_not_charging_yet() {
    let mut m = machine();
    assert_eq!(names(&obs(&mut m, 0, Some(C), 0.0, 0.0)), ["started"]);
    assert_eq!(
        names(&obs(&mut m, 5, Some(C), 0.0, 7_000.0)),
        ["charging_started"]
    );
}

#[test]
fn a_lasting_fault_interrupts_the_session_a_brief_one_does_not() {
    let mut m = machine();
    obs(&mut m, 0, Some(C), 0.0, 7_000.0);
    assert_eq!(names(&obs(&mut m, 10, Some(F), 20.0, 0.0)), ["paused"]);
    assert_eq!(names(&obs(&mut m, 30, Some(C), 20.0, 7_000.0)), ["resumed"]);
    assert_eq!(names(&obs(&mut m, 40, Some(F), 40.0, 0.0)), ["paused"]);
    assert!(obs(&mut m, 90, Some(F), 40.0, 0.0).is_empty());
    let e = obs(&mut m, 100, Some(F), 40.0, 0.0);
    assert_eq!(names(&e), ["ended"]);
    let r = closed(&e).map(|c| &c.record);
    assert_eq!(r.map(|r| r.state), Some(RecordState::Interrupted));
    assert_eq!(
        r.and_then(|r| r.stop_reason),
        Some(StopReason::ChargerFault)
    );
    // A fault with no session starts nothing; the vehicle seen again starts a new one.
    assert!(obs(&mut m, 110, Some(F), 40.0, 0.0).is_empty());
    assert_eq!(names(&obs(&mut m, 120, Some(B), 40.0, 0.0)), ["started"]);
    assert_eq!(m.record().map(|r| r.session_id), Some("s-120".to_string()));
}

#[test]
fn end_from_outside_interrupts_with_the_given_reason() {
    let mut m = machine();
    assert_eq!(m.end(at(0), StopReason::ChargerOffline), None);
    obs(&mut m, 0, Some(C), 0.0, 7_000.0);
    obs(&mut m, 60, Some(C), 110.0, 7_000.0);
    let e = m.end(at(300), StopReason::ChargerOffline);
    let r = e.as_ref().and_then(|e| closed(std::slice::from_ref(e)));
    assert_eq!(
        r.map(|c| (c.record.state, c.record.ended_at, c.record.energy_wh)),
        Some((RecordState::Interrupted, Some(at(300)), 110))
    );
    assert_eq!(r.map(|c| c.samples.len()), Some(1));
    assert_eq!(m.record(), None);
}

#[test]
fn session_scope_ignores_the_register_seen_at_unplug() {
    let meter = MeterConfig {
        scope: EnergyScope::Session,
        ..MeterConfig::lifetime(11_000.0)
    };
    let mut m = SessionMachine::new("abb", MachineConfig::default(), meter);
    obs(&mut m, 0, Some(B), 0.0, 0.0);
    obs(&mut m, 10, Some(C), 0.0, 7_000.0);
    obs(&mut m, 610, Some(C), 1_150.0, 7_000.0);
    // The charger clears its session register as the cable comes out.
    let e = obs(&mut m, 620, Some(A), 0.0, 0.0);
    let r = closed(&e).map(|c| &c.record);
    assert_eq!(r.map(|r| r.energy_wh), Some(1_150));
    assert_eq!(r.and_then(|r| r.meter_end_wh), Some(1_150));
    assert_eq!(r.map(|r| r.energy_notes.len()), Some(0));
}

#[test]
fn a_charger_without_register_is_integrated_and_says_so() {
    let mut m = machine();
    let r = |p: f64| Reading::new(None, Some(p));
    m.observe(at(0), Some(C), true, r(7_200.0), || "x".into());
    m.observe(at(600), Some(C), true, r(7_200.0), || "y".into());
    let e = m.observe(at(610), Some(A), false, r(7_200.0), || "z".into());
    let rec = closed(&e).map(|c| c.record.clone());
    assert_eq!(rec.as_ref().map(|r| r.energy_wh), Some(1_220));
    assert_eq!(
        rec.as_ref().map(|r| r.energy_source),
        Some(EnergySource::Integrated)
    );
    assert_eq!(rec.as_ref().and_then(|r| r.meter_start_wh), None);
    assert_eq!(rec.map(|r| r.session_id), Some("x".to_string()));
}

#[test]
fn the_record_serializes_with_the_contract_field_names() -> Result<(), serde_json::Error> {
    let mut m = machine();
    obs(&mut m, 0, Some(C), 1_000.0, 7_000.0);
    let e = obs(&mut m, 60, Some(A), 1_100.0, 0.0);
    let rec = closed(&e).map(|c| c.record.clone());
    let v = serde_json::to_value(&rec)?;
    for key in [
        "session_id",
        "charger",
        "state",
        "plugged_in_at",
        "charging_started_at",
        "ended_at",
        "energy_wh",
        "meter_start_wh",
        "meter_end_wh",
        "max_power_w",
        "stop_reason",
        "energy_source",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    assert_eq!(v["state"], "completed");
    assert_eq!(v["stop_reason"], "unplugged");
    assert_eq!(v["energy_source"], "register");
    assert_eq!(v["plugged_in_at"], "2026-11-21T18:00:00Z");
    let back: Option<SessionRecord> = serde_json::from_value(v)?;
    assert_eq!(back, rec);
    Ok(())
}
