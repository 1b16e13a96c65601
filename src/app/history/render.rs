//! The report as a table (with the peak hours drawn as bars), as CSV (one long table with a
//! `section` column, so a spreadsheet can filter it) or as JSON (the [`Report`] itself).

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::list::{duration, kwh, local_minute};
use super::report::{Figures, Report};
use super::{Format, HistoryError};
use crate::anomaly::health;
use crate::app::table;

/// Width of the longest bar of the peak-hours histogram.
const BAR_WIDTH: u64 = 40;

/// CSV columns; a row fills those its section has. `section` is `total`, `charger`, `day` or
/// `hour`. `cost` is `AMOUNT CURRENCY`, several joined by `; `. The last five are station
/// health, on `charger` rows: `health_flags` joined by `; `.
pub const CSV_HEADER: [&str; 17] = [
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
];

pub fn render(report: &Report, format: Format) -> Result<String, HistoryError> {
    match format {
        Format::Table => Ok(render_table(report)),
        Format::Csv => render_csv(report),
        Format::Json => serde_json::to_string_pretty(report)
            .map(|s| s + "\n")
            .map_err(|e| HistoryError::Output {
                what: "JSON",
                detail: e.to_string(),
            }),
    }
}

fn cost(c: &BTreeMap<String, Decimal>) -> String {
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
    let zone: Tz = r.timezone.parse().unwrap_or(Tz::UTC);
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

fn render_csv(r: &Report) -> Result<String, HistoryError> {
    let err = |detail: String| HistoryError::Output {
        what: "CSV",
        detail,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut put = |row: [String; 17]| w.write_record(row).map_err(|e| err(e.to_string()));
    put(CSV_HEADER.map(str::to_owned))?;
    let share = |s: Option<f64>| s.map(|s| format!("{s:.6}")).unwrap_or_default();
    let opt = |n: Option<String>| n.unwrap_or_default();
    let none = health::StationHealth::default();
    let figures = |section: &str, charger: &str, f: &Figures, h: &health::StationHealth| {
        [
            section.to_owned(),
            String::new(),
            charger.to_owned(),
            String::new(),
            f.sessions.to_string(),
            f.active_sessions.to_string(),
            f.energy_wh.to_string(),
            cost(&f.cost),
            share(f.plugged_share),
            share(f.charging_share),
            opt(f.avg_duration_s.map(|s| s.to_string())),
            opt(f.avg_energy_wh.map(|s| s.to_string())),
            share(h.energy_share_ratio),
            share(h.error_ratio),
            opt(h.link_alerts.map(|n| n.to_string())),
            opt(h.anomaly_alerts.map(|n| n.to_string())),
            h.flags.join("; "),
        ]
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
        put([
            "day".to_owned(),
            d.date.to_string(),
            d.charger.clone(),
            String::new(),
            d.sessions.to_string(),
            d.active_sessions.to_string(),
            d.energy_wh.to_string(),
            cost(&d.cost),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ])?;
    }
    for h in &r.peak_hours {
        let mut row: [String; 17] = Default::default();
        row[0] = "hour".to_owned();
        row[3] = h.hour.to_string();
        row[6] = h.energy_wh.to_string();
        put(row)?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| err(e.to_string()))
}
