//! The overload fast path. Between full cycles the main meter is read on its own, every
//! `control.meter_interval_ms`. When a phase is above the limit in force, the chargers are
//! read again (the base load is grid minus chargers, so both must be of the same
//! moment), the allocation is re-run on these readings, and only its decreases are written, at
//! once: nothing is ever raised, and a charger is never set between 0 and its minimum (it is
//! paused instead). The next full cycle takes over from the setpoints written here.
//!
//! Why the limit itself and not the limit less the margin: the cycle plans every phase to at
//! most the limit less the margin, and the margin is there for load that appears between two
//! readings. A rise that stays within the margin cannot overload anything, and the cycle
//! answers it within the interval as before; a step larger than the margin crosses the limit
//! at once, and is seen by the first check after it. Acting inside the margin made the checks
//! answer every flicker of the building's load (on `apartment-evening`, ±2 A of noise against
//! a 2 A margin: 12,418 interventions in 6 h, 1.3 % of the energy lost, and the meter-drift
//! rule misled by the extra setpoint changes) and prevented no overload more.
//!
//! It acts only when the last full cycle ran in `normal` or `holding` mode: in `startup` and
//! `failsafe` every charger already is at the fail-safe current, which config validation
//! proved fits the limit with no measurement. The meter's health (`MeterWatch`) is judged by
//! the full cycles alone: a check that cannot read the meter does nothing.

use super::*;

/// What one meter check did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeterCheck {
    /// The meter answered with every phase the site has.
    pub read: bool,
    /// Some phase was above the limit in force.
    pub over: bool,
    /// Setpoints lowered (written and acknowledged).
    pub lowered: usize,
}

/// The setpoint the fast path writes to a charger last given `written` when the allocation
/// now asks for `allocated`, or None when nothing is to be written: never above `written`,
/// never between 0 and `min_a` (paused instead), and only when lower than `written`.
pub fn lowered_setpoint(written: f64, allocated: f64, min_a: f64) -> Option<f64> {
    // A NaN allocation can only mean "pause"; `min` would otherwise keep `written`.
    let t = if allocated.is_nan() {
        0.0
    } else {
        allocated.min(written)
    };
    let t = if t < min_a || t <= 0.0 { 0.0 } else { t };
    (t < written - 1e-6).then_some(t)
}

impl Controller {
    /// One read of the main meter between full cycles; on an overload threat, the lowered
    /// setpoints are computed and written at once (see the module's text).
    pub async fn meter_check(&mut self) -> MeterCheck {
        let mut out = MeterCheck::default();
        if !matches!(self.mode, Mode::Normal | Mode::Holding) {
            return out;
        }
        let Some(grid) = self
            .meter
            .read_all()
            .await
            .ok()
            .and_then(|s| complete_currents(&s, self.cfg.site.phases))
        else {
            return out;
        };
        out.read = true;
        // The limits the last cycle resolved: a check works to the same ones.
        let limits = self.cycle_limits.clone();
        let limit = limits.site.limit_a;
        let phases = usize::from(self.cfg.site.phases);
        if !grid.iter().take(phases).any(|&a| a > limit) {
            return out;
        }
        out.over = true;
        // Fresh charger readings where they cost one round trip (Modbus TCP, read in
        // parallel): with the last cycle's, a car that has since followed an increase would be
        // taken for a rise in base load, and shed for nothing. A charger on a serial line is
        // not read again (its line would hold the decrease back by a whole round); it keeps
        // its last reading, counted at no less than its setpoint on the phases it uses, which
        // bounds what it can draw now. A charger that does not answer now keeps its last
        // reading (its health is the cycle's to judge).
        let reads = join_all(self.chargers.iter().map(|c| async move {
            if c.fails == 0 && matches!(c.cfg.device.link, Link::Tcp { .. }) {
                c.dev.read_all().await.ok()
            } else {
                None
            }
        }))
        .await;
        let mut fresh = vec![false; self.chargers.len()];
        for ((c, r), f) in self.chargers.iter_mut().zip(reads).zip(&mut fresh) {
            if let Some(s) = r {
                c.last = Some(s);
                *f = true;
            }
        }
        let now_s = self.clock.elapsed_s();
        let mut inputs = self.charger_inputs(&limits);
        for ((inp, c), fresh) in inputs.iter_mut().zip(&self.chargers).zip(fresh) {
            // The most it can draw now: its setpoint, or less when the car has shown it
            // takes less than it is offered.
            let bound = c
                .written
                .unwrap_or(0.0)
                .min(inp.usage.demand_cap_a.unwrap_or(f64::INFINITY));
            if let LinkState::Online { measured_a, .. } = &mut inp.link {
                if !fresh {
                    for (k, m) in measured_a.iter_mut().enumerate() {
                        if inp.usage.active.get(k).copied().unwrap_or(false) {
                            *m = m.max(bound);
                        }
                    }
                }
            }
        }
        // The raw reading: at the limit, the base load is taken as read (as the cycle does).
        let input = self.alloc_input(grid, inputs, now_s, &limits);
        let decisions = allocate(&input);
        let jobs: Vec<(usize, f64)> = self
            .chargers
            .iter()
            .zip(&decisions)
            .enumerate()
            .filter(|(_, (c, d))| Self::online(c).is_some() && !matches!(d.reason, Reason::Offline))
            .filter_map(|(i, (c, d))| {
                let w = c.written?;
                lowered_setpoint(w, d.setpoint_a, c.cfg.min_current_a).map(|t| (i, t))
            })
            .collect();
        if jobs.is_empty() {
            return out;
        }
        // A lowered setpoint is never above the one written, so a failed write leaves the
        // old one counted.
        out.lowered = self.write_setpoints(&jobs, Instant::now()).await;
        self.fast_interventions += 1;
        tracing::debug!(
            grid = ?grid,
            limit_a = limit,
            lowered = out.lowered,
            "overload threat between cycles: setpoints lowered at once"
        );
        out
    }

    /// Meter checks so far that lowered setpoints (or tried to).
    pub fn fast_interventions(&self) -> u64 {
        self.fast_interventions
    }
}

#[cfg(test)]
mod tests {
    use super::lowered_setpoint;
    use proptest::prelude::*;

    #[test]
    fn lowers_pauses_under_the_minimum_and_never_raises() {
        assert_eq!(lowered_setpoint(16.0, 10.0, 6.0), Some(10.0));
        assert_eq!(lowered_setpoint(16.0, 4.0, 6.0), Some(0.0));
        assert_eq!(lowered_setpoint(16.0, 20.0, 6.0), None);
        assert_eq!(lowered_setpoint(16.0, 16.0, 6.0), None);
        assert_eq!(lowered_setpoint(0.0, 10.0, 6.0), None);
        assert_eq!(lowered_setpoint(16.0, f64::NAN, 6.0), Some(0.0));
    }

    proptest! {
        #[test]
        fn never_above_written_nor_between_zero_and_minimum(
            written in 0.0f64..80.0,
            allocated in -5.0f64..80.0,
            min_a in 0.0f64..16.0,
        ) {
            if let Some(t) = lowered_setpoint(written, allocated, min_a) {
                prop_assert!(t < written);
                prop_assert!(t == 0.0 || t >= min_a);
            }
        }
    }
}
