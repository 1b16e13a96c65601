//! Why a charger has the current it has: the one constraint that binds it this cycle, and
//! where that constraint comes from ("limited by circuit hall-a on L2 (100 A, installer)").
//! Every cycle record carries one per charger; the API, the live page, `evsite status`, the
//! demo and the telemetry show it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::allocate::{PauseReason, Reason};
use super::record::LimitSource;

/// What binds a charger this cycle, as a stable code (the compact form in telemetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhyCode {
    /// Not known yet (no cycle has decided it).
    #[default]
    Unknown,
    /// Charging, with nothing named as binding it.
    Charging,
    /// Offered its own maximum.
    Max,
    /// Held by the site's per-phase limit.
    Site,
    /// Held by a circuit's per-phase limit.
    Circuit,
    /// Held by the demand window's budget.
    Demand,
    /// Capped below its maximum (a cloud cap, a profile, a schedule, an idle car).
    Cap,
    /// Held at 0 A by its departure plan until a cheaper slot.
    PlanHold,
    /// Paused: its minimum does not fit in what is free.
    NoCapacity,
    /// Paused: its minimum would fit, but others of its priority hold the slots for now.
    WaitingTurn,
    /// Paused: its caps leave less than its minimum.
    Limited,
    NoCar,
    Disabled,
    Fault,
    BadPhaseMap,
    Offline,
    /// The main meter is silent: every charger at the fail-safe current.
    Failsafe,
    /// The main meter missed a read: setpoints held, only ever lowered.
    Holding,
    /// No measurement yet since start.
    Startup,
}

/// Why a charger has its current this cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Why {
    pub code: WhyCode,
    /// Where the binding limit comes from, when a limit binds.
    pub source: Option<LimitSource>,
    /// The binding constraint's name: a circuit id, a profile id (None: not named).
    pub constraint: Option<String>,
    /// The grid phase where it binds, 1-based (None: not phase-specific).
    pub phase: Option<u8>,
    /// The binding limit's value, in A per phase (None: no limit binds).
    pub limit_a: Option<f64>,
    /// When the binding limit or hold ends, when known.
    pub until: Option<DateTime<Utc>>,
    /// The same in words, for a person.
    pub text: String,
}

impl Why {
    /// The plain explanation of the allocator's reason, with no constraint named.
    pub fn from_reason(reason: Reason) -> Self {
        let (code, text) = match reason {
            Reason::Charging => (WhyCode::Charging, "charging"),
            Reason::Offline => (WhyCode::Offline, "offline: counted at its last setpoint"),
            Reason::Paused(p) => match p {
                PauseReason::NoCar => (WhyCode::NoCar, "paused: no car"),
                PauseReason::Disabled => (WhyCode::Disabled, "paused: disabled"),
                PauseReason::Fault => (WhyCode::Fault, "paused: the charger reports an error"),
                PauseReason::Limited => (
                    WhyCode::Limited,
                    "paused: its caps leave less than its minimum",
                ),
                PauseReason::BadPhaseMap => (
                    WhyCode::BadPhaseMap,
                    "paused: its phase map does not fit the site",
                ),
                PauseReason::NoCapacity => (
                    WhyCode::NoCapacity,
                    "paused: its minimum does not fit in what is free",
                ),
                PauseReason::WaitingTurn => (WhyCode::WaitingTurn, "paused: waiting for its turn"),
            },
        };
        Why {
            code,
            text: text.to_string(),
            ..Why::default()
        }
    }
}
