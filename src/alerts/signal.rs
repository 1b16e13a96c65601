//! A change of an alert condition, as its source saw it: the control loop (carried in the
//! cycle record's `alerts`), the session tracker and the anomaly rules all hand these to the
//! site's one [`AlertBook`](super::AlertBook).

use serde::{Deserialize, Serialize};

use super::kind::AlertKind;

/// A condition switched on (`raised`) or off.
///
/// As serialised in the cycle record (`cycle.alerts` of `schemas/state.json`):
/// `{"kind": "overload", "raised": true, "charger": null, "message": "…"}`, `charger` always
/// present (`null` for a site alert).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSignal {
    pub kind: AlertKind,
    /// On (`true`) or off (`false`).
    pub raised: bool,
    /// The charger concerned; `None` for a site alert (`meter_offline`,
    /// `meter_disagreement`, …).
    pub charger: Option<String>,
    /// What is wrong, for a raise; a clear's message is not kept.
    pub message: String,
}
