//! What the control loop tells the rest of evsite: a live view of the site after every cycle
//! (for `evsite demo`, telemetry and status) and events such as alerts (for the store and sync).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::safety::Mode;
use crate::devices::model::ChargeState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Main meter unreadable: fail-safe active.
    MeterOffline,
    ChargerOffline,
    /// IEC 61851 state E/F.
    ChargerFault,
    /// A limit exceeded beyond the vehicles' response window.
    Overload,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ControlEvent {
    Alert {
        kind: AlertKind,
        raised: bool,
        charger: Option<String>,
        message: String,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChargerView {
    pub id: String,
    pub online: bool,
    pub state: Option<ChargeState>,
    /// Per charger phase.
    pub current_a: [f64; 3],
    pub power_w: Option<f64>,
    pub energy_wh: Option<f64>,
    pub setpoint_a: Option<f64>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SiteView {
    pub at: Option<DateTime<Utc>>,
    pub mode: Option<Mode>,
    pub grid_a: Option<[f64; 3]>,
    pub limit_a: f64,
    pub chargers: Vec<ChargerView>,
    pub cycle_ms: f64,
}
