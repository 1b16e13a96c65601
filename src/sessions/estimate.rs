//! When a charging vehicle will stop drawing, from what the charger shows: no state of charge,
//! only the current evsite offers, the current the vehicle takes, its power and its energy.
//!
//! The strongest signal is the taper: near full, a vehicle takes clearly less than it is
//! offered, and less and less. Batteries end in a constant-voltage phase whose current decays
//! roughly exponentially in time; an exponential decay in time is a current falling linearly
//! with the energy taken (dI/dE is constant), so the decline is fitted against delivered energy,
//! not time. That also keeps the fit right across pauses and stretches where load management
//! held the vehicle below its own limit: energy, not the clock, is what moves the battery on.
//! A second model, current falling linearly in time (I² linear in energy), is fitted beside it
//! and used when it fits the points better. The vehicle is expected to stop when the fitted
//! current reaches its stop point: by default a floor of a couple of amps, or what this site's
//! vehicles were last seen stopping at.
//!
//! Before any taper there is nothing in the current to read: the site's typical session
//! energy (its recent history) less what this session took, at the power the allocator gives
//! the vehicle now. When neither gives a sane answer (paused, no draw, a rising "taper") the
//! estimate is `None`.
//!
//! Beside the likeliest end, a range ([`EndRange`]): the earliest is where the least energy
//! the site's history allows (or the highest stop current seen after a taper) is reached, the
//! latest where the most is, or, in a taper, where the current reaches the lowest stop point.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

use crate::electric::DRAW_FLOOR_A;

/// Observations are averaged over buckets this long before fitting (s).
const BUCKET_S: i64 = 10;
/// Taper points kept for the fit (buckets): 15 minutes of tapering.
const MAX_POINTS: usize = 90;
/// Taper points needed before a decline is believed (buckets): 3 minutes.
const MIN_POINTS: usize = 18;
/// A vehicle takes "clearly less" than offered below offer − max(this, offer × FRACTION).
const LIMIT_MARGIN_A: f64 = 1.0;
const LIMIT_MARGIN_FRACTION: f64 = 0.08;
/// The newest taper point must be this recent for the taper to still count.
const TAPER_STALE: TimeDelta = TimeDelta::minutes(2);
/// A decline is real when the fitted drop over the window exceeds this (A) and twice the
/// scatter of the points about the fit.
const MIN_DROP_A: f64 = 0.5;
/// Where a vehicle is expected to stop when the site has not seen one stop yet (A): a full
/// battery's constant-voltage current ends at a few amps.
pub const DEFAULT_STOP_A: f64 = 2.0;
/// Estimates further out than this are no estimate.
const HORIZON: TimeDelta = TimeDelta::hours(24);
/// Integration steps along the fitted curve.
const STEPS: usize = 400;

/// One reading of the charger while a session is active.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub at: DateTime<Utc>,
    /// The setpoint evsite wrote (A per phase); `None` or 0 when nothing is offered.
    pub offered_a: Option<f64>,
    /// The highest phase current the vehicle takes (A).
    pub current_a: f64,
    /// Power the vehicle takes (W).
    pub power_w: f64,
    /// Energy of the session so far (Wh).
    pub energy_wh: f64,
}

/// How the vehicle's own limit falls with the energy it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decline {
    /// Exponential in time: `I = a + b·E` (b < 0).
    Exponential { a: f64, b: f64 },
    /// Linear in time: `I² = c + d·E` (d < 0).
    Linear { c: f64, d: f64 },
}

impl Decline {
    /// The vehicle's own current limit after `energy_wh` of the session.
    pub fn current_at(&self, energy_wh: f64) -> f64 {
        match *self {
            Decline::Exponential { a, b } => a + b * energy_wh,
            Decline::Linear { c, d } => (c + d * energy_wh).max(0.0).sqrt(),
        }
    }

    /// The session energy at which the limit reaches `amps`.
    fn energy_at(&self, amps: f64) -> f64 {
        match *self {
            Decline::Exponential { a, b } => (amps - a) / b,
            Decline::Linear { c, d } => (amps * amps - c) / d,
        }
    }
}

/// A fitted taper.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Taper {
    pub decline: Decline,
    /// The vehicle's fitted current now (A).
    pub current_a: f64,
}

/// Averages of the observations of one bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    start: Option<DateTime<Utc>>,
    /// Observations with current offered.
    offered_n: u32,
    /// ... of which the vehicle took clearly less.
    limited_n: u32,
    limited_current: f64,
    limited_energy: f64,
    /// ... of which it took what it was offered.
    following_current: f64,
    offered: f64,
    current: f64,
    power: f64,
    drawing_n: u32,
    last_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    at: DateTime<Utc>,
    energy_wh: f64,
    current_a: f64,
}

/// What the last full bucket said about the rate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate {
    at: DateTime<Utc>,
    offered_a: f64,
    current_a: f64,
    limited: bool,
    /// Watts per amp of per-phase current: voltage × phases in use.
    w_per_a: f64,
}

/// What the site expects of a session besides its own readings (see [`expected_energy`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    /// The energy the session will take in all: the likeliest, and the least and most it
    /// plausibly takes. `None`: the history cannot say (the session outgrew it; for `low_wh`,
    /// it may stop any time).
    pub expected_wh: Option<f64>,
    pub low_wh: Option<f64>,
    pub high_wh: Option<f64>,
    /// The current a tapering vehicle stops at: the usual one (`None` before the site saw
    /// one stop: then halfway, in energy, to the lowest), the highest (infinite: it may stop
    /// any time) and the lowest (A).
    pub stop_a: Option<f64>,
    pub stop_high_a: f64,
    pub stop_low_a: f64,
}

/// When the vehicle will stop drawing: the likeliest time and the range around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRange {
    pub at: DateTime<Utc>,
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

/// The end-time estimator of one session, fed every observation.
#[derive(Debug, Clone, Default)]
pub struct EndEstimator {
    bucket: Bucket,
    points: VecDeque<Point>,
    rate: Option<Rate>,
    energy_wh: f64,
}

impl EndEstimator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one observation (in time order).
    pub fn observe(&mut self, obs: &Observation) {
        if !(obs.current_a.is_finite() && obs.power_w.is_finite() && obs.energy_wh.is_finite()) {
            return;
        }
        let start = *self.bucket.start.get_or_insert(obs.at);
        if obs.at - start >= TimeDelta::seconds(BUCKET_S) {
            self.close_bucket();
            self.bucket.start = Some(obs.at);
        }
        self.energy_wh = obs.energy_wh;
        let b = &mut self.bucket;
        b.last_at = Some(obs.at);
        let drawing = obs.current_a >= DRAW_FLOOR_A;
        if drawing {
            b.drawing_n += 1;
            b.current += obs.current_a;
            b.power += obs.power_w.max(0.0);
        }
        let Some(offer) = obs.offered_a.filter(|&a| a > 0.0 && a.is_finite()) else {
            return;
        };
        b.offered_n += 1;
        b.offered += offer;
        if drawing && obs.current_a < offer - LIMIT_MARGIN_A.max(offer * LIMIT_MARGIN_FRACTION) {
            b.limited_n += 1;
            b.limited_current += obs.current_a;
            b.limited_energy += obs.energy_wh;
        } else {
            b.following_current += obs.current_a;
        }
    }

    fn close_bucket(&mut self) {
        let b = std::mem::take(&mut self.bucket);
        let Some(at) = b.last_at else {
            return;
        };
        if b.drawing_n == 0 || b.offered_n == 0 {
            // Paused or not drawing: no rate now, nothing about the taper either.
            self.rate = None;
            return;
        }
        let limited = b.limited_n * 2 > b.offered_n;
        let current = b.current / f64::from(b.drawing_n);
        let power = b.power / f64::from(b.drawing_n);
        self.rate = Some(Rate {
            at,
            offered_a: b.offered / f64::from(b.offered_n),
            current_a: current,
            limited,
            w_per_a: if current > 0.0 { power / current } else { 0.0 },
        });
        if limited {
            let n = f64::from(b.limited_n);
            if self.points.len() == MAX_POINTS {
                self.points.pop_front();
            }
            self.points.push_back(Point {
                at,
                energy_wh: b.limited_energy / n,
                current_a: b.limited_current / n,
            });
            return;
        }
        // Following the offer: fine below its limit, but taking clearly more than the taper
        // allows means what looked like one was not (a pause in the car, a brief limit).
        let following_n = b.offered_n - b.limited_n;
        let took = b.following_current / f64::from(following_n);
        let limit = match self.fit() {
            Some(d) => d.current_at(self.energy_wh),
            None => self.points.back().map_or(f64::INFINITY, |p| p.current_a),
        };
        if took > limit + LIMIT_MARGIN_A.max(limit * LIMIT_MARGIN_FRACTION) {
            self.points.clear();
        }
    }

    /// The decline of the vehicle's own limit, if the points show one.
    fn fit(&self) -> Option<Decline> {
        if self.points.len() < MIN_POINTS {
            return None;
        }
        let e0 = self.points.back()?.energy_wh;
        let xs: Vec<f64> = self.points.iter().map(|p| p.energy_wh - e0).collect();
        let is: Vec<f64> = self.points.iter().map(|p| p.current_a).collect();
        let sq: Vec<f64> = is.iter().map(|i| i * i).collect();
        let (a, b) = least_squares(&xs, &is)?;
        let (c, d) = least_squares(&xs, &sq)?;
        // Back to session energy: the fit was centred on the newest point for conditioning.
        let exp = Decline::Exponential { a: a - b * e0, b };
        let lin = Decline::Linear { c: c - d * e0, d };
        let sse = |m: &Decline| -> f64 {
            self.points
                .iter()
                .map(|p| (m.current_at(p.energy_wh) - p.current_a).powi(2))
                .sum()
        };
        let (best, err) = [exp, lin]
            .into_iter()
            .map(|m| (m, sse(&m)))
            .filter(|(m, _)| match *m {
                Decline::Exponential { b, .. } => b < 0.0,
                Decline::Linear { d, .. } => d < 0.0,
            })
            .min_by(|x, y| x.1.total_cmp(&y.1))?;
        let first = self.points.front()?.energy_wh;
        let drop = best.current_at(first) - best.current_at(e0);
        let scatter = (err / self.points.len() as f64).sqrt();
        (drop >= MIN_DROP_A && drop >= 2.0 * scatter).then_some(best)
    }

    /// The taper, when the vehicle is in one now.
    pub fn taper(&self) -> Option<Taper> {
        let newest = self.points.back()?;
        let rate = self.rate?;
        if rate.at - newest.at > TAPER_STALE {
            return None;
        }
        let decline = self.fit()?;
        Some(Taper {
            decline,
            current_a: decline.current_at(self.energy_wh),
        })
    }

    /// The current the vehicle was last seen taking while tapering: its stop point, once it
    /// has stopped.
    pub fn last_taper_current(&self) -> Option<f64> {
        self.fit()?;
        self.points.back().map(|p| p.current_a)
    }

    /// The session energy so far (Wh), as last observed.
    pub fn energy_wh(&self) -> f64 {
        self.energy_wh
    }

    /// When the vehicle will stop drawing, estimated at `now`. `expected_wh` is the energy
    /// this session is expected to take in all (see [`expected_energy`]), `None` when the
    /// history cannot say; `stop_a` the current vehicles here stop at after a taper.
    pub fn estimate(
        &self,
        now: DateTime<Utc>,
        expected_wh: Option<f64>,
        stop_a: f64,
    ) -> Option<DateTime<Utc>> {
        let rate = self.drawing_rate()?;
        let secs = self.secs_until(rate, self.taper().as_ref(), expected_wh, stop_a)?;
        at_secs(now, secs)
    }

    /// The likeliest end, as [`EndEstimator::estimate`], and the range around it: from the
    /// least energy the history allows (or, in a taper, the highest stop current seen) to the
    /// most (in a taper, the lowest stop current), at the rate the vehicle is given now.
    pub fn estimate_range(&self, now: DateTime<Utc>, o: &Outlook) -> Option<EndRange> {
        let rate = self.drawing_rate()?;
        let taper = self.taper();
        let t = taper.as_ref();
        let point = match (t, o.stop_a) {
            (_, Some(stop_a)) => self.secs_until(rate, t, o.expected_wh, stop_a),
            // Where in its taper a vehicle is set to stop is not known yet: as likely
            // anywhere in the energy left to the taper's end, so its middle.
            (Some(taper), None) => {
                let half = (self.energy_wh + taper.decline.energy_at(o.stop_low_a)) / 2.0;
                let to = o.expected_wh.map_or(half, |e| e.min(half));
                self.secs_until(rate, t, Some(to), o.stop_low_a)
            }
            (None, None) => self.secs_until(rate, t, o.expected_wh, o.stop_low_a),
        }?;
        let earliest = match t {
            Some(_) if o.stop_high_a.is_finite() => {
                self.secs_until(rate, t, o.low_wh, o.stop_high_a)
            }
            Some(_) => Some(0.0),
            None => match o.low_wh {
                Some(e) if e > self.energy_wh => self.secs_until(rate, t, Some(e), o.stop_low_a),
                _ => Some(0.0),
            },
        }
        .unwrap_or(0.0)
        .min(point);
        let latest = match t {
            // The history cannot make a taper last longer than to its lowest stop point.
            Some(_) => self.secs_until(rate, t, None, o.stop_low_a),
            None => o
                .high_wh
                .and_then(|e| self.secs_until(rate, t, Some(e), o.stop_low_a)),
        }
        .unwrap_or(point)
        .clamp(point, HORIZON.as_seconds_f64());
        Some(EndRange {
            at: at_secs(now, point)?,
            earliest: at_secs(now, earliest)?,
            latest: at_secs(now, latest)?,
        })
    }

    /// The last rate, when the vehicle draws.
    fn drawing_rate(&self) -> Option<Rate> {
        let rate = self.rate?;
        (rate.w_per_a > 0.0 && rate.current_a >= DRAW_FLOOR_A).then_some(rate)
    }

    /// Seconds until the session has taken `to_wh` (`None`: the taper's stop point) or, in a
    /// taper, the vehicle's current has fallen to `stop_a`, whichever comes first.
    fn secs_until(
        &self,
        rate: Rate,
        taper: Option<&Taper>,
        to_wh: Option<f64>,
        stop_a: f64,
    ) -> Option<f64> {
        match taper {
            // The taper says when the current reaches the stop point; a vehicle set to stop
            // short of full stops mid-taper, which only the site's history can suggest.
            Some(t) => {
                let to_stop = t.decline.energy_at(stop_a);
                let to_wh = match to_wh {
                    Some(e) if e > self.energy_wh => e.min(to_stop),
                    _ => to_stop,
                };
                along_taper(t, self.energy_wh, to_wh, rate, stop_a)
            }
            None => {
                // What the vehicle takes of what it is offered: all of it unless it holds
                // itself lower (a car's own maximum).
                let amps = if rate.limited {
                    rate.current_a
                } else {
                    rate.offered_a.min(rate.current_a.max(rate.offered_a))
                };
                let left = to_wh? - self.energy_wh;
                if left <= 0.0 {
                    return None;
                }
                Some(left / (amps * rate.w_per_a) * 3600.0)
            }
        }
    }
}

/// `now` + `secs`, when that is a sane estimate (finite, not past, within the horizon).
fn at_secs(now: DateTime<Utc>, secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() || secs < 0.0 || secs > HORIZON.as_seconds_f64() {
        return None;
    }
    Some(now + TimeDelta::milliseconds((secs * 1000.0).round() as i64))
}

/// The energy a session that has taken `delivered_wh` so far will take in all, from the
/// energy of the site's recent sessions (`history_wh`, sorted ascending): the median of
/// those that took more, since a session already past most of its peers says nothing by
/// being compared with the ones it outgrew. With no history, `default_wh`. `None` when this
/// one has outgrown them all (or the default): the history cannot tell.
pub fn expected_energy(history_wh: &[f64], delivered_wh: f64, default_wh: f64) -> Option<f64> {
    if history_wh.is_empty() {
        return (default_wh > delivered_wh).then_some(default_wh);
    }
    let from = history_wh.partition_point(|&wh| wh <= delivered_wh);
    let larger = &history_wh[from..];
    larger.get(larger.len() / 2).copied()
}

/// The least and most energy a session that has taken `delivered_wh` will take in all, as
/// [`expected_energy`] reads the history: the `share` and 1 − `share` quantiles of the
/// sessions that took more (nearest rank). Fewer of them than it takes to place those
/// quantiles (1 / `share`) say nothing of the least (it may stop any time), and no more of the
/// most than the largest of them or `default_high_wh`; `None` for both once the session
/// outgrew the history.
pub fn energy_range(
    history_wh: &[f64],
    delivered_wh: f64,
    share: f64,
    default_high_wh: f64,
) -> (Option<f64>, Option<f64>) {
    if history_wh.is_empty() {
        return (
            None,
            (default_high_wh > delivered_wh).then_some(default_high_wh),
        );
    }
    let from = history_wh.partition_point(|&wh| wh <= delivered_wh);
    let larger = &history_wh[from..];
    if larger.is_empty() {
        return (None, None);
    }
    if (larger.len() as f64) < 1.0 / share {
        let most = larger[larger.len() - 1].max(default_high_wh);
        return (None, Some(most));
    }
    let rank = |q: f64| {
        let i = ((larger.len() as f64 * q).ceil() as usize).clamp(1, larger.len()) - 1;
        larger[i]
    };
    (Some(rank(share)), Some(rank(1.0 - share)))
}

/// Seconds until the session has taken `to_wh` along the fitted taper (at most until the
/// current reaches `stop_a`), taking min(offer, limit) on the way.
fn along_taper(t: &Taper, from_wh: f64, to_wh: f64, rate: Rate, stop_a: f64) -> Option<f64> {
    if t.current_a <= stop_a {
        return Some(0.0);
    }
    if !(to_wh.is_finite() && to_wh > from_wh) {
        return None;
    }
    let step = (to_wh - from_wh) / STEPS as f64;
    let offer = rate.offered_a.max(rate.current_a);
    let mut secs = 0.0;
    for k in 0..STEPS {
        let mid = from_wh + step * (k as f64 + 0.5);
        let amps = t.decline.current_at(mid).min(offer).max(stop_a);
        secs += step / (amps * rate.w_per_a) * 3600.0;
    }
    Some(secs)
}

/// Least-squares line `y = a + b·x`; `None` when the x values do not spread.
fn least_squares(xs: &[f64], ys: &[f64]) -> Option<(f64, f64)> {
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx <= 1e-9 {
        return None;
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

#[cfg(test)]
#[path = "estimate_tests.rs"]
mod tests;
