//! A phase map that looks wrong (`phase_map_mismatch`): when a charger's current steps, the
//! grid's per-phase currents step with it (less what the other chargers' steps explain
//! through their own maps). A step is the change from the charger's last settled reading to
//! its next one, so a ramp the load manager paces over several cycles is one step. A step that shows on the configured grid phases is evidence for
//! the map; one that fits another assignment of the charger's phases to grid phases, and
//! not the configured one, is evidence against it.
//!
//! A step is judged against the noise measured on this site, not against a fixed
//! tolerance: the site's per-phase noise is a robust spread (scaled MAD) of what the grid's
//! cycle-to-cycle changes leave unexplained by the chargers' steps, over the last few
//! minutes. A step counts only where the configured map and another one predict grid
//! changes that differ by well more than that noise, and counts by its log-likelihood ratio
//! (in units of [`LLR_UNIT`], `phase_evidence` of them raise or clear; at most one from a
//! step beside other chargers' uneven steps), so a small step on a noisy building proves nothing,
//! one clean step alone on a quiet one is proof, and a step that neither fits (a building load switching at the same moment)
//! is skipped. Steps equal on every grid phase (a three-phase car on a correctly rotated or
//! rotated-wrong charger alike) cannot tell maps apart and are skipped: a rotated charger
//! with a balanced three-phase car is invisible to any meter.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::hold::secs;
use super::{Facts, Settings, Verdict};
use crate::alerts::AlertKind;
use crate::control::record::CycleRecord;

/// Unexplained grid changes kept per phase for the noise estimate (five minutes at 1 s).
const NOISE_WINDOW: usize = 300;
/// Samples needed before a step is judged at all.
const NOISE_MIN: usize = 20;
/// The noise is taken as at least this (a meter's resolution; a quiet site is never exact).
const NOISE_FLOOR_A: f64 = 0.5;
/// A charger's step may show on the grid off by this share of it (the meter and the
/// chargers are read a moment apart).
const STEP_SHARE: f64 = 0.1;
/// The log-likelihood ratio (Gaussian noise of the measured spread) between the configured
/// map and the best other one that makes one full unit of evidence; it is also what a step
/// must be able to reach to count at all, and what a map's misfit may reach before it is no
/// longer a fit.
const LLR_UNIT: f64 = 8.0;

/// A charger whose current moved less than this on every phase since the cycle before has
/// settled: its step (a ramp over several cycles, as the load manager paces increases,
/// counts as one) is judged from its last settled reading.
const SETTLED_A: f64 = 0.5;
/// A step is judged over at most this long (the building moves meanwhile).
const ANCHOR_MAX_S: f64 = 60.0;

/// Grid currents per phase, and each charger's per-phase currents (None: not read).
type Snapshot = ([f64; 3], Vec<Option<[f64; 3]>>);
/// When, the grid's and every charger's currents at a charger's last settled reading.
type Anchor = (DateTime<Utc>, [f64; 3], Vec<[f64; 3]>);

#[derive(Debug, Clone, PartialEq)]
pub struct PhaseWatch {
    prev: Option<Snapshot>,
    /// Per grid phase, the last grid changes the chargers' steps do not explain.
    unexplained: [VecDeque<f64>; 3],
    /// Per charger: its last settled reading.
    anchor: Vec<Option<Anchor>>,
    /// Per charger: evidence against the map, less evidence for it (0..=evidence).
    score: Vec<f64>,
    raised: Vec<bool>,
}

impl PhaseWatch {
    pub fn new(chargers: usize) -> Self {
        PhaseWatch {
            prev: None,
            unexplained: Default::default(),
            anchor: vec![None; chargers],
            score: vec![0.0; chargers],
            raised: vec![false; chargers],
        }
    }

    /// The site's noise per grid phase (scaled MAD), once enough is known.
    fn noise(&self) -> Option<[f64; 3]> {
        if self.unexplained.iter().any(|q| q.len() < NOISE_MIN) {
            return None;
        }
        Some(std::array::from_fn(|p| {
            let mut xs: Vec<f64> = self.unexplained[p].iter().copied().collect();
            xs.sort_by(f64::total_cmp);
            let m = super::site_meter::median(&xs);
            let mut dev: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
            dev.sort_by(f64::total_cmp);
            (1.4826 * super::site_meter::median(&dev)).max(NOISE_FLOOR_A)
        }))
    }

    pub fn observe(
        &mut self,
        rec: &CycleRecord,
        facts: &[Facts],
        s: &Settings,
    ) -> Vec<(AlertKind, String, Verdict)> {
        let now: Vec<Option<[f64; 3]>> = facts
            .iter()
            .map(|f| {
                rec.charger(&f.id)
                    .filter(|c| c.online)
                    .map(|c| c.current_or_zero_a())
            })
            .collect();
        let at = rec.steady();
        let Some(grid) = rec.grid_a else {
            self.prev = None;
            self.anchor.iter_mut().for_each(|a| *a = None);
            return Vec::new();
        };
        let prev = self.prev.replace((grid, now.clone()));
        let deltas: Option<Vec<[f64; 3]>> = prev.as_ref().and_then(|(_, pch)| {
            now.iter()
                .zip(pch)
                .map(|(a, b)| Some(sub((*a)?, (*b)?)))
                .collect()
        });
        let (Some(deltas), Some((pgrid, _))) = (deltas, prev) else {
            // A gap: nothing is known of the steps meanwhile.
            self.anchor.iter_mut().for_each(|a| *a = None);
            return Vec::new();
        };
        let all: Vec<[f64; 3]> = now.iter().map(|a| a.unwrap_or([0.0; 3])).collect();
        let dgrid = sub(grid, pgrid);
        let mut unexplained = dgrid;
        for (d, f) in deltas.iter().zip(facts) {
            unexplained = sub(unexplained, on_grid(d, &f.phase_map));
        }
        // Judged against the noise measured before this cycle.
        let mut noise: Option<Option<[f64; 3]>> = None;
        let mut out = Vec::new();
        for (i, f) in facts.iter().enumerate() {
            if max_abs(deltas[i]) >= SETTLED_A {
                continue;
            }
            let anchor = self.anchor[i].replace((at, grid, all.clone()));
            let Some((_, grid0, chargers0)) =
                anchor.filter(|(t0, _, _)| secs(at - *t0) <= ANCHOR_MAX_S)
            else {
                continue;
            };
            let d = sub(all[i], chargers0[i]);
            let expected = on_grid(&d, &f.phase_map);
            let spread = expected.iter().copied().fold(f64::MIN, f64::max)
                - expected.iter().copied().fold(f64::MAX, f64::min);
            if spread < s.phase_step_a {
                continue;
            }
            let Some(sigma) = *noise.get_or_insert_with(|| self.noise()) else {
                continue;
            };
            // What the other chargers' steps did to the grid meanwhile, through their maps.
            let mut rest = sub(grid, grid0);
            for (j, fj) in facts.iter().enumerate() {
                if j != i {
                    rest = sub(rest, on_grid(&sub(all[j], chargers0[j]), &fj.phase_map));
                }
            }
            let size = max_abs(d);
            let var: [f64; 3] =
                std::array::from_fn(|p| sigma[p].powi(2) + (STEP_SHARE * size).powi(2));
            // Negative log-likelihood of a grid image `g` (up to a constant).
            let nll = |g: [f64; 3]| -> f64 {
                (0..3)
                    .map(|p| (rest[p] - g[p]).powi(2) / (2.0 * var[p]))
                    .sum()
            };
            let apart = |g: [f64; 3]| -> f64 {
                (0..3)
                    .map(|p| (g[p] - expected[p]).powi(2) / (2.0 * var[p]))
                    .sum()
            };
            let configured = nll(expected);
            // Only maps this step can tell from the configured one.
            let better = assignments(f.phases)
                .into_iter()
                .filter(|m| *m != f.phase_map)
                .map(|m| (on_grid(&d, &m), m))
                .filter(|(g, _)| apart(*g) >= LLR_UNIT)
                .map(|(g, m)| (nll(g), m))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            let Some((other, other_map)) = better else {
                continue;
            };
            if configured.min(other) > LLR_UNIT {
                // Neither fits: something else moved at the same moment.
                continue;
            }
            // A sequential likelihood-ratio test in units of LLR_UNIT. A step alone (no
            // other charger moved meanwhile but evenly on three phases) may carry the whole bound: a clean step on a
            // quiet site is proof enough. One beside other chargers' steps counts at most
            // one unit, as their maps may be what is wrong.
            let most = s.phase_evidence as f64;
            let alone = facts.iter().enumerate().all(|(j, fj)| {
                let dj = sub(all[j], chargers0[j]);
                let even = dj.iter().copied().fold(f64::MIN, f64::max)
                    - dj.iter().copied().fold(f64::MAX, f64::min);
                // Unmoved, or moved the same on all three phases: the same on the grid
                // through any map, so no wrong map of its own can show in this step.
                j == i || max_abs(dj) < SETTLED_A || (fj.phases == 3 && even < SETTLED_A)
            });
            let cap = if alone { most } else { 1.0 };
            let evidence = ((configured - other) / LLR_UNIT).clamp(-cap, cap);
            let before = self.score[i];
            self.score[i] = (self.score[i] + evidence).clamp(0.0, most);
            if self.score[i] == before {
                continue;
            }
            if !self.raised[i] && self.score[i] >= most - 1e-9 {
                self.raised[i] = true;
                out.push((
                    AlertKind::PhaseMapMismatch,
                    f.id.clone(),
                    Verdict::On(format!(
                        "{}: current steps show on grid phases {}, not the configured {}",
                        f.id,
                        one_based(&other_map),
                        one_based(&f.phase_map)
                    )),
                ));
            } else if self.raised[i] && self.score[i] <= 0.0 {
                self.raised[i] = false;
                out.push((AlertKind::PhaseMapMismatch, f.id.clone(), Verdict::Off));
            }
        }
        for (q, x) in self.unexplained.iter_mut().zip(unexplained) {
            q.push_back(x);
            if q.len() > NOISE_WINDOW {
                q.pop_front();
            }
        }
        out
    }
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn max_abs(a: [f64; 3]) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// A charger's per-phase currents on the grid phases through `map`.
fn on_grid(d: &[f64; 3], map: &[usize]) -> [f64; 3] {
    let mut g = [0.0; 3];
    for (i, p) in map.iter().enumerate() {
        if let Some(slot) = g.get_mut(*p) {
            *slot += d[i];
        }
    }
    g
}

/// Every way to put `phases` charger phases on distinct grid phases of a three-phase site.
fn assignments(phases: u8) -> Vec<Vec<usize>> {
    if phases == 1 {
        return (0..3).map(|p| vec![p]).collect();
    }
    let mut out = Vec::new();
    for a in 0..3 {
        for b in 0..3 {
            for c in 0..3 {
                if a != b && b != c && a != c {
                    out.push(vec![a, b, c]);
                }
            }
        }
    }
    out
}

fn one_based(m: &[usize]) -> String {
    let p: Vec<String> = m.iter().map(|p| (p + 1).to_string()).collect();
    format!("[{}]", p.join(", "))
}

#[cfg(test)]
#[path = "phases_tests.rs"]
mod tests;
