//! A phase map that looks wrong (`phase_map_mismatch`): when a charger's current steps, the
//! grid's per-phase currents step with it (less what the other chargers' steps explain
//! through their own maps). A step that
//! shows on the configured grid phases is evidence for the map; one that fits another
//! assignment of the charger's phases to grid phases, and not the configured one, is
//! evidence against it. Steps equal on every grid phase (a three-phase car on a correctly
//! rotated or rotated-wrong charger alike) prove nothing and are skipped.

use super::{Facts, Settings, Verdict};
use crate::alerts::AlertKind;
use crate::control::record::CycleRecord;

/// Grid steps may differ from the charger's by base-load noise: this much, or a fifth of
/// the step.
const FIT_A: f64 = 1.5;

/// Grid currents per phase, and each charger's per-phase currents (None: not read).
type Snapshot = ([f64; 3], Vec<Option<[f64; 3]>>);

#[derive(Debug, Clone, PartialEq)]
pub struct PhaseWatch {
    prev: Option<Snapshot>,
    /// Per charger: evidence against the map, less evidence for it (0..=evidence).
    score: Vec<i64>,
    raised: Vec<bool>,
}

impl PhaseWatch {
    pub fn new(chargers: usize) -> Self {
        PhaseWatch {
            prev: None,
            score: vec![0; chargers],
            raised: vec![false; chargers],
        }
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
        let Some(grid) = rec.grid_a else {
            self.prev = None;
            return Vec::new();
        };
        let prev = self.prev.replace((grid, now.clone()));
        let Some((pgrid, pch)) = prev else {
            return Vec::new();
        };
        let deltas: Option<Vec<[f64; 3]>> = now
            .iter()
            .zip(&pch)
            .map(|(a, b)| Some(sub((*a)?, (*b)?)))
            .collect();
        let Some(deltas) = deltas else {
            return Vec::new();
        };
        let dgrid = sub(grid, pgrid);
        let mut out = Vec::new();
        for (i, f) in facts.iter().enumerate() {
            // What the other chargers' steps did to the grid, through their own maps.
            let mut rest = dgrid;
            for (j, (dj, fj)) in deltas.iter().zip(facts).enumerate() {
                if j != i {
                    rest = sub(rest, on_grid(dj, &fj.phase_map));
                }
            }
            let d = deltas[i];
            let expected = on_grid(&d, &f.phase_map);
            let spread = expected.iter().copied().fold(f64::MIN, f64::max)
                - expected.iter().copied().fold(f64::MAX, f64::min);
            if spread < s.phase_step_a {
                continue;
            }
            let fit = FIT_A.max(0.2 * spread);
            let miss = |m: &[usize]| max_abs(sub(rest, on_grid(&d, m)));
            let configured = miss(&f.phase_map);
            let better = assignments(f.phases)
                .into_iter()
                .filter(|m| *m != f.phase_map)
                .map(|m| (miss(&m), m))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            let before = self.score[i];
            if configured <= fit {
                self.score[i] = (self.score[i] - 1).max(0);
            } else if better.as_ref().is_some_and(|(m, _)| *m <= fit) {
                self.score[i] = (self.score[i] + 1).min(s.phase_evidence);
            }
            if self.score[i] == before {
                continue;
            }
            if !self.raised[i] && self.score[i] >= s.phase_evidence {
                self.raised[i] = true;
                let seen = better.map(|(_, m)| one_based(&m)).unwrap_or_default();
                out.push((
                    AlertKind::PhaseMapMismatch,
                    f.id.clone(),
                    Verdict::On(format!(
                        "{}: current steps show on grid phases {seen}, not the configured {}",
                        f.id,
                        one_based(&f.phase_map)
                    )),
                ));
            } else if self.raised[i] && self.score[i] == 0 {
                self.raised[i] = false;
                out.push((AlertKind::PhaseMapMismatch, f.id.clone(), Verdict::Off));
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
