//! The site meter against the chargers (`meter_disagreement`, a site alert): everything the
//! main meter measures is the building's base load plus what the chargers draw, so grid power
//! less the chargers' summed power is the base load. That residual must not go negative (the
//! chargers would report more than the site imports), and when the chargers' power steps, the
//! meter must step with it: the residual after the step stays at the base-load estimate from
//! before it. A wrong current-transformer ratio, a meter on the wrong feed or a charger whose
//! power reading is off shows as one or the other.
//!
//! The base-load estimate at a step is the median of the residuals of the minute before it:
//! robust to a kettle or a reading taken mid-step, and quick enough to follow the building.
//!
//! The building steps too (a lift, a compressor), and the load manager answers a building
//! step by moving the chargers a moment later, so a charger step often comes right after
//! one. A step is therefore also judged against the residual read just before the chargers
//! moved: only a step that neither estimate explains counts as unseen. A building step
//! found that way (the residual had moved before the chargers did) is learned, and a
//! later disagreement the size of a building step seen before is no evidence either way:
//! the building may have switched that load at the same moment.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::hold::{secs, Hold};
use super::{Facts, Settings, Verdict};
use crate::control::record::{ChargerCycle, CycleRecord};
use crate::electric::charger_power_w;

/// The base-load estimate spans this long …
const BASE_WINDOW_S: f64 = 60.0;
/// … sampled at most this often (a bounded, cheap median).
const BASE_SAMPLE_S: f64 = 1.0;
/// A charger step is the change of the chargers' sum over this long (a ramp over a few
/// cycles counts as one step).
const STEP_WINDOW_S: f64 = 5.0;
/// A step is judged once the chargers' sum moved less than this share of `meter_step_w`
/// since the cycle before.
const SETTLED: f64 = 0.1;
/// Base-load samples needed before a step is judged.
const MIN_BASE_SAMPLES: usize = 3;
/// Building step sizes remembered (the most recent).
const BUILDING_STEPS: usize = 16;

/// Whether the site meter agrees with the chargers (`meter_disagreement`). Not the loop's
/// `control::safety::MeterWatch`, which judges whether the meter answers at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeterAgreement {
    /// (when, residual W) samples for the base-load estimate.
    base: VecDeque<(DateTime<Utc>, f64)>,
    /// (when, chargers' sum W, residual W) over the step window.
    recent: VecDeque<(DateTime<Utc>, f64, f64)>,
    /// Sizes (W) of the building's own steps seen so far, the latest last.
    building: VecDeque<f64>,
    negative: Hold,
    /// Steps the meter did not follow, less steps it did (0..=evidence).
    score: i64,
    steps_raised: bool,
    negative_raised: bool,
}

/// What one cycle shows: grid power and the chargers' sum (W), when both are known.
fn powers(rec: &CycleRecord, facts: &[Facts], voltage_v: f64) -> Option<(f64, f64)> {
    let grid = rec.grid?;
    let grid_w = grid.power_w.or_else(|| {
        let mut sum = 0.0;
        for (a, v) in grid.current_a.iter().zip(grid.voltage_v) {
            sum += a.unwrap_or(0.0) * v.unwrap_or(voltage_v);
        }
        grid.current_a.iter().any(Option::is_some).then_some(sum)
    })?;
    let mut chargers_w = 0.0;
    for f in facts {
        let c = rec.charger(&f.id).filter(|c| c.online)?;
        chargers_w += charger_w(c, voltage_v);
    }
    Some((grid_w, chargers_w))
}

/// A charger's power reading, or its currents at the nominal voltage where it has none.
fn charger_w(c: &ChargerCycle, voltage_v: f64) -> f64 {
    charger_power_w(c.power_w, &c.current_or_zero_a(), voltage_v)
}

impl MeterAgreement {
    pub fn observe(
        &mut self,
        rec: &CycleRecord,
        facts: &[Facts],
        voltage_v: f64,
        s: &Settings,
    ) -> Verdict {
        let Some((grid_w, chargers_w)) = powers(rec, facts, voltage_v) else {
            // A gap: nothing is known of the steps meanwhile.
            self.recent.clear();
            self.negative = Hold::default();
            return Verdict::Keep;
        };
        let at = rec.steady();
        let residual = grid_w - chargers_w;
        let tolerance = |w: f64| s.meter_tolerance_w + w.abs() * s.meter_tolerance_pct / 100.0;

        let below = residual < -tolerance(chargers_w);
        let negative = self.negative.update(below, at, s.meter_hold_s);
        if negative {
            self.negative_raised = true;
        } else if !below {
            self.negative_raised = false;
        }

        let mut judged = None;
        // Judged once settled: the meter and the chargers are read a moment apart, and a
        // reading taken mid-ramp would count a step as unseen.
        let settled = self
            .recent
            .back()
            .is_some_and(|(_, prev, _)| (chargers_w - prev).abs() <= SETTLED * s.meter_step_w);
        self.recent.push_back((at, chargers_w, residual));
        while self
            .recent
            .get(1)
            .is_some_and(|(t, _, _)| secs(at - *t) >= STEP_WINDOW_S)
        {
            self.recent.pop_front();
        }
        if let Some(&(t0, before_w, _)) = self.recent.front() {
            let step_w = chargers_w - before_w;
            let base = self.base_before(t0);
            if settled && secs(at - t0) >= STEP_WINDOW_S && step_w.abs() >= s.meter_step_w {
                if let Some(base_w) = base {
                    // The residual read last before the chargers moved.
                    let pre_w = self
                        .recent
                        .iter()
                        .take_while(|(_, w, _)| (w - before_w).abs() <= SETTLED * s.meter_step_w)
                        .last()
                        .map_or(base_w, |(_, _, r)| *r);
                    // What of the step the meter did not see (or saw besides it).
                    let unseen_w = base_w - residual;
                    let unseen_pre_w = pre_w - residual;
                    let tol = tolerance(step_w);
                    let miss = unseen_w.abs() > tol && unseen_pre_w.abs() > tol;
                    let building = miss
                        && self.building.iter().any(|b| {
                            (unseen_w.abs() - b).abs() <= tol
                                || (unseen_pre_w.abs() - b).abs() <= tol
                        });
                    if unseen_w.abs() > tol && !miss {
                        // The building moved before the chargers did: learn its step.
                        self.learn((pre_w - base_w).abs());
                    }
                    if !building {
                        self.score = if miss {
                            (self.score + 1).min(s.meter_evidence)
                        } else {
                            (self.score - 1).max(0)
                        };
                    }
                    judged = Some((step_w, step_w - unseen_w));
                }
                // The next step is judged on readings from now on.
                self.recent.clear();
                self.recent.push_back((at, chargers_w, residual));
            }
        }
        if !self.steps_raised && self.score >= s.meter_evidence {
            self.steps_raised = true;
        } else if self.steps_raised && self.score == 0 {
            self.steps_raised = false;
        }
        // The base-load estimate learns only from readings the rules found plausible.
        if !below
            && self
                .base
                .back()
                .is_none_or(|(t, _)| secs(at - *t) >= BASE_SAMPLE_S)
        {
            self.base.push_back((at, residual));
            while self
                .base
                .front()
                .is_some_and(|(t, _)| secs(at - *t) > BASE_WINDOW_S)
            {
                self.base.pop_front();
            }
        }

        if self.negative_raised {
            Verdict::On(format!(
                "site meter shows {:.0} W imported while the chargers report {:.0} W",
                grid_w, chargers_w
            ))
        } else if self.steps_raised {
            let detail = judged.map_or_else(String::new, |(step, seen)| {
                format!(": the chargers' last step of {step:.0} W showed as {seen:.0} W")
            });
            Verdict::On(format!(
                "site meter does not follow the chargers' power steps{detail}"
            ))
        } else {
            Verdict::Off
        }
    }

    /// Remember a building step of `w`.
    fn learn(&mut self, w: f64) {
        self.building.push_back(w);
        if self.building.len() > BUILDING_STEPS {
            self.building.pop_front();
        }
    }

    /// The base-load estimate from samples taken before `t` (None: too few yet).
    fn base_before(&self, t: DateTime<Utc>) -> Option<f64> {
        let mut xs: Vec<f64> = self
            .base
            .iter()
            .filter(|(at, _)| *at <= t)
            .map(|(_, r)| *r)
            .collect();
        if xs.len() < MIN_BASE_SAMPLES {
            return None;
        }
        xs.sort_by(f64::total_cmp);
        Some(median(&xs))
    }
}

/// Median of sorted values (not empty).
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[cfg(test)]
#[path = "site_meter_tests.rs"]
mod tests;
