//! A plugged-in vehicle's charging physics, pure: it follows the offered current after its
//! response delay, tapers near full, stops at its target, and keeps the exact energy it took
//! (the truth a controller's session records are scored against).

use std::collections::VecDeque;

use super::scenario::VehicleSpec;

/// The current a tapering vehicle approaches as its battery gets full.
pub const TAPER_FLOOR_A: f64 = 2.0;

/// IEC 61851-1 gives a vehicle 5 s to follow a lower limit; a car slower than that is out of
/// the standard but real, and the simulator models it up to this delay so that its overload
/// can be scored apart from the controller's.
pub const COMPLIANT_DELAY_S: f64 = 5.0;
pub const MAX_RESPONSE_DELAY_S: f64 = 10.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    capacity_wh: f64,
    soc: f64,
    soc_target: f64,
    max_current_a: f64,
    phases: u8,
    response_delay_s: f64,
    taper_from_soc: f64,
    energy_wh: f64,
    /// Offer changes the vehicle has not reacted to yet: (time it reacts, amps).
    pending: VecDeque<(f64, f64)>,
    /// The offer the vehicle currently follows.
    following_a: f64,
    /// The last offer seen, to skip repeats.
    last_offer_a: f64,
    complete: bool,
}

impl Vehicle {
    pub fn new(spec: &VehicleSpec) -> Self {
        Vehicle {
            capacity_wh: spec.capacity_kwh * 1000.0,
            soc: spec.soc_start,
            soc_target: spec.soc_target,
            max_current_a: spec.max_current_a,
            phases: spec.phases,
            response_delay_s: spec.response_delay_s.clamp(0.0, MAX_RESPONSE_DELAY_S),
            taper_from_soc: spec.taper_from_soc,
            energy_wh: 0.0,
            pending: VecDeque::new(),
            following_a: 0.0,
            last_offer_a: 0.0,
            complete: spec.soc_start >= spec.soc_target,
        }
    }

    /// The charger offers `amps` from `now_s` on; the vehicle reacts after its delay.
    pub fn offer(&mut self, now_s: f64, amps: f64) {
        if amps == self.last_offer_a {
            return;
        }
        self.last_offer_a = amps;
        self.pending
            .push_back((now_s + self.response_delay_s, amps));
        self.apply_due(now_s);
    }

    /// React to every offer whose delay has run out by `t_s`.
    fn apply_due(&mut self, t_s: f64) {
        while let Some(&(at, amps)) = self.pending.front() {
            if at > t_s {
                break;
            }
            self.following_a = amps;
            self.pending.pop_front();
        }
    }

    /// A car slower than the standard allows that has not yet followed a lower offer: time
    /// over a limit now is its doing, not the controller's.
    pub fn lagging_decrease(&self) -> bool {
        self.response_delay_s > COMPLIANT_DELAY_S
            && self.current_a() > 0.0
            && self
                .pending
                .iter()
                .any(|&(_, amps)| amps < self.current_a())
    }

    /// The charger cut power (contactor open): the vehicle draws nothing at once.
    pub fn interrupt(&mut self) {
        self.pending.clear();
        self.following_a = 0.0;
        self.last_offer_a = 0.0;
    }

    /// The vehicle's own limit at its present state of charge: its maximum, falling linearly
    /// above `taper_from_soc` towards [`TAPER_FLOOR_A`] at full.
    fn own_limit_a(&self) -> f64 {
        if self.soc <= self.taper_from_soc || self.taper_from_soc >= 1.0 {
            return self.max_current_a;
        }
        let floor = TAPER_FLOOR_A.min(self.max_current_a);
        let f = ((self.soc - self.taper_from_soc) / (1.0 - self.taper_from_soc)).clamp(0.0, 1.0);
        self.max_current_a - (self.max_current_a - floor) * f
    }

    /// Phases the vehicle draws on, given the charger's: a 1-phase car on a 3-phase charger
    /// uses the charger's first phase only.
    pub fn active_phases(&self, charger_phases: u8) -> u8 {
        self.phases.min(charger_phases).max(1)
    }

    /// Current per active phase right now.
    pub fn current_a(&self) -> f64 {
        if self.complete || self.following_a <= 0.0 {
            0.0
        } else {
            self.following_a.min(self.own_limit_a())
        }
    }

    /// Current on each of the charger's phases (index = charger phase).
    pub fn phase_currents_a(&self, charger_phases: u8) -> [f64; 3] {
        let i = self.current_a();
        let n = usize::from(self.active_phases(charger_phases));
        let mut out = [0.0; 3];
        out.iter_mut().take(n).for_each(|c| *c = i);
        out
    }

    /// Advance from `now_s` by `dt_s` at `voltage_v` per phase; returns the energy taken in
    /// this step (Wh). Offers take effect exactly at their reaction time, even mid-step.
    pub fn step(&mut self, now_s: f64, dt_s: f64, voltage_v: f64, charger_phases: u8) -> f64 {
        let end = now_s + dt_s;
        let phases = f64::from(self.active_phases(charger_phases));
        let mut t = now_s;
        let mut taken = 0.0;
        loop {
            self.apply_due(t);
            if t >= end {
                break;
            }
            let next = self
                .pending
                .front()
                .map(|&(at, _)| at.min(end))
                .unwrap_or(end);
            let amps = self.current_a();
            if amps > 0.0 {
                let mut e = amps * voltage_v * phases * (next - t) / 3600.0;
                let room = ((self.soc_target - self.soc) * self.capacity_wh).max(0.0);
                if e >= room {
                    e = room;
                    self.complete = true;
                }
                self.energy_wh += e;
                self.soc += e / self.capacity_wh;
                taken += e;
            }
            t = next;
        }
        taken
    }

    pub fn energy_wh(&self) -> f64 {
        self.energy_wh
    }
    /// What the vehicle would draw per phase if offered all it wants (0 once complete): the
    /// perfect knowledge an ideal controller is scored against.
    pub fn acceptance_a(&self) -> f64 {
        if self.complete {
            0.0
        } else {
            self.own_limit_a()
        }
    }
    pub fn soc(&self) -> f64 {
        self.soc
    }
    /// Reached its target: stays plugged in, draws nothing.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(phases: u8, max: f64, delay: f64) -> VehicleSpec {
        VehicleSpec {
            charger: "cp".into(),
            arrive_s: 0.0,
            depart_s: 36000.0,
            capacity_kwh: 60.0,
            soc_start: 0.2,
            soc_target: 0.9,
            max_current_a: max,
            phases,
            response_delay_s: delay,
            taper_from_soc: 0.8,
            token: None,
        }
    }

    #[test]
    fn follows_offer_after_its_delay_and_integrates_exactly() {
        let mut v = Vehicle::new(&spec(3, 32.0, 2.0));
        v.offer(0.0, 16.0);
        let e1 = v.step(0.0, 1.5, 230.0, 3);
        assert_eq!((e1, v.current_a()), (0.0, 0.0), "still within its delay");
        // The offer takes effect at 2.0 s, inside this step: 0.5 s at 16 A on 3 phases.
        let e2 = v.step(1.5, 1.0, 230.0, 3);
        assert!((e2 - 16.0 * 230.0 * 3.0 * 0.5 / 3600.0).abs() < 1e-9);
        assert_eq!(v.current_a(), 16.0);
        let e3 = v.step(2.5, 3600.0, 230.0, 3);
        assert!((e3 - 16.0 * 230.0 * 3.0).abs() < 1e-6);
        assert!((v.energy_wh() - (e2 + e3)).abs() < 1e-9);
    }

    #[test]
    fn only_a_car_slower_than_the_standard_lags_a_decrease() {
        for (delay, slow) in [(4.9, false), (8.0, true)] {
            let mut v = Vehicle::new(&spec(3, 32.0, delay));
            v.offer(0.0, 32.0);
            v.step(0.0, 10.0, 230.0, 3);
            assert!(!v.lagging_decrease(), "following its offer");
            v.offer(10.0, 10.0);
            v.step(10.0, 1.0, 230.0, 3);
            assert_eq!(
                v.lagging_decrease(),
                slow,
                "delay {delay} s, 1 s after a decrease"
            );
            v.step(11.0, 10.0, 230.0, 3);
            assert!(!v.lagging_decrease(), "delay {delay} s: followed by now");
            v.offer(21.0, 32.0);
            assert!(
                !v.lagging_decrease(),
                "an increase not yet followed is no overload"
            );
        }
    }

    #[test]
    fn own_max_and_one_phase_on_three_phase_charger() {
        let mut v = Vehicle::new(&spec(1, 16.0, 0.0));
        v.offer(0.0, 32.0);
        let e = v.step(0.0, 10.0, 230.0, 3);
        assert_eq!(v.phase_currents_a(3), [16.0, 0.0, 0.0]);
        assert!((e - 16.0 * 230.0 * 10.0 / 3600.0).abs() < 1e-9);
    }

    #[test]
    fn zero_pauses_and_resumes() {
        let mut v = Vehicle::new(&spec(3, 32.0, 1.0));
        v.offer(0.0, 10.0);
        v.step(0.0, 5.0, 230.0, 3);
        v.offer(5.0, 0.0);
        v.step(5.0, 0.5, 230.0, 3);
        assert_eq!(v.current_a(), 10.0, "reacts only after 1 s");
        let e = v.step(5.5, 10.0, 230.0, 3);
        assert_eq!(v.current_a(), 0.0);
        assert!((e - 10.0 * 230.0 * 3.0 * 0.5 / 3600.0).abs() < 1e-9);
        v.offer(15.5, 12.0);
        v.step(15.5, 2.0, 230.0, 3);
        assert_eq!(v.current_a(), 12.0);
    }

    #[test]
    fn tapers_then_stops_exactly_at_target() {
        let mut s = spec(3, 32.0, 0.0);
        s.soc_start = 0.85;
        s.soc_target = 0.95;
        s.taper_from_soc = 0.8;
        let mut v = Vehicle::new(&s);
        v.offer(0.0, 32.0);
        v.step(0.0, 1.0, 230.0, 3);
        let expected = 32.0 - (32.0 - TAPER_FLOOR_A) * 0.25;
        assert!((v.current_a() - expected).abs() < 0.05, "{}", v.current_a());
        let mut t = 1.0;
        while !v.is_complete() && t < 36000.0 {
            v.step(t, 1.0, 230.0, 3);
            t += 1.0;
        }
        assert!(v.is_complete());
        assert_eq!(v.current_a(), 0.0, "complete: plugged in, drawing nothing");
        assert!((v.energy_wh() - 0.1 * 60_000.0).abs() < 1e-6);
        assert!((v.soc() - 0.95).abs() < 1e-12);
    }
}
