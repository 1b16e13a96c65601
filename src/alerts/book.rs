//! The alert lifecycle: raise, de-duplicate, hold off, clear.
//!
//! Condition kinds (`meter_offline`, `charger_offline`, `charger_fault`, `overload`,
//! `charging_complete`) follow a signal that is on while the condition holds. One alert per
//! (kind, charger): signalling it on again while raised changes nothing. A clear takes effect
//! only once the signal has stayed off for `clear_holdoff`; a signal on again before that
//! continues the same alert (same `alert_id`, no message), so a flapping device gives exactly
//! one `raised` and one `cleared`. `cloud_link_down` clears at once: a link that started is
//! not a flapping device, and its retries are seconds apart.
//!
//! One-shot kinds (`session_interrupted`, `store_recovered`) report an occurrence: each
//! `signal(.., raised: true, message, ..)` raises one alert, de-duplicated by (kind, charger,
//! message) so the same occurrence signalled twice stays one alert. Nothing clears them by
//! itself; `signal(.., raised: false, ..)` clears every active one of that (kind, charger) at
//! once, without hold-off (an operator or the cloud acknowledged them).
//!
//! Every signal comes with its time as a [`When`]: alerts are stamped with the wall time
//! (`raised_at`, `cleared_at`), the hold-off runs on the steady time beside it, so a step of
//! the wall clock neither clears an alert at once nor holds it for the length of the step.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::kind::{Alert, AlertKind, AlertState};
use super::signal::AlertSignal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    /// How long a condition must stay clear before its alert clears.
    pub clear_holdoff: TimeDelta,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            clear_holdoff: TimeDelta::seconds(60),
        }
    }
}

/// The time of a signal: `at` to stamp with, `steady` to measure the hold-off on (the cycle
/// record's steady time, which a step of the wall clock does not move). A bare wall time is
/// both, as for a clock that never steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    pub at: DateTime<Utc>,
    pub steady: DateTime<Utc>,
}

impl From<DateTime<Utc>> for When {
    fn from(at: DateTime<Utc>) -> Self {
        When { at, steady: at }
    }
}

/// What changed; each is stored and published as `alert.raised` / `alert.cleared`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertChange {
    Raised(Alert),
    Cleared(Alert),
}

impl AlertChange {
    pub fn alert(&self) -> &Alert {
        match self {
            AlertChange::Raised(a) | AlertChange::Cleared(a) => a,
        }
    }
}

/// (kind, charger, message for one-shot kinds).
type Key = (AlertKind, Option<String>, Option<String>);

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    alert: Alert,
    /// Since when the condition has been clear, while the hold-off runs.
    clear_since: Option<When>,
}

/// The active alerts of the site.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertBook {
    policy: AlertPolicy,
    active: BTreeMap<Key, Entry>,
}

fn key(kind: AlertKind, charger: Option<&str>, message: &str) -> Key {
    (
        kind,
        charger.map(str::to_owned),
        kind.is_one_shot().then(|| message.to_owned()),
    )
}

impl AlertBook {
    pub fn new(policy: AlertPolicy) -> Self {
        AlertBook {
            policy,
            active: BTreeMap::new(),
        }
    }

    /// Takes over the alerts that were active before a restart: they continue (a signal of
    /// the same condition does not raise them again). Cleared ones are ignored.
    pub fn restore(&mut self, active: Vec<Alert>) {
        for alert in active {
            if alert.state != AlertState::Raised {
                continue;
            }
            let k = key(alert.kind, alert.charger.as_deref(), &alert.message);
            self.active.insert(
                k,
                Entry {
                    alert,
                    clear_since: None,
                },
            );
        }
    }

    /// The condition `kind` (on `charger`) is present (`raised`) or not, as seen at `at`.
    pub fn signal(
        &mut self,
        kind: AlertKind,
        charger: Option<&str>,
        raised: bool,
        message: impl Into<String>,
        at: impl Into<When>,
    ) -> Vec<AlertChange> {
        let message = message.into();
        let at = at.into();
        if kind.is_one_shot() && !raised {
            return self.clear_one_shots(kind, charger, at);
        }
        let k = key(kind, charger, &message);
        match (self.active.get_mut(&k), raised) {
            (Some(entry), true) => {
                entry.clear_since = None;
                Vec::new()
            }
            (None, true) => {
                let alert = Alert {
                    alert_id: uuid::Uuid::new_v4().to_string(),
                    kind,
                    severity: kind.severity(),
                    charger: charger.map(str::to_owned),
                    state: AlertState::Raised,
                    message,
                    raised_at: at.at,
                    cleared_at: None,
                };
                self.active.insert(
                    k,
                    Entry {
                        alert: alert.clone(),
                        clear_since: None,
                    },
                );
                vec![AlertChange::Raised(alert)]
            }
            (Some(entry), false) => {
                let since = *entry.clear_since.get_or_insert(at);
                if kind.clears_at_once() || at.steady - since.steady >= self.policy.clear_holdoff {
                    self.clear(&k).into_iter().collect()
                } else {
                    Vec::new()
                }
            }
            (None, false) => Vec::new(),
        }
    }

    /// [`AlertBook::signal`] for a change as its source reported it.
    pub fn apply(&mut self, s: &AlertSignal, at: impl Into<When>) -> Vec<AlertChange> {
        self.signal(
            s.kind,
            s.charger.as_deref(),
            s.raised,
            s.message.as_str(),
            at,
        )
    }

    /// Clears the alerts whose condition has now stayed clear for the hold-off.
    pub fn tick(&mut self, at: impl Into<When>) -> Vec<AlertChange> {
        let at = at.into();
        let due: Vec<Key> = self
            .active
            .iter()
            .filter(|(_, e)| {
                e.clear_since
                    .is_some_and(|since| at.steady - since.steady >= self.policy.clear_holdoff)
            })
            .map(|(k, _)| k.clone())
            .collect();
        due.iter().filter_map(|k| self.clear(k)).collect()
    }

    /// The alerts raised and not yet cleared (including those in their hold-off).
    pub fn active(&self) -> impl Iterator<Item = &Alert> {
        self.active.values().map(|e| &e.alert)
    }

    fn clear_one_shots(
        &mut self,
        kind: AlertKind,
        charger: Option<&str>,
        at: When,
    ) -> Vec<AlertChange> {
        let due: Vec<Key> = self
            .active
            .keys()
            .filter(|(k, c, _)| *k == kind && c.as_deref() == charger)
            .cloned()
            .collect();
        due.iter()
            .filter_map(|k| {
                if let Some(e) = self.active.get_mut(k) {
                    e.clear_since = Some(at);
                }
                self.clear(k)
            })
            .collect()
    }

    fn clear(&mut self, k: &Key) -> Option<AlertChange> {
        let entry = self.active.remove(k)?;
        let mut alert = entry.alert;
        alert.state = AlertState::Cleared;
        alert.cleared_at = entry.clear_since.map(|w| w.at);
        Some(AlertChange::Cleared(alert))
    }
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
