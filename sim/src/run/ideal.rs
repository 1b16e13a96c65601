//! The ideal controller: the same allocator with perfect knowledge, acting on a twin of the
//! site every control interval. With a `[demand]` limit, `[[schedule]]` caps or departure
//! plans it follows the same rules as the real controller — the same window budget and the
//! same choice of slots — fed from the twin's truth instead of readings, so the real run is
//! compared with the best those rules can do under the same demand budget.

use chrono::{DateTime, Utc};

use evsite::config::Config;
use evsite::control::allocate::{
    allocate, AllocInput, ChargerInput, CircuitInput, LinkState, Turn,
};
use evsite::control::charger::setpoint_step_a;
use evsite::control::demand::DemandMeter;
use evsite::control::plan::{self, Plan};
use evsite::control::runner::alloc_priority;
use evsite::control::schedule;
use evsite::control::usage::Usage;
use evsite::devices::model::ChargeState;
use evsite::sessions::tariff::TariffSnapshot;
use evsite::simulator::SiteModel;
use evsite::tokens::{normalise, AuthMode};

/// The twin's demand window and each charger's plan.
pub struct IdealShaping {
    demand: Option<DemandMeter>,
    tariff: Option<TariffSnapshot>,
    /// Per charger: the plan of the visit plugged in, and its energy at plug-in.
    plans: Vec<Option<(Plan, f64)>>,
}

impl IdealShaping {
    pub fn new(cfg: &Config) -> Self {
        IdealShaping {
            demand: cfg
                .demand
                .clone()
                .map(|d| DemandMeter::new(d, cfg.site.timezone)),
            tariff: cfg.tariff.clone(),
            plans: vec![None; cfg.chargers.len()],
        }
    }
}

/// The twin's energy delivered to the visit plugged in at each charger.
fn plugged_energy(site: &SiteModel, cfg: &Config) -> Vec<Option<f64>> {
    let truth = site.vehicle_truth();
    cfg.chargers
        .iter()
        .map(|c| {
            truth
                .iter()
                .find(|v| v.plugged && v.charger == c.id)
                .map(|v| v.energy_wh)
        })
        .collect()
}

/// The ideal controller: the same allocator and limits, with perfect knowledge — true base
/// load, each car's true acceptance and phases — acting instantly on the twin site.
pub fn ideal_control(
    cfg: &Config,
    site: &mut SiteModel,
    turns: &mut [Turn],
    shaping: &mut IdealShaping,
) {
    let demand = site.vehicle_demand();
    let base = site.base_load_a();
    let now_s = site.time_s();
    let now: DateTime<Utc> = site.wall_time();
    let v = cfg.site.voltage_v;
    let phases = usize::from(cfg.site.phases);
    let base_w: f64 = base.iter().take(phases).sum::<f64>() * v;
    let grid_w: f64 = site.grid_current_a().iter().take(phases).sum::<f64>() * v;
    let mut site_limit_a = cfg.site.grid_limit_a;
    if let Some(s) = schedule::limit_a(&cfg.schedules, None, now, cfg.site.timezone, v, phases) {
        site_limit_a = site_limit_a.min(s);
    }
    let mut site_w = cfg.site.grid_limit_a * v * phases as f64;
    let mut total_limit_a = None;
    if let Some(dm) = shaping.demand.as_mut() {
        let st = dm.observe(now, Some(grid_w), base_w);
        total_limit_a = Some(st.allowed_kw * 1000.0 / v);
        site_w = site_w.min(st.limit_kw * 1000.0);
    }
    let energy = plugged_energy(site, cfg);
    // Cars with a plan still to meet share what the site can give them.
    let plan_cars = cfg
        .chargers
        .iter()
        .enumerate()
        .filter(|(i, c)| match (c.plan, energy[*i], shaping.plans[*i]) {
            (Some(spec), Some(e), Some((_, e0))) => e - e0 < spec.energy_wh as f64,
            (Some(_), Some(_), None) => true,
            _ => false,
        })
        .count();
    let share_w = site_w / plan_cars.max(1) as f64;
    let (caps, due): (Vec<Option<f64>>, Vec<bool>) = cfg
        .chargers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let sched = schedule::limit_a(
                &cfg.schedules,
                Some(&c.id),
                now,
                cfg.site.timezone,
                v,
                c.phase_map.len(),
            );
            let slot = &mut shaping.plans[i];
            match (energy[i], c.plan) {
                (Some(e), Some(spec)) => {
                    let (p, e0) = *slot.get_or_insert((
                        Plan {
                            energy_wh: spec.energy_wh,
                            depart_at: plan::next_local(now, spec.depart_min, cfg.site.timezone),
                        },
                        e,
                    ));
                    let car_w = c.max_current_a * v * c.phase_map.len() as f64;
                    let power_w = car_w.min(share_w) * 0.9;
                    let missing = p.energy_wh as f64 - (e - e0);
                    let charge = shaping.tariff.as_ref().is_none_or(|t| {
                        plan::charge_now(now, p.depart_at, missing, power_w, &|at| t.price_at(at).1)
                    });
                    let hold = (!charge).then_some(0.0);
                    let cap = [sched, hold].into_iter().flatten().reduce(f64::min);
                    (cap, charge && missing > 0.0)
                }
                _ => {
                    *slot = None;
                    (sched, false)
                }
            }
        })
        .unzip();
    // Who may charge, known perfectly: the list, and for `cloud` chargers the cloud's yes
    // too (the real controller meets the cloud's latency and timeout; the ideal does not).
    let cloud = site.shaping().cloud.clone();
    let allowed: Vec<bool> = cfg
        .chargers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let token = c.token.as_deref().or(site.plugged_token(i));
            match c.auth {
                AuthMode::Free => true,
                mode => token.is_some_and(|t| {
                    cfg.auth.tokens.authorise(t).is_some()
                        || (mode == AuthMode::Cloud
                            && cfg.auth.tokens.get(t).is_none()
                            && cloud.as_ref().is_some_and(|cl| {
                                cl.accepts.iter().any(|a| normalise(a) == normalise(t))
                            }))
                }),
            }
        })
        .collect();
    let chargers: Vec<ChargerInput> = cfg
        .chargers
        .iter()
        .zip(&allowed)
        .map(|(c, ok)| (c, *ok))
        .zip(&demand)
        .zip(turns.iter())
        .zip(caps.iter().zip(&due))
        .map(|((((c, allowed), d), turn), (cap, due))| {
            let (state, usage) = match d {
                Some((accept, phases)) if *accept > 0.05 => {
                    let mut active = [false; 3];
                    active
                        .iter_mut()
                        .take(usize::from(*phases))
                        .for_each(|a| *a = true);
                    (
                        ChargeState::C,
                        Usage {
                            demand_cap_a: Some(*accept),
                            active,
                        },
                    )
                }
                _ => (
                    ChargeState::A,
                    Usage {
                        demand_cap_a: None,
                        active: [true; 3],
                    },
                ),
            };
            ChargerInput {
                phase_map: c.phase_map.clone(),
                min_a: c.min_current_a,
                max_a: c.max_current_a,
                priority: alloc_priority(false, c.priority, *due),
                enabled: c.enabled && allowed,
                cap_a: *cap,
                // The same hardware resolution the real controller has to respect.
                step_a: setpoint_step_a(c.device.model),
                // Base load is known exactly, so chargers count as drawing nothing.
                link: LinkState::Online {
                    state,
                    measured_a: [0.0; 3],
                },
                usage,
                waiting_since_s: turn.waiting_since_s,
                charging_since_s: turn.charging_since_s,
            }
        })
        .collect();
    let input = AllocInput {
        phases: usize::from(cfg.site.phases),
        site_limit_a,
        margin_a: cfg.site.margin_a,
        total_limit_a,
        circuits: CircuitInput::from_config(cfg),
        grid_a: base,
        chargers,
        now_s,
        rotation_interval_s: cfg.control.rotation_interval.as_secs_f64(),
    };
    let decisions = allocate(&input);
    for (i, d) in decisions.iter().enumerate() {
        let connected = demand[i].is_some();
        turns[i] = turns[i].after(d, connected, now_s);
        site.set_offer_direct(i, d.setpoint_a);
    }
}
