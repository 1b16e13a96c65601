//! The session state machine of one charger, driven by its IEC 61851 state.
//!
//! Plug-in (A→B) starts a session, unplug (→A) ends it; in between the vehicle charges,
//! pauses and resumes, and is declared complete once it stops drawing while current is offered
//! for a hold-off, so a vehicle flapping between B and C does not flap the record. An unknown
//! state (a failed read) changes nothing. Pure: time comes in with each observation.

use chrono::{DateTime, TimeDelta, Utc};

use super::cost::Cost;
use super::energy::{
    EnergyMeter, EnergySource, MeterConfig, MeterNote, RegisterFault, Resume, Sample,
};
use super::tariff::TariffSnapshot;
use crate::devices::model::{ChargeState, EnergyScope};

/// What was read from the charger this cycle besides its state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The energy register, in Wh.
    pub register_wh: Option<f64>,
    /// Active power, in W.
    pub power_w: Option<f64>,
    /// The phase currents × voltage, in W (None: no current read): power where the charger
    /// reports none, and the arbiter between register and power.
    pub derived_power_w: Option<f64>,
    /// Whether the charger offers the vehicle current (setpoint at or above its minimum).
    /// A vehicle that does not draw while load management withholds current is paused, not
    /// complete.
    pub offered: bool,
}

impl Reading {
    pub fn new(register_wh: Option<f64>, power_w: Option<f64>) -> Self {
        Reading {
            register_wh,
            power_w,
            derived_power_w: None,
            offered: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineConfig {
    /// How long a vehicle must stop drawing, with current offered, to be complete.
    pub complete_holdoff: TimeDelta,
    /// How long a fault (E/F) must last to end the session.
    pub fault_holdoff: TimeDelta,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            complete_holdoff: TimeDelta::seconds(60),
            fault_holdoff: TimeDelta::seconds(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    Active,
    Completed,
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Unplugged,
    /// evsite was not running when the session ended (found over on restart).
    ControllerOffline,
    /// The charger could not be read for too long.
    ChargerOffline,
    /// The charger reported E or F for longer than the hold-off.
    ChargerFault,
}

impl StopReason {
    /// Only an unplug ends a session as the driver meant it.
    fn record_state(self) -> RecordState {
        match self {
            StopReason::Unplugged => RecordState::Completed,
            _ => RecordState::Interrupted,
        }
    }
}

/// A session as recorded and published (`data` of the `P/sessions` messages).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub session_id: String,
    pub charger: String,
    pub state: RecordState,
    pub plugged_in_at: DateTime<Utc>,
    pub charging_started_at: Option<DateTime<Utc>>,
    /// When the vehicle stopped drawing for good (start of the idle time); cleared if it
    /// draws again.
    pub charging_completed_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub energy_wh: u64,
    pub meter_start_wh: Option<u64>,
    pub meter_end_wh: Option<u64>,
    pub max_power_w: Option<u64>,
    pub stop_reason: Option<StopReason>,
    pub energy_source: EnergySource,
    /// What the energy register did that bears on `energy_wh`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub energy_notes: Vec<MeterNote>,
    /// The last observation the record reflects (picks the session up after a restart).
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// When the vehicle is expected to stop drawing (None: no estimate yet).
    #[serde(default)]
    pub estimated_end_at: Option<DateTime<Utc>>,
    /// The earliest and latest the vehicle is expected to stop drawing, around
    /// `estimated_end_at`: what the site's history and the vehicle's taper leave open. Absent
    /// without an estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_end_earliest: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_end_latest: Option<DateTime<Utc>>,
    /// The bill so far (final once the session has ended); None without a tariff.
    #[serde(default)]
    pub cost: Option<Cost>,
    /// The tariff the session is billed by: the site's in force when it started, or its
    /// group's as it was when the group became known. Later tariff changes do not touch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff: Option<TariffSnapshot>,
    /// The departure plan the session carried, and whether it was met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<SessionPlan>,
    /// The session started while the wall time was not trusted: its times may be wrong, and
    /// a corrected record follows once the time is trusted (or the clock is stepped).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub time_provisional: bool,
    /// Whose session it is: `token`, `user`, `vehicle`, `group`, `authorized_by`, each
    /// optional, flat in the record.
    #[serde(flatten)]
    pub identity: crate::tokens::Identity,
    /// The vehicle's ISO 15118 id (EVCCID), where the charger reports one: personal data like
    /// the token, published, forgotten and expired with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ev_id: Option<String>,
    /// The current the vehicle stopped at after tapering (A): where it ends its charge, which
    /// the end estimate of its next session learns from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taper_stop_a: Option<f64>,
}

impl SessionRecord {
    /// A session just plugged in on `charger`: active, nothing measured or priced yet, its
    /// energy to come from the charger's register.
    pub fn new(session_id: String, charger: String, plugged_in_at: DateTime<Utc>) -> Self {
        SessionRecord {
            session_id,
            charger,
            state: RecordState::Active,
            plugged_in_at,
            charging_started_at: None,
            charging_completed_at: None,
            ended_at: None,
            energy_wh: 0,
            meter_start_wh: None,
            meter_end_wh: None,
            max_power_w: None,
            stop_reason: None,
            energy_source: EnergySource::Register,
            energy_notes: Vec::new(),
            updated_at: None,
            estimated_end_at: None,
            estimated_end_earliest: None,
            estimated_end_latest: None,
            plan: None,
            cost: None,
            tariff: None,
            time_provisional: false,
            identity: crate::tokens::Identity::default(),
            ev_id: None,
            taper_stop_a: None,
        }
    }
}

/// A session's departure plan as recorded and published (`plan` of `P/sessions` data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionPlan {
    pub energy_wh: u64,
    pub depart_at: DateTime<Utc>,
    /// The session's energy reached `energy_wh` by `depart_at` (so far, while before it).
    pub met: bool,
}

/// A finished session: its final record and the per-minute energy for cost and history.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedSession {
    pub record: SessionRecord,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    Started,
    ChargingStarted,
    Paused,
    Resumed,
    ChargingComplete,
    Ended {
        reason: StopReason,
        session: Box<ClosedSession>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connected, never charged yet.
    Plugged,
    Charging,
    /// Charged before, not drawing now; `idle_since` is when it stopped drawing while
    /// current was offered (None while load management withholds current).
    Paused {
        idle_since: Option<DateTime<Utc>>,
    },
    Complete,
}

#[derive(Debug, Clone, PartialEq)]
struct Active {
    id: String,
    plugged_in_at: DateTime<Utc>,
    charging_started_at: Option<DateTime<Utc>>,
    charging_completed_at: Option<DateTime<Utc>>,
    phase: Phase,
    fault_since: Option<DateTime<Utc>>,
    meter: EnergyMeter,
}

/// One charger's sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMachine {
    charger: String,
    cfg: MachineConfig,
    meter: MeterConfig,
    active: Option<Active>,
}

impl SessionMachine {
    pub fn new(charger: impl Into<String>, cfg: MachineConfig, meter: MeterConfig) -> Self {
        SessionMachine {
            charger: charger.into(),
            cfg,
            meter,
            active: None,
        }
    }

    /// Feeds one observation of the charger. `drawing`: the vehicle takes current (the
    /// caller's threshold on power or phase currents). `new_id` is called only when a
    /// session starts, for its id.
    pub fn observe(
        &mut self,
        at: DateTime<Utc>,
        state: Option<ChargeState>,
        drawing: bool,
        reading: Reading,
        new_id: impl FnOnce() -> String,
    ) -> Vec<SessionEvent> {
        let mut events = Vec::new();
        let Some(state) = state else {
            // The state is unknown, the energy readings may still be good.
            if let Some(a) = &mut self.active {
                a.meter.observe_with(
                    at,
                    reading.register_wh,
                    reading.power_w,
                    reading.derived_power_w,
                );
            }
            return events;
        };

        let Some(a) = &mut self.active else {
            // A fault without a session says nothing about a vehicle.
            if state.is_connected() && !state.is_fault() {
                let mut meter = EnergyMeter::new(self.meter);
                meter.observe_with(
                    at,
                    reading.register_wh,
                    reading.power_w,
                    reading.derived_power_w,
                );
                self.active = Some(Active {
                    id: new_id(),
                    plugged_in_at: at,
                    charging_started_at: None,
                    charging_completed_at: None,
                    phase: Phase::Plugged,
                    fault_since: None,
                    meter,
                });
                events.push(SessionEvent::Started);
                if let Some(a) = &mut self.active {
                    step(
                        a,
                        &self.cfg,
                        at,
                        state.is_charging() && drawing,
                        reading.offered,
                    )
                    .into_iter()
                    .for_each(|e| events.push(e));
                }
            }
            return events;
        };

        if !state.is_connected() {
            // A session register may restart at unplug; its last connected reading is the end.
            let register = match self.meter.scope {
                EnergyScope::Lifetime => reading.register_wh,
                EnergyScope::Session => None,
            };
            a.meter
                .observe_with(at, register, reading.power_w, reading.derived_power_w);
            events.extend(self.end(at, StopReason::Unplugged));
            return events;
        }

        a.meter.observe_with(
            at,
            reading.register_wh,
            reading.power_w,
            reading.derived_power_w,
        );
        if state.is_fault() {
            let since = *a.fault_since.get_or_insert(at);
            if at - since >= self.cfg.fault_holdoff {
                events.extend(self.end(at, StopReason::ChargerFault));
                return events;
            }
        } else {
            a.fault_since = None;
        }
        events.extend(step(
            a,
            &self.cfg,
            at,
            state.is_charging() && drawing,
            reading.offered,
        ));
        events
    }

    /// Ends the active session for a reason the caller found (the charger unreachable, a
    /// session found over at start-up). Nothing when no session is active.
    pub fn end(&mut self, at: DateTime<Utc>, reason: StopReason) -> Option<SessionEvent> {
        let mut a = self.active.take()?;
        a.meter.finish(at);
        let mut record = record_of(&self.charger, &a);
        record.state = reason.record_state();
        record.ended_at = Some(at);
        record.stop_reason = Some(reason);
        Some(SessionEvent::Ended {
            reason,
            session: Box::new(ClosedSession {
                record,
                samples: a.meter.samples().to_vec(),
            }),
        })
    }

    /// Picks up a session stored before a restart: it continues with the same id and the
    /// energy counted so far. The next observation decides whether the vehicle is still
    /// there (the caller ends it with [`StopReason::ControllerOffline`] if not).
    pub fn resume(&mut self, record: &SessionRecord, samples: Vec<Sample>, now: DateTime<Utc>) {
        let last_at = record
            .updated_at
            .or(record.charging_completed_at)
            .or(record.charging_started_at)
            .unwrap_or(record.plugged_in_at);
        let meter = EnergyMeter::resume(
            self.meter,
            Resume {
                samples,
                start_wh: record.meter_start_wh.map(|v| v as f64),
                last_wh: record.meter_end_wh.map(|v| v as f64),
                last_at,
                max_power_w: record.max_power_w.map(|v| v as f64),
                notes: record.energy_notes.clone(),
                energy_wh: record.energy_wh as f64,
            },
            now,
        );
        let phase = match (record.charging_completed_at, record.charging_started_at) {
            (Some(_), _) => Phase::Complete,
            (None, Some(_)) => Phase::Charging,
            (None, None) => Phase::Plugged,
        };
        self.active = Some(Active {
            id: record.session_id.clone(),
            plugged_in_at: record.plugged_in_at,
            charging_started_at: record.charging_started_at,
            charging_completed_at: record.charging_completed_at,
            phase,
            fault_since: None,
            meter,
        });
    }

    /// A register fault was found on the charger at `at`: the active session's energy comes
    /// from integrated power from the last point the register still agreed with it (see
    /// [`EnergyMeter::register_fault`]). True when that changed the session.
    pub fn register_fault(&mut self, at: DateTime<Utc>, reason: RegisterFault) -> bool {
        self.active
            .as_mut()
            .is_some_and(|a| a.meter.register_fault(at, reason))
    }

    /// Whether the active session's energy comes from integrated power (a register fault).
    pub fn integrating(&self) -> bool {
        self.active.as_ref().is_some_and(|a| a.meter.integrating())
    }

    /// Whether a session is active.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// The active session's record as of now.
    pub fn record(&self) -> Option<SessionRecord> {
        self.active.as_ref().map(|a| record_of(&self.charger, a))
    }

    /// The active session's per-minute energy so far.
    pub fn samples(&self) -> &[Sample] {
        self.active.as_ref().map_or(&[], |a| a.meter.samples())
    }

    pub fn charger(&self) -> &str {
        &self.charger
    }
}

/// Moves the charging phase of an active session on one observation.
fn step(
    a: &mut Active,
    cfg: &MachineConfig,
    at: DateTime<Utc>,
    charging: bool,
    offered: bool,
) -> Option<SessionEvent> {
    let (phase, event) = match (a.phase, charging) {
        (Phase::Plugged, true) => {
            a.charging_started_at = Some(at);
            (Phase::Charging, Some(SessionEvent::ChargingStarted))
        }
        (Phase::Paused { .. } | Phase::Complete, true) => {
            a.charging_completed_at = None;
            (Phase::Charging, Some(SessionEvent::Resumed))
        }
        (Phase::Charging, false) => {
            let idle_since = offered.then_some(at);
            (Phase::Paused { idle_since }, Some(SessionEvent::Paused))
        }
        (Phase::Paused { idle_since }, false) => match (offered, idle_since) {
            (false, _) => (Phase::Paused { idle_since: None }, None),
            (true, None) => (
                Phase::Paused {
                    idle_since: Some(at),
                },
                None,
            ),
            (true, Some(since)) if at - since >= cfg.complete_holdoff => {
                a.charging_completed_at = Some(since);
                (Phase::Complete, Some(SessionEvent::ChargingComplete))
            }
            (true, Some(_)) => (a.phase, None),
        },
        (phase @ (Phase::Plugged | Phase::Charging | Phase::Complete), _) => (phase, None),
    };
    a.phase = phase;
    event
}

fn record_of(charger: &str, a: &Active) -> SessionRecord {
    let wh = |v: f64| v.max(0.0).round() as u64;
    SessionRecord {
        session_id: a.id.clone(),
        charger: charger.to_string(),
        state: RecordState::Active,
        plugged_in_at: a.plugged_in_at,
        charging_started_at: a.charging_started_at,
        charging_completed_at: a.charging_completed_at,
        ended_at: None,
        energy_wh: wh(a.meter.energy_wh()),
        meter_start_wh: a.meter.meter_start_wh().map(wh),
        meter_end_wh: a.meter.meter_end_wh().map(wh),
        max_power_w: a.meter.max_power_w().map(wh),
        stop_reason: None,
        energy_source: a.meter.source(),
        energy_notes: a.meter.notes().to_vec(),
        updated_at: a.meter.last_at(),
        estimated_end_at: None,
        estimated_end_earliest: None,
        estimated_end_latest: None,
        plan: None,
        cost: None,
        tariff: None,
        time_provisional: false,
        identity: crate::tokens::Identity::default(),
        ev_id: None,
        taper_stop_a: None,
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
