use chrono::TimeDelta;

use super::*;

fn facts() -> Facts {
    Facts {
        id: "cp-1".into(),
        phases: 3,
        phase_map: vec![0, 1, 2],
        min_current_a: 6.0,
        max_current_a: 32.0,
    }
}

fn at(s: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::seconds(s)
}

fn cycle(state: ChargeState, setpoint: f64, draw: f64) -> ChargerCycle {
    let mut c = ChargerCycle::unread("cp-1");
    c.online = true;
    c.state = Some(state);
    c.setpoint_a = Some(setpoint);
    c.current_a = [Some(draw); 3];
    c.reason = Reason::Charging;
    c
}

/// Feeds one cycle a second from `from` to `to` (inclusive); the first second each rule
/// of `kind` came on.
fn first_on(
    w: &mut DrawWatch,
    kind: AlertKind,
    from: i64,
    to: i64,
    c: impl Fn(i64) -> ChargerCycle,
) -> Option<i64> {
    let s = Settings::default();
    let mut first = None;
    for t in from..=to {
        let out = w.observe(&c(t), &facts(), at(t).into(), &s);
        let on = out
            .iter()
            .any(|(k, v)| *k == kind && matches!(v, Verdict::On(_)));
        if on && first.is_none() {
            first = Some(t);
        }
    }
    first
}

#[test]
fn drawing_above_the_setpoint_for_seven_seconds_is_setpoint_ignored() {
    let mut w = DrawWatch::default();
    // 16 A allowed: 16 × 1.1 + 0.5 = 18.1 A. 18 A is within, 19 A is not.
    assert_eq!(
        first_on(&mut w, AlertKind::SetpointIgnored, 0, 60, |_| cycle(
            ChargeState::C,
            16.0,
            18.0
        )),
        None
    );
    let mut w = DrawWatch::default();
    let got = first_on(&mut w, AlertKind::SetpointIgnored, 0, 60, |_| {
        cycle(ChargeState::C, 16.0, 19.0)
    });
    assert_eq!(got, Some(7));
}

#[test]
fn a_car_following_a_lower_setpoint_within_its_response_time_is_not_flagged() {
    // The setpoint falls by 2 A every second for 20 s and the car follows 5 s late: it is
    // above the setpoint in force all the time, never above the last five seconds' highest.
    let mut w = DrawWatch::default();
    let sp = |t: i64| (32.0 - 2.0 * t.clamp(0, 13) as f64).max(6.0);
    let got = first_on(&mut w, AlertKind::SetpointIgnored, 0, 40, |t| {
        cycle(ChargeState::C, sp(t), sp(t - 5))
    });
    assert_eq!(got, None);
}

#[test]
fn a_reported_applied_current_other_than_the_setpoint_is_setpoint_ignored() {
    let mut w = DrawWatch::default();
    let got = first_on(&mut w, AlertKind::SetpointIgnored, 0, 30, |_| {
        let mut c = cycle(ChargeState::C, 16.0, 10.0);
        c.applied_current_a = Some(32.0);
        c
    });
    assert_eq!(got, Some(7));
}

#[test]
fn drawing_while_disabled_paused_or_unplugged_is_unexpected_draw() {
    for (name, c) in [
        ("disabled", {
            let mut c = cycle(ChargeState::C, 16.0, 16.0);
            c.enabled = false;
            c.reason = Reason::Disabled;
            c
        }),
        ("paused", cycle(ChargeState::C, 0.0, 10.0)),
        ("no car", cycle(ChargeState::A, 16.0, 5.0)),
    ] {
        let mut w = DrawWatch::default();
        let got = first_on(&mut w, AlertKind::UnexpectedDraw, 0, 30, |_| c.clone());
        assert_eq!(got, Some(10), "{name}");
        let mut w = DrawWatch::default();
        let got = first_on(&mut w, AlertKind::SetpointIgnored, 0, 30, |_| c.clone());
        assert_eq!(got, None, "{name}: one finding, not two");
    }
}

#[test]
fn a_car_stopping_within_its_response_time_after_a_pause_is_not_flagged() {
    let mut w = DrawWatch::default();
    let got = first_on(&mut w, AlertKind::UnexpectedDraw, 0, 40, |t| {
        if t < 10 {
            cycle(ChargeState::C, 16.0, 16.0)
        } else if t < 15 {
            cycle(ChargeState::C, 0.0, 16.0)
        } else {
            cycle(ChargeState::B, 0.0, 0.0)
        }
    });
    assert_eq!(got, None);
}

#[test]
fn state_c_offered_and_drawing_nothing_is_a_stuck_session() {
    let mut w = DrawWatch::default();
    let got = first_on(&mut w, AlertKind::StuckSession, 0, 120, |_| {
        cycle(ChargeState::C, 16.0, 0.0)
    });
    assert_eq!(got, Some(45));
    // Offered nothing (paused by the site) is not stuck.
    let mut w = DrawWatch::default();
    let got = first_on(&mut w, AlertKind::StuckSession, 0, 120, |_| {
        cycle(ChargeState::C, 0.0, 0.0)
    });
    assert_eq!(got, None);
}

#[test]
fn a_car_idle_for_hours_blocks_the_bay_unless_the_site_holds_it_back() {
    let mut w = DrawWatch::default();
    let s = Settings::default();
    let idle = cycle(ChargeState::B, 16.0, 0.0);
    let mut raised = None;
    for t in (0..=5 * 3600).step_by(60) {
        let out = w.observe(&idle, &facts(), at(t).into(), &s);
        if raised.is_none() && matches!(out[3], (AlertKind::BayBlocked, Verdict::On(_))) {
            raised = Some(t);
        }
    }
    assert_eq!(raised, Some(4 * 3600));
    let mut waiting = idle.clone();
    waiting.reason = Reason::WaitingTurn;
    let mut w = DrawWatch::default();
    for t in (0..=5 * 3600).step_by(60) {
        let out = w.observe(&waiting, &facts(), at(t).into(), &s);
        assert_eq!(out[3].1, Verdict::Off);
    }
    // Held for a cheaper slot by its departure plan: the site holds it back too.
    let mut held = idle.clone();
    held.setpoint_a = Some(0.0);
    held.reason = Reason::Limited;
    held.plan = Some(crate::control::plan::PlanStatus {
        energy_wh: 25_000,
        depart_at: at(12 * 3600),
        delivered_wh: 0.0,
        met: false,
        charging: false,
    });
    let mut w = DrawWatch::default();
    for t in (0..=5 * 3600).step_by(60) {
        let out = w.observe(&held, &facts(), at(t).into(), &s);
        assert_eq!(out[3].1, Verdict::Off);
    }
}

#[test]
fn an_unread_charger_changes_nothing() {
    let mut w = DrawWatch::default();
    let s = Settings::default();
    let c = ChargerCycle::unread("cp-1");
    for (_, v) in w.observe(&c, &facts(), at(0).into(), &s) {
        assert_eq!(v, Verdict::Keep);
    }
}
