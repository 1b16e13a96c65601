//! A charger's energy register against the power it reports: drifting away from the
//! integrated power (`meter_drift`), standing still while power flows (`register_frozen`),
//! jumping or falling back mid-session (`register_jump`, one per occurrence), and a power
//! reading that no current could produce (`overpower`): above what the charger's maximum
//! allows, or above what its own measured currents × the voltage deliver (a power factor is
//! at most 1, so a charger's real power can never exceed I × V on its phases).
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
use crate::electric::charger_power_w;

/// A register step assumed until one was seen: the coarsest common one (0.1 kWh).
const UNKNOWN_STEP_WH: f64 = 100.0;
/// Readings further apart than this are not compared (the charger was not read between).
const MAX_GAP_S: f64 = 10.0;
/// A current register's resolution assumed until a finer change was seen (some report whole
/// amps).
const COARSE_CURRENT_A: f64 = 1.0;
/// What a power register may show beyond I × V with nothing flowing: its own resolution and
/// the charger's standby draw.
const POWER_FLOOR_W: f64 = 50.0;

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
    /// The finest resolution a phase current reading has shown (a register of whole amps
    /// only ever shows integers), at most [`COARSE_CURRENT_A`].
    current_step_a: Option<f64>,
    /// The last cycle's currents (the power and the currents may be read a moment apart).
    last_currents: Option<(DateTime<Utc>, [Option<f64>; 3])>,
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
        let power_w = charger_power_w(c.power_w, &c.current_or_zero_a(), voltage_v);
        let max_w = f.max_current_a * f64::from(f.phases) * voltage_v;
        let margin = 1.0 + s.overpower_margin_pct / 100.0;
        let limit_w = max_w * margin;
        let above_max = power_w > limit_w;
        let iv_w = c
            .power_w
            .and_then(|_| self.current_bound_w(c, at, voltage_v));
        let above_iv = iv_w.is_some_and(|iv| power_w > iv * margin + POWER_FLOOR_W);
        let over = self
            .over
            .update(above_max || above_iv, at, s.overpower_hold_s);
        let overpower = match (over, iv_w) {
            (false, _) => Verdict::Off,
            (true, _) if above_max => Verdict::On(format!(
                "{}: {power_w:.0} W, above the {max_w:.0} W its maximum allows",
                f.id
            )),
            (true, iv) => Verdict::On(format!(
                "{}: {power_w:.0} W, above the {:.0} W its own currents × {voltage_v:.0} V deliver",
                f.id,
                iv.unwrap_or(0.0)
            )),
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

    /// The most real power the charger's measured currents can carry at `voltage_v` (a
    /// power factor of 1), each phase's reading taken half its register's resolution high,
    /// and the higher of this cycle's and the last one's (the power and the currents may be
    /// read a moment apart on a changing draw). `None` where no current was read.
    fn current_bound_w(
        &mut self,
        c: &ChargerCycle,
        at: DateTime<Utc>,
        voltage_v: f64,
    ) -> Option<f64> {
        let now = c.current_a;
        let prev = self
            .last_currents
            .replace((at, now))
            .filter(|(t, _)| secs(at - *t) > 0.0 && secs(at - *t) <= MAX_GAP_S)
            .map(|(_, a)| a);
        for a in now.iter().flatten() {
            let r = resolution_a(*a);
            self.current_step_a = Some(self.current_step_a.map_or(r, |q| q.min(r)));
        }
        let q = self.current_step_a.unwrap_or(COARSE_CURRENT_A);
        let bound = |a: &[Option<f64>; 3]| {
            let read: Vec<f64> = a.iter().flatten().map(|x| x.max(0.0)).collect();
            (!read.is_empty())
                .then(|| (read.iter().sum::<f64>() + q / 2.0 * read.len() as f64) * voltage_v)
        };
        let now_w = bound(&now)?;
        Some(
            prev.as_ref()
                .and_then(bound)
                .map_or(now_w, |p| p.max(now_w)),
        )
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

/// The resolution a current reading shows: 1 A for a whole number, 0.1 A for one decimal,
/// and so on down to 1 mA.
fn resolution_a(a: f64) -> f64 {
    let mut q = COARSE_CURRENT_A;
    while q > 0.001 && ((a / q) - (a / q).round()).abs() > 1e-3 {
        q /= 10.0;
    }
    q
}

#[cfg(test)]
#[path = "energy_tests.rs"]
mod tests;
