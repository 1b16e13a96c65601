//! Shaping over time, fed from each cycle: the demand window's budget, the installer's
//! schedules and the sessions' departure plans. Each only ever adds a lower cap to what the
//! allocator gets; the rules themselves are pure (see [`crate::control::demand`],
//! [`crate::control::schedule`], [`crate::control::plan`]).

use chrono::{DateTime, Utc};

use super::{charger_currents, Controller};
use crate::alerts::AlertKind;
use crate::control::limits::{AuthHold, ChargerObs, CycleLimits, CycleObs, PlanHold};
use crate::control::plan::{self, Plan, PlanStatus};
use crate::control::safety::Mode;
use crate::devices::model::ChargeState;
use crate::devices::Snapshot;

/// What a plan's car is expected to take, as a share of what it could.
const PLAN_POWER_SHARE: f64 = 0.9;

/// A session's plan and what it has had so far.
#[derive(Debug, Clone, Default)]
pub(super) struct PlanRt {
    /// A plan set by command for this (or the next) session, replacing the config's.
    pub commanded: Option<Plan>,
    /// The plan of the session in progress.
    pub active: Option<Plan>,
    pub delivered_wh: f64,
    /// The last draw seen and when, on the clock's steady time (energy is integrated over
    /// monotonic time, so a step of the wall clock adds nothing).
    pub last: Option<(DateTime<Utc>, f64)>,
    pub charging: bool,
    pub connected: bool,
    /// `commanded` was restored for the session in progress at the last stop, with its
    /// energy so far: kept only if the first reading still finds a car plugged in.
    pub restored: Option<f64>,
}

impl PlanRt {
    /// A plan whose energy is not in yet, in a slot where it charges.
    pub fn due(&self) -> bool {
        self.charging && self.status().is_some_and(|p| !p.met)
    }

    pub fn status(&self) -> Option<PlanStatus> {
        self.active.map(|p| PlanStatus {
            energy_wh: p.energy_wh,
            depart_at: p.depart_at,
            delivered_wh: self.delivered_wh,
            met: self.delivered_wh >= p.energy_wh as f64,
            charging: self.charging,
        })
    }
}

/// The allocator's priority class of a charger. A car that took nothing when offered current
/// (charging complete, or not ready) is served after every car that charges, and only at its
/// minimum: it keeps the chance to resume without holding capacity others can use. The others
/// go by the installer's priority (0–9) and, inside it, a car whose plan is due first: the
/// plan's energy can only be in by the deadline if the car gets the room its slots assumed,
/// not an equal share with every car that can wait.
pub fn alloc_priority(idle: bool, installer: u8, plan_due: bool) -> u8 {
    if idle {
        0
    } else {
        installer
            .saturating_mul(2)
            .saturating_add(1 + u8::from(plan_due))
    }
}

/// A charger's draw in W: its power register, else its currents at the site's voltage.
fn draw_w(s: &Snapshot, phases: usize, voltage_v: f64) -> f64 {
    crate::electric::charger_power_w(s.power_w, &charger_currents(s, phases), voltage_v)
}

impl Controller {
    /// Every limit in force this cycle, from the resolver and this cycle's observations:
    /// the demand window, the plans (priced only in normal mode, where they are used), the
    /// idle watch and the mode.
    pub(super) fn resolve_limits(&mut self, mode: Mode, normal: bool) -> CycleLimits {
        // Cars with a plan still to meet share what the site can give them.
        let plan_cars = self
            .chargers
            .iter()
            .filter(|c| c.plan.status().is_some_and(|p| !p.met))
            .count();
        let holds: Vec<Option<PlanHold>> = (0..self.chargers.len())
            .map(|i| {
                if normal {
                    self.plan_hold(i, plan_cars)
                } else {
                    None
                }
            })
            .collect();
        let chargers = self
            .chargers
            .iter()
            .zip(holds)
            .map(|(c, plan_hold)| ChargerObs {
                connected: Self::online(c)
                    .is_some_and(|s| s.state.unwrap_or(ChargeState::A).is_connected()),
                idle: c.idle.idle,
                plan_hold,
                auth_hold: AuthHold::of(c.auth.status()),
            })
            .collect();
        self.limits.resolve(&CycleObs {
            now: self.clock.now(),
            time_trusted: self.clock_view.trusted,
            mode,
            demand: self.demand_status,
            chargers,
        })
    }

    /// Account the window's import from this cycle's readings; raise or clear
    /// `demand_exceeded`. `grid`: the meter's complete phase currents, if read.
    pub(super) fn observe_demand(&mut self, meter: Option<&Snapshot>, grid: Option<[f64; 3]>) {
        let Some(dm) = self.demand.as_mut() else {
            return;
        };
        let v = self.cfg.site.voltage_v;
        let chargers_w: f64 = self
            .chargers
            .iter()
            .filter_map(|c| Self::online(c).map(|s| draw_w(s, c.cfg.phase_map.len(), v)))
            .sum();
        let import_w = meter.and_then(|s| s.power_w).or_else(|| {
            grid.map(|g| {
                g.iter()
                    .take(usize::from(self.cfg.site.phases))
                    .sum::<f64>()
                    * v
            })
        });
        let include_building = dm.settings().include_building;
        let (import_w, building_w) = if include_building {
            (
                import_w,
                import_w.map_or(0.0, |p| (p - chargers_w).max(0.0)),
            )
        } else {
            (Some(chargers_w), 0.0)
        };
        let (now, steady) = self.clock.now_and_steady();
        let status = dm.observe_steady(now, steady, import_w, building_w);
        if let Some(w) = status.finished {
            tracing::debug!(
                start = %w.start,
                demand_kw = w.demand_kw,
                limit_kw = w.limit_kw,
                "demand window closed"
            );
        }
        let raise = status.building_exceeds && !self.demand_reported;
        // Cleared at a window's start when the building alone fits again: not every cycle,
        // so a building load near the target does not flap the alert.
        let clear = self.demand_reported && !status.building_exceeds && status.finished.is_some();
        self.demand_status = Some(status);
        if raise {
            self.demand_reported = true;
            self.alert(
                AlertKind::DemandExceeded,
                true,
                None,
                format!(
                    "the building alone will take the demand window over {} kW, every charger paused",
                    status.limit_kw
                ),
            );
        } else if clear {
            self.demand_reported = false;
            self.alert(
                AlertKind::DemandExceeded,
                false,
                None,
                "the building's load fits the demand window again".into(),
            );
        }
    }

    /// Follow every charger's session plan: start one at plug-in, count what it delivered,
    /// end it at unplug.
    pub(super) fn observe_plans(&mut self) {
        let (now, steady) = self.clock.now_and_steady();
        let tz = self.cfg.site.timezone;
        let v = self.cfg.site.voltage_v;
        for c in &mut self.chargers {
            let Some(s) = Self::online(c).cloned() else {
                continue;
            };
            let connected = s.state.is_some_and(|st| st.is_connected());
            let p = &mut c.plan;
            if let Some(delivered) = p.restored.take() {
                if connected {
                    // The session goes on: its plan with what it already had.
                    p.active = p.commanded;
                    p.delivered_wh = delivered;
                    p.last = None;
                    p.connected = true;
                } else {
                    // The car left while evsite was down: the plan went with its session.
                    p.commanded = None;
                }
            }
            if connected && !p.connected {
                p.active = p.commanded.or_else(|| {
                    c.cfg.plan.map(|spec| Plan {
                        energy_wh: spec.energy_wh,
                        depart_at: plan::next_local(now, spec.depart_min, tz),
                    })
                });
                p.delivered_wh = 0.0;
                p.last = None;
            } else if !connected && p.connected {
                p.active = None;
                p.commanded = None;
                p.charging = false;
            }
            p.connected = connected;
            if connected {
                let w = draw_w(&s, c.cfg.phase_map.len(), v);
                if let Some((t0, w0)) = p.last {
                    let dt = (steady - t0).num_milliseconds().max(0) as f64 / 1000.0;
                    p.delivered_wh += w0 * dt / 3600.0;
                }
                p.last = Some((steady, w));
            }
        }
    }

    /// A cloud plan for a charger's session (None: back to the config's, if any). With a car
    /// connected it replaces the plan in force at once; otherwise it waits for the next one.
    pub(super) fn set_plan(&mut self, charger: &str, plan: Option<Plan>) {
        let Some(c) = self.chargers.iter_mut().find(|c| c.cfg.id == charger) else {
            tracing::warn!(charger, "set_plan for a charger not in the config");
            return;
        };
        c.plan.commanded = plan;
        // A new command replaces a plan restored at start, and is applied as any other.
        c.plan.restored = None;
        if c.plan.connected {
            let tz = self.cfg.site.timezone;
            let now = self.clock.now();
            c.plan.active = plan.or_else(|| {
                c.cfg.plan.map(|spec| Plan {
                    energy_wh: spec.energy_wh,
                    depart_at: plan::next_local(now, spec.depart_min, tz),
                })
            });
        }
    }

    /// A commanded plan of the session that was in progress at the last stop (see
    /// [`ControlCommand::RestorePlan`](crate::control::command::ControlCommand)).
    pub(super) fn restore_plan(&mut self, charger: &str, plan: Plan, delivered_wh: f64) {
        let Some(c) = self.chargers.iter_mut().find(|c| c.cfg.id == charger) else {
            return;
        };
        c.plan.commanded = Some(plan);
        c.plan.restored = Some(delivered_wh.max(0.0));
    }

    /// The hold a plan sets on charger `i` now (0 A for cheaper slots), None while charging
    /// (or with no plan). The car is expected to take its maximum, or an equal share of the
    /// site's target (`[demand]`, else the grid limit) with the other cars that have a plan
    /// to meet, whichever is less. `plan_cars`: cars with a plan still to meet, sharing the site.
    pub(super) fn plan_hold(&mut self, i: usize, plan_cars: usize) -> Option<PlanHold> {
        let now = self.clock.now();
        let site = &self.cfg.site;
        let mut site_w = site.grid_limit_a * site.voltage_v * f64::from(site.phases);
        if let Some(d) = &self.demand_status {
            site_w = site_w.min(d.limit_kw * 1000.0);
        }
        // The building's load later on is not known: the reserve and the recomputation every
        // cycle absorb it (a plan falling behind pulls dearer slots in).
        let share_w = site_w / plan_cars.max(1) as f64;
        let c = &self.chargers[i];
        let plan = c.plan.active?;
        let car_w = self.limits.ceiling(i).limit_a * site.voltage_v * c.cfg.phase_map.len() as f64;
        let power_w = car_w.min(share_w) * PLAN_POWER_SHARE;
        let missing = plan.energy_wh as f64 - c.plan.delivered_wh;
        let (charge, until) = match &self.tariff {
            Some(t) => {
                let price = |at| t.price_at(at).1;
                let charge = plan::charge_now(now, plan.depart_at, missing, power_w, &price);
                let until = (!charge)
                    .then(|| plan::hold_until(now, plan.depart_at, missing, power_w, &price))
                    .flatten();
                (charge, until)
            }
            None => (true, None),
        };
        self.chargers[i].plan.charging = charge;
        (!charge).then_some(PlanHold { until })
    }
}

#[cfg(test)]
mod tests {
    use super::alloc_priority;

    #[test]
    fn a_due_plan_goes_first_inside_the_installers_priority_never_above_it() {
        // Idle cars last, whatever else holds.
        assert_eq!(alloc_priority(true, 9, true), 0);
        for p in 0..=9u8 {
            let plain = alloc_priority(false, p, false);
            let due = alloc_priority(false, p, true);
            assert!(plain > 0 && due > plain);
            if p < 9 {
                assert!(alloc_priority(false, p + 1, false) > due, "priority {p}");
            }
        }
    }
}
