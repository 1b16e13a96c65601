//! The targets of one cycle: from the readings to the setpoints each mode asks for — the
//! allocation (normal), holding what was written (meter briefly missing), and the fail-safe
//! current — and the ramp and increase gate between the allocation and the writes.

use super::*;

impl Controller {
    pub(super) fn normal_targets(&mut self, grid: [f64; 3], now_s: f64) -> Vec<f64> {
        let inputs = self.charger_inputs(now_s, true);
        let grid = self.filtered_grid(grid, &inputs);
        let input = self.alloc_input(grid, inputs, now_s);
        let decisions = allocate(&input);
        for ((c, d), i) in self
            .chargers
            .iter_mut()
            .zip(&decisions)
            .zip(&input.chargers)
        {
            let connected =
                matches!(i.link, LinkState::Online { state, .. } if state.is_connected());
            c.turn = c.turn.after(d, connected, now_s);
            c.reason = d.reason;
        }
        self.ramp_and_gate(&input, &decisions)
    }

    /// The allocator's input for the grid current `grid` (base load already as it should be
    /// counted) and the chargers' `inputs`.
    pub(super) fn alloc_input(
        &self,
        grid: [f64; 3],
        inputs: Vec<ChargerInput>,
        now_s: f64,
    ) -> AllocInput {
        AllocInput {
            phases: usize::from(self.cfg.site.phases),
            site_limit_a: self.site_limit().limit_a,
            margin_a: self.cfg.site.margin_a,
            total_limit_a: self.demand_total_a(),
            circuits: CircuitInput::from_config(&self.cfg),
            grid_a: grid,
            chargers: inputs,
            now_s,
            rotation_interval_s: self.cfg.control.rotation_interval.as_secs_f64(),
        }
    }

    /// Every charger's allocator input from its last reading. With `observe`, this reading
    /// is also fed to the usage tracker and the idle watch (once per full cycle); without it
    /// (the overload fast path) nothing is changed.
    pub(super) fn charger_inputs(&mut self, now_s: f64, observe: bool) -> Vec<ChargerInput> {
        // Usage first: it needs this cycle's measurement and the last setpoint.
        let mut inputs = Vec::with_capacity(self.chargers.len());
        let wall_now = self.clock.now();
        // Cars with a plan still to meet share what the site can give them.
        let plan_cars = self
            .chargers
            .iter()
            .filter(|c| c.plan.status().is_some_and(|p| !p.met))
            .count();
        let plan_caps: Vec<Option<f64>> = (0..self.chargers.len())
            .map(|i| self.plan_cap_a(i, plan_cars))
            .collect();
        let schedule_caps: Vec<Option<f64>> = self
            .chargers
            .iter()
            .map(|c| self.schedule_charger_a(c, wall_now))
            .collect();
        for (i, c) in self.chargers.iter_mut().enumerate() {
            let mut connected = false;
            let link = match Self::online(c).cloned() {
                Some(s) => {
                    let state = s.state.unwrap_or(ChargeState::A);
                    connected = state.is_connected();
                    let measured = charger_currents(&s, c.cfg.phase_map.len());
                    if observe {
                        if !connected {
                            c.usage.reset();
                        }
                        c.idle.observe(
                            state,
                            c.written.unwrap_or(0.0) >= c.cfg.min_current_a,
                            &measured,
                            now_s,
                        );
                        c.usage.observe(
                            c.written.unwrap_or(0.0),
                            &measured[..c.cfg.phase_map.len()],
                            state.is_charging(),
                            now_s,
                        );
                    }
                    LinkState::Online {
                        state,
                        measured_a: measured,
                    }
                }
                None => LinkState::Offline {
                    assumed_a: c.assumed_a(),
                },
            };
            let idle_cap = c.idle.idle.then_some(c.cfg.min_current_a);
            // Every cap is a minimum: the idle watch, cloud caps and profiles, the
            // installer's schedule and the session's plan. None of them can raise another.
            let profile_limit_a = crate::control::caps::lowest([
                idle_cap,
                Self::command_limit_a(&self.profiles, wall_now, c, connected),
                schedule_caps[i],
                plan_caps[i],
            ]);
            inputs.push(ChargerInput {
                phase_map: c.cfg.phase_map.clone(),
                min_a: c.cfg.min_current_a,
                max_a: c.cfg.max_current_a,
                priority: alloc_priority(c.idle.idle, c.cfg.priority, c.plan.due()),
                enabled: c.enabled(),
                profile_limit_a,
                step_a: setpoint_step_a(c.dev.spec()),
                link,
                usage: c.usage.usage(),
                waiting_since_s: c.turn.waiting_since_s,
                charging_since_s: c.turn.charging_since_s,
            });
        }
        inputs
    }

    /// The grid reading with its base-load part smoothed (see [`BaseLoadFilter`]): chargers'
    /// measured currents are kept as read, so the allocator's base load is the filtered one.
    fn filtered_grid(&mut self, grid: [f64; 3], inputs: &[ChargerInput]) -> [f64; 3] {
        let chargers = online_draw_a(inputs);
        let raw: [f64; 3] = std::array::from_fn(|p| grid[p] - chargers[p]);
        let threshold = self.control_limit().limit_a - self.cfg.site.margin_a;
        let base = self.base.update(raw, grid, threshold);
        std::array::from_fn(|p| base[p] + chargers[p])
    }

    /// Ramp increases, then let them through only into room free now. The allocation keeps
    /// the margin free; the gate lets the few seconds in which a car follows a lower limit use
    /// the margin, but never the limit itself: the worst case of that moment (the slow car
    /// still at its old current, the fast one already at its new) stays under the fuse.
    fn ramp_and_gate(&self, input: &AllocInput, decisions: &[Decision]) -> Vec<f64> {
        let ctl = &self.cfg.control;
        // Free capacity per constraint: site (0) then circuits (1..).
        let drawn = online_draw_a(&input.chargers);
        let mut site_free = [0.0; 3];
        for (p, free) in site_free.iter_mut().enumerate() {
            let base = input.grid_a[p] - drawn[p];
            *free = input.site_limit_a
                - base
                - offline_reserve(&self.chargers, &input.chargers, p, None);
        }
        let mut constraints = vec![GateConstraint { free_a: site_free }];
        for ci in &input.circuits {
            let mut free = [0.0; 3];
            for (p, f) in free.iter_mut().enumerate() {
                *f = ci.limit_a
                    - offline_reserve(&self.chargers, &input.chargers, p, Some(&ci.members));
            }
            constraints.push(GateConstraint { free_a: free });
        }
        let mut gated = Vec::new();
        let mut order: Vec<usize> = (0..self.chargers.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(input.chargers[i].priority));
        for (i, (c, d)) in self.chargers.iter().zip(decisions).enumerate() {
            let previous = c.written.unwrap_or(0.0);
            let wanted = if matches!(d.reason, Reason::Offline) {
                // Nothing can be written; keep it reserved as it is.
                previous
            } else {
                next_setpoint(
                    c.written,
                    d.setpoint_a,
                    ctl.ramp_step_a,
                    ctl.hysteresis_a,
                    c.cfg.min_current_a,
                )
            };
            let active = input.chargers[i].usage.active;
            let measured = match input.chargers[i].link {
                LinkState::Online { measured_a, .. } => measured_a,
                LinkState::Offline { assumed_a } => [assumed_a; 3],
            };
            let mut grid_phases = Vec::new();
            let mut meas = Vec::new();
            for (k, &gp) in c.cfg.phase_map.iter().enumerate() {
                if active[k] {
                    grid_phases.push(gp);
                    meas.push(measured[k]);
                }
            }
            let mut cons = vec![0];
            cons.extend(
                input
                    .circuits
                    .iter()
                    .enumerate()
                    .filter(|(_, ci)| ci.members.contains(&i))
                    .map(|(k, _)| k + 1),
            );
            gated.push(GateCharger {
                grid_phases,
                measured_a: meas,
                previous_a: previous,
                wanted_a: wanted,
                min_a: c.cfg.min_current_a,
                constraints: cons,
            });
        }
        gate(&gated, &constraints, &order)
    }

    /// Meter briefly missing: keep what was written, only ever lower it.
    pub(super) fn holding_targets(&self) -> Vec<f64> {
        self.chargers
            .iter()
            .map(|c| match Self::online(c) {
                Some(s) if !s.state.is_some_and(|st| st.is_connected()) => 0.0,
                _ if !c.enabled() => 0.0,
                _ => c
                    .written
                    .unwrap_or_else(|| self.failsafe_for(c))
                    .min(c.max_a()),
            })
            .collect()
    }

    pub(super) fn failsafe_for(&self, c: &ChargerRt) -> f64 {
        let f = self.cfg.site.failsafe_current_a.min(c.max_a());
        if f < c.cfg.min_current_a {
            0.0
        } else {
            f
        }
    }

    /// No trustworthy measurement: every charger at the fail-safe current (proved to fit the
    /// limit with no knowledge of the base load by config validation).
    pub(super) fn failsafe_targets(&self) -> Vec<f64> {
        self.chargers
            .iter()
            .map(|c| {
                let connected = Self::online(c)
                    .and_then(|s| s.state)
                    .is_some_and(|s| s.is_connected());
                if connected && c.enabled() {
                    self.failsafe_for(c)
                } else {
                    0.0
                }
            })
            .collect()
    }
}

fn offline_reserve(
    chargers: &[ChargerRt],
    inputs: &[ChargerInput],
    phase: usize,
    members: Option<&[usize]>,
) -> f64 {
    chargers
        .iter()
        .zip(inputs)
        .enumerate()
        .filter(|(i, _)| members.is_none_or(|m| m.contains(i)))
        .filter_map(|(_, (c, inp))| match inp.link {
            LinkState::Offline { assumed_a } => {
                Some(c.cfg.phase_map.iter().filter(|&&gp| gp == phase).count() as f64 * assumed_a)
            }
            LinkState::Online { .. } => None,
        })
        .sum()
}
