//! The demo's tallies of sessions and alerts, from the site's events: how many sessions each
//! charger started and finished, with what energy and cost, and the last few sessions and
//! alert changes for the view. The sessions and alerts themselves are the site pipeline's
//! ([`crate::site`]), on the simulated site's clock.

use std::collections::VecDeque;

use crate::alerts::{AlertChange, AlertKind, Severity};
use crate::config::Config;
use crate::sessions::machine::{RecordState, SessionRecord};
use crate::sessions::tracker::SessionChange;
use crate::site::SiteEvent;

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

/// Sessions and alerts of the demo site, as counted from its events.
#[derive(Debug, Clone)]
pub struct Ledger {
    chargers: Vec<String>,
    currency: Option<String>,
    /// Every finished session's final record per charger index (energy and cost totals).
    finished: Vec<Vec<SessionRecord>>,
    started: Vec<usize>,
    recent_finished: VecDeque<SessionRecord>,
    recent_alerts: VecDeque<AlertChange>,
}

impl Ledger {
    /// A ledger for `cfg`'s chargers and tariff.
    pub fn new(cfg: &Config) -> Self {
        Ledger {
            chargers: cfg.chargers.iter().map(|c| c.id.clone()).collect(),
            currency: cfg.tariff.as_ref().map(|t| t.currency.clone()),
            finished: vec![Vec::new(); cfg.chargers.len()],
            started: vec![0; cfg.chargers.len()],
            recent_finished: VecDeque::new(),
            recent_alerts: VecDeque::new(),
        }
    }

    /// Counts one event of the site; returns what plain output tells of it.
    pub fn event(&mut self, e: SiteEvent) -> Option<Note> {
        match e {
            SiteEvent::Session(u) => {
                let record = u.record;
                let i = self.chargers.iter().position(|c| *c == record.charger);
                match u.change {
                    SessionChange::Started => {
                        if let Some(i) = i {
                            self.started[i] += 1;
                        }
                        Some(Note::SessionStarted(record))
                    }
                    SessionChange::Completed => {
                        if let Some(i) = i {
                            self.finished[i].push(record.clone());
                        }
                        if self.recent_finished.len() == RECENT_FINISHED {
                            self.recent_finished.pop_front();
                        }
                        self.recent_finished.push_back(record.clone());
                        Some(Note::SessionEnded(record))
                    }
                    SessionChange::Updated => None,
                }
            }
            SiteEvent::Alert(c) => {
                if self.recent_alerts.len() == RECENT_ALERTS {
                    self.recent_alerts.pop_front();
                }
                self.recent_alerts.push_back(c.clone());
                Some(Note::Alert(c))
            }
            SiteEvent::DemandWindow(_) => None,
            SiteEvent::LinkTally(_) => None,
            SiteEvent::Assigned(_) => None,
        }
    }

    /// The last sessions that ended, oldest first.
    pub fn recent_finished(&self) -> impl Iterator<Item = &SessionRecord> {
        self.recent_finished.iter()
    }

    /// The last alert changes, oldest first.
    pub fn recent_alerts(&self) -> impl Iterator<Item = &AlertChange> {
        self.recent_alerts.iter()
    }

    pub fn currency(&self) -> Option<&str> {
        self.currency.as_deref()
    }

    /// Per charger (config order): its sessions' count, energy and cost, the `running` ones
    /// counted as they stand.
    pub fn per_charger(&self, running: &[SessionRecord]) -> Vec<(String, ChargerSessions)> {
        self.chargers
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let running = running.iter().filter(|r| r.charger == *id);
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
        k => k.name(),
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
mod tests {
    use super::*;
    use crate::sessions::tracker::SessionUpdate;
    use chrono::{TimeZone, Utc};

    fn cfg() -> Config {
        let text = r#"
[site]
id = "demo"
grid_limit_a = 40.0

[[bus]]
name = "rs485"
device = "/dev/ttyUSB0"

[meter]
model = "eastron-sdm630"
bus = "rs485"
unit = 1

[[charger]]
id = "cp-1"
model = "alfen-eve"
host = "127.0.0.1"
port = 1503
max_current_a = 32.0

[[charger]]
id = "cp-2"
model = "alfen-eve"
host = "127.0.0.1"
port = 1504
max_current_a = 32.0
"#;
        crate::config::load_str(text, "ledger test").unwrap_or_else(|e| panic!("{e}"))
    }

    fn update(change: SessionChange, charger: &str, wh: u64, state: RecordState) -> SiteEvent {
        let at = Utc.with_ymd_and_hms(2026, 1, 15, 17, 0, 0).unwrap();
        let record = SessionRecord {
            state,
            energy_wh: wh,
            ..SessionRecord::new(format!("{charger}-{wh}"), charger.into(), at)
        };
        SiteEvent::Session(Box::new(SessionUpdate {
            change,
            record,
            new_samples: Vec::new(),
            publish: true,
            restamped: false,
        }))
    }

    #[test]
    fn sessions_are_counted_per_charger_with_the_running_ones_as_they_stand() {
        let mut l = Ledger::new(&cfg());
        let started = l.event(update(
            SessionChange::Started,
            "cp-1",
            0,
            RecordState::Active,
        ));
        assert!(matches!(started, Some(Note::SessionStarted(_))));
        assert!(l
            .event(update(
                SessionChange::Updated,
                "cp-1",
                500,
                RecordState::Active
            ))
            .is_none());
        let ended = l.event(update(
            SessionChange::Completed,
            "cp-1",
            900,
            RecordState::Completed,
        ));
        assert!(matches!(ended, Some(Note::SessionEnded(r)) if r.energy_wh == 900));
        l.event(update(
            SessionChange::Started,
            "cp-1",
            0,
            RecordState::Active,
        ));
        l.event(update(
            SessionChange::Started,
            "cp-2",
            0,
            RecordState::Active,
        ));
        let running = match update(SessionChange::Updated, "cp-1", 250, RecordState::Active) {
            SiteEvent::Session(u) => vec![u.record],
            _ => unreachable!(),
        };
        let per = l.per_charger(&running);
        assert_eq!(per[0].0, "cp-1");
        assert_eq!((per[0].1.started, per[0].1.completed), (2, 1));
        assert_eq!(per[0].1.energy_wh, 1150);
        assert_eq!(
            (per[1].1.started, per[1].1.completed, per[1].1.energy_wh),
            (1, 0, 0)
        );
        assert_eq!(l.recent_finished().count(), 1);
    }
}
