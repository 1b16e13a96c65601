//! The targets of one cycle: from the readings to the setpoints each mode asks for — the
//! allocation (normal), holding what was written (meter briefly missing), and the fail-safe
//! current — and the ramp and increase gate between the allocation and the writes.

use super::*;

impl Controller {
    pub(super) fn normal_targets(
        &mut self,
        grid: [f64; 3],
        now_s: f64,
        limits: &CycleLimits,
    ) -> Vec<f64> {
        let inputs = self.charger_inputs(limits);
        let grid = self.filtered_grid(grid, &inputs, limits);
        let input = self.alloc_input(grid, inputs, now_s, limits);
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
        let targets = self.ramp_and_gate(&input, &decisions);
        self.allocation = Some((input, decisions));
        targets
    }

    /// The allocator's input for the grid current `grid` (base load already as it should be
    /// counted) and the chargers' `inputs`.
    pub(super) fn alloc_input(
        &self,
        grid: [f64; 3],
        inputs: Vec<ChargerInput>,
        now_s: f64,
        limits: &CycleLimits,
    ) -> AllocInput {
        AllocInput {
            phases: usize::from(self.cfg.site.phases),
            site_limit_a: limits.site.limit_a,
            margin_a: self.cfg.site.margin_a,
            total_limit_a: limits.total_a,
            circuits: limits.circuit_inputs(),
            grid_a: grid,
            chargers: inputs,
            now_s,
            rotation_interval_s: self.cfg.control.rotation_interval.as_secs_f64(),
        }
    }

    /// Feed every online charger's last reading to its usage tracker and idle watch: once
    /// per full cycle in normal mode, before the limits are resolved (an idle car is capped).
    pub(super) fn observe_usage(&mut self, now_s: f64) {
        for c in &mut self.chargers {
            let Some(s) = Self::online(c).cloned() else {
                continue;
            };
            let state = s.state.unwrap_or(ChargeState::A);
            let measured = charger_currents(&s, c.cfg.phase_map.len());
            if !state.is_connected() {
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
    }

    /// Every charger's allocator input from its last reading, under `limits`. Changes
    /// nothing (the overload fast path builds its input here too).
    pub(super) fn charger_inputs(&self, limits: &CycleLimits) -> Vec<ChargerInput> {
        self.chargers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let link = match Self::online(c) {
                    Some(s) => LinkState::Online {
                        state: s.state.unwrap_or(ChargeState::A),
                        measured_a: charger_currents(s, c.cfg.phase_map.len()),
                    },
                    None => LinkState::Offline {
                        assumed_a: c.assumed_a(),
                    },
                };
                ChargerInput {
                    phase_map: c.cfg.phase_map.clone(),
                    min_a: c.cfg.min_current_a,
                    max_a: c.cfg.max_current_a,
                    priority: alloc_priority(c.idle.idle, c.cfg.priority, c.plan.due()),
                    enabled: limits.chargers[i].enabled,
                    cap_a: limits.cap_a(i),
                    step_a: setpoint_step_a(c.dev.spec()),
                    link,
                    usage: c.usage.usage(),
                    waiting_since_s: c.turn.waiting_since_s,
                    charging_since_s: c.turn.charging_since_s,
                }
            })
            .collect()
    }

    /// The grid reading with its base-load part smoothed (see [`BaseLoadFilter`]): chargers'
    /// measured currents are kept as read, so the allocator's base load is the filtered one.
    fn filtered_grid(
        &mut self,
        grid: [f64; 3],
        inputs: &[ChargerInput],
        limits: &CycleLimits,
    ) -> [f64; 3] {
        let chargers = online_draw_a(inputs);
        let raw: [f64; 3] = std::array::from_fn(|p| grid[p] - chargers[p]);
        let threshold = limits.control.limit_a - self.cfg.site.margin_a;
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
    pub(super) fn holding_targets(&self, limits: &CycleLimits) -> Vec<f64> {
        self.chargers
            .iter()
            .zip(&limits.chargers)
            .map(|(c, l)| match Self::online(c) {
                Some(s) if !s.state.is_some_and(|st| st.is_connected()) => 0.0,
                _ if !l.enabled => 0.0,
                _ => c.written.unwrap_or(l.failsafe_a).min(l.ceiling.limit_a),
            })
            .collect()
    }

    /// No trustworthy measurement: every charger at the fail-safe current (proved to fit the
    /// limit with no knowledge of the base load by config validation).
    pub(super) fn failsafe_targets(&self, limits: &CycleLimits) -> Vec<f64> {
        self.chargers
            .iter()
            .zip(&limits.chargers)
            .map(|(c, l)| {
                let connected = Self::online(c)
                    .and_then(|s| s.state)
                    .is_some_and(|s| s.is_connected());
                if connected && l.enabled {
                    l.failsafe_a
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
