//! Anomaly detection end to end: every fault scenario under `sim/scenarios/faults/` run
//! against the real controller on the paused clock, its fault detected in time and nothing
//! else raised; and an anomaly going through the site pipeline as an ordinary alert. The
//! clean scenarios' zero false alarms are held by `tests/it/control.rs`, which runs them all.

use chrono::{DateTime, TimeDelta};

use evsite::alerts::{AlertChange, AlertKind, AlertState};
use evsite::control::record::{ChargerCycle, CycleRecord, Reason};
use evsite::devices::model::ChargeState;
use evsite::simulator::Scenario;
use evsite::site::{Pipeline, SiteEvent};

/// The issue's bar: every fault within 60 s of its onset, an ignored setpoint within 10 s.
fn allowed_delay_s(kind: &str) -> f64 {
    if kind == "setpoint_ignored" {
        10.0
    } else {
        60.0
    }
}

#[test]
fn every_fault_scenario_detects_its_fault_in_time_with_no_false_alarm_reproducibly() {
    let mut paths: Vec<_> = std::fs::read_dir(evsite_sim::FAULT_DIR)
        .expect("fault scenario dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 7, "one scenario per fault");
    // Run twice: one of the first scenarios, and every one added since.
    let twice = [
        "meter-drift",
        "site-meter-scale",
        "bay-blocked",
        "unknown-token",
        "token-twice",
        "unauthorized-draw",
    ];
    let runs: Vec<_> = paths
        .into_iter()
        .map(|path| {
            std::thread::spawn(move || {
                let s = Scenario::from_path(&path).expect("scenario");
                let a = evsite_sim::run::run(&s).expect("run");
                let b = twice
                    .contains(&s.name.as_str())
                    .then(|| evsite_sim::run::run(&s).expect("again"));
                (path, a, b)
            })
        })
        .collect();
    for run in runs {
        let (path, a, b) = run.join().expect("run thread");
        let name = path.display();
        let hits: Vec<_> = a.anomalies.iter().filter(|(_, k)| k.detected > 0).collect();
        assert_eq!(
            hits.len(),
            1,
            "{name}: one kind detected: {:?}",
            a.anomalies
        );
        let (kind, score) = hits[0];
        assert_eq!(score.detected, 1, "{name}");
        let delay = score.detection_delay_s.expect("a delay");
        assert!(
            delay <= allowed_delay_s(kind),
            "{name}: {kind} after {delay} s"
        );
        assert_eq!(a.missed(), 0, "{name}: {:?}", a.anomalies);
        assert_eq!(a.false_alarms(), 0, "{name}: {:?}", a.anomalies);
        if let Some(b) = b {
            assert_eq!(a.anomalies, b.anomalies, "{name}: two runs differ");
        }
        // The figures docs/anomalies.md gives for the scenarios added with the last rules.
        let expected = match kind.as_str() {
            "meter_disagreement" => Some(30.0),
            "bay_blocked" => Some(3.0),
            // From the third presentation (the fault shows the card once a minute).
            "unknown_token" => Some(0.0),
            // The hold of 30 s.
            "token_in_use_twice" => Some(30.0),
            // The car's response delay (3 s) and the hold of 10 s.
            "unauthorized_draw" => Some(13.0),
            _ => None,
        };
        if let Some(want) = expected {
            assert_eq!(delay, want, "{name}: {kind}");
        }
    }
}

fn cfg() -> evsite::config::Config {
    let text = r#"
[site]
id = "anomaly-test"
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
"#;
    evsite::config::load_str(text, "test").expect("config loads")
}

#[test]
fn an_anomaly_is_raised_and_cleared_through_the_sites_alert_book() {
    let mut p = Pipeline::new(&cfg());
    let t0 = DateTime::UNIX_EPOCH + TimeDelta::days(20_000);
    let mut changes = Vec::new();
    for t in 0..200 {
        let mut r = CycleRecord::blank(t0 + TimeDelta::seconds(t), 40.0);
        r.seq = t as u64 + 1;
        let mut c = ChargerCycle::unread("cp-1");
        c.online = true;
        c.state = Some(ChargeState::C);
        c.setpoint_a = Some(10.0);
        // 20 A against 10 A for 30 s, then back to 10 A.
        c.current_a = [Some(if (10..40).contains(&t) { 20.0 } else { 10.0 }); 3];
        c.power_w = Some(c.current_a.iter().flatten().sum::<f64>() * 230.0);
        c.energy_wh = Some(1.0e6 + t as f64 * 2.0);
        c.reason = Reason::Charging;
        r.chargers.push(c);
        for e in p.observe(&r) {
            if let SiteEvent::Alert(a) = e {
                changes.push(a);
            }
        }
    }
    let ignored: Vec<&AlertChange> = changes
        .iter()
        .filter(|c| c.alert().kind == AlertKind::SetpointIgnored)
        .collect();
    assert_eq!(ignored.len(), 2, "{changes:?}");
    let (raised, cleared) = (ignored[0].alert(), ignored[1].alert());
    assert_eq!(raised.state, AlertState::Raised);
    assert_eq!(raised.charger.as_deref(), Some("cp-1"));
    assert_eq!(raised.raised_at, t0 + TimeDelta::seconds(17));
    assert_eq!(cleared.state, AlertState::Cleared);
    assert_eq!(cleared.alert_id, raised.alert_id);
    assert_eq!(cleared.kind.severity(), evsite::alerts::Severity::Critical);
}
