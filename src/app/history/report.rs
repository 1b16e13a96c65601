//! The usage report, pure: per charger and per local day (sessions, energy, cost per
//! currency), a peak-hours histogram, utilisation and averages. Time comes in as `now`.
//!
//! Rules (docs/history.md): a session counts, with all its energy and cost, on the local day
//! it was plugged in; sessions still active count with their energy and cost so far and run
//! until `now`. The histogram adds up the per-minute samples by hour of the local day.
//! Utilisation is time plugged in (and minutes with energy drawn) inside the range, over the
//! range's length times the number of chargers. Station health compares each charger's
//! share of the energy, its Modbus error ratio (over the stored UTC hours that start inside
//! the range) and the alerts raised on it inside the range with the other chargers'
//! ([`crate::anomaly::health`]). The demand section is [`super::demand`]'s.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use super::demand::{self, DemandMonth};
use super::range::{day_start, local_date};
use crate::alerts::{Alert, AlertKind};
use crate::anomaly::health::{self, StationHealth, StationInput};
use crate::control::demand::WindowDemand;
use crate::sessions::energy::Sample;
use crate::sessions::machine::{RecordState, SessionRecord};
use crate::store::{LinkHour, LinkHours};

/// A session and its per-minute energy.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionData {
    pub record: SessionRecord,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub zone: Tz,
    /// `None`: from the start of the local day of the first session or demand window.
    pub from: Option<DateTime<Utc>>,
    /// `None`: until `now`.
    pub to: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// Chargers to show even without sessions (the configured ones).
    pub chargers: Vec<String>,
    /// Stored alerts (any range: those raised inside it count).
    pub alerts: Vec<Alert>,
    /// Stored Modbus counts per charger and UTC hour (any range: hours starting inside it
    /// count).
    pub links: LinkHours,
    /// Stored demand windows, in time order, of every whole local month the range touches
    /// (a month's peak counts its windows outside the range too).
    pub demand_windows: Vec<WindowDemand>,
    /// The config's `[demand]` target, when it has one.
    pub demand_limit_kw: Option<f64>,
}

/// Counts and sums over a set of sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub sessions: usize,
    pub active_sessions: usize,
    pub energy_wh: u64,
    /// Total per currency (decimal strings); sessions without a cost add nothing.
    pub cost: BTreeMap<String, Decimal>,
    /// Seconds plugged in, inside the range.
    pub plugged_s: i64,
    /// Seconds with energy drawn (minutes with a positive sample), inside the range.
    pub charging_s: i64,
    /// `plugged_s` over the range's length (per charger); None for an empty range.
    pub plugged_share: Option<f64>,
    pub charging_share: Option<f64>,
    /// Plug-in to unplug (or `now` while active).
    pub avg_duration_s: Option<i64>,
    pub avg_energy_wh: Option<u64>,
    #[serde(skip)]
    duration_s: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChargerRow {
    pub charger: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayRow {
    pub date: NaiveDate,
    pub charger: String,
    pub sessions: usize,
    pub active_sessions: usize,
    pub energy_wh: u64,
    pub cost: BTreeMap<String, Decimal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HourRow {
    /// Hour of the local day, 0–23.
    pub hour: u32,
    pub energy_wh: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The zone the report's days and hours are in; shown by its IANA name.
    #[serde(serialize_with = "zone_name")]
    pub timezone: Tz,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub totals: Figures,
    pub chargers: Vec<ChargerRow>,
    pub days: Vec<DayRow>,
    pub peak_hours: Vec<HourRow>,
    /// Per charger, in the order of `chargers`: against the other chargers.
    pub health: Vec<StationHealth>,
    /// Per local month the range touches, when the site has a demand target or stored
    /// windows inside the range; empty otherwise.
    pub demand: Vec<DemandMonth>,
}

pub fn build(input: &Input, sessions: &[SessionData]) -> Report {
    let zone = input.zone;
    let first = sessions
        .iter()
        .map(|s| s.record.plugged_in_at)
        .chain(input.demand_windows.first().map(|w| w.start))
        .min();
    let from = input
        .from
        .or_else(|| first.and_then(|t| day_start(local_date(t, zone), zone)))
        .unwrap_or(input.now);
    let to = input.to.unwrap_or(input.now).max(from);
    let range_s = (to - from).num_seconds();

    let mut chargers: Vec<String> = input.chargers.clone();
    let mut others: Vec<&str> = sessions.iter().map(|s| s.record.charger.as_str()).collect();
    others.sort_unstable();
    others.dedup();
    for c in others {
        if !chargers.iter().any(|k| k == c) {
            chargers.push(c.to_owned());
        }
    }
    let mut per_charger: BTreeMap<&str, Figures> = BTreeMap::new();
    let mut totals = Figures::default();
    let mut days: BTreeMap<(NaiveDate, &str), DayRow> = BTreeMap::new();
    let mut hours = HourTally::default();

    for s in sessions {
        let r = &s.record;
        let end = r.ended_at.unwrap_or(input.now).max(r.plugged_in_at);
        let plugged_s = overlap(r.plugged_in_at, end, from, to);
        let charging_minutes = s
            .samples
            .iter()
            .filter(|x| x.energy_wh > 0.0 && x.minute_start >= from && x.minute_start < to)
            .count();
        // Minute samples may start before the plug-in instant; time charging cannot exceed
        // time plugged in.
        let charging_s = i64::try_from(charging_minutes)
            .unwrap_or(i64::MAX)
            .saturating_mul(60)
            .min(plugged_s);
        let active = r.state == RecordState::Active;
        let duration_s = (end - r.plugged_in_at).num_seconds();
        for f in [
            per_charger.entry(r.charger.as_str()).or_default(),
            &mut totals,
        ] {
            f.add(r, active, plugged_s, charging_s, duration_s);
        }
        let day = local_date(r.plugged_in_at, zone);
        let row = days
            .entry((day, r.charger.as_str()))
            .or_insert_with(|| DayRow {
                date: day,
                charger: r.charger.clone(),
                sessions: 0,
                active_sessions: 0,
                energy_wh: 0,
                cost: BTreeMap::new(),
            });
        row.sessions += 1;
        row.active_sessions += usize::from(active);
        row.energy_wh += r.energy_wh;
        add_cost(&mut row.cost, r);
        hours.add(&s.samples, zone);
    }

    let chargers: Vec<ChargerRow> = chargers
        .into_iter()
        .map(|c| {
            let mut figures = per_charger.remove(c.as_str()).unwrap_or_default();
            figures.finish(range_s);
            ChargerRow {
                charger: c,
                figures,
            }
        })
        .collect();
    let health = health::compare(
        &chargers
            .iter()
            .map(|c| {
                let count = |pick: fn(AlertKind) -> bool| {
                    input
                        .alerts
                        .iter()
                        .filter(|a| {
                            a.charger.as_deref() == Some(c.charger.as_str())
                                && pick(a.kind)
                                && a.raised_at >= from
                                && a.raised_at < to
                        })
                        .count()
                };
                let link = input.links.get(&c.charger).map(|hours| {
                    hours.iter().filter(|(at, _)| *at >= from && *at < to).fold(
                        LinkHour::default(),
                        |sum, (_, h)| LinkHour {
                            requests: sum.requests + h.requests,
                            failed: sum.failed + h.failed,
                        },
                    )
                });
                StationInput {
                    charger: c.charger.clone(),
                    energy_wh: Some(c.figures.energy_wh),
                    requests: link.map(|l| l.requests),
                    failed: link.map(|l| l.failed),
                    link_alerts: Some(count(|k| {
                        matches!(k, AlertKind::ChargerOffline | AlertKind::ChargerFault)
                    })),
                    anomaly_alerts: Some(count(AlertKind::is_anomaly)),
                }
            })
            .collect::<Vec<_>>(),
    );
    let slots = range_s.saturating_mul(i64::try_from(chargers.len()).unwrap_or(i64::MAX));
    totals.finish(slots);
    Report {
        timezone: zone,
        from,
        to,
        totals,
        chargers,
        days: days.into_values().collect(),
        peak_hours: hours.rows(),
        health,
        demand: demand::months(&input.demand_windows, from, to, zone, input.demand_limit_kw),
    }
}

impl Figures {
    fn add(
        &mut self,
        r: &SessionRecord,
        active: bool,
        plugged_s: i64,
        charging_s: i64,
        duration_s: i64,
    ) {
        self.sessions += 1;
        self.active_sessions += usize::from(active);
        self.energy_wh += r.energy_wh;
        add_cost(&mut self.cost, r);
        self.plugged_s += plugged_s;
        self.charging_s += charging_s;
        self.duration_s += duration_s;
    }

    /// Shares over `available_s` seconds of charger time, and the averages.
    fn finish(&mut self, available_s: i64) {
        let share = |s: i64| (available_s > 0).then(|| s as f64 / available_s as f64);
        self.plugged_share = share(self.plugged_s);
        self.charging_share = share(self.charging_s);
        let n = self.sessions as u64;
        self.avg_duration_s = self.duration_s.checked_div(self.sessions as i64);
        self.avg_energy_wh = (self.energy_wh + n / 2).checked_div(n);
    }
}

/// Energy by hour of the local day, from sessions' per-minute samples: the peak hours of the
/// report and of the page's history view.
#[derive(Debug, Clone, Default)]
pub(super) struct HourTally([f64; 24]);

impl HourTally {
    pub(super) fn add(&mut self, samples: &[Sample], zone: Tz) {
        for x in samples {
            if x.energy_wh.is_finite() && x.energy_wh > 0.0 {
                let hour = x.minute_start.with_timezone(&zone).hour() as usize;
                if let Some(h) = self.0.get_mut(hour) {
                    *h += x.energy_wh;
                }
            }
        }
    }

    pub(super) fn rows(&self) -> Vec<HourRow> {
        (0u32..)
            .zip(self.0)
            .map(|(hour, wh)| HourRow {
                hour,
                energy_wh: wh.round() as u64,
            })
            .collect()
    }
}

/// Adds a session's cost to the totals of its currency (none: nothing).
pub(super) fn add_cost(totals: &mut BTreeMap<String, Decimal>, r: &SessionRecord) {
    if let Some(cost) = &r.cost {
        *totals.entry(cost.currency.clone()).or_default() += cost.total;
    }
}

/// Seconds of `[a, b)` inside `[from, to)`.
fn overlap(a: DateTime<Utc>, b: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let start = a.max(from);
    let end = b.min(to);
    (end - start).max(TimeDelta::zero()).num_seconds()
}

/// A zone as its IANA name.
pub(super) fn zone_name<S: serde::Serializer>(zone: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(zone.name())
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
