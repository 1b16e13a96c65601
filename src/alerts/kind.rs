//! Alert kinds, their severities and the alert record as stored and published (`data` of the
//! `P/alerts` messages).
//!
//! | kind | severity | why |
//! |---|---|---|
//! | `meter_offline` | critical | fail-safe currents: the site runs blind |
//! | `overload` | critical | a limit was exceeded beyond the response window: the breaker is at risk |
//! | `charger_offline` | warning | one charger is not managed (its own fallback current applies) |
//! | `charger_fault` | warning | IEC 61851 state E/F: one charger cannot charge |
//! | `session_interrupted` | warning | a session ended by power loss, restart or a lost link |
//! | `store_recovered` | warning | the database was unreadable and moved aside |
//! | `charging_complete` | info | still plugged in, no longer drawing: the car can be moved |
//! | `setpoint_ignored` | critical | a charger takes more than allowed: the load plan does not hold |
//! | `unexpected_draw` | critical | a charger draws while disabled, paused or with no car |
//! | `overpower` | critical | more power than the charger's maximum allows: wiring or meter fault |
//! | `phase_map_mismatch` | warning | current on other grid phases than configured: phase loads are wrong |
//! | `meter_drift` | warning | the energy register disagrees with the power: billing is off |
//! | `register_frozen` | warning | the energy register stands still while power flows |
//! | `register_jump` | warning | the register jumped or fell back mid-session (one per occurrence) |
//! | `stuck_session` | warning | a car in state C is offered current and draws nothing |
//! | `bay_blocked` | info | a car has been plugged in and idle for hours |
//! | `meter_disagreement` | warning | the site meter does not see what the chargers report: its readings, and the load plan, are off |
//! | `session_outlier` | info | a session far longer or larger than the charger's history (one per session) |
//! | `unauthorized_draw` | warning | energy flows on a charger in `local` or `cloud` mode with nobody authorised |
//! | `unknown_token` | info | a token not on the list (or disabled) presented again and again |
//! | `token_in_use_twice` | warning | one token on two chargers at once: a copied card, or one card for two cars |
//! | `demand_exceeded` | warning | the building alone takes a demand window over the target: every charger is paused and the peak is billed anyway |
//! | `clock_stepped` | info | the system clock was stepped (one per step): stamps follow the corrected clock, running sessions are restamped |
//! | `clock_unsynced` | warning | the wall time has not been trusted for minutes: schedules at their lowest, demand windows not billed, session times provisional |
//! | `cloud_link_down` | warning | the MQTT link cannot start (a file it needs is missing, unreadable or wrong): the site runs, sessions wait in the outbox |
//!
//! The anomaly kinds (from `setpoint_ignored` on) are raised by [`crate::anomaly`]; their
//! rules are in `docs/anomalies.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Main meter unreadable: fail-safe active.
    MeterOffline,
    ChargerOffline,
    /// IEC 61851 state E/F.
    ChargerFault,
    /// A limit exceeded beyond the vehicles' response window.
    Overload,
    /// Still plugged in, no longer drawing.
    ChargingComplete,
    /// A session ended by power loss, a restart or a lost link.
    SessionInterrupted,
    /// The database could not be opened and was moved aside.
    StoreRecovered,
    /// A charger draws more than its setpoint allows.
    SetpointIgnored,
    /// A charger draws while disabled, paused or with no car.
    UnexpectedDraw,
    /// Power above what the charger's maximum current allows.
    Overpower,
    /// A charger's current shows on other grid phases than its `phase_map`.
    PhaseMapMismatch,
    /// The energy register disagrees with the integrated power.
    MeterDrift,
    /// The energy register stands still while power flows.
    RegisterFrozen,
    /// The energy register jumped or fell back mid-session.
    RegisterJump,
    /// State C, offered current, nothing drawn.
    StuckSession,
    /// Plugged in and idle for hours.
    BayBlocked,
    /// The site meter disagrees with the chargers' summed power.
    MeterDisagreement,
    /// A session far outside its charger's history.
    SessionOutlier,
    /// The building alone will take a demand window over `[demand] limit_kw`.
    DemandExceeded,
    /// The system clock was stepped.
    ClockStepped,
    /// The wall time has not been trusted for a while.
    ClockUnsynced,
    /// The cloud link cannot start: a file it needs is missing, unreadable or wrong.
    CloudLinkDown,
    /// Energy drawn on a charger in `local` or `cloud` mode with nobody authorised.
    UnauthorizedDraw,
    /// A token that may not charge, presented repeatedly.
    UnknownToken,
    /// One token on two connected chargers at once.
    TokenInUseTwice,
}

impl AlertKind {
    pub const ALL: [AlertKind; 25] = [
        AlertKind::MeterOffline,
        AlertKind::ChargerOffline,
        AlertKind::ChargerFault,
        AlertKind::Overload,
        AlertKind::ChargingComplete,
        AlertKind::SessionInterrupted,
        AlertKind::StoreRecovered,
        AlertKind::SetpointIgnored,
        AlertKind::UnexpectedDraw,
        AlertKind::Overpower,
        AlertKind::PhaseMapMismatch,
        AlertKind::MeterDrift,
        AlertKind::RegisterFrozen,
        AlertKind::RegisterJump,
        AlertKind::StuckSession,
        AlertKind::BayBlocked,
        AlertKind::MeterDisagreement,
        AlertKind::SessionOutlier,
        AlertKind::DemandExceeded,
        AlertKind::ClockStepped,
        AlertKind::ClockUnsynced,
        AlertKind::CloudLinkDown,
        AlertKind::UnauthorizedDraw,
        AlertKind::UnknownToken,
        AlertKind::TokenInUseTwice,
    ];

    /// The kinds [`crate::anomaly`] raises.
    pub const ANOMALIES: [AlertKind; 14] = [
        AlertKind::SetpointIgnored,
        AlertKind::UnexpectedDraw,
        AlertKind::Overpower,
        AlertKind::PhaseMapMismatch,
        AlertKind::MeterDrift,
        AlertKind::RegisterFrozen,
        AlertKind::RegisterJump,
        AlertKind::StuckSession,
        AlertKind::BayBlocked,
        AlertKind::MeterDisagreement,
        AlertKind::SessionOutlier,
        AlertKind::UnauthorizedDraw,
        AlertKind::UnknownToken,
        AlertKind::TokenInUseTwice,
    ];

    pub fn is_anomaly(self) -> bool {
        Self::ANOMALIES.contains(&self)
    }

    /// The snake_case name, as stored and published.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::MeterOffline => "meter_offline",
            AlertKind::ChargerOffline => "charger_offline",
            AlertKind::ChargerFault => "charger_fault",
            AlertKind::Overload => "overload",
            AlertKind::ChargingComplete => "charging_complete",
            AlertKind::SessionInterrupted => "session_interrupted",
            AlertKind::StoreRecovered => "store_recovered",
            AlertKind::SetpointIgnored => "setpoint_ignored",
            AlertKind::UnexpectedDraw => "unexpected_draw",
            AlertKind::Overpower => "overpower",
            AlertKind::PhaseMapMismatch => "phase_map_mismatch",
            AlertKind::MeterDrift => "meter_drift",
            AlertKind::RegisterFrozen => "register_frozen",
            AlertKind::RegisterJump => "register_jump",
            AlertKind::StuckSession => "stuck_session",
            AlertKind::BayBlocked => "bay_blocked",
            AlertKind::MeterDisagreement => "meter_disagreement",
            AlertKind::SessionOutlier => "session_outlier",
            AlertKind::DemandExceeded => "demand_exceeded",
            AlertKind::ClockStepped => "clock_stepped",
            AlertKind::ClockUnsynced => "clock_unsynced",
            AlertKind::CloudLinkDown => "cloud_link_down",
            AlertKind::UnauthorizedDraw => "unauthorized_draw",
            AlertKind::UnknownToken => "unknown_token",
            AlertKind::TokenInUseTwice => "token_in_use_twice",
        }
    }

    /// See the table atop this file.
    pub fn severity(self) -> Severity {
        match self {
            AlertKind::MeterOffline
            | AlertKind::Overload
            | AlertKind::SetpointIgnored
            | AlertKind::UnexpectedDraw
            | AlertKind::Overpower => Severity::Critical,
            AlertKind::ChargerOffline
            | AlertKind::ChargerFault
            | AlertKind::SessionInterrupted
            | AlertKind::StoreRecovered
            | AlertKind::PhaseMapMismatch
            | AlertKind::MeterDrift
            | AlertKind::RegisterFrozen
            | AlertKind::RegisterJump
            | AlertKind::StuckSession
            | AlertKind::MeterDisagreement
            | AlertKind::DemandExceeded
            | AlertKind::ClockUnsynced
            | AlertKind::CloudLinkDown
            | AlertKind::UnauthorizedDraw
            | AlertKind::TokenInUseTwice => Severity::Warning,
            AlertKind::ChargingComplete
            | AlertKind::BayBlocked
            | AlertKind::SessionOutlier
            | AlertKind::ClockStepped
            | AlertKind::UnknownToken => Severity::Info,
        }
    }

    /// Kinds cleared as soon as the condition is gone, without the hold-off: a link that has
    /// started is not a flapping device.
    pub fn clears_at_once(self) -> bool {
        matches!(self, AlertKind::CloudLinkDown)
    }

    /// Kinds that report an occurrence, not an ongoing condition: nothing ever "clears"
    /// them by itself, so they stay raised until cleared explicitly.
    pub fn is_one_shot(self) -> bool {
        matches!(
            self,
            AlertKind::SessionInterrupted
                | AlertKind::StoreRecovered
                | AlertKind::RegisterJump
                | AlertKind::SessionOutlier
                | AlertKind::ClockStepped
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Raised,
    Cleared,
}

/// An alert as stored and published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// A UUID v4, the same from raise to clear.
    pub alert_id: String,
    pub kind: AlertKind,
    pub severity: Severity,
    /// The charger concerned, when one is.
    #[serde(default)]
    pub charger: Option<String>,
    pub state: AlertState,
    /// What was wrong when it was raised.
    pub message: String,
    pub raised_at: DateTime<Utc>,
    /// When the condition went away (the start of the hold-off it then outlasted).
    #[serde(default)]
    pub cleared_at: Option<DateTime<Utc>>,
}

impl Alert {
    /// The outbox message type: `alert.raised` or `alert.cleared`.
    pub fn event_type(&self) -> &'static str {
        match self.state {
            AlertState::Raised => "alert.raised",
            AlertState::Cleared => "alert.cleared",
        }
    }

    /// The time of this state: `raised_at` while raised, `cleared_at` once cleared (the
    /// outbox message's `ts`).
    pub fn event_ts(&self) -> DateTime<Utc> {
        match self.state {
            AlertState::Raised => self.raised_at,
            AlertState::Cleared => self.cleared_at.unwrap_or(self.raised_at),
        }
    }
}
