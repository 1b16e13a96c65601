//! The status page's history view: one local month of the store at a glance — energy per
//! day, energy by hour of the day (the peak hours), and the month per user and per group.
//! The figures follow the report's rules (docs/history.md): a session counts whole on the
//! local day it was plugged in; the hours add up its per-minute samples.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::people::{self, By, Row, Sums};
use super::range::{local_date, Month};
use super::report::{zone_name, HourRow, HourTally};
use super::{HistoryError, Source};
use crate::store::{SessionFilter, Store};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayEnergy {
    pub date: NaiveDate,
    pub sessions: usize,
    pub energy_wh: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    #[serde(serialize_with = "zone_name")]
    pub timezone: Tz,
    /// `YYYY-MM`, and its neighbours for the page's links.
    pub month: String,
    pub previous: String,
    pub next: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every day of the month, in order, days without sessions too.
    pub days: Vec<DayEnergy>,
    /// Hours 0–23 of the local day.
    pub hours: Vec<HourRow>,
    /// Most energy first; `(unknown)` for sessions without one.
    pub users: Vec<Row>,
    pub groups: Vec<Row>,
    pub totals: Sums,
}

/// The view of `month` in `source`'s zone from the sessions stored.
pub fn overview(store: &Store, source: &Source, month: Month) -> Result<Overview, HistoryError> {
    let zone = source.zone;
    let span = month.bounds(zone)?;
    let records = store.sessions(&SessionFilter {
        charger: None,
        from: Some(span.0),
        to: Some(span.1),
    })?;
    let mut days: Vec<DayEnergy> = month
        .days()
        .map(|date| DayEnergy {
            date,
            sessions: 0,
            energy_wh: 0,
        })
        .collect();
    let mut hours = HourTally::default();
    for r in &records {
        let date = local_date(r.plugged_in_at, zone);
        if let Some(d) = days.iter_mut().find(|d| d.date == date) {
            d.sessions += 1;
            d.energy_wh += r.energy_wh;
        }
        hours.add(&store.samples(&r.session_id)?, zone);
    }
    let users = people::group(&records, By::User, zone, span, &[]);
    let groups = people::group(&records, By::Group, zone, span, &[]);
    Ok(Overview {
        timezone: zone,
        month: month.to_string(),
        previous: month.previous().to_string(),
        next: month.next().to_string(),
        from: span.0,
        to: span.1,
        days,
        hours: hours.rows(),
        users: users.rows,
        groups: groups.rows,
        totals: users.totals,
    })
}
