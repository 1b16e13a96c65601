//! Who charged and who pays, end to end: sessions with identities written into a real sled
//! store on disk; `evsite report --by`, `evsite report --statement` and `evsite sessions
//! --user/--group` run as the real binary against it, and through `/api/report` of an API
//! serving the store; the status page's history view in headless Chromium, its DOM and its
//! screenshot checked against the stored sessions. Every expected figure is summed here from
//! the rows read back from the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use evsite::sessions::cost::{Cost, CostKind, CostLine, Unit};
use evsite::sessions::energy::Sample;
use evsite::sessions::machine::{RecordState, SessionRecord, StopReason};
use evsite::store::Store;
use evsite::tokens::{AuthorizedBy, Identity};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::support::db::wait_released;
use crate::support::http::get;

const ZONE: Tz = chrono_tz::Europe::Berlin;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Who: (user, group, vehicle); None for a session nobody is known for.
const PEOPLE: [Option<(&str, &str, &str)>; 5] = [
    Some(("alice", "staff", "Zoe")),
    Some(("bob", "visitors", "Model 3")),
    Some(("carol", "staff", "e-Golf")),
    None,
    // Known, but in no group (a token list entry without one).
    Some(("dave", "", "")),
];

/// The sessions: spread over November 2026 at every hour of the day, two across the month's
/// local edges (Berlin), one still active, costs in EUR with their lines (and a few in CHF).
fn sessions() -> Vec<(SessionRecord, Vec<Sample>)> {
    let mut plugged: Vec<DateTime<Utc>> = (0..26i64)
        .map(|i| {
            utc("2026-11-01T06:00:00Z")
                + TimeDelta::days((i * 7) % 29)
                + TimeDelta::hours((i * 5) % 24)
        })
        .collect();
    // 00:30 on 1 November in Berlin; and 00:30 on 1 December, outside November there.
    plugged.push(utc("2026-10-31T23:30:00Z"));
    plugged.push(utc("2026-11-30T23:30:00Z"));
    plugged
        .into_iter()
        .enumerate()
        .map(|(i, at)| {
            let minutes = 25 + (i as i64 * 13) % 150;
            let wh_per_min = 90.0 + ((i * 37) % 160) as f64 + 0.25;
            let samples: Vec<Sample> = (0..minutes)
                .map(|m| Sample {
                    minute_start: at + TimeDelta::minutes(m),
                    energy_wh: wh_per_min,
                })
                .collect();
            let energy_wh = samples.iter().map(|s| s.energy_wh).sum::<f64>().round() as u64;
            let active = i == 5;
            let ended = (!active).then(|| at + TimeDelta::minutes(minutes));
            let who = PEOPLE[i % PEOPLE.len()];
            let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            let identity = match who {
                Some((user, group, vehicle)) => Identity {
                    token: Some(format!("04A1B2{i:02}")),
                    user: Some(user.to_owned()),
                    vehicle: some(vehicle),
                    group: some(group),
                    authorized_by: Some(AuthorizedBy::Local),
                },
                None => Identity::default(),
            };
            let currency = if i % 9 == 4 { "CHF" } else { "EUR" };
            let kwh = Decimal::from(energy_wh) / Decimal::from(1000);
            let mut lines = vec![CostLine {
                kind: CostKind::Energy,
                label: "energy".into(),
                quantity: kwh,
                unit: Unit::Kwh,
                unit_price: "0.31".parse().unwrap(),
                amount: (kwh * Decimal::new(31, 2)).round_dp(2),
            }];
            if who.is_some_and(|(_, g, _)| g == "visitors") {
                lines.push(CostLine {
                    kind: CostKind::SessionFee,
                    label: "session fee".into(),
                    quantity: Decimal::ONE,
                    unit: Unit::Session,
                    unit_price: "0.50".parse().unwrap(),
                    amount: "0.50".parse().unwrap(),
                });
            }
            let cost = (i % 6 != 3).then(|| Cost {
                currency: currency.to_owned(),
                total: lines.iter().map(|l| l.amount).sum(),
                lines,
            });
            let record = SessionRecord {
                state: if active {
                    RecordState::Active
                } else {
                    RecordState::Completed
                },
                charging_started_at: Some(at),
                ended_at: ended,
                energy_wh,
                meter_start_wh: Some(1_000_000),
                meter_end_wh: ended.map(|_| 1_000_000 + energy_wh),
                max_power_w: Some((wh_per_min * 60.0) as u64),
                stop_reason: ended.map(|_| StopReason::Unplugged),
                updated_at: Some(at + TimeDelta::minutes(minutes)),
                cost,
                identity,
                ..SessionRecord::new(format!("s-{i:02}"), format!("cp-{}", 1 + i % 3), at)
            };
            (record, samples)
        })
        .collect()
}

fn write_db(path: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (store, _) = Store::open(path).unwrap();
        for (r, samples) in sessions() {
            store.put_session(&r, &samples, None).await.unwrap();
        }
    });
    wait_released(path);
}

/// The rows as stored, with their samples, read back from the database.
fn stored(path: &Path) -> Vec<(SessionRecord, Vec<Sample>)> {
    let store = Store::open_existing(path).unwrap();
    let rows = store
        .sessions(&Default::default())
        .unwrap()
        .into_iter()
        .map(|r| {
            let samples = store.samples(&r.session_id).unwrap();
            (r, samples)
        })
        .collect();
    drop(store);
    wait_released(path);
    rows
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

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok_stdout(args)).unwrap()
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string: {v}"))
        .parse()
        .unwrap()
}

/// Sessions, energy and cost per currency, summed by hand.
#[derive(Debug, Default, PartialEq)]
struct Sum {
    sessions: usize,
    energy_wh: u64,
    cost: BTreeMap<String, Decimal>,
}

fn sum<'a>(records: impl IntoIterator<Item = &'a SessionRecord>) -> Sum {
    let mut s = Sum::default();
    for r in records {
        s.sessions += 1;
        s.energy_wh += r.energy_wh;
        if let Some(c) = &r.cost {
            *s.cost.entry(c.currency.clone()).or_default() += c.total;
        }
    }
    s
}

fn sum_of(v: &Value) -> Sum {
    Sum {
        sessions: v["sessions"].as_u64().unwrap() as usize,
        energy_wh: v["energy_wh"].as_u64().unwrap(),
        cost: v["cost"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, x)| (k.clone(), dec(x)))
            .collect(),
    }
}

fn key_of(by: &str, r: &SessionRecord) -> String {
    match by {
        "user" => r.identity.user.clone(),
        "group" => r.identity.group.clone(),
        _ => Some(r.charger.clone()),
    }
    .unwrap_or_else(|| "(unknown)".to_owned())
}

fn november(records: &[(SessionRecord, Vec<Sample>)]) -> Vec<&SessionRecord> {
    records
        .iter()
        .map(|(r, _)| r)
        .filter(|r| {
            r.plugged_in_at
                .with_timezone(&ZONE)
                .format("%Y-%m")
                .to_string()
                == "2026-11"
        })
        .collect()
}

#[test]
fn reports_per_user_group_and_charger_add_up_to_the_stored_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    write_db(&db);
    let rows = stored(&db);
    let db = db.to_str().unwrap();
    let all: Vec<&SessionRecord> = rows.iter().map(|(r, _)| r).collect();
    let month = november(&rows);
    assert!(month.len() < all.len(), "one session lies outside November");

    for by in ["user", "group", "charger"] {
        let report = json(&[
            "report",
            "--db",
            db,
            "--tz",
            "Europe/Berlin",
            "--month",
            "2026-11",
            "--by",
            by,
            "--format",
            "json",
        ]);
        assert_eq!(report["by"], by);
        let mut expected: BTreeMap<String, Vec<&SessionRecord>> = BTreeMap::new();
        for r in &month {
            expected.entry(key_of(by, r)).or_default().push(r);
        }
        let shown: BTreeMap<String, Sum> = report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| (row["key"].as_str().unwrap().to_owned(), sum_of(row)))
            .collect();
        let wanted: BTreeMap<String, Sum> = expected
            .iter()
            .map(|(k, rs)| (k.clone(), sum(rs.iter().copied())))
            .collect();
        assert_eq!(shown, wanted, "--by {by}");
        assert_eq!(sum_of(&report["totals"]), sum(month.iter().copied()));
        if by != "charger" {
            assert!(shown.contains_key("(unknown)"), "--by {by}: {report:#}");
        }
        // Most energy first.
        let energies: Vec<u64> = report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["energy_wh"].as_u64().unwrap())
            .collect();
        assert!(energies.windows(2).all(|w| w[0] >= w[1]), "{energies:?}");

        // The CSV carries the same figures; the table names every key and the total.
        let csv = ok_stdout(&[
            "report",
            "--db",
            db,
            "--tz",
            "Europe/Berlin",
            "--month",
            "2026-11",
            "--by",
            by,
            "--format",
            "csv",
        ]);
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            header,
            evsite::app::history::people_render::GROUPED_CSV_HEADER
        );
        let csv_rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        for row in &csv_rows {
            let want = if &row[0] == "total" {
                sum(month.iter().copied())
            } else {
                wanted
                    .get(&row[2])
                    .map(|s| Sum {
                        cost: s.cost.clone(),
                        ..*s
                    })
                    .unwrap()
            };
            assert_eq!(row[5].parse::<u64>().unwrap(), want.energy_wh, "{row:?}");
            assert_eq!(row[3].parse::<usize>().unwrap(), want.sessions, "{row:?}");
        }
        assert_eq!(csv_rows.len(), wanted.len() + 1);
        let table = ok_stdout(&[
            "report",
            "--db",
            db,
            "--tz",
            "Europe/Berlin",
            "--month",
            "2026-11",
            "--by",
            by,
        ]);
        for key in wanted.keys() {
            assert!(
                table.lines().any(|l| l.starts_with(key.as_str())),
                "{key}:\n{table}"
            );
        }
        let total = sum(month.iter().copied());
        let kwh = format!("{}.{:03}", total.energy_wh / 1000, total.energy_wh % 1000);
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("all ") && l.contains(&kwh)),
            "{kwh}:\n{table}"
        );
    }

    // Without a range, everything stored; the default report is left as it was.
    let everything = json(&["report", "--db", db, "--by", "user", "--format", "json"]);
    assert_eq!(sum_of(&everything["totals"]), sum(all.iter().copied()));
    let default = json(&["report", "--db", db, "--format", "json"]);
    assert!(default["chargers"].is_array() && default.get("rows").is_none());
    assert_eq!(
        default["totals"]["energy_wh"].as_u64(),
        Some(sum(all.iter().copied()).energy_wh)
    );
}

#[test]
fn sessions_of_a_user_or_group_are_theirs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    write_db(&db);
    let rows = stored(&db);
    let db = db.to_str().unwrap();
    let ids = |pick: &dyn Fn(&SessionRecord) -> bool| -> Vec<String> {
        let mut v: Vec<String> = rows
            .iter()
            .map(|(r, _)| r)
            .filter(|r| pick(r))
            .map(|r| r.session_id.clone())
            .collect();
        v.sort();
        v
    };
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["sessions", "--db", db, "--format", "json"];
        all.extend_from_slice(args);
        let records: Vec<SessionRecord> = serde_json::from_str(&ok_stdout(&all)).unwrap();
        let mut v: Vec<String> = records.into_iter().map(|r| r.session_id).collect();
        v.sort();
        v
    };
    let alice = ids(&|r| r.identity.user.as_deref() == Some("alice"));
    assert!(!alice.is_empty());
    assert_eq!(listed(&["--user", "alice"]), alice);
    assert_eq!(
        listed(&["--group", "staff"]),
        ids(&|r| r.identity.group.as_deref() == Some("staff"))
    );
    assert_eq!(
        listed(&["--user", "(unknown)"]),
        ids(&|r| r.identity.user.is_none())
    );
    assert_eq!(
        listed(&["--group", "(unknown)", "--user", "dave"]),
        ids(&|r| r.identity.user.as_deref() == Some("dave") && r.identity.group.is_none())
    );
    assert!(listed(&["--user", "nobody"]).is_empty());
    // The identity travels in the JSON and the table shows the user's sessions only.
    let records: Vec<Value> = serde_json::from_str(&ok_stdout(&[
        "sessions", "--db", db, "--format", "json", "--user", "bob",
    ]))
    .unwrap();
    assert!(records
        .iter()
        .all(|r| r["user"] == "bob" && r["group"] == "visitors" && r["vehicle"] == "Model 3"));
    let table = ok_stdout(&["sessions", "--db", db, "--user", "bob"]);
    assert!(
        table.contains(&format!("{} sessions", records.len())),
        "{table}"
    );

    let csv = ok_stdout(&[
        "sessions", "--db", db, "--format", "csv", "--group", "staff",
    ]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let csv_rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        csv_rows.len(),
        ids(&|r| r.identity.group.as_deref() == Some("staff")).len()
    );
    assert!(csv_rows
        .iter()
        .all(|r| &r[col("group")] == "staff" && ["alice", "carol"].contains(&&r[col("user")])));

    // --month and --from cannot both be given; a bad month is a usage error.
    let out = evsite(&[
        "sessions",
        "--db",
        db,
        "--month",
        "2026-11",
        "--from",
        "2026-11-02",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = evsite(&["sessions", "--db", db, "--month", "11-2026"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a month as YYYY-MM"));
}

#[test]
fn a_users_monthly_statement_lists_the_months_sessions_and_sums_their_cost_lines() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    write_db(&db);
    let rows = stored(&db);
    let db = db.to_str().unwrap();
    for user in ["alice", "bob", "dave"] {
        let mine: Vec<&SessionRecord> = november(&rows)
            .into_iter()
            .filter(|r| r.identity.user.as_deref() == Some(user))
            .collect();
        assert!(!mine.is_empty(), "{user}");
        let s = json(&[
            "report",
            "--db",
            db,
            "--tz",
            "Europe/Berlin",
            "--statement",
            "--user",
            user,
            "--month",
            "2026-11",
            "--format",
            "json",
        ]);
        assert_eq!(s["user"], user);
        assert_eq!(s["month"], "2026-11");
        assert_eq!(
            s["from"], "2026-10-31T23:00:00Z",
            "the month starts in Berlin"
        );
        let listed: Vec<&str> = s["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["session_id"].as_str().unwrap())
            .collect();
        let mut want: Vec<&SessionRecord> = mine.clone();
        want.sort_by_key(|r| r.plugged_in_at);
        let want_ids: Vec<&str> = want.iter().map(|r| r.session_id.as_str()).collect();
        assert_eq!(listed, want_ids, "{user}");
        for (x, r) in s["sessions"].as_array().unwrap().iter().zip(&want) {
            assert_eq!(x["charger"], r.charger.as_str());
            assert_eq!(x["energy_wh"].as_u64(), Some(r.energy_wh));
            assert_eq!(x["vehicle"].as_str(), r.identity.vehicle.as_deref());
            let date = r
                .plugged_in_at
                .with_timezone(&ZONE)
                .date_naive()
                .to_string();
            assert_eq!(x["date"].as_str(), Some(date.as_str()));
        }
        assert_eq!(sum_of(&s["totals"]), sum(mine.iter().copied()));
        // The lines, summed by kind and currency by hand.
        let mut lines: BTreeMap<(String, String), Decimal> = BTreeMap::new();
        for r in &mine {
            if let Some(c) = &r.cost {
                for l in &c.lines {
                    let kind = serde_json::to_value(l.kind).unwrap();
                    *lines
                        .entry((c.currency.clone(), kind.as_str().unwrap().to_owned()))
                        .or_default() += l.amount;
                }
            }
        }
        let shown: BTreeMap<(String, String), Decimal> = s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    (
                        l["currency"].as_str().unwrap().to_owned(),
                        l["kind"].as_str().unwrap().to_owned(),
                    ),
                    dec(&l["amount"]),
                )
            })
            .collect();
        assert_eq!(shown, lines, "{user}");

        let table = ok_stdout(&[
            "report",
            "--db",
            db,
            "--tz",
            "Europe/Berlin",
            "--statement",
            "--user",
            user,
            "--month",
            "2026-11",
        ]);
        assert!(
            table.starts_with(&format!("Statement for user {user}, 2026-11")),
            "{table}"
        );
        let total = sum(mine.iter().copied());
        for (currency, amount) in &total.cost {
            assert!(table.contains(&format!("{amount} {currency}")), "{table}");
        }
        let csv = ok_stdout(&[
            "report",
            "--db",
            db,
            "--tz",
            "Europe/Berlin",
            "--statement",
            "--user",
            user,
            "--month",
            "2026-11",
            "--format",
            "csv",
        ]);
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(
            records.iter().filter(|r| &r[0] == "session").count(),
            mine.len()
        );
        let totals: BTreeMap<String, Decimal> = records
            .iter()
            .filter(|r| &r[0] == "total" && !r[12].is_empty())
            .map(|r| (r[12].to_owned(), r[13].parse().unwrap()))
            .collect();
        assert_eq!(totals, total.cost, "{csv}");
    }
    // A statement is someone's.
    let out = evsite(&["report", "--db", db, "--statement", "--month", "2026-11"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--user or --group"));
}

/// The example config with its storage at `db` and its API on `listen`.
fn config_for(dir: &Path, db: &Path, listen: &str) -> (PathBuf, evsite::config::Config) {
    let (path, text) = crate::api::example_config(dir, listen);
    let text = text.replace(
        "path = \"/var/lib/evsite\"",
        &format!("path = \"{}\"", db.display()),
    );
    assert!(text.contains(&db.display().to_string()));
    std::fs::write(&path, &text).unwrap();
    let cfg = evsite::config::load_str(&text, "example").expect("the example config loads");
    (path, cfg)
}

/// An API serving `store` (no control loop: the history needs none).
async fn serve(cfg: evsite::config::Config, store: Store) -> evsite::api::ApiServer {
    let (_tx, state) = tokio::sync::watch::channel(Arc::new(evsite::site::SiteState::default()));
    let ctx = evsite::api::ApiContext {
        observed: Arc::new(evsite::api::Observed::new(cfg.control.interval)),
        cfg: Arc::new(cfg),
        state,
        store: Some(store),
        link: None,
        token: None,
    };
    evsite::api::start(ctx, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("serving")
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_evsite"))
            .args(&args)
            .env_remove("EVSITE_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// `/api/report` with the commands' keys answers what the commands print, and the commands
/// read through it while the store is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reports_by_person_as_the_commands_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    tokio::task::block_in_place(|| write_db(&db));
    let rows = tokio::task::block_in_place(|| stored(&db));
    let (_, cfg) = config_for(dir.path(), &db, "127.0.0.1:0");
    let (store, _) = Store::open(&db).unwrap();
    let server = serve(cfg, store).await;
    let addr = server.addr();
    let (config, _) = config_for(dir.path(), &db, &addr.to_string());
    let config = config.to_str().unwrap().to_owned();

    let by_group = get(addr, "/api/report?by=group&month=2026-11").await;
    assert_eq!(by_group.status, 200, "{}", by_group.body);
    assert_eq!(by_group.content_type(), "application/json");
    let v = by_group.json();
    let month = november(&rows);
    assert_eq!(sum_of(&v["totals"]), sum(month.iter().copied()));
    let staff: Vec<&SessionRecord> = month
        .iter()
        .copied()
        .filter(|r| r.identity.group.as_deref() == Some("staff"))
        .collect();
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "staff")
        .unwrap();
    assert_eq!(sum_of(row), sum(staff.iter().copied()));

    let cases: [(&[&str], &str); 4] = [
        (
            &["report", "--by", "user", "--month", "2026-11", "--format", "json"],
            "/api/report?month=2026-11&by=user&tz=Europe%2FBerlin&format=json",
        ),
        (
            &["report", "--statement", "--user", "bob", "--month", "2026-11", "--format", "csv"],
            "/api/report?month=2026-11&user=bob&statement=true&tz=Europe%2FBerlin&format=csv",
        ),
        (
            &["report", "--by", "charger", "--group", "staff", "--from", "2026-11-01", "--to", "2026-11-30"],
            "/api/report?from=2026-11-01&to=2026-11-30&group=staff&by=charger&tz=Europe%2FBerlin&format=table",
        ),
        (
            &["sessions", "--user", "(unknown)", "--format", "json"],
            "/api/sessions?user=%28unknown%29&tz=Europe%2FBerlin&format=json",
        ),
    ];
    for (args, path) in cases {
        let mut cmd: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        cmd.extend(["--config".to_owned(), config.clone()]);
        let out = run(cmd.clone()).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let api = get(addr, path).await;
        assert_eq!(api.status, 200, "{path}: {}", api.body);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            api.body,
            "{cmd:?} against {path}"
        );
    }
    // The report's keys are refused where they mean nothing, bad ones everywhere.
    assert_eq!(get(addr, "/api/sessions?by=user").await.status, 400);
    assert_eq!(get(addr, "/api/report?by=vehicle").await.status, 400);
    assert_eq!(get(addr, "/api/report?month=2026-13").await.status, 400);
    let no_one = get(addr, "/api/report?statement=true").await;
    assert_eq!(no_one.status, 400, "{}", no_one.body);
    drop(server);
}

/// The page's DOM as rendered, without its script.
fn rendered(dom: &str) -> &str {
    dom.split("<script>").next().unwrap_or(dom)
}

/// Every `<tag attr="key" data-wh="N"` in the rendered DOM, as key -> N.
fn figures(dom: &str, attr: &str) -> BTreeMap<String, u64> {
    rendered(dom)
        .split(&format!("{attr}=\""))
        .skip(1)
        .map(|rest| {
            let key = rest.split('"').next().unwrap().to_owned();
            let wh = rest
                .split("data-wh=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("data-wh of {key}"));
            (key, wh)
        })
        .collect()
}

/// A PNG's pixels as RGB (8-bit RGB or RGBA, not interlaced: what Chromium writes).
fn png_rgb(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    use std::io::Read;
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "8-bit");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
                assert_eq!(data[12], 0, "not interlaced");
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    let mut prev = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let filter = line[0];
        let mut cur = line[1..].to_vec();
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 };
            let b = prev[i];
            let c = if i >= channels { prev[i - channels] } else { 0 };
            let add = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => {
                    let p = a as i16 + b as i16 - c as i16;
                    let (pa, pb, pc) = (
                        (p - a as i16).abs(),
                        (p - b as i16).abs(),
                        (p - c as i16).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("PNG filter {other}"),
            };
            cur[i] = cur[i].wrapping_add(add);
        }
        for px in cur.chunks(channels) {
            pixels.push([px[0], px[1], px[2]]);
        }
        prev = cur;
    }
    (width, height, pixels)
}

/// The bars of one colour in a screenshot, left to right: each run of columns holding a
/// vertical stretch of at least 3 pixels of exactly that colour, as its tallest stretch.
fn bar_heights(png: &[u8], rgb: [u8; 3]) -> Vec<usize> {
    let (w, h, px) = png_rgb(png);
    let column = |x: usize| {
        let (mut best, mut run) = (0, 0);
        for y in 0..h {
            if px[y * w + x] == rgb {
                run += 1;
                best = best.max(run);
            } else {
                run = 0;
            }
        }
        best
    };
    let mut bars = Vec::new();
    let mut current: Option<usize> = None;
    for x in 0..w {
        let c = column(x);
        match (c >= 3, current) {
            (true, Some(t)) => current = Some(t.max(c)),
            (true, None) => current = Some(c),
            (false, Some(t)) => {
                bars.push(t);
                current = None;
            }
            (false, None) => {}
        }
    }
    bars.extend(current);
    bars
}

/// The bars drawn stand in the stored sessions' proportions: as many as the figures that are
/// not zero, each as tall against the tallest as its figure against the largest.
fn assert_bars_match(name: &str, heights: &[usize], figures: &[u64]) {
    let nonzero: Vec<u64> = figures.iter().copied().filter(|&f| f > 0).collect();
    assert_eq!(
        heights.len(),
        nonzero.len(),
        "{name}: bars {heights:?} for {nonzero:?}"
    );
    let top_px = *heights.iter().max().unwrap() as f64;
    let top = *nonzero.iter().max().unwrap() as f64;
    assert!(top_px > 40.0, "{name}: the tallest bar is {top_px} px");
    for (px, f) in heights.iter().zip(&nonzero) {
        let shown = *px as f64 / top_px;
        let want = (*f as f64 / top).max(2.0 / 136.0);
        assert!(
            (shown - want).abs() <= 3.0 / top_px,
            "{name}: a bar of {px} px against {top_px} stands for {f} against {top}"
        );
    }
}

/// The status page's history view over a store of sessions with identities, in Chromium:
/// every day, hour, user and group as the stored sessions add up, and the screenshot's bars
/// in their proportions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_months_history_per_day_hour_user_and_group_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    tokio::task::block_in_place(|| write_db(&db));
    let rows = tokio::task::block_in_place(|| stored(&db));
    let (_, cfg) = config_for(dir.path(), &db, "127.0.0.1:0");
    let (store, _) = Store::open(&db).unwrap();
    let server = serve(cfg, store).await;
    let url = format!("http://{}/?month=2026-11", server.addr());

    let out = crate::api::chromium(&url, &["--dump-dom"]).await;
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !rendered(&dom).contains("id=\"history-card\" hidden"),
        "shown:\n{dom}"
    );

    // By hand from the stored rows: per local day, per hour of the day (the samples), per
    // user and group.
    let month = november(&rows);
    let mut days: BTreeMap<String, u64> = BTreeMap::new();
    let mut d = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    while d.format("%m").to_string() == "11" {
        days.insert(d.to_string(), 0);
        d = d.succ_opt().unwrap();
    }
    let mut users: BTreeMap<String, u64> = BTreeMap::new();
    let mut groups: BTreeMap<String, u64> = BTreeMap::new();
    let mut hours = [0.0f64; 24];
    for r in &month {
        *days
            .get_mut(
                &r.plugged_in_at
                    .with_timezone(&ZONE)
                    .date_naive()
                    .to_string(),
            )
            .unwrap() += r.energy_wh;
        *users.entry(key_of("user", r)).or_default() += r.energy_wh;
        *groups.entry(key_of("group", r)).or_default() += r.energy_wh;
        let (_, samples) = rows
            .iter()
            .find(|(x, _)| x.session_id == r.session_id)
            .unwrap();
        for s in samples {
            hours[s.minute_start.with_timezone(&ZONE).hour() as usize] += s.energy_wh;
        }
    }
    let hours: BTreeMap<String, u64> = hours
        .iter()
        .enumerate()
        .map(|(h, wh)| (format!("{h:02}"), wh.round() as u64))
        .collect();
    assert_eq!(figures(&dom, "data-day"), days);
    assert_eq!(figures(&dom, "data-hour"), hours);
    assert_eq!(figures(&dom, "data-user"), users);
    assert_eq!(figures(&dom, "data-group"), groups);
    let total = sum(month.iter().copied());
    let total_tag = rendered(&dom)
        .split("id=\"history-total\"")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap_or_else(|| panic!("the month's total:\n{dom}"));
    assert!(
        total_tag.contains(&format!("data-wh=\"{}\"", total.energy_wh)),
        "{total_tag}"
    );
    assert!(rendered(&dom).contains("href=\"?month=2026-10\""));

    // The screenshot: the bars are drawn, in the stored proportions.
    let png = dir.path().join("history.png");
    let out = crate::api::chromium(
        &url,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,2400",
            "--timeout=3000",
        ],
    )
    .await;
    let bytes = std::fs::read(&png)
        .unwrap_or_else(|e| panic!("screenshot ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    if let Ok(keep) = std::env::var("EVSITE_KEEP_SCREENSHOTS") {
        let _ = std::fs::copy(&png, Path::new(&keep).join("history.png"));
    }
    let day_values: Vec<u64> = days.values().copied().collect();
    let hour_values: Vec<u64> = hours.values().copied().collect();
    assert_bars_match("days", &bar_heights(&bytes, DAY_BAR), &day_values);
    assert_bars_match("hours", &bar_heights(&bytes, HOUR_BAR), &hour_values);
    drop(server);
}

/// The page's colours for the day and hour bars (`--day`, `--hour` in page.html).
const DAY_BAR: [u8; 3] = [0x0e, 0xa5, 0xe9];
const HOUR_BAR: [u8; 3] = [0xf9, 0x73, 0x16];
