//! What the API keeps of the cycles it sees: when the last one came (for `/healthz`), the
//! cycle-duration histogram (for `/metrics`) and an hour of grid current (for the page's
//! chart). A task follows the site's watch channel; it sees nearly every cycle (a value the
//! watch replaced before the task woke is not counted) and never holds the channel.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::control::record::CycleRecord;
use crate::site::SiteState;

/// Upper bounds (seconds) of the cycle-duration histogram's buckets.
pub const CYCLE_BUCKETS_S: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// How much grid history the chart gets, in the site's time.
pub const GRID_SPAN: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// One chart point per this much site time: 360 points an hour.
pub const GRID_STEP: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// One point of the grid chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GridPoint {
    pub at: DateTime<Utc>,
    pub current_a: [Option<f64>; 3],
    pub limit_a: f64,
}

/// The cycle-duration histogram: counts per bucket (not cumulative), sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub counts: [u64; CYCLE_BUCKETS_S.len()],
    /// Observations above the last bound.
    pub over: u64,
    pub sum_s: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        match CYCLE_BUCKETS_S.iter().position(|b| seconds <= *b) {
            Some(i) => self.counts[i] += 1,
            None => self.over += 1,
        }
        self.sum_s += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Inner {
    last_cycle: Option<Instant>,
    last_seq: u64,
    cycles: Histogram,
    grid: VecDeque<GridPoint>,
}

#[derive(Debug)]
pub struct Observed {
    interval: Duration,
    inner: Mutex<Inner>,
}

impl Observed {
    pub fn new(interval: Duration) -> Self {
        Observed {
            interval,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The control interval, for clients that ask how often states come.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes in one cycle seen at `now`.
    pub fn record(&self, cycle: &CycleRecord, now: Instant) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if cycle.seq <= inner.last_seq && inner.last_cycle.is_some() {
            return;
        }
        inner.last_seq = cycle.seq;
        inner.last_cycle = Some(now);
        inner.cycles.observe(cycle.cycle_ms / 1000.0);
        let due = inner
            .grid
            .back()
            .is_none_or(|p| cycle.at - p.at >= GRID_STEP || cycle.at < p.at);
        if due {
            let current_a = cycle.grid.map_or([None; 3], |g| g.current_a);
            inner.grid.push_back(GridPoint {
                at: cycle.at,
                current_a,
                limit_a: cycle.limit.limit_a,
            });
            while inner
                .grid
                .front()
                .is_some_and(|p| cycle.at - p.at > GRID_SPAN || p.at > cycle.at)
            {
                inner.grid.pop_front();
            }
        }
    }

    /// How long ago the last cycle was seen (None: none yet).
    pub fn since_last_cycle(&self, now: Instant) -> Option<Duration> {
        let inner = self.inner.lock().ok()?;
        inner.last_cycle.map(|t| now.saturating_duration_since(t))
    }

    pub fn histogram(&self) -> Histogram {
        self.inner
            .lock()
            .map(|i| i.cycles.clone())
            .unwrap_or_default()
    }

    pub fn grid(&self) -> Vec<GridPoint> {
        self.inner
            .lock()
            .map(|i| i.grid.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Follows `state` until its sender is gone.
pub async fn follow(mut state: watch::Receiver<Arc<SiteState>>, observed: Arc<Observed>) {
    loop {
        // Clone the Arc out and let go of the channel at once: the loop's send waits for no
        // reader that way.
        let current = state.borrow_and_update().clone();
        if let Some(c) = &current.cycle {
            observed.record(c, Instant::now());
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(seq: u64, at_s: i64, ms: f64) -> CycleRecord {
        let mut c = CycleRecord::blank(
            DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::seconds(at_s),
            32.0,
        );
        c.seq = seq;
        c.cycle_ms = ms;
        c
    }

    #[test]
    fn histogram_buckets_by_upper_bound() {
        let mut h = Histogram::default();
        for s in [0.001, 0.005, 0.02, 7.0] {
            h.observe(s);
        }
        assert_eq!(h.counts[0], 2);
        assert_eq!(h.counts[2], 1);
        assert_eq!(h.over, 1);
        assert_eq!(h.count, 4);
    }

    #[test]
    fn grid_keeps_an_hour_at_its_step() {
        let o = Observed::new(Duration::from_secs(1));
        let now = Instant::now();
        for s in 0..7200 {
            o.record(&cycle(s as u64 + 1, s, 3.0), now);
        }
        let grid = o.grid();
        assert_eq!(grid.len(), 361, "an hour of 10 s steps, both ends");
        assert_eq!(grid.last().map(|p| p.at.timestamp()), Some(7190));
        assert_eq!(o.histogram().count, 7200);
    }

    #[test]
    fn a_repeated_cycle_counts_once() {
        let o = Observed::new(Duration::from_secs(1));
        let now = Instant::now();
        o.record(&cycle(5, 0, 3.0), now);
        o.record(&cycle(5, 0, 3.0), now);
        assert_eq!(o.histogram().count, 1);
        assert!(o.since_last_cycle(now).is_some());
    }
}
