//! `[demand]`, `[[schedule]]` and the chargers' departure plans: the installer's shaping of
//! charging over time. Each value here can only lower a limit, never raise one, so the
//! checks are about sense (a time that exists, a limit above zero), not about safety.

use std::time::Duration;

use chrono::Weekday;

use super::{check, num};
use crate::config::error::KeyPath;
use crate::config::raw::{RawCharger, RawDemand, RawSchedule};
use crate::config::report::Reporter;
use crate::config::types::{Demand, PlanSpec, Schedule, ScheduleCap};
use crate::sessions::tariff::day_names::{self, NAMES};
use crate::sessions::tariff::ClockTime;

/// "HH:MM" as minutes after midnight; "24:00" (1440) only where `end_of_day`. The same
/// parse as the tariff windows'.
pub(crate) fn clock_minutes(s: &str, end_of_day: bool) -> Option<u16> {
    s.parse::<ClockTime>()
        .ok()
        .filter(|t| end_of_day || *t < ClockTime::END_OF_DAY)
        .map(ClockTime::minutes)
}

pub fn demand(raw: &RawDemand, rep: &mut Reporter<'_>) -> Option<Demand> {
    let p = KeyPath::root("demand");
    let before = rep.count();
    check(
        rep,
        raw.limit_kw.is_finite() && raw.limit_kw > 0.0 && raw.limit_kw <= 10_000.0,
        &p.key("limit_kw"),
        format!(
            "must be more than 0 kW and at most 10000 kW, got {}",
            num(raw.limit_kw)
        ),
    );
    check(
        rep,
        (1..=60).contains(&raw.window_min) && 1440 % raw.window_min == 0,
        &p.key("window_min"),
        format!(
            "must be 1–60 minutes and divide a day (5, 15, 30, 60, ...), got {}",
            raw.window_min
        ),
    );
    check(
        rep,
        raw.margin_pct.is_finite() && (0.0..=50.0).contains(&raw.margin_pct),
        &p.key("margin_pct"),
        format!("must be 0–50 %, got {}", num(raw.margin_pct)),
    );
    (rep.count() == before).then(|| Demand {
        limit_kw: raw.limit_kw,
        window: Duration::from_secs(raw.window_min as u64 * 60),
        include_building: raw.include_building,
        margin_pct: raw.margin_pct,
    })
}

/// Day names, with `weekdays` and `weekends` as shorthands.
fn days(raw: &[String], p: &KeyPath, rep: &mut Reporter<'_>) -> Vec<Weekday> {
    let mut out: Vec<Weekday> = Vec::new();
    for (j, d) in raw.iter().enumerate() {
        let here = p.index(j);
        let add: Vec<Weekday> = match d.as_str() {
            "weekdays" => NAMES[..5].iter().map(|(_, w)| *w).collect(),
            "weekends" => NAMES[5..].iter().map(|(_, w)| *w).collect(),
            name => match day_names::parse(name) {
                Some(w) => vec![w],
                None => {
                    rep.error(
                        &here,
                        format!("must be one of mon–sun, weekdays or weekends, got {d:?}"),
                    );
                    continue;
                }
            },
        };
        for w in add {
            if out.contains(&w) {
                rep.error(&here, format!("{d:?} repeats a day listed before"));
            } else {
                out.push(w);
            }
        }
    }
    out
}

pub fn schedules(
    raw: &[RawSchedule],
    chargers: &[RawCharger],
    rep: &mut Reporter<'_>,
) -> Vec<Schedule> {
    let mut out = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let p = KeyPath::root("schedule").index(i);
        let before = rep.count();
        if let Some(id) = &s.charger {
            check(
                rep,
                chargers.iter().any(|c| &c.id == id),
                &p.key("charger"),
                format!("no [[charger]] with id {id:?}"),
            );
        }
        let days = days(&s.days, &p.key("days"), rep);
        let from = clock_minutes(&s.from, false);
        check(
            rep,
            from.is_some(),
            &p.key("from"),
            format!(
                "must be a local time \"HH:MM\" (00:00–23:59), got {:?}",
                s.from
            ),
        );
        let to = clock_minutes(&s.to, true);
        check(
            rep,
            to.is_some(),
            &p.key("to"),
            format!(
                "must be a local time \"HH:MM\" (00:00–24:00), got {:?}",
                s.to
            ),
        );
        if let (Some(f), Some(t)) = (from, to) {
            check(
                rep,
                f != t,
                &p.key("to"),
                "must differ from `from` (a whole day is \"00:00\" to \"24:00\")".into(),
            );
        }
        let cap = match (s.limit_a, s.limit_w) {
            (Some(a), None) => {
                check(
                    rep,
                    a.is_finite() && a >= 0.0,
                    &p.key("limit_a"),
                    format!("must be at least 0 A, got {}", num(a)),
                );
                Some(ScheduleCap::Amps(a))
            }
            (None, Some(w)) => {
                check(
                    rep,
                    w.is_finite() && w >= 0.0,
                    &p.key("limit_w"),
                    format!("must be at least 0 W, got {}", num(w)),
                );
                Some(ScheduleCap::Watts(w))
            }
            (Some(_), Some(_)) => {
                rep.error(&p.key("limit_w"), "give limit_a or limit_w, not both");
                None
            }
            (None, None) => {
                rep.error(&p, "needs limit_a (per phase) or limit_w (in all)");
                None
            }
        };
        if let (true, Some(from_min), Some(to_min), Some(cap)) =
            (rep.count() == before, from, to, cap)
        {
            out.push(Schedule {
                charger: s.charger.clone(),
                days,
                from_min,
                to_min,
                cap,
            });
        }
    }
    out
}

/// A charger's `plan_energy_wh` and `plan_depart`: both or neither.
pub fn plan(c: &RawCharger, p: &KeyPath, rep: &mut Reporter<'_>) -> Option<Option<PlanSpec>> {
    match (c.plan_energy_wh, &c.plan_depart) {
        (None, None) => Some(None),
        (Some(e), Some(d)) => {
            let e_ok = check(
                rep,
                (1..=1_000_000).contains(&e),
                &p.key("plan_energy_wh"),
                format!("must be 1–1000000 Wh, got {e}"),
            );
            let depart = clock_minutes(d, false);
            check(
                rep,
                depart.is_some(),
                &p.key("plan_depart"),
                format!("must be a local time \"HH:MM\" (00:00–23:59), got {d:?}"),
            );
            let depart_min = depart?;
            e_ok.then_some(Some(PlanSpec {
                energy_wh: e as u64,
                depart_min,
            }))
        }
        (Some(_), None) => {
            rep.error(&p.key("plan_energy_wh"), "needs plan_depart as well");
            None
        }
        (None, Some(_)) => {
            rep.error(&p.key("plan_depart"), "needs plan_energy_wh as well");
            None
        }
    }
}
