//! The report's demand section (`[demand]`), pure: for every local month the range touches,
//! the target in force, the month's peak window, how many windows started inside the range
//! and how many of those went over their target, and the range's highest windows.
//!
//! The peak is the month's, over every window stored for it — the figure the utility bills —
//! even when the range covers only part of the month; the counts and the highest windows are
//! the range's. Months are local months in the report's zone (the site's unless `--tz`).

use std::cmp::Ordering;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::range::{day_start, local_date};
use crate::control::demand::WindowDemand;

/// How many of the range's highest windows a month lists.
pub const HIGHEST: usize = 3;

/// One local month of demand windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemandMonth {
    /// The local month, `YYYY-MM`.
    pub month: String,
    /// The target in force: that of the month's latest stored window, else the config's.
    pub limit_kw: Option<f64>,
    /// The month's highest window (of all those stored for the month).
    pub peak: Option<WindowDemand>,
    /// Windows that started inside the range.
    pub windows: usize,
    /// Of those, the ones whose average went over their own target.
    pub over_target: usize,
    /// The range's highest windows of the month, highest first (at most [`HIGHEST`]).
    pub highest: Vec<WindowDemand>,
}

/// The first instant of the local month holding `at`.
pub fn month_start(at: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    local_date(at, zone)
        .with_day(1)
        .and_then(|d| day_start(d, zone))
        .unwrap_or(at)
}

/// The first instant of the local month after the one holding `at`.
pub fn next_month_start(at: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    let d = local_date(at, zone);
    let (year, month) = match d.month() {
        12 => (d.year() + 1, 1),
        m => (d.year(), m + 1),
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| day_start(d, zone))
        .unwrap_or(at)
}

/// Higher demand first; among equal ones the earlier window.
fn higher_first(a: &WindowDemand, b: &WindowDemand) -> Ordering {
    b.demand_kw
        .total_cmp(&a.demand_kw)
        .then(a.start.cmp(&b.start))
}

/// The months `[from, to)` touches. `windows`: the stored windows of (at least) those whole
/// months; `limit_kw`: the config's target. Empty for a site without demand: no target
/// configured and no window inside the range.
pub fn months(
    windows: &[WindowDemand],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    zone: Tz,
    limit_kw: Option<f64>,
) -> Vec<DemandMonth> {
    let in_range = |w: &WindowDemand| w.start >= from && w.start < to;
    if limit_kw.is_none() && !windows.iter().any(in_range) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut start = month_start(from, zone);
    while start < to {
        let end = next_month_start(start, zone);
        if end <= start {
            break;
        }
        let month: Vec<WindowDemand> = windows
            .iter()
            .filter(|w| w.start >= start && w.start < end)
            .copied()
            .collect();
        let mut ranged: Vec<WindowDemand> = month.iter().copied().filter(in_range).collect();
        let over_target = ranged.iter().filter(|w| w.exceeded()).count();
        let count = ranged.len();
        ranged.sort_by(higher_first);
        ranged.truncate(HIGHEST);
        out.push(DemandMonth {
            month: start.with_timezone(&zone).format("%Y-%m").to_string(),
            limit_kw: month
                .iter()
                .max_by_key(|w| w.start)
                .map(|w| w.limit_kw)
                .or(limit_kw),
            peak: month.iter().copied().min_by(higher_first),
            windows: count,
            over_target,
            highest: ranged,
        });
        start = end;
    }
    out
}
