//! The one place wall-clock time comes from. It follows `tokio::time`, so a paused test clock
//! or the simulator's virtual clock moves it too; or it follows a source of its own, such as
//! a simulated site that runs faster than real time (`evsite demo`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Where a following clock reads the time.
pub type TimeSource = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct Clock {
    wall_at_start: DateTime<Utc>,
    start: Instant,
    follow: Option<TimeSource>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("wall_at_start", &self.wall_at_start)
            .field("follows_a_source", &self.follow.is_some())
            .finish()
    }
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
            follow: None,
        }
    }

    /// A clock that reads `source`, which must never go backwards; it starts at what
    /// `source` reads now.
    pub fn following(source: TimeSource) -> Self {
        Clock {
            wall_at_start: source(),
            start: Instant::now(),
            follow: Some(source),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.follow {
            Some(source) => source().max(self.wall_at_start),
            None => {
                let elapsed = Instant::now().saturating_duration_since(self.start);
                self.wall_at_start + chrono::Duration::from_std(elapsed).unwrap_or_default()
            }
        }
    }

    /// Seconds since the clock started (monotonic).
    pub fn elapsed_s(&self) -> f64 {
        match &self.follow {
            Some(_) => (self.now() - self.wall_at_start)
                .to_std()
                .unwrap_or_default()
                .as_secs_f64(),
            None => Instant::now()
                .saturating_duration_since(self.start)
                .as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_following_clock_reads_its_source_and_never_goes_back() {
        let t0: DateTime<Utc> = "2026-12-03T17:00:00Z".parse().unwrap();
        let now = Arc::new(Mutex::new(t0));
        let src = now.clone();
        let clock = Clock::following(Arc::new(move || *src.lock().unwrap()));
        assert_eq!(clock.now(), t0);
        *now.lock().unwrap() = t0 + chrono::Duration::seconds(90);
        assert_eq!(clock.now(), t0 + chrono::Duration::seconds(90));
        assert!((clock.elapsed_s() - 90.0).abs() < 1e-9);
        *now.lock().unwrap() = t0 - chrono::Duration::seconds(5);
        assert_eq!(clock.now(), t0);
        assert_eq!(clock.elapsed_s(), 0.0);
    }
}
