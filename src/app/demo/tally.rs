//! Running totals for the demo's summary: energy delivered per charger (from each charger's
//! own energy register, across restarts of session-scoped registers) and the peak grid current.

use crate::control::record::CycleRecord;

#[derive(Debug, Clone, Default, PartialEq)]
struct Energy {
    id: String,
    last_wh: Option<f64>,
    delivered_wh: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    energy: Vec<Energy>,
    peak_a: f64,
    /// 0-based phase of the peak.
    peak_phase: usize,
}

impl Tally {
    /// Account for one view of the site: energy register movements and the metered grid.
    pub fn observe_view(&mut self, v: &CycleRecord, phases: usize) {
        for c in &v.chargers {
            let i = match self.energy.iter().position(|e| e.id == c.id) {
                Some(i) => i,
                None => {
                    self.energy.push(Energy {
                        id: c.id.clone(),
                        ..Energy::default()
                    });
                    self.energy.len() - 1
                }
            };
            let e = &mut self.energy[i];
            if let Some(now) = c.energy_wh {
                match e.last_wh {
                    // A register that went down restarted (a new session): count from 0.
                    Some(last) if now < last => e.delivered_wh += now,
                    Some(last) => e.delivered_wh += now - last,
                    None => {}
                }
                e.last_wh = Some(now);
            }
        }
        if let Some(g) = v.grid_a {
            self.observe_grid(g, phases);
        }
    }

    /// Account for a grid current measurement on the site's `phases`.
    pub fn observe_grid(&mut self, grid: [f64; 3], phases: usize) {
        for (p, &a) in grid.iter().enumerate().take(phases) {
            if a > self.peak_a {
                self.peak_a = a;
                self.peak_phase = p;
            }
        }
    }

    pub fn peak_a(&self) -> f64 {
        self.peak_a
    }

    /// 1-based phase number of the peak.
    pub fn peak_phase(&self) -> usize {
        self.peak_phase + 1
    }

    /// Energy delivered per charger, in the order first seen.
    pub fn delivered_wh(&self) -> Vec<(String, f64)> {
        self.energy
            .iter()
            .map(|e| (e.id.clone(), e.delivered_wh))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::record::ChargerCycle;

    fn view(energy: &[Option<f64>], grid: [f64; 3]) -> CycleRecord {
        CycleRecord {
            grid_a: Some(grid),
            chargers: energy
                .iter()
                .enumerate()
                .map(|(i, e)| ChargerCycle {
                    energy_wh: *e,
                    ..ChargerCycle::unread(&format!("cp-{}", i + 1))
                })
                .collect(),
            ..CycleRecord::blank(chrono::Utc::now(), 32.0)
        }
    }

    #[test]
    fn energy_counts_increases_and_survives_register_restarts() {
        let mut t = Tally::default();
        t.observe_view(&view(&[Some(1000.0), None], [1.0; 3]), 3);
        t.observe_view(&view(&[Some(1500.0), Some(10.0)], [1.0; 3]), 3);
        // cp-1's register restarts (new session) and reaches 200 Wh.
        t.observe_view(&view(&[Some(200.0), Some(30.0)], [1.0; 3]), 3);
        assert_eq!(
            t.delivered_wh(),
            vec![("cp-1".to_string(), 700.0), ("cp-2".to_string(), 20.0)]
        );
    }

    #[test]
    fn the_peak_is_the_highest_phase_seen_on_the_sites_phases() {
        let mut t = Tally::default();
        t.observe_grid([10.0, 25.0, 12.0], 3);
        t.observe_view(&view(&[], [20.0, 5.0, 5.0]), 3);
        t.observe_grid([1.0, 1.0, 99.0], 1);
        assert_eq!(t.peak_a(), 25.0);
        assert_eq!(t.peak_phase(), 2);
    }
}
