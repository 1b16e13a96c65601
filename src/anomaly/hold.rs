//! A condition that must hold for a while before it counts.

use chrono::{DateTime, Utc};

/// Since when a condition has held without a break.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hold {
    since: Option<DateTime<Utc>>,
}

impl Hold {
    /// The condition is `on` (or not) at `at`: whether it has now held for `for_s`.
    pub fn update(&mut self, on: bool, at: DateTime<Utc>, for_s: f64) -> bool {
        if !on {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(at);
        secs(at - since) >= for_s
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
        assert!(h.update(true, at(7), 3.0));
        assert_eq!(h.since(), Some(at(4)));
    }
}
