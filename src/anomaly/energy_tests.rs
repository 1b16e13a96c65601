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

fn cycle(state: ChargeState, power_w: f64, register_wh: f64) -> ChargerCycle {
    let mut c = ChargerCycle::unread("cp-1");
    c.online = true;
    c.state = Some(state);
    c.power_w = Some(power_w);
    c.energy_wh = Some(register_wh);
    c
}

/// A car at `power_w` for `secs` seconds from `t0`, its register counting `gain` of the
/// energy in steps of `step_wh`; the first second `kind` came on.
fn run(
    w: &mut EnergyWatch,
    kind: AlertKind,
    power_w: f64,
    secs: i64,
    gain: impl Fn(i64) -> f64,
    step_wh: f64,
) -> Option<i64> {
    let s = Settings::default();
    let mut true_wh = 1.0e6;
    let mut first = None;
    for t in 0..=secs {
        if t > 0 {
            true_wh += power_w / 3600.0 * gain(t);
        }
        let reg = (true_wh / step_wh).floor() * step_wh;
        let out = w.observe(
            &cycle(ChargeState::C, power_w, reg),
            &facts(),
            at(t),
            230.0,
            &s,
        );
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
fn an_honest_register_raises_nothing_fine_or_coarse() {
    for step in [0.001, 1.0, 10.0, 100.0] {
        for power in [1400.0, 7400.0, 22000.0] {
            for kind in [
                AlertKind::MeterDrift,
                AlertKind::RegisterFrozen,
                AlertKind::RegisterJump,
                AlertKind::Overpower,
            ] {
                let mut w = EnergyWatch::default();
                let got = run(&mut w, kind, power, 1800, |_| 1.0, step);
                assert_eq!(got, None, "{kind:?} at {power} W, step {step} Wh");
            }
        }
    }
}

#[test]
fn a_register_counting_80_percent_is_meter_drift_within_a_minute() {
    let mut w = EnergyWatch::default();
    let got = run(
        &mut w,
        AlertKind::MeterDrift,
        22000.0,
        600,
        |t| if t > 300 { 0.8 } else { 1.0 },
        0.001,
    );
    let t = got.expect("drift found");
    assert!((300..=360).contains(&t), "{t}");
}

#[test]
fn a_register_standing_still_while_power_flows_is_frozen_not_drift() {
    let mut w = EnergyWatch::default();
    let gain = |t: i64| if t > 300 { 0.0 } else { 1.0 };
    let got = run(&mut w, AlertKind::RegisterFrozen, 7400.0, 600, gain, 1.0);
    let t = got.expect("frozen found");
    assert!((300..=330).contains(&t), "{t}");
    let mut w = EnergyWatch::default();
    assert_eq!(
        run(&mut w, AlertKind::MeterDrift, 7400.0, 600, gain, 1.0),
        None
    );
}

#[test]
fn a_jump_or_a_reset_mid_session_is_one_register_jump_but_a_new_session_is_not() {
    let s = Settings::default();
    let f = facts();
    let mut w = EnergyWatch::default();
    let mut jumps = 0;
    let mut feed = |w: &mut EnergyWatch, t: i64, state, reg| {
        let out = w.observe(&cycle(state, 7400.0, reg), &f, at(t), 230.0, &s);
        if matches!(out[2], (AlertKind::RegisterJump, Verdict::On(_))) {
            jumps += 1;
        }
    };
    feed(&mut w, 0, ChargeState::C, 1000.0);
    feed(&mut w, 1, ChargeState::C, 1002.0);
    feed(&mut w, 2, ChargeState::C, 6002.0); // +5 kWh in a second
    feed(&mut w, 3, ChargeState::C, 6004.0);
    feed(&mut w, 4, ChargeState::C, 0.0); // reset mid-session
    feed(&mut w, 5, ChargeState::C, 2.0);
    feed(&mut w, 6, ChargeState::A, 2.0);
    feed(&mut w, 7, ChargeState::B, 0.0); // a per-session register starts again
    feed(&mut w, 8, ChargeState::C, 2.0);
    assert_eq!(jumps, 2);
}

#[test]
fn power_above_the_chargers_maximum_is_overpower() {
    let s = Settings::default();
    let f = facts(); // 32 A × 3 × 230 V = 22 080 W; +10 %: 24 288 W
    let mut w = EnergyWatch::default();
    let mut first = None;
    for t in 0..20 {
        let out = w.observe(
            &cycle(ChargeState::C, 25_000.0, 1000.0 + t as f64 * 7.0),
            &f,
            at(t),
            230.0,
            &s,
        );
        if first.is_none() && matches!(out[3], (AlertKind::Overpower, Verdict::On(_))) {
            first = Some(t);
        }
    }
    assert_eq!(first, Some(5));
}
