//! The fleet report: one row per site, the fleet's median, p95 and worst of each figure, and
//! per anomaly kind its detections, misses and false alarms, its false alarms per 1,000
//! charger-hours, its detection delays and its sensitivity curve (the detection rate against
//! the injected fault's size). Cycle times are left out, so the same seed gives the same
//! report byte for byte.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use evsite::alerts::AlertKind;
use evsite::simulator::scenario::FaultKind;
use evsite::simulator::vehicle::COMPLIANT_DELAY_S;
use evsite::simulator::Scenario;

use super::generate::FAULTS;
use super::FleetOptions;
use crate::score::{FaultOutcome, Scorecard};

/// Detection rate a rule must reach above its documented sensitivity.
pub const DETECTION_GOAL: f64 = 0.95;
/// Bins of a sensitivity curve.
const BINS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteRow {
    pub index: usize,
    pub name: String,
    pub chargers: usize,
    pub hours: f64,
    pub grid_limit_a: f64,
    pub vehicles: usize,
    /// Share of the visits made by 1-phase cars.
    pub one_phase_share: f64,
    /// Visits by cars slower than the 5 s IEC 61851-1 allows to follow a lower limit.
    pub slow_cars: usize,
    pub overload_s: f64,
    /// The part of `overload_s` while such a car had not yet followed a lower offer.
    pub overload_slow_cars_s: f64,
    pub utilization: f64,
    pub fairness: f64,
    pub energy_wh: f64,
    pub session_energy_error_wh: Option<f64>,
    pub end_time_mae_s: Option<f64>,
    /// The share of end-time estimates whose range held the end.
    pub end_time_in_range: Option<f64>,
    /// Per anomaly kind, the alerts no injected fault explains.
    pub false_alarms: BTreeMap<String, usize>,
    pub faults: Vec<FaultOutcome>,
    /// Injected faults no anomaly rule is meant for (link faults), by kind.
    pub link_faults: Vec<FaultKind>,
    #[serde(skip)]
    pub cycle_ms_p99: f64,
}

impl SiteRow {
    pub fn new(index: usize, s: &Scenario, card: Scorecard) -> SiteRow {
        let one_phase = s.vehicles.iter().filter(|v| v.phases == 1).count();
        SiteRow {
            index,
            name: s.name.clone(),
            chargers: s.chargers.len(),
            hours: s.duration_s / 3600.0,
            grid_limit_a: s.site.grid_limit_a,
            vehicles: card.vehicles,
            one_phase_share: round3(one_phase as f64 / s.vehicles.len().max(1) as f64),
            slow_cars: s
                .vehicles
                .iter()
                .filter(|v| v.response_delay_s > COMPLIANT_DELAY_S)
                .count(),
            overload_s: round3(card.overload_s),
            overload_slow_cars_s: round3(card.overload_slow_cars_s),
            utilization: round3(card.utilization),
            fairness: round3(card.fairness),
            energy_wh: card.energy_wh.round(),
            session_energy_error_wh: card.session_energy_error_wh.map(f64::round),
            end_time_mae_s: card.end_time_mae_s.map(f64::round),
            end_time_in_range: card.end_time_in_range.map(round3),
            false_alarms: card
                .anomalies
                .iter()
                .filter(|(_, k)| k.false_alarms > 0)
                .map(|(name, k)| (name.clone(), k.false_alarms))
                .collect(),
            link_faults: s
                .faults
                .iter()
                .filter(|f| crate::score::anomalies::expected(f.kind).is_none())
                .map(|f| f.kind)
                .collect(),
            faults: card
                .faults
                .into_iter()
                .map(|mut o| {
                    // A rotated charger shows only through an unbalanced draw: its curve is
                    // by the phases of the car it had.
                    if o.fault == FaultKind::SwappedPhase {
                        o.amount = s
                            .vehicles
                            .iter()
                            .find(|v| {
                                v.charger == o.target && v.arrive_s <= o.at_s && o.at_s < v.depart_s
                            })
                            .map(|v| f64::from(v.phases));
                    }
                    o
                })
                .collect(),
            cycle_ms_p99: card.cycle_ms_p99,
        }
    }

    pub fn charger_hours(&self) -> f64 {
        self.chargers as f64 * self.hours
    }

    /// Overload the controller answers for: all of it, less the seconds a slow car lagged.
    pub fn controller_overload_s(&self) -> f64 {
        round3((self.overload_s - self.overload_slow_cars_s).max(0.0))
    }
}

/// A figure over the fleet: its median, its 95th percentile on the bad side (the 5th for a
/// figure where higher is better), and its worst.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub p95: f64,
    pub worst: f64,
    /// Sites with a value.
    pub sites: usize,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64>, higher_is_better: bool) -> Option<Spread> {
        let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        if higher_is_better {
            v.reverse();
        }
        Some(Spread {
            median: round3(quantile(&v, 0.5)),
            p95: round3(quantile(&v, 0.95)),
            worst: round3(v[v.len() - 1]),
            sites: v.len(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// Overload the controller answers for: all of it, less the seconds a car slower than
    /// 5 s had not yet followed a lower offer.
    pub overload_s: Option<Spread>,
    pub sites_with_overload: usize,
    /// Overload while a slow car lagged, and the sites that had such cars.
    pub overload_slow_cars_s: Option<Spread>,
    pub sites_with_slow_cars: usize,
    pub utilization: Option<Spread>,
    pub fairness: Option<Spread>,
    pub session_energy_error_wh: Option<Spread>,
    pub end_time_mae_min: Option<Spread>,
    pub end_time_in_range: Option<Spread>,
}

/// One bin of a sensitivity curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// The fault's size from and to (`null` for a kind without a size).
    pub from: Option<f64>,
    pub to: Option<f64>,
    pub faults: usize,
    pub detected: usize,
    pub rate: Option<f64>,
}

/// Per injected fault kind an anomaly rule is meant for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultReport {
    pub alert: String,
    /// Every injected fault: `detected` + `missed` + `undetectable`.
    pub injected: usize,
    pub detected: usize,
    pub missed: usize,
    /// Faults no measurement the controller has can show (see [`undetectable`]): neither
    /// detected nor missed.
    pub undetectable: usize,
    pub delay_p50_s: Option<f64>,
    pub delay_p95_s: Option<f64>,
    pub curve: Vec<Bin>,
    /// The smallest size from which every bin of larger faults is detected at least
    /// [`DETECTION_GOAL`] of the time (`null`: no such bin yet).
    pub sensitivity: Option<f64>,
}

/// Per anomaly alert kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmReport {
    pub false_alarms: usize,
    pub per_1000_charger_h: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetReport {
    pub seed: u64,
    pub sites: usize,
    pub faults: bool,
    pub charger_hours: f64,
    pub aggregate: Aggregate,
    pub detection: BTreeMap<String, FaultReport>,
    pub false_alarms: BTreeMap<String, AlarmReport>,
    /// Link faults injected (the controller's own offline and fail-safe alerts cover them),
    /// by kind.
    pub link_faults: BTreeMap<String, usize>,
    pub rows: Vec<SiteRow>,
    /// The longest cycle's p99 over the sites (ms): timing, not part of the comparison
    /// between two runs of one seed.
    #[serde(skip)]
    pub cycle_ms_p99_worst: f64,
}

impl FleetReport {
    pub fn new(opts: &FleetOptions, rows: Vec<SiteRow>) -> FleetReport {
        let charger_hours: f64 = rows.iter().map(SiteRow::charger_hours).sum();
        let aggregate = Aggregate {
            overload_s: Spread::of(rows.iter().map(SiteRow::controller_overload_s), false),
            sites_with_overload: rows
                .iter()
                .filter(|r| r.controller_overload_s() > 0.0)
                .count(),
            overload_slow_cars_s: Spread::of(rows.iter().map(|r| r.overload_slow_cars_s), false),
            sites_with_slow_cars: rows.iter().filter(|r| r.slow_cars > 0).count(),
            utilization: Spread::of(rows.iter().map(|r| r.utilization), true),
            fairness: Spread::of(rows.iter().map(|r| r.fairness), true),
            session_energy_error_wh: Spread::of(
                rows.iter().filter_map(|r| r.session_energy_error_wh),
                false,
            ),
            end_time_mae_min: Spread::of(
                rows.iter()
                    .filter_map(|r| r.end_time_mae_s.map(|s| s / 60.0)),
                false,
            ),
            end_time_in_range: Spread::of(rows.iter().filter_map(|r| r.end_time_in_range), true),
        };
        let mut detection = BTreeMap::new();
        for (kind, range) in FAULTS {
            let outcomes: Vec<&FaultOutcome> = rows
                .iter()
                .flat_map(|r| &r.faults)
                .filter(|o| o.fault == kind)
                .collect();
            let Some(first) = outcomes.first() else {
                continue;
            };
            detection.insert(
                name(kind),
                fault_report(first.alert.clone(), &outcomes, range),
            );
        }
        let false_alarms = AlertKind::ANOMALIES
            .iter()
            .map(|k| {
                let n: usize = rows
                    .iter()
                    .filter_map(|r| r.false_alarms.get(k.name()))
                    .sum();
                let rate = if charger_hours > 0.0 {
                    n as f64 * 1000.0 / charger_hours
                } else {
                    0.0
                };
                (
                    k.name().to_string(),
                    AlarmReport {
                        false_alarms: n,
                        per_1000_charger_h: round3(rate),
                    },
                )
            })
            .collect();
        let mut link_faults = BTreeMap::new();
        for k in rows.iter().flat_map(|r| &r.link_faults) {
            *link_faults.entry(name(*k)).or_insert(0) += 1;
        }
        FleetReport {
            seed: opts.seed,
            sites: rows.len(),
            faults: opts.faults,
            charger_hours: charger_hours.round(),
            aggregate,
            detection,
            false_alarms,
            link_faults,
            cycle_ms_p99_worst: rows.iter().map(|r| r.cycle_ms_p99).fold(0.0, f64::max),
            rows,
        }
    }

    /// The report as a person reads it.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "fleet seed {}: {} sites{}, {:.0} charger-hours",
            self.seed,
            self.sites,
            if self.faults { " with faults" } else { "" },
            self.charger_hours
        );
        let _ = writeln!(
            o,
            "\n{:<26} {:>10} {:>10} {:>10} {:>6}",
            "figure", "median", "p95", "worst", "sites"
        );
        let a = &self.aggregate;
        for (label, s) in [
            ("overload_s (controller)", &a.overload_s),
            ("overload_s (slow cars)", &a.overload_slow_cars_s),
            ("utilization (vs ideal)", &a.utilization),
            ("fairness", &a.fairness),
            ("session energy error Wh", &a.session_energy_error_wh),
            ("end-time MAE min", &a.end_time_mae_min),
            ("end in estimate's range", &a.end_time_in_range),
        ] {
            match s {
                Some(s) => {
                    let _ = writeln!(
                        o,
                        "{label:<26} {:>10.3} {:>10.3} {:>10.3} {:>6}",
                        s.median, s.p95, s.worst, s.sites
                    );
                }
                None => {
                    let _ = writeln!(o, "{label:<26} {:>10}", "-");
                }
            }
        }
        let _ = writeln!(
            o,
            "sites with overload: {} (sites with cars slower than 5 s: {})",
            a.sites_with_overload, a.sites_with_slow_cars
        );
        if !self.detection.is_empty() {
            let _ = writeln!(
                o,
                "\n{:<22} {:>8} {:>8} {:>8} {:>9} {:>9} {:>11}  curve (size: detected/injected)",
                "fault", "injected", "detected", "missed", "delay p50", "delay p95", "sensitivity"
            );
            for (kind, f) in &self.detection {
                let curve: Vec<String> = f
                    .curve
                    .iter()
                    .map(|b| match (b.from, b.to) {
                        (Some(lo), Some(hi)) if lo == hi && lo == 3.0 => format!(
                            "{lo}-phase car (balanced: undetectable): {}/{}",
                            b.detected, b.faults
                        ),
                        (Some(lo), Some(hi)) if lo == hi => {
                            format!("{lo}-phase car: {}/{}", b.detected, b.faults)
                        }
                        (Some(lo), Some(hi)) => format!("{lo}–{hi}: {}/{}", b.detected, b.faults),
                        _ => format!("{}/{}", b.detected, b.faults),
                    })
                    .collect();
                let _ = writeln!(
                    o,
                    "{kind:<22} {:>8} {:>8} {:>8} {:>9} {:>9} {:>11}  {}",
                    f.injected,
                    f.detected,
                    f.missed,
                    opt(f.delay_p50_s),
                    opt(f.delay_p95_s),
                    opt(f.sensitivity),
                    curve.join(", ")
                );
            }
        }
        let _ = writeln!(
            o,
            "\n{:<22} {:>12} {:>18}",
            "alert", "false alarms", "per 1000 charger-h"
        );
        for (kind, f) in self.false_alarms.iter().filter(|(_, f)| f.false_alarms > 0) {
            let _ = writeln!(
                o,
                "{kind:<22} {:>12} {:>18.3}",
                f.false_alarms, f.per_1000_charger_h
            );
        }
        if self.false_alarms.values().all(|f| f.false_alarms == 0) {
            let _ = writeln!(o, "(none)");
        }
        o
    }
}

/// Whether a fault is invisible to every meter the controller reads, whatever a rule does: a
/// charger wired rotated while its car draws the same current on all three phases puts the
/// same currents on the same grid phases as one wired right (the amount of a swapped-phase
/// outcome is its car's phases, see [`SiteRow::new`]; a simulated three-phase car is
/// balanced).
pub fn undetectable(o: &FaultOutcome) -> bool {
    o.fault == FaultKind::SwappedPhase && o.amount == Some(3.0) && o.delay_s.is_none()
}

fn fault_report(alert: String, outcomes: &[&FaultOutcome], range: Option<[f64; 2]>) -> FaultReport {
    let invisible = outcomes.iter().filter(|o| undetectable(o)).count();
    let detected = outcomes.iter().filter(|o| o.delay_s.is_some()).count();
    let mut delays: Vec<f64> = outcomes.iter().filter_map(|o| o.delay_s).collect();
    delays.sort_by(f64::total_cmp);
    let (curve, sensitivity) = match range {
        Some([lo, hi]) => {
            let width = (hi - lo) / BINS as f64;
            let curve: Vec<Bin> = (0..BINS)
                .map(|b| {
                    let from = lo + width * b as f64;
                    let to = from + width;
                    let last = b + 1 == BINS;
                    let inside: Vec<_> = outcomes
                        .iter()
                        .filter(|o| {
                            o.amount
                                .is_some_and(|a| a >= from && (a < to || (last && a <= to)))
                        })
                        .collect();
                    bin(Some(round3(from)), Some(round3(to)), &inside)
                })
                .collect();
            // Faults grow away from 1 (a gain below 1, a jump or gain above it).
            let larger_is_bigger = lo >= 1.0;
            let mut sensitivity = None;
            let order: Vec<&Bin> = if larger_is_bigger {
                curve.iter().rev().collect()
            } else {
                curve.iter().collect()
            };
            for b in order {
                match b.rate {
                    Some(r) if r >= DETECTION_GOAL => {
                        sensitivity = if larger_is_bigger { b.from } else { b.to }
                    }
                    Some(_) => break,
                    None => {}
                }
            }
            (curve, sensitivity)
        }
        None if outcomes.iter().all(|o| o.fault == FaultKind::SwappedPhase) => {
            let by_phases = |n: f64| {
                let inside: Vec<_> = outcomes.iter().filter(|o| o.amount == Some(n)).collect();
                bin(Some(n), Some(n), &inside)
            };
            (vec![by_phases(1.0), by_phases(3.0)], None)
        }
        None => (
            vec![bin(None, None, &outcomes.iter().collect::<Vec<_>>())],
            None,
        ),
    };
    FaultReport {
        alert,
        injected: outcomes.len(),
        detected,
        missed: outcomes.len() - detected - invisible,
        undetectable: invisible,
        delay_p50_s: (!delays.is_empty()).then(|| round3(quantile(&delays, 0.5))),
        delay_p95_s: (!delays.is_empty()).then(|| round3(quantile(&delays, 0.95))),
        curve,
        sensitivity,
    }
}

fn bin(from: Option<f64>, to: Option<f64>, inside: &[&&FaultOutcome]) -> Bin {
    let detected = inside.iter().filter(|o| o.delay_s.is_some()).count();
    Bin {
        from,
        to,
        faults: inside.len(),
        detected,
        rate: (!inside.is_empty()).then(|| round3(detected as f64 / inside.len() as f64)),
    }
}

/// A fault kind's name as scenario files write it.
pub fn name(kind: FaultKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// The `q` quantile of sorted `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v}"))
}
