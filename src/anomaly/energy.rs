//! A charger's energy register against the power it reports: drifting away from the
//! integrated power (`meter_drift`), standing still while power flows (`register_frozen`),
//! jumping or falling back mid-session (`register_jump`, one per occurrence), and power above
//! what the charger's maximum allows (`overpower`).
//!
//! Registers count in steps (1 Wh, 10 Wh, 0.1 kWh): every tolerance includes two of the
//! smallest steps the register was seen to make, so a coarse register is judged as fairly
//! as a fine one.

use chrono::{DateTime, Utc};

use super::hold::{secs, Hold};
use super::{Facts, Settings, Verdict};
use crate::alerts::AlertKind;
use crate::control::record::ChargerCycle;
use crate::devices::model::ChargeState;

/// A register step assumed until one was seen: the coarsest common one (0.1 kWh).
const UNKNOWN_STEP_WH: f64 = 100.0;
/// Readings further apart than this are not compared (the charger was not read between).
const MAX_GAP_S: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    at: DateTime<Utc>,
    register_wh: f64,
    power_w: f64,
    plugged: bool,
}

/// Energy by the register and by integrated power since `start`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Window {
    start: Option<DateTime<Utc>>,
    power_wh: f64,
    register_wh: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnergyWatch {
    last: Option<Reading>,
    /// Smallest register increase seen.
    step_wh: Option<f64>,
    /// Integrated energy since the register last moved.
    still_wh: f64,
    window: Window,
    drift: Option<String>,
    over: Hold,
}

impl EnergyWatch {
    pub fn observe(
        &mut self,
        c: &ChargerCycle,
        f: &Facts,
        at: DateTime<Utc>,
        voltage_v: f64,
        s: &Settings,
    ) -> [(AlertKind, Verdict); 4] {
        use AlertKind::{MeterDrift, Overpower, RegisterFrozen, RegisterJump};
        let keep = [
            (MeterDrift, Verdict::Keep),
            (RegisterFrozen, Verdict::Keep),
            (RegisterJump, Verdict::Keep),
            (Overpower, Verdict::Keep),
        ];
        if !c.online {
            return keep;
        }
        let power_w = c
            .power_w
            .unwrap_or_else(|| c.current_or_zero_a().iter().sum::<f64>() * voltage_v);
        let max_w = f.max_current_a * f64::from(f.phases) * voltage_v;
        let limit_w = max_w * (1.0 + s.overpower_margin_pct / 100.0);
        let over = self.over.update(power_w > limit_w, at, s.overpower_hold_s);
        let overpower = if over {
            Verdict::On(format!(
                "{}: {power_w:.0} W, above the {max_w:.0} W its maximum allows",
                f.id
            ))
        } else {
            Verdict::Off
        };
        let Some(register_wh) = c.energy_wh else {
            return [
                keep[0].clone(),
                keep[1].clone(),
                keep[2].clone(),
                (Overpower, overpower),
            ];
        };
        let plugged = !matches!(c.state, Some(ChargeState::A) | None);
        let now = Reading {
            at,
            register_wh,
            power_w: power_w.max(0.0),
            plugged,
        };
        let prev = self.last.replace(now);
        let mut jump = Verdict::Keep;
        match prev {
            Some(p) if secs(at - p.at) > 0.0 && secs(at - p.at) <= MAX_GAP_S => {
                let dt_s = secs(at - p.at);
                let flowed_wh = (p.power_w + now.power_w) / 2.0 * dt_s / 3600.0;
                let delta = register_wh - p.register_wh;
                let step = self.step_wh.unwrap_or(UNKNOWN_STEP_WH);
                let session = p.plugged && now.plugged;
                let possible_wh = max_w * dt_s / 3600.0 * 1.5 + 2.0 * step + s.jump_margin_wh;
                if session && delta < -(step + 1.0) {
                    jump = Verdict::On(format!(
                        "{}: energy register fell from {:.0} Wh to {register_wh:.0} Wh mid-session",
                        f.id, p.register_wh
                    ));
                } else if session && delta > possible_wh {
                    jump = Verdict::On(format!(
                        "{}: energy register jumped by {delta:.0} Wh in {dt_s:.0} s",
                        f.id
                    ));
                }
                if matches!(jump, Verdict::On(_)) {
                    self.still_wh = 0.0;
                    self.window = Window::default();
                } else {
                    if delta > 1e-9 {
                        self.step_wh = Some(self.step_wh.map_or(delta, |s| s.min(delta)));
                    }
                    self.judge(delta, flowed_wh, session, at, p.at, f, s);
                }
            }
            _ => {
                self.still_wh = 0.0;
                self.window = Window::default();
            }
        }
        if !plugged {
            self.still_wh = 0.0;
        }
        let step = self.step_wh.unwrap_or(UNKNOWN_STEP_WH);
        let frozen = if self.still_wh > s.frozen_wh + 2.0 * step {
            Verdict::On(format!(
                "{}: energy register stands at {register_wh:.0} Wh while {:.0} Wh flowed",
                f.id, self.still_wh
            ))
        } else {
            Verdict::Off
        };
        let drift = match &self.drift {
            Some(m) => Verdict::On(m.clone()),
            None => Verdict::Off,
        };
        [
            (MeterDrift, drift),
            (RegisterFrozen, frozen),
            (RegisterJump, jump),
            (Overpower, overpower),
        ]
    }

    /// One normal step of the register: the frozen count and the drift window.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &mut self,
        delta: f64,
        flowed_wh: f64,
        session: bool,
        at: DateTime<Utc>,
        from: DateTime<Utc>,
        f: &Facts,
        s: &Settings,
    ) {
        if delta.abs() < 1e-9 {
            self.still_wh += flowed_wh;
        } else {
            self.still_wh = 0.0;
        }
        let step = self.step_wh.unwrap_or(UNKNOWN_STEP_WH);
        if !session || self.still_wh > s.frozen_wh + 2.0 * step {
            // Frozen is its own finding; a window across it would call it drift too.
            self.window = Window::default();
            return;
        }
        let w = &mut self.window;
        let start = *w.start.get_or_insert(from);
        w.power_wh += flowed_wh;
        w.register_wh += delta;
        let enough = s.drift_min_wh.max(10.0 * step);
        if secs(at - start) < s.drift_window_s || w.power_wh.max(w.register_wh) < enough {
            return;
        }
        let error = (w.register_wh - w.power_wh).abs();
        let allowed = (s.drift_tolerance_pct / 100.0 * w.power_wh).max(2.0 * step + 5.0);
        self.drift = (error > allowed).then(|| {
            format!(
                "{}: energy register counted {:.0} Wh where the power shows {:.0} Wh",
                f.id, w.register_wh, w.power_wh
            )
        });
        *w = Window::default();
    }
}

#[cfg(test)]
#[path = "energy_tests.rs"]
mod tests;
