//! Property tests of the allocator over random sites: limits, bounds, priorities, fairness.

use super::*;
use proptest::array::uniform3;
use proptest::prelude::*;

const NOW: f64 = 10_000.0;
const TOL: f64 = 1e-6;

fn link() -> impl Strategy<Value = LinkState> {
    use ChargeState::*;
    let state = prop::sample::select(vec![A, B, C, C, C, D, E, F]);
    prop_oneof![
        9 => (state, uniform3(0.0f64..32.0))
            .prop_map(|(state, measured_a)| LinkState::Online { state, measured_a }),
        1 => (0.0f64..32.0).prop_map(|assumed_a| LinkState::Offline { assumed_a }),
    ]
}

fn charger(
    site_phases: usize,
    step: impl Strategy<Value = f64>,
) -> impl Strategy<Value = ChargerInput> {
    (
        prop_oneof![Just(1usize), Just(3usize)],
        0usize..3,
        (6.0f64..10.0, 0.0f64..26.0),
        0u8..3,
        prop::bool::weighted(0.9),
        prop::option::weighted(0.2, 0.0f64..32.0),
        step,
        link(),
        (
            prop::option::weighted(0.3, 0.0f64..32.0),
            uniform3(any::<bool>()),
        ),
        (0.0f64..2000.0, any::<bool>()),
    )
        .prop_map(
            move |(n, rot, (min, extra), priority, enabled, profile, step, link, usage, turn)| {
                let (ago, charging) = turn;
                ChargerInput {
                    phase_map: (0..n).map(|i| (rot + i) % site_phases).collect(),
                    min_a: min,
                    max_a: min + extra,
                    priority,
                    enabled,
                    cap_a: profile,
                    step_a: step,
                    link,
                    usage: Usage {
                        demand_cap_a: usage.0,
                        active: usage.1,
                    },
                    waiting_since_s: (!charging).then_some(NOW - ago),
                    charging_since_s: charging.then_some(NOW - ago),
                }
            },
        )
}

fn site(step: impl Strategy<Value = f64> + Clone) -> impl Strategy<Value = AllocInput> {
    prop_oneof![Just(1usize), Just(3usize)]
        .prop_flat_map(move |phases| {
            (
                Just(phases),
                (10.0f64..250.0, 0.0f64..5.0),
                uniform3(0.0f64..250.0),
                prop::collection::vec(charger(phases, step.clone()), 1..=40),
                prop::collection::vec(
                    (10.0f64..100.0, prop::collection::vec(0usize..40, 0..8)),
                    0..4,
                ),
                prop::option::of(0.0f64..600.0),
            )
        })
        .prop_map(
            |(phases, (limit, margin), grid_a, chargers, circuits, total)| AllocInput {
                phases,
                site_limit_a: limit,
                margin_a: margin,
                total_limit_a: total,
                circuits: circuits
                    .into_iter()
                    .map(|(limit_a, members)| CircuitInput { limit_a, members })
                    .collect(),
                grid_a,
                chargers,
                now_s: NOW,
                rotation_interval_s: 900.0,
            },
        )
}

/// One limit on one grid phase: what it can carry beside base load and reserves, and
/// the amps each charger puts on it per amp of setpoint.
struct Limit {
    capacity: f64,
    coefs: Vec<f64>,
}

fn limits(input: &AllocInput) -> Vec<Limit> {
    let n = input.chargers.len();
    let on_phase =
        |ch: &ChargerInput, p: usize| ch.phase_map.iter().filter(|&&gp| gp == p).count() as f64;
    let coef = |ch: &ChargerInput, p: usize| {
        let k = ch.phase_map.len();
        let none_active = !ch.usage.active[..k].contains(&true);
        (0..k)
            .filter(|&i| ch.phase_map[i] == p && (ch.usage.active[i] || none_active))
            .count() as f64
    };
    let reserve = |ch: &ChargerInput, p: usize| match ch.link {
        LinkState::Offline { assumed_a } => assumed_a * on_phase(ch, p),
        LinkState::Online { .. } => 0.0,
    };
    let mut out = Vec::new();
    let mut total = Limit {
        capacity: input.total_limit_a.unwrap_or(f64::INFINITY),
        coefs: vec![0.0; n],
    };
    for p in 0..input.phases {
        let mut base = input.grid_a[p];
        for ch in &input.chargers {
            if let LinkState::Online { measured_a, .. } = ch.link {
                for (i, &gp) in ch.phase_map.iter().enumerate() {
                    if gp == p {
                        base -= measured_a[i];
                    }
                }
            }
        }
        let reserves: f64 = input.chargers.iter().map(|ch| reserve(ch, p)).sum();
        // The total over the phases keeps no margin.
        total.capacity -= base.max(0.0) + reserves;
        for (c, ch) in total.coefs.iter_mut().zip(&input.chargers) {
            *c += coef(ch, p);
        }
        out.push(Limit {
            capacity: input.site_limit_a - input.margin_a - base.max(0.0) - reserves,
            coefs: input.chargers.iter().map(|ch| coef(ch, p)).collect(),
        });
        for circuit in &input.circuits {
            let mut members: Vec<usize> =
                circuit.members.iter().copied().filter(|&m| m < n).collect();
            members.sort_unstable();
            members.dedup();
            let reserves: f64 = members
                .iter()
                .map(|&m| reserve(&input.chargers[m], p))
                .sum();
            let mut coefs = vec![0.0; n];
            for &m in &members {
                coefs[m] = coef(&input.chargers[m], p);
            }
            out.push(Limit {
                capacity: circuit.limit_a - input.margin_a - reserves,
                coefs,
            });
        }
    }
    out.push(total);
    out
}

fn min_eff(ch: &ChargerInput) -> f64 {
    ceil_to_step(ch.min_a, ch.step_a)
}

/// The most a candidate may be given: max, profile and demand cap (but never below min).
fn cap_eff(ch: &ChargerInput) -> f64 {
    let hard = floor_to_step(ch.max_a.min(ch.cap_a.unwrap_or(f64::INFINITY)), ch.step_a);
    match ch.usage.demand_cap_a {
        Some(d) => floor_to_step(d, ch.step_a).max(min_eff(ch)).min(hard),
        None => hard,
    }
}

fn is_candidate(d: &Decision) -> bool {
    matches!(
        d.reason,
        Reason::Charging | Reason::NoCapacity | Reason::WaitingTurn
    )
}

/// What limit `l` has left when only chargers of priority ≥ `priority` count.
fn slack_at_or_above(l: &Limit, input: &AllocInput, out: &[Decision], priority: u8) -> f64 {
    let used: f64 = (0..out.len())
        .filter(|&j| input.chargers[j].priority >= priority)
        .map(|j| l.coefs[j] * out[j].setpoint_a)
        .sum();
    l.capacity - used
}

proptest! {
    #[test]
    fn never_exceeds_a_limit_that_the_base_load_leaves_room_for(input in site(prop_oneof![Just(1.0), Just(0.1)])) {
        let out = allocate(&input);
        for l in limits(&input) {
            let load: f64 = l.coefs.iter().zip(&out).map(|(c, d)| c * d.setpoint_a).sum();
            if l.capacity >= 0.0 {
                prop_assert!(load <= l.capacity + TOL, "load {load} > capacity {}", l.capacity);
            } else {
                prop_assert_eq!(load, 0.0);
            }
        }
    }

    #[test]
    fn setpoints_respect_min_max_profile_and_demand(input in site(prop_oneof![Just(1.0), Just(0.1)])) {
        let out = allocate(&input);
        prop_assert_eq!(out.len(), input.chargers.len());
        for (ch, d) in input.chargers.iter().zip(&out) {
            let s = d.setpoint_a;
            prop_assert!(s == 0.0 || s >= ch.min_a - TOL, "{s} between 0 and min {}", ch.min_a);
            prop_assert!(s <= ch.max_a + TOL);
            prop_assert!(s <= ch.cap_a.unwrap_or(f64::INFINITY) + TOL);
            if let Some(cap) = ch.usage.demand_cap_a {
                prop_assert!(s <= cap + TOL || s <= min_eff(ch) + TOL);
            }
            prop_assert_eq!(s > 0.0, d.reason == Reason::Charging);
            let asks = ch.enabled
                && matches!(ch.link, LinkState::Online { state, .. }
                    if state.is_connected() && !state.is_fault());
            prop_assert!(asks || s == 0.0);
        }
    }

    /// A candidate below its cap is held back by a limit that stays too tight even if
    /// every lower-priority charger were switched off: lower priorities only ever get
    /// what higher ones cannot use. Also: nothing a whole step could use is left idle.
    #[test]
    fn priorities_are_respected_and_no_step_is_left_unused(input in site(prop_oneof![Just(1.0), Just(0.1)])) {
        let out = allocate(&input);
        let limits = limits(&input);
        for (h, ch) in input.chargers.iter().enumerate() {
            let s = out[h].setpoint_a;
            if !is_candidate(&out[h]) || s >= cap_eff(ch) - TOL {
                continue;
            }
            let need = if s == 0.0 { min_eff(ch) } else { ch.step_a };
            let blocked = limits.iter().any(|l| {
                l.coefs[h] > 0.0
                    && slack_at_or_above(l, &input, &out, ch.priority) < l.coefs[h] * need + TOL
            });
            prop_assert!(blocked, "charger {h} at {s} could get {need} more without touching lower priorities");
        }
    }

    /// Max-min fairness among equal priorities (fine steps, so flooring barely matters):
    /// a charger below its cap sits on a full limit where nobody of its class has more
    /// than it, except chargers held at their own minimum.
    #[test]
    fn equal_priorities_are_max_min_fair(input in site(Just(0.001))) {
        let out = allocate(&input);
        let limits = limits(&input);
        for (h, ch) in input.chargers.iter().enumerate() {
            let s = out[h].setpoint_a;
            if out[h].reason != Reason::Charging || s >= cap_eff(ch) - TOL {
                continue;
            }
            let same_class = |j: usize| input.chargers[j].priority == ch.priority;
            let bottleneck = limits.iter().any(|l| {
                if l.coefs[h] == 0.0 {
                    return false;
                }
                let crumbs: f64 = (0..out.len())
                    .filter(|&j| same_class(j))
                    .map(|j| l.coefs[j] * input.chargers[j].step_a)
                    .sum();
                let full = slack_at_or_above(l, &input, &out, ch.priority) <= crumbs + TOL;
                let tol = ch.step_a + crumbs + TOL;
                full && (0..out.len()).filter(|&j| same_class(j) && l.coefs[j] > 0.0).all(|j| {
                    out[j].setpoint_a <= s.max(min_eff(&input.chargers[j])) + tol
                })
            });
            prop_assert!(bottleneck, "charger {h} at {s} has no bottleneck limit");
        }
    }
}
