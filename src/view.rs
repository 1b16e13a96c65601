//! The live view of a site that displays read (`evsite demo`, telemetry, the watchdog, the
//! local API): the last cycle record with the sessions and alerts as they stood after it.
//! Derived from the site's pipeline (`site::stage` publishes it); nothing here is stored.
//! Its own module, below both `site` and `sync`, so that `site` (which starts the sync) uses
//! `sync` and the sync, which reads the view for telemetry, needs nothing from `site`.

use std::sync::Arc;

use serde::Serialize;

use crate::alerts::Alert;
use crate::anomaly::health::StationHealth;
use crate::control::record::CycleRecord;
use crate::sessions::machine::SessionRecord;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SiteState {
    /// The last cycle (None before the first).
    pub cycle: Option<Arc<CycleRecord>>,
    /// The running sessions, with the energy, cost and end estimate as of that cycle.
    pub sessions: Vec<SessionRecord>,
    /// Alerts raised and not yet cleared.
    pub alerts: Vec<Alert>,
    /// Each charger against the others since the daemon started (`/metrics`).
    #[serde(skip)]
    pub stations: Vec<StationHealth>,
}

impl SiteState {
    /// Just a cycle, with no sessions or alerts (a site whose pipeline keeps none live).
    pub fn of_cycle(rec: Arc<CycleRecord>) -> Self {
        SiteState {
            cycle: Some(rec),
            ..SiteState::default()
        }
    }
}
