use chrono::{DateTime, TimeDelta};

use super::*;
use crate::control::record::{ChargerCycle, Reason};
use crate::devices::model::ChargeState;

const BASE: &str = include_str!("../../tests/fixtures/config/base.toml");

fn detectors() -> Detectors {
    let facts = vec![Facts {
        id: "cp-1".into(),
        phases: 3,
        phase_map: vec![0, 1, 2],
        min_current_a: 6.0,
        max_current_a: 32.0,
    }];
    Detectors::with(Settings::default(), facts, 230.0, 3)
}

fn record(t: i64, setpoint: f64, draw: f64) -> CycleRecord {
    let mut r = CycleRecord::blank(DateTime::UNIX_EPOCH + TimeDelta::seconds(t), 40.0);
    let mut c = ChargerCycle::unread("cp-1");
    c.online = true;
    c.state = Some(ChargeState::C);
    c.setpoint_a = Some(setpoint);
    c.current_a = [Some(draw); 3];
    c.reason = Reason::Charging;
    r.chargers.push(c);
    r
}

#[test]
fn a_condition_is_signalled_once_on_and_once_off() {
    let mut d = detectors();
    let mut signals = Vec::new();
    for t in 0..30 {
        let draw = if t < 20 { 25.0 } else { 16.0 };
        signals.extend(d.observe(&record(t, 16.0, draw)));
    }
    let seen: Vec<(AlertKind, bool)> = signals.iter().map(|s| (s.kind, s.raised)).collect();
    assert_eq!(
        seen,
        [
            (AlertKind::SetpointIgnored, true),
            (AlertKind::SetpointIgnored, false)
        ]
    );
    assert_eq!(signals[0].charger.as_deref(), Some("cp-1"));
    assert!(
        signals[0].message.contains("25.0 A"),
        "{}",
        signals[0].message
    );
}

#[test]
fn disabling_the_rules_clears_what_they_raised() {
    let mut d = detectors();
    for t in 0..10 {
        d.observe(&record(t, 16.0, 25.0));
    }
    d.settings.enabled = false;
    let off = d.observe(&record(10, 16.0, 25.0));
    assert_eq!(off.len(), 1);
    assert!(!off[0].raised);
    assert!(d.observe(&record(11, 16.0, 25.0)).is_empty());
}

#[test]
fn the_section_has_defaults_and_its_keys_are_checked() {
    let cfg = crate::config::load_str(BASE, "base.toml").expect("base loads");
    assert_eq!(cfg.anomaly, Settings::default());
    let tuned = format!("{BASE}\n[anomaly]\nsetpoint_hold_s = 10\nbay_blocked_s = 7200\n");
    let cfg = crate::config::load_str(&tuned, "base.toml").expect("tuned loads");
    assert_eq!(cfg.anomaly.setpoint_hold_s, 10.0);
    assert_eq!(cfg.anomaly.bay_blocked_s, 7200.0);

    let text = format!("{BASE}\n[anomaly]\nsetpoint_hold_s = 0\n");
    let line = text.lines().count();
    let err = crate::config::load_str(&text, "base.toml")
        .expect_err("a zero hold is refused")
        .to_string();
    assert!(
        err.contains(&format!("base.toml:{line}:")) && err.contains("anomaly.setpoint_hold_s"),
        "{err}"
    );
    let typo = format!("{BASE}\n[anomaly]\nsetpoint_hold = 7\n");
    let err = crate::config::load_str(&typo, "base.toml")
        .expect_err("an unknown key is refused")
        .to_string();
    assert!(err.contains("setpoint_hold"), "{err}");
}

#[test]
fn the_meter_and_outlier_keys_are_checked_where_they_are_written() {
    let tuned = format!("{BASE}\n[anomaly]\nmeter_step_w = 5000\noutlier_min_sessions = 20\n");
    let cfg = crate::config::load_str(&tuned, "base.toml").expect("tuned loads");
    assert_eq!(cfg.anomaly.meter_step_w, 5000.0);
    assert_eq!(cfg.anomaly.outlier_min_sessions, 20);
    for (line, key) in [
        ("meter_step_w = 0", "anomaly.meter_step_w"),
        ("meter_evidence = 0", "anomaly.meter_evidence"),
        ("meter_tolerance_pct = 150", "anomaly.meter_tolerance_pct"),
        ("outlier_min_sessions = 60", "anomaly.outlier_min_sessions"),
        ("outlier_mads = 0.5", "anomaly.outlier_mads"),
    ] {
        let text = format!("{BASE}\n[anomaly]\n{line}\n");
        let at = text.lines().count();
        let err = crate::config::load_str(&text, "base.toml")
            .expect_err(line)
            .to_string();
        assert!(
            err.contains(&format!("base.toml:{at}:")) && err.contains(key),
            "{line}: {err}"
        );
    }
}

#[test]
fn a_site_alert_has_no_charger() {
    let mut d = detectors();
    let mut signals = Vec::new();
    for t in 0..60 {
        let mut r = record(t, 16.0, 16.0);
        // The charger reports 11 kW; the site meter sees 2 kW.
        r.chargers[0].power_w = Some(11_000.0);
        r.grid = Some(crate::control::record::GridReading {
            power_w: Some(2000.0),
            ..Default::default()
        });
        signals.extend(d.observe(&r));
    }
    let meter: Vec<&AlertSignal> = signals
        .iter()
        .filter(|s| s.kind == AlertKind::MeterDisagreement)
        .collect();
    assert_eq!(meter.len(), 1, "{signals:?}");
    assert_eq!(meter[0].charger, None);
    assert!(meter[0].raised);
}

/// A charging car at 16 A on three phases whose energy register follows its power until
/// `frozen_from` (then stands still), drawing 25 A over its 16 A setpoint in cycles 20..40.
fn charging(t: i64, frozen_from: i64) -> CycleRecord {
    let draw = if (20..40).contains(&t) { 25.0 } else { 16.0 };
    let mut r = record(t, 16.0, draw);
    let w = 16.0 * 230.0 * 3.0;
    r.chargers[0].power_w = Some(draw * 230.0 * 3.0);
    // The register's energy: 16 A all along, plus the 9 A more of the over-draw.
    let over_s = (t.min(40) - 20).max(0) as f64;
    let wh = |t: i64| (w * t as f64 + 9.0 * 230.0 * 3.0 * over_s) / 3600.0;
    r.chargers[0].energy_wh = Some(wh(t.min(frozen_from)).floor());
    r
}

/// What the rules find over `cycles` records, as (cycle, kind, on); `step` moves the wall
/// time of every record from cycle `at` on, as a step of the system clock would, while
/// the steady time goes on undisturbed.
fn findings(
    frozen_from: i64,
    step: Option<(i64, TimeDelta)>,
    cycles: i64,
) -> Vec<(i64, AlertKind, bool)> {
    let mut d = detectors();
    let mut out = Vec::new();
    for t in 0..cycles {
        let mut r = charging(t, frozen_from);
        if let Some((from, by)) = step {
            r.steady_at = Some(r.at);
            if t >= from {
                r.at += by;
            }
            if t == from {
                r.clock.step_ms = Some(by.num_milliseconds());
            }
        }
        out.extend(d.observe(&r).into_iter().map(|s| (t, s.kind, s.raised)));
    }
    out
}

#[test]
fn a_step_of_the_wall_clock_neither_ends_a_hold_nor_distorts_energy() {
    let plain = findings(70, None, 100);
    // Without a step: the over-draw is raised after its 7 s hold and cleared after it ends,
    // the frozen register is found once about 30 Wh flowed past it, and nothing else.
    let first = |kind| {
        plain
            .iter()
            .find(|(_, k, on)| *k == kind && *on)
            .map(|f| f.0)
    };
    let ignored = first(AlertKind::SetpointIgnored).expect("the over-draw is raised");
    assert!((26..=30).contains(&ignored), "{plain:?}");
    let frozen = first(AlertKind::RegisterFrozen).expect("the frozen register is raised");
    assert!((75..=85).contains(&frozen), "{plain:?}");
    assert!(
        plain
            .iter()
            .all(|(_, k, _)| matches!(k, AlertKind::SetpointIgnored | AlertKind::RegisterFrozen)),
        "a healthy register raises nothing else: {plain:?}"
    );
    // A step in the middle of the over-draw's hold, and one while the frozen register's
    // energy is being added up: what the rules find, and when, is the same.
    for by in [
        TimeDelta::days(646),
        -TimeDelta::hours(1),
        TimeDelta::days(646) - TimeDelta::milliseconds(1500),
    ] {
        for at in [23, 74] {
            assert_eq!(
                findings(70, Some((at, by)), 100),
                plain,
                "step {by} at {at}"
            );
        }
    }
}
