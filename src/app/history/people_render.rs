//! `report --by` and `report --statement` as a table (with the energy drawn as bars), as CSV
//! (one table with a `section` column) or as JSON (the [`Grouped`] or [`Statement`] itself).

use std::fmt::Write;

use super::list::{kwh, local_minute, rfc3339};
use super::people::{Grouped, Statement, Sums};
use super::render::{cost, json};
use super::{Format, HistoryError};
use crate::app::table;

/// Width of the longest bar.
const BAR_WIDTH: u64 = 30;

/// `report --by` CSV columns. `section` is `row` (one per key) or `total`; `cost` is
/// `AMOUNT CURRENCY`, several joined by `; `, as in the report's.
pub const GROUPED_CSV_HEADER: [&str; 7] = [
    "section",
    "by",
    "key",
    "sessions",
    "active_sessions",
    "energy_wh",
    "cost",
];

/// `report --statement` CSV columns. `section` is `session`, `line` (the cost lines of one
/// kind and currency, summed) or `total` (one per currency, or one without a cost).
pub const STATEMENT_CSV_HEADER: [&str; 14] = [
    "section",
    "session_id",
    "date",
    "plugged_in_at",
    "ended_at",
    "charger",
    "vehicle",
    "group",
    "energy_wh",
    "kind",
    "quantity",
    "unit",
    "currency",
    "amount",
];

pub fn grouped(g: &Grouped, format: Format) -> Result<String, HistoryError> {
    match format {
        Format::Table => Ok(grouped_table(g)),
        Format::Csv => grouped_csv(g),
        Format::Json => json(g),
    }
}

pub fn statement(s: &Statement, format: Format) -> Result<String, HistoryError> {
    match format {
        Format::Table => Ok(statement_table(s)),
        Format::Csv => statement_csv(s),
        Format::Json => json(s),
    }
}

fn sessions(s: &Sums) -> String {
    if s.active_sessions > 0 {
        format!("{} ({} active)", s.sessions, s.active_sessions)
    } else {
        s.sessions.to_string()
    }
}

fn grouped_table(g: &Grouped) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Energy and cost by {} {} to {} ({})\n",
        g.by.name(),
        local_minute(g.from, g.timezone),
        local_minute(g.to, g.timezone),
        g.timezone
    );
    let top = g.rows.iter().map(|r| r.sums.energy_wh).max().unwrap_or(0);
    let total = g.totals.energy_wh;
    let mut rows: Vec<Vec<String>> = g
        .rows
        .iter()
        .map(|r| {
            let share = if total > 0 {
                format!("{:.1}%", r.sums.energy_wh as f64 * 100.0 / total as f64)
            } else {
                String::new()
            };
            let bar = "#".repeat(
                (r.sums.energy_wh * BAR_WIDTH + top / 2)
                    .checked_div(top)
                    .unwrap_or(0) as usize,
            );
            vec![
                r.key.clone(),
                sessions(&r.sums),
                kwh(r.sums.energy_wh),
                cost(&r.sums.cost),
                share,
                bar,
            ]
        })
        .collect();
    rows.push(vec![
        "all".to_owned(),
        sessions(&g.totals),
        kwh(total),
        cost(&g.totals.cost),
        String::new(),
        String::new(),
    ]);
    out.push_str(&table::render(
        &[g.by.name(), "sessions", "kWh", "cost", "share", ""],
        &rows,
    ));
    out
}

fn writer_error(e: impl ToString) -> HistoryError {
    HistoryError::Output {
        what: "CSV",
        detail: e.to_string(),
    }
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<String, HistoryError> {
    let bytes = w.into_inner().map_err(writer_error)?;
    String::from_utf8(bytes).map_err(writer_error)
}

fn grouped_csv(g: &Grouped) -> Result<String, HistoryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(GROUPED_CSV_HEADER).map_err(writer_error)?;
    let row = |section: &str, key: &str, s: &Sums| {
        [
            section.to_owned(),
            g.by.name().to_owned(),
            key.to_owned(),
            s.sessions.to_string(),
            s.active_sessions.to_string(),
            s.energy_wh.to_string(),
            cost(&s.cost),
        ]
    };
    for r in &g.rows {
        w.write_record(row("row", &r.key, &r.sums))
            .map_err(writer_error)?;
    }
    w.write_record(row("total", "", &g.totals))
        .map_err(writer_error)?;
    finish(w)
}

fn holder(s: &Statement) -> String {
    match (&s.holder.user, &s.holder.group) {
        (Some(u), Some(g)) => format!("user {u} in group {g}"),
        (Some(u), None) => format!("user {u}"),
        (None, Some(g)) => format!("group {g}"),
        (None, None) => "everyone".to_owned(),
    }
}

fn statement_table(s: &Statement) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Statement for {}, {} ({} to {}, {})\n",
        holder(s),
        s.month,
        local_minute(s.from, s.timezone),
        local_minute(s.to, s.timezone),
        s.timezone
    );
    if s.sessions.is_empty() {
        out.push_str("no sessions\n");
        return out;
    }
    let rows: Vec<Vec<String>> = s
        .sessions
        .iter()
        .map(|x| {
            vec![
                local_minute(x.plugged_in_at, s.timezone),
                x.charger.clone(),
                x.vehicle.clone().unwrap_or_default(),
                x.group.clone().unwrap_or_default(),
                kwh(x.energy_wh),
                match (&x.cost, &x.currency) {
                    (Some(c), Some(cur)) => format!("{c} {cur}"),
                    _ => String::new(),
                },
                if x.ended_at.is_none() {
                    "(active)".to_owned()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "plugged in",
            "charger",
            "vehicle",
            "group",
            "kWh",
            "cost",
            "",
        ],
        &rows,
    ));
    if !s.lines.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = s
            .lines
            .iter()
            .map(|l| {
                vec![
                    l.kind.replace('_', " "),
                    l.sessions.to_string(),
                    match (&l.quantity, &l.unit) {
                        (Some(q), Some(u)) => format!("{q} {u}"),
                        _ => String::new(),
                    },
                    format!("{} {}", l.amount, l.currency),
                ]
            })
            .collect();
        out.push_str(&table::render(
            &["cost line", "sessions", "quantity", "amount"],
            &rows,
        ));
    }
    let _ = writeln!(
        out,
        "\ntotal: {} sessions{}, {} kWh{}",
        s.totals.sessions,
        if s.totals.active_sessions > 0 {
            format!(" ({} active)", s.totals.active_sessions)
        } else {
            String::new()
        },
        kwh(s.totals.energy_wh),
        if s.totals.cost.is_empty() {
            String::new()
        } else {
            format!(", {}", cost(&s.totals.cost))
        }
    );
    out
}

fn statement_csv(s: &Statement) -> Result<String, HistoryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(STATEMENT_CSV_HEADER).map_err(writer_error)?;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    for x in &s.sessions {
        w.write_record([
            "session".to_owned(),
            x.session_id.clone(),
            x.date.to_string(),
            rfc3339(x.plugged_in_at),
            x.ended_at.map(rfc3339).unwrap_or_default(),
            x.charger.clone(),
            opt(&x.vehicle),
            opt(&x.group),
            x.energy_wh.to_string(),
            String::new(),
            String::new(),
            String::new(),
            opt(&x.currency),
            x.cost.map(|c| c.to_string()).unwrap_or_default(),
        ])
        .map_err(writer_error)?;
    }
    for l in &s.lines {
        let mut row: [String; 14] = Default::default();
        row[0] = "line".to_owned();
        row[9] = l.kind.clone();
        row[10] = l.quantity.map(|q| q.to_string()).unwrap_or_default();
        row[11] = opt(&l.unit);
        row[12] = l.currency.clone();
        row[13] = l.amount.to_string();
        w.write_record(row).map_err(writer_error)?;
    }
    let total = |currency: &str, amount: String| {
        let mut row: [String; 14] = Default::default();
        row[0] = "total".to_owned();
        row[8] = s.totals.energy_wh.to_string();
        row[12] = currency.to_owned();
        row[13] = amount;
        row
    };
    if s.totals.cost.is_empty() {
        w.write_record(total("", String::new()))
            .map_err(writer_error)?;
    }
    for (currency, amount) in &s.totals.cost {
        w.write_record(total(currency, amount.to_string()))
            .map_err(writer_error)?;
    }
    finish(w)
}
