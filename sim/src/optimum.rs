//! The offline optimum a demand-shaped run is judged against. With the whole run known in
//! advance — the building's load as it really was, every car's arrival, departure, need and
//! taper — a linear programme over one-minute steps finds, in this order:
//!
//! 1. the most energy the site could deliver under the same limits as the controller: each
//!    phase of the grid connection and of every circuit, less the margin, after the
//!    building's highest draw in the step; the installer's schedules; each car's and
//!    charger's maximum and the car's taper; and the `[demand]` budget of every window, the
//!    target less `margin_pct` as the controller has it (the building's energy counted
//!    against it when `include_building` is set);
//! 2. delivering that much, the cars without a departure plan charged as early as possible
//!    (their drivers asked for nothing else);
//! 3. with both held, the lowest cost at the site's tariff, every feasible plan's energy in
//!    by its deadline.
//!
//! It is a bound, not a controller: it ignores the chargers' minimum current and setpoint
//! resolution, the cars' response delay and every fault, and needs no measurement. The real
//! run's energy and cost per kWh are compared with it in the scorecard.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use microlp::{ComparisonOp, LinearExpr, OptimizationDirection, Problem, Variable};
use rust_decimal::Decimal;

use evsite::config::Config;
use evsite::control::demand::window_start;
use evsite::control::schedule;
use evsite::simulator::scenario::VehicleSpec;
use evsite::simulator::vehicle::TAPER_FLOOR_A;
use evsite::simulator::Scenario;

use crate::score::demand::{plan_deadline_s, priced};

/// The optimum's time step (s). Tariff windows, schedules and demand windows are whole
/// minutes, so a step never straddles one of their edges when the run starts on a minute.
pub const STEP_S: f64 = 60.0;

/// A stage's optimum is held by the next within this share of it.
const HOLD: f64 = 1e-6;

/// The building's load as it really was, per optimum step.
#[derive(Debug, Clone, Default)]
pub struct BaseTrace {
    /// Per step: the highest current seen on each phase.
    peak_a: Vec<[f64; 3]>,
    /// Per step: the building's energy over the site's phases (kWh).
    energy_kwh: Vec<f64>,
}

impl BaseTrace {
    /// Account a physics step of `dt_s` starting `t_s` into the run, in which the building
    /// drew `base_a` per phase.
    pub fn sample(&mut self, t_s: f64, dt_s: f64, base_a: [f64; 3], voltage_v: f64, phases: u8) {
        let k = ((t_s + 1e-6) / STEP_S).floor().max(0.0) as usize;
        if self.peak_a.len() <= k {
            self.peak_a.resize(k + 1, [0.0; 3]);
            self.energy_kwh.resize(k + 1, 0.0);
        }
        for (peak, a) in self.peak_a[k].iter_mut().zip(base_a) {
            *peak = peak.max(a);
        }
        let w: f64 = base_a.iter().take(usize::from(phases)).sum::<f64>() * voltage_v;
        self.energy_kwh[k] += w * dt_s / 3.6e6;
    }

    fn peak_a(&self, k: usize, phase: usize) -> f64 {
        self.peak_a.get(k).map_or(0.0, |p| p[phase])
    }

    fn energy_kwh(&self, k: usize) -> f64 {
        self.energy_kwh.get(k).copied().unwrap_or(0.0)
    }
}

/// What the optimum delivered, and at what cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimum {
    pub energy_wh: f64,
    /// The chargers' energy at the site's tariff, to the cent (None without a tariff).
    pub cost: Option<Decimal>,
    /// Visits with a plan whose energy the optimum had to have in by the deadline (the
    /// feasible ones); 0 when held together they could not all be met, and were dropped.
    pub plans_held: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum OptimumError {
    #[error("charger {0} of a vehicle is not in the config")]
    UnknownCharger(String),
    #[error("the linear programme failed: {0}")]
    Solve(#[from] microlp::Error),
    #[error("the linear programme stopped before a solution")]
    Interrupted,
}

/// One car's visit as the programme sees it.
struct Car {
    /// The charger's site phases the car draws on.
    site_phases: Vec<usize>,
    /// Per step it is plugged in, from `first`: the step's share it is there, and its cap (A).
    first: usize,
    present: Vec<f64>,
    cap_a: Vec<f64>,
    /// kWh per amp per step at full presence.
    kwh_per_a: f64,
    need_kwh: f64,
    /// Taper: (A per kWh taken, the limit's value at nothing taken).
    taper: Option<(f64, f64)>,
    /// (steps before the deadline from `first`, kWh) of a plan it must meet.
    plan: Option<(usize, f64)>,
    planned: bool,
}

impl Car {
    fn kwh(&self, i: usize) -> f64 {
        self.kwh_per_a * self.present[i]
    }
}

/// The whole programme's data; each stage builds its own `Problem` from it.
struct Model {
    steps: usize,
    cars: Vec<Car>,
    /// Per step and site phase: amps the cars may draw there in all.
    phase_room_a: Vec<[f64; 3]>,
    /// Per circuit: its cars (indices) and the amps per phase they may draw.
    circuits: Vec<(Vec<usize>, f64)>,
    /// Per demand window: its steps and the kWh the chargers may take in it.
    windows: Vec<(Vec<usize>, f64)>,
    /// Per step: the energy price (None without a tariff).
    price: Vec<Option<Decimal>>,
}

fn step_time(scenario: &Scenario, k: usize) -> DateTime<Utc> {
    scenario.start + Duration::milliseconds((k as f64 * STEP_S * 1000.0) as i64)
}

impl Model {
    fn new(scenario: &Scenario, cfg: &Config, base: &BaseTrace) -> Result<Model, OptimumError> {
        let steps = (scenario.duration_s / STEP_S).ceil() as usize;
        let v = cfg.site.voltage_v;
        let tz = cfg.site.timezone;
        let phases = usize::from(cfg.site.phases);
        let margin = cfg.site.margin_a.max(0.0);
        let dt_h = STEP_S / 3600.0;
        let phase_room_a = (0..steps)
            .map(|k| {
                let at = step_time(scenario, k);
                let limit = schedule::limit_a(&cfg.schedules, None, at, tz, v, phases)
                    .map_or(cfg.site.grid_limit_a, |s| s.min(cfg.site.grid_limit_a));
                let mut room = [0.0; 3];
                for (p, r) in room.iter_mut().enumerate().take(phases) {
                    *r = (limit - margin - base.peak_a(k, p)).max(0.0);
                }
                room
            })
            .collect();
        let mut cars = Vec::new();
        let mut car_charger = Vec::new();
        for vh in scenario.all_vehicles() {
            if vh.arrive_s >= scenario.duration_s {
                continue;
            }
            let Some(ci) = cfg.chargers.iter().position(|c| c.id == vh.charger) else {
                return Err(OptimumError::UnknownCharger(vh.charger.clone()));
            };
            if let Some(car) = Car::new(scenario, cfg, ci, &vh, steps, dt_h) {
                cars.push(car);
                car_charger.push(ci);
            }
        }
        let circuits = cfg
            .circuits
            .iter()
            .map(|c| {
                let members = car_charger
                    .iter()
                    .enumerate()
                    .filter(|(_, ci)| c.chargers.contains(&cfg.chargers[**ci].id))
                    .map(|(i, _)| i)
                    .collect();
                (members, (c.limit_a - margin).max(0.0))
            })
            .collect();
        let mut windows: Vec<(Vec<usize>, f64)> = Vec::new();
        if let Some(d) = &cfg.demand {
            let len_s = d.window.as_secs() as i64;
            let mut by_start: BTreeMap<DateTime<Utc>, Vec<usize>> = BTreeMap::new();
            for k in 0..steps {
                let start = window_start(step_time(scenario, k), len_s, tz);
                by_start.entry(start).or_default().push(k);
            }
            // The same budget the controller is given: the target less its margin.
            let budget = d.limit_kw * (1.0 - d.margin_pct / 100.0) * len_s as f64 / 3600.0;
            for ks in by_start.into_values() {
                let building: f64 = if d.include_building {
                    ks.iter().map(|&k| base.energy_kwh(k)).sum()
                } else {
                    0.0
                };
                windows.push((ks, (budget - building).max(0.0)));
            }
        }
        let tariff = cfg.tariff.clone();
        let price = (0..steps)
            .map(|k| {
                tariff
                    .as_ref()
                    .map(|t| t.price_at(step_time(scenario, k)).1)
            })
            .collect();
        Ok(Model {
            steps,
            cars,
            phase_room_a,
            circuits,
            windows,
            price,
        })
    }
}

impl Car {
    /// The visit of `vh` at charger `ci`, or None when it takes nothing.
    fn new(
        scenario: &Scenario,
        cfg: &Config,
        ci: usize,
        vh: &VehicleSpec,
        steps: usize,
        dt_h: f64,
    ) -> Option<Car> {
        let c = &cfg.chargers[ci];
        let v = cfg.site.voltage_v;
        let tz = cfg.site.timezone;
        let need_kwh = vh.capacity_kwh * (vh.soc_target - vh.soc_start).max(0.0);
        let depart_s = vh.depart_s.min(scenario.duration_s);
        if need_kwh <= 0.0 || depart_s <= vh.arrive_s || !c.enabled {
            return None;
        }
        let n = usize::from(vh.phases.min(c.phases).max(1)).min(c.phase_map.len());
        let first = (vh.arrive_s / STEP_S).floor() as usize;
        let last = ((depart_s / STEP_S).ceil() as usize).min(steps);
        let mut present = Vec::new();
        let mut cap_a = Vec::new();
        for k in first..last {
            let (t0, t1) = (k as f64 * STEP_S, (k + 1) as f64 * STEP_S);
            present.push(((t1.min(depart_s) - t0.max(vh.arrive_s)) / STEP_S).clamp(0.0, 1.0));
            let at = step_time(scenario, k);
            let sched =
                schedule::limit_a(&cfg.schedules, Some(&c.id), at, tz, v, c.phase_map.len());
            let cap = c.max_current_a.min(vh.max_current_a);
            cap_a.push(sched.map_or(cap, |s| s.min(cap)).max(0.0));
        }
        let capacity_kwh = vh.capacity_kwh.max(1e-9);
        let taper = (vh.taper_from_soc < 1.0 && vh.soc_target > vh.taper_from_soc).then(|| {
            let floor = TAPER_FLOOR_A.min(vh.max_current_a);
            let slope = (vh.max_current_a - floor) / (1.0 - vh.taper_from_soc);
            (
                slope / capacity_kwh,
                vh.max_current_a - slope * (vh.soc_start - vh.taper_from_soc),
            )
        });
        let kwh_per_a = v * n as f64 * dt_h / 1000.0;
        let plan = c.plan.map(|p| {
            let deadline_s = plan_deadline_s(scenario, tz, vh.arrive_s, p.depart_min);
            let until_s = deadline_s.min(depart_s);
            // Whole steps before the deadline, counted from the car's first.
            let before = ((until_s / STEP_S).floor() as usize).saturating_sub(first);
            let power_kw = c.max_current_a.min(vh.max_current_a) * v * n as f64 / 1000.0;
            let reach = power_kw * (until_s - vh.arrive_s).max(0.0) / 3600.0;
            // The scorecard counts a plan met at 99 % of what was wanted.
            let wanted = (p.energy_wh as f64 / 1000.0).min(need_kwh).min(reach) * 0.99;
            (before.min(present.len()), wanted)
        });
        Some(Car {
            site_phases: c.phase_map.iter().take(n).map(|&p| p.min(2)).collect(),
            first,
            present,
            cap_a,
            kwh_per_a,
            need_kwh,
            taper,
            plan,
            planned: c.plan.is_some(),
        })
    }
}

/// Which objective a stage optimises.
#[derive(Clone, Copy, PartialEq)]
enum Stage {
    Energy,
    Early,
    Cost,
}

/// A built stage: the problem and each car's current variable per step.
struct Built {
    problem: Problem,
    x: Vec<Vec<Variable>>,
}

impl Model {
    fn objective(&self, stage: Stage, car: &Car, i: usize) -> f64 {
        let kwh = car.kwh(i);
        let k = car.first + i;
        match stage {
            Stage::Energy => kwh,
            Stage::Early if car.planned => 0.0,
            Stage::Early => kwh * (k as f64 + 1.0) * STEP_S / 3600.0,
            Stage::Cost => self.price[k]
                .and_then(|p| f64::try_from(p).ok())
                .map_or(0.0, |p| p * kwh),
        }
    }

    fn build(&self, stage: Stage, with_plans: bool) -> Built {
        let dir = match stage {
            Stage::Energy => OptimizationDirection::Maximize,
            Stage::Early | Stage::Cost => OptimizationDirection::Minimize,
        };
        let mut problem = Problem::new(dir);
        let mut x = Vec::with_capacity(self.cars.len());
        for car in &self.cars {
            let vars: Vec<Variable> = (0..car.present.len())
                .map(|i| {
                    let cap = if car.present[i] > 0.0 {
                        car.cap_a[i]
                    } else {
                        0.0
                    };
                    problem.add_var(self.objective(stage, car, i), (0.0, cap))
                })
                .collect();
            problem.add_constraint(
                vars.iter().enumerate().map(|(i, &x)| (x, car.kwh(i))),
                ComparisonOp::Le,
                car.need_kwh,
            );
            if let Some((per_kwh, at_zero)) = car.taper {
                // The car's own limit falls with what it has taken: with y the energy taken
                // before the step, x ≤ at_zero − per_kwh · y.
                let mut taken: Option<Variable> = None;
                for (i, &xi) in vars.iter().enumerate() {
                    if let Some(y) = taken {
                        problem.add_constraint(
                            [(xi, 1.0), (y, per_kwh)],
                            ComparisonOp::Le,
                            at_zero,
                        );
                    } else {
                        problem.add_constraint([(xi, 1.0)], ComparisonOp::Le, at_zero.max(0.0));
                    }
                    let next = problem.add_var(0.0, (0.0, f64::INFINITY));
                    let mut def = LinearExpr::empty();
                    def.add(next, 1.0);
                    def.add(xi, -car.kwh(i));
                    if let Some(y) = taken {
                        def.add(y, -1.0);
                    }
                    problem.add_constraint(def, ComparisonOp::Eq, 0.0);
                    taken = Some(next);
                }
            }
            if let (true, Some((before, kwh))) = (with_plans, car.plan) {
                problem.add_constraint(
                    vars.iter()
                        .take(before)
                        .enumerate()
                        .map(|(i, &x)| (x, car.kwh(i))),
                    ComparisonOp::Ge,
                    kwh,
                );
            }
            x.push(vars);
        }
        // Who is plugged in at step k: (car, its index there).
        let at = |k: usize| {
            self.cars.iter().enumerate().filter_map(move |(c, car)| {
                let i = k.checked_sub(car.first)?;
                (i < car.present.len() && car.present[i] > 0.0).then_some((c, i))
            })
        };
        for k in 0..self.steps {
            for p in 0..3 {
                let on: Vec<(usize, usize)> = at(k)
                    .filter(|(c, _)| self.cars[*c].site_phases.contains(&p))
                    .collect();
                self.add_if_binding(&mut problem, &x, &on, self.phase_room_a[k][p]);
                for (members, room) in &self.circuits {
                    let inside: Vec<(usize, usize)> = on
                        .iter()
                        .copied()
                        .filter(|(c, _)| members.contains(c))
                        .collect();
                    self.add_if_binding(&mut problem, &x, &inside, *room);
                }
            }
        }
        for (ks, kwh) in &self.windows {
            let terms: Vec<(Variable, f64)> = ks
                .iter()
                .flat_map(|&k| at(k))
                .map(|(c, i)| (x[c][i], self.cars[c].kwh(i)))
                .collect();
            if !terms.is_empty() {
                problem.add_constraint(terms, ComparisonOp::Le, *kwh);
            }
        }
        Built { problem, x }
    }

    /// Add `Σ x ≤ room` over the (car, step) pairs `on`, unless the caps already keep it.
    fn add_if_binding(
        &self,
        problem: &mut Problem,
        x: &[Vec<Variable>],
        on: &[(usize, usize)],
        room: f64,
    ) {
        let most: f64 = on.iter().map(|&(c, i)| self.cars[c].cap_a[i]).sum();
        if most > room + 1e-9 {
            problem.add_constraint(
                on.iter().map(|&(c, i)| (x[c][i], 1.0)),
                ComparisonOp::Le,
                room,
            );
        }
    }

    /// The objective of `stage` over a solution's values.
    fn value(&self, stage: Stage, values: &[Vec<f64>]) -> f64 {
        self.cars
            .iter()
            .zip(values)
            .map(|(car, xs)| {
                xs.iter()
                    .enumerate()
                    .map(|(i, x)| self.objective(stage, car, i) * x)
                    .sum::<f64>()
            })
            .sum()
    }

    /// Solve the three stages in turn, each holding the ones before.
    fn solve(&self, with_plans: bool) -> Result<Vec<Vec<f64>>, OptimumError> {
        let mut held: Vec<(Stage, f64)> = Vec::new();
        let mut values = Vec::new();
        for stage in [Stage::Energy, Stage::Early, Stage::Cost] {
            let matters = self
                .cars
                .iter()
                .any(|car| (0..car.present.len()).any(|i| self.objective(stage, car, i) != 0.0));
            if !matters {
                continue;
            }
            let Built { mut problem, x } = self.build(stage, with_plans);
            for &(before, best) in &held {
                let terms: Vec<(Variable, f64)> = self
                    .cars
                    .iter()
                    .zip(&x)
                    .flat_map(|(car, vars)| {
                        vars.iter()
                            .enumerate()
                            .map(move |(i, &v)| (v, self.objective(before, car, i)))
                    })
                    .filter(|(_, coef)| *coef != 0.0)
                    .collect();
                if terms.is_empty() {
                    continue;
                }
                let slack = best.abs() * HOLD + 1e-6;
                match before {
                    Stage::Energy => problem.add_constraint(terms, ComparisonOp::Ge, best - slack),
                    Stage::Early | Stage::Cost => {
                        problem.add_constraint(terms, ComparisonOp::Le, best + slack)
                    }
                }
            }
            let solution = problem
                .solve()?
                .into_solution()
                .map_err(|_| OptimumError::Interrupted)?;
            values = x
                .iter()
                .map(|vars| vars.iter().map(|&v| solution.var_value(v)).collect())
                .collect();
            held.push((stage, self.value(stage, &values)));
        }
        Ok(values)
    }
}

/// The optimum of `scenario` under `cfg`, with the building's load `base` as it was.
pub fn optimum(
    scenario: &Scenario,
    cfg: &Config,
    base: &BaseTrace,
) -> Result<Optimum, OptimumError> {
    let model = Model::new(scenario, cfg, base)?;
    let plans = model.cars.iter().filter(|c| c.plan.is_some()).count();
    let (values, plans_held) = match model.solve(true) {
        Ok(v) => (v, plans),
        Err(OptimumError::Solve(microlp::Error::Infeasible)) if plans > 0 => {
            (model.solve(false)?, 0)
        }
        Err(e) => return Err(e),
    };
    let mut kwh_at: BTreeMap<Decimal, f64> = BTreeMap::new();
    let mut energy_kwh = 0.0;
    for (car, xs) in model.cars.iter().zip(&values) {
        for (i, x) in xs.iter().enumerate() {
            let kwh = car.kwh(i) * x;
            energy_kwh += kwh;
            if let Some(p) = model.price[car.first + i] {
                *kwh_at.entry(p).or_default() += kwh;
            }
        }
    }
    // Every step has a price, or none does (no tariff).
    let cost = model
        .price
        .iter()
        .any(Option::is_some)
        .then(|| priced(&kwh_at));
    Ok(Optimum {
        energy_wh: energy_kwh * 1000.0,
        cost,
        plans_held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each stage holds the one before within a millionth: figures agree to far better than
    /// this.
    const TOL: f64 = 1e-2;

    /// kWh per amp per minute on three phases at 230 V.
    const KWH_3P: f64 = 230.0 * 3.0 / 1000.0 / 60.0;

    fn car(steps: usize, cap_a: f64, need_kwh: f64) -> Car {
        Car {
            site_phases: vec![0, 1, 2],
            first: 0,
            present: vec![1.0; steps],
            cap_a: vec![cap_a; steps],
            kwh_per_a: KWH_3P,
            need_kwh,
            taper: None,
            plan: None,
            planned: false,
        }
    }

    fn model(steps: usize, cars: Vec<Car>) -> Model {
        Model {
            steps,
            cars,
            phase_room_a: vec![[100.0; 3]; steps],
            circuits: Vec::new(),
            windows: Vec::new(),
            price: vec![None; steps],
        }
    }

    fn energy(m: &Model, values: &[Vec<f64>]) -> f64 {
        m.value(Stage::Energy, values)
    }

    #[test]
    fn each_window_gives_the_chargers_no_more_than_its_budget() {
        let mut m = model(30, vec![car(30, 16.0, 100.0), car(30, 16.0, 100.0)]);
        m.windows = vec![((0..15).collect(), 2.0), ((15..30).collect(), 1.0)];
        let x = m.solve(false).expect("solves");
        assert!((energy(&m, &x) - 3.0).abs() < TOL, "{}", energy(&m, &x));
        let first: f64 = (0..15).map(|i| (x[0][i] + x[1][i]) * KWH_3P).sum();
        assert!((first - 2.0).abs() < TOL, "{first}");
    }

    #[test]
    fn cars_on_one_phase_share_its_room_and_a_circuit_caps_its_members() {
        let one_phase = |phase| Car {
            site_phases: vec![phase],
            kwh_per_a: KWH_3P / 3.0,
            ..car(10, 16.0, 100.0)
        };
        let mut m = model(10, vec![one_phase(0), one_phase(0), one_phase(1)]);
        m.phase_room_a = vec![[10.0, 100.0, 100.0]; 10];
        let x = m.solve(false).expect("solves");
        for ((a, b), c) in x[0].iter().zip(&x[1]).zip(&x[2]) {
            assert!(a + b <= 10.0 + TOL);
            assert!((c - 16.0).abs() < TOL, "phase 1 has room: {c}");
        }
        let want = (10.0 + 16.0) * 10.0 * KWH_3P / 3.0;
        assert!((energy(&m, &x) - want).abs() < TOL);

        m.circuits = vec![(vec![2], 5.0)];
        let x = m.solve(false).expect("solves");
        assert!(x[2].iter().all(|&a| a <= 5.0 + TOL), "{:?}", x[2]);
    }

    #[test]
    fn a_car_without_a_plan_charges_first_and_one_with_a_plan_where_it_is_cheapest() {
        let dear = Decimal::new(40, 2);
        let cheap = Decimal::new(18, 2);
        let prices: Vec<Option<Decimal>> = (0..20)
            .map(|k| Some(if k < 10 { dear } else { cheap }))
            .collect();
        // Room for ten full minutes in all.
        let budget = 10.0 * 16.0 * KWH_3P;
        for planned in [false, true] {
            let mut m = model(
                20,
                vec![Car {
                    planned,
                    ..car(20, 16.0, 100.0)
                }],
            );
            m.windows = vec![((0..20).collect(), budget)];
            m.price = prices.clone();
            let x = m.solve(false).expect("solves");
            let early: f64 = x[0][..10].iter().sum();
            let late: f64 = x[0][10..].iter().sum();
            if planned {
                assert!(early < TOL && (late - 160.0).abs() < TOL, "{:?}", x[0]);
            } else {
                assert!((early - 160.0).abs() < TOL && late < TOL, "{:?}", x[0]);
            }
        }
    }

    #[test]
    fn a_plan_pulls_energy_before_its_deadline_even_at_a_dearer_price() {
        let prices = (0..20)
            .map(|k| Some(Decimal::new(if k < 10 { 40 } else { 18 }, 2)))
            .collect();
        let plan_kwh = 5.0 * 16.0 * KWH_3P;
        let mut m = model(
            20,
            vec![Car {
                planned: true,
                plan: Some((10, plan_kwh)),
                ..car(20, 16.0, 100.0)
            }],
        );
        m.windows = vec![((0..20).collect(), 10.0 * 16.0 * KWH_3P)];
        m.price = prices;
        let x = m.solve(true).expect("solves");
        let before: f64 = x[0][..10].iter().map(|a| a * KWH_3P).sum();
        assert!((before - plan_kwh).abs() < TOL, "{before} vs {plan_kwh}");
        // The rest of the budget goes to the cheap half.
        let after: f64 = x[0][10..].iter().map(|a| a * KWH_3P).sum();
        assert!((after - plan_kwh).abs() < TOL, "{after}");

        m.cars[0].plan = Some((2, plan_kwh));
        assert!(matches!(
            m.solve(true),
            Err(OptimumError::Solve(microlp::Error::Infeasible))
        ));
    }

    #[test]
    fn a_tapering_car_never_gets_more_than_its_own_limit_allows() {
        // 10 kWh battery from 70 %, tapering from 80 %: 16 A falling to 2 A at full.
        let slope = (16.0 - TAPER_FLOOR_A) / (1.0 - 0.8);
        let per_kwh = slope / 10.0;
        let at_zero = 16.0 - slope * (0.7 - 0.8);
        let mut m = model(
            120,
            vec![Car {
                taper: Some((per_kwh, at_zero)),
                ..car(120, 16.0, 2.5)
            }],
        );
        let x = m.solve(false).expect("solves");
        let mut taken = 0.0;
        for &a in &x[0] {
            let limit = (16.0f64).min(at_zero - per_kwh * taken);
            assert!(
                a <= limit + TOL,
                "{a} A over the car's {limit} A at {taken} kWh"
            );
            taken += a * KWH_3P;
        }
        assert!((taken - 2.5).abs() < TOL, "{taken}");
        // Without the taper the same need is met in fewer minutes.
        let tapered = x[0].iter().filter(|&&a| a > TOL).count();
        m.cars[0].taper = None;
        let x = m.solve(false).expect("solves");
        let flat = x[0].iter().filter(|&&a| a > TOL).count();
        assert!(flat < tapered, "{flat} vs {tapered}");
    }
}
