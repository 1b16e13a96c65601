//! The demand, cost and plan figures of a scorecard, measured from the simulator's truth:
//! each clock-aligned window's average import as the utility's meter would bill it, the
//! chargers' energy priced with the site's tariff, and whether each visit with a departure
//! plan had its energy by the deadline.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;

use evsite::config::Config;
use evsite::control::demand::window_start;
use evsite::control::plan::next_local;
use evsite::sessions::tariff::TariffSnapshot;
use evsite::simulator::{Scenario, SiteModel};

/// One site's windows and priced energy (the real site, or the ideal's twin).
#[derive(Debug, Clone)]
pub struct DemandAcc {
    len_s: i64,
    tz: Tz,
    limit_kw: Option<f64>,
    window: Option<DateTime<Utc>>,
    import_wh: f64,
    base_wh: f64,
    pub peak_kw: f64,
    pub over_windows: usize,
    /// Windows whose building load alone averaged over the limit.
    pub building_over_windows: usize,
    /// The chargers' energy per energy price.
    kwh_at: BTreeMap<Decimal, f64>,
    tariff: Option<TariffSnapshot>,
}

impl DemandAcc {
    pub fn new(cfg: &Config) -> Self {
        DemandAcc {
            len_s: cfg
                .demand
                .as_ref()
                .map_or(900, |d| d.window.as_secs() as i64),
            tz: cfg.site.timezone,
            limit_kw: cfg.demand.as_ref().map(|d| d.limit_kw),
            window: None,
            import_wh: 0.0,
            base_wh: 0.0,
            peak_kw: 0.0,
            over_windows: 0,
            building_over_windows: 0,
            kwh_at: BTreeMap::new(),
            tariff: cfg.tariff.clone(),
        }
    }

    /// Account a step of `dt_s` ending at `at` on `site`.
    pub fn sample(&mut self, site: &SiteModel, at: DateTime<Utc>, dt_s: f64) {
        let from = at - Duration::milliseconds((dt_s * 1000.0) as i64);
        let start = window_start(from, self.len_s, self.tz);
        if self.window.is_some_and(|w| w != start) {
            self.close();
        }
        self.window = Some(start);
        let v = site.site().voltage_v;
        let phases = usize::from(site.site().phases);
        let grid = site.grid_current_a();
        let base = site.base_load_a();
        let import_w: f64 = grid.iter().take(phases).sum::<f64>() * v;
        let base_w: f64 = base.iter().take(phases).sum::<f64>() * v;
        self.import_wh += import_w.max(0.0) * dt_s / 3600.0;
        self.base_wh += base_w.max(0.0) * dt_s / 3600.0;
        if let Some(t) = &self.tariff {
            let kwh = (import_w - base_w).max(0.0) * dt_s / 3.6e6;
            *self.kwh_at.entry(t.price_at(from).1).or_default() += kwh;
        }
    }

    /// Close the window in progress (at the end of the run: what it had by then).
    pub fn close(&mut self) {
        if self.window.take().is_none() {
            return;
        }
        let kw = self.import_wh * 3.6 / self.len_s as f64;
        let base_kw = self.base_wh * 3.6 / self.len_s as f64;
        self.peak_kw = self.peak_kw.max(kw);
        if let Some(limit) = self.limit_kw {
            if kw > limit + 1e-9 {
                self.over_windows += 1;
            }
            if base_kw > limit + 1e-9 {
                self.building_over_windows += 1;
            }
        }
        self.import_wh = 0.0;
        self.base_wh = 0.0;
    }

    /// What the chargers' energy cost (None without a tariff), to the cent.
    pub fn cost(&self) -> Option<Decimal> {
        self.tariff.as_ref()?;
        Some(priced(&self.kwh_at))
    }
}

/// Energy summed per price (kWh at each price per kWh), priced to the cent.
pub fn priced(kwh_at: &BTreeMap<Decimal, f64>) -> Decimal {
    kwh_at
        .iter()
        .map(|(price, kwh)| *price * Decimal::from_f64(*kwh).unwrap_or_default())
        .sum::<Decimal>()
        .round_dp(2)
}

/// When a visit arriving `arrive_s` into the run must have its plan's energy, in seconds into
/// the run: the next `depart_min` local time after it plugs in.
pub fn plan_deadline_s(scenario: &Scenario, tz: Tz, arrive_s: f64, depart_min: u16) -> f64 {
    let arrive = scenario.start + Duration::milliseconds((arrive_s * 1000.0) as i64);
    let deadline = next_local(arrive, depart_min, tz);
    (deadline - scenario.start).num_milliseconds() as f64 / 1000.0
}

/// A visit with a departure plan: what it asked and what it took by its deadline.
#[derive(Debug, Clone)]
struct PlannedVisit {
    charger: String,
    arrive_s: f64,
    deadline_s: f64,
    energy_wh: f64,
    /// What the car could take at all: its need, and its power over the time to deadline.
    feasible_wh: f64,
    /// Measured at the deadline (or when the visit ended before it).
    got_wh: Option<f64>,
    full: bool,
}

/// Every visit's plan, checked at its deadline.
#[derive(Debug, Clone, Default)]
pub struct PlanLog {
    visits: Vec<PlannedVisit>,
}

impl PlanLog {
    pub fn new(scenario: &Scenario, cfg: &Config) -> Self {
        let tz = cfg.site.timezone;
        let v = cfg.site.voltage_v;
        let visits = scenario
            .all_vehicles()
            .iter()
            .filter(|vh| vh.arrive_s < scenario.duration_s)
            .filter_map(|vh| {
                let c = cfg.chargers.iter().find(|c| c.id == vh.charger)?;
                let plan = c.plan?;
                let deadline_s = plan_deadline_s(scenario, tz, vh.arrive_s, plan.depart_min);
                let until = deadline_s.min(vh.depart_s) - vh.arrive_s;
                let phases = f64::from(vh.phases.min(c.phases));
                let power_w = c.max_current_a.min(vh.max_current_a) * v * phases;
                let need_wh = vh.capacity_kwh * 1000.0 * (vh.soc_target - vh.soc_start).max(0.0);
                Some(PlannedVisit {
                    charger: c.id.clone(),
                    arrive_s: vh.arrive_s,
                    deadline_s,
                    energy_wh: plan.energy_wh as f64,
                    feasible_wh: need_wh.min(power_w * until.max(0.0) / 3600.0),
                    got_wh: None,
                    full: false,
                })
            })
            .collect();
        PlanLog { visits }
    }

    /// Take every visit whose deadline (or departure) has come.
    pub fn observe(&mut self, site: &SiteModel) {
        let t = site.time_s();
        if self.visits.iter().all(|p| p.got_wh.is_some()) {
            return;
        }
        let truth = site.vehicle_truth();
        for p in self.visits.iter_mut().filter(|p| p.got_wh.is_none()) {
            let Some(v) = truth
                .iter()
                .find(|v| v.charger == p.charger && (v.arrive_s - p.arrive_s).abs() < 1e-6)
            else {
                continue;
            };
            if t >= p.deadline_s || t >= v.depart_s {
                p.got_wh = Some(v.energy_wh);
                p.full = v.complete;
            }
        }
    }

    /// (met, feasible, total): met when the plan's energy (or all the car would take) was
    /// delivered by the deadline; feasible when the car's power and need allowed it.
    pub fn score(&self, site: &SiteModel) -> (usize, usize, usize) {
        let truth = site.vehicle_truth();
        let mut met = 0;
        let mut feasible = 0;
        for p in &self.visits {
            let (got, full) = p.got_wh.map(|g| (g, p.full)).unwrap_or_else(|| {
                truth
                    .iter()
                    .find(|v| v.charger == p.charger && (v.arrive_s - p.arrive_s).abs() < 1e-6)
                    .map_or((0.0, false), |v| (v.energy_wh, v.complete))
            });
            let wanted = p.energy_wh.min(p.feasible_wh.max(0.0));
            if p.energy_wh <= p.feasible_wh {
                feasible += 1;
            }
            if full || got + 1.0 >= wanted * 0.99 {
                met += 1;
            }
        }
        (met, feasible, self.visits.len())
    }
}
