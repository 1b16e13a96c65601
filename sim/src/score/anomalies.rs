//! The anomaly part of the scorecard: the anomaly alerts the site raised against the faults
//! the scenario injected. A fault is detected when an alert of its kind is raised on its
//! target from its onset to [`GRACE_S`] after its end; the delay is from the onset. Every
//! other anomaly alert is a false alarm, except the kinds a fault also explains (a charger
//! ignoring setpoints that the controller then pauses draws "unexpectedly" too).
//!
//! A fault whose rule is a hold by definition (`bay_blocked`: idle for `bay_blocked_s`) is
//! scored from when its hold has passed: the delay is what the rule took beyond its
//! threshold, not the threshold itself. So is `unknown_token`, whose rule counts
//! presentations: from the presentation that reaches `unknown_token_count`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use evsite::alerts::{AlertChange, AlertKind};
use evsite::anomaly::Settings;
use evsite::simulator::scenario::{FaultKind, FaultSpec};
use evsite::site::SiteEvent;

/// A fault's alert may come this long after the fault ends (the rules need their evidence).
pub const GRACE_S: f64 = 60.0;
/// A fault's target that is the site meter.
const METER: &str = "meter";

/// Per alert kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindScore {
    /// Injected faults of this kind raised in time.
    pub detected: usize,
    /// Injected faults of this kind never raised.
    pub missed: usize,
    /// Alerts of this kind no injected fault explains.
    pub false_alarms: usize,
    /// The longest delay from a fault's onset to its alert (`null`: none detected).
    pub detection_delay_s: Option<f64>,
}

/// One injected fault and what the rules made of it (the fleet report's sensitivity curves
/// are built from these).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultOutcome {
    pub fault: FaultKind,
    /// The alert kind that should catch it.
    pub alert: String,
    pub target: String,
    pub at_s: f64,
    pub duration_s: f64,
    /// Its size, for the kinds that have one.
    pub amount: Option<f64>,
    /// From its onset (or the end of its rule's hold) to the first alert; `None`: missed.
    pub delay_s: Option<f64>,
}

/// Whether an alert on `charger` at `t` falls within fault `f` (a fault on the meter is
/// explained by a site alert, with no charger).
fn within(f: &FaultSpec, charger: &Option<String>, t: f64) -> bool {
    charger.as_deref().unwrap_or(METER) == f.target.as_str()
        && t >= f.at_s
        && t <= f.at_s + f.duration_s + GRACE_S
}

/// The alert kind a fault should raise, and the kinds it may raise besides.
pub fn expected(kind: FaultKind) -> Option<(AlertKind, &'static [AlertKind])> {
    use AlertKind as A;
    Some(match kind {
        FaultKind::IgnoreSetpoints => (A::SetpointIgnored, &[A::UnexpectedDraw]),
        FaultKind::DrawWhileDisabled => (A::UnexpectedDraw, &[A::SetpointIgnored]),
        FaultKind::MeterDrift => (A::MeterDrift, &[]),
        FaultKind::FrozenRegister => (A::RegisterFrozen, &[A::MeterDrift]),
        FaultKind::RegisterJump | FaultKind::EnergyReset => (A::RegisterJump, &[]),
        FaultKind::SwappedPhase => (A::PhaseMapMismatch, &[]),
        FaultKind::StuckSession => (A::StuckSession, &[]),
        // The register then disagrees with the power too.
        FaultKind::PowerHigh => (A::Overpower, &[A::MeterDrift]),
        FaultKind::SiteMeterScale => (A::MeterDisagreement, &[]),
        FaultKind::BayBlocked => (A::BayBlocked, &[]),
        // A car that charges with a refused card draws with nobody authorised, where the
        // controller does not hold it (or the charger ignores the hold).
        FaultKind::UnknownToken => (A::UnknownToken, &[A::UnauthorizedDraw]),
        FaultKind::TokenInUseTwice => (A::TokenInUseTwice, &[]),
        // Free of the controller, it ignores its setpoints too: a hold at 0 A is an
        // unexpected draw, a lower setpoint an ignored one.
        FaultKind::UnauthorizedDraw => (
            A::UnauthorizedDraw,
            &[A::UnexpectedDraw, A::SetpointIgnored],
        ),
        // Link faults: the controller's own alerts (offline, fail-safe) cover them.
        FaultKind::MeterSilent
        | FaultKind::ChargerError
        | FaultKind::GarbledFrames
        | FaultKind::Exceptions
        | FaultKind::NoValue
        | FaultKind::WrongUnit => return None,
    })
}

/// How long a fault's rule must see it by definition before it is a finding.
pub fn hold_s(kind: FaultKind, s: &Settings) -> f64 {
    match kind {
        FaultKind::BayBlocked => s.bay_blocked_s,
        // The rule counts presentations; the fault makes one a period, from its onset.
        FaultKind::UnknownToken => {
            (s.unknown_token_count.max(1) - 1) as f64 * FaultSpec::UNKNOWN_TOKEN_PERIOD_S
        }
        _ => 0.0,
    }
}

/// Every anomaly alert raised during a run: (kind, charger, seconds since the start).
#[derive(Debug, Default)]
pub struct AnomalyLog {
    raised: Vec<(AlertKind, Option<String>, f64)>,
}

impl AnomalyLog {
    pub fn observe(&mut self, event: &SiteEvent, start: DateTime<Utc>) {
        if let SiteEvent::Alert(AlertChange::Raised(a)) = event {
            if a.kind.is_anomaly() {
                let t = (a.raised_at - start).num_milliseconds() as f64 / 1000.0;
                self.raised.push((a.kind, a.charger.clone(), t));
            }
        }
    }

    /// What became of each injected fault that an anomaly rule should catch, in the order
    /// of `faults`: whether an alert of its kind was raised on its target in time, and after
    /// how long.
    pub fn outcomes(&self, faults: &[FaultSpec], s: &Settings) -> Vec<FaultOutcome> {
        faults
            .iter()
            .filter_map(|f| {
                let (kind, _) = expected(f.kind)?;
                let first = self
                    .raised
                    .iter()
                    .filter(|(k, c, t)| *k == kind && within(f, c, *t))
                    .map(|(_, _, t)| *t)
                    .reduce(f64::min);
                let onset = f.at_s + hold_s(f.kind, s);
                Some(FaultOutcome {
                    fault: f.kind,
                    alert: kind.name().to_string(),
                    target: f.target.clone(),
                    at_s: f.at_s,
                    duration_s: f.duration_s,
                    amount: f.amount,
                    delay_s: first.map(|t| ((t - onset) * 1000.0).round() / 1000.0),
                })
            })
            .collect()
    }

    /// Every anomaly kind, scored against `faults`.
    pub fn score(&self, faults: &[FaultSpec], s: &Settings) -> BTreeMap<String, KindScore> {
        let mut out: BTreeMap<String, KindScore> = AlertKind::ANOMALIES
            .iter()
            .map(|k| (k.name().to_string(), KindScore::default()))
            .collect();
        for o in self.outcomes(faults, s) {
            let e = out.entry(o.alert).or_default();
            match o.delay_s {
                Some(delay) => {
                    e.detected += 1;
                    e.detection_delay_s = Some(e.detection_delay_s.map_or(delay, |d| d.max(delay)));
                }
                None => e.missed += 1,
            }
        }
        for (kind, charger, t) in &self.raised {
            let explained = faults.iter().any(|f| {
                expected(f.kind).is_some_and(|(main, also)| {
                    (main == *kind || also.contains(kind)) && within(f, charger, *t)
                })
            });
            if !explained {
                out.entry(kind.name().to_string()).or_default().false_alarms += 1;
            }
        }
        out
    }

    /// What was raised, for a debug print.
    pub fn raised(&self) -> &[(AlertKind, Option<String>, f64)] {
        &self.raised
    }
}
