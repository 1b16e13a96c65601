//! Unit tests of the report's figures: clipping to the range, active sessions, empty input.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn data(id: &str, plugged: &str, minutes: Option<i64>, drawing: i64) -> SessionData {
    let plugged = at(plugged);
    SessionData {
        record: SessionRecord {
            state: if minutes.is_some() {
                RecordState::Completed
            } else {
                RecordState::Active
            },
            ended_at: minutes.map(|m| plugged + TimeDelta::minutes(m)),
            energy_wh: 1_000,
            ..SessionRecord::new(id.to_owned(), "cp".to_owned(), plugged)
        },
        samples: (0..drawing)
            .map(|i| Sample {
                minute_start: plugged + TimeDelta::minutes(i),
                energy_wh: 10.0,
            })
            .collect(),
    }
}

fn input(from: &str, to: &str, now: &str) -> Input {
    Input {
        zone: Tz::UTC,
        from: Some(at(from)),
        to: Some(at(to)),
        now: at(now),
        chargers: vec!["idle".to_owned()],
        alerts: Vec::new(),
        links: Default::default(),
    }
}

#[test]
fn time_plugged_is_clipped_to_the_range_and_an_active_session_runs_until_now() {
    let sessions = [
        // 2 h, of which 1 h inside the range.
        data("a", "2026-11-20T23:00:00Z", Some(120), 120),
        // Active since 10:00, now is 12:00: 2 h, drawing 30 min.
        data("b", "2026-11-21T10:00:00Z", None, 30),
    ];
    let r = build(
        &input(
            "2026-11-21T00:00:00Z",
            "2026-11-22T00:00:00Z",
            "2026-11-21T12:00:00Z",
        ),
        &sessions,
    );
    let cp = &r
        .chargers
        .iter()
        .find(|c| c.charger == "cp")
        .unwrap()
        .figures;
    assert_eq!(cp.plugged_s, 3 * 3600);
    assert_eq!(cp.charging_s, 3600 + 1800);
    assert_eq!(cp.active_sessions, 1);
    assert_eq!(cp.avg_duration_s, Some(2 * 3600));
    assert_eq!(cp.plugged_share, Some(3.0 / 24.0));
    // The configured idle charger is listed and halves the site's share.
    let idle = &r.chargers[0];
    assert_eq!(idle.charger, "idle");
    assert_eq!(idle.figures.sessions, 0);
    assert_eq!(idle.figures.plugged_share, Some(0.0));
    assert_eq!(r.totals.plugged_share, Some(3.0 / 48.0));
    assert_eq!(r.totals.energy_wh, 2_000);
    assert_eq!(r.peak_hours.iter().map(|h| h.energy_wh).sum::<u64>(), 1_500);
}

#[test]
fn nothing_to_report_gives_zeroes_not_divisions_by_zero() {
    let mut i = input(
        "2026-11-21T00:00:00Z",
        "2026-11-21T00:00:00Z",
        "2026-11-21T00:00:00Z",
    );
    i.from = None;
    i.to = None;
    let r = build(&i, &[]);
    assert_eq!(r.totals.sessions, 0);
    assert_eq!(r.totals.plugged_share, None);
    assert_eq!(r.totals.avg_duration_s, None);
    assert_eq!(r.peak_hours.len(), 24);
    assert!(r.days.is_empty());
}

fn alert(charger: &str, kind: crate::alerts::AlertKind, raised: &str) -> crate::alerts::Alert {
    crate::alerts::Alert {
        alert_id: format!("{charger}-{raised}"),
        kind,
        severity: kind.severity(),
        charger: Some(charger.to_owned()),
        state: crate::alerts::AlertState::Cleared,
        message: String::new(),
        raised_at: at(raised),
        cleared_at: None,
    }
}

#[test]
fn station_health_flags_the_charger_that_stands_out_from_its_peers_inside_the_range() {
    use crate::alerts::AlertKind::{ChargerOffline, MeterDrift};
    let mut i = input(
        "2026-11-21T00:00:00Z",
        "2026-11-22T00:00:00Z",
        "2026-11-21T12:00:00Z",
    );
    i.chargers = vec!["cp-1".into(), "cp-2".into(), "cp-3".into()];
    let mut sessions = Vec::new();
    for (n, charger) in ["cp-1", "cp-2", "cp-3", "cp-3", "cp-3", "cp-3"]
        .iter()
        .enumerate()
    {
        let mut s = data(&format!("s{n}"), "2026-11-21T08:00:00Z", Some(60), 10);
        s.record.charger = (*charger).into();
        sessions.push(s);
    }
    for hour in 1..=4 {
        i.alerts.push(alert(
            "cp-2",
            ChargerOffline,
            &format!("2026-11-21T0{hour}:00:00Z"),
        ));
    }
    // Outside the range: not counted.
    for day in 1..=5 {
        i.alerts.push(alert(
            "cp-1",
            MeterDrift,
            &format!("2026-11-0{day}T10:00:00Z"),
        ));
    }
    i.alerts
        .push(alert("cp-1", ChargerOffline, "2026-11-21T03:00:00Z"));
    let r = build(&i, &sessions);
    let h: Vec<(&str, Vec<&str>)> = r
        .health
        .iter()
        .map(|h| (h.charger.as_str(), h.flags.clone()))
        .collect();
    assert_eq!(
        h,
        [
            ("cp-1", vec![]),
            ("cp-2", vec!["link_alerts"]),
            ("cp-3", vec!["energy"])
        ]
    );
    assert_eq!(r.health[0].anomaly_alerts, Some(0));
    assert_eq!(r.health[2].energy_share_ratio, Some(4.0 / 6.0));
}

#[test]
fn a_charger_whose_modbus_requests_fail_far_more_often_is_flagged_on_errors_inside_the_range() {
    let mut i = input(
        "2026-11-21T00:00:00Z",
        "2026-11-22T00:00:00Z",
        "2026-11-21T12:00:00Z",
    );
    i.chargers = vec!["cp-1".into(), "cp-2".into(), "cp-3".into()];
    let hour = |at: &str, requests, failed| (self::at(at), LinkHour { requests, failed });
    i.links.insert(
        "cp-1".into(),
        vec![
            hour("2026-11-21T08:00:00Z", 1000, 5),
            // Before the range: a bad day that is over.
            hour("2026-11-20T08:00:00Z", 1000, 900),
        ],
    );
    i.links
        .insert("cp-2".into(), vec![hour("2026-11-21T09:00:00Z", 1000, 4)]);
    i.links.insert(
        "cp-3".into(),
        vec![
            hour("2026-11-21T08:00:00Z", 500, 60),
            hour("2026-11-21T23:00:00Z", 500, 40),
            // After the range.
            hour("2026-11-22T00:00:00Z", 1000, 0),
        ],
    );
    let r = build(&i, &[]);
    let csv = crate::app::history::render::render(&r, crate::app::history::Format::Csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "error_ratio").unwrap();
    let cp3: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("charger,,cp-3,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!((cp3[col], cp3[cp3.len() - 1]), ("0.100000", "errors"));
    let table =
        crate::app::history::render::render(&r, crate::app::history::Format::Table).unwrap();
    assert!(table.contains("Modbus errors"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("cp-3") && l.contains("10.00%")),
        "{table}"
    );
    let flags: Vec<(&str, Vec<&str>)> = r
        .health
        .iter()
        .map(|h| (h.charger.as_str(), h.flags.clone()))
        .collect();
    assert_eq!(
        flags,
        [("cp-1", vec![]), ("cp-2", vec![]), ("cp-3", vec!["errors"])]
    );
    assert_eq!(r.health[0].error_ratio, Some(0.005));
    assert_eq!(r.health[2].error_ratio, Some(0.1));
    // The day before: cp-1 failed most requests, but only it sent any there: no peers.
    let mut before = i.clone();
    before.from = Some(at("2026-11-20T00:00:00Z"));
    before.to = Some(at("2026-11-21T00:00:00Z"));
    let r = build(&before, &[]);
    assert_eq!(r.health[0].error_ratio, Some(0.9));
    assert_eq!(r.health[2].error_ratio, None);
    assert!(
        r.health.iter().all(|h| h.flags.is_empty()),
        "one charger with counts has no peers: {:?}",
        r.health
    );
}
