use chrono::{DateTime, TimeDelta};

use super::*;
use crate::control::record::{ChargerCycle, ChargerReason};
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
    c.reason = ChargerReason::Charging;
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
    let seen: Vec<(AlertKind, bool)> = signals.iter().map(|s| (s.kind, s.on)).collect();
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
    assert!(!off[0].on);
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
    let meter: Vec<&Signal> = signals
        .iter()
        .filter(|s| s.kind == AlertKind::MeterDisagreement)
        .collect();
    assert_eq!(meter.len(), 1, "{signals:?}");
    assert_eq!(meter[0].charger, None);
    assert!(meter[0].on);
}
