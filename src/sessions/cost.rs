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
