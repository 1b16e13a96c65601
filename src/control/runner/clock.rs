//! The wall clock as the loop sees it, once a cycle: a step is announced (`clock_stepped`)
//! and what the loop keeps in wall time is moved by it; time untrusted for too long is
//! announced (`clock_unsynced`). Control itself needs no wall time: limits, holds and the
//! fail-safe run on monotonic time whatever the clock reads, and a plan's delivered energy
//! is integrated on the clock's steady time. Only a commanded limit's `expires_at` follows
//! the wall clock, steps included: it is an absolute time from the cloud.

use chrono::TimeDelta;

use super::Controller;
use crate::alerts::AlertKind;

impl Controller {
    /// Reads the clock for this cycle (see the module docs).
    pub(super) fn observe_clock(&mut self) {
        let view = self.clock.take_view();
        if let Some(step) = view.step() {
            self.alert(
                AlertKind::ClockStepped,
                true,
                None,
                format!(
                    "the system clock was stepped by {}: times are stamped on the corrected clock",
                    describe_step(step)
                ),
            );
            if let Some(d) = self.demand.as_mut() {
                d.clock_stepped(step);
            }
        }
        if let Some(d) = self.demand.as_mut() {
            d.set_provisional(!view.trusted);
        }
        if view.unsynced() && !self.unsynced_reported {
            self.unsynced_reported = true;
            self.alert(
                AlertKind::ClockUnsynced,
                true,
                None,
                format!(
                    "the wall time is not synchronised after {} min: schedules apply at their lowest, demand windows are not billed, session times are provisional",
                    view.untrusted_s / 60
                ),
            );
        } else if view.trusted && self.unsynced_reported {
            self.unsynced_reported = false;
            self.alert(
                AlertKind::ClockUnsynced,
                false,
                None,
                "the wall time is synchronised".into(),
            );
        }
        self.clock_view = view;
    }
}

/// A step for people: `+646 d 6 h`, `-3 h 20 min`, `+42 s`.
pub fn describe_step(step: TimeDelta) -> String {
    let sign = if step < TimeDelta::zero() { '-' } else { '+' };
    let ms = step.num_milliseconds().unsigned_abs();
    // Rounded to the smallest unit shown: a step measured a few ms short of 646 days is one.
    let round = |unit_ms: u64| (ms + unit_ms / 2) / unit_ms;
    if ms >= 86_400_000 {
        let h = round(3_600_000);
        format!("{sign}{} d {} h", h / 24, h % 24)
    } else if ms >= 3_600_000 {
        let m = round(60_000);
        format!("{sign}{} h {} min", m / 60, m % 60)
    } else if ms >= 60_000 {
        let s = round(1000);
        format!("{sign}{} min {} s", s / 60, s % 60)
    } else {
        format!("{sign}{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_in_the_largest_unit() {
        assert_eq!(
            describe_step(TimeDelta::days(646) + TimeDelta::hours(6)),
            "+646 d 6 h"
        );
        assert_eq!(
            describe_step(-(TimeDelta::hours(3) + TimeDelta::minutes(20))),
            "-3 h 20 min"
        );
        assert_eq!(describe_step(TimeDelta::milliseconds(42_500)), "+42.5 s");
        assert_eq!(
            describe_step(TimeDelta::days(646) - TimeDelta::milliseconds(3)),
            "+646 d 0 h"
        );
    }
}
