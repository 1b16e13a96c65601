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
    /// Kept free below every per-phase limit, site and circuit.
    pub margin_a: f64,
    /// The most the site may draw summed over its phases, in amps (a power ÷ the voltage):
    /// a demand window's budget for now. It only ever lowers what the per-phase limits allow,
    /// and no margin is kept below it (the budget keeps its own). None: no such limit.
    pub total_limit_a: Option<f64>,
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
    /// Every cap below `max_a`, as one: the lowest of the cloud's cap, charging profiles,
    /// the installer's schedule, a departure plan's hold (0) and the idle watch (its
    /// minimum), resolved by [`crate::control::limits`]. Never exceeded, even for the
    /// minimum; a NaN is 0. None: no cap.
    pub cap_a: Option<f64>,
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

/// Why a charger got its setpoint: charging, offline, or one reason it is paused. One flat
/// type from the allocator to the cycle record, serialised by its snake_case name
/// (`charging`, `no_capacity`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Charging,
    Offline,
    /// Paused: no car connected.
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

impl Reason {
    /// Paused (asked nothing, or given nothing), rather than charging or offline.
    pub fn is_paused(self) -> bool {
        !matches!(self, Reason::Charging | Reason::Offline)
    }

    /// Paused for want of capacity (the site is full), rather than by the car or a rule.
    pub fn is_capacity(self) -> bool {
        matches!(self, Reason::NoCapacity | Reason::WaitingTurn)
    }
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
            Reason::NoCapacity | Reason::WaitingTurn => Turn {
                waiting_since_s: self.waiting_since_s.or(Some(now_s)),
                charging_since_s: None,
            },
            // Not asking for current: not waiting for it either.
            _ => Turn::default(),
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
                    reason: Reason::NoCapacity,
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

/// Constraint index of the total limit over all phases, after every circuit's.
fn total_constraint(n_circuits: usize) -> usize {
    MAX_PHASES * (n_circuits + 1)
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
    let drawn = online_draw_a(&input.chargers);
    let base: [f64; 3] = std::array::from_fn(|p| {
        let g = input.grid_a[p];
        if g.is_finite() {
            g - drawn[p]
        } else {
            f64::INFINITY
        }
    });
    base.map(|b| b.max(0.0))
}

/// Per grid phase: the current the online chargers were measured drawing (through their
/// phase maps). Unknown or negative readings add nothing.
pub fn online_draw_a(chargers: &[ChargerInput]) -> [f64; 3] {
    let mut drawn = [0.0; MAX_PHASES];
    for ch in chargers {
        if let LinkState::Online { measured_a, .. } = ch.link {
            for (&gp, &m) in ch.phase_map.iter().zip(measured_a.iter()) {
                if gp < MAX_PHASES && m.is_finite() && m > 0.0 {
                    drawn[gp] += m;
                }
            }
        }
    }
    drawn
}

impl CircuitInput {
    /// The config's circuits, with members as indexes into `cfg.chargers`.
    pub fn from_config(cfg: &crate::config::Config) -> Vec<CircuitInput> {
        cfg.circuits
            .iter()
            .map(|ci| CircuitInput {
                limit_a: ci.limit_a,
                members: cfg
                    .chargers
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| ci.chargers.contains(&c.id))
                    .map(|(i, _)| i)
                    .collect(),
            })
            .collect()
    }
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
    let mut capacity = vec![f64::INFINITY; total_constraint(n_circuits) + 1];
    for p in 0..phases {
        capacity[site_constraint(p)] =
            finite_or_zero(input.site_limit_a) - margin - base[p] - site_reserve[p];
        for (c, circuit) in input.circuits.iter().enumerate() {
            capacity[circuit_constraint(c, p)] =
                finite_or_zero(circuit.limit_a) - margin - circuit_reserve[c][p];
        }
    }
    if let Some(total) = input.total_limit_a {
        let taken: f64 = (0..phases).map(|p| base[p] + site_reserve[p]).sum();
        capacity[total_constraint(n_circuits)] = finite_or_zero(total) - taken;
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
    let paused = Err::<Candidate, Reason>;
    if !ch.enabled {
        return paused(Reason::Disabled);
    }
    if state.is_fault() {
        return paused(Reason::Fault);
    }
    if !state.is_connected() {
        return paused(Reason::NoCar);
    }
    if ch.phase_map.is_empty()
        || ch.phase_map.len() > MAX_PHASES
        || ch.phase_map.iter().any(|&gp| gp >= phases)
    {
        return paused(Reason::BadPhaseMap);
    }
    // A coarser step only ever floors lower: the safe fallback for a nonsensical one.
    let step_a = if ch.step_a > 0.0 && ch.step_a.is_finite() {
        ch.step_a
    } else {
        1.0
    };
    let min_a = ceil_to_step(ch.min_a, step_a);
    let profile = match ch.cap_a {
        Some(p) if p.is_nan() => 0.0,
        Some(p) => p,
        None => f64::INFINITY,
    };
    let hard_cap = floor_to_step(ch.max_a.min(profile), step_a);
    // Written so that a NaN anywhere lands on `Limited`.
    if !(min_a > 0.0 && hard_cap >= min_a && hard_cap.is_finite()) {
        return paused(Reason::Limited);
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
    if input.total_limit_a.is_some() {
        loads.push((
            total_constraint(input.circuits.len()),
            per_phase.iter().sum(),
        ));
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
            reasons[j] = Reason::WaitingTurn;
        } else {
            reasons[j] = Reason::NoCapacity;
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

/// A constraint of the allocation, as [`slack`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    /// The site limit on grid phase `phase` (0-based).
    Site { phase: usize },
    /// Circuit `circuit` (an index into [`AllocInput::circuits`]) on grid phase `phase`.
    Circuit { circuit: usize, phase: usize },
    /// The total over every phase (the demand budget).
    Total,
}

/// How close one charger is to its bounds after an allocation: what [`allocate`] worked
/// with, told after the fact so that a charger's current can be explained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slack {
    /// Its step-aligned minimum.
    pub min_a: f64,
    /// Its step-aligned hard cap: its maximum and every cap on it, floored to its step.
    pub hard_cap_a: f64,
    /// Its cap this cycle: the hard cap, lowered to what the car has shown it takes.
    pub cap_a: f64,
    /// Its tightest constraint and the amps of this charger it has room for: after every
    /// charger's setpoint for a charger that got current, after the higher priority classes
    /// only for one that did not (what was free when its turn came).
    pub tightest: Option<(Constraint, f64)>,
}

/// Per charger, its [`Slack`] after `decisions` (None: it asked for no current).
pub fn slack(input: &AllocInput, decisions: &[Decision]) -> Vec<Option<Slack>> {
    let phases = input.phases.clamp(1, MAX_PHASES);
    let member_of = circuits_of(input);
    let n_circuits = input.circuits.len();
    let start = capacities(input, phases, &member_of);
    let candidates: Vec<Option<Candidate>> = (0..input.chargers.len())
        .map(|i| candidate(input, i, phases, &member_of).ok())
        .collect();
    let used = |remaining: &mut Vec<f64>, keep: &dyn Fn(&Candidate) -> bool| {
        for (c, d) in candidates.iter().zip(decisions) {
            if let Some(c) = c.as_ref().filter(|c| keep(c)) {
                if d.setpoint_a > 0.0 {
                    take(c, d.setpoint_a, remaining);
                }
            }
        }
    };
    let mut after_all = start.clone();
    used(&mut after_all, &|_| true);
    let decode = |k: usize| {
        if k == total_constraint(n_circuits) {
            Constraint::Total
        } else if k < MAX_PHASES {
            Constraint::Site { phase: k }
        } else {
            Constraint::Circuit {
                circuit: k / MAX_PHASES - 1,
                phase: k % MAX_PHASES,
            }
        }
    };
    candidates
        .iter()
        .zip(decisions)
        .map(|(c, d)| {
            let c = c.as_ref()?;
            let remaining = if d.setpoint_a > 0.0 {
                after_all.clone()
            } else {
                let mut r = start.clone();
                used(&mut r, &|o: &Candidate| o.priority > c.priority);
                r
            };
            let tightest = c
                .loads
                .iter()
                .filter(|&&(_, coef)| coef > 0.0)
                .map(|&(k, coef)| (decode(k), remaining[k] / coef))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let ch = &input.chargers[c.index];
            let cap = match ch.cap_a {
                Some(p) if p.is_nan() => 0.0,
                Some(p) => p,
                None => f64::INFINITY,
            };
            Some(Slack {
                min_a: c.min_a,
                hard_cap_a: floor_to_step(ch.max_a.min(cap), c.step_a),
                cap_a: c.cap_a,
                tightest,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
