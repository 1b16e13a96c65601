//! What follows every cycle record, in order: the session tracker, the anomaly detectors
//! and the site's one alert book, all on the record's time (the site's clock). Pure:
//! records in, events out; the stage around it ([`super::stage`]) hands the events to the
//! recorder and the displays.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};

use crate::alerts::{Alert, AlertBook, AlertChange, AlertKind, AlertPolicy, When};
use crate::anomaly::health::{self, StationInput};
use crate::anomaly::Detectors;
use crate::config::Config;
use crate::control::record::CycleRecord;
use crate::sessions::energy::RegisterFault;
use crate::sessions::machine::{RecordState, SessionRecord};
use crate::sessions::tracker::{SessionTracker, SessionUpdate, TrackerOutput};
use crate::view::SiteState;

/// A change to store and announce, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum SiteEvent {
    Session(Box<SessionUpdate>),
    Alert(AlertChange),
    /// A demand window closed (`[demand]`): stored for the month's peak and history.
    DemandWindow(crate::control::demand::WindowDemand),
    /// Modbus requests to the chargers over a quarter of an hour, for the store to add up.
    LinkTally(LinkTally),
    /// `assign_session`: the owner of a session named after the fact, for the recorder to
    /// store and answer.
    Assigned(Box<Assigned>),
}

/// An assignment as the pipeline hands it on: the running session's updated record, or (for a
/// session the tracker no longer follows) what the recorder applies to the stored one.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    pub assignment: crate::commands::assign::Assignment,
    /// The running session's record, assigned and re-priced by the tracker.
    pub update: Option<SessionUpdate>,
    /// For a stored session: its group's own tariff (None: it keeps its snapshot).
    pub tariff: Option<crate::sessions::tariff::TariffSnapshot>,
    pub done: crate::commands::assign::Responder,
}

/// How often the Modbus counts are handed on: every quarter of an hour of record time (UTC),
/// so a tally never straddles the hours the store keeps them by.
pub const LINK_TALLY_PERIOD: TimeDelta = TimeDelta::minutes(15);

/// Each charger's Modbus requests, and those that failed, between two records' times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTally {
    /// The start of the quarter hour the counts fall in.
    pub from: DateTime<Utc>,
    /// The time of the last record counted.
    pub to: DateTime<Utc>,
    /// Only chargers that sent requests, in config order.
    pub chargers: Vec<LinkCount>,
}

/// One charger's part of a [`LinkTally`]. "Failed" is as `/metrics` has it: sent, not ok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCount {
    pub charger: String,
    pub requests: u64,
    pub failed: u64,
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
    /// Modbus counts since the last tally was handed on.
    links: LinkCounter,
}

/// The chargers' Modbus counters as last seen and what they added since the last tally.
#[derive(Debug, Clone, Default)]
struct LinkCounter {
    /// The quarter hour being counted (None: no record yet, or just handed on).
    quarter: Option<DateTime<Utc>>,
    last_at: Option<DateTime<Utc>>,
    /// Per charger: (requests, failed) as the last record had them …
    seen: BTreeMap<String, (u64, u64)>,
    /// … and what they grew by in this quarter, in the order chargers were first seen.
    added: Vec<LinkCount>,
}

/// The start of the UTC quarter hour `at` falls in.
fn quarter_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let period = LINK_TALLY_PERIOD.num_seconds();
    let s = at.timestamp().div_euclid(period) * period;
    DateTime::from_timestamp(s, 0).unwrap_or(at)
}

impl LinkCounter {
    /// Counts what `rec`'s counters grew by since the last record; hands on the quarter
    /// before it first if `rec` starts a new one.
    fn observe(&mut self, rec: &CycleRecord) -> Option<LinkTally> {
        let quarter = quarter_of(rec.at);
        let done = match self.quarter {
            Some(q) if q != quarter => self.take(),
            _ => None,
        };
        self.quarter = Some(quarter);
        self.last_at = Some(rec.at);
        for c in &rec.chargers {
            let now = (c.link.requests, c.link.requests.saturating_sub(c.link.ok));
            let before = self.seen.insert(c.id.clone(), now);
            // Counters are cumulative since the link was made: a first sight, or counters
            // lower than last seen (the process or the link started again), count from zero.
            let (requests, failed) = match before {
                Some((r, f)) if now.0 >= r && now.1 >= f => (now.0 - r, now.1 - f),
                _ => now,
            };
            if requests == 0 && failed == 0 {
                continue;
            }
            match self.added.iter_mut().find(|a| a.charger == c.id) {
                Some(a) => {
                    a.requests += requests;
                    a.failed += failed;
                }
                None => self.added.push(LinkCount {
                    charger: c.id.clone(),
                    requests,
                    failed,
                }),
            }
        }
        done
    }

    /// The counts so far, if any, as a tally; counting goes on from the counters last seen.
    fn take(&mut self) -> Option<LinkTally> {
        let from = self.quarter.take()?;
        let to = self.last_at?;
        let chargers = std::mem::take(&mut self.added);
        (!chargers.is_empty()).then_some(LinkTally { from, to, chargers })
    }
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
            links: LinkCounter::default(),
        }
    }

    /// The records have ended: what is left to hand on (the Modbus counts of the last
    /// quarter hour).
    pub fn finish(&mut self) -> Vec<SiteEvent> {
        self.links
            .take()
            .map(SiteEvent::LinkTally)
            .into_iter()
            .collect()
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

    /// `assign_session`: the running session's record updated by the tracker, or what the
    /// recorder applies to the stored one. `at`: the time now.
    pub fn assign(
        &mut self,
        req: crate::commands::assign::AssignRequest,
        at: DateTime<Utc>,
    ) -> SiteEvent {
        let a = req.assignment;
        let update = self.tracker.assign(&a.session_id, a.identity.clone(), at);
        let tariff = match update {
            Some(_) => None,
            None => self.tracker.group_tariff(a.identity.group.as_deref()),
        };
        SiteEvent::Assigned(Box::new(Assigned {
            assignment: a,
            update,
            tariff,
            done: req.done,
        }))
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
        raised: bool,
        message: &str,
        at: DateTime<Utc>,
    ) -> Vec<SiteEvent> {
        self.book
            .signal(kind, charger, raised, message, at)
            .into_iter()
            .map(SiteEvent::Alert)
            .collect()
    }

    /// Everything one cycle changed: the Modbus counts of the quarter hour it leaves behind,
    /// then its control alerts as the loop saw them, then what the
    /// sessions did, then the anomalies found, then alerts whose hold-off ran out by the
    /// record's time.
    pub fn observe(&mut self, rec: &CycleRecord) -> Vec<SiteEvent> {
        self.observed += 1;
        self.last_seq = rec.seq;
        // Alerts are stamped with the record's wall time; their hold-offs run on its steady
        // time, which a step of the wall clock does not move.
        let now = When {
            at: rec.at,
            steady: rec.steady(),
        };
        let mut out = Vec::new();
        if let Some(t) = self.links.observe(rec) {
            out.push(SiteEvent::LinkTally(t));
        }
        for a in &rec.alerts {
            out.extend(self.book.apply(a, now).into_iter().map(SiteEvent::Alert));
        }
        if let Some(step) = rec.clock.step() {
            self.tracker.clock_stepped(step);
        }
        let mut outliers = Vec::new();
        for o in self.tracker.observe(rec) {
            match o {
                TrackerOutput::Session(u) => {
                    outliers.extend(self.anomalies.session(&u.record));
                    out.push(SiteEvent::Session(u));
                }
                TrackerOutput::Alert { alert, at, .. } => out.extend(
                    self.book
                        .apply(
                            &alert,
                            When {
                                at,
                                steady: now.steady,
                            },
                        )
                        .into_iter()
                        .map(SiteEvent::Alert),
                ),
            }
        }
        outliers.extend(self.anomalies.observe(rec));
        // Billing stops trusting a register found faulty: its session goes on integrated power.
        for a in &outliers {
            let reason = match a.kind {
                AlertKind::RegisterFrozen => RegisterFault::RegisterFrozen,
                AlertKind::MeterDrift => RegisterFault::MeterDrift,
                _ => continue,
            };
            let Some(charger) = a.charger.as_deref() else {
                continue;
            };
            if let Some(TrackerOutput::Session(u)) = self
                .tracker
                .register_fault(charger, reason, a.raised, rec.at)
            {
                out.push(SiteEvent::Session(u));
            }
        }
        for a in &outliers {
            out.extend(self.book.apply(a, now).into_iter().map(SiteEvent::Alert));
        }
        out.extend(self.book.tick(now).into_iter().map(SiteEvent::Alert));
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
            SiteEvent::Alert(_)
            | SiteEvent::DemandWindow(_)
            | SiteEvent::LinkTally(_)
            | SiteEvent::Assigned(_) => {}
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
