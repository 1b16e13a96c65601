//! The session part of the scorecard: the controller's recorded sessions against what the
//! simulated vehicles really took, and its end-time estimates against when charging ended.

use chrono::{DateTime, TimeDelta, Utc};

use evsite::sessions::machine::SessionRecord;
use evsite::sessions::tracker::TrackerOutput;
use evsite::simulator::site::VehicleTruth;
use evsite::site::SiteEvent;

/// A recorded session may start this long after its vehicle arrived (a cycle, a read).
const MATCH_WINDOW_S: f64 = 10.0;

/// Whether recorded session `r` is vehicle `v`'s: on its charger, plugged in when it arrived.
fn matches(r: &SessionRecord, v: &VehicleTruth, start: DateTime<Utc>) -> bool {
    let arrive = start + TimeDelta::milliseconds((v.arrive_s * 1000.0) as i64);
    let after_s = (r.plugged_in_at - arrive).num_milliseconds() as f64 / 1000.0;
    r.charger == v.charger && (-1.0..=MATCH_WINDOW_S).contains(&after_s)
}

/// Collects what the session tracker records during a run.
#[derive(Default)]
pub struct SessionLog {
    finished: Vec<SessionRecord>,
    /// Every estimate made while charging.
    estimates: Vec<Estimate>,
}

/// An end-time estimate as a session update carried it.
struct Estimate {
    session_id: String,
    made: DateTime<Utc>,
    at: DateTime<Utc>,
    /// The range around it (absent: the estimate's own time).
    earliest: DateTime<Utc>,
    latest: DateTime<Utc>,
}

/// The session fields of the scorecard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionScore {
    pub sessions: usize,
    pub energy_error_wh: f64,
    pub end_time_mae_s: Option<f64>,
    /// The share of those estimates whose range held the recorded end.
    pub end_time_in_range: Option<f64>,
}

impl SessionLog {
    /// Takes one event of the site's pipeline, as the daemon's recorder does.
    pub fn observe(&mut self, event: SiteEvent) {
        let SiteEvent::Session(u) = event else {
            return;
        };
        let r = &u.record;
        if let (Some(est), None, Some(made)) =
            (r.estimated_end_at, r.charging_completed_at, r.updated_at)
        {
            self.estimates.push(Estimate {
                session_id: r.session_id.clone(),
                made,
                at: est,
                earliest: r.estimated_end_earliest.unwrap_or(est),
                latest: r.estimated_end_latest.unwrap_or(est),
            });
        }
        if r.ended_at.is_some() {
            self.finished.push(u.record);
        }
    }

    /// Takes a session tracker's outputs (a tracker run beside the site's, on the same cycles).
    pub fn observe_tracker(&mut self, out: Vec<TrackerOutput>) {
        for o in out {
            if let TrackerOutput::Session(u) = o {
                self.observe(SiteEvent::Session(u));
            }
        }
    }

    /// The mean absolute error of the end-time estimates made while charging, over the
    /// sessions of returning vehicles only: those whose token was seen on an earlier visit.
    /// `None` when there are none (or no estimate was made for them).
    pub fn recurring_end_time_mae_s(
        &self,
        start: DateTime<Utc>,
        active: &[SessionRecord],
        truth: &[VehicleTruth],
        duration_s: f64,
    ) -> Option<f64> {
        let mut all: Vec<&SessionRecord> = self.finished.iter().collect();
        all.extend(active.iter());
        let mut visits: Vec<&VehicleTruth> =
            truth.iter().filter(|v| v.arrive_s < duration_s).collect();
        visits.sort_by(|a, b| a.arrive_s.total_cmp(&b.arrive_s));
        let mut seen = std::collections::HashSet::new();
        let mut used = vec![false; all.len()];
        let mut ids = Vec::new();
        for v in visits {
            let found = all
                .iter()
                .enumerate()
                .position(|(i, r)| !used[i] && matches(r, v, start));
            let returning = v.token.as_ref().is_some_and(|t| !seen.insert(t.clone()));
            if let Some(i) = found {
                used[i] = true;
                if returning {
                    ids.push(all[i].session_id.as_str());
                }
            }
        }
        let errs: Vec<f64> = self
            .estimates
            .iter()
            .filter(|e| ids.contains(&e.session_id.as_str()))
            .filter_map(|e| {
                let done = all
                    .iter()
                    .find(|r| r.session_id == e.session_id)?
                    .charging_completed_at?;
                Some((e.at - done).num_seconds().abs() as f64)
            })
            .collect();
        (!errs.is_empty()).then(|| errs.iter().sum::<f64>() / errs.len() as f64)
    }

    /// Scores every session, finished or still running, against the vehicles' truth.
    /// A vehicle with no recorded session counts its whole energy as the error.
    /// `active` are the sessions still running at the end.
    pub fn score(
        &self,
        start: DateTime<Utc>,
        active: &[SessionRecord],
        truth: &[VehicleTruth],
        duration_s: f64,
    ) -> SessionScore {
        let mut all: Vec<&SessionRecord> = self.finished.iter().collect();
        all.extend(active.iter());
        let mut error: f64 = 0.0;
        let mut used = vec![false; all.len()];
        for v in truth.iter().filter(|v| v.arrive_s < duration_s) {
            let arrive = start + TimeDelta::milliseconds((v.arrive_s * 1000.0) as i64);
            let found = all.iter().enumerate().position(|(i, r)| {
                !used[i]
                    && r.charger == v.charger
                    && (r.plugged_in_at - arrive).num_milliseconds() as f64 / 1000.0 >= -1.0
                    && ((r.plugged_in_at - arrive).num_milliseconds() as f64 / 1000.0)
                        <= MATCH_WINDOW_S
            });
            match found {
                Some(i) => {
                    used[i] = true;
                    if std::env::var_os("EVSITE_SIM_DEBUG").is_some() {
                        eprintln!(
                            "{:>8} session {}: recorded {} Wh, vehicle took {:.1} Wh ({:?})",
                            v.charger,
                            all[i].session_id,
                            all[i].energy_wh,
                            v.energy_wh,
                            all[i].energy_notes
                        );
                    }
                    error = error.max((all[i].energy_wh as f64 - v.energy_wh).abs());
                }
                None => error = error.max(v.energy_wh),
            }
        }
        let mut errs = Vec::new();
        let mut inside = 0usize;
        for e in &self.estimates {
            let done = all
                .iter()
                .find(|r| r.session_id == e.session_id)
                .and_then(|r| r.charging_completed_at);
            if let Some(done) = done {
                if std::env::var_os("EVSITE_SIM_DEBUG").is_some() {
                    eprintln!(
                        "EST {} left {} est {:+} lo {:+} hi {:+}",
                        e.session_id,
                        (done - e.made).num_seconds(),
                        (e.at - done).num_seconds(),
                        (e.earliest - done).num_seconds(),
                        (e.latest - done).num_seconds()
                    );
                }
                errs.push((e.at - done).num_seconds().abs() as f64);
                if e.earliest <= done && done <= e.latest {
                    inside += 1;
                }
            }
        }
        SessionScore {
            sessions: all.len(),
            energy_error_wh: error,
            end_time_mae_s: (!errs.is_empty())
                .then(|| errs.iter().sum::<f64>() / errs.len() as f64),
            end_time_in_range: (!errs.is_empty()).then(|| inside as f64 / errs.len() as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use evsite::sessions::tracker::{SessionChange, SessionUpdate};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0)
            .single()
            .unwrap_or_default()
            + TimeDelta::seconds(s)
    }

    fn update(r: &SessionRecord) -> SiteEvent {
        SiteEvent::Session(Box::new(SessionUpdate {
            change: SessionChange::Updated,
            record: r.clone(),
            new_samples: Vec::new(),
            publish: false,
            restamped: false,
        }))
    }

    /// Two estimates of a session that completed at 3,600 s: one 600 s early with a range
    /// that holds the end, one 300 s late with a range that does not.
    #[test]
    fn the_end_time_error_and_the_share_of_ranges_holding_it_are_scored() {
        let mut log = SessionLog::default();
        let mut r = SessionRecord::new("s-1".into(), "cp-1".into(), t(0));
        r.charging_started_at = Some(t(10));
        r.updated_at = Some(t(600));
        r.estimated_end_at = Some(t(3_000));
        r.estimated_end_earliest = Some(t(2_000));
        r.estimated_end_latest = Some(t(4_000));
        log.observe(update(&r));
        r.updated_at = Some(t(1_200));
        r.estimated_end_at = Some(t(3_900));
        r.estimated_end_earliest = Some(t(3_800));
        r.estimated_end_latest = Some(t(4_000));
        log.observe(update(&r));
        r.charging_completed_at = Some(t(3_600));
        r.ended_at = Some(t(4_000));
        r.energy_wh = 10_000;
        log.observe(update(&r));
        let score = log.score(t(0), &[], &[], 4_000.0);
        assert_eq!(score.end_time_mae_s, Some(450.0));
        assert_eq!(score.end_time_in_range, Some(0.5));
        let again = log.score(t(0), &[], &[], 4_000.0);
        assert_eq!(again, score, "the same log, the same figures");
    }

    fn visit(charger: &str, arrive_s: f64, token: Option<&str>) -> VehicleTruth {
        VehicleTruth {
            charger: charger.into(),
            arrive_s,
            depart_s: arrive_s + 3_000.0,
            plugged: false,
            complete: true,
            soc: 0.9,
            energy_wh: 0.0,
            token: token.map(str::to_string),
        }
    }

    /// Only the sessions of a token seen on an earlier visit count: the first visit of a
    /// card, a card seen once and a visit with no card do not.
    #[test]
    fn the_recurring_end_time_error_counts_returning_vehicles_only() {
        let mut log = SessionLog::default();
        // (session, charger, plugged at, estimate's error in s)
        let sessions = [
            ("s-1", "cp-1", 0, 900),
            ("s-2", "cp-2", 100, 700),
            ("s-3", "cp-1", 5_000, 120),
            ("s-4", "cp-2", 5_000, -60),
            ("s-5", "cp-1", 10_000, 500),
        ];
        for (id, charger, at, err) in sessions {
            let mut r = SessionRecord::new(id.into(), charger.into(), t(at));
            r.charging_started_at = Some(t(at + 10));
            r.updated_at = Some(t(at + 600));
            r.estimated_end_at = Some(t(at + 2_000 + err));
            log.observe(update(&r));
            r.charging_completed_at = Some(t(at + 2_000));
            r.ended_at = Some(t(at + 2_500));
            log.observe(update(&r));
        }
        let truth = [
            visit("cp-1", 0.0, Some("A")),
            visit("cp-2", 100.0, Some("B")),
            visit("cp-1", 5_000.0, Some("A")),
            visit("cp-2", 5_000.0, None),
            visit("cp-1", 10_000.0, Some("A")),
        ];
        let mae = log.recurring_end_time_mae_s(t(0), &[], &truth, 20_000.0);
        assert_eq!(mae, Some(310.0), "s-3 and s-5: (120 + 500) / 2");
        assert_eq!(
            log.recurring_end_time_mae_s(t(0), &[], &truth, 20_000.0),
            mae,
            "the same log, the same figure"
        );
        let strangers = [visit("cp-1", 0.0, Some("A")), visit("cp-2", 100.0, None)];
        assert_eq!(
            log.recurring_end_time_mae_s(t(0), &[], &strangers, 20_000.0),
            None
        );
    }
}
