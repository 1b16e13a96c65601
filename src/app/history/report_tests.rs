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
        demand_windows: Vec::new(),
        demand_limit_kw: None,
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
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let cp3: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("charger,,cp-3,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(
        (cp3[col("error_ratio")], cp3[col("health_flags")]),
        ("0.100000", "errors")
    );
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

/// A finished window of 15 minutes from `start` at `kw` against `limit_kw`.
fn window(start: &str, kw: f64, limit_kw: f64) -> WindowDemand {
    WindowDemand {
        start: at(start),
        end: at(start) + TimeDelta::minutes(15),
        demand_kw: kw,
        limit_kw,
    }
}

/// The report of `store` as the command computes it, in `format`, for local dates
/// `from`..=`to` in Brussels.
fn stored_report(
    store: &crate::store::Store,
    limit_kw: Option<f64>,
    from: &str,
    to: &str,
    format: crate::app::history::Format,
) -> String {
    use crate::app::history::{report_in, Bound, HistoryQuery, Source};
    let source = Source {
        db: "/unused".into(),
        zone: chrono_tz::Europe::Brussels,
        chargers: Vec::new(),
        api: None,
        demand_limit_kw: limit_kw,
    };
    let args = HistoryQuery {
        charger: None,
        from: Some(Bound::parse(from).unwrap()),
        to: Some(Bound::parse(to).unwrap()),
        tz: None,
        format,
        ..HistoryQuery::default()
    };
    report_in(store, &source, &args, at("2026-12-15T12:00:00Z")).unwrap()
}

#[tokio::test]
async fn the_demand_section_has_each_local_months_target_peak_and_windows_over_it() {
    use crate::app::history::Format;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = crate::store::Store::open(dir.path().join("db")).unwrap();
    for w in [
        // 00:30 on 1 November in Brussels (still October in UTC).
        window("2026-10-31T23:30:00Z", 20.0, 25.0),
        // The month's peak, before the range.
        window("2026-11-03T16:00:00Z", 28.5, 25.0),
        window("2026-11-10T17:00:00Z", 26.4, 25.0),
        // At the target exactly: not over it.
        window("2026-11-10T17:15:00Z", 25.0, 25.0),
        window("2026-11-20T08:00:00Z", 24.9, 25.0),
        // The month's target was raised to 30 kW by command: 27.8 is under it.
        window("2026-11-25T12:00:00Z", 27.8, 30.0),
        // 00:00 on 1 December in Brussels (still November in UTC).
        window("2026-11-30T23:00:00Z", 29.0, 25.0),
    ] {
        store.put_demand_window(&w).await.unwrap();
    }

    let json = stored_report(&store, None, "2026-11-10", "2026-11-30", Format::Json);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    let months = r["demand"].as_array().unwrap();
    assert_eq!(months.len(), 1, "{months:?}");
    let nov = &months[0];
    assert_eq!(nov["month"], "2026-11");
    assert_eq!(nov["limit_kw"], 30.0, "the latest window's target");
    assert_eq!(nov["peak"]["demand_kw"], 28.5);
    assert_eq!(nov["peak"]["start"], "2026-11-03T16:00:00Z");
    assert_eq!(nov["windows"], 4, "the range's windows");
    assert_eq!(
        nov["over_target"], 1,
        "26.4 against 25; 25.0 and 27.8 are not"
    );
    let highest: Vec<f64> = nov["highest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["demand_kw"].as_f64().unwrap())
        .collect();
    assert_eq!(highest, [27.8, 26.4, 25.0]);

    let table = stored_report(&store, None, "2026-11-10", "2026-11-30", Format::Table);
    let row = table
        .lines()
        .find(|l| l.starts_with("2026-11  "))
        .unwrap_or_else(|| panic!("a row for November:\n{table}"));
    let cells: Vec<&str> = row
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "2026-11",
            "30.00 kW",
            "28.50 kW",
            "2026-11-03 17:00",
            "4",
            "1"
        ],
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("2026-11  2026-11-10 18:00  26.40 kW  25.00 kW  over")),
        "{table}"
    );

    // All of November and December: months split at local midnight.
    let csv = stored_report(&store, None, "2026-11-01", "2026-12-31", Format::Csv);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<std::collections::BTreeMap<String, String>> =
        reader.deserialize().map(|r| r.unwrap()).collect();
    let month = |m: &str| {
        rows.iter()
            .find(|r| r["section"] == "demand" && r["month"] == m)
            .unwrap_or_else(|| panic!("a demand row for {m}: {csv}"))
    };
    let (nov, dec) = (month("2026-11"), month("2026-12"));
    assert_eq!(
        (nov["windows"].as_str(), nov["over_target"].as_str()),
        ("6", "2")
    );
    assert_eq!(nov["demand_kw"], "28.500");
    assert_eq!(nov["window_start"], "2026-11-03T17:00:00+01:00");
    assert_eq!(
        (dec["windows"].as_str(), dec["demand_kw"].as_str()),
        ("1", "29.000")
    );
    assert_eq!(dec["window_start"], "2026-12-01T00:00:00+01:00");
    assert_eq!(
        rows.iter()
            .filter(|r| r["section"] == "demand_window" && r["month"] == "2026-11")
            .count(),
        demand::HIGHEST
    );
}

#[tokio::test]
async fn a_configured_target_gives_months_without_windows_a_row_and_no_target_gives_none() {
    use crate::app::history::Format;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = crate::store::Store::open(dir.path().join("db")).unwrap();
    let json = stored_report(&store, Some(25.0), "2026-11-01", "2026-11-30", Format::Json);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        r["demand"],
        serde_json::json!([{"month": "2026-11", "limit_kw": 25.0, "peak": null,
            "windows": 0, "over_target": 0, "highest": []}])
    );
    let none = stored_report(&store, None, "2026-11-01", "2026-11-30", Format::Table);
    assert!(!none.contains("Demand"), "{none}");
    let json = stored_report(&store, None, "2026-11-01", "2026-11-30", Format::Json);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["demand"], serde_json::json!([]));
}
