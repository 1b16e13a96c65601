//! The load allocation: how much current each charger may offer its car this cycle.
//!
//! A pure function of one snapshot (meter, chargers, limits, time). Every limit — the site
//! fuse and each circuit, on each grid phase — is a constraint; what the base load and offline
//! chargers leave of it is shared out by priority class, then max-min fairly (progressive
//! filling) inside a class, with rotation deciding who gets a slot when not all minimums fit.
//!
//! Safety before utilisation: unknown or non-finite inputs always shrink capacity, a charger
//! never gets a setpoint between 0 and its minimum, setpoints are floored to what the charger
//! can be told.

use super::usage::Usage;
use crate::devices::model::ChargeState;

/// Slack for float comparisons, far below any current that matters.
const EPS: f64 = 1e-9;
const MAX_PHASES: usize = 3;

/// One snapshot of the site, as the allocator needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocInput {
    /// Site phases, 1 or 3.
    pub phases: usize,
    /// Per phase: the lower of `grid_limit_a` and any limit commanded by the cloud.
    pub site_limit_a: f64,
    /// Kept free below every limit, site and circuit.
    pub margin_a: f64,
    pub circuits: Vec<CircuitInput>,
    /// Main meter current per grid phase.
    pub grid_a: [f64; 3],
    pub chargers: Vec<ChargerInput>,
    pub now_s: f64,
    /// How long a charging slot is held while others wait; not positive: no rotation.
    pub rotation_interval_s: f64,
}

/// A sub-distribution with its own per-phase limit and no meter of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitInput {
    pub limit_a: f64,
    /// Indexes into [`AllocInput::chargers`].
    pub members: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkState {
    /// Read this cycle: its IEC 61851 state and measured current per charger phase.
    Online {
        state: ChargeState,
        measured_a: [f64; 3],
    },
    /// Not readable: whatever it draws is unknown, so `assumed_a` (its last setpoint, or its
    /// max if never known) stays reserved on all its grid phases.
    Offline { assumed_a: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChargerInput {
    /// Charger phase `i` is on grid phase `phase_map[i]` (0-based); its length is the
    /// charger's phase count.
    pub phase_map: Vec<usize>,
    pub min_a: f64,
    pub max_a: f64,
    /// Higher is served first.
    pub priority: u8,
    pub enabled: bool,
    /// Cap from a charging profile or a cloud command; never exceeded, even for the minimum.
    pub profile_limit_a: Option<f64>,
    /// Setpoint resolution of the charger (1.0 for whole-amp registers).
    pub step_a: f64,
    pub link: LinkState,
    pub usage: Usage,
    /// Connected and waiting for capacity since (see [`Turn`]).
    pub waiting_since_s: Option<f64>,
    /// Holding a charging slot since (see [`Turn`]).
    pub charging_since_s: Option<f64>,
}

/// The allocator's answer for one charger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// 0 (paused) or between the charger's minimum and its cap. 0 for an offline charger:
    /// nothing can be written to it, and its assumed draw stays reserved.
    pub setpoint_a: f64,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Charging,
    Paused(PauseReason),
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PauseReason {
    NoCar,
    Disabled,
    Fault,
    /// Its maximum or profile limit is below its minimum.
    Limited,
    /// Its phase map does not fit the site (rejected by config validation; never served).
    BadPhaseMap,
    /// Not even its minimum fits beside the base load and higher priorities.
    NoCapacity,
    /// Its minimum would fit, but chargers of its own priority hold the slots for now.
    WaitingTurn,
}

/// A charger's place in the rotation, kept by the control loop between cycles and fed back
/// as [`ChargerInput::waiting_since_s`] and [`ChargerInput::charging_since_s`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Turn {
    pub waiting_since_s: Option<f64>,
    pub charging_since_s: Option<f64>,
}

impl Turn {
    /// The turn after this cycle's `decision`.
    pub fn after(self, decision: &Decision, connected: bool, now_s: f64) -> Turn {
        match decision.reason {
            _ if !connected => Turn::default(),
            // Nothing known this cycle: keep its place.
            Reason::Offline => self,
            Reason::Charging => Turn {
                waiting_since_s: None,
                charging_since_s: self.charging_since_s.or(Some(now_s)),
            },
            Reason::Paused(PauseReason::NoCapacity | PauseReason::WaitingTurn) => Turn {
                waiting_since_s: self.waiting_since_s.or(Some(now_s)),
                charging_since_s: None,
            },
            // Not asking for current: not waiting for it either.
            Reason::Paused(_) => Turn::default(),
        }
    }
}

/// `x` rounded down to a multiple of `step`; the tiny bias absorbs float noise such as
/// 0.3 / 0.1 = 2.9999999999999996.
pub fn floor_to_step(x: f64, step: f64) -> f64 {
    (x / step + 1e-9).floor() * step
}

fn ceil_to_step(x: f64, step: f64) -> f64 {
    (x / step - 1e-9).ceil() * step
}

/// Decide every charger's setpoint; one [`Decision`] per charger, in input order.
pub fn allocate(input: &AllocInput) -> Vec<Decision> {
    let phases = input.phases.clamp(1, MAX_PHASES);
    let member_of = circuits_of(input);
    let mut remaining = capacities(input, phases, &member_of);
    let mut decisions = Vec::with_capacity(input.chargers.len());
    let mut candidates = Vec::new();
    for i in 0..input.chargers.len() {
        match candidate(input, i, phases, &member_of) {
            Ok(c) => {
                candidates.push(c);
                decisions.push(Decision {
                    setpoint_a: 0.0,
                    reason: Reason::Paused(PauseReason::NoCapacity),
                });
            }
            Err(reason) => decisions.push(Decision {
                setpoint_a: 0.0,
                reason,
            }),
        }
    }
    candidates.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.turn_group.cmp(&b.turn_group))
            .then(a.turn_key.total_cmp(&b.turn_key))
            .then(a.index.cmp(&b.index))
    });
    for class in candidates.chunk_by(|a, b| a.priority == b.priority) {
        for (c, d) in class.iter().zip(serve_class(class, &mut remaining)) {
            decisions[c.index] = d;
        }
    }
    decisions
}

/// A charger that asks for current, with everything the filling needs.
#[derive(Debug, Clone)]
struct Candidate {
    index: usize,
    priority: u8,
    /// Step-aligned minimum: the least it may be given when it gets anything.
    min_a: f64,
    /// Step-aligned most it may be given (≥ `min_a`).
    cap_a: f64,
    step_a: f64,
    /// (constraint, amps taken there per amp of setpoint).
    loads: Vec<(usize, f64)>,
    turn_group: u8,
    turn_key: f64,
}

/// Constraint index of the site limit on grid phase `p`.
fn site_constraint(p: usize) -> usize {
    p
}

/// Constraint index of circuit `c`'s limit on grid phase `p`.
fn circuit_constraint(c: usize, p: usize) -> usize {
    MAX_PHASES * (c + 1) + p
}

/// For each charger, the circuits it belongs to (each once; unknown members are ignored).
fn circuits_of(input: &AllocInput) -> Vec<Vec<usize>> {
    let mut member_of = vec![Vec::new(); input.chargers.len()];
    for (c, circuit) in input.circuits.iter().enumerate() {
        for &m in &circuit.members {
            if let Some(list) = member_of.get_mut(m) {
                if !list.contains(&c) {
                    list.push(c);
                }
            }
        }
    }
    member_of
}

/// A limit that is not a number gives no capacity.
fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// Per grid phase: what the main meter sees besides the online chargers. Unknown meter
/// values count as unlimited load; unknown charger values are not subtracted; a negative
/// result (export, or meters out of step) counts as 0, since export may vanish at any time.
fn base_load(input: &AllocInput) -> [f64; 3] {
    let mut base = input
        .grid_a
        .map(|g| if g.is_finite() { g } else { f64::INFINITY });
    for ch in &input.chargers {
        if let LinkState::Online { measured_a, .. } = ch.link {
            for (&gp, &m) in ch.phase_map.iter().zip(measured_a.iter()) {
                if gp < MAX_PHASES && m.is_finite() && m > 0.0 {
                    base[gp] -= m;
                }
            }
        }
    }
    base.map(|b| b.max(0.0))
}

/// What each constraint can still carry before any candidate is served.
fn capacities(input: &AllocInput, phases: usize, member_of: &[Vec<usize>]) -> Vec<f64> {
    let margin = if input.margin_a.is_nan() {
        f64::INFINITY
    } else {
        input.margin_a.max(0.0)
    };
    let n_circuits = input.circuits.len();
    let mut site_reserve = [0.0; MAX_PHASES];
    let mut circuit_reserve = vec![[0.0; MAX_PHASES]; n_circuits];
    for (i, ch) in input.chargers.iter().enumerate() {
        if let LinkState::Offline { assumed_a } = ch.link {
            let reserve = if assumed_a.is_finite() {
                assumed_a.max(0.0)
            } else if ch.max_a.is_finite() {
                ch.max_a.max(0.0)
            } else {
                f64::INFINITY
            };
            for &gp in ch.phase_map.iter().filter(|&&gp| gp < phases) {
                site_reserve[gp] += reserve;
                for &c in &member_of[i] {
                    circuit_reserve[c][gp] += reserve;
                }
            }
        }
    }
    let base = base_load(input);
    // Phases the site does not have stay unlimited; no candidate can be mapped onto them.
    let mut capacity = vec![f64::INFINITY; MAX_PHASES * (n_circuits + 1)];
    for p in 0..phases {
        capacity[site_constraint(p)] =
            finite_or_zero(input.site_limit_a) - margin - base[p] - site_reserve[p];
        for (c, circuit) in input.circuits.iter().enumerate() {
            capacity[circuit_constraint(c, p)] =
                finite_or_zero(circuit.limit_a) - margin - circuit_reserve[c][p];
        }
    }
    capacity
}

/// The charger as a candidate, or why it is not one.
fn candidate(
    input: &AllocInput,
    index: usize,
    phases: usize,
    member_of: &[Vec<usize>],
) -> Result<Candidate, Reason> {
    let ch = &input.chargers[index];
    let state = match ch.link {
        LinkState::Offline { .. } => return Err(Reason::Offline),
        LinkState::Online { state, .. } => state,
    };
    let paused = |why| Err(Reason::Paused(why));
    if !ch.enabled {
        return paused(PauseReason::Disabled);
    }
    if state.is_fault() {
        return paused(PauseReason::Fault);
    }
    if !state.is_connected() {
        return paused(PauseReason::NoCar);
    }
    if ch.phase_map.is_empty()
        || ch.phase_map.len() > MAX_PHASES
        || ch.phase_map.iter().any(|&gp| gp >= phases)
    {
        return paused(PauseReason::BadPhaseMap);
    }
    // A coarser step only ever floors lower: the safe fallback for a nonsensical one.
    let step_a = if ch.step_a > 0.0 && ch.step_a.is_finite() {
        ch.step_a
    } else {
        1.0
    };
    let min_a = ceil_to_step(ch.min_a, step_a);
    let profile = match ch.profile_limit_a {
        Some(p) if p.is_nan() => 0.0,
        Some(p) => p,
        None => f64::INFINITY,
    };
    let hard_cap = floor_to_step(ch.max_a.min(profile), step_a);
    // Written so that a NaN anywhere lands on `Limited`.
    if !(min_a > 0.0 && hard_cap >= min_a && hard_cap.is_finite()) {
        return paused(PauseReason::Limited);
    }
    // A car that draws little still needs its minimum offered: the demand cap stops there.
    let cap_a = match ch.usage.demand_cap_a {
        Some(d) if d.is_finite() => floor_to_step(d, step_a).max(min_a).min(hard_cap),
        _ => hard_cap,
    };

    let mut per_phase = [0.0; MAX_PHASES];
    let any_active = (0..ch.phase_map.len()).any(|i| ch.usage.active[i]);
    for (i, &gp) in ch.phase_map.iter().enumerate() {
        if ch.usage.active[i] || !any_active {
            per_phase[gp] += 1.0;
        }
    }
    let mut loads = Vec::new();
    for (gp, &coef) in per_phase.iter().enumerate().filter(|(_, &c)| c > 0.0) {
        loads.push((site_constraint(gp), coef));
        for &c in &member_of[index] {
            loads.push((circuit_constraint(c, gp), coef));
        }
    }
    let (turn_group, turn_key) = turn_order(ch, input.now_s, input.rotation_interval_s);
    Ok(Candidate {
        index,
        priority: ch.priority,
        min_a,
        cap_a,
        step_a,
        loads,
        turn_group,
        turn_key,
    })
}

/// Admission order inside a priority class, smallest first: chargers that waited a full
/// interval (longest first; they were passed over, so they go before fresh slots — no car
/// waits for ever), charging for less than the interval (keep their slot; the most recent
/// start is kept longest), waiting (longest first), charging for longer (longest last).
fn turn_order(ch: &ChargerInput, now_s: f64, interval_s: f64) -> (u8, f64) {
    let interval = if interval_s > 0.0 {
        interval_s
    } else {
        f64::INFINITY
    };
    let since = |t: Option<f64>| {
        let d = now_s - t.unwrap_or(now_s);
        if d.is_nan() {
            0.0
        } else {
            d
        }
    };
    match ch.charging_since_s {
        Some(_) => {
            let charged = since(ch.charging_since_s);
            (if charged < interval { 1 } else { 3 }, charged)
        }
        None => {
            let waited = since(ch.waiting_since_s);
            (if waited >= interval { 0 } else { 2 }, -waited)
        }
    }
}

/// Does `amps` more of this candidate fit every constraint it is in?
fn fits(c: &Candidate, amps: f64, remaining: &[f64]) -> bool {
    // Written so that NaN capacity never fits.
    c.loads
        .iter()
        .all(|&(k, coef)| remaining[k] - coef * amps >= -EPS)
}

fn take(c: &Candidate, amps: f64, remaining: &mut [f64]) {
    for &(k, coef) in &c.loads {
        remaining[k] -= coef * amps;
    }
}

/// Serve one priority class (in admission order) from what is left, and take its share.
fn serve_class(class: &[Candidate], remaining: &mut [f64]) -> Vec<Decision> {
    let at_start = remaining.to_vec();
    let mut alloc = vec![0.0; class.len()];
    let mut admitted = Vec::new();
    let mut reasons = vec![Reason::Charging; class.len()];
    for (j, c) in class.iter().enumerate() {
        if fits(c, c.min_a, remaining) {
            take(c, c.min_a, remaining);
            alloc[j] = c.min_a;
            admitted.push(j);
        } else if fits(c, c.min_a, &at_start) {
            reasons[j] = Reason::Paused(PauseReason::WaitingTurn);
        } else {
            reasons[j] = Reason::Paused(PauseReason::NoCapacity);
        }
    }

    water_fill(class, &admitted, &mut alloc, remaining);

    // Floor to what the charger can be told, then hand the crumbs out a step at a time in
    // admission order so no whole step the site can spare is left unused.
    for &j in &admitted {
        let c = &class[j];
        let floored = floor_to_step(alloc[j], c.step_a).max(c.min_a);
        take(c, floored - alloc[j], remaining);
        alloc[j] = floored;
    }
    loop {
        let mut raised = false;
        for &j in &admitted {
            let c = &class[j];
            if alloc[j] + c.step_a <= c.cap_a + EPS && fits(c, c.step_a, remaining) {
                take(c, c.step_a, remaining);
                alloc[j] += c.step_a;
                raised = true;
            }
        }
        if !raised {
            break;
        }
    }

    alloc
        .into_iter()
        .zip(reasons)
        .map(|(setpoint_a, reason)| Decision { setpoint_a, reason })
        .collect()
}

/// Progressive filling: raise a common level; every admitted candidate sits at
/// `clamp(level, its min, its cap)` until a constraint it is in runs full, then it stays.
/// The result is max-min fair: nobody can get more without taking from someone with less.
fn water_fill(class: &[Candidate], admitted: &[usize], alloc: &mut [f64], remaining: &mut [f64]) {
    let full = |c: &Candidate, remaining: &[f64]| c.loads.iter().any(|&(k, _)| remaining[k] <= EPS);
    let mut active: Vec<usize> = admitted
        .iter()
        .copied()
        .filter(|&j| alloc[j] < class[j].cap_a - EPS && !full(&class[j], remaining))
        .collect();
    let mut level = active
        .iter()
        .map(|&j| alloc[j])
        .fold(f64::INFINITY, f64::min);
    let mut rate = vec![0.0; remaining.len()];
    // Every round freezes a candidate or lets the level reach one: bounded, but guarded.
    let mut rounds = 2 * admitted.len() + 2;
    while !active.is_empty() && rounds > 0 {
        rounds -= 1;
        rate.fill(0.0);
        let mut next = f64::INFINITY;
        for &j in &active {
            let c = &class[j];
            if alloc[j] <= level + EPS {
                for &(k, coef) in &c.loads {
                    rate[k] += coef;
                }
                next = next.min(c.cap_a);
            } else {
                next = next.min(alloc[j]);
            }
        }
        for (k, &r) in rate.iter().enumerate() {
            if r > 0.0 {
                next = next.min(level + remaining[k].max(0.0) / r);
            }
        }
        let next = next.max(level);
        for &j in &active {
            if alloc[j] <= level + EPS {
                alloc[j] = next;
            }
        }
        for (k, &r) in rate.iter().enumerate() {
            if r > 0.0 {
                remaining[k] -= r * (next - level);
            }
        }
        level = next;
        active.retain(|&j| alloc[j] < class[j].cap_a - EPS && !full(&class[j], remaining));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::usage::{UsageParams, UsageTracker};

    fn site(limit: f64, chargers: Vec<ChargerInput>) -> AllocInput {
        AllocInput {
            phases: 3,
            site_limit_a: limit,
            margin_a: 0.0,
            circuits: Vec::new(),
            grid_a: [0.0; 3],
            chargers,
            now_s: 1000.0,
            rotation_interval_s: 900.0,
        }
    }

    fn charger(phase_map: &[usize]) -> ChargerInput {
        ChargerInput {
            phase_map: phase_map.to_vec(),
            min_a: 6.0,
            max_a: 32.0,
            priority: 0,
            enabled: true,
            profile_limit_a: None,
            step_a: 1.0,
            link: LinkState::Online {
                state: ChargeState::C,
                measured_a: [0.0; 3],
            },
            usage: Usage::default(),
            waiting_since_s: None,
            charging_since_s: Some(990.0),
        }
    }

    fn setpoints(input: &AllocInput) -> Vec<f64> {
        allocate(input).iter().map(|d| d.setpoint_a).collect()
    }

    #[test]
    fn spare_current_is_shared_equally_and_floored_to_whole_amps() {
        let input = site(32.0, vec![charger(&[0]), charger(&[0]), charger(&[0])]);
        let mut got = setpoints(&input);
        // 32 / 3 = 10.67: floored, then the two spare amps go out one step at a time.
        got.sort_by(f64::total_cmp);
        assert_eq!(got, vec![10.0, 11.0, 11.0]);
    }

    #[test]
    fn one_phase_car_on_three_phase_charger_frees_two_phases_for_others() {
        let chargers = vec![charger(&[0, 1, 2]), charger(&[1]), charger(&[2])];
        let mut input = site(20.0, chargers);
        assert_eq!(setpoints(&input), vec![10.0, 10.0, 10.0]);
        input.chargers[0].usage.active = [true, false, false];
        assert_eq!(setpoints(&input), vec![20.0, 20.0, 20.0]);
    }

    #[test]
    fn a_16_amp_cars_unused_share_goes_to_others_and_comes_back_when_it_draws() {
        let mut input = site(40.0, vec![charger(&[0]), charger(&[0])]);
        let mut trackers = [0, 1].map(|_| UsageTracker::new(UsageParams::new(2.0), 1, 6.0, 32.0));
        let mut setpoint = [0.0f64, 0.0];
        // The first car accepts 16 A at most; the second takes whatever it is offered.
        let mut car_limit = [16.0, 32.0];
        let mut run = |input: &mut AllocInput, car_limit: [f64; 2], from: u32, to: u32| {
            for t in from..to {
                for i in 0..2 {
                    let drawn = setpoint[i].min(car_limit[i]);
                    input.chargers[i].usage =
                        trackers[i].observe(setpoint[i], &[drawn], true, t as f64);
                }
                input.now_s = t as f64;
                for (s, d) in setpoint.iter_mut().zip(allocate(input)) {
                    *s = d.setpoint_a;
                }
            }
            setpoint
        };
        assert_eq!(run(&mut input, car_limit, 0, 60), [18.0, 22.0]);
        car_limit[0] = 32.0;
        assert_eq!(run(&mut input, car_limit, 60, 120), [20.0, 20.0]);
    }

    #[test]
    fn a_demand_cap_below_min_still_gets_min() {
        let mut input = site(40.0, vec![charger(&[0])]);
        input.chargers[0].usage.demand_cap_a = Some(3.0);
        assert_eq!(setpoints(&input), vec![6.0]);
    }

    #[test]
    fn a_profile_below_min_pauses() {
        let mut input = site(40.0, vec![charger(&[0])]);
        input.chargers[0].profile_limit_a = Some(5.0);
        let d = allocate(&input);
        assert_eq!(d[0].setpoint_a, 0.0);
        assert_eq!(d[0].reason, Reason::Paused(PauseReason::Limited));
        input.chargers[0].profile_limit_a = Some(12.5);
        assert_eq!(setpoints(&input), vec![12.0]);
    }

    #[test]
    fn never_between_zero_and_min_when_not_all_minimums_fit() {
        let input = site(10.0, vec![charger(&[0]), charger(&[0])]);
        let d = allocate(&input);
        assert_eq!(d[0].setpoint_a, 10.0);
        assert_eq!(d[1].setpoint_a, 0.0);
        assert_eq!(d[1].reason, Reason::Paused(PauseReason::WaitingTurn));
    }

    #[test]
    fn rotation_lets_a_waiting_car_in_after_the_interval() {
        let mut input = site(10.0, vec![charger(&[0]), charger(&[0])]);
        let mut turns = [
            Turn {
                waiting_since_s: None,
                charging_since_s: Some(0.0),
            },
            Turn {
                waiting_since_s: Some(0.0),
                charging_since_s: None,
            },
        ];
        let mut charged_s = [0.0, 0.0];
        let mut longest_wait: f64 = 0.0;
        for t in (0..7200).step_by(10) {
            input.now_s = t as f64;
            for (ch, turn) in input.chargers.iter_mut().zip(&turns) {
                ch.waiting_since_s = turn.waiting_since_s;
                ch.charging_since_s = turn.charging_since_s;
            }
            let d = allocate(&input);
            assert_eq!(d.iter().filter(|d| d.setpoint_a > 0.0).count(), 1);
            for i in 0..2 {
                if d[i].setpoint_a > 0.0 {
                    charged_s[i] += 10.0;
                }
                turns[i] = turns[i].after(&d[i], true, t as f64);
                if let Some(w) = turns[i].waiting_since_s {
                    longest_wait = longest_wait.max(t as f64 - w);
                }
            }
        }
        assert!(longest_wait <= 900.0, "a car waited {longest_wait} s");
        assert_eq!(charged_s, [3600.0, 3600.0]);
    }

    #[test]
    fn a_fresh_slot_is_kept_while_the_other_waits_less_than_the_interval() {
        let mut input = site(10.0, vec![charger(&[0]), charger(&[0])]);
        input.chargers[0].charging_since_s = Some(500.0);
        input.chargers[1].charging_since_s = None;
        input.chargers[1].waiting_since_s = Some(400.0);
        assert_eq!(setpoints(&input), vec![10.0, 0.0]);
        // Once the waiting car has waited a full interval it goes first.
        input.now_s = 1300.0;
        assert_eq!(setpoints(&input), vec![0.0, 10.0]);
    }

    #[test]
    fn offline_charger_is_reserved_on_its_phases_and_in_its_circuit() {
        let mut offline = charger(&[0, 1]);
        offline.link = LinkState::Offline { assumed_a: 16.0 };
        let mut input = site(32.0, vec![offline, charger(&[0]), charger(&[2])]);
        let d = allocate(&input);
        assert_eq!(
            d[0],
            Decision {
                setpoint_a: 0.0,
                reason: Reason::Offline
            }
        );
        assert_eq!(d[1].setpoint_a, 16.0);
        assert_eq!(d[2].setpoint_a, 32.0);
        // In a circuit, the reserve counts against the circuit too.
        input.circuits.push(CircuitInput {
            limit_a: 24.0,
            members: vec![0, 2],
        });
        input.chargers[0].phase_map = vec![2];
        assert_eq!(setpoints(&input), vec![0.0, 32.0, 8.0]);
    }

    #[test]
    fn overload_decreases_at_once() {
        let mut input = site(32.0, vec![charger(&[0]), charger(&[1])]);
        input.chargers[0].link = LinkState::Online {
            state: ChargeState::C,
            measured_a: [20.0, 0.0, 0.0],
        };
        // Grid phase 0 carries the car's 20 A plus 20 A of other load: base load 20 A.
        input.grid_a = [40.0, 0.0, 0.0];
        assert_eq!(setpoints(&input), vec![12.0, 32.0]);
        // The base load alone leaves less than a minimum: that phase is paused entirely.
        input.grid_a = [48.0, 0.0, 0.0];
        assert_eq!(setpoints(&input), vec![0.0, 32.0]);
        input.grid_a = [60.0, 0.0, 0.0];
        let d = allocate(&input);
        assert_eq!(d[0].reason, Reason::Paused(PauseReason::NoCapacity));
    }

    #[test]
    fn unknown_meter_reading_means_no_capacity() {
        let mut input = site(32.0, vec![charger(&[0]), charger(&[1])]);
        input.grid_a = [f64::NAN, 0.0, 0.0];
        assert_eq!(setpoints(&input), vec![0.0, 32.0]);
    }

    #[test]
    fn margin_is_kept_free() {
        let mut input = site(32.0, vec![charger(&[0])]);
        input.margin_a = 2.5;
        assert_eq!(setpoints(&input), vec![29.0]);
    }

    #[test]
    fn circuit_limit_binds_only_its_members() {
        let mut input = site(63.0, vec![charger(&[0]), charger(&[0]), charger(&[0])]);
        input.circuits.push(CircuitInput {
            limit_a: 16.0,
            members: vec![0, 1],
        });
        assert_eq!(setpoints(&input), vec![8.0, 8.0, 32.0]);
    }

    #[test]
    fn phase_map_rotation_is_accounted_on_grid_phases() {
        // Charger 0's only phase is on grid L2; its measured 10 A is part of L2's 30 A.
        let mut x = charger(&[1]);
        x.link = LinkState::Online {
            state: ChargeState::C,
            measured_a: [10.0, 0.0, 0.0],
        };
        let mut input = site(32.0, vec![x, charger(&[0])]);
        input.grid_a = [0.0, 30.0, 0.0];
        assert_eq!(setpoints(&input), vec![12.0, 32.0]);
        // Rotated 3-phase chargers: each grid phase carries one phase of each.
        let mut input = site(
            30.0,
            vec![
                charger(&[0, 1, 2]),
                charger(&[1, 2, 0]),
                charger(&[2, 0, 1]),
            ],
        );
        input.grid_a = [0.0, 6.0, 0.0];
        assert_eq!(setpoints(&input), vec![8.0, 8.0, 8.0]);
    }

    #[test]
    fn higher_priority_is_served_first() {
        let mut input = site(20.0, vec![charger(&[0]), charger(&[0]), charger(&[1])]);
        input.chargers[0].priority = 1;
        input.chargers[0].max_a = 16.0;
        // The low-priority car has waited far longer: priority still wins.
        input.chargers[1].charging_since_s = None;
        input.chargers[1].waiting_since_s = Some(0.0);
        let d = allocate(&input);
        assert_eq!(d[0].setpoint_a, 16.0);
        assert_eq!(
            d[1],
            Decision {
                setpoint_a: 0.0,
                reason: Reason::Paused(PauseReason::NoCapacity)
            }
        );
        // A low-priority charger on another phase is not held back.
        assert_eq!(d[2].setpoint_a, 20.0);
    }

    #[test]
    fn states_that_ask_for_nothing_get_nothing() {
        let mut chargers: Vec<_> = (0..4).map(|_| charger(&[0])).collect();
        for (ch, state) in chargers.iter_mut().zip([
            ChargeState::A,
            ChargeState::E,
            ChargeState::F,
            ChargeState::B,
        ]) {
            ch.link = LinkState::Online {
                state,
                measured_a: [0.0; 3],
            };
        }
        chargers[3].enabled = false;
        let reasons: Vec<_> = allocate(&site(32.0, chargers))
            .iter()
            .map(|d| d.reason)
            .collect();
        assert_eq!(
            reasons,
            vec![
                Reason::Paused(PauseReason::NoCar),
                Reason::Paused(PauseReason::Fault),
                Reason::Paused(PauseReason::Fault),
                Reason::Paused(PauseReason::Disabled),
            ]
        );
    }
}

/// Property tests against an independent model of the limits: loads are computed here from
/// the definitions (base load, reserves, setpoints on the grid phases each car uses), not
/// from the allocator's own bookkeeping.
#[cfg(test)]
mod props {
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
                move |(
                    n,
                    rot,
                    (min, extra),
                    priority,
                    enabled,
                    profile,
                    step,
                    link,
                    usage,
                    turn,
                )| {
                    let (ago, charging) = turn;
                    ChargerInput {
                        phase_map: (0..n).map(|i| (rot + i) % site_phases).collect(),
                        min_a: min,
                        max_a: min + extra,
                        priority,
                        enabled,
                        profile_limit_a: profile,
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
                )
            })
            .prop_map(
                |(phases, (limit, margin), grid_a, chargers, circuits)| AllocInput {
                    phases,
                    site_limit_a: limit,
                    margin_a: margin,
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
        out
    }

    fn min_eff(ch: &ChargerInput) -> f64 {
        ceil_to_step(ch.min_a, ch.step_a)
    }

    /// The most a candidate may be given: max, profile and demand cap (but never below min).
    fn cap_eff(ch: &ChargerInput) -> f64 {
        let hard = floor_to_step(
            ch.max_a.min(ch.profile_limit_a.unwrap_or(f64::INFINITY)),
            ch.step_a,
        );
        match ch.usage.demand_cap_a {
            Some(d) => floor_to_step(d, ch.step_a).max(min_eff(ch)).min(hard),
            None => hard,
        }
    }

    fn is_candidate(d: &Decision) -> bool {
        matches!(
            d.reason,
            Reason::Charging | Reason::Paused(PauseReason::NoCapacity | PauseReason::WaitingTurn)
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
                prop_assert!(s <= ch.profile_limit_a.unwrap_or(f64::INFINITY) + TOL);
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
}
