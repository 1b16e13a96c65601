//! Base-load estimate, pure: everything on the grid that is not a charger, per phase.
//!
//! Household and building loads flicker from one reading to the next. Allocating from each raw
//! reading would pull every car down on every upward flicker — and cars need seconds to follow,
//! during which increases elsewhere must wait — so capacity is lost to noise. The estimate is
//! therefore smoothed, but never when it matters: as soon as a phase's grid current reaches the
//! limit less the margin, the raw reading (if higher) is used at once, and a step up in load
//! that is too large to be flicker resets the estimate to it.

/// Weight of the newest reading in the smoothed estimate (per cycle).
const ALPHA: f64 = 0.25;

#[derive(Debug, Clone, Default)]
pub struct BaseLoadFilter {
    smooth: Option<[f64; 3]>,
}

impl BaseLoadFilter {
    /// Take this cycle's raw base load and grid current; returns the base load to allocate
    /// from. `threshold_a` is the site limit less the margin.
    pub fn update(&mut self, raw: [f64; 3], grid: [f64; 3], threshold_a: f64) -> [f64; 3] {
        let mut smooth = self.smooth.unwrap_or(raw);
        let mut out = [0.0; 3];
        for p in 0..3 {
            smooth[p] += ALPHA * (raw[p] - smooth[p]);
            if raw[p] >= smooth[p] + 3.0 * NOISE_STEP_A {
                // A step up in load (an appliance switched on): believe it now, and from now on.
                smooth[p] = raw[p];
                out[p] = raw[p];
            } else if grid[p] >= threshold_a {
                // At the limit: answer this reading now, without letting one flicker drag the
                // estimate up for the cycles after.
                out[p] = raw[p].max(smooth[p]);
            } else {
                out[p] = smooth[p];
            }
        }
        self.smooth = Some(smooth);
        out
    }

    pub fn reset(&mut self) {
        self.smooth = None;
    }
}

/// A rise in base load larger than three of these in one reading is a real step (an appliance
/// switching on), not flicker: it is taken at once.
const NOISE_STEP_A: f64 = 1.5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flicker_is_smoothed_below_the_limit() {
        let mut f = BaseLoadFilter::default();
        let a = f.update([20.0; 3], [40.0; 3], 61.0);
        assert_eq!(a, [20.0; 3]);
        let b = f.update([22.0; 3], [42.0; 3], 61.0);
        assert!(b[0] > 20.0 && b[0] < 22.0, "{b:?}");
        let c = f.update([18.0; 3], [38.0; 3], 61.0);
        assert!(c[0] > 18.0 && c[0] < 22.0, "{c:?}");
    }

    #[test]
    fn at_the_limit_the_raw_reading_counts_at_once() {
        let mut f = BaseLoadFilter::default();
        f.update([20.0; 3], [50.0; 3], 61.0);
        let hot = f.update([22.0, 20.0, 20.0], [61.5, 50.0, 50.0], 61.0);
        assert_eq!(hot[0], 22.0);
        assert!(hot[1] <= 20.0 + 1e-9);
        // One flicker at the limit does not hold the estimate up afterwards.
        let after = f.update([20.0; 3], [50.0; 3], 61.0);
        assert!(after[0] < 21.0, "{after:?}");
    }

    #[test]
    fn a_step_up_counts_at_once_even_with_room() {
        let mut f = BaseLoadFilter::default();
        f.update([10.0; 3], [20.0; 3], 61.0);
        let step = f.update([25.0, 10.0, 10.0], [35.0, 20.0, 20.0], 61.0);
        assert_eq!(step[0], 25.0, "a 15 A appliance is not noise");
        // and the estimate stays there rather than decaying back
        let next = f.update([25.0, 10.0, 10.0], [35.0, 20.0, 20.0], 61.0);
        assert_eq!(next[0], 25.0);
    }
}
