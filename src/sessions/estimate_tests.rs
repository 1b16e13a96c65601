//! The end-time estimator on synthetic charging curves: tapers of both shapes, vehicles held
//! down by load management, flapping offers, and the cases where no estimate is the answer.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;

/// Three phases at 230 V.
const W_PER_A: f64 = 690.0;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 17, 0, 0).unwrap()
}

/// A vehicle on a 1 s loop: the charger offers `offer(t)`, the vehicle takes the lesser of the
/// offer and its own limit `limit(t, energy)`, and stops for good when `stop(limit)` says so.
/// Feeds `est` up to `until_s` (or the stop) and returns when the vehicle stopped, if it did.
struct Run {
    t: f64,
    energy_wh: f64,
    stopped_at: Option<f64>,
}

impl Run {
    fn new() -> Self {
        Run {
            t: 0.0,
            energy_wh: 0.0,
            stopped_at: None,
        }
    }

    fn go(
        &mut self,
        est: &mut EndEstimator,
        until_s: f64,
        offer: impl Fn(f64) -> f64,
        limit: impl Fn(f64, f64) -> f64,
        stop_a: f64,
    ) {
        while self.t < until_s {
            let o = offer(self.t);
            let own = limit(self.t, self.energy_wh);
            if self.stopped_at.is_none() && own <= stop_a {
                self.stopped_at = Some(self.t);
            }
            let i = if self.stopped_at.is_some() {
                0.0
            } else {
                o.min(own)
            };
            est.observe(&Observation {
                at: at(self.t),
                offered_a: Some(o),
                current_a: i,
                power_w: i * W_PER_A,
                energy_wh: self.energy_wh,
            });
            self.energy_wh += i * W_PER_A / 3600.0;
            self.t += 1.0;
        }
    }
}

fn at(t: f64) -> DateTime<Utc> {
    t0() + TimeDelta::milliseconds((t * 1000.0) as i64)
}

fn secs_from_start(d: DateTime<Utc>) -> f64 {
    (d - t0()).num_milliseconds() as f64 / 1000.0
}

/// A battery whose current falls linearly with energy from 32 A after 40 kWh towards 0 at
/// 46 kWh: an exponential decay in time, as real cars taper.
fn exponential_limit(_t: f64, e: f64) -> f64 {
    if e < 40_000.0 {
        32.0
    } else {
        32.0 * (46_000.0 - e) / 6_000.0
    }
}

#[test]
fn exponential_taper_is_found_and_its_end_predicted() {
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    let offer = |_t: f64| 32.0;
    // Well into the taper, not yet at its end.
    let taper_from = 40_000.0 / (32.0 * W_PER_A) * 3600.0;
    run.go(&mut est, taper_from + 600.0, offer, exponential_limit, 2.0);
    let taper = est.taper().expect("a clear taper");
    assert!(
        matches!(taper.decline, Decline::Exponential { .. }),
        "{taper:?}"
    );
    let now = at(run.t);
    let predicted = est.estimate(now, Some(15_000.0), 2.0).expect("an estimate");
    run.go(&mut est, run.t + 20_000.0, offer, exponential_limit, 2.0);
    let truth = run.stopped_at.expect("the vehicle stopped");
    let err = (secs_from_start(predicted) - truth).abs();
    let horizon = truth - secs_from_start(now);
    assert!(horizon > 1500.0, "a long way to go: {horizon} s");
    assert!(err < 0.05 * horizon, "error {err} s over {horizon} s");
}

#[test]
fn linear_taper_in_time_is_fitted_as_such() {
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    // Full 30 A for 20 minutes, then falling 1 A every 2 minutes; stops at 3 A.
    let limit = |t: f64, _e: f64| {
        if t < 1200.0 {
            30.0
        } else {
            30.0 - (t - 1200.0) / 120.0
        }
    };
    run.go(&mut est, 2400.0, |_| 32.0, limit, 3.0);
    let taper = est.taper().expect("a clear taper");
    assert!(matches!(taper.decline, Decline::Linear { .. }), "{taper:?}");
    // No history: the taper alone.
    let predicted = est.estimate(at(run.t), None, 3.0).expect("an estimate");
    let truth = 1200.0 + 27.0 * 120.0;
    let err = (secs_from_start(predicted) - truth).abs();
    assert!(
        err < 60.0,
        "predicted {} s, truth {truth} s",
        secs_from_start(predicted)
    );
}

#[test]
fn following_a_falling_offer_is_no_taper() {
    // Load management lowers the offer from 32 A to 8 A as other cars arrive; the vehicle
    // takes all of it all along.
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    let offer = |t: f64| (32.0 - t / 60.0).max(8.0);
    run.go(&mut est, 2400.0, offer, |_, _| 32.0, 1.0);
    assert_eq!(est.taper(), None);
    // History-based: 20 kWh expected, ~15.3 kWh taken, the rest at the 8 A offered now.
    let taken = run.energy_wh;
    let predicted = est
        .estimate(at(run.t), Some(20_000.0), 2.0)
        .expect("an estimate");
    let expected_s = (20_000.0 - taken) / (8.0 * W_PER_A) * 3600.0;
    let got = secs_from_start(predicted) - run.t;
    assert!(
        (got - expected_s).abs() < 0.02 * expected_s,
        "{got} vs {expected_s}"
    );
}

#[test]
fn a_vehicle_at_its_own_flat_maximum_is_no_taper() {
    // A 16 A car on a 32 A offer: clearly below the offer, but not falling.
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    run.go(&mut est, 1800.0, |_| 32.0, |_, _| 16.0, 1.0);
    assert_eq!(est.taper(), None);
    let predicted = est
        .estimate(at(run.t), Some(20_000.0), 2.0)
        .expect("an estimate");
    let expected_s = (20_000.0 - run.energy_wh) / (16.0 * W_PER_A) * 3600.0;
    let got = secs_from_start(predicted) - run.t;
    assert!(
        (got - expected_s).abs() < 0.02 * expected_s,
        "at its own 16 A, not the 32 A offered: {got} vs {expected_s}"
    );
}

#[test]
fn flapping_offer_below_the_limit_is_no_taper() {
    // The offer jumps between 10 and 20 A every 5 s; the vehicle takes all of it.
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    let offer = |t: f64| if (t as i64 / 5) % 2 == 0 { 10.0 } else { 20.0 };
    run.go(&mut est, 1800.0, offer, |_, _| 32.0, 1.0);
    assert_eq!(est.taper(), None);
}

#[test]
fn flapping_offer_over_a_taper_still_finds_it() {
    // The offer alternates between 16 and 32 A every 30 s while the vehicle tapers from
    // 30 A: at 32 A it shows its limit, at 16 A it follows (below its limit: no contradiction).
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    let offer = |t: f64| if (t as i64 / 30) % 2 == 0 { 16.0 } else { 32.0 };
    let limit = |_t: f64, e: f64| 30.0 * (12_000.0 - e) / 12_000.0;
    run.go(&mut est, 1500.0, offer, limit, 3.0);
    assert!(est.taper().is_some(), "taper hidden by the flapping offer");
    let now = at(run.t);
    let predicted = est.estimate(now, Some(15_000.0), 3.0).expect("an estimate");
    run.go(&mut est, 30_000.0, offer, limit, 3.0);
    let truth = run.stopped_at.expect("stopped");
    let horizon = truth - secs_from_start(now);
    let err = (secs_from_start(predicted) - truth).abs();
    assert!(err < 0.1 * horizon, "error {err} s over {horizon} s");
}

#[test]
fn taking_more_than_the_taper_allows_cancels_it() {
    // A temporary limit (a car's thermal derating, say) that looks like a taper, then lifts.
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    let limit = |t: f64, _e: f64| {
        if (600.0..1200.0).contains(&t) {
            28.0 - (t - 600.0) / 60.0
        } else {
            32.0
        }
    };
    run.go(&mut est, 1190.0, |_| 32.0, limit, 1.0);
    assert!(est.taper().is_some(), "looked like a taper");
    run.go(&mut est, 1300.0, |_| 32.0, limit, 1.0);
    assert_eq!(est.taper(), None, "the vehicle took 32 A again");
}

#[test]
fn a_rising_limit_is_no_taper() {
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    run.go(&mut est, 1800.0, |_| 32.0, |t, _| 10.0 + t / 200.0, 1.0);
    assert_eq!(est.taper(), None);
}

#[test]
fn no_draw_or_no_offer_gives_no_estimate() {
    let mut est = EndEstimator::new();
    assert_eq!(
        est.estimate(t0(), Some(15_000.0), 2.0),
        None,
        "nothing seen yet"
    );
    let mut run = Run::new();
    // Paused by the allocator: nothing offered, nothing drawn.
    run.go(&mut est, 600.0, |_| 0.0, |_, _| 32.0, 1.0);
    assert_eq!(est.estimate(at(run.t), Some(15_000.0), 2.0), None);
    // Offered, but the vehicle takes nothing (it has not started, or it is done).
    let mut run = Run::new();
    let mut est = EndEstimator::new();
    run.go(&mut est, 600.0, |_| 16.0, |_, _| 0.0, -1.0);
    assert_eq!(est.estimate(at(run.t), Some(15_000.0), 2.0), None);
}

#[test]
fn non_finite_readings_are_ignored() {
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    run.go(&mut est, 300.0, |_| 16.0, |_, _| 32.0, 1.0);
    let before = est.estimate(at(run.t), Some(15_000.0), 2.0);
    est.observe(&Observation {
        at: at(run.t),
        offered_a: Some(16.0),
        current_a: f64::NAN,
        power_w: f64::INFINITY,
        energy_wh: run.energy_wh,
    });
    assert!(before.is_some());
    assert_eq!(est.estimate(at(run.t), Some(15_000.0), 2.0), before);
}

#[test]
fn the_stop_point_is_the_last_taper_current() {
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    let taper_from = 40_000.0 / (32.0 * W_PER_A) * 3600.0;
    run.go(
        &mut est,
        taper_from + 2400.0,
        |_| 32.0,
        exponential_limit,
        15.0,
    );
    let stopped = run.stopped_at.expect("stopped at 15 A");
    // Up to the stop it draws about 15 A; the last taper point says so.
    let last = est.last_taper_current().expect("was tapering");
    assert!((last - 15.0).abs() < 0.5, "{last}");
    assert!(stopped < run.t);
    // Learned, the estimate right before the stop is near it.
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    run.go(&mut est, stopped - 300.0, |_| 32.0, exponential_limit, 15.0);
    let predicted = est
        .estimate(at(run.t), Some(15_000.0), 15.0)
        .expect("an estimate");
    let err = secs_from_start(predicted) - stopped;
    assert!(err.abs() < 30.0, "off by {err} s");
}

#[test]
fn expected_energy_is_the_median_of_the_sessions_that_took_more() {
    let history = [8_000.0, 12_000.0, 20_000.0, 30_000.0, 40_000.0];
    assert_eq!(expected_energy(&history, 0.0, 15_000.0), Some(20_000.0));
    // Past 12 kWh, the sessions that took less say nothing: median of 20, 30, 40 kWh.
    assert_eq!(
        expected_energy(&history, 13_000.0, 15_000.0),
        Some(30_000.0)
    );
    assert_eq!(expected_energy(&history, 45_000.0, 15_000.0), None);
    assert_eq!(expected_energy(&[], 1_000.0, 15_000.0), Some(15_000.0));
    assert_eq!(expected_energy(&[], 16_000.0, 15_000.0), None);
}

#[test]
fn past_the_expected_energy_without_taper_gives_no_estimate() {
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    run.go(&mut est, 1800.0, |_| 16.0, |_, _| 32.0, 1.0);
    assert!(run.energy_wh > 5_000.0);
    assert_eq!(est.estimate(at(run.t), Some(5_000.0), 2.0), None);
    assert_eq!(est.estimate(at(run.t), None, 2.0), None);
}

#[test]
fn history_energy_cuts_a_taper_short() {
    // Sessions here take 44 kWh: a vehicle set to stop short of full stops mid-taper.
    let mut est = EndEstimator::new();
    let mut run = Run::new();
    let taper_from = 40_000.0 / (32.0 * W_PER_A) * 3600.0;
    run.go(
        &mut est,
        taper_from + 400.0,
        |_| 32.0,
        exponential_limit,
        2.0,
    );
    let now = at(run.t);
    let to_floor = est.estimate(now, None, 2.0).expect("an estimate");
    let to_target = est.estimate(now, Some(44_000.0), 2.0).expect("an estimate");
    assert!(to_target < to_floor);
    // The limit at 44 kWh is 32 × 2/6 A; the vehicle reaches it when its current does.
    let mut truth = EndEstimator::new();
    let mut again = Run::new();
    again.go(
        &mut truth,
        20_000.0,
        |_| 32.0,
        exponential_limit,
        32.0 * 2.0 / 6.0,
    );
    let stop = again.stopped_at.expect("stopped");
    let err = secs_from_start(to_target) - stop;
    assert!(err.abs() < 60.0, "off by {err} s");
}

/// Generated tapers: vehicles of 10 to 32 A whose limit falls linearly with energy from a
/// random point towards 2 A at full, each set to stop at a random current within its taper.
/// Once the taper shows, and before the site saw any vehicle stop, the range holds the stop
/// every time (it can stop any time; it cannot outlast the taper's end), and the likeliest end
/// lies within it.
#[test]
fn the_range_holds_the_end_of_generated_tapers() {
    let mut seed: u64 = 7;
    let mut next = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let outlook = Outlook {
        expected_wh: None,
        low_wh: None,
        high_wh: None,
        stop_a: None,
        stop_high_a: f64::INFINITY,
        stop_low_a: DEFAULT_STOP_A,
    };
    let mut checked = 0;
    for _ in 0..12 {
        let max_a = [10.0, 16.0, 32.0][(next() * 3.0) as usize % 3];
        let start_wh = 2_000.0 + next() * 10_000.0;
        let span_wh = 4_000.0 + next() * 12_000.0;
        let stop_a = 2.5 + next() * (max_a - 3.0);
        let limit = move |_t: f64, e: f64| {
            if e < start_wh {
                max_a
            } else {
                (max_a - (max_a - 2.0) * (e - start_wh) / span_wh).max(2.0)
            }
        };
        let mut est = EndEstimator::new();
        let mut run = Run::new();
        let reach = start_wh / (max_a * W_PER_A) * 3600.0;
        run.go(&mut est, reach + 300.0, |_| 32.0, limit, stop_a);
        if run.stopped_at.is_some() || est.taper().is_none() {
            continue;
        }
        let now = at(run.t);
        let range = est
            .estimate_range(now, &outlook)
            .expect("an estimate in a taper");
        run.go(&mut est, run.t + 40_000.0, |_| 32.0, limit, stop_a);
        let stop = at(run.stopped_at.expect("the vehicle stopped"));
        assert!(
            range.earliest <= stop && stop <= range.latest,
            "{range:?} misses {stop}"
        );
        assert!(range.earliest <= range.at && range.at <= range.latest);
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} tapers checked");
}
