//! Fail-safe supervision, pure: from the main meter's health over time, how far the allocator
//! may be trusted this cycle.
//!
//! - `Startup`: no good meter read yet — nothing may rise above the fail-safe current.
//! - `Normal`: the meter answered this cycle — allocate from the measurement.
//! - `Holding`: the meter missed, but for less than `meter_timeout` — keep what was written,
//!   only ever lower it (the last measurement is stale, so no increase is justified).
//! - `Failsafe`: the meter has been silent for `meter_timeout` — every charger goes to the
//!   fail-safe current, which config validation proved fits the limit with no measurement.

use tokio::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Startup,
    Normal,
    Holding,
    Failsafe,
}

/// A change worth an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    EnteredFailsafe,
    LeftFailsafe,
}

#[derive(Debug, Clone)]
pub struct MeterWatch {
    timeout: Duration,
    started: Instant,
    last_ok: Option<Instant>,
    failsafe: bool,
}

impl MeterWatch {
    pub fn new(timeout: Duration, started: Instant) -> Self {
        MeterWatch {
            timeout,
            started,
            last_ok: None,
            failsafe: false,
        }
    }

    /// Record this cycle's meter read and say which mode the cycle runs in.
    pub fn observe(&mut self, meter_ok: bool, now: Instant) -> (Mode, Option<Transition>) {
        if meter_ok {
            self.last_ok = Some(now);
            let left = std::mem::replace(&mut self.failsafe, false);
            return (Mode::Normal, left.then_some(Transition::LeftFailsafe));
        }
        let silent_since = self.last_ok.unwrap_or(self.started);
        if now.saturating_duration_since(silent_since) >= self.timeout {
            let entered = !std::mem::replace(&mut self.failsafe, true);
            return (
                Mode::Failsafe,
                entered.then_some(Transition::EnteredFailsafe),
            );
        }
        match self.last_ok {
            None => (Mode::Startup, None),
            Some(_) => (Mode::Holding, None),
        }
    }

    pub fn in_failsafe(&self) -> bool {
        self.failsafe
    }

    /// How long the meter has been silent at `now`: since its last good read, or since the
    /// start when it never answered (zero right after a good read).
    pub fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_ok.unwrap_or(self.started))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, s: u64) -> Instant {
        base + Duration::from_secs(s)
    }

    #[test]
    fn startup_until_first_read_then_failsafe_after_timeout() {
        let t0 = Instant::now();
        let mut w = MeterWatch::new(Duration::from_secs(10), t0);
        assert_eq!(w.observe(false, at(t0, 1)), (Mode::Startup, None));
        assert_eq!(
            w.observe(false, at(t0, 10)),
            (Mode::Failsafe, Some(Transition::EnteredFailsafe))
        );
        assert_eq!(w.observe(false, at(t0, 11)), (Mode::Failsafe, None));
        assert_eq!(
            w.observe(true, at(t0, 12)),
            (Mode::Normal, Some(Transition::LeftFailsafe))
        );
    }

    #[test]
    fn holding_within_timeout_then_failsafe_once() {
        let t0 = Instant::now();
        let mut w = MeterWatch::new(Duration::from_secs(10), t0);
        assert_eq!(w.observe(true, at(t0, 0)), (Mode::Normal, None));
        assert_eq!(w.observe(false, at(t0, 5)), (Mode::Holding, None));
        assert_eq!(w.observe(false, at(t0, 9)), (Mode::Holding, None));
        assert_eq!(
            w.observe(false, at(t0, 10)),
            (Mode::Failsafe, Some(Transition::EnteredFailsafe))
        );
        assert!(w.in_failsafe());
        assert_eq!(w.observe(true, at(t0, 20)).0, Mode::Normal);
        assert!(!w.in_failsafe());
    }
}
