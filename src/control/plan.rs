//! Departure plans: a session that needs `energy_wh` by `depart_at` charges in the cheapest
//! tariff slots that still get it there, and holds otherwise. Pure: the caller passes the
//! time, the energy still missing, what the car can be expected to take and the prices.
//!
//! The rule: split the time to departure into slots on the quarter hours (tariff windows
//! change there), give each the energy the car could take in it, and take slots cheapest
//! first (earlier first among equal prices, so a flat tariff charges at once) until they hold
//! [`RESERVE`] times what is missing. Charge now when the slot holding now is one of them,
//! or when even every slot is not enough. Recomputed every cycle, so a car that takes less
//! than expected pulls later slots in, and one that is full stops counting.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Slots are this long, on the local quarter hours.
pub const SLOT_S: i64 = 900;
/// Slots are picked for this much more than what is missing: the share a car gets from a
/// busy site, and its taper, are only estimates.
pub const RESERVE: f64 = 1.3;

/// A plan as a session carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub energy_wh: u64,
    pub depart_at: DateTime<Utc>,
}

/// A plan's progress, reported with the session.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanStatus {
    pub energy_wh: u64,
    pub depart_at: DateTime<Utc>,
    /// Delivered so far in the session.
    pub delivered_wh: f64,
    /// `energy_wh` delivered (by `depart_at`, or the car was full before).
    pub met: bool,
    /// Charging in this slot (false: holding for a cheaper one).
    pub charging: bool,
}

/// The next `minute` of the local day in `tz` after `after`: a departure time. A local time
/// skipped by DST is taken an hour later; one repeated, at its first occurrence.
pub fn next_local(after: DateTime<Utc>, minute: u16, tz: Tz) -> DateTime<Utc> {
    let Some(time) = NaiveTime::from_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)
    else {
        return after;
    };
    let day = after.with_timezone(&tz).date_naive();
    for d in 0..3 {
        let date = day + Duration::days(d);
        let naive = date.and_time(time);
        let at = tz
            .from_local_datetime(&naive)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(naive + Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc));
        if let Some(at) = at.filter(|&t| t > after) {
            return at;
        }
    }
    after + Duration::days(1)
}

/// What a plan does now: charge, or hold until the start of the earliest slot it picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Now,
    Later(DateTime<Utc>),
}

/// The plan's choice at `now`: the cheapest 15-minute slots before `depart_at` (the earliest
/// first among equal prices) that deliver `missing_wh` with its reserve at `power_w`. It
/// charges now when the slot in progress is among them, when no choice of slots is enough,
/// when the plan is met (the car tops up freely: it costs what it costs, and it is what it
/// asked), or when there is nothing to plan with.
fn pick(
    now: DateTime<Utc>,
    depart_at: DateTime<Utc>,
    missing_wh: f64,
    power_w: f64,
    price: &dyn Fn(DateTime<Utc>) -> Decimal,
) -> Pick {
    if missing_wh <= 0.0 || now >= depart_at || power_w <= 0.0 {
        return Pick::Now;
    }
    // (start, seconds, price), the first one partial.
    let mut slots: Vec<(DateTime<Utc>, f64, Decimal)> = Vec::new();
    let mut t = now;
    while t < depart_at && slots.len() < 7 * 96 {
        let boundary =
            DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(SLOT_S) + SLOT_S, 0)
                .unwrap_or(depart_at)
                .min(depart_at);
        let secs = (boundary - t).num_milliseconds() as f64 / 1000.0;
        slots.push((t, secs, price(t)));
        t = boundary;
    }
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by(|&a, &b| slots[a].2.cmp(&slots[b].2).then(a.cmp(&b)));
    let need = missing_wh * RESERVE;
    let mut got = 0.0;
    let mut first = usize::MAX;
    for i in order {
        if i == 0 {
            return Pick::Now;
        }
        first = first.min(i);
        got += power_w * slots[i].1 / 3600.0;
        if got >= need {
            return Pick::Later(slots[first].0);
        }
    }
    Pick::Now
}

/// Whether to charge now. `missing_wh`: still to deliver; `power_w`: what the car can be
/// expected to take while charging; `price`: the energy price at an instant.
pub fn charge_now(
    now: DateTime<Utc>,
    depart_at: DateTime<Utc>,
    missing_wh: f64,
    power_w: f64,
    price: &dyn Fn(DateTime<Utc>) -> Decimal,
) -> bool {
    pick(now, depart_at, missing_wh, power_w, price) == Pick::Now
}

/// While [`charge_now`] holds a car (false), when the plan expects to start charging: the
/// start of the earliest slot it picked, should prices and the car's needs stay as they are.
/// None when it charges now.
pub fn hold_until(
    now: DateTime<Utc>,
    depart_at: DateTime<Utc>,
    missing_wh: f64,
    power_w: f64,
    price: &dyn Fn(DateTime<Utc>) -> Decimal,
) -> Option<DateTime<Utc>> {
    match pick(now, depart_at, missing_wh, power_w, price) {
        Pick::Now => None,
        Pick::Later(at) => Some(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn t(h: i64, m: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_774_400 + h * 3600 + m * 60, 0).unwrap_or_default()
    }

    /// Cheap from 22:00 to 06:00 (UTC, the test's day starting at t(0, 0)).
    fn night(at: DateTime<Utc>) -> Decimal {
        let h = ((at - t(0, 0)).num_minutes().rem_euclid(1440)) / 60;
        if !(6..22).contains(&h) {
            dec!(0.10)
        } else {
            dec!(0.40)
        }
    }

    #[test]
    fn waits_for_the_cheap_window_when_it_is_enough() {
        // 11 kW car, 30 kWh by 07:00: the night (22:00–06:00) holds 88 kWh.
        assert!(!charge_now(t(18, 0), t(31, 0), 30_000.0, 11_000.0, &night));
        assert!(charge_now(t(22, 0), t(31, 0), 30_000.0, 11_000.0, &night));
    }

    #[test]
    fn a_held_car_is_told_when_its_first_cheap_slot_starts_and_a_charging_one_nothing() {
        // Held from 18:00: the night from 22:00 holds enough; the hold ends at 22:00.
        assert_eq!(
            hold_until(t(18, 0), t(31, 0), 30_000.0, 11_000.0, &night),
            Some(t(22, 0))
        );
        // Whenever it is held, it says until when; whenever it charges, it says nothing.
        for (h, wh) in [
            (18, 30_000.0),
            (21, 10_000.0),
            (22, 30_000.0),
            (18, 100_000.0),
        ] {
            let now = t(h, 0);
            let held = !charge_now(now, t(31, 0), wh, 11_000.0, &night);
            let until = hold_until(now, t(31, 0), wh, 11_000.0, &night);
            assert_eq!(held, until.is_some(), "{h}:00, {wh} Wh");
            assert!(until.is_none_or(|u| u > now));
        }
    }

    #[test]
    fn charges_in_dear_slots_when_the_cheap_ones_are_not_enough() {
        // 100 kWh at 11 kW takes 9.1 h, with the reserve 11.8 h: the 8 cheap hours and the
        // cheapest-earliest dear ones. From 18:00 the dear hour right before 07:00 (06–07)
        // and the four 18–22 are all that is left: charging starts now.
        assert!(charge_now(t(18, 0), t(31, 0), 100_000.0, 11_000.0, &night));
    }

    #[test]
    fn a_flat_tariff_charges_at_once_and_an_impossible_plan_too() {
        let flat = |_: DateTime<Utc>| dec!(0.30);
        assert!(charge_now(t(18, 0), t(31, 0), 10_000.0, 11_000.0, &flat));
        assert!(charge_now(t(18, 0), t(19, 0), 50_000.0, 11_000.0, &night));
        assert!(charge_now(t(18, 0), t(17, 0), 50_000.0, 11_000.0, &night));
    }

    #[test]
    fn departure_is_the_next_local_time_across_dst() {
        let tz = chrono_tz::Europe::Brussels;
        // 2026-10-24 20:00 CEST = 18:00 UTC; 07:00 CET on the 25th = 06:00 UTC.
        let plugged = Utc.with_ymd_and_hms(2026, 10, 24, 18, 0, 0).unwrap();
        assert_eq!(
            next_local(plugged, 7 * 60, tz),
            Utc.with_ymd_and_hms(2026, 10, 25, 6, 0, 0).unwrap()
        );
        // 2026-03-29: 02:30 does not exist in Brussels; it is taken as 03:30 CEST.
        let before = Utc.with_ymd_and_hms(2026, 3, 28, 22, 0, 0).unwrap();
        assert_eq!(
            next_local(before, 2 * 60 + 30, tz),
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap()
        );
    }
}
