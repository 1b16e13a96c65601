//! The report as a table (with the peak hours drawn as bars), as CSV (one long table with a
//! `section` column, so a spreadsheet can filter it) or as JSON (the [`Report`] itself).

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::demand::DemandMonth;
use super::list::{duration, kwh, local_minute};
use super::report::{Figures, Report};
use super::{Format, HistoryError};
use crate::anomaly::health;
use crate::app::table;

/// Width of the longest bar of the peak-hours histogram.
const BAR_WIDTH: u64 = 40;

/// CSV columns; a row fills those its section has. `section` is `total`, `charger`, `day`,
/// `hour`, `demand` (a local month) or `demand_window` (one of a month's highest windows).
/// `cost` is `AMOUNT CURRENCY`, several joined by `; `. `energy_share` to `health_flags` are
/// station health, on `charger` rows: `health_flags` joined by `; `. The last six are the
/// demand section's: on a `demand` row `window_start` and `demand_kw` are the month's peak
/// window's; times there are RFC 3339 in the report's zone.
pub const CSV_HEADER: [&str; CSV_COLUMNS] = [
    "section",
    "date",
    "charger",
    "hour",
    "sessions",
    "active_sessions",
    "energy_wh",
    "cost",
    "plugged_share",
    "charging_share",
    "avg_duration_s",
    "avg_energy_wh",
    "energy_share",
    "error_ratio",
    "link_alerts",
    "anomaly_alerts",
    "health_flags",
    "month",
    "window_start",
    "demand_kw",
    "limit_kw",
    "windows",
    "over_target",
];
const CSV_COLUMNS: usize = 23;

pub fn render(report: &Report, format: Format) -> Result<String, HistoryError> {
    match format {
        Format::Table => Ok(render_table(report)),
        Format::Csv => render_csv(report),
        Format::Json => json(report),
    }
}

/// Pretty JSON with a final newline, as every history command prints it.
pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String, HistoryError> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| HistoryError::Output {
            what: "JSON",
            detail: e.to_string(),
        })
}

/// Costs per currency as one cell: "12.40 EUR; 3.10 CHF".
pub(super) fn cost(c: &BTreeMap<String, Decimal>) -> String {
    c.iter()
        .map(|(cur, total)| format!("{total} {cur}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn percent(share: Option<f64>) -> String {
    share
        .map(|s| format!("{:.1}%", s * 100.0))
        .unwrap_or_default()
}

fn figure_cells(f: &Figures) -> Vec<String> {
    let sessions = if f.active_sessions > 0 {
        format!("{} ({} active)", f.sessions, f.active_sessions)
    } else {
        f.sessions.to_string()
    };
    vec![
        sessions,
        kwh(f.energy_wh),
        cost(&f.cost),
        percent(f.plugged_share),
        percent(f.charging_share),
        f.avg_duration_s
            .map(|s| duration(chrono::TimeDelta::seconds(s)))
            .unwrap_or_default(),
        f.avg_energy_wh.map(kwh).unwrap_or_default(),
    ]
}

fn render_table(r: &Report) -> String {
    let zone: Tz = r.timezone;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Report {} to {} ({})\n",
        local_minute(r.from, zone),
        local_minute(r.to, zone),
        r.timezone
    );
    let header = [
        "charger", "sessions", "kWh", "cost", "plugged", "charging", "avg time", "avg kWh",
    ];
    let mut rows: Vec<Vec<String>> = r
        .chargers
        .iter()
        .map(|c| {
            let mut row = vec![c.charger.clone()];
            row.extend(figure_cells(&c.figures));
            row
        })
        .collect();
    let mut total = vec!["all".to_owned()];
    total.extend(figure_cells(&r.totals));
    rows.push(total);
    out.push_str(&table::render(&header, &rows));

    out.push_str("\nStation health (against the other chargers)\n");
    let rows: Vec<Vec<String>> = r
        .health
        .iter()
        .map(|h| {
            let count = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
            vec![
                h.charger.clone(),
                percent(h.energy_share_ratio),
                h.error_ratio
                    .map(|r| format!("{:.2}%", r * 100.0))
                    .unwrap_or_default(),
                count(h.link_alerts),
                count(h.anomaly_alerts),
                if h.flags.is_empty() {
                    "ok".to_owned()
                } else {
                    h.flags.join(", ")
                },
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "charger",
            "energy share",
            "Modbus errors",
            "link alerts",
            "anomaly alerts",
            "stands out on",
        ],
        &rows,
    ));
    if !r.demand.is_empty() {
        out.push_str(&demand_table(&r.demand, zone));
    }

    out.push('\n');
    if r.days.is_empty() {
        out.push_str("no sessions\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .days
            .iter()
            .map(|d| {
                let sessions = if d.active_sessions > 0 {
                    format!("{} ({} active)", d.sessions, d.active_sessions)
                } else {
                    d.sessions.to_string()
                };
                vec![
                    d.date.to_string(),
                    d.charger.clone(),
                    sessions,
                    kwh(d.energy_wh),
                    cost(&d.cost),
                ]
            })
            .collect();
        out.push_str(&table::render(
            &["day", "charger", "sessions", "kWh", "cost"],
            &rows,
        ));
    }

    out.push_str("\nPeak hours (kWh by hour of the local day)\n");
    let max = r.peak_hours.iter().map(|h| h.energy_wh).max().unwrap_or(0);
    for h in &r.peak_hours {
        let len = if max == 0 {
            0
        } else {
            (h.energy_wh * BAR_WIDTH).div_ceil(max)
        };
        let bar = "#".repeat(len as usize);
        let _ = writeln!(
            out,
            "{:02}  {:<width$}  {}",
            h.hour,
            bar,
            kwh(h.energy_wh),
            width = BAR_WIDTH as usize
        );
    }
    out
}

/// A CSV row of `section` with the named cells filled and the others empty.
fn csv_row(section: &str, cells: &[(&str, String)]) -> [String; CSV_COLUMNS] {
    let mut row: [String; CSV_COLUMNS] = Default::default();
    row[0] = section.to_owned();
    for (name, value) in cells {
        let column = CSV_HEADER.iter().position(|h| h == name);
        debug_assert!(column.is_some(), "no CSV column {name}");
        if let Some(i) = column {
            row[i] = value.clone();
        }
    }
    row
}

/// kW with two decimals: a window just over its target shows as over.
fn kw(v: f64) -> String {
    format!("{v:.2} kW")
}

/// The demand section: a row per local month, then the range's highest windows.
fn demand_table(months: &[DemandMonth], zone: Tz) -> String {
    let mut out =
        String::from("\nDemand (average import per window; the month's peak is what is billed)\n");
    let rows: Vec<Vec<String>> = months
        .iter()
        .map(|m| {
            vec![
                m.month.clone(),
                m.limit_kw.map(kw).unwrap_or_default(),
                m.peak.map(|p| kw(p.demand_kw)).unwrap_or_default(),
                m.peak
                    .map(|p| local_minute(p.start, zone))
                    .unwrap_or_default(),
                m.windows.to_string(),
                m.over_target.to_string(),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "month",
            "target",
            "month peak",
            "peak window",
            "windows",
            "over target",
        ],
        &rows,
    ));
    let rows: Vec<Vec<String>> = months
        .iter()
        .flat_map(|m| {
            m.highest.iter().map(|w| {
                vec![
                    m.month.clone(),
                    local_minute(w.start, zone),
                    kw(w.demand_kw),
                    kw(w.limit_kw),
                    if w.exceeded() { "over" } else { "" }.to_owned(),
                ]
            })
        })
        .collect();
    if !rows.is_empty() {
        out.push_str("\nHighest windows in the range\n");
        out.push_str(&table::render(
            &["month", "window", "demand", "target", ""],
            &rows,
        ));
    }
    out
}

fn render_csv(r: &Report) -> Result<String, HistoryError> {
    let err = |detail: String| HistoryError::Output {
        what: "CSV",
        detail,
    };
    let zone: Tz = r.timezone;
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut put = |row: [String; CSV_COLUMNS]| w.write_record(row).map_err(|e| err(e.to_string()));
    put(CSV_HEADER.map(str::to_owned))?;
    let share = |s: Option<f64>| s.map(|s| format!("{s:.6}")).unwrap_or_default();
    let opt = |n: Option<String>| n.unwrap_or_default();
    let none = health::StationHealth::default();
    let figures = |section: &str, charger: &str, f: &Figures, h: &health::StationHealth| {
        csv_row(
            section,
            &[
                ("charger", charger.to_owned()),
                ("sessions", f.sessions.to_string()),
                ("active_sessions", f.active_sessions.to_string()),
                ("energy_wh", f.energy_wh.to_string()),
                ("cost", cost(&f.cost)),
                ("plugged_share", share(f.plugged_share)),
                ("charging_share", share(f.charging_share)),
                (
                    "avg_duration_s",
                    opt(f.avg_duration_s.map(|s| s.to_string())),
                ),
                ("avg_energy_wh", opt(f.avg_energy_wh.map(|s| s.to_string()))),
                ("energy_share", share(h.energy_share_ratio)),
                ("error_ratio", share(h.error_ratio)),
                ("link_alerts", opt(h.link_alerts.map(|n| n.to_string()))),
                (
                    "anomaly_alerts",
                    opt(h.anomaly_alerts.map(|n| n.to_string())),
                ),
                ("health_flags", h.flags.join("; ")),
            ],
        )
    };
    put(figures("total", "", &r.totals, &none))?;
    for c in &r.chargers {
        let h = r
            .health
            .iter()
            .find(|h| h.charger == c.charger)
            .unwrap_or(&none);
        put(figures("charger", &c.charger, &c.figures, h))?;
    }
    for d in &r.days {
        put(csv_row(
            "day",
            &[
                ("date", d.date.to_string()),
                ("charger", d.charger.clone()),
                ("sessions", d.sessions.to_string()),
                ("active_sessions", d.active_sessions.to_string()),
                ("energy_wh", d.energy_wh.to_string()),
                ("cost", cost(&d.cost)),
            ],
        ))?;
    }
    for h in &r.peak_hours {
        put(csv_row(
            "hour",
            &[
                ("hour", h.hour.to_string()),
                ("energy_wh", h.energy_wh.to_string()),
            ],
        ))?;
    }
    let at = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&zone)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    };
    let kw3 = |v: f64| format!("{v:.3}");
    for m in &r.demand {
        put(csv_row(
            "demand",
            &[
                ("month", m.month.clone()),
                ("window_start", opt(m.peak.map(|p| at(p.start)))),
                ("demand_kw", opt(m.peak.map(|p| kw3(p.demand_kw)))),
                ("limit_kw", opt(m.limit_kw.map(kw3))),
                ("windows", m.windows.to_string()),
                ("over_target", m.over_target.to_string()),
            ],
        ))?;
        for w in &m.highest {
            put(csv_row(
                "demand_window",
                &[
                    ("month", m.month.clone()),
                    ("window_start", at(w.start)),
                    ("demand_kw", kw3(w.demand_kw)),
                    ("limit_kw", kw3(w.limit_kw)),
                    ("over_target", u8::from(w.exceeded()).to_string()),
                ],
            ))?;
        }
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| err(e.to_string()))
}
