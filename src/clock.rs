//! The one place wall-clock time comes from, in three kinds:
//!
//! - **live** ([`Clock::system`], [`Clock::live`]): reads the system's wall clock at every
//!   call, steps included, and compares it with monotonic time to see steps (a controller
//!   without a real-time clock starts on a stale time that NTP steps later). Steps are logged
//!   once, counted, and handed to the control loop once ([`Clock::take_view`]), which raises
//!   `clock_stepped` and moves what it keeps in wall time by the step. Whether the time can
//!   be trusted yet is set by [`trust::watch`].
//! - **ticking** ([`Clock::starting_at`]): a start time plus `tokio::time`, so a paused test
//!   clock or the simulator's virtual clock moves it; always trusted, never steps.
//! - **following** ([`Clock::following`]): reads a source of its own, such as a simulated site
//!   that runs faster than real time (`evsite demo`); always trusted, never steps.
//!
//! Durations, intervals, holds and rates come from monotonic time (`tokio::time::Instant`),
//! never from differences of wall time.

pub mod trust;

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use trust::{TrustSettings, TrustSource};

/// Where a following or live clock reads the time.
pub type TimeSource = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A jump of the wall clock against monotonic time larger than this is a step. NTP slews
/// smaller errors slowly, and a loaded machine can be late reading both clocks by a fraction
/// of this.
pub const STEP_THRESHOLD: TimeDelta = TimeDelta::seconds(5);

/// How long the time may stay untrusted before `clock_unsynced` is raised: the boot-time wait
/// for NTP on a connected site is well within it.
pub const UNSYNCED_ALERT_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// The clock as one control cycle sees it (in the cycle record, `/api/state`, `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockView {
    /// The wall time can be trusted (see [`trust`]).
    pub trusted: bool,
    /// What vouched for it (None while untrusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_by: Option<TrustSource>,
    /// The wall clock stepped since the last cycle by this much, in ms (+: forward).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_ms: Option<i64>,
    /// Steps seen since the daemon started.
    pub steps: u64,
    /// Seconds the time has been untrusted since the daemon started (0 once trusted).
    pub untrusted_s: u64,
}

impl Default for ClockView {
    fn default() -> Self {
        ClockView {
            trusted: true,
            trusted_by: None,
            step_ms: None,
            steps: 0,
            untrusted_s: 0,
        }
    }
}

impl ClockView {
    /// The step of this cycle.
    pub fn step(&self) -> Option<TimeDelta> {
        self.step_ms.map(TimeDelta::milliseconds)
    }

    /// The clock in one line, as the terminal views show it: `trusted (kernel)`, or
    /// `NOT SYNCHRONISED for 12 min: times are provisional`, and the steps seen.
    pub fn summary(&self) -> String {
        let mut s = match self.trusted_by {
            Some(by) if self.trusted => format!("trusted ({})", by.name()),
            _ if self.trusted => "trusted".to_string(),
            _ => format!(
                "NOT SYNCHRONISED for {} min: times are provisional",
                self.untrusted_s / 60
            ),
        };
        if self.steps > 0 {
            s.push_str(&format!(" · stepped {} time(s) since start", self.steps));
        }
        s
    }

    /// Untrusted long enough to say so (`clock_unsynced`).
    pub fn unsynced(&self) -> bool {
        !self.trusted && self.untrusted_s >= UNSYNCED_ALERT_AFTER.as_secs()
    }
}

/// Sees steps: the offset of the wall clock from monotonic time moves slowly (slew, drift) or
/// jumps (a step). Pure; the live clock feeds it every reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepWatch {
    offset: TimeDelta,
}

impl StepWatch {
    /// The offset (wall − monotonic, from a common start) read now; returns the step when it
    /// jumped by more than [`STEP_THRESHOLD`] since the last reading. Slow moves are followed,
    /// so drift never adds up to a step.
    pub fn observe(&mut self, offset: TimeDelta) -> Option<TimeDelta> {
        let moved = offset - self.offset;
        self.offset = offset;
        (moved.abs() > STEP_THRESHOLD).then_some(moved)
    }
}

#[derive(Clone)]
pub struct Clock {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Ticking {
        wall_at_start: DateTime<Utc>,
        start: Instant,
    },
    Following {
        wall_at_start: DateTime<Utc>,
        source: TimeSource,
    },
    Live(Arc<Live>),
}

struct Live {
    source: TimeSource,
    wall_at_start: DateTime<Utc>,
    start: Instant,
    state: Mutex<LiveState>,
}

#[derive(Debug, Default)]
struct LiveState {
    watch: StepWatch,
    /// Steps seen and not yet taken by the control loop.
    pending: TimeDelta,
    steps: u64,
    trusted_by: Option<TrustSource>,
}

impl Live {
    fn state(&self) -> MutexGuard<'_, LiveState> {
        // The state is a few plain values, consistent after any panic that poisoned it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> DateTime<Utc> {
        let wall = (self.source)();
        let mono = Instant::now().saturating_duration_since(self.start);
        let mono = TimeDelta::from_std(mono).unwrap_or(TimeDelta::MAX);
        let offset = wall - self.wall_at_start - mono;
        let mut st = self.state();
        if let Some(step) = st.watch.observe(offset) {
            st.pending += step;
            st.steps += 1;
            tracing::warn!(
                step_s = step.num_milliseconds() as f64 / 1000.0,
                now = %wall,
                "the system clock was stepped: stamps follow it from now on, durations are unaffected"
            );
        }
        wall
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.mode {
            Mode::Ticking { .. } => "ticking",
            Mode::Following { .. } => "following",
            Mode::Live(_) => "live",
        };
        f.debug_struct("Clock").field("kind", &kind).finish()
    }
}

impl Clock {
    /// The system's wall clock, read live (see the module docs).
    pub fn system() -> Self {
        Clock::live(Arc::new(Utc::now))
    }

    /// A live clock reading `source` as the system's wall clock (tests step it).
    pub fn live(source: TimeSource) -> Self {
        let wall_at_start = source();
        Clock {
            mode: Mode::Live(Arc::new(Live {
                source,
                wall_at_start,
                start: Instant::now(),
                state: Mutex::new(LiveState::default()),
            })),
        }
    }

    /// A clock that reads `wall` at this instant and moves with `tokio::time`.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Clock {
            mode: Mode::Ticking {
                wall_at_start: wall,
                start: Instant::now(),
            },
        }
    }

    /// A clock that reads `source`, which must never go backwards; it starts at what
    /// `source` reads now.
    pub fn following(source: TimeSource) -> Self {
        Clock {
            mode: Mode::Following {
                wall_at_start: source(),
                source,
            },
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.mode {
            Mode::Following {
                wall_at_start,
                source,
            } => source().max(*wall_at_start),
            Mode::Ticking {
                wall_at_start,
                start,
            } => {
                let elapsed = Instant::now().saturating_duration_since(*start);
                *wall_at_start + TimeDelta::from_std(elapsed).unwrap_or_default()
            }
            Mode::Live(live) => live.now(),
        }
    }

    /// The wall time now, and beside it a time for durations only: continuous across steps
    /// (the wall time at start plus monotonic time since), read at the same moment. A clock
    /// that never steps (ticking, following) gives the same time twice.
    pub fn now_and_steady(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        match &self.mode {
            Mode::Live(live) => {
                let wall = live.now();
                let mono = Instant::now().saturating_duration_since(live.start);
                let steady = live.wall_at_start + TimeDelta::from_std(mono).unwrap_or_default();
                (wall, steady)
            }
            _ => {
                let now = self.now();
                (now, now)
            }
        }
    }

    /// Seconds since the clock started (monotonic).
    pub fn elapsed_s(&self) -> f64 {
        match &self.mode {
            Mode::Following { wall_at_start, .. } => (self.now() - *wall_at_start)
                .to_std()
                .unwrap_or_default()
                .as_secs_f64(),
            Mode::Ticking { start, .. } => Instant::now()
                .saturating_duration_since(*start)
                .as_secs_f64(),
            Mode::Live(live) => Instant::now()
                .saturating_duration_since(live.start)
                .as_secs_f64(),
        }
    }

    /// The clock for one control cycle: reads the wall clock, and takes the steps seen since
    /// the last call (the control loop calls it once a cycle, so each step shows once).
    pub fn take_view(&self) -> ClockView {
        let Mode::Live(live) = &self.mode else {
            return ClockView::default();
        };
        live.now();
        let elapsed = self.elapsed_s() as u64;
        let mut st = live.state();
        let step = std::mem::take(&mut st.pending);
        ClockView {
            trusted: st.trusted_by.is_some(),
            trusted_by: st.trusted_by,
            step_ms: (step != TimeDelta::zero()).then(|| step.num_milliseconds()),
            steps: st.steps,
            untrusted_s: if st.trusted_by.is_some() { 0 } else { elapsed },
        }
    }

    /// Whether the wall time can be trusted now (ticking and following clocks always).
    pub fn trusted(&self) -> bool {
        match &self.mode {
            Mode::Live(live) => live.state().trusted_by.is_some(),
            _ => true,
        }
    }

    /// The time is trusted from now on, on `source`'s word (a live clock only).
    pub fn set_trusted(&self, source: TrustSource) {
        if let Mode::Live(live) = &self.mode {
            live.state().trusted_by.get_or_insert(source);
        }
    }

    /// A live clock (the system's, or a test's steppable one).
    pub fn is_live(&self) -> bool {
        matches!(self.mode, Mode::Live(_))
    }
}

#[cfg(test)]
mod tests;
