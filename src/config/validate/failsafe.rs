//! The fail-safe budget: when the main meter goes silent the controller knows nothing of
//! the base load, so every charger drawing its fail-safe current at once must still fit
//! under the main fuse (less the margin) and under every circuit's limit, on every phase.

use super::num;
use crate::config::error::KeyPath;
use crate::config::report::Reporter;
use crate::config::types::{Charger, Circuit, Site};

/// Per grid phase (0-based), what `chargers` draw at fail-safe. Disabled chargers are
/// counted too: a charger evsite leaves alone is still wired to the same fuse.
pub fn load_per_phase<'a>(
    site: &Site,
    chargers: impl IntoIterator<Item = &'a Charger>,
) -> Vec<f64> {
    let mut load = vec![0.0; usize::from(site.phases)];
    for c in chargers {
        let draw = site.failsafe_current_a.min(c.max_current_a);
        for &phase in &c.phase_map {
            if let Some(slot) = load.get_mut(phase) {
                *slot += draw;
            }
        }
    }
    load
}

pub fn check(site: &Site, chargers: &[Charger], circuits: &[Circuit], rep: &mut Reporter<'_>) {
    let path = KeyPath::root("site").key("failsafe_current_a");
    let budget = site.grid_limit_a - site.margin_a;
    if let Some((phase, total)) = worst(&load_per_phase(site, chargers), budget) {
        rep.error(
            &path,
            format!(
                "at fail-safe the chargers may draw {} A on L{phase}, more than \
                 grid_limit_a − margin_a = {} A; lower failsafe_current_a (0 pauses them)",
                num(total),
                num(budget)
            ),
        );
    }
    for circuit in circuits {
        let members = chargers.iter().filter(|c| circuit.chargers.contains(&c.id));
        if let Some((phase, total)) = worst(&load_per_phase(site, members), circuit.limit_a) {
            rep.error(
                &path,
                format!(
                    "at fail-safe the chargers of circuit {:?} may draw {} A on L{phase}, \
                     more than its limit_a = {} A; lower failsafe_current_a (0 pauses them)",
                    circuit.id,
                    num(total),
                    num(circuit.limit_a)
                ),
            );
        }
    }
}

/// The most loaded phase (1-based) and its load, when it exceeds `limit`.
fn worst(load: &[f64], limit: f64) -> Option<(usize, f64)> {
    // A hair of tolerance so that exactly filling the budget is not an error.
    load.iter()
        .enumerate()
        .filter(|(_, &l)| l > limit + 1e-9)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, &l)| (i + 1, l))
}
