//! What follows every cycle record, in order: the session tracker, the anomaly detectors
//! and the site's one alert book, all on the record's time (the site's clock). Pure:
//! records in, events out; the stage around it ([`super::stage`]) hands the events to the
//! recorder and the displays.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::state::SiteState;
use crate::alerts::{Alert, AlertBook, AlertChange, AlertKind, AlertPolicy};
use crate::anomaly::health::{self, StationInput};
use crate::anomaly::Detectors;
use crate::config::Config;
use crate::control::record::CycleRecord;
use crate::sessions::machine::{RecordState, SessionRecord};
use crate::sessions::tracker::{SessionTracker, SessionUpdate, TrackerOutput};

/// A change to store and announce, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum SiteEvent {
    Session(Box<SessionUpdate>),
    Alert(AlertChange),
    /// A demand window closed (`[demand]`): stored for the month's peak and history.
    DemandWindow(crate::control::demand::WindowDemand),
}

/// Sessions and alerts of one site.
#[derive(Debug, Clone)]
pub struct Pipeline {
    tracker: SessionTracker,
    book: AlertBook,
    /// Observe only: what they find is raised as alerts, never fed back to control.
    anomalies: Detectors,
    /// Cycle records observed, and the `seq` of the last.
    observed: u64,
    last_seq: u64,
    /// Since start, per charger: what station health compares.
    stations: BTreeMap<String, Tally>,
    /// Energy of each running session as last seen, so only what it added counts.
    session_wh: HashMap<String, u64>,
}

/// One charger since start.
#[derive(Debug, Clone, Default)]
struct Tally {
    energy_wh: u64,
    link_alerts: usize,
    anomaly_alerts: usize,
}

impl Pipeline {
    pub fn new(cfg: &Config) -> Self {
        Pipeline {
            tracker: SessionTracker::new(cfg),
            book: AlertBook::new(AlertPolicy::default()),
            anomalies: Detectors::new(cfg),
            observed: 0,
            last_seq: 0,
            stations: cfg
                .chargers
                .iter()
                .map(|c| (c.id.clone(), Tally::default()))
                .collect(),
            session_wh: HashMap::new(),
        }
    }

    /// How many cycle records it has observed, and the `seq` of the last one.
    pub fn observed(&self) -> (u64, u64) {
        (self.observed, self.last_seq)
    }

    /// The session tracker, to prime it (history, sessions picked up after a restart).
    pub fn tracker_mut(&mut self) -> &mut SessionTracker {
        &mut self.tracker
    }

    /// The anomaly detectors, to prime them (each charger's completed sessions).
    pub fn anomalies_mut(&mut self) -> &mut Detectors {
        &mut self.anomalies
    }

    /// Alerts active before a restart continue.
    pub fn restore_alerts(&mut self, active: Vec<Alert>) {
        self.book.restore(active);
    }

    /// A reloaded config brings its tariff to the sessions that start after it.
    pub fn reconfigure(&mut self, cfg: &Config) {
        self.tracker.reconfigure(cfg);
        self.anomalies.reconfigure(cfg);
    }

    /// An alert from outside the loop (the store at start-up).
    pub fn signal(
        &mut self,
        kind: AlertKind,
        charger: Option<&str>,
        on: bool,
        message: &str,
        at: DateTime<Utc>,
    ) -> Vec<SiteEvent> {
        self.book
            .signal(kind, charger, on, message, at)
            .into_iter()
            .map(SiteEvent::Alert)
            .collect()
    }

    /// Everything one cycle changed: its control alerts as the loop saw them, then what the
    /// sessions did, then the anomalies found, then alerts whose hold-off ran out by the
    /// record's time.
    pub fn observe(&mut self, rec: &CycleRecord) -> Vec<SiteEvent> {
        self.observed += 1;
        self.last_seq = rec.seq;
        let mut out = Vec::new();
        for a in &rec.alerts {
            out.extend(
                self.book
                    .signal(
                        a.kind.into(),
                        a.charger.as_deref(),
                        a.raised,
                        &a.message,
                        rec.at,
                    )
                    .into_iter()
                    .map(SiteEvent::Alert),
            );
        }
        let mut outliers = Vec::new();
        for o in self.tracker.observe(rec) {
            match o {
                TrackerOutput::Session(u) => {
                    outliers.extend(self.anomalies.session(&u.record));
                    out.push(SiteEvent::Session(u));
                }
                TrackerOutput::Alert(a) => out.extend(
                    self.book
                        .signal(a.kind.into(), Some(&a.charger), a.raised, a.message, a.at)
                        .into_iter()
                        .map(SiteEvent::Alert),
                ),
            }
        }
        outliers.extend(self.anomalies.observe(rec));
        for a in outliers {
            out.extend(
                self.book
                    .signal(a.kind, a.charger.as_deref(), a.on, a.message, rec.at)
                    .into_iter()
                    .map(SiteEvent::Alert),
            );
        }
        out.extend(self.book.tick(rec.at).into_iter().map(SiteEvent::Alert));
        if let Some(w) = rec.demand.and_then(|d| d.finished) {
            out.push(SiteEvent::DemandWindow(w));
        }
        for e in &out {
            self.tally(e);
        }
        out
    }

    fn tally(&mut self, e: &SiteEvent) {
        match e {
            SiteEvent::Session(u) => {
                let r = &u.record;
                let before = if r.state == RecordState::Active {
                    self.session_wh.insert(r.session_id.clone(), r.energy_wh)
                } else {
                    self.session_wh.remove(&r.session_id)
                };
                if let Some(t) = self.stations.get_mut(&r.charger) {
                    t.energy_wh += r.energy_wh.saturating_sub(before.unwrap_or(0));
                }
            }
            SiteEvent::Alert(AlertChange::Raised(a)) => {
                let Some(t) = a.charger.as_ref().and_then(|c| self.stations.get_mut(c)) else {
                    return;
                };
                if a.kind.is_anomaly() {
                    t.anomaly_alerts += 1;
                } else if matches!(a.kind, AlertKind::ChargerOffline | AlertKind::ChargerFault) {
                    t.link_alerts += 1;
                }
            }
            SiteEvent::Alert(_) | SiteEvent::DemandWindow(_) => {}
        }
    }

    /// The sessions active now, as last stored or announced.
    pub fn active_sessions(&self) -> Vec<SessionRecord> {
        self.tracker.active()
    }

    /// The site as a display shows it after `rec`: the running sessions with their cost and
    /// estimate as they stand, and the open alerts.
    pub fn state(&self, rec: &std::sync::Arc<CycleRecord>) -> SiteState {
        SiteState {
            cycle: Some(rec.clone()),
            sessions: self.tracker.current(rec.at),
            alerts: self.book.active().cloned().collect(),
            stations: self.stations(rec),
        }
    }

    /// Each charger against the others since start: energy and alerts as tallied, Modbus
    /// requests and failures as the record's counters have them.
    fn stations(&self, rec: &CycleRecord) -> Vec<health::StationHealth> {
        let rows: Vec<StationInput> = self
            .stations
            .iter()
            .map(|(id, t)| {
                let link = rec.charger(id).map(|c| c.link);
                StationInput {
                    charger: id.clone(),
                    energy_wh: Some(t.energy_wh),
                    requests: link.map(|l| l.requests),
                    failed: link.map(|l| l.requests.saturating_sub(l.ok)),
                    link_alerts: Some(t.link_alerts),
                    anomaly_alerts: Some(t.anomaly_alerts),
                }
            })
            .collect();
        health::compare(&rows)
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
