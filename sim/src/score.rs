//! The scorecard of a simulated run (contract: "Simulator scorecard"): what the controller
//! achieved, measured from the simulator's truth, never from the controller's own view.

use serde::Serialize;

pub mod anomalies;
pub mod demand;
pub mod sessions;

pub use anomalies::{AnomalyLog, FaultOutcome, KindScore};
pub use sessions::{SessionLog, SessionScore};

use std::collections::BTreeMap;

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;

use evsite::config::Config;
use evsite::simulator::{Scenario, SiteModel};

use demand::{DemandAcc, PlanLog};

/// Vehicles may take this long to follow a lower limit (IEC 61851); only time over a limit
/// beyond it counts as overload.
pub const RESPONSE_WINDOW_S: f64 = 5.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    pub scenario: String,
    pub seed: u64,
    pub duration_s: f64,
    /// Seconds any phase of any limit (site or circuit) was above it for longer than the
    /// vehicles' response window.
    pub overload_s: f64,
    /// The part of `overload_s` during which a car slower than the 5 s IEC 61851-1 allows had
    /// not yet followed a lower offer: the car's doing, scored apart from the controller's.
    pub overload_slow_cars_s: f64,
    /// Energy delivered ÷ energy the ideal controller delivered under the same limits.
    pub utilization: f64,
    /// Jain's index over equal-priority vehicles' share (energy ÷ the ideal's energy for the
    /// same vehicle), averaged over priority classes weighted by their size.
    pub fairness: f64,
    pub energy_wh: f64,
    pub ideal_energy_wh: f64,
    /// Vehicle visits in the scenario that plugged in.
    pub vehicles: usize,
    /// Sessions the controller recorded; the largest difference between a recorded
    /// session's energy and what its vehicle really took; the mean absolute error of the
    /// end-time estimates made while charging (`null` when none was made), and the share of
    /// them whose range (`estimated_end_earliest` to `estimated_end_latest`) held the end.
    pub sessions: Option<usize>,
    pub session_energy_error_wh: Option<f64>,
    pub end_time_mae_s: Option<f64>,
    pub end_time_in_range: Option<f64>,
    /// For returning vehicles (a token seen on an earlier visit) only, the end-time error of
    /// the estimates made while charging: with their own history, and with the site's alone,
    /// the same cycles fed to both. Absent when the scenario has no returning vehicle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_end_time_mae_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_end_time_mae_site_s: Option<f64>,
    /// Alerts raised by the controller.
    pub alerts: usize,
    pub cycles: usize,
    pub cycle_ms_p50: f64,
    pub cycle_ms_p99: f64,
    /// Highest current seen on any site phase, and the site limit.
    pub peak_grid_a: f64,
    pub grid_limit_a: f64,
    /// Per anomaly alert kind: injected faults detected and missed, false alarms, and the
    /// longest detection delay (see [`anomalies`]). Not counted in `alerts`, which stays
    /// the controller's own.
    pub anomalies: BTreeMap<String, KindScore>,
    /// Each injected fault an anomaly rule should catch, and what became of it (absent on a
    /// run without such faults).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultOutcome>,
    /// The highest clock-aligned window's average import (kW), as the utility bills it; the
    /// scenario's `[demand] limit_kw` (null without one); the windows above it, and of those
    /// the ones whose building load alone was above it (no controller could help those).
    pub peak_demand_kw: f64,
    pub demand_limit_kw: Option<f64>,
    pub demand_overshoot_windows: usize,
    pub building_over_windows: usize,
    pub ideal_peak_demand_kw: f64,
    /// What the chargers' energy cost at the site's tariff (null without one), per kWh, and
    /// the same for the ideal controller.
    pub energy_cost: Option<Decimal>,
    pub cost_per_kwh: Option<Decimal>,
    pub ideal_energy_cost: Option<Decimal>,
    pub ideal_cost_per_kwh: Option<Decimal>,
    /// Visits with a departure plan: how many had their energy (or all the car would take)
    /// by the deadline, how many the car's power and need allowed, how many there were.
    pub plans_met: usize,
    pub plans_feasible: usize,
    pub plans_total: usize,
    /// The offline optimum of a shaped run (a demand target, plans or schedules; null
    /// otherwise, see [`crate::optimum`]): its energy, the real energy's share of it, what
    /// its energy cost and per kWh, and the plans it was held to.
    pub optimum_energy_wh: Option<f64>,
    pub optimum_utilization: Option<f64>,
    pub optimum_energy_cost: Option<Decimal>,
    pub optimum_cost_per_kwh: Option<Decimal>,
    pub optimum_plans_held: Option<usize>,
}

impl Scorecard {
    /// False alarms over every anomaly kind.
    pub fn false_alarms(&self) -> usize {
        self.anomalies.values().map(|k| k.false_alarms).sum()
    }

    /// Injected faults no alert caught.
    pub fn missed(&self) -> usize {
        self.anomalies.values().map(|k| k.missed).sum()
    }
}

/// What the scorer reads off the real site each step.
pub struct Sample {
    pub grid_a: [f64; 3],
    pub circuits_a: Vec<[f64; 3]>,
    /// A car slower than the standard's 5 s has not yet followed a lower offer.
    pub slow_car_lagging: bool,
}

impl Sample {
    pub fn of(site: &SiteModel) -> Sample {
        Sample {
            grid_a: site.grid_current_a(),
            circuits_a: site
                .circuits()
                .iter()
                .map(|(id, _)| site.circuit_current_a(id).unwrap_or_default())
                .collect(),
            slow_car_lagging: site.slow_car_lagging(),
        }
    }
}

pub struct Scorer {
    card: Scorecard,
    /// (limit, phases) per constraint: the site first, then circuits in site order.
    limits: Vec<f64>,
    phases: usize,
    /// Per constraint and phase: when it went over its limit.
    over_since: Vec<[Option<f64>; 3]>,
    t_s: f64,
    priorities: Vec<(String, u8)>,
    demand: DemandAcc,
    ideal_demand: DemandAcc,
    plans: PlanLog,
}

impl Scorer {
    pub fn new(scenario: &Scenario, site: &SiteModel, cfg: &Config) -> Scorer {
        let mut limits = vec![cfg.site.grid_limit_a];
        limits.extend(site.circuits().iter().map(|(_, l)| *l));
        Scorer {
            card: Scorecard {
                scenario: scenario.name.clone(),
                seed: scenario.seed,
                duration_s: scenario.duration_s,
                overload_s: 0.0,
                overload_slow_cars_s: 0.0,
                utilization: 0.0,
                fairness: 1.0,
                energy_wh: 0.0,
                ideal_energy_wh: 0.0,
                vehicles: 0,
                sessions: None,
                session_energy_error_wh: None,
                end_time_mae_s: None,
                end_time_in_range: None,
                recurring_end_time_mae_s: None,
                recurring_end_time_mae_site_s: None,
                alerts: 0,
                cycles: 0,
                cycle_ms_p50: 0.0,
                cycle_ms_p99: 0.0,
                peak_grid_a: 0.0,
                grid_limit_a: cfg.site.grid_limit_a,
                anomalies: BTreeMap::new(),
                faults: Vec::new(),
                peak_demand_kw: 0.0,
                demand_limit_kw: cfg.demand.as_ref().map(|d| d.limit_kw),
                demand_overshoot_windows: 0,
                building_over_windows: 0,
                ideal_peak_demand_kw: 0.0,
                energy_cost: None,
                cost_per_kwh: None,
                ideal_energy_cost: None,
                ideal_cost_per_kwh: None,
                optimum_energy_wh: None,
                optimum_utilization: None,
                optimum_energy_cost: None,
                optimum_cost_per_kwh: None,
                optimum_plans_held: None,
                plans_met: 0,
                plans_feasible: 0,
                plans_total: 0,
            },
            demand: DemandAcc::new(cfg),
            ideal_demand: DemandAcc::new(cfg),
            plans: PlanLog::new(scenario, cfg),
            over_since: vec![[None; 3]; limits.len()],
            limits,
            phases: usize::from(cfg.site.phases),
            t_s: 0.0,
            priorities: cfg
                .chargers
                .iter()
                .map(|c| (c.id.clone(), c.priority))
                .collect(),
        }
    }

    /// Account the real site's demand, cost and plans for a step of `dt_s` ending now.
    pub fn sample_shaping(&mut self, site: &SiteModel, dt_s: f64) {
        self.demand.sample(site, site.wall_time(), dt_s);
        self.plans.observe(site);
    }

    /// The same for the ideal controller's twin.
    pub fn sample_ideal(&mut self, site: &SiteModel, dt_s: f64) {
        self.ideal_demand.sample(site, site.wall_time(), dt_s);
    }

    /// Account one step of `dt_s` ending now.
    pub fn sample(&mut self, s: &Sample, dt_s: f64) {
        self.t_s += dt_s;
        let t = self.t_s;
        let values = std::iter::once(&s.grid_a).chain(&s.circuits_a);
        for ((limit, since), amps) in self.limits.iter().zip(&mut self.over_since).zip(values) {
            for p in 0..self.phases {
                if amps[p] > limit + 1e-6 {
                    let start = *since[p].get_or_insert(t - dt_s);
                    if t - start > RESPONSE_WINDOW_S {
                        let over = (t - start - RESPONSE_WINDOW_S).min(dt_s);
                        self.card.overload_s += over;
                        if s.slow_car_lagging {
                            self.card.overload_slow_cars_s += over;
                        }
                    }
                } else {
                    since[p] = None;
                }
            }
        }
        let peak = s
            .grid_a
            .iter()
            .take(self.phases)
            .copied()
            .fold(0.0, f64::max);
        self.card.peak_grid_a = self.card.peak_grid_a.max(peak);
    }

    pub fn finish(
        &mut self,
        real: &SiteModel,
        ideal: &SiteModel,
        mut cycles: Vec<f64>,
        alerts: usize,
    ) {
        let got = real.vehicle_truth();
        let best = ideal.vehicle_truth();
        self.card.energy_wh = got.iter().map(|v| v.energy_wh).sum();
        self.card.ideal_energy_wh = best.iter().map(|v| v.energy_wh).sum();
        self.card.utilization = if self.card.ideal_energy_wh > 0.0 {
            self.card.energy_wh / self.card.ideal_energy_wh
        } else {
            1.0
        };
        if std::env::var_os("EVSITE_SIM_DEBUG").is_some() {
            for (g, b) in got.iter().zip(&best) {
                eprintln!(
                    "{:>8} arrive {:>6.0} depart {:>6.0}: {:>8.0} Wh vs ideal {:>8.0} Wh (soc {:.2} vs {:.2})",
                    g.charger, g.arrive_s, g.depart_s, g.energy_wh, b.energy_wh, g.soc, b.soc
                );
            }
        }
        self.card.vehicles = got
            .iter()
            .filter(|v| v.arrive_s < self.card.duration_s)
            .count();
        let mut classes: Vec<(u8, Vec<f64>)> = Vec::new();
        for (g, b) in got.iter().zip(&best) {
            if b.energy_wh < 1.0 {
                continue;
            }
            let prio = self
                .priorities
                .iter()
                .find(|(id, _)| *id == g.charger)
                .map_or(0, |(_, p)| *p);
            let share = g.energy_wh / b.energy_wh;
            match classes.iter_mut().find(|(p, _)| *p == prio) {
                Some((_, xs)) => xs.push(share),
                None => classes.push((prio, vec![share])),
            }
        }
        let n: usize = classes.iter().map(|(_, xs)| xs.len()).sum();
        if n > 0 {
            self.card.fairness = classes
                .iter()
                .map(|(_, xs)| jain(xs) * xs.len() as f64)
                .sum::<f64>()
                / n as f64;
        }
        self.demand.close();
        self.ideal_demand.close();
        self.card.peak_demand_kw = round3(self.demand.peak_kw);
        self.card.ideal_peak_demand_kw = round3(self.ideal_demand.peak_kw);
        self.card.demand_overshoot_windows = self.demand.over_windows;
        self.card.building_over_windows = self.demand.building_over_windows;
        self.card.energy_cost = self.demand.cost();
        self.card.ideal_energy_cost = self.ideal_demand.cost();
        self.card.cost_per_kwh = per_kwh(self.card.energy_cost, self.card.energy_wh);
        self.card.ideal_cost_per_kwh =
            per_kwh(self.card.ideal_energy_cost, self.card.ideal_energy_wh);
        (
            self.card.plans_met,
            self.card.plans_feasible,
            self.card.plans_total,
        ) = self.plans.score(real);
        self.card.alerts = alerts;
        self.card.cycles = cycles.len();
        cycles.sort_by(f64::total_cmp);
        self.card.cycle_ms_p50 = percentile(&cycles, 0.50);
        self.card.cycle_ms_p99 = percentile(&cycles, 0.99);
    }

    /// The session fields, from what the controller recorded.
    pub fn record_sessions(&mut self, s: SessionScore) {
        self.card.sessions = Some(s.sessions);
        self.card.session_energy_error_wh = Some(s.energy_error_wh);
        self.card.end_time_mae_s = s.end_time_mae_s;
        self.card.end_time_in_range = s.end_time_in_range;
    }

    /// The end-time errors of returning vehicles: with their own history, and with the site's.
    pub fn record_recurring(&mut self, own: Option<f64>, site: Option<f64>) {
        self.card.recurring_end_time_mae_s = own;
        self.card.recurring_end_time_mae_site_s = site;
    }

    /// The offline optimum's fields, once [`Scorer::finish`] has the real energy.
    pub fn record_optimum(&mut self, o: &crate::optimum::Optimum) {
        let wh = o.energy_wh.round();
        self.card.optimum_energy_wh = Some(wh);
        self.card.optimum_utilization = Some(if wh > 0.0 {
            (self.card.energy_wh / wh * 1e4).round() / 1e4
        } else {
            1.0
        });
        self.card.optimum_energy_cost = o.cost;
        self.card.optimum_cost_per_kwh = per_kwh(o.cost, wh);
        self.card.optimum_plans_held = Some(o.plans_held);
    }

    /// The anomaly fields.
    pub fn record_anomalies(&mut self, a: BTreeMap<String, KindScore>, faults: Vec<FaultOutcome>) {
        self.card.anomalies = a;
        self.card.faults = faults;
    }

    pub fn into_card(self) -> Scorecard {
        self.card
    }
}

/// A cost per kWh to a hundredth of a cent (None without a cost or without energy).
fn per_kwh(cost: Option<Decimal>, wh: f64) -> Option<Decimal> {
    let kwh = Decimal::from_f64(wh / 1000.0)?;
    if kwh.is_zero() {
        return None;
    }
    Some((cost? / kwh).round_dp(4))
}

/// A figure to the watt: no float noise in the scorecard.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Jain's fairness index: 1 when all equal, 1/n when one takes all.
pub fn jain(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    if sq == 0.0 {
        1.0
    } else {
        sum * sum / (xs.len() as f64 * sq)
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 32 A charger on a 32 A site whose building steps from 4 A to 26 A at 600 s: the
    /// car must come down, and one slower than 5 s keeps the site over its limit.
    fn step_site(delay_s: f64) -> Scenario {
        let text = format!(
            r#"
name = "slow-car"
seed = 3
duration_s = 900
start = "2026-01-15T17:00:00Z"

[site]
id = "slow-car"
grid_limit_a = 32.0
phases = 3
voltage_v = 230.0
margin_a = 1.0
failsafe_current_a = 0.0

[base_load]
points = [[0, 4, 4, 4], [600, 4, 4, 4], [600.05, 26, 26, 26], [900, 26, 26, 26]]

[meter]
model = "eastron-sdm630"
transport = "rtu"

[[charger]]
id = "cp-1"
model = "alfen-eve"
transport = "tcp"
phases = 3
phase_map = [1, 2, 3]
min_current_a = 6.0
max_current_a = 32.0

[[vehicle]]
charger = "cp-1"
arrive_s = 10
depart_s = 890
capacity_kwh = 77
soc_start = 0.2
soc_target = 0.9
max_current_a = 32
phases = 3
response_delay_s = {delay_s}
"#
        );
        Scenario::parse(&text, "slow-car").expect("a valid scenario")
    }

    #[test]
    fn overload_behind_a_car_slower_than_the_standard_is_scored_apart() {
        let slow = crate::run::run(&step_site(9.0)).expect("runs");
        assert!(
            slow.overload_s > 0.0,
            "a 9 s car holds the site over its limit past the 5 s window: {slow:?}"
        );
        assert!(
            slow.overload_slow_cars_s > 0.0 && slow.overload_slow_cars_s <= slow.overload_s,
            "{slow:?}"
        );
        let compliant = crate::run::run(&step_site(4.0)).expect("runs");
        assert_eq!(compliant.overload_slow_cars_s, 0.0, "{compliant:?}");
    }

    #[test]
    fn jain_index_bounds() {
        assert!((jain(&[1.0, 1.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((jain(&[1.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
