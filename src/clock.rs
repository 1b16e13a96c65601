//! The one place wall-clock time comes from. It follows `tokio::time`, so a paused test clock
//! or the simulator's virtual clock moves it too.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_at_start: DateTime<Utc>,
    start: Instant,
}

impl Clock {
    /// A clock reading the system time now.
    pub fn system() -> Self {
        Clock::starting_at(Utc::now())
    }

    /// A clock that reads `wall` at this instant and moves with `tokio::time`.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Clock {
            wall_at_start: wall,
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().saturating_duration_since(self.start);
        self.wall_at_start + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    /// Seconds since the clock started (monotonic).
    pub fn elapsed_s(&self) -> f64 {
        Instant::now()
            .saturating_duration_since(self.start)
            .as_secs_f64()
    }
}
