//! What the control loop emits after every cycle: one typed [`CycleRecord`], numbered in
//! order. Sessions, alerts, recording and sync consume every record in that order (see
//! [`crate::site`]); displays read the view derived from them. Values the loop did not have
//! are `None`, never a zero standing in for one; reasons are enums, not strings.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Why a charger got its setpoint: the allocator's own type, serialised flat.
pub use super::allocate::Reason;
use super::demand::DemandStatus;
use super::plan::PlanStatus;
use super::safety::Mode;
use super::why::Why;
use crate::alerts::AlertSignal;
use crate::clock::ClockView;
use crate::devices::model::ChargeState;
use crate::modbus::StatsSnapshot;
use crate::tokens::AuthStatus;

/// Where a limit in force comes from: the lowest of these wins. The site limit comes from
/// the first five; a charger's caps from the others too (see [`crate::control::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// The installer's config: `grid_limit_a`, a circuit, a charger's maximum.
    Installer,
    /// A cloud `set_site_limit`.
    Command,
    /// A `ChargePointMax` or transaction charging profile.
    Profile,
    /// An installer's `[[schedule]]`.
    Schedule,
    /// The demand window's budget (`[demand]`).
    Demand,
    /// A cloud `set_charger` on one charger: its cap, or its disabling.
    CloudCap,
    /// The session's departure plan, holding the car for a cheaper slot.
    Plan,
    /// The idle watch: a car that took nothing when offered is offered its minimum only.
    Idle,
    /// The fail-safe current, with the main meter silent.
    Failsafe,
    /// Authorisation (`[[charger]] auth`): a charger no one is authorised on is held at 0 A.
    Auth,
}

impl LimitSource {
    /// The serialised name (`installer`, `cloud_cap`, ...).
    pub fn name(self) -> &'static str {
        match self {
            LimitSource::Installer => "installer",
            LimitSource::Command => "command",
            LimitSource::Profile => "profile",
            LimitSource::Schedule => "schedule",
            LimitSource::Demand => "demand",
            LimitSource::CloudCap => "cloud_cap",
            LimitSource::Plan => "plan",
            LimitSource::Idle => "idle",
            LimitSource::Failsafe => "failsafe",
            LimitSource::Auth => "auth",
        }
    }
}

/// The per-phase site limit in force this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SiteLimit {
    pub limit_a: f64,
    pub source: LimitSource,
    /// When the bound ends, where known: a commanded site limit's expiry
    /// ([`LimitSource::Command`]), the end of a departure plan's hold ([`LimitSource::Plan`]).
    pub expires_at: Option<DateTime<Utc>>,
}

/// The main meter as read this cycle (every field `None` when the read failed).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct GridReading {
    /// Per grid phase; `None` for a phase not read or that the site does not have.
    pub current_a: [Option<f64>; 3],
    pub voltage_v: [Option<f64>; 3],
    pub power_w: Option<f64>,
}

/// One charger after the cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChargerCycle {
    pub id: String,
    /// Read this cycle (a charger is counted offline from its first failed read).
    pub online: bool,
    /// Failed reads in a row.
    pub failed_reads: u32,
    pub state: Option<ChargeState>,
    /// Per charger phase, as read: `None` for a phase not read or the charger lacks.
    pub current_a: [Option<f64>; 3],
    pub power_w: Option<f64>,
    pub energy_wh: Option<f64>,
    /// What the charger reports applying, where its model has such a register.
    pub applied_current_a: Option<f64>,
    /// The last setpoint written (None: never written).
    pub setpoint_a: Option<f64>,
    pub reason: Reason,
    /// Enabled by the config and not disabled by a cloud command.
    pub enabled: bool,
    /// The charger's Modbus counters so far (requests, timeouts, exceptions, ...).
    pub link: StatsSnapshot,
    /// The session's departure plan and its progress, if it has one.
    pub plan: Option<PlanStatus>,
    /// Why it has the current it has: the constraint that binds it, and its source.
    pub why: Why,
    /// The user's id (RFID card, OCPP idTag) the charger reports, where its model has one.
    pub id_tag: Option<String>,
    /// The vehicle's id (ISO 15118 EVCCID) the charger reports, where its model has one.
    pub ev_id: Option<String>,
    /// Who may charge on it and whose session it is (see [`crate::tokens`]).
    pub auth: AuthStatus,
}

impl ChargerCycle {
    /// A charger that was not read, with nothing written yet.
    pub fn unread(id: &str) -> Self {
        ChargerCycle {
            id: id.to_string(),
            online: false,
            failed_reads: 0,
            state: None,
            current_a: [None; 3],
            power_w: None,
            energy_wh: None,
            applied_current_a: None,
            setpoint_a: None,
            reason: Reason::Offline,
            enabled: true,
            link: StatsSnapshot::default(),
            plan: None,
            why: Why::default(),
            id_tag: None,
            ev_id: None,
            auth: AuthStatus::default(),
        }
    }

    /// Measured current per charger phase with a phase not read counted as drawing nothing,
    /// as the session tracker and the displays count it.
    pub fn current_or_zero_a(&self) -> [f64; 3] {
        self.current_a.map(|a| a.unwrap_or(0.0).max(0.0))
    }
}

/// Everything the loop knew and did in one cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleRecord {
    /// Cycle number, from 1, one more each cycle: a consumer can tell it saw every one.
    pub seq: u64,
    /// The site's clock at the end of the cycle.
    pub at: DateTime<Utc>,
    pub mode: Mode,
    /// The main meter's reading (None: not read this cycle).
    pub grid: Option<GridReading>,
    /// The main meter's Modbus counters so far.
    pub meter_link: StatsSnapshot,
    /// Per grid phase, the currents the allocator worked from: present only when every phase
    /// the site has was read (phases the site lacks are 0).
    pub grid_a: Option<[f64; 3]>,
    pub limit: SiteLimit,
    /// The demand window so far, when the site has a `[demand]` limit.
    pub demand: Option<DemandStatus>,
    pub chargers: Vec<ChargerCycle>,
    /// Conditions raised or cleared this cycle, in the order they were seen.
    pub alerts: Vec<AlertSignal>,
    /// Wall time the cycle took.
    pub cycle_ms: f64,
    /// The wall clock as this cycle saw it: trusted or not, and a step since the last cycle.
    pub clock: ClockView,
    /// A time for durations only, read with `at`: continuous across clock steps (see
    /// [`crate::clock::Clock::now_and_steady`]). What follows the loop measures holds, rates
    /// and windows on it, and stamps with `at`. None in records built elsewhere (tools,
    /// tests, records read back): durations then go by `at`. Not part of the record's JSON.
    #[serde(skip)]
    pub steady_at: Option<DateTime<Utc>>,
}

impl CycleRecord {
    /// The time holds, rates and windows are measured on (see `steady_at`).
    pub fn steady(&self) -> DateTime<Utc> {
        self.steady_at.unwrap_or(self.at)
    }

    /// A record of a cycle that read nothing, under the installer's `limit_a`: the start
    /// of a record built up by hand (tools, tests).
    pub fn blank(at: DateTime<Utc>, limit_a: f64) -> Self {
        CycleRecord {
            seq: 0,
            at,
            mode: Mode::Startup,
            grid: None,
            meter_link: StatsSnapshot::default(),
            grid_a: None,
            limit: SiteLimit {
                limit_a,
                source: LimitSource::Installer,
                expires_at: None,
            },
            demand: None,
            chargers: Vec::new(),
            alerts: Vec::new(),
            cycle_ms: 0.0,
            clock: ClockView::default(),
            steady_at: None,
        }
    }

    pub fn charger(&self, id: &str) -> Option<&ChargerCycle> {
        self.chargers.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_serialises_flat_by_the_names_the_record_always_had() {
        let names: Vec<String> = [
            Reason::Charging,
            Reason::Offline,
            Reason::NoCar,
            Reason::Disabled,
            Reason::Fault,
            Reason::Limited,
            Reason::BadPhaseMap,
            Reason::NoCapacity,
            Reason::WaitingTurn,
        ]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .collect();
        assert_eq!(
            names,
            [
                "\"charging\"",
                "\"offline\"",
                "\"no_car\"",
                "\"disabled\"",
                "\"fault\"",
                "\"limited\"",
                "\"bad_phase_map\"",
                "\"no_capacity\"",
                "\"waiting_turn\"",
            ]
        );
        assert!(Reason::NoCapacity.is_capacity() && Reason::WaitingTurn.is_capacity());
        assert!(Reason::NoCar.is_paused() && !Reason::Charging.is_paused());
    }

    #[test]
    fn every_limit_source_serialises_by_its_name() {
        for s in [
            LimitSource::Installer,
            LimitSource::Command,
            LimitSource::Profile,
            LimitSource::Schedule,
            LimitSource::Demand,
            LimitSource::CloudCap,
            LimitSource::Plan,
            LimitSource::Idle,
            LimitSource::Failsafe,
            LimitSource::Auth,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap_or_default(),
                format!("\"{}\"", s.name())
            );
        }
        assert_eq!(LimitSource::Installer.name(), "installer");
        assert_eq!(LimitSource::CloudCap.name(), "cloud_cap");
    }
}
