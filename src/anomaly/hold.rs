//! A condition that must hold for a while before it counts.

use chrono::{DateTime, Utc};

/// A condition held for a time must also have been seen this many cycles running: where one
/// cycle covers more than the hold (`evsite demo` runs its site 30 times faster than the
/// loop), a single reading taken just before a write must not count as a held condition.
const MIN_CYCLES: u32 = 3;

/// Since when a condition has held without a break.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hold {
    since: Option<DateTime<Utc>>,
    cycles: u32,
}

impl Hold {
    /// The condition is `on` (or not) at `at`: whether it has now held for `for_s` (and, for
    /// a hold longer than zero, for [`MIN_CYCLES`] cycles).
    pub fn update(&mut self, on: bool, at: DateTime<Utc>, for_s: f64) -> bool {
        if !on {
            self.since = None;
            self.cycles = 0;
            return false;
        }
        let since = *self.since.get_or_insert(at);
        self.cycles = self.cycles.saturating_add(1);
        secs(at - since) >= for_s && (for_s <= 0.0 || self.cycles >= MIN_CYCLES)
    }

    /// Since when it has held, if it does.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.since
    }
}

pub fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_an_unbroken_run() {
        let t0 = DateTime::UNIX_EPOCH;
        let at = |s| t0 + chrono::TimeDelta::seconds(s);
        let mut h = Hold::default();
        assert!(!h.update(true, at(0), 3.0));
        assert!(!h.update(true, at(2), 3.0));
        assert!(!h.update(false, at(3), 3.0));
        assert!(!h.update(true, at(4), 3.0));
        assert!(!h.update(true, at(7), 3.0), "held 3 s but seen twice");
        assert!(h.update(true, at(8), 3.0));
        assert_eq!(h.since(), Some(at(4)));
    }

    #[test]
    fn one_long_cycle_is_not_a_held_condition() {
        let t0 = DateTime::UNIX_EPOCH;
        let at = |s| t0 + chrono::TimeDelta::seconds(s);
        let mut h = Hold::default();
        // Cycles 30 s apart, as the demo's site clock sees them.
        assert!(!h.update(true, at(0), 7.0));
        assert!(!h.update(true, at(30), 7.0));
        assert!(h.update(true, at(60), 7.0));
        let mut once = Hold::default();
        assert!(!once.update(true, at(0), 7.0));
        assert!(!once.update(true, at(30), 7.0));
        assert!(!once.update(false, at(60), 7.0));
    }
}
