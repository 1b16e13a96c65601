//! The increase gate, pure: a setpoint may only rise into capacity that is free *now*.
//!
//! When the allocator moves current from car A to car B, A needs up to 5 s (IEC 61851) to
//! follow its lower setpoint. Raising B at once would overload the site for those seconds.
//! So each charger is counted at `max(measured, setpoint)` until it has followed a decrease,
//! and increases are granted — highest priority first — only from what is left under every
//! limit. Decreases always pass.

/// One charger as the gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct GateCharger {
    /// Grid phases (0-based) the charger loads.
    pub grid_phases: Vec<usize>,
    /// Measured current per entry of `grid_phases`.
    pub measured_a: Vec<f64>,
    /// What was written before this cycle (0 when paused or unknown).
    pub previous_a: f64,
    /// What the allocator and ramp want now.
    pub wanted_a: f64,
    pub min_a: f64,
    /// Indexes into the constraint list this charger belongs to (the site and its circuit).
    pub constraints: Vec<usize>,
}

/// A per-phase limit with the capacity free for the gated chargers (limit − margin − base
/// load − reserves), per grid phase.
#[derive(Debug, Clone, PartialEq)]
pub struct GateConstraint {
    pub free_a: [f64; 3],
}

/// Returns the setpoint to write for each charger, in the order given by `order` (indexes of
/// chargers, highest priority first; chargers not in `order` are granted last, in index order).
pub fn gate(chargers: &[GateCharger], constraints: &[GateConstraint], order: &[usize]) -> Vec<f64> {
    let mut slack: Vec<[f64; 3]> = constraints.iter().map(|c| c.free_a).collect();
    let mut out: Vec<f64> = chargers
        .iter()
        .map(|c| c.wanted_a.min(c.previous_a))
        .collect();
    // Load every charger at what it may draw without any increase: a decrease not yet
    // followed still draws its measured current.
    for c in chargers {
        let hold = c.wanted_a.min(c.previous_a);
        for (k, &p) in c.grid_phases.iter().enumerate() {
            let load = c.measured_a.get(k).copied().unwrap_or(0.0).max(hold);
            for &ci in &c.constraints {
                if let Some(s) = slack.get_mut(ci) {
                    s[p] -= load;
                }
            }
        }
    }
    let rest = (0..chargers.len()).filter(|i| !order.contains(i));
    for i in order.iter().copied().chain(rest) {
        let Some(c) = chargers.get(i) else { continue };
        if c.wanted_a <= c.previous_a {
            continue;
        }
        // Extra load on each phase if the charger went from its held draw to `wanted`.
        let hold = c.wanted_a.min(c.previous_a);
        let mut grant = f64::INFINITY;
        for (k, &p) in c.grid_phases.iter().enumerate() {
            let drawn = c.measured_a.get(k).copied().unwrap_or(0.0).max(hold);
            let room = c
                .constraints
                .iter()
                .filter_map(|&ci| slack.get(ci).map(|s| s[p]))
                .fold(f64::INFINITY, f64::min);
            // The charger may rise to `drawn + room` on this phase.
            grant = grant.min(drawn + room.max(0.0));
        }
        let new = c.wanted_a.min(grant).max(c.previous_a);
        let new = if new > 0.0 && new < c.min_a {
            c.previous_a
        } else {
            new
        };
        if new <= c.previous_a {
            continue;
        }
        for (k, &p) in c.grid_phases.iter().enumerate() {
            let drawn = c.measured_a.get(k).copied().unwrap_or(0.0).max(hold);
            let extra = (new - drawn).max(0.0);
            for &ci in &c.constraints {
                if let Some(s) = slack.get_mut(ci) {
                    s[p] -= extra;
                }
            }
        }
        out[i] = new;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(measured: f64, previous: f64, wanted: f64) -> GateCharger {
        GateCharger {
            grid_phases: vec![0, 1, 2],
            measured_a: vec![measured; 3],
            previous_a: previous,
            wanted_a: wanted,
            min_a: 6.0,
            constraints: vec![0],
        }
    }

    #[test]
    fn increase_waits_for_the_decrease_to_be_followed() {
        // 32 A free; A drew 20 and is told 10, B drew 10 and wants 20.
        let site = [GateConstraint { free_a: [32.0; 3] }];
        let out = gate(
            &[ch(20.0, 20.0, 10.0), ch(10.0, 10.0, 20.0)],
            &site,
            &[0, 1],
        );
        assert_eq!(out[0], 10.0, "decreases pass at once");
        assert_eq!(out[1], 12.0, "B only gets what A's measured draw leaves");
        // Next cycle A has followed: B gets all it wants.
        let out = gate(
            &[ch(10.0, 10.0, 10.0), ch(12.0, 12.0, 20.0)],
            &site,
            &[0, 1],
        );
        assert_eq!(out[1], 20.0);
    }

    #[test]
    fn a_start_below_minimum_is_deferred_not_set() {
        let site = [GateConstraint { free_a: [20.0; 3] }];
        let out = gate(&[ch(16.0, 16.0, 10.0), ch(0.0, 0.0, 8.0)], &site, &[0, 1]);
        assert_eq!(
            out,
            vec![10.0, 0.0],
            "4 A free is below the 6 A minimum: stay paused"
        );
    }

    #[test]
    fn priority_order_gets_the_room_first() {
        let site = [GateConstraint { free_a: [10.0; 3] }];
        let out = gate(&[ch(0.0, 0.0, 8.0), ch(0.0, 0.0, 8.0)], &site, &[1, 0]);
        assert_eq!(out, vec![0.0, 8.0]);
    }

    #[test]
    fn only_shared_phases_and_constraints_matter() {
        // One charger on L1 only in a circuit with 6 A free; another on L2 in the site.
        let cons = [
            GateConstraint { free_a: [40.0; 3] },
            GateConstraint {
                free_a: [6.0, 40.0, 40.0],
            },
        ];
        let a = GateCharger {
            grid_phases: vec![0],
            measured_a: vec![0.0],
            previous_a: 0.0,
            wanted_a: 16.0,
            min_a: 6.0,
            constraints: vec![0, 1],
        };
        let b = GateCharger {
            grid_phases: vec![1],
            constraints: vec![0],
            ..a.clone()
        };
        assert_eq!(gate(&[a, b], &cons, &[0, 1]), vec![6.0, 16.0]);
    }
}
