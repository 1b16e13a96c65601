//! Who charged and who pays, pure: the sessions summed per user, group or charger
//! (`evsite report --by`), and a statement of one user's (or group's) month
//! (`evsite report --statement`): each session, the cost lines summed by kind, the total.
//!
//! Rules (docs/history.md): a session without a user (or group) counts under `(unknown)`, so
//! the rows always add up to the totals; a session counts whole on the local day it was
//! plugged in, with its energy and cost so far while still active. Costs are summed per
//! currency and never converted.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use super::range::{day_start, local_date, Month};
use super::report::{add_cost, zone_name};
use crate::sessions::machine::{RecordState, SessionRecord};

/// The key sessions with no identity count under.
pub const UNKNOWN: &str = "(unknown)";

/// What `--by` sums over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum By {
    User,
    Group,
    Charger,
}

impl By {
    pub fn name(self) -> &'static str {
        match self {
            By::User => "user",
            By::Group => "group",
            By::Charger => "charger",
        }
    }

    /// The key `r` counts under.
    pub fn key(self, r: &SessionRecord) -> &str {
        match self {
            By::User => r.identity.user.as_deref().unwrap_or(UNKNOWN),
            By::Group => r.identity.group.as_deref().unwrap_or(UNKNOWN),
            By::Charger => &r.charger,
        }
    }
}

/// Whether `r` is `wanted`'s: `(unknown)` asks for the sessions with no value.
pub fn matches(value: Option<&str>, wanted: &str) -> bool {
    value.unwrap_or(UNKNOWN) == wanted
}

/// Counts and sums over a set of sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sums {
    pub sessions: usize,
    pub active_sessions: usize,
    pub energy_wh: u64,
    /// Total per currency (decimal strings); sessions without a cost add nothing.
    pub cost: BTreeMap<String, Decimal>,
}

impl Sums {
    fn add(&mut self, r: &SessionRecord) {
        self.sessions += 1;
        self.active_sessions += usize::from(r.state == RecordState::Active);
        self.energy_wh += r.energy_wh;
        add_cost(&mut self.cost, r);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The user, group or charger; `(unknown)` for sessions without one.
    pub key: String,
    #[serde(flatten)]
    pub sums: Sums,
}

/// `evsite report --by`: one row per key, most energy first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grouped {
    #[serde(serialize_with = "zone_name")]
    pub timezone: Tz,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub by: By,
    pub rows: Vec<Row>,
    pub totals: Sums,
}

/// The range a report covers: the bounds asked for, else from the start of the local day of
/// the first session, until `now`.
pub fn span(
    records: &[SessionRecord],
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    zone: Tz,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = records.iter().map(|r| r.plugged_in_at).min();
    let from = from
        .or_else(|| first.and_then(|t| day_start(local_date(t, zone), zone)))
        .unwrap_or(now);
    (from, to.unwrap_or(now).max(from))
}

/// Rows per key, most energy first (then by key); `chargers` are listed even when idle
/// (with `--by charger`).
pub fn group(
    records: &[SessionRecord],
    by: By,
    zone: Tz,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    chargers: &[String],
) -> Grouped {
    let mut rows: BTreeMap<&str, Sums> = BTreeMap::new();
    if by == By::Charger {
        for c in chargers {
            rows.entry(c.as_str()).or_default();
        }
    }
    let mut totals = Sums::default();
    for r in records {
        rows.entry(by.key(r)).or_default().add(r);
        totals.add(r);
    }
    let mut rows: Vec<Row> = rows
        .into_iter()
        .map(|(key, sums)| Row {
            key: key.to_owned(),
            sums,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.sums
            .energy_wh
            .cmp(&a.sums.energy_wh)
            .then_with(|| a.key.cmp(&b.key))
    });
    Grouped {
        timezone: zone,
        from,
        to,
        by,
        rows,
        totals,
    }
}

/// Whose statement: a user's, or a group's (a cost centre's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holder {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// One session on a statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementSession {
    pub session_id: String,
    /// The local day it was plugged in.
    pub date: NaiveDate,
    pub plugged_in_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub state: RecordState,
    pub charger: String,
    pub vehicle: Option<String>,
    pub group: Option<String>,
    pub energy_wh: u64,
    pub currency: Option<String>,
    pub cost: Option<Decimal>,
}

/// The cost lines of every session of one kind and currency, summed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineSum {
    pub currency: String,
    /// `energy`, `session_fee`, `idle_fee`, `time_fee`; `other` for what a session's total
    /// holds beyond its lines.
    pub kind: String,
    /// The sessions with a line of this kind.
    pub sessions: usize,
    /// The lines' quantities summed, in `unit`; absent when the lines had several units.
    pub quantity: Option<Decimal>,
    pub unit: Option<String>,
    pub amount: Decimal,
}

/// `evsite report --statement`: a month of one user's (or group's) sessions and their cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    #[serde(serialize_with = "zone_name")]
    pub timezone: Tz,
    #[serde(flatten)]
    pub holder: Holder,
    /// `YYYY-MM`.
    pub month: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub sessions: Vec<StatementSession>,
    pub lines: Vec<LineSum>,
    pub totals: Sums,
}

/// The statement over `records` (already those of the holder and the month).
pub fn statement(
    records: &[SessionRecord],
    holder: Holder,
    month: Month,
    zone: Tz,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Statement {
    let mut sorted: Vec<&SessionRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (a.plugged_in_at, &a.session_id).cmp(&(b.plugged_in_at, &b.session_id)));
    let mut totals = Sums::default();
    // (currency, kind) -> (sessions, quantity per unit, amount)
    type Acc = (usize, BTreeMap<String, Decimal>, Decimal);
    let mut lines: BTreeMap<(String, String), Acc> = BTreeMap::new();
    let mut sessions = Vec::with_capacity(sorted.len());
    for r in sorted {
        totals.add(r);
        if let Some(c) = &r.cost {
            let mut kinds: Vec<String> = Vec::new();
            let mut itemised = Decimal::ZERO;
            for l in &c.lines {
                let kind = super::list::name_of(&l.kind);
                let unit = super::list::name_of(&l.unit);
                let acc = lines.entry((c.currency.clone(), kind.clone())).or_default();
                if !kinds.contains(&kind) {
                    acc.0 += 1;
                    kinds.push(kind);
                }
                *acc.1.entry(unit).or_default() += l.quantity;
                acc.2 += l.amount;
                itemised += l.amount;
            }
            let rest = c.total - itemised;
            if !rest.is_zero() {
                let acc = lines
                    .entry((c.currency.clone(), "other".to_owned()))
                    .or_default();
                acc.0 += 1;
                acc.2 += rest;
            }
        }
        sessions.push(StatementSession {
            session_id: r.session_id.clone(),
            date: local_date(r.plugged_in_at, zone),
            plugged_in_at: r.plugged_in_at,
            ended_at: r.ended_at,
            state: r.state,
            charger: r.charger.clone(),
            vehicle: r.identity.vehicle.clone(),
            group: r.identity.group.clone(),
            energy_wh: r.energy_wh,
            currency: r.cost.as_ref().map(|c| c.currency.clone()),
            cost: r.cost.as_ref().map(|c| c.total),
        });
    }
    let lines = lines
        .into_iter()
        .map(|((currency, kind), (n, units, amount))| {
            let single = (units.len() == 1)
                .then(|| units.into_iter().next())
                .flatten();
            LineSum {
                currency,
                kind,
                sessions: n,
                quantity: single.as_ref().map(|(_, q)| *q),
                unit: single.map(|(u, _)| u),
                amount,
            }
        })
        .collect();
    Statement {
        timezone: zone,
        holder,
        month: month.to_string(),
        from,
        to,
        sessions,
        lines,
        totals,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use rust_decimal_macros::dec;

    use super::*;
    use crate::sessions::cost::{Cost, CostKind, CostLine, Unit};
    use crate::tokens::Identity;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn line(kind: CostKind, unit: Unit, quantity: Decimal, amount: Decimal) -> CostLine {
        CostLine {
            kind,
            label: String::new(),
            quantity,
            unit,
            unit_price: Decimal::ZERO,
            amount,
        }
    }

    fn record(id: &str, user: Option<&str>, wh: u64, cost: Option<Cost>) -> SessionRecord {
        let t = at("2026-11-20T10:00:00Z");
        SessionRecord {
            state: RecordState::Completed,
            ended_at: Some(t + TimeDelta::hours(1)),
            energy_wh: wh,
            cost,
            identity: Identity {
                user: user.map(str::to_owned),
                group: user.map(|u| format!("g-{u}")),
                ..Identity::default()
            },
            ..SessionRecord::new(id.to_owned(), "cp".to_owned(), t)
        }
    }

    #[test]
    fn rows_add_up_to_the_totals_and_nobody_counts_as_unknown() {
        let eur = |total| Cost {
            currency: "EUR".into(),
            total,
            lines: Vec::new(),
        };
        let records = [
            record("a", Some("ann"), 1_000, Some(eur(dec!(1.10)))),
            record("b", None, 5_000, None),
            record("c", Some("ann"), 2_000, Some(eur(dec!(2.20)))),
        ];
        let span = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        let g = group(&records, By::User, Tz::UTC, span, &[]);
        let keys: Vec<&str> = g.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, [UNKNOWN, "ann"], "most energy first");
        assert_eq!(g.rows[1].sums.energy_wh, 3_000);
        assert_eq!(g.rows[1].sums.cost["EUR"], dec!(3.30));
        assert_eq!(
            g.rows.iter().map(|r| r.sums.energy_wh).sum::<u64>(),
            g.totals.energy_wh
        );
        let by_charger = group(&records, By::Charger, Tz::UTC, span, &["idle".into()]);
        assert_eq!(by_charger.rows.len(), 2);
        assert_eq!(by_charger.rows[1].key, "idle");
        assert_eq!(by_charger.rows[1].sums.sessions, 0);
    }

    #[test]
    fn statement_lines_sum_by_kind_and_a_total_beyond_its_lines_shows_as_other() {
        let itemised = Cost {
            currency: "EUR".into(),
            total: dec!(3.50),
            lines: vec![
                line(CostKind::Energy, Unit::Kwh, dec!(10.000), dec!(3.00)),
                line(CostKind::SessionFee, Unit::Session, dec!(1), dec!(0.50)),
            ],
        };
        let bare = Cost {
            currency: "EUR".into(),
            total: dec!(2.00),
            lines: vec![line(CostKind::Energy, Unit::Kwh, dec!(5.000), dec!(1.50))],
        };
        let records = [
            record("a", Some("ann"), 10_000, Some(itemised)),
            record("b", Some("ann"), 5_000, Some(bare)),
        ];
        let m = Month::parse("2026-11").unwrap();
        let s = statement(
            &records,
            Holder {
                user: Some("ann".into()),
                group: None,
            },
            m,
            Tz::UTC,
            m.bounds(Tz::UTC).unwrap(),
        );
        let kinds: Vec<(&str, usize, Option<Decimal>, Decimal)> = s
            .lines
            .iter()
            .map(|l| (l.kind.as_str(), l.sessions, l.quantity, l.amount))
            .collect();
        assert_eq!(
            kinds,
            [
                ("energy", 2, Some(dec!(15.000)), dec!(4.50)),
                ("other", 1, None, dec!(0.50)),
                ("session_fee", 1, Some(dec!(1)), dec!(0.50)),
            ]
        );
        let lines: Decimal = s.lines.iter().map(|l| l.amount).sum();
        assert_eq!(lines, s.totals.cost["EUR"]);
        assert_eq!(s.totals.cost["EUR"], dec!(5.50));
        assert_eq!(s.sessions.len(), 2);
    }
}
