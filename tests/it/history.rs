//! `evsite sessions` and `evsite report` end to end: sessions written into a real sled store
//! on disk, the real binary run against it, its output parsed back in all three formats.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use evsite::control::demand::WindowDemand;
use evsite::sessions::cost::Cost;
use evsite::sessions::energy::Sample;
use evsite::sessions::machine::{RecordState, SessionRecord, StopReason};
use evsite::store::Store;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::support::db::wait_released;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A session plugged in at `plugged` for `minutes`, drawing `wh_per_min` every minute; still
/// active when `minutes` is None (it then has drawn for 30 minutes so far).
struct Spec<'a> {
    id: &'a str,
    charger: &'a str,
    plugged: &'a str,
    minutes: Option<i64>,
    wh_per_min: f64,
    cost: Option<&'a str>,
}

fn session(s: &Spec) -> (SessionRecord, Vec<Sample>) {
    let plugged = utc(s.plugged);
    let drawn = s.minutes.unwrap_or(30);
    let samples: Vec<Sample> = (0..drawn)
        .map(|i| Sample {
            minute_start: plugged + TimeDelta::minutes(i),
            energy_wh: s.wh_per_min,
        })
        .collect();
    let energy_wh = samples.iter().map(|x| x.energy_wh).sum::<f64>().round() as u64;
    let ended = s.minutes.map(|m| plugged + TimeDelta::minutes(m));
    let record = SessionRecord {
        state: if ended.is_some() {
            RecordState::Completed
        } else {
            RecordState::Active
        },
        charging_started_at: Some(plugged),
        ended_at: ended,
        energy_wh,
        meter_start_wh: Some(500_000),
        meter_end_wh: ended.map(|_| 500_000 + energy_wh),
        max_power_w: Some((s.wh_per_min * 60.0) as u64),
        stop_reason: ended.map(|_| StopReason::Unplugged),
        updated_at: ended.or(Some(plugged + TimeDelta::minutes(drawn))),
        cost: s.cost.map(|total| Cost {
            currency: "EUR".to_owned(),
            total: total.parse().unwrap(),
            lines: Vec::new(),
        }),
        ..SessionRecord::new(s.id.to_owned(), s.charger.to_owned(), plugged)
    };
    (record, samples)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Writes the sessions and returns them; the store is closed again on return.
fn write_db(path: &Path, specs: &[Spec]) -> Vec<(SessionRecord, Vec<Sample>)> {
    let sessions: Vec<_> = specs.iter().map(session).collect();
    runtime().block_on(async {
        let (store, _) = Store::open(path).unwrap();
        for (r, samples) in &sessions {
            store.put_session(r, samples, None).await.unwrap();
        }
    });
    wait_released(path);
    sessions
}

/// Adds finished demand windows of `kw` each, 15 minutes apart from `first`.
fn write_windows(path: &Path, first: &str, limit_kw: f64, kw: &[f64]) {
    runtime().block_on(async {
        let (store, _) = Store::open(path).unwrap();
        for (i, &demand_kw) in kw.iter().enumerate() {
            let start = utc(first) + TimeDelta::minutes(15 * i as i64);
            let w = WindowDemand {
                start,
                end: start + TimeDelta::minutes(15),
                demand_kw,
                limit_kw,
            };
            store.put_demand_window(&w).await.unwrap();
        }
    });
    wait_released(path);
}

fn evsite(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(args)
        .env_remove("EVSITE_CONFIG")
        .output()
        .unwrap()
}

fn ok_stdout(args: &[&str]) -> String {
    let out = evsite(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn specs() -> Vec<Spec<'static>> {
    vec![
        Spec {
            id: "s-a",
            charger: "cp-01",
            plugged: "2026-11-18T07:10:00Z",
            minutes: Some(120),
            wh_per_min: 180.0,
            cost: Some("7.56"),
        },
        Spec {
            id: "s-b",
            charger: "cp-02",
            plugged: "2026-11-18T17:45:00Z",
            minutes: Some(90),
            wh_per_min: 120.5,
            cost: Some("3.80"),
        },
        Spec {
            id: "s-c",
            charger: "cp-01",
            plugged: "2026-11-19T23:30:00Z",
            minutes: Some(60),
            wh_per_min: 100.0,
            cost: None,
        },
        Spec {
            id: "s-d",
            charger: "cp-02",
            plugged: "2026-11-20T08:00:00Z",
            minutes: None,
            wh_per_min: 200.0,
            cost: Some("2.10"),
        },
    ]
}

fn db_arg(dir: &Path) -> String {
    dir.to_str().unwrap().to_owned()
}

fn sessions_json(args: &[&str]) -> Vec<SessionRecord> {
    let mut all = vec!["sessions", "--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok_stdout(&all)).unwrap()
}

#[test]
fn sessions_filter_by_charger_and_time_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let written = write_db(&db, &specs());
    let db = db_arg(&db);

    // JSON: the records themselves, with the contract's field names, in plug-in order.
    let all = sessions_json(&["--db", &db]);
    let expected: Vec<SessionRecord> = written.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(all, expected);
    let raw: Value =
        serde_json::from_str(&ok_stdout(&["sessions", "--db", &db, "--format", "json"])).unwrap();
    for field in [
        "session_id",
        "charger",
        "state",
        "plugged_in_at",
        "energy_wh",
        "stop_reason",
        "cost",
    ] {
        assert!(raw[0].get(field).is_some(), "{field} missing");
    }
    assert_eq!(raw[3]["state"], "active");

    let cp2 = sessions_json(&["--db", &db, "--charger", "cp-02"]);
    assert_eq!(
        cp2.iter()
            .map(|r| r.session_id.as_str())
            .collect::<Vec<_>>(),
        ["s-b", "s-d"]
    );
    // Dates are whole UTC days here (no config, no --tz); --to is inclusive of its day.
    let day = sessions_json(&["--db", &db, "--from", "2026-11-19", "--to", "2026-11-19"]);
    assert_eq!(day.len(), 1);
    assert_eq!(day[0].session_id, "s-c");
    // An RFC 3339 --to is exclusive; its offset counts.
    let before = sessions_json(&["--db", &db, "--to", "2026-11-18T18:45:00+01:00"]);
    assert_eq!(
        before
            .iter()
            .map(|r| r.session_id.as_str())
            .collect::<Vec<_>>(),
        ["s-a"]
    );
    // --tz moves the day boundaries: s-c is 2026-11-20 00:30 in Berlin.
    let berlin = sessions_json(&["--db", &db, "--tz", "Europe/Berlin", "--from", "2026-11-20"]);
    assert_eq!(
        berlin
            .iter()
            .map(|r| r.session_id.as_str())
            .collect::<Vec<_>>(),
        ["s-c", "s-d"]
    );

    // CSV: a header, one row per session, quoting that a CSV reader undoes.
    let text = ok_stdout(&["sessions", "--db", &db, "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.get(0), Some("session_id"));
    let rows: Vec<BTreeMap<String, String>> = reader.deserialize().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), written.len());
    for (row, (r, _)) in rows.iter().zip(&written) {
        assert_eq!(row["session_id"], r.session_id);
        assert_eq!(row["energy_wh"], r.energy_wh.to_string());
        assert_eq!(utc(&row["plugged_in_at"]), r.plugged_in_at);
        assert_eq!(
            row["cost_total"],
            r.cost
                .as_ref()
                .map(|c| c.total.to_string())
                .unwrap_or_default()
        );
    }
    assert_eq!(rows[3]["state"], "active");
    assert_eq!(rows[3]["ended_at"], "");

    // Table: every session, the active one marked.
    let table = ok_stdout(&["sessions", "--db", &db]);
    for (r, _) in &written {
        assert!(table.contains(&r.session_id), "{table}");
    }
    assert!(table.contains("(active)"), "{table}");
    assert!(table.contains("4 sessions (1 active)"), "{table}");
}

fn report_json(args: &[&str]) -> Value {
    let mut all = vec!["report", "--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok_stdout(&all)).unwrap()
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn report_totals_are_the_sums_of_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let written = write_db(&db, &specs());
    let db = db_arg(&db);
    let report = report_json(&["--db", &db, "--from", "2026-11-18", "--to", "2026-11-20"]);

    let records: Vec<&SessionRecord> = written.iter().map(|(r, _)| r).collect();
    let energy: u64 = records.iter().map(|r| r.energy_wh).sum();
    let cost: Decimal = records
        .iter()
        .filter_map(|r| r.cost.as_ref())
        .map(|c| c.total)
        .sum();
    let totals = &report["totals"];
    assert_eq!(totals["sessions"], records.len());
    assert_eq!(totals["active_sessions"], 1);
    assert_eq!(totals["energy_wh"], energy);
    assert_eq!(dec(&totals["cost"]["EUR"]), cost);
    assert_eq!(
        totals["avg_energy_wh"],
        (energy as f64 / 4.0).round() as u64
    );

    for charger in ["cp-01", "cp-02"] {
        let mine: Vec<&&SessionRecord> = records.iter().filter(|r| r.charger == charger).collect();
        let row = report["chargers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["charger"] == charger)
            .unwrap();
        assert_eq!(row["sessions"], mine.len());
        assert_eq!(
            row["energy_wh"],
            mine.iter().map(|r| r.energy_wh).sum::<u64>()
        );
        // Finished sessions lie wholly inside the three-day range.
        let plugged: i64 = mine
            .iter()
            .filter_map(|r| Some((r.ended_at? - r.plugged_in_at).num_seconds()))
            .sum();
        if charger == "cp-01" {
            assert_eq!(row["plugged_s"], plugged);
            let share = plugged as f64 / (3.0 * 86_400.0);
            assert!((row["plugged_share"].as_f64().unwrap() - share).abs() < 1e-9);
            // Every minute drew energy.
            assert_eq!(row["charging_s"], plugged);
        }
    }

    // Days: each session on its plug-in day (UTC), summing to the totals.
    let days = report["days"].as_array().unwrap();
    let day_energy: u64 = days.iter().map(|d| d["energy_wh"].as_u64().unwrap()).sum();
    assert_eq!(day_energy, energy);
    let nov18: Vec<&Value> = days.iter().filter(|d| d["date"] == "2026-11-18").collect();
    assert_eq!(nov18.len(), 2, "two chargers on the 18th");

    // Peak hours: the samples summed per UTC hour.
    let mut hours = [0.0f64; 24];
    for (_, samples) in &written {
        for s in samples {
            hours[s.minute_start.hour() as usize] += s.energy_wh;
        }
    }
    let peak = report["peak_hours"].as_array().unwrap();
    assert_eq!(peak.len(), 24);
    for (h, row) in peak.iter().enumerate() {
        assert_eq!(row["hour"], h);
        assert_eq!(row["energy_wh"], hours[h].round() as u64, "hour {h}");
    }

    // CSV parses back and agrees with the JSON.
    let text = ok_stdout(&[
        "report",
        "--db",
        &db,
        "--format",
        "csv",
        "--from",
        "2026-11-18",
        "--to",
        "2026-11-20",
    ]);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<BTreeMap<String, String>> = reader.deserialize().map(|r| r.unwrap()).collect();
    let total = rows.iter().find(|r| r["section"] == "total").unwrap();
    assert_eq!(total["energy_wh"], energy.to_string());
    assert_eq!(total["cost"], format!("{cost} EUR"));
    assert_eq!(rows.iter().filter(|r| r["section"] == "hour").count(), 24);
    assert_eq!(
        rows.iter().filter(|r| r["section"] == "day").count(),
        days.len()
    );

    // Table: a bar for the busiest hour, the active session shown as such.
    let table = ok_stdout(&[
        "report",
        "--db",
        &db,
        "--from",
        "2026-11-18",
        "--to",
        "2026-11-20",
    ]);
    assert!(table.contains(&"#".repeat(40)), "{table}");
    assert!(table.contains("(1 active)"), "{table}");

    // The charger filter narrows everything.
    let cp1 = report_json(&["--db", &db, "--charger", "cp-01"]);
    assert_eq!(cp1["totals"]["sessions"], 2);
    assert_eq!(cp1["chargers"].as_array().unwrap().len(), 1);
}

#[test]
fn the_report_has_a_demand_section_when_the_store_holds_windows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    write_db(&db, &specs());
    write_windows(&db, "2026-11-18T17:00:00Z", 25.0, &[21.0, 26.5, 24.0, 25.5]);
    let db = db_arg(&db);
    let range = ["--from", "2026-11-18", "--to", "2026-11-20"];
    let table = ok_stdout(&[&["report", "--db", &db][..], &range].concat());
    assert!(table.contains("\nDemand ("), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("2026-11  25.00 kW  26.50 kW")
            && l.contains("2026-11-18 17:15")),
        "November's target and peak:\n{table}"
    );
    let report = report_json(&[&["--db", &db][..], &range].concat());
    let nov = &report["demand"][0];
    assert_eq!(
        (&nov["windows"], &nov["over_target"]),
        (&Value::from(4), &Value::from(2))
    );
    // Without windows or a [demand] config there is no section.
    let empty = dir.path().join("empty");
    write_db(&empty, &specs());
    let table = ok_stdout(&["report", "--db", &db_arg(&empty)]);
    assert!(!table.contains("Demand"), "{table}");
}

/// A config naming the database and the tariff's zone, from the shared valid fixture.
fn config_with_storage(dir: &Path, db: &Path) -> PathBuf {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/base.toml"),
    )
    .unwrap();
    let text = format!("{base}\n[storage]\npath = {:?}\n", db.to_str().unwrap());
    let path = dir.join("evsite.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn days_are_local_days_of_the_tariff_zone_across_the_autumn_dst_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET, the day has 25 hours.
    let written = write_db(
        &db,
        &[
            // 00:30 CEST on the 25th; runs through the repeated 02:00 hour.
            Spec {
                id: "early",
                charger: "cp-01",
                plugged: "2026-10-24T22:30:00Z",
                minutes: Some(240),
                wh_per_min: 100.0,
                cost: Some("8.40"),
            },
            // 23:30 CET on the 25th.
            Spec {
                id: "late",
                charger: "cp-02",
                plugged: "2026-10-25T22:30:00Z",
                minutes: Some(20),
                wh_per_min: 50.0,
                cost: Some("0.35"),
            },
            // 00:30 CET on the 26th.
            Spec {
                id: "next",
                charger: "cp-01",
                plugged: "2026-10-25T23:30:00Z",
                minutes: Some(10),
                wh_per_min: 50.0,
                cost: None,
            },
        ],
    );
    let config = config_with_storage(dir.path(), &db);
    let config = config.to_str().unwrap();
    let report = report_json(&[
        "--config",
        config,
        "--from",
        "2026-10-25",
        "--to",
        "2026-10-25",
    ]);
    assert_eq!(report["timezone"], "Europe/Berlin");
    assert_eq!(
        utc(report["from"].as_str().unwrap()),
        utc("2026-10-24T22:00:00Z")
    );
    assert_eq!(
        utc(report["to"].as_str().unwrap()),
        utc("2026-10-25T23:00:00Z")
    );
    assert_eq!(report["totals"]["sessions"], 2);
    assert_eq!(
        dec(&report["totals"]["cost"]["EUR"]),
        "8.75".parse().unwrap()
    );
    let days = report["days"].as_array().unwrap();
    assert!(days.iter().all(|d| d["date"] == "2026-10-25"), "{days:?}");
    // Both configured chargers are listed; the day has 25 hours of charger time each.
    let cp1 = &report["chargers"][0];
    assert_eq!(cp1["charger"], "cp-01");
    let share = cp1["plugged_share"].as_f64().unwrap();
    assert!((share - 4.0 / 25.0).abs() < 1e-9, "{share}");
    // The repeated local hour 02:00 holds two hours of samples of "early".
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let mut hours = [0.0f64; 24];
    for (r, samples) in &written[..2] {
        assert_ne!(r.session_id, "next");
        for s in samples {
            hours[s.minute_start.with_timezone(&berlin).hour() as usize] += s.energy_wh;
        }
    }
    assert_eq!(hours[2], 12_000.0);
    assert_eq!(report["peak_hours"][2]["energy_wh"], 12_000);
    for (h, wh) in hours.iter().enumerate() {
        assert_eq!(
            report["peak_hours"][h]["energy_wh"],
            wh.round() as u64,
            "hour {h}"
        );
    }

    // The sessions list reads the same config and zone.
    let out = ok_stdout(&[
        "sessions",
        "--config",
        config,
        "--format",
        "json",
        "--from",
        "2026-10-26",
    ]);
    let next: Vec<SessionRecord> = serde_json::from_str(&out).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].session_id, "next");
}

fn aside_dirs(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("corrupt"))
        .collect()
}

#[test]
fn a_database_held_by_the_daemon_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    write_db(&db, &specs()[..1]);
    let rt = runtime();
    // This process now holds the database, as a running daemon would.
    let (store, _) = rt.block_on(async { Store::open(&db) }).unwrap();
    for command in ["sessions", "report"] {
        let out = evsite(&[command, "--db", db.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(75), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the database is in use by the running evsite daemon"),
            "{err}"
        );
    }
    // With a config, the commands ask the daemon's API instead; none answers there.
    let config = config_with_storage(dir.path(), &db);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace(
        "listen = \"127.0.0.1:8787\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&config, text).unwrap();
    for command in ["sessions", "report"] {
        let out = evsite(&[command, "--config", config.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(75), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the database is in use by the running evsite daemon")
                && err.contains(&format!("no evsite daemon answers on 127.0.0.1:{port}")),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    assert!(aside_dirs(dir.path()).is_empty());
    assert_eq!(store.sessions(&Default::default()).unwrap().len(), 1);
    drop(store);
    wait_released(&db);
    // Once released it reads again.
    let all = sessions_json(&["--db", db.to_str().unwrap()]);
    assert_eq!(all.len(), 1);
}

#[test]
fn a_missing_database_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nothing-here");
    let out = evsite(&["report", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(66));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no database at"), "{err}");
    assert!(!db.exists());

    // A bad date is a usage error, not a panic.
    let out = evsite(&[
        "sessions",
        "--db",
        db.to_str().unwrap(),
        "--from",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2), "clap's usage exit");
}
