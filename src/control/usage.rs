//! What a car really uses of what its charger offers. A 1-phase car on a 3-phase charger
//! leaves two phases idle; a car that accepts only 16 A, or tapers near full, leaves part of
//! its setpoint unused. The tracker watches each charger's measured currents and tells the
//! allocator which phases count and how much the car will take, so the rest reaches others.
//!
//! Pure: the caller feeds it one observation per control cycle, with the time.

/// A phase drawing less than this is idle.
const PHASE_IDLE_A: f64 = 1.0;
/// Idle phases are only judged while another phase draws at least this.
const PHASE_DRAWING_A: f64 = 3.0;

/// What the allocator needs to know about a car's real use of its charger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// The most the car will take, when it has shown it takes less than it is offered.
    pub demand_cap_a: Option<f64>,
    /// Per charger phase (index as in the charger's `phase_map`): does the car draw on it.
    pub active: [bool; 3],
}

impl Default for Usage {
    /// Nothing known: every phase counts, no cap. The safe assumption.
    fn default() -> Self {
        Usage {
            demand_cap_a: None,
            active: [true; 3],
        }
    }
}

/// Tuning of the tracker. [`UsageParams::new`] gives the defaults around the one
/// configured value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageParams {
    /// Headroom kept above what the car draws (config `unused_threshold_a`); a shortfall
    /// larger than this is capacity the car does not use.
    pub headroom_a: f64,
    /// Time a car gets to follow a raised setpoint before it is judged (IEC 61851 allows 5 s).
    pub settle_s: f64,
    /// How long a shortfall must last before the cap is set.
    pub persist_s: f64,
    /// Consecutive observations a phase must be idle before it stops counting.
    pub idle_observations: u32,
}

impl UsageParams {
    pub fn new(unused_threshold_a: f64) -> Self {
        UsageParams {
            headroom_a: unused_threshold_a,
            settle_s: 6.0,
            persist_s: 10.0,
            idle_observations: 3,
        }
    }
}

/// Per-charger usage state machine; keep one per charger, [`UsageTracker::reset`] on unplug.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageTracker {
    params: UsageParams,
    phases: usize,
    min_a: f64,
    max_a: f64,
    usage: Usage,
    idle_counts: [u32; 3],
    /// The last setpoint seen and when the car was last given more (or started charging).
    last_setpoint_a: f64,
    last_charging: bool,
    raised_at_s: Option<f64>,
    shortfall_since_s: Option<f64>,
}

impl UsageTracker {
    /// A tracker for a charger with `phases` phases (1–3) and its configured current range.
    pub fn new(params: UsageParams, phases: usize, min_a: f64, max_a: f64) -> Self {
        UsageTracker {
            params,
            phases: phases.clamp(1, 3),
            min_a,
            max_a,
            usage: Usage::default(),
            idle_counts: [0; 3],
            last_setpoint_a: 0.0,
            last_charging: false,
            raised_at_s: None,
            shortfall_since_s: None,
        }
    }

    /// Forget everything learnt about the car: the next car is a stranger.
    pub fn reset(&mut self) {
        *self = UsageTracker::new(self.params, self.phases, self.min_a, self.max_a);
    }

    /// The current judgement, without a new observation.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// One observation: the setpoint in force, the measured current per charger phase
    /// (missing phases count as unknown, hence active), whether the car is charging.
    pub fn observe(
        &mut self,
        setpoint_a: f64,
        measured_a: &[f64],
        charging: bool,
        now_s: f64,
    ) -> Usage {
        let measured: [Option<f64>; 3] =
            std::array::from_fn(|i| measured_a.get(i).copied().filter(|m| m.is_finite()));
        if setpoint_a > self.last_setpoint_a || (charging && !self.last_charging) {
            // More was offered (or the car just started): give it time to ramp.
            self.raised_at_s = Some(now_s);
            self.shortfall_since_s = None;
        }
        self.last_setpoint_a = setpoint_a;
        self.last_charging = charging;

        self.observe_phases(&measured, charging);
        if charging {
            self.observe_demand(setpoint_a, &measured, now_s);
        } else {
            self.shortfall_since_s = None;
        }
        self.usage
    }

    fn observe_phases(&mut self, measured: &[Option<f64>; 3], charging: bool) {
        let drawing = measured[..self.phases]
            .iter()
            .flatten()
            .any(|&m| m >= PHASE_DRAWING_A);
        for (i, &m) in measured.iter().enumerate().take(self.phases) {
            match m {
                // Unknown or drawing: counts at once (safety: never miss a phase that loads).
                None => self.set_active(i),
                Some(m) if m >= PHASE_IDLE_A => self.set_active(i),
                Some(_) if charging && drawing => {
                    self.idle_counts[i] = self.idle_counts[i].saturating_add(1);
                    if self.idle_counts[i] >= self.params.idle_observations {
                        self.usage.active[i] = false;
                    }
                }
                // Nothing drawn anywhere says nothing about which phases the car uses.
                Some(_) => self.idle_counts[i] = 0,
            }
        }
        if !self.usage.active[..self.phases].iter().any(|&a| a) {
            // Cannot happen with the rules above; never let a charger count on no phase.
            self.usage.active = [true; 3];
        }
    }

    fn set_active(&mut self, phase: usize) {
        self.idle_counts[phase] = 0;
        self.usage.active[phase] = true;
    }

    fn observe_demand(&mut self, setpoint_a: f64, measured: &[Option<f64>; 3], now_s: f64) {
        let headroom = self.params.headroom_a;
        let Some(drawn) = measured[..self.phases]
            .iter()
            .flatten()
            .copied()
            .reduce(f64::max)
        else {
            return;
        };

        // Hand capacity back as soon as the car draws close to its cap.
        if let Some(cap) = self.usage.demand_cap_a {
            if drawn >= cap - headroom / 2.0 {
                let raised = cap + headroom;
                self.usage.demand_cap_a = (raised < self.max_a).then_some(raised);
                self.shortfall_since_s = None;
                return;
            }
        }

        let settled = match self.raised_at_s {
            Some(t) => now_s - t >= self.params.settle_s,
            None => true,
        };
        if !settled || setpoint_a < self.min_a || drawn >= setpoint_a - headroom {
            self.shortfall_since_s = None;
            return;
        }
        let since = *self.shortfall_since_s.get_or_insert(now_s);
        if now_s - since >= self.params.persist_s {
            let cap = (drawn + headroom).max(self.min_a);
            self.usage.demand_cap_a = Some(self.usage.demand_cap_a.map_or(cap, |c| c.min(cap)));
            // The next judgement starts afresh against the lowered offer.
            self.shortfall_since_s = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(phases: usize) -> UsageTracker {
        UsageTracker::new(UsageParams::new(2.0), phases, 6.0, 32.0)
    }

    #[test]
    fn one_phase_car_on_three_phase_charger_frees_two_phases_after_a_few_cycles() {
        let mut t = tracker(3);
        for k in 0..2 {
            let u = t.observe(16.0, &[15.8, 0.1, 0.0], true, k as f64);
            assert_eq!(u.active, [true; 3], "judged too early at {k}");
        }
        let u = t.observe(16.0, &[15.8, 0.1, 0.0], true, 2.0);
        assert_eq!(u.active, [true, false, false]);
        // A phase that starts drawing counts again at once.
        let u = t.observe(16.0, &[15.8, 5.0, 0.0], true, 3.0);
        assert_eq!(u.active, [true, true, false]);
    }

    #[test]
    fn idle_phases_are_not_judged_when_nothing_draws() {
        let mut t = tracker(3);
        for k in 0..10 {
            let u = t.observe(16.0, &[0.2, 0.1, 0.0], true, k as f64);
            assert_eq!(u.active, [true; 3]);
        }
    }

    #[test]
    fn unknown_measurement_counts_as_active() {
        let mut t = tracker(3);
        for k in 0..5 {
            t.observe(16.0, &[15.8, 0.1, 0.0], true, k as f64);
        }
        let u = t.observe(16.0, &[15.8, f64::NAN, 0.0], true, 6.0);
        assert_eq!(u.active, [true, true, false]);
    }

    #[test]
    fn car_capped_below_setpoint_gets_a_demand_cap_after_settling_and_persisting() {
        let mut t = tracker(3);
        let draw = [16.0, 16.0, 16.0];
        let mut cap_at = None;
        for k in 0..30 {
            let u = t.observe(32.0, &draw, true, k as f64);
            if u.demand_cap_a.is_some() && cap_at.is_none() {
                cap_at = Some(k);
                assert_eq!(u.demand_cap_a, Some(18.0));
            }
        }
        // Settle (6 s) then persist (10 s) from the charging start at t=0.
        assert_eq!(cap_at, Some(16));
    }

    #[test]
    fn a_raised_setpoint_gets_time_before_the_car_is_judged() {
        let mut t = tracker(1);
        for k in 0..5 {
            t.observe(10.0, &[10.0], true, k as f64);
        }
        // Raised at t=5; the car lags behind for 5 s, within its allowed response time.
        for k in 5..11 {
            let u = t.observe(32.0, &[10.0], true, k as f64);
            assert_eq!(u.demand_cap_a, None);
        }
        for k in 11..16 {
            let u = t.observe(32.0, &[31.0], true, k as f64);
            assert_eq!(
                u.demand_cap_a, None,
                "a car following its setpoint is not capped"
            );
        }
    }

    #[test]
    fn cap_is_handed_back_when_the_car_draws_again() {
        let mut t = tracker(1);
        for k in 0..20 {
            t.observe(32.0, &[16.0], true, k as f64);
        }
        assert_eq!(t.usage().demand_cap_a, Some(18.0));
        // Holding steady at its own limit keeps the cap.
        let u = t.observe(18.0, &[16.0], true, 20.0);
        assert_eq!(u.demand_cap_a, Some(18.0));
        // Drawing up to the cap raises it by the headroom, repeatedly, then releases it.
        let u = t.observe(18.0, &[17.5], true, 21.0);
        assert_eq!(u.demand_cap_a, Some(20.0));
        let mut cap = u.demand_cap_a;
        let mut k = 22.0;
        while let Some(c) = cap {
            cap = t.observe(c, &[c - 0.5], true, k).demand_cap_a;
            k += 1.0;
            assert!(k < 40.0, "cap never released");
        }
    }

    #[test]
    fn tapering_car_is_capped_progressively_never_below_min() {
        let mut t = tracker(1);
        let mut draw = 20.0;
        let mut setpoint = 32.0;
        for k in 0..200 {
            let u = t.observe(setpoint, &[draw], true, k as f64);
            if let Some(c) = u.demand_cap_a {
                assert!(c >= 6.0);
                setpoint = c;
            }
            draw = f64::max(draw - 0.2, 1.0);
        }
        assert_eq!(t.usage().demand_cap_a, Some(6.0));
    }

    #[test]
    fn reset_on_unplug_forgets_the_car() {
        let mut t = tracker(3);
        for k in 0..20 {
            t.observe(32.0, &[16.0, 0.0, 0.0], true, k as f64);
        }
        assert_ne!(t.usage(), Usage::default());
        t.reset();
        assert_eq!(t.usage(), Usage::default());
    }
}
