//! Anomaly detection: chargers that ignore their setpoints or draw when they must not,
//! registers that disagree with the power that flowed, phase maps that look wrong, a site
//! meter that does not see what the chargers report, sessions that are stuck or far outside
//! their charger's history, bays that are blocked, and unauthorised use. Pure: every rule is a function of the cycle
//! records it has seen, fed by the site pipeline in order. Holds, windows, rates and
//! integrations of power run on the record's steady time ([`CycleRecord::steady`]), which a
//! step of the wall clock does not move; only what a message prints is wall time
//! ([`CycleRecord::at`]); what it finds goes through the site's one alert book like every other alert.
//! The rules, their thresholds and their scored figures are in `docs/anomalies.md`.

mod auth;
mod draw;
mod energy;
pub mod health;
mod hold;
mod outlier;
mod phases;
pub(crate) mod settings;
mod site_meter;

use std::collections::BTreeSet;
use std::sync::Arc;

pub use outlier::upper_bound;
pub use settings::Settings;

use crate::alerts::{AlertKind, AlertSignal, When};
use crate::config::Config;
use crate::control::record::CycleRecord;
use crate::sessions::machine::SessionRecord;
use crate::tokens::TokenList;

/// What a rule knows about a charger from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub id: String,
    pub phases: u8,
    /// Grid phase (0-based) of each charger phase.
    pub phase_map: Vec<usize>,
    pub min_current_a: f64,
    pub max_current_a: f64,
}

/// A rule's finding for one charger this cycle.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The condition holds: raise (or keep) its alert with this message.
    On(String),
    /// It does not: let its alert clear.
    Off,
    /// Nothing to judge by this cycle (charger not read, no energy figure): leave it.
    Keep,
}

/// Every rule for every charger of a site.
#[derive(Debug, Clone)]
pub struct Detectors {
    settings: Settings,
    voltage_v: f64,
    site_phases: usize,
    facts: Vec<Facts>,
    draw: Vec<draw::DrawWatch>,
    energy: Vec<energy::EnergyWatch>,
    phases: phases::PhaseWatch,
    meter: site_meter::MeterAgreement,
    sessions: Vec<outlier::SessionWatch>,
    auth: auth::AuthWatch,
    /// The token list `unknown_token` judges presented ids by.
    tokens: Arc<TokenList>,
    /// Conditions currently signalled on.
    active: BTreeSet<(AlertKind, Option<String>)>,
}

impl Detectors {
    pub fn new(cfg: &Config) -> Self {
        let facts: Vec<Facts> = cfg
            .chargers
            .iter()
            .map(|c| Facts {
                id: c.id.clone(),
                phases: c.phases,
                phase_map: c.phase_map.clone(),
                min_current_a: c.min_current_a,
                max_current_a: c.max_current_a,
            })
            .collect();
        Self::with(
            cfg.anomaly.clone(),
            facts,
            cfg.site.voltage_v,
            usize::from(cfg.site.phases),
        )
        .with_tokens(cfg.auth.tokens.clone())
    }

    /// The token list `unknown_token` judges by (empty until given: every id is unknown).
    pub fn with_tokens(mut self, tokens: Arc<TokenList>) -> Self {
        self.tokens = tokens;
        self
    }

    /// Detectors for `facts` with `settings`, at a nominal `voltage_v`.
    pub fn with(settings: Settings, facts: Vec<Facts>, voltage_v: f64, site_phases: usize) -> Self {
        Detectors {
            settings,
            voltage_v,
            site_phases,
            draw: facts.iter().map(|_| draw::DrawWatch::default()).collect(),
            energy: facts
                .iter()
                .map(|_| energy::EnergyWatch::default())
                .collect(),
            phases: phases::PhaseWatch::new(facts.len()),
            meter: site_meter::MeterAgreement::default(),
            sessions: facts
                .iter()
                .map(|_| outlier::SessionWatch::default())
                .collect(),
            auth: auth::AuthWatch::new(facts.len()),
            tokens: Arc::default(),
            facts,
            active: BTreeSet::new(),
        }
    }

    /// New thresholds take effect from the next record (the chargers are the same: a
    /// changed set of chargers needs a restart, as for the loop).
    pub fn reconfigure(&mut self, cfg: &Config) {
        self.settings = cfg.anomaly.clone();
        self.tokens = cfg.auth.tokens.clone();
    }

    /// Completed sessions from before the start (oldest first): each charger's history for
    /// `session_outlier`.
    pub fn learn_sessions<'a>(&mut self, records: impl IntoIterator<Item = &'a SessionRecord>) {
        for r in records {
            if let Some(i) = self.facts.iter().position(|f| f.id == r.charger) {
                self.sessions[i].learn(r, &self.settings);
            }
        }
    }

    /// What a session update of the tracker says (`session_outlier` at completion).
    pub fn session(&mut self, r: &SessionRecord) -> Vec<AlertSignal> {
        let Some(i) = self.facts.iter().position(|f| f.id == r.charger) else {
            return Vec::new();
        };
        let found = self.sessions[i].session(r, &self.settings);
        let mut out = Vec::new();
        if !self.settings.enabled {
            return out;
        }
        for v in found {
            self.apply(
                AlertKind::SessionOutlier,
                Some(r.charger.clone()),
                v,
                &mut out,
            );
        }
        out
    }

    /// Every condition that changed with `rec`, in charger order.
    pub fn observe(&mut self, rec: &CycleRecord) -> Vec<AlertSignal> {
        let mut out = Vec::new();
        if !self.settings.enabled {
            for (kind, charger) in std::mem::take(&mut self.active) {
                out.push(AlertSignal {
                    kind,
                    charger,
                    raised: false,
                    message: String::new(),
                });
            }
            return out;
        }
        let voltage_v = rec
            .grid
            .and_then(|g| g.voltage_v.iter().flatten().copied().reduce(f64::max))
            .filter(|v| *v > 0.0)
            .unwrap_or(self.voltage_v);
        let s = &self.settings;
        let now = When {
            at: rec.at,
            steady: rec.steady(),
        };
        let mut found = Vec::new();
        for (i, f) in self.facts.iter().enumerate() {
            let Some(c) = rec.charger(&f.id) else {
                continue;
            };
            let id = Some(f.id.clone());
            found.extend(
                self.draw[i]
                    .observe(c, f, now, s)
                    .into_iter()
                    .map(|(k, v)| (k, id.clone(), v)),
            );
            found.extend(
                self.energy[i]
                    .observe(c, f, now.steady, voltage_v, s)
                    .into_iter()
                    .map(|(k, v)| (k, id.clone(), v)),
            );
            if let Some(v) = self.sessions[i].tick(&f.id, now, s) {
                found.push((AlertKind::SessionOutlier, id, v));
            }
        }
        found.extend(
            self.auth
                .observe(rec, &self.facts, &self.tokens, voltage_v, now, s)
                .into_iter()
                .map(|(k, c, v)| (k, Some(c), v)),
        );
        if self.site_phases == 3 {
            found.extend(
                self.phases
                    .observe(rec, &self.facts, s)
                    .into_iter()
                    .map(|(k, c, v)| (k, Some(c), v)),
            );
        }
        found.push((
            AlertKind::MeterDisagreement,
            None,
            self.meter.observe(rec, &self.facts, voltage_v, s),
        ));
        for (kind, charger, verdict) in found {
            self.apply(kind, charger, verdict, &mut out);
        }
        out
    }

    fn apply(
        &mut self,
        kind: AlertKind,
        charger: Option<String>,
        verdict: Verdict,
        out: &mut Vec<AlertSignal>,
    ) {
        match verdict {
            Verdict::On(message) if kind.is_one_shot() => out.push(AlertSignal {
                kind,
                charger,
                raised: true,
                message,
            }),
            Verdict::On(message) => {
                if self.active.insert((kind, charger.clone())) {
                    out.push(AlertSignal {
                        kind,
                        charger,
                        raised: true,
                        message,
                    });
                }
            }
            Verdict::Off => {
                if self.active.remove(&(kind, charger.clone())) {
                    out.push(AlertSignal {
                        kind,
                        charger,
                        raised: false,
                        message: String::new(),
                    });
                }
            }
            Verdict::Keep => {}
        }
    }
}

#[cfg(test)]
mod tests;
