//! The demo's sessions and alerts, kept in memory as the daemon keeps them on disk: a
//! [`SessionTracker`] fed every view of the controller, and an [`AlertBook`] fed the
//! controller's alert events and the tracker's session alerts. Time is the simulated site's
//! clock, not the wall clock: the site runs many times faster than real time, and session
//! times, costs, idle fees, estimates and alert hold-offs must all follow the cars.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use tokio::sync::mpsc;

use crate::alerts::{AlertBook, AlertChange, AlertKind, AlertPolicy, Severity};
use crate::app::recorder::Record;
use crate::config::Config;
use crate::control::view::{ControlEvent, SiteView};
use crate::sessions::machine::{RecordState, SessionRecord};
use crate::sessions::tracker::{SessionChange, SessionTracker, TrackerOutput};

/// Alert changes kept for the view.
const RECENT_ALERTS: usize = 6;
/// Finished sessions kept for the view.
const RECENT_FINISHED: usize = 5;

/// What happened that plain output reports as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    SessionStarted(SessionRecord),
    /// The session's final record (completed or interrupted).
    SessionEnded(SessionRecord),
    Alert(AlertChange),
}

/// One charger's sessions for the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChargerSessions {
    pub started: usize,
    pub completed: usize,
    /// Energy of its finished sessions and of the one still running (Wh).
    pub energy_wh: u64,
    /// What those sessions cost, in the tariff's currency (None without a tariff).
    pub cost: Option<rust_decimal::Decimal>,
}

/// Sessions and alerts of the demo site.
#[derive(Debug, Clone)]
pub struct Ledger {
    tracker: SessionTracker,
    book: AlertBook,
    chargers: Vec<String>,
    currency: Option<String>,
    /// Every finished session's final record per charger index (energy and cost totals).
    finished: Vec<Vec<SessionRecord>>,
    started: Vec<usize>,
    recent_finished: VecDeque<SessionRecord>,
    recent_alerts: VecDeque<AlertChange>,
    /// With `--mqtt`: everything the tracker and the controller say also goes to the recorder.
    sink: Option<mpsc::UnboundedSender<Record>>,
}

impl Ledger {
    /// A ledger for `cfg`'s chargers and tariff. `history_wh` are earlier sessions' energies,
    /// which end-time estimates start from.
    pub fn new(cfg: &Config, history_wh: &[u64]) -> Self {
        let mut tracker = SessionTracker::new(cfg);
        tracker.learn(history_wh.iter().copied());
        Ledger {
            tracker,
            book: AlertBook::new(AlertPolicy::default()),
            chargers: cfg.chargers.iter().map(|c| c.id.clone()).collect(),
            currency: cfg.tariff.as_ref().map(|t| t.currency.clone()),
            finished: vec![Vec::new(); cfg.chargers.len()],
            started: vec![0; cfg.chargers.len()],
            recent_finished: VecDeque::new(),
            recent_alerts: VecDeque::new(),
            sink: None,
        }
    }

    /// Sends what the tracker and the controller say to `sink` as well (`--mqtt`).
    pub fn set_sink(&mut self, sink: mpsc::UnboundedSender<Record>) {
        self.sink = Some(sink);
    }

    /// Stops forwarding, so the recorder can finish.
    pub fn close_sink(&mut self) {
        self.sink = None;
    }

    fn forward(&self, r: Record) {
        if let Some(s) = &self.sink {
            let _ = s.send(r);
        }
    }

    /// Feeds one controller view, as seen at site time `now`.
    pub fn observe(&mut self, view: &SiteView, now: DateTime<Utc>) -> Vec<Note> {
        let mut timed = view.clone();
        timed.at = Some(now);
        let mut notes = Vec::new();
        for out in self.tracker.observe(&timed) {
            self.forward(Record::Tracker(out.clone()));
            match out {
                TrackerOutput::Session(u) => {
                    let record = u.record;
                    let i = self.chargers.iter().position(|c| *c == record.charger);
                    match u.change {
                        SessionChange::Started => {
                            if let Some(i) = i {
                                self.started[i] += 1;
                            }
                            notes.push(Note::SessionStarted(record));
                        }
                        SessionChange::Completed => {
                            if let Some(i) = i {
                                self.finished[i].push(record.clone());
                            }
                            if self.recent_finished.len() == RECENT_FINISHED {
                                self.recent_finished.pop_front();
                            }
                            self.recent_finished.push_back(record.clone());
                            notes.push(Note::SessionEnded(record));
                        }
                        SessionChange::Updated => {}
                    }
                }
                TrackerOutput::Alert(a) => {
                    let kind = AlertKind::from(a.kind);
                    let changes =
                        self.book
                            .signal(kind, Some(&a.charger), a.raised, a.message, a.at);
                    self.note_alerts(changes, &mut notes);
                }
            }
        }
        notes
    }

    /// Feeds one of the controller's alert events, as seen at site time `now` (its own
    /// time stamp is the wall clock's).
    pub fn control(&mut self, ev: ControlEvent, now: DateTime<Utc>) -> Vec<Note> {
        let ControlEvent::Alert {
            kind,
            raised,
            charger,
            message,
            ..
        } = &ev;
        self.forward(Record::Control(ControlEvent::Alert {
            kind: *kind,
            raised: *raised,
            charger: charger.clone(),
            message: message.clone(),
            at: now,
        }));
        let ControlEvent::Alert {
            kind,
            raised,
            charger,
            message,
            ..
        } = ev;
        let changes = self
            .book
            .signal(kind.into(), charger.as_deref(), raised, message, now);
        let mut notes = Vec::new();
        self.note_alerts(changes, &mut notes);
        notes
    }

    /// Clears alerts whose condition has stayed away for the hold-off by site time `now`.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Note> {
        let changes = self.book.tick(now);
        let mut notes = Vec::new();
        self.note_alerts(changes, &mut notes);
        notes
    }

    fn note_alerts(&mut self, changes: Vec<AlertChange>, notes: &mut Vec<Note>) {
        for c in changes {
            if self.recent_alerts.len() == RECENT_ALERTS {
                self.recent_alerts.pop_front();
            }
            self.recent_alerts.push_back(c.clone());
            notes.push(Note::Alert(c));
        }
    }

    /// The running sessions at site time `now`, with their cost and estimate so far.
    pub fn active(&self, now: DateTime<Utc>) -> Vec<SessionRecord> {
        self.tracker.current(now)
    }

    /// The last sessions that ended, oldest first.
    pub fn recent_finished(&self) -> impl Iterator<Item = &SessionRecord> {
        self.recent_finished.iter()
    }

    /// The last alert changes, oldest first.
    pub fn recent_alerts(&self) -> impl Iterator<Item = &AlertChange> {
        self.recent_alerts.iter()
    }

    /// The alerts raised and not yet cleared.
    pub fn active_alerts(&self) -> usize {
        self.book.active().count()
    }

    pub fn currency(&self) -> Option<&str> {
        self.currency.as_deref()
    }

    /// Per charger (config order): its sessions' count, energy and cost, the running one
    /// counted as it stands at site time `now`.
    pub fn per_charger(&self, now: DateTime<Utc>) -> Vec<(String, ChargerSessions)> {
        let active = self.active(now);
        self.chargers
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let running = active.iter().filter(|r| r.charger == *id);
                let all: Vec<&SessionRecord> = self.finished[i].iter().chain(running).collect();
                let cost = all
                    .iter()
                    .filter_map(|r| r.cost.as_ref().map(|c| c.total))
                    .reduce(|a, b| a + b);
                let s = ChargerSessions {
                    started: self.started[i],
                    completed: self.finished[i]
                        .iter()
                        .filter(|r| r.state == RecordState::Completed)
                        .count(),
                    energy_wh: all.iter().map(|r| r.energy_wh).sum(),
                    cost,
                };
                (id.clone(), s)
            })
            .collect()
    }
}

/// `charging_complete`, as the contract names the kind.
pub fn kind_name(k: AlertKind) -> &'static str {
    match k {
        AlertKind::MeterOffline => "meter_offline",
        AlertKind::ChargerOffline => "charger_offline",
        AlertKind::ChargerFault => "charger_fault",
        AlertKind::Overload => "overload",
        AlertKind::ChargingComplete => "charging_complete",
        AlertKind::SessionInterrupted => "session_interrupted",
        AlertKind::StoreRecovered => "store_recovered",
    }
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
