//! Sessions of the whole site, fed by the controller's view after every cycle: one
//! [`SessionMachine`] per charger, whose each session is (from the cycle record's identity), the
//! tariff snapshotted at plug-in (its group's once the group is known), the running cost and an
//! end-time estimate, and what must be stored and announced.
//!
//! Pure apart from fresh session ids: the daemon stores what [`SessionTracker::observe`]
//! returns, the simulator scores it. A session outlives evsite: after a restart it is handed
//! back with [`SessionTracker::resume`], and the first reading of its charger decides whether
//! the vehicle is still there.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};

use super::cost::cost;
use super::energy::{MeterConfig, RegisterFault, Sample};
use super::estimate::{
    energy_range, expected_energy, EndEstimator, EndRange, Observation, Outlook, DEFAULT_STOP_A,
};
use super::machine::{
    MachineConfig, Reading, RecordState, SessionEvent, SessionMachine, SessionPlan, SessionRecord,
    StopReason,
};
use super::tariff::TariffSnapshot;
use super::vehicles::{vehicle_key, VehicleHistories, Visit};
use crate::alerts::{AlertKind, AlertSignal};
use crate::config::{Charger, Config};
use crate::control::record::{ChargerCycle, CycleRecord};
use crate::devices::model::EnergyScope;
use crate::devices::regmap::DataType;
use crate::electric::{power_w, DRAW_FLOOR_A};
use crate::tokens::Identity;

/// How often a running session is announced (`session.updated`) besides its state changes;
/// it is stored every minute.
pub const PUBLISH_EVERY: TimeDelta = TimeDelta::minutes(5);
/// A charger unreachable this long mid-session interrupts it (alert); the session goes on
/// when the charger answers again.
const INTERRUPT_AFTER: TimeDelta = TimeDelta::seconds(30);
/// A charger unreachable this long ends its session (`charger_offline`).
const END_AFTER_OFFLINE: TimeDelta = TimeDelta::hours(1);
/// Below this power is no draw, for chargers reporting power only (W).
const DRAW_FLOOR_W: f64 = 100.0;
/// The session energy assumed for an estimate before the site has history (Wh).
const DEFAULT_SESSION_WH: f64 = 15_000.0;
/// The most a session is assumed to take before the site has history (Wh): a large car's
/// whole battery.
const DEFAULT_SESSION_HIGH_WH: f64 = 100_000.0;
/// The share of sessions an end-time range leaves out on each side.
const RANGE_SHARE: f64 = 0.1;
/// How many finished sessions the estimate learns from.
pub const HISTORY: usize = 50;

/// What a session update means for the cloud (the outbox message type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    Started,
    Updated,
    /// Ended, completed or interrupted: the record is final.
    Completed,
}

impl SessionChange {
    /// The `type` of the `P/sessions` message.
    pub fn message_type(self) -> &'static str {
        match self {
            SessionChange::Started => "session.started",
            SessionChange::Updated => "session.updated",
            SessionChange::Completed => "session.completed",
        }
    }
}

/// A session record to store: with the samples that changed since it was last stored, and
/// whether the change is announced (`publish`) or only stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionUpdate {
    pub change: SessionChange,
    pub record: SessionRecord,
    pub new_samples: Vec<Sample>,
    pub publish: bool,
    /// The session was restamped (the clock was stepped, or its time became trusted) or its
    /// energy was taken from power back to a register fault's onset: `new_samples` holds all
    /// its samples, which replace those stored.
    pub restamped: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrackerOutput {
    Session(Box<SessionUpdate>),
    /// A session alert (`charging_complete`, `session_interrupted`) switched on or off, on
    /// a charger, at `at` (the session's time).
    Alert {
        alert: AlertSignal,
        session_id: String,
        at: DateTime<Utc>,
    },
}

/// One charger's sessions and what was last stored of the active one.
#[derive(Debug, Clone)]
struct Slot {
    machine: SessionMachine,
    min_current_a: f64,
    scope: EnergyScope,
    tariff: Option<TariffSnapshot>,
    /// Samples already stored (the last of them may have grown since).
    stored_samples: usize,
    last_published: Option<DateTime<Utc>>,
    offline_since: Option<DateTime<Utc>>,
    interrupted: bool,
    complete_alert: bool,
    /// Picked up after a restart, waiting for the first reading of the charger's state.
    resumed_from: Option<DateTime<Utc>>,
    /// The active session's end-time estimator.
    estimator: EndEstimator,
    /// Site voltage, for power from currents when the charger reports none.
    voltage_v: f64,
    /// The current a vehicle that tapered stopped at, for the tracker to learn.
    stopped_at_a: Option<f64>,
    /// The session's departure plan, as the controller last reported it.
    plan: Option<crate::control::plan::PlanStatus>,
    /// Whether the plan was met, fixed at its departure time.
    plan_met_at_depart: Option<bool>,
    /// How far the clock was stepped since the active session started. The session's machine
    /// goes on in the time it started in, so its durations and energy stay true; its records
    /// are stamped on the corrected clock by adding this.
    shift: TimeDelta,
    /// The active session started while the wall time was untrusted: its times are provisional.
    provisional: bool,
    /// The active session's times were corrected: its next update is announced, with all of
    /// its samples.
    restamp: bool,
    /// A register fault found on the charger and not cleared.
    fault: Option<RegisterFault>,
    /// Whose the active session is, as far as known (see [`adopt_identity`]).
    identity: Identity,
    /// The active session's vehicle, as its history is kept (see [`vehicle_key`]), its ISO
    /// 15118 id, and the current it stopped at after a taper.
    vehicle: Option<String>,
    ev_id: Option<String>,
    taper_stop_a: Option<f64>,
}

/// The tariffs sessions are billed by: the site's, and each group's that has its own.
#[derive(Debug, Clone, Default)]
struct Tariffs {
    site: Option<TariffSnapshot>,
    groups: BTreeMap<String, TariffSnapshot>,
    /// Groups met with no tariff of their own, each logged once.
    warned: BTreeSet<String>,
}

impl Tariffs {
    fn of(cfg: &Config) -> Self {
        Tariffs {
            site: snapshot(cfg),
            groups: cfg.tariff_groups.clone(),
            warned: BTreeSet::new(),
        }
    }

    /// The snapshot of `group`'s own tariff, taken now. None for no group, and for a group
    /// with none of its own (logged once per group): its session keeps the site's snapshot
    /// it took at plug-in.
    fn of_group(&mut self, group: Option<&str>) -> Option<TariffSnapshot> {
        let g = group?;
        if let Some(t) = self.groups.get(g) {
            return Some(t.clone());
        }
        if self.warned.insert(g.to_string()) {
            tracing::warn!(
                group = g,
                "group has no tariff of its own ([tariff.groups]): its sessions are billed at the site's tariff"
            );
        }
        None
    }
}

/// Whether an identity names anyone (a token, user, vehicle or group), rather than only how
/// the charger let the session charge.
fn names_someone(i: &Identity) -> bool {
    i.token.is_some() || i.user.is_some() || i.vehicle.is_some() || i.group.is_some()
}

/// Takes the identity the cycle record gives the charger's session while the session knows
/// nobody yet (a card swiped after plug-in, the cloud's late answer). Once it names someone
/// it does not change within the session, except by [`SessionTracker::assign`]. When the
/// group becomes known, its tariff is snapshotted and the session priced by it from its start.
/// True when the session's identity changed.
fn adopt_identity(slot: &mut Slot, seen: &Identity, tariffs: &mut Tariffs) -> bool {
    if seen.is_empty() || names_someone(&slot.identity) || *seen == slot.identity {
        return false;
    }
    if let Some(t) = tariffs.of_group(seen.group.as_deref()) {
        slot.tariff = Some(t);
    }
    slot.identity = seen.clone();
    true
}

/// While a register fault holds on the slot's charger, its session's energy is taken from
/// integrated power (once there is power to integrate); the corrected record, with all its
/// samples, is announced.
fn correct(
    slot: &mut Slot,
    at: DateTime<Utc>,
    expect: Expectation<'_>,
    out: &mut Vec<TrackerOutput>,
) {
    let Some(reason) = slot.fault else {
        return;
    };
    if slot.machine.integrating() || !slot.machine.register_fault(at, reason) {
        return;
    }
    slot.restamp = true;
    push_update(slot, SessionChange::Updated, true, at, expect, out);
}

/// The session's plan for its record: met when its energy reached the plan's by departure.
fn session_plan(slot: &mut Slot, record: &SessionRecord, at: DateTime<Utc>) -> Option<SessionPlan> {
    let p = slot.plan?;
    let met_now = record.energy_wh >= p.energy_wh;
    let met = match slot.plan_met_at_depart {
        Some(m) => m,
        None if at >= p.depart_at => *slot.plan_met_at_depart.insert(met_now),
        None => met_now,
    };
    Some(SessionPlan {
        energy_wh: p.energy_wh,
        depart_at: p.depart_at,
        met,
    })
}

/// The sessions of every charger of the site.
#[derive(Debug, Clone)]
pub struct SessionTracker {
    slots: Vec<Slot>,
    ids: Vec<String>,
    tariffs: Tariffs,
    /// Energy of recently finished sessions, for end-time estimates.
    history: VecDeque<f64>,
    /// Currents at which recent tapering vehicles stopped (A), for end-time estimates.
    stops: VecDeque<f64>,
    /// What each returning vehicle took before, for its end-time estimates.
    vehicles: VehicleHistories,
    /// Whether a returning vehicle's estimate uses its own history (off: the site's only).
    vehicle_history: bool,
}

impl SessionTracker {
    /// Builds the tracker for `cfg`. A tariff the config cannot express as a snapshot was
    /// already refused by validation; if it still fails, sessions are recorded without cost.
    pub fn new(cfg: &Config) -> Self {
        let slots = cfg
            .chargers
            .iter()
            .map(|c| {
                let meter = meter_config(c, cfg.site.voltage_v);
                Slot {
                    machine: SessionMachine::new(c.id.clone(), MachineConfig::default(), meter),
                    min_current_a: c.min_current_a,
                    scope: meter.scope,
                    tariff: None,
                    stored_samples: 0,
                    last_published: None,
                    offline_since: None,
                    interrupted: false,
                    complete_alert: false,
                    resumed_from: None,
                    estimator: EndEstimator::new(),
                    voltage_v: cfg.site.voltage_v,
                    stopped_at_a: None,
                    plan: None,
                    plan_met_at_depart: None,
                    shift: TimeDelta::zero(),
                    provisional: false,
                    restamp: false,
                    fault: None,
                    identity: Identity::default(),
                    vehicle: None,
                    ev_id: None,
                    taper_stop_a: None,
                }
            })
            .collect();
        SessionTracker {
            slots,
            ids: cfg.chargers.iter().map(|c| c.id.clone()).collect(),
            tariffs: Tariffs::of(cfg),
            history: VecDeque::new(),
            stops: VecDeque::new(),
            vehicles: VehicleHistories::new(),
            vehicle_history: true,
        }
    }

    /// Whether a returning vehicle's end estimate uses its own history (on by default); off,
    /// every session is estimated from the site's history alone, as for a stranger.
    pub fn set_vehicle_history(&mut self, on: bool) {
        self.vehicle_history = on;
    }

    /// Learns the finished sessions of known vehicles (oldest first): `(key, visit)`, the key
    /// as [`vehicle_key`] gives it.
    pub fn learn_vehicles(&mut self, visits: impl IntoIterator<Item = (String, Visit)>) {
        for (key, visit) in visits {
            self.vehicles.learn(&key, visit);
        }
    }

    /// Forgets the vehicles whose key `gone` says; returns how many.
    pub fn forget_vehicles(&mut self, gone: impl Fn(&str) -> bool) -> usize {
        self.vehicles.forget(gone)
    }

    /// A reloaded config: its tariffs apply to sessions that start, or whose group becomes
    /// known, from now on; running sessions keep the snapshot they hold. Charger limits take
    /// effect for new readings.
    pub fn reconfigure(&mut self, cfg: &Config) {
        let warned = std::mem::take(&mut self.tariffs.warned);
        self.tariffs = Tariffs::of(cfg);
        self.tariffs.warned = warned;
        for (slot, c) in self.slots.iter_mut().zip(&cfg.chargers) {
            slot.min_current_a = c.min_current_a;
            slot.voltage_v = cfg.site.voltage_v;
        }
    }

    /// Learns the energy of finished sessions (oldest first) for end-time estimates.
    pub fn learn(&mut self, finished_wh: impl IntoIterator<Item = u64>) {
        for wh in finished_wh {
            self.remember(wh as f64);
        }
    }

    fn remember(&mut self, wh: f64) {
        if wh > 0.0 {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(wh);
        }
    }

    /// Picks up a session stored as active before a restart. Returns false when its charger
    /// is no longer configured (the caller closes it).
    pub fn resume(
        &mut self,
        record: &SessionRecord,
        samples: Vec<Sample>,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(i) = self.ids.iter().position(|id| *id == record.charger) else {
            return false;
        };
        let slot = &mut self.slots[i];
        slot.stored_samples = samples.len();
        slot.machine.resume(record, samples, now);
        slot.tariff = record.tariff.clone();
        slot.identity = record.identity.clone();
        slot.resumed_from = Some(record.updated_at.unwrap_or(record.plugged_in_at));
        slot.last_published = Some(now);
        slot.complete_alert = record.charging_completed_at.is_some();
        slot.ev_id = record.ev_id.clone();
        slot.vehicle = vehicle_key(record.ev_id.as_deref(), &record.identity, None);
        slot.taper_stop_a = record.taper_stop_a;
        true
    }

    /// The wall clock was stepped by `step`: the active sessions are restamped by it (see
    /// [`Slot::shift`]) and their corrected records announced with the next cycle.
    pub fn clock_stepped(&mut self, step: TimeDelta) {
        for slot in self.slots.iter_mut().filter(|s| s.machine.is_active()) {
            slot.shift += step;
            slot.restamp = true;
        }
    }

    /// Feeds one controller cycle's record. Chargers are matched by id.
    pub fn observe(&mut self, view: &CycleRecord) -> Vec<TrackerOutput> {
        let at = view.at;
        let trusted = view.clock.trusted;
        let mut out = Vec::new();
        let history = self.sorted_history();
        let stops = stop_points(&self.stops);
        for cv in &view.chargers {
            let Some(i) = self.ids.iter().position(|id| *id == cv.id) else {
                continue;
            };
            let own = self.own_history(&self.slots[i]);
            let expect = own.apply(expectation(&history, stops));
            let slot = &mut self.slots[i];
            if trusted && slot.provisional {
                // The time is trusted now: the session's times stand as they are corrected.
                slot.provisional = false;
                slot.restamp = true;
            }
            let before = out.len();
            // The machine's own time: the clock as it read when its session started.
            let local = at - slot.shift;
            if !slot.machine.is_active() {
                // For a session that starts now (cleared below if none does).
                slot.provisional = !trusted;
            }
            let ended = observe_slot(slot, cv, local, &mut self.tariffs, expect, &mut out);
            correct(slot, local, expect, &mut out);
            let updated = out[before..]
                .iter()
                .any(|o| matches!(o, TrackerOutput::Session(_)));
            if slot.restamp && slot.machine.is_active() && !updated {
                push_update(slot, SessionChange::Updated, true, local, expect, &mut out);
            }
            for o in &mut out[before..] {
                if let TrackerOutput::Alert { at, .. } = o {
                    *at += slot.shift;
                }
            }
            if !slot.machine.is_active() {
                slot.shift = TimeDelta::zero();
                slot.provisional = false;
                slot.restamp = false;
            }
            if let Some(a) = slot.stopped_at_a.take() {
                if self.stops.len() == HISTORY {
                    self.stops.pop_front();
                }
                self.stops.push_back(a);
            }
            if slot.machine.is_active() {
                slot.ev_id = slot.ev_id.take().or_else(|| cv.ev_id.clone());
                if slot.vehicle.is_none() {
                    slot.vehicle =
                        vehicle_key(cv.ev_id.as_deref(), &cv.auth.identity, cv.id_tag.as_deref());
                }
            }
            if let Some(wh) = ended {
                let visit = Visit {
                    energy_wh: wh,
                    stop_a: slot.taper_stop_a,
                };
                if let Some(key) = slot.vehicle.take() {
                    self.vehicles.learn(&key, visit);
                }
                self.remember(wh);
            }
        }
        out
    }

    /// A register fault (`register_frozen`, `meter_drift`) was found on `charger` at `at` (the
    /// record's time; `on`), or its finding cleared (`!on`). While it holds, the charger's
    /// running session, and one that starts, takes its energy from integrated power from the
    /// last point where its register still agreed with the power, to the session's end: a
    /// session goes back to the register only when it starts with no fault found. The
    /// corrected record is announced at once, with all its samples (they changed back to that
    /// point). Nothing when the charger has no session, it is already on power, or the power
    /// reading is what is off.
    pub fn register_fault(
        &mut self,
        charger: &str,
        reason: RegisterFault,
        on: bool,
        at: DateTime<Utc>,
    ) -> Option<TrackerOutput> {
        let i = self.ids.iter().position(|id| id == charger)?;
        let history = self.sorted_history();
        let stops = stop_points(&self.stops);
        let slot = &mut self.slots[i];
        if !on {
            if slot.fault == Some(reason) {
                slot.fault = None;
            }
            return None;
        }
        slot.fault = Some(reason);
        let expect = expectation(&history, stops);
        let mut out = Vec::new();
        correct(slot, at - slot.shift, expect, &mut out);
        out.pop()
    }

    /// Names the owner of the active session `session_id` after the fact (`assign_session`):
    /// its identity is replaced by `identity`, its group's tariff snapshotted now (the one it
    /// holds stays when the group has none, or none is named) and the session re-priced from
    /// its start. Returns the updated record to store and announce, or None when no charger
    /// has that session active (the caller updates the stored one: see [`assign_ended`]).
    pub fn assign(
        &mut self,
        session_id: &str,
        identity: Identity,
        at: DateTime<Utc>,
    ) -> Option<SessionUpdate> {
        let history = self.sorted_history();
        let expect = expectation(&history, stop_points(&self.stops));
        let slot = self.slots.iter_mut().find(|s| {
            s.machine
                .record()
                .is_some_and(|r| r.session_id == session_id)
        })?;
        if let Some(t) = self.tariffs.of_group(identity.group.as_deref()) {
            slot.tariff = Some(t);
        }
        slot.identity = identity;
        let local = slot
            .machine
            .record()
            .and_then(|r| r.updated_at)
            .unwrap_or(at - slot.shift);
        let mut out = Vec::new();
        push_update(slot, SessionChange::Updated, true, local, expect, &mut out);
        match out.pop() {
            Some(TrackerOutput::Session(u)) => Some(*u),
            _ => None,
        }
    }

    /// The snapshot of `group`'s own tariff, taken now (see `assign_session`); None for no
    /// group or a group with none (logged once per group): the session keeps its own.
    pub fn group_tariff(&mut self, group: Option<&str>) -> Option<TariffSnapshot> {
        self.tariffs.of_group(group)
    }

    /// The records of the sessions active now (for the live view and shutdown).
    pub fn active(&self) -> Vec<SessionRecord> {
        self.slots
            .iter()
            .filter_map(|s| {
                let mut r = s.machine.record()?;
                restamp(&mut r, s.shift, s.provisional);
                r.identity = s.identity.clone();
                Some(r)
            })
            .collect()
    }

    /// The sessions active now as an update at `at` would carry them: with the energy of the
    /// last observation, the running cost and the end estimate. For a live view that refreshes
    /// more often than updates are emitted; nothing is stored or announced.
    pub fn current(&self, at: DateTime<Utc>) -> Vec<SessionRecord> {
        let history = self.sorted_history();
        let expect = expectation(&history, stop_points(&self.stops));
        self.slots
            .iter()
            .filter_map(|slot| {
                let mut record = slot.machine.record()?;
                let local = at - slot.shift;
                let own = self.own_history(slot);
                set_estimate(&mut record, &slot.estimator, local, own.apply(expect));
                tag(slot, &mut record);
                restamp(&mut record, slot.shift, slot.provisional);
                let samples = restamped(slot.machine.samples(), slot.shift);
                record.tariff = slot.tariff.clone();
                record.cost = bill(&record, &samples, slot.tariff.as_ref(), at);
                record.identity = slot.identity.clone();
                record.plan = slot.plan.map(|p| SessionPlan {
                    energy_wh: p.energy_wh,
                    depart_at: p.depart_at,
                    met: slot
                        .plan_met_at_depart
                        .unwrap_or(record.energy_wh >= p.energy_wh),
                });
                Some(record)
            })
            .collect()
    }
}

/// What the site's history says of a session's end, for the estimate.
#[derive(Debug, Clone, Copy)]
struct Expectation<'a> {
    /// The energy of recent finished sessions (Wh), sorted.
    history_wh: &'a [f64],
    /// The current vehicles here stop at after a taper (A; None before one was seen).
    stop_a: Option<f64>,
    /// The highest (infinite while too few were seen) and lowest they stopped at (A).
    stop_high_a: f64,
    stop_low_a: f64,
    /// The energy of this vehicle's own recent sessions (Wh), sorted: empty for a stranger.
    vehicle_wh: &'a [f64],
}

/// What a returning vehicle's own sessions say: their energy (sorted) and the current it
/// usually stopped at after a taper.
#[derive(Debug, Default)]
struct OwnHistory {
    energy_wh: Vec<f64>,
    stop_a: Option<f64>,
}

impl OwnHistory {
    /// The site's expectation, with this vehicle's own history where it has one.
    fn apply<'a>(&'a self, site: Expectation<'a>) -> Expectation<'a> {
        Expectation {
            vehicle_wh: &self.energy_wh,
            stop_a: self.stop_a.or(site.stop_a),
            ..site
        }
    }
}

impl SessionTracker {
    /// The history of the slot's vehicle (empty for a stranger, or with it switched off).
    fn own_history(&self, slot: &Slot) -> OwnHistory {
        match slot.vehicle.as_deref().filter(|_| self.vehicle_history) {
            Some(k) => OwnHistory {
                energy_wh: self.vehicles.energies(k),
                stop_a: stop_points(&self.vehicles.stops(k)).0,
            },
            None => OwnHistory::default(),
        }
    }

    fn sorted_history(&self) -> Vec<f64> {
        let mut history: Vec<f64> = self.history.iter().copied().collect();
        history.sort_by(f64::total_cmp);
        history
    }
}

/// The stop currents seen: the median (None before any), the highest and the lowest likely
/// (the `RANGE_SHARE` quantiles once enough were seen to place them; before that, any current
/// above and the default floor below).
fn stop_points(values: &VecDeque<f64>) -> (Option<f64>, f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().collect();
    v.sort_by(f64::total_cmp);
    let median = v.get(v.len() / 2).copied();
    if (v.len() as f64) < 1.0 / RANGE_SHARE {
        let low = v.first().map_or(DEFAULT_STOP_A, |l| l.min(DEFAULT_STOP_A));
        return (median, f64::INFINITY, low);
    }
    let rank = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    (median, rank(1.0 - RANGE_SHARE), rank(RANGE_SHARE))
}

fn expectation(
    history_wh: &[f64],
    (stop_a, stop_high_a, stop_low_a): (Option<f64>, f64, f64),
) -> Expectation<'_> {
    Expectation {
        history_wh,
        stop_a,
        stop_high_a,
        stop_low_a,
        vehicle_wh: &[],
    }
}

/// The config's tariff, frozen into each session (parsed at validation: nothing can fail
/// here, so no session goes unpriced for a tariff that passed `check-config`).
fn snapshot(cfg: &Config) -> Option<TariffSnapshot> {
    cfg.tariff.clone()
}

/// How to read a charger's energy register.
fn meter_config(c: &Charger, voltage_v: f64) -> MeterConfig {
    let scope = c
        .device
        .model
        .charger
        .map_or(EnergyScope::Lifetime, |s| s.energy_scope);
    let register = c.device.model.readings.energy;
    let (stepped, resolution_wh, modulus_wh) = match register.map(|r| (r.dtype, r.scale.abs())) {
        Some((DataType::U16, step)) => (step > 1.0, step.max(1.0), Some(65_536.0 * step)),
        Some((DataType::U32, step)) => (step > 1.0, step.max(1.0), Some(4_294_967_296.0 * step)),
        Some((DataType::I16 | DataType::I32 | DataType::U64 | DataType::I64, step)) => {
            (step > 1.0, step.max(1.0), None)
        }
        _ => (false, 1.0, None),
    };
    MeterConfig {
        scope,
        max_power_w: c.max_current_a * voltage_v * f64::from(c.phases),
        modulus_wh,
        resolution_wh,
        stepped,
    }
}

/// Power from the phase currents read × the site voltage (None when no current was read).
fn derived_power_w(cv: &ChargerCycle, voltage_v: f64) -> Option<f64> {
    cv.current_a
        .iter()
        .any(Option::is_some)
        .then(|| power_w(&cv.current_or_zero_a(), voltage_v))
}

/// Whether the vehicle takes current now.
fn drawing(cv: &ChargerCycle) -> bool {
    cv.current_or_zero_a().iter().any(|&a| a >= DRAW_FLOOR_A)
        || cv.power_w.is_some_and(|p| p >= DRAW_FLOOR_W)
}

/// One charger's observation; returns the energy of a session that ended normally.
fn observe_slot(
    slot: &mut Slot,
    cv: &ChargerCycle,
    at: DateTime<Utc>,
    tariffs: &mut Tariffs,
    expect: Expectation<'_>,
    out: &mut Vec<TrackerOutput>,
) -> Option<f64> {
    let charger = slot.machine.charger().to_string();
    if cv.plan.is_some() {
        slot.plan = cv.plan;
    }
    if !cv.online {
        let since = *slot.offline_since.get_or_insert(at);
        let id = slot.machine.record().map(|r| r.session_id);
        if let Some(id) = id {
            if !slot.interrupted && at - since >= INTERRUPT_AFTER {
                slot.interrupted = true;
                out.push(alert(
                    AlertKind::SessionInterrupted,
                    &charger,
                    &id,
                    true,
                    "charger unreachable mid-session: energy is counted again when it answers",
                    at,
                ));
            }
            if at - since >= END_AFTER_OFFLINE && slot.resumed_from.is_none() {
                if let Some(ev) = slot.machine.end(since, StopReason::ChargerOffline) {
                    return finish(slot, ev, at, out);
                }
            }
        }
        return None;
    }
    slot.offline_since = None;
    if slot.interrupted {
        slot.interrupted = false;
        if let Some(r) = slot.machine.record() {
            out.push(alert(
                AlertKind::SessionInterrupted,
                &charger,
                &r.session_id,
                false,
                "charger answers again: the session goes on",
                at,
            ));
        }
    }
    let offered = cv
        .setpoint_a
        .is_some_and(|s| s + 1e-6 >= slot.min_current_a && s > 0.0);
    let reading = Reading {
        register_wh: cv.energy_wh,
        power_w: cv.power_w,
        derived_power_w: derived_power_w(cv, slot.voltage_v),
        offered,
    };

    if let (Some(last_seen), Some(state)) = (slot.resumed_from, cv.state) {
        slot.resumed_from = None;
        let id = slot
            .machine
            .record()
            .map(|r| r.session_id)
            .unwrap_or_default();
        if !state.is_connected() {
            // The vehicle left while evsite was down: count what the register shows, end the
            // session when it was last seen.
            // A per-session register may already count for nobody (or a new session).
            let mut fed = reading;
            if slot.scope != EnergyScope::Lifetime {
                fed.register_wh = None;
            }
            let _ = slot.machine.observe(at, None, false, fed, String::new);
            out.push(alert(
                AlertKind::SessionInterrupted,
                &charger,
                &id,
                true,
                "evsite was down when the vehicle left: session closed with the energy its register shows",
                at,
            ));
            let ev = slot
                .machine
                .end(last_seen.min(at), StopReason::ControllerOffline)?;
            return finish(slot, ev, at, out);
        }
        out.push(alert(
            AlertKind::SessionInterrupted,
            &charger,
            &id,
            true,
            "evsite restarted mid-session: the session goes on",
            at,
        ));
    }

    let events = slot
        .machine
        .observe(at, cv.state, drawing(cv), reading, || {
            uuid::Uuid::new_v4().to_string()
        });
    let mut change = None;
    let mut ended = None;
    for ev in events {
        match ev {
            SessionEvent::Started => {
                slot.estimator = EndEstimator::new();
                slot.identity = Identity::default();
                slot.tariff = tariffs.site.clone();
                slot.vehicle = None;
                slot.ev_id = None;
                slot.taper_stop_a = None;
                slot.stored_samples = 0;
                slot.last_published = None;
                slot.complete_alert = false;
                change = Some(SessionChange::Started);
            }
            SessionEvent::ChargingComplete => {
                change.get_or_insert(SessionChange::Updated);
                slot.stopped_at_a = slot.estimator.last_taper_current();
                slot.taper_stop_a = slot.stopped_at_a.or(slot.taper_stop_a);
                if let Some(r) = slot.machine.record() {
                    slot.complete_alert = true;
                    out.push(alert(
                        AlertKind::ChargingComplete,
                        &charger,
                        &r.session_id,
                        true,
                        "charging complete: the vehicle can be moved",
                        at,
                    ));
                }
            }
            SessionEvent::Resumed | SessionEvent::ChargingStarted | SessionEvent::Paused => {
                change.get_or_insert(SessionChange::Updated);
                clear_complete(slot, &charger, at, out);
            }
            ev @ SessionEvent::Ended { .. } => ended = Some(ev),
        }
    }
    if (slot.machine.is_active() || ended.is_some())
        && adopt_identity(slot, &cv.auth.identity, tariffs)
    {
        change.get_or_insert(SessionChange::Updated);
    }
    if let Some(ev) = ended {
        return finish(slot, ev, at, out);
    }
    let record = slot.machine.record()?;
    slot.estimator
        .observe(&observation(slot, cv, at, record.energy_wh as f64));
    let new_minute = slot.machine.samples().len() > slot.stored_samples;
    let due = slot.last_published.is_none_or(|t| at - t >= PUBLISH_EVERY);
    match change {
        Some(c) => emit(slot, c, at, expect, out),
        None if new_minute => {
            let publish = due && record.charging_completed_at.is_none();
            push_update(slot, SessionChange::Updated, publish, at, expect, out);
        }
        None => {}
    }
    None
}

fn clear_complete(slot: &mut Slot, charger: &str, at: DateTime<Utc>, out: &mut Vec<TrackerOutput>) {
    if std::mem::replace(&mut slot.complete_alert, false) {
        let id = slot
            .machine
            .record()
            .map(|r| r.session_id)
            .unwrap_or_default();
        out.push(alert(
            AlertKind::ChargingComplete,
            charger,
            &id,
            false,
            "the vehicle draws again or has left",
            at,
        ));
    }
}

fn emit(
    slot: &mut Slot,
    change: SessionChange,
    at: DateTime<Utc>,
    expect: Expectation<'_>,
    out: &mut Vec<TrackerOutput>,
) {
    push_update(slot, change, true, at, expect, out);
}

fn push_update(
    slot: &mut Slot,
    change: SessionChange,
    publish: bool,
    at: DateTime<Utc>,
    expect: Expectation<'_>,
    out: &mut Vec<TrackerOutput>,
) {
    let Some(mut record) = slot.machine.record() else {
        return;
    };
    set_estimate(&mut record, &slot.estimator, at, expect);
    tag(slot, &mut record);
    // From here on, the corrected clock's time: records, samples, prices and plans.
    restamp(&mut record, slot.shift, slot.provisional);
    let true_at = at + slot.shift;
    let samples = restamped(slot.machine.samples(), slot.shift);
    record.tariff = slot.tariff.clone();
    record.cost = bill(&record, &samples, slot.tariff.as_ref(), true_at);
    record.identity = slot.identity.clone();
    let restamped = std::mem::take(&mut slot.restamp);
    let new_samples = if restamped {
        samples.to_vec()
    } else {
        changed_samples(&samples, slot.stored_samples)
    };
    slot.stored_samples = samples.len();
    record.plan = session_plan(slot, &record, true_at);
    let publish = publish || restamped;
    if publish {
        slot.last_published = Some(at);
    }
    out.push(TrackerOutput::Session(Box::new(SessionUpdate {
        change,
        record,
        new_samples,
        publish,
        restamped,
    })));
}

/// What the slot knows of the session's vehicle, onto its record.
fn tag(slot: &Slot, record: &mut SessionRecord) {
    record.ev_id.clone_from(&slot.ev_id);
    record.taper_stop_a = slot.taper_stop_a;
}

/// The final record of an ended session.
fn finish(
    slot: &mut Slot,
    ev: SessionEvent,
    at: DateTime<Utc>,
    out: &mut Vec<TrackerOutput>,
) -> Option<f64> {
    let SessionEvent::Ended { session, .. } = ev else {
        return None;
    };
    let charger = session.record.charger.clone();
    let mut record = session.record;
    tag(slot, &mut record);
    restamp(&mut record, slot.shift, slot.provisional);
    let samples = restamped(&session.samples, slot.shift).into_owned();
    record.tariff = slot.tariff.take();
    record.identity = std::mem::take(&mut slot.identity);
    let end = record.ended_at.unwrap_or(at + slot.shift);
    record.cost = bill(&record, &samples, record.tariff.as_ref(), end);
    if let Some(done) = record.charging_completed_at {
        record.estimated_end_at = Some(done);
        record.estimated_end_earliest = Some(done);
        record.estimated_end_latest = Some(done);
    }
    record.plan = session_plan(slot, &record, end);
    slot.plan = None;
    slot.plan_met_at_depart = None;
    let restamped = std::mem::take(&mut slot.restamp);
    let new_samples = if restamped {
        samples.clone()
    } else {
        changed_samples(&samples, slot.stored_samples)
    };
    if std::mem::replace(&mut slot.complete_alert, false) {
        out.push(alert(
            AlertKind::ChargingComplete,
            &charger,
            &record.session_id,
            false,
            "the vehicle has left",
            at,
        ));
    }
    slot.stored_samples = 0;
    slot.last_published = None;
    slot.interrupted = false;
    let normal = record.state == RecordState::Completed;
    let wh = record.energy_wh as f64;
    out.push(TrackerOutput::Session(Box::new(SessionUpdate {
        change: SessionChange::Completed,
        record,
        new_samples,
        publish: true,
        restamped,
    })));
    normal.then_some(wh)
}

/// A record of the machine's time on the corrected clock: every time it holds moved by `shift`
/// (the plan, from the control loop, is on the corrected clock already).
fn restamp(record: &mut SessionRecord, shift: TimeDelta, provisional: bool) {
    record.time_provisional = provisional;
    if shift == TimeDelta::zero() {
        return;
    }
    record.plugged_in_at += shift;
    for t in [
        &mut record.charging_started_at,
        &mut record.charging_completed_at,
        &mut record.ended_at,
        &mut record.updated_at,
        &mut record.estimated_end_at,
        &mut record.estimated_end_earliest,
        &mut record.estimated_end_latest,
    ] {
        *t = t.map(|t| t + shift);
    }
    for n in &mut record.energy_notes {
        *n = n.shifted(shift);
    }
}

/// Samples on the corrected clock (borrowed when there is nothing to correct).
fn restamped(samples: &[Sample], shift: TimeDelta) -> std::borrow::Cow<'_, [Sample]> {
    if shift == TimeDelta::zero() {
        return std::borrow::Cow::Borrowed(samples);
    }
    samples
        .iter()
        .map(|s| Sample {
            minute_start: s.minute_start + shift,
            ..*s
        })
        .collect()
}

/// Samples from the last stored one on (it may have grown since).
fn changed_samples(samples: &[Sample], stored: usize) -> Vec<Sample> {
    samples[stored.saturating_sub(1).min(samples.len())..].to_vec()
}

/// Names the owner of an ended session as stored (`assign_session`): `identity` replaces its
/// own, `tariff` (the group's snapshot, when the group has one) replaces the one it was billed
/// by, and its cost is computed again from its start with its stored samples.
pub fn assign_ended(
    record: &mut SessionRecord,
    samples: &[Sample],
    identity: Identity,
    tariff: Option<TariffSnapshot>,
) {
    if tariff.is_some() {
        record.tariff = tariff;
    }
    record.identity = identity;
    let end = record.ended_at.unwrap_or(record.plugged_in_at);
    record.cost = bill(record, samples, record.tariff.as_ref(), end);
}

fn bill(
    record: &SessionRecord,
    samples: &[Sample],
    tariff: Option<&TariffSnapshot>,
    until: DateTime<Utc>,
) -> Option<super::cost::Cost> {
    let tariff = tariff?;
    let pairs: Vec<(DateTime<Utc>, f64)> = samples
        .iter()
        .map(|s| (s.minute_start, s.energy_wh))
        .collect();
    let end = record.ended_at.unwrap_or(until);
    match cost(
        tariff,
        &pairs,
        record.plugged_in_at,
        record.charging_completed_at,
        end,
    ) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(session = %record.session_id, error = %e, "session cost not computable");
            None
        }
    }
}

/// What the estimator is fed of one reading: the highest phase current, the power (from the
/// currents when the charger reports none) and the session's energy so far.
fn observation(slot: &Slot, cv: &ChargerCycle, at: DateTime<Utc>, energy_wh: f64) -> Observation {
    let currents = cv.current_or_zero_a();
    let current_a = currents.iter().copied().fold(0.0, f64::max);
    let power_w = cv
        .power_w
        .unwrap_or_else(|| currents.iter().sum::<f64>() * slot.voltage_v);
    Observation {
        at,
        offered_a: cv.setpoint_a,
        current_a,
        power_w,
        energy_wh,
    }
}

/// When the vehicle will stop drawing, and the range around it: from its taper when it shows
/// one, else the energy a session here typically takes, less what this one has had, at the
/// rate it is given now. Complete: when it completed.
fn estimate_end(
    record: &SessionRecord,
    estimator: &EndEstimator,
    now: DateTime<Utc>,
    expect: Expectation<'_>,
) -> Option<EndRange> {
    if let Some(done) = record.charging_completed_at {
        return Some(EndRange {
            at: done,
            earliest: done,
            latest: done,
        });
    }
    record.charging_started_at?;
    let delivered = estimator.energy_wh();
    // A returning vehicle's own sessions, while this one has not outgrown them all.
    let history = match expect.vehicle_wh.last() {
        Some(&most) if most > delivered => expect.vehicle_wh,
        _ => expect.history_wh,
    };
    let (low_wh, high_wh) = energy_range(history, delivered, RANGE_SHARE, DEFAULT_SESSION_HIGH_WH);
    estimator.estimate_range(
        now,
        &Outlook {
            expected_wh: expected_energy(history, delivered, DEFAULT_SESSION_WH),
            low_wh,
            high_wh,
            stop_a: expect.stop_a,
            stop_high_a: expect.stop_high_a,
            stop_low_a: expect.stop_low_a,
        },
    )
}

/// The record's end estimate and its range, as of `now`.
fn set_estimate(
    record: &mut SessionRecord,
    estimator: &EndEstimator,
    now: DateTime<Utc>,
    expect: Expectation<'_>,
) {
    let range = estimate_end(record, estimator, now, expect);
    record.estimated_end_at = range.map(|r| r.at);
    record.estimated_end_earliest = range.map(|r| r.earliest);
    record.estimated_end_latest = range.map(|r| r.latest);
}

fn alert(
    kind: AlertKind,
    charger: &str,
    session_id: &str,
    raised: bool,
    message: &str,
    at: DateTime<Utc>,
) -> TrackerOutput {
    TrackerOutput::Alert {
        alert: AlertSignal {
            kind,
            raised,
            charger: Some(charger.to_string()),
            message: message.to_string(),
        },
        session_id: session_id.to_string(),
        at,
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "tracker_identity_tests.rs"]
mod identity_tests;
