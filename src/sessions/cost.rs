//! A session's cost from its tariff snapshot, its per-minute energy and its times: pure,
//! exact decimal arithmetic, one cost line per window used, fee and idle charge.
//!
//! Rounding rule (docs/tariffs.md): energy is summed per window in exact decimal Wh, then
//! shown as kWh to 0.001 (whole Wh); each line's amount is its quantity times its unit price
//! rounded half away from zero to the currency's minor unit; the total is the sum of the
//! rounded lines, so a receipt always adds up.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::tariff::TariffSnapshot;

/// Commercial rounding: 0.125 becomes 0.13, as on a till receipt.
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Decimals shown for kWh quantities: whole Wh, the contract's energy unit.
const KWH_DP: u32 = 3;
/// Decimals shown for the time fee's hours; the amount itself is computed from minutes.
const HOURS_DP: u32 = 4;

/// Why no cost could be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CostError {
    #[error("energy sample at {at} is not a finite number of Wh: {wh}")]
    Energy { at: DateTime<Utc>, wh: f64 },
    #[error("the {what} amount does not fit a decimal")]
    Overflow { what: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    Energy,
    SessionFee,
    IdleFee,
    TimeFee,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "kWh")]
    Kwh,
    #[serde(rename = "session")]
    Session,
    #[serde(rename = "min")]
    Minute,
    #[serde(rename = "h")]
    Hour,
}

/// One line of the bill. Money and quantities serialize as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLine {
    pub kind: CostKind,
    pub label: String,
    pub quantity: Decimal,
    pub unit: Unit,
    pub unit_price: Decimal,
    /// Rounded to the currency's minor unit.
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    pub currency: String,
    /// The sum of the lines' amounts.
    pub total: Decimal,
    pub lines: Vec<CostLine>,
}

/// Decimals of the currency's minor unit (ISO 4217); 2 unless listed.
pub fn minor_units(currency: &str) -> u32 {
    const ZERO: [&str; 17] = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
        "VUV", "XAF", "XOF", "XPF",
    ];
    const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    const FOUR: [&str; 2] = ["CLF", "UYW"];
    if ZERO.contains(&currency) {
        0
    } else if THREE.contains(&currency) {
        3
    } else if FOUR.contains(&currency) {
        4
    } else {
        2
    }
}

/// `value` rounded to `dp` decimals and shown with exactly `dp` ("1.50", not "1.5").
fn fixed(value: Decimal, dp: u32) -> Decimal {
    let mut v = value.round_dp_with_strategy(dp, ROUNDING);
    v.rescale(dp);
    v
}

/// Whole minutes from `from` to `to`, counting only completed minutes; 0 if `to` is not later.
fn whole_minutes(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_minutes().max(0)
}

/// Per-minute Wh as an exact decimal to 0.001 Wh, which strips f64 noise (0.1 + 0.2) while
/// keeping far more precision than the whole Wh shown. A negative reading (a counter
/// glitch: vehicles here never feed back) counts as nothing, never as a credit.
fn sample_wh(at: DateTime<Utc>, wh: f64) -> Result<Decimal, CostError> {
    if !wh.is_finite() {
        return Err(CostError::Energy { at, wh });
    }
    if wh <= 0.0 {
        return Ok(Decimal::ZERO);
    }
    let exact = Decimal::from_f64(wh).ok_or(CostError::Energy { at, wh })?;
    Ok(exact.round_dp_with_strategy(3, ROUNDING))
}

struct Line {
    kind: CostKind,
    label: String,
    quantity: Decimal,
    unit: Unit,
    unit_price: Decimal,
    /// Unrounded amount; defaults to quantity × unit price.
    exact: Option<Decimal>,
    what: &'static str,
}

/// The cost of a session: `samples` are `(minute start, Wh delivered in that minute)`,
/// each priced at the rate in force at its minute's start. `charging_complete_at` starts
/// the idle clock (no idle fee if the vehicle never finished); `ended_at` is unplug time,
/// or now for a running session. Times are real elapsed minutes, so a DST change neither
/// adds nor removes idle or plugged-in time.
pub fn cost(
    tariff: &TariffSnapshot,
    samples: &[(DateTime<Utc>, f64)],
    plugged_in_at: DateTime<Utc>,
    charging_complete_at: Option<DateTime<Utc>>,
    ended_at: DateTime<Utc>,
) -> Result<Cost, CostError> {
    let dp = minor_units(&tariff.currency);
    let overflow = |what: &'static str| CostError::Overflow { what };
    let mut lines = Vec::new();

    // Exact Wh per window, in order of first use: summing before converting means a
    // window's kWh is rounded once, not once per minute.
    let mut per_window: Vec<(Option<usize>, Decimal)> = Vec::new();
    for &(at, wh) in samples {
        let wh = sample_wh(at, wh)?;
        let window = tariff.rate_at(at).window;
        match per_window.iter_mut().find(|(w, _)| *w == window) {
            Some((_, sum)) => *sum = sum.checked_add(wh).ok_or(overflow("energy"))?,
            None => per_window.push((window, wh)),
        }
    }
    for (window, wh) in per_window {
        let kwh = fixed(wh / Decimal::ONE_THOUSAND, KWH_DP);
        if kwh.is_zero() {
            continue;
        }
        let (label, price) = match window.and_then(|i| tariff.windows.get(i)) {
            Some(w) => (w.label.clone(), w.energy_price),
            None => (
                super::tariff::STANDARD_LABEL.to_owned(),
                tariff.energy_price,
            ),
        };
        lines.push(Line {
            kind: CostKind::Energy,
            label,
            quantity: kwh,
            unit: Unit::Kwh,
            unit_price: price,
            exact: None,
            what: "energy",
        });
    }

    if !tariff.session_fee.is_zero() {
        lines.push(Line {
            kind: CostKind::SessionFee,
            label: "session fee".to_owned(),
            quantity: Decimal::ONE,
            unit: Unit::Session,
            unit_price: tariff.session_fee,
            exact: None,
            what: "session fee",
        });
    }

    let plugged_min = whole_minutes(plugged_in_at, ended_at);
    if !tariff.time_fee_per_hour.is_zero() && plugged_min > 0 {
        let minutes = Decimal::from(plugged_min);
        let exact = minutes
            .checked_mul(tariff.time_fee_per_hour)
            .and_then(|m| m.checked_div(Decimal::from(60)))
            .ok_or(overflow("time fee"))?;
        lines.push(Line {
            kind: CostKind::TimeFee,
            label: "time plugged in".to_owned(),
            quantity: fixed(minutes / Decimal::from(60), HOURS_DP),
            unit: Unit::Hour,
            unit_price: tariff.time_fee_per_hour,
            exact: Some(exact),
            what: "time fee",
        });
    }

    let idle_from = charging_complete_at
        .and_then(|c| c.checked_add_signed(Duration::minutes(tariff.idle_grace_min.into())));
    if let Some(from) = idle_from {
        let idle_min = whole_minutes(from, ended_at);
        if !tariff.idle_fee_per_min.is_zero() && idle_min > 0 {
            lines.push(Line {
                kind: CostKind::IdleFee,
                label: format!("idle after {} min grace", tariff.idle_grace_min),
                quantity: Decimal::from(idle_min),
                unit: Unit::Minute,
                unit_price: tariff.idle_fee_per_min,
                exact: None,
                what: "idle fee",
            });
        }
    }

    let mut total = Decimal::ZERO;
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        let exact = match l.exact {
            Some(e) => e,
            None => l
                .quantity
                .checked_mul(l.unit_price)
                .ok_or(overflow(l.what))?,
        };
        let amount = fixed(exact, dp);
        total = total.checked_add(amount).ok_or(overflow("total"))?;
        out.push(CostLine {
            kind: l.kind,
            label: l.label,
            quantity: l.quantity,
            unit: l.unit,
            unit_price: l.unit_price,
            amount,
        });
    }
    Ok(Cost {
        currency: tariff.currency.clone(),
        total: fixed(total, dp),
        lines: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::tariff::{parse_amount, TouWindow};
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn snapshot(tz: &str, windows: &[(&str, &str, &str)]) -> TariffSnapshot {
        TariffSnapshot {
            currency: "EUR".into(),
            energy_price: dec!(0.30),
            session_fee: dec!(0.00),
            idle_fee_per_min: dec!(0.00),
            idle_grace_min: 0,
            time_fee_per_hour: dec!(0.00),
            timezone: tz.parse().unwrap(),
            windows: windows
                .iter()
                .map(|(start, end, price)| {
                    TouWindow::new(
                        start.parse().unwrap(),
                        end.parse().unwrap(),
                        parse_amount(price).unwrap(),
                        vec![],
                    )
                })
                .collect(),
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
    }

    /// `n` consecutive minutes from `from`, each delivering `wh`.
    fn minutes(from: DateTime<Utc>, n: i64, wh: f64) -> Vec<(DateTime<Utc>, f64)> {
        (0..n).map(|i| (from + Duration::minutes(i), wh)).collect()
    }

    fn energy(c: &Cost) -> Vec<(&str, Decimal, Decimal)> {
        c.lines
            .iter()
            .filter(|l| l.kind == CostKind::Energy)
            .map(|l| (l.label.as_str(), l.quantity, l.amount))
            .collect()
    }

    fn sum_of_lines(c: &Cost) -> Decimal {
        c.lines.iter().map(|l| l.amount).sum()
    }

    #[test]
    fn energy_splits_across_two_windows() {
        let t = snapshot("Europe/Berlin", &[("17:00", "21:00", "0.45")]);
        // 15:00–17:00Z is 16:00–18:00 local in January: one hour each side of 17:00.
        let start = utc(2026, 1, 16, 15, 0);
        let c = cost(
            &t,
            &minutes(start, 120, 50.0),
            start,
            None,
            utc(2026, 1, 16, 17, 0),
        )
        .unwrap();
        assert_eq!(
            energy(&c),
            vec![
                ("standard", dec!(3.000), dec!(0.90)),
                ("17:00-21:00", dec!(3.000), dec!(1.35)),
            ]
        );
        assert_eq!(c.lines.len(), 2);
        assert_eq!(c.total, dec!(2.25));
        assert_eq!(c.currency, "EUR");
    }

    #[test]
    fn window_across_midnight_prices_both_days() {
        let t = snapshot("UTC", &[("22:00", "06:00", "0.12")]);
        let start = utc(2026, 1, 16, 21, 30);
        let c = cost(
            &t,
            &minutes(start, 180, 20.0),
            start,
            None,
            utc(2026, 1, 17, 0, 30),
        )
        .unwrap();
        assert_eq!(
            energy(&c),
            vec![
                ("standard", dec!(0.600), dec!(0.18)),
                ("22:00-06:00", dec!(3.000), dec!(0.36)),
            ]
        );
        assert_eq!(c.total, dec!(0.54));
    }

    #[test]
    fn autumn_dst_prices_the_repeated_hour_twice_and_bills_real_time() {
        let mut t = snapshot("Europe/Berlin", &[("02:00", "03:00", "0.10")]);
        t.time_fee_per_hour = dec!(1.00);
        // 23:00Z–03:00Z spans 01:00 CEST … 02:00 CEST, 02:00 CET … 04:00 CET: four real hours,
        // two of them in local 02:00–03:00.
        let start = utc(2026, 10, 24, 23, 0);
        let end = utc(2026, 10, 25, 3, 0);
        let c = cost(&t, &minutes(start, 240, 100.0), start, None, end).unwrap();
        assert_eq!(
            energy(&c),
            vec![
                ("standard", dec!(12.000), dec!(3.60)),
                ("02:00-03:00", dec!(12.000), dec!(1.20)),
            ]
        );
        let time = c
            .lines
            .iter()
            .find(|l| l.kind == CostKind::TimeFee)
            .unwrap();
        assert_eq!((time.quantity, time.amount), (dec!(4.0000), dec!(4.00)));
        assert_eq!(c.total, dec!(8.80));
    }

    #[test]
    fn spring_dst_never_prices_the_missing_hour() {
        // 00:00Z–03:00Z on 2026-03-29 is local 01:00–02:00 CET then 03:00–05:00 CEST.
        let start = utc(2026, 3, 29, 0, 0);
        let end = utc(2026, 3, 29, 3, 0);
        let samples = minutes(start, 180, 100.0);

        let t = snapshot("Europe/Berlin", &[("02:00", "03:00", "0.10")]);
        let c = cost(&t, &samples, start, None, end).unwrap();
        assert_eq!(energy(&c), vec![("standard", dec!(18.000), dec!(5.40))]);

        // A window around the gap holds only the two hours that really happen in it.
        let t = snapshot("Europe/Berlin", &[("01:00", "04:00", "0.20")]);
        let c = cost(&t, &samples, start, None, end).unwrap();
        assert_eq!(
            energy(&c),
            vec![
                ("01:00-04:00", dec!(12.000), dec!(2.40)),
                ("standard", dec!(6.000), dec!(1.80)),
            ]
        );
    }

    #[test]
    fn idle_fee_counts_whole_minutes_after_the_grace_period() {
        let mut t = snapshot("UTC", &[]);
        t.idle_fee_per_min = dec!(0.10);
        t.idle_grace_min = 30;
        let plug = utc(2026, 1, 16, 8, 0);
        let done = utc(2026, 1, 16, 10, 0);
        let idle = |ended: DateTime<Utc>, complete: Option<DateTime<Utc>>| {
            let c = cost(&t, &[], plug, complete, ended).unwrap();
            c.lines
                .iter()
                .find(|l| l.kind == CostKind::IdleFee)
                .map(|l| (l.quantity, l.unit, l.amount))
        };
        let ended = utc(2026, 1, 16, 11, 15) + Duration::seconds(30);
        assert_eq!(
            idle(ended, Some(done)),
            Some((dec!(45), Unit::Minute, dec!(4.50)))
        );
        // Within the grace period, at its very end, or never finished: no idle charge.
        assert_eq!(idle(utc(2026, 1, 16, 10, 29), Some(done)), None);
        assert_eq!(idle(utc(2026, 1, 16, 10, 30), Some(done)), None);
        assert_eq!(
            idle(utc(2026, 1, 16, 10, 31), Some(done)).unwrap().0,
            dec!(1)
        );
        assert_eq!(idle(ended, None), None);
    }

    #[test]
    fn session_fee_is_one_line_only_when_set() {
        let mut t = snapshot("UTC", &[]);
        let at = utc(2026, 1, 16, 8, 0);
        assert!(cost(&t, &[], at, None, at).unwrap().lines.is_empty());
        t.session_fee = dec!(0.5);
        let c = cost(&t, &[], at, None, at).unwrap();
        assert_eq!(c.lines.len(), 1);
        let l = &c.lines[0];
        assert_eq!(
            (l.kind, l.unit, l.quantity),
            (CostKind::SessionFee, Unit::Session, dec!(1))
        );
        assert_eq!(l.amount.to_string(), "0.50");
        assert_eq!(c.total.to_string(), "0.50");
    }

    #[test]
    fn time_fee_is_pro_rata_per_whole_minute_plugged_in() {
        let mut t = snapshot("UTC", &[]);
        t.time_fee_per_hour = dec!(1.20);
        let plug = utc(2026, 1, 16, 8, 0);
        let fee = |t: &TariffSnapshot, ended: DateTime<Utc>| {
            let c = cost(t, &[], plug, None, ended).unwrap();
            let l = c
                .lines
                .iter()
                .find(|l| l.kind == CostKind::TimeFee)
                .cloned();
            l.map(|l| (l.quantity, l.unit, l.amount))
        };
        let ended = plug + Duration::minutes(100) + Duration::seconds(59);
        assert_eq!(fee(&t, ended), Some((dec!(1.6667), Unit::Hour, dec!(2.00))));
        assert_eq!(fee(&t, plug + Duration::seconds(59)), None);
        t.time_fee_per_hour = dec!(1.00);
        // 7 min at 1.00/h is 0.11666…, which rounds up; the quantity's own rounding is not
        // what is charged.
        assert_eq!(fee(&t, plug + Duration::minutes(7)).unwrap().2, dec!(0.12));
        t.time_fee_per_hour = dec!(0.10);
        // 3 min at 0.10/h is exactly 0.005: half away from zero.
        assert_eq!(fee(&t, plug + Duration::minutes(3)).unwrap().2, dec!(0.01));
    }

    #[test]
    fn rounding_is_half_away_from_zero_per_line_and_the_total_adds_up() {
        let at = utc(2026, 1, 16, 8, 0);
        let mut t = snapshot("UTC", &[]);
        // 1 kWh at 0.125 is 0.125: 0.13 (banker's rounding would give 0.12).
        t.energy_price = dec!(0.125);
        let c = cost(&t, &[(at, 1000.0)], at, None, at).unwrap();
        assert_eq!(c.total, dec!(0.13));

        // 3 kWh at 0.415 is 1.245: 1.25.
        t.energy_price = dec!(0.415);
        let c = cost(&t, &[(at, 3000.0)], at, None, at).unwrap();
        assert_eq!(c.total, dec!(1.25));

        // Two lines of exactly 0.005 each: 0.01 + 0.01 = 0.02, where rounding the unrounded
        // sum (0.010) would give 0.01. The total is always the sum of what the lines show.
        t.energy_price = dec!(1.00);
        t.idle_fee_per_min = dec!(0.005);
        let c = cost(&t, &[(at, 5.0)], at, Some(at), at + Duration::minutes(1)).unwrap();
        let amounts: Vec<_> = c.lines.iter().map(|l| l.amount).collect();
        assert_eq!(amounts, vec![dec!(0.01), dec!(0.01)]);
        assert_eq!(c.total, dec!(0.02));
        assert_eq!(c.total, sum_of_lines(&c));

        // kWh is rounded once per window, from the exact Wh sum: 1500.5 Wh is 1.501 kWh.
        t.idle_fee_per_min = dec!(0);
        let c = cost(&t, &minutes(at, 2, 750.25), at, None, at).unwrap();
        assert_eq!(c.lines[0].quantity, dec!(1.501));
        assert_eq!(c.lines[0].amount, dec!(1.50));
    }

    #[test]
    fn currencies_without_cents_round_to_whole_units() {
        let at = utc(2026, 1, 16, 8, 0);
        let mut t = snapshot("Asia/Tokyo", &[]);
        t.currency = "JPY".into();
        t.energy_price = dec!(30.5);
        let c = cost(&t, &[(at, 1000.0)], at, None, at).unwrap();
        assert_eq!(c.total.to_string(), "31");
        assert_eq!(minor_units("KWD"), 3);
        assert_eq!(minor_units("EUR"), 2);
    }

    #[test]
    fn float_noise_and_glitches_in_samples() {
        let at = utc(2026, 1, 16, 8, 0);
        let t = snapshot("UTC", &[]);
        // Ten minutes of 100.1 Wh sum to exactly 1001 Wh, whatever f64 addition would say.
        let c = cost(&t, &minutes(at, 10, 100.1), at, None, at).unwrap();
        assert_eq!(c.lines[0].quantity, dec!(1.001));
        // A negative reading neither charges nor credits.
        let samples = vec![(at, 1000.0), (at + Duration::minutes(1), -400.0)];
        let c = cost(&t, &samples, at, None, at).unwrap();
        assert_eq!(c.lines[0].quantity, dec!(1.000));
        // A non-number is refused rather than billed.
        let err = cost(&t, &[(at, f64::NAN)], at, None, at).unwrap_err();
        assert!(matches!(err, CostError::Energy { .. }));
    }

    #[test]
    fn serializes_money_and_quantities_as_strings() {
        let mut t = snapshot("Europe/Berlin", &[("17:00", "21:00", "0.45")]);
        t.session_fee = dec!(0.5);
        let start = utc(2026, 1, 16, 15, 0);
        let c = cost(
            &t,
            &minutes(start, 120, 50.0),
            start,
            None,
            utc(2026, 1, 16, 17, 0),
        )
        .unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["currency"], "EUR");
        assert_eq!(json["total"], "2.75");
        let first = &json["lines"][0];
        assert_eq!(first["kind"], "energy");
        assert_eq!(first["label"], "standard");
        assert_eq!(first["quantity"], "3.000");
        assert_eq!(first["unit"], "kWh");
        assert_eq!(first["unit_price"], "0.30");
        assert_eq!(first["amount"], "0.90");
        assert_eq!(json["lines"][2]["kind"], "session_fee");
        assert_eq!(json["lines"][2]["unit"], "session");
        assert_eq!(json["lines"][2]["amount"], "0.50");
        let back: Cost = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn total_is_the_sum_of_lines_and_energy_is_kept(
                wh in proptest::collection::vec(0.0f64..2000.0, 0..600),
                start_min in 0i64..(7 * 24 * 60),
                price in 0u32..1000,
                idle_fee in 0u32..100,
                grace in 0u32..120,
            ) {
                let mut t = snapshot(
                    "Europe/Berlin",
                    &[("22:00", "06:00", "0.1"), ("17:00", "21:00", "0.45")],
                );
                t.energy_price = Decimal::new(price.into(), 3);
                t.idle_fee_per_min = Decimal::new(idle_fee.into(), 3);
                t.idle_grace_min = grace;
                t.session_fee = dec!(0.99);
                t.time_fee_per_hour = dec!(0.37);
                let start = utc(2026, 10, 22, 0, 0) + Duration::minutes(start_min);
                let samples: Vec<_> = wh
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (start + Duration::minutes(i as i64), *w))
                    .collect();
                let end = start + Duration::minutes(wh.len() as i64 + 45);
                let done = start + Duration::minutes(wh.len() as i64);
                let c = cost(&t, &samples, start, Some(done), end).unwrap();

                prop_assert_eq!(c.total, sum_of_lines(&c));
                for l in &c.lines {
                    prop_assert_eq!(l.amount.scale(), 2);
                    prop_assert!(l.amount >= Decimal::ZERO);
                }
                // Per-window rounding to whole Wh loses at most half a Wh per line.
                let exact: Decimal = wh
                    .iter()
                    .map(|w| Decimal::from_f64(*w).unwrap().round_dp_with_strategy(3, ROUNDING))
                    .sum::<Decimal>()
                    / Decimal::ONE_THOUSAND;
                let shown: Decimal = energy(&c).iter().map(|(_, q, _)| *q).sum();
                prop_assert!((exact - shown).abs() <= dec!(0.0005) * Decimal::from(3));
            }
        }
    }
}
