//! `evsite sessions` output: a table with local times for people, CSV and JSON with the
//! contract's field names and UTC RFC 3339 times for programs.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{Format, HistoryError};
use crate::app::table;
use crate::sessions::machine::{RecordState, SessionRecord};

/// CSV columns: the contract's session fields, the cost flattened into two, whose session it
/// is last (empty where unknown).
pub const CSV_HEADER: [&str; 21] = [
    "session_id",
    "charger",
    "state",
    "plugged_in_at",
    "charging_started_at",
    "ended_at",
    "energy_wh",
    "meter_start_wh",
    "meter_end_wh",
    "max_power_w",
    "estimated_end_at",
    "stop_reason",
    "cost_currency",
    "cost_total",
    "estimated_end_earliest",
    "estimated_end_latest",
    "energy_notes",
    "user",
    "vehicle",
    "group",
    "authorized_by",
];

/// The records in plug-in order (the store keeps them in id order).
pub fn render(records: &[SessionRecord], zone: Tz, format: Format) -> Result<String, HistoryError> {
    let mut sorted: Vec<&SessionRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (a.plugged_in_at, &a.session_id).cmp(&(b.plugged_in_at, &b.session_id)));
    match format {
        Format::Table => Ok(render_table(&sorted, zone)),
        Format::Csv => render_csv(&sorted),
        Format::Json => serde_json::to_string_pretty(&sorted)
            .map(|s| s + "\n")
            .map_err(|e| HistoryError::Output {
                what: "JSON",
                detail: e.to_string(),
            }),
    }
}

fn render_table(records: &[&SessionRecord], zone: Tz) -> String {
    if records.is_empty() {
        return "no sessions\n".to_owned();
    }
    let plugged = format!("plugged in ({zone})");
    // Whose sessions they are, when any is known.
    let people = records.iter().any(|r| r.identity.user.is_some());
    let mut header = vec![
        "session",
        "charger",
        "state",
        plugged.as_str(),
        "duration",
        "kWh",
        "max kW",
        "cost",
        "stop reason",
    ];
    if people {
        header.insert(2, "user");
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut row = vec![
                r.session_id.clone(),
                r.charger.clone(),
                name_of(&r.state),
                local_minute(r.plugged_in_at, zone),
                match r.ended_at {
                    Some(end) => duration(end - r.plugged_in_at),
                    None => "(active)".to_owned(),
                },
                kwh(r.energy_wh),
                r.max_power_w
                    .map(|w| format!("{:.1}", w as f64 / 1000.0))
                    .unwrap_or_default(),
                r.cost
                    .as_ref()
                    .map(|c| format!("{} {}", c.total, c.currency))
                    .unwrap_or_default(),
                r.stop_reason.as_ref().map(name_of).unwrap_or_default(),
            ];
            if people {
                row.insert(
                    2,
                    r.identity
                        .user
                        .clone()
                        .unwrap_or_else(|| super::people::UNKNOWN.to_owned()),
                );
            }
            row
        })
        .collect();
    let active = records
        .iter()
        .filter(|r| r.state == RecordState::Active)
        .count();
    let total: u64 = records.iter().map(|r| r.energy_wh).sum();
    let mut out = table::render(&header, &rows);
    out.push_str(&format!(
        "{} sessions ({active} active), {} kWh\n",
        records.len(),
        kwh(total)
    ));
    // How a session's energy was made up where its register could not be taken as read.
    for r in records.iter().filter(|r| !r.energy_notes.is_empty()) {
        out.push_str(&format!("{}: {}\n", r.session_id, notes(r)));
    }
    out
}

/// A session's energy notes as a person reads them, one line.
fn notes(r: &SessionRecord) -> String {
    r.energy_notes
        .iter()
        .map(|n| n.describe())
        .collect::<Vec<_>>()
        .join("; ")
}

fn render_csv(records: &[&SessionRecord]) -> Result<String, HistoryError> {
    let err = |e: csv::Error| HistoryError::Output {
        what: "CSV",
        detail: e.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).map_err(err)?;
    let time = |t: Option<DateTime<Utc>>| t.map(rfc3339).unwrap_or_default();
    let num = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    for r in records {
        w.write_record([
            r.session_id.clone(),
            r.charger.clone(),
            name_of(&r.state),
            rfc3339(r.plugged_in_at),
            time(r.charging_started_at),
            time(r.ended_at),
            r.energy_wh.to_string(),
            num(r.meter_start_wh),
            num(r.meter_end_wh),
            num(r.max_power_w),
            time(r.estimated_end_at),
            r.stop_reason.as_ref().map(name_of).unwrap_or_default(),
            r.cost
                .as_ref()
                .map(|c| c.currency.clone())
                .unwrap_or_default(),
            r.cost
                .as_ref()
                .map(|c| c.total.to_string())
                .unwrap_or_default(),
            time(r.estimated_end_earliest),
            time(r.estimated_end_latest),
            notes(r),
            r.identity.user.clone().unwrap_or_default(),
            r.identity.vehicle.clone().unwrap_or_default(),
            r.identity.group.clone().unwrap_or_default(),
            r.identity
                .authorized_by
                .map(|a| a.name().to_owned())
                .unwrap_or_default(),
        ])
        .map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| HistoryError::Output {
        what: "CSV",
        detail: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| HistoryError::Output {
        what: "CSV",
        detail: e.to_string(),
    })
}

/// The serde name of a unit enum (`completed`, `charger_fault`), as in the JSON.
pub(super) fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// UTC, whole seconds, `Z`: the contract's timestamp form.
pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn local_minute(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
}

/// Wh as kWh with three decimals (whole Wh).
pub(super) fn kwh(wh: u64) -> String {
    format!("{}.{:03}", wh / 1000, wh % 1000)
}

pub(super) fn duration(d: chrono::TimeDelta) -> String {
    let minutes = d.num_minutes().max(0);
    format!("{}h{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone, Utc};

    use super::*;
    use crate::sessions::energy::{MeterNote, RegisterFault};

    #[test]
    fn a_session_billed_from_power_says_so_in_the_table_and_the_csv() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 11, 21, 14, 0, 0)
            .single()
            .unwrap_or_default();
        let mut noted = SessionRecord::new("s-2".into(), "cp-1".into(), t0);
        noted.energy_notes.push(MeterNote::IntegratedPower {
            at: t0 + TimeDelta::seconds(170),
            since: t0 + TimeDelta::seconds(50),
            reason: RegisterFault::RegisterFrozen,
        });
        noted.estimated_end_earliest = Some(t0 + TimeDelta::hours(1));
        noted.estimated_end_latest = Some(t0 + TimeDelta::hours(2));
        let plain = SessionRecord::new("s-1".into(), "cp-2".into(), t0);
        let records = [plain, noted];

        let table =
            render(&records, Tz::UTC, Format::Table).unwrap_or_else(|e| panic!("table: {e}"));
        let lines: Vec<&str> = table.lines().filter(|l| l.contains("integrated")).collect();
        assert_eq!(
            lines,
            ["s-2: energy from integrated power since 14:00:50 UTC: register frozen"],
            "{table}"
        );

        let csv = render(&records, Tz::UTC, Format::Csv).unwrap_or_else(|e| panic!("csv: {e}"));
        let mut rows = csv::Reader::from_reader(csv.as_bytes());
        let header = rows.headers().cloned().unwrap_or_default();
        assert_eq!(header.len(), CSV_HEADER.len());
        let at = |name: &str| header.iter().position(|h| h == name).unwrap_or(usize::MAX);
        let rows: Vec<csv::StringRecord> = rows.records().map_while(Result::ok).collect();
        assert_eq!(rows.len(), 2, "{csv}");
        assert_eq!(rows[0].get(at("energy_notes")), Some(""));
        assert!(rows[1]
            .get(at("energy_notes"))
            .is_some_and(|n| n.contains("register frozen")));
        assert_eq!(
            rows[1].get(at("estimated_end_latest")),
            Some("2026-11-21T16:00:00Z")
        );
        // Nobody known: no user column in the table, empty cells in the CSV.
        assert!(
            !table.lines().next().unwrap_or("").contains("user"),
            "{table}"
        );
        assert_eq!(rows[0].get(at("user")), Some(""));
    }

    #[test]
    fn whose_session_it_is_shows_in_the_table_and_the_csv() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 11, 21, 14, 0, 0)
            .single()
            .unwrap_or_default();
        let mut known = SessionRecord::new("s-1".into(), "cp-1".into(), t0);
        known.identity = crate::tokens::Identity {
            token: Some("04A1".into()),
            user: Some("ann".into()),
            vehicle: Some("Zoe".into()),
            group: Some("staff".into()),
            authorized_by: Some(crate::tokens::AuthorizedBy::Local),
        };
        let nobody = SessionRecord::new("s-2".into(), "cp-2".into(), t0);
        let records = [known, nobody];
        let table =
            render(&records, Tz::UTC, Format::Table).unwrap_or_else(|e| panic!("table: {e}"));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("session  charger  user"), "{table}");
        assert!(lines[1].contains("cp-1     ann"), "{table}");
        assert!(lines[2].contains("cp-2     (unknown)"), "{table}");
        let csv = render(&records, Tz::UTC, Format::Csv).unwrap_or_else(|e| panic!("csv: {e}"));
        let mut rows = csv::Reader::from_reader(csv.as_bytes());
        let header = rows.headers().cloned().unwrap_or_default();
        let at = |name: &str| header.iter().position(|h| h == name).unwrap_or(usize::MAX);
        let rows: Vec<csv::StringRecord> = rows.records().map_while(Result::ok).collect();
        let who: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| {
                ["user", "vehicle", "group", "authorized_by"]
                    .iter()
                    .map(|c| r.get(at(c)).unwrap_or("?"))
                    .collect()
            })
            .collect();
        assert_eq!(
            who,
            [vec!["ann", "Zoe", "staff", "local"], vec!["", "", "", ""]]
        );
    }
}
