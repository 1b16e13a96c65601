//! Sessions far outside their charger's history (`session_outlier`, one per session): more
//! energy, or a longer stay, than this charger's last completed sessions make plausible. The
//! bound is robust: the median of the history plus `outlier_mads` scaled median absolute
//! deviations (1.4826 × MAD estimates a standard deviation), with a floor of a tenth of the
//! median so a charger whose sessions are all alike does not flag the next one that is a
//! little longer. Only the high side is judged: a short top-up or a full car is ordinary.
//! A running session is judged by its duration as soon as it passes the bound; a completed one
//! by its energy and duration.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::hold::secs;
use super::site_meter::median;
use super::{Settings, Verdict};
use crate::alerts::When;
use crate::sessions::machine::{RecordState, SessionRecord};

/// 1.4826 × MAD estimates the standard deviation of normally distributed values.
const MAD_SCALE: f64 = 1.4826;
/// The spread is at least this share of the median.
const MIN_SPREAD: f64 = 0.1;

/// A completed session as the history keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Past {
    energy_wh: f64,
    duration_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct Running {
    session_id: String,
    plugged_in_at: DateTime<Utc>,
    /// `plugged_in_at` on steady time, fixed at the first cycle that sees the session: its
    /// duration so far is measured on steady time, which a step of the wall clock does not
    /// move.
    plugged_in_steady: Option<DateTime<Utc>>,
    /// Its duration was already found an outlier (raised once per session).
    long: bool,
}

/// One charger's history and running session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionWatch {
    past: VecDeque<Past>,
    running: Option<Running>,
}

/// Median + `k` scaled MADs of `xs` (not empty).
pub fn upper_bound(xs: &[f64], k: f64) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let m = median(&sorted);
    let mut dev: Vec<f64> = sorted.iter().map(|x| (x - m).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let spread = (MAD_SCALE * median(&dev)).max(MIN_SPREAD * m.abs());
    m + k * spread
}

impl SessionWatch {
    /// A completed session (oldest first), from the store at start or as it completes.
    pub fn learn(&mut self, r: &SessionRecord, s: &Settings) {
        let Some(ended) = r.ended_at else {
            return;
        };
        if r.state != RecordState::Completed {
            return;
        }
        if self.past.len() >= s.outlier_sessions as usize {
            self.past.pop_front();
        }
        self.past.push_back(Past {
            energy_wh: r.energy_wh as f64,
            duration_s: secs(ended - r.plugged_in_at),
        });
        // A smaller window set by a reload takes effect here.
        while self.past.len() > s.outlier_sessions as usize {
            self.past.pop_front();
        }
    }

    fn bounds(&self, s: &Settings) -> Option<(f64, f64)> {
        if self.past.len() < s.outlier_min_sessions as usize {
            return None;
        }
        let energy: Vec<f64> = self.past.iter().map(|p| p.energy_wh).collect();
        let duration: Vec<f64> = self.past.iter().map(|p| p.duration_s).collect();
        Some((
            upper_bound(&energy, s.outlier_mads),
            upper_bound(&duration, s.outlier_mads),
        ))
    }

    /// A session update of this charger: what it says of the session, judged against the
    /// history before it (a completed session then joins the history).
    pub fn session(&mut self, r: &SessionRecord, s: &Settings) -> Vec<Verdict> {
        if r.state == RecordState::Active {
            if self
                .running
                .as_ref()
                .is_none_or(|x| x.session_id != r.session_id)
            {
                self.running = Some(Running {
                    session_id: r.session_id.clone(),
                    plugged_in_at: r.plugged_in_at,
                    plugged_in_steady: None,
                    long: false,
                });
            }
            return Vec::new();
        }
        let running = self.running.take().filter(|x| x.session_id == r.session_id);
        let mut out = Vec::new();
        if let (Some((energy_max, duration_max)), Some(ended), RecordState::Completed) =
            (self.bounds(s), r.ended_at, r.state)
        {
            let energy = r.energy_wh as f64;
            if energy > energy_max {
                out.push(Verdict::On(format!(
                    "{}: session {} delivered {energy:.0} Wh, above the {energy_max:.0} Wh its recent sessions make plausible",
                    r.charger, r.session_id
                )));
            }
            let duration = secs(ended - r.plugged_in_at);
            if duration > duration_max && !running.is_some_and(|x| x.long) {
                out.push(long(&r.charger, &r.session_id, duration, duration_max));
            }
        }
        self.learn(r, s);
        out
    }

    /// A cycle at `now`: the running session's duration so far against the bound.
    pub fn tick(&mut self, charger: &str, now: When, s: &Settings) -> Option<Verdict> {
        let bounds = self.bounds(s);
        let run = self.running.as_mut().filter(|x| !x.long)?;
        let start = *run
            .plugged_in_steady
            .get_or_insert(run.plugged_in_at + (now.steady - now.at));
        let (_, duration_max) = bounds?;
        let duration = secs(now.steady - start);
        if duration <= duration_max {
            return None;
        }
        run.long = true;
        Some(long(charger, &run.session_id, duration, duration_max))
    }
}

fn long(charger: &str, session_id: &str, duration_s: f64, max_s: f64) -> Verdict {
    Verdict::On(format!(
        "{charger}: session {session_id} has lasted {:.1} h, beyond the {:.1} h its recent sessions make plausible",
        duration_s / 3600.0,
        max_s / 3600.0
    ))
}

#[cfg(test)]
#[path = "outlier_tests.rs"]
mod tests;
