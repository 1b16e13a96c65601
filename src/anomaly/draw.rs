//! What a charger draws against what it may draw: more than its setpoint allows, or a
//! reported applied current other than the setpoint (`setpoint_ignored`); anything while it
//! must draw nothing (`unexpected_draw`); nothing while a car in state C is offered current
//! (`stuck_session`); and a car plugged in and idle for hours (`bay_blocked`).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::hold::{secs, Hold};
use super::{Facts, Settings, Verdict};
use crate::alerts::{AlertKind, When};
use crate::control::record::{ChargerCycle, Reason};
use crate::devices::model::ChargeState;

/// The setpoints of the last response window: a car may still follow any of them.
#[derive(Debug, Clone, Default, PartialEq)]
struct Recent {
    points: VecDeque<(DateTime<Utc>, Option<f64>)>,
}

impl Recent {
    fn push(&mut self, at: DateTime<Utc>, setpoint_a: Option<f64>, window_s: f64) {
        self.points.push_back((at, setpoint_a));
        while self
            .points
            .front()
            .is_some_and(|(t, _)| secs(at - *t) > window_s)
        {
            self.points.pop_front();
        }
    }

    /// Highest and lowest setpoint of the window; `None` if any was never written.
    fn range(&self) -> Option<(f64, f64)> {
        self.points
            .iter()
            .try_fold((f64::MIN, f64::MAX), |(hi, lo), (_, sp)| {
                sp.map(|a| (hi.max(a), lo.min(a)))
            })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrawWatch {
    recent: Recent,
    over: Hold,
    unapplied: Hold,
    unexpected: Hold,
    stuck: Hold,
    idle: Hold,
    /// The setpoint of the previous cycle: the one in force when this cycle read the charger
    /// (the loop reads first and writes after).
    prev_setpoint_a: Option<f64>,
}

impl DrawWatch {
    pub fn observe(
        &mut self,
        c: &ChargerCycle,
        f: &Facts,
        now: When,
        s: &Settings,
    ) -> [(AlertKind, Verdict); 4] {
        // Holds and the response window run on steady time; only the message prints wall time.
        let at = now.steady;
        use AlertKind::{BayBlocked, SetpointIgnored, StuckSession, UnexpectedDraw};
        if !c.online {
            // A gap breaks every run: nothing is known of what happened meanwhile.
            *self = DrawWatch::default();
            return [
                (SetpointIgnored, Verdict::Keep),
                (UnexpectedDraw, Verdict::Keep),
                (StuckSession, Verdict::Keep),
                (BayBlocked, Verdict::Keep),
            ];
        }
        self.recent.push(at, c.setpoint_a, s.response_s);
        let draw = c.current_or_zero_a().into_iter().fold(0.0, f64::max);
        let range = self.recent.range();
        let state = c.state;
        let disabled = !c.enabled || c.reason == Reason::Disabled;
        let must_not_draw =
            disabled || state == Some(ChargeState::A) || range.is_some_and(|(hi, _)| hi <= 0.0);

        let unexpected = must_not_draw && draw > s.unexpected_draw_a;
        let why = if disabled {
            "it is disabled"
        } else if state == Some(ChargeState::A) {
            "no car is connected"
        } else {
            "it is paused"
        };
        let unexpected = verdict(
            self.unexpected
                .update(unexpected, at, s.unexpected_draw_hold_s),
            || format!("{}: drawing {draw:.1} A while {why}", f.id),
        );

        // EVerest's rule: above the setpoint in force, by the tolerance, for the hold time;
        // and above every setpoint of the last response window, so a car still following
        // a setpoint written a moment ago (a series of decreases) is not counted.
        let allow = |a: f64| a * (1.0 + s.setpoint_tolerance_pct / 100.0) + s.setpoint_tolerance_a;
        let above_now = c.setpoint_a.is_some_and(|a| a > 0.0 && draw > allow(a));
        let above_all = range.is_some_and(|(hi, _)| draw > allow(hi));
        let held = self
            .over
            .update(!must_not_draw && above_now, at, s.setpoint_hold_s);
        // A model that reports the current it applies shows an ignored setpoint directly,
        // even one the car would not draw anyway.
        let tolerance = |a: f64| a * s.setpoint_tolerance_pct / 100.0 + s.setpoint_tolerance_a;
        let differs =
            |got: f64, sp: Option<f64>| sp.is_none_or(|sp| (got - sp).abs() > tolerance(sp));
        let applied = match (c.applied_current_a, c.setpoint_a) {
            // Neither the setpoint written this cycle nor the one in force at the read.
            (Some(got), Some(sp)) => differs(got, Some(sp)) && differs(got, self.prev_setpoint_a),
            _ => false,
        };
        self.prev_setpoint_a = c.setpoint_a;
        let not_applied = self.unapplied.update(applied, at, s.setpoint_hold_s);
        let over = if held && above_all {
            Verdict::On(format!(
                "{}: drawing {draw:.1} A against a setpoint of {:.1} A",
                f.id,
                c.setpoint_a.unwrap_or(0.0)
            ))
        } else if not_applied {
            Verdict::On(format!(
                "{}: applies {:.1} A against a setpoint of {:.1} A",
                f.id,
                c.applied_current_a.unwrap_or(0.0),
                c.setpoint_a.unwrap_or(0.0)
            ))
        } else {
            Verdict::Off
        };

        let offered = range.is_some_and(|(_, lo)| lo >= f.min_current_a - 1e-9);
        let stuck =
            !disabled && state == Some(ChargeState::C) && offered && draw < s.stuck_current_a;
        let stuck = verdict(self.stuck.update(stuck, at, s.stuck_hold_s), || {
            format!(
                "{}: car charging (state C) with {:.1} A offered draws nothing",
                f.id,
                c.setpoint_a.unwrap_or(0.0)
            )
        });

        // A car held for a cheaper slot by its departure plan is held back by the site too.
        let held_by_plan = c.plan.is_some_and(|p| !p.charging && !p.met);
        let idle = !disabled
            && state == Some(ChargeState::B)
            && draw < s.stuck_current_a
            && !c.reason.is_capacity()
            && !held_by_plan;
        let idle_for = self.idle.update(idle, at, s.bay_blocked_s);
        let since = self.idle.since();
        let idle = verdict(idle_for, || match since {
            Some(t) => format!(
                "{}: car plugged in and idle since {}",
                f.id,
                (now.at - (at - t)).format("%Y-%m-%dT%H:%M:%SZ")
            ),
            None => format!("{}: car plugged in and idle", f.id),
        });
        [
            (SetpointIgnored, over),
            (UnexpectedDraw, unexpected),
            (StuckSession, stuck),
            (BayBlocked, idle),
        ]
    }
}

fn verdict(on: bool, message: impl FnOnce() -> String) -> Verdict {
    if on {
        Verdict::On(message())
    } else {
        Verdict::Off
    }
}

#[cfg(test)]
#[path = "draw_tests.rs"]
mod tests;
