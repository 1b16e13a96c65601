//! The demand (peak) limit: the utility bills the highest average import over fixed windows
//! aligned to the clock (Belgium's quarter-hour peak, most commercial demand charges), so the
//! controller budgets each window's energy instead of comparing power with a limit. Pure: the
//! caller passes the time and what the main meter measured.
//!
//! The window rule (see `docs/demand.md`): the window may import at most
//! `limit × length × (1 − margin)`. At any instant the site may draw what is left of that
//! energy spread over what is left of the window, so a short peak early in a window is
//! absorbed by a lower draw later, and a quiet start leaves room above the limit at the end.
//! The rest is never spread over less than [`MIN_SPREAD_S`], which keeps the last seconds of
//! a window from swinging and leaves the cars time to follow a lower limit. The result is a
//! power cap; the loop turns it into a per-phase current and only ever uses it to *lower*
//! the limit in force.

use chrono::{DateTime, Datelike, Duration, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::Demand;

/// The rest of a window's budget is spread over at least this long.
pub const MIN_SPREAD_S: f64 = 30.0;

/// One window's measured demand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowDemand {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The window's average import.
    pub demand_kw: f64,
    pub limit_kw: f64,
}

impl WindowDemand {
    pub fn exceeded(&self) -> bool {
        self.demand_kw > self.limit_kw + 1e-9
    }
}

/// The demand state after a cycle: what the record, displays and metrics show.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DemandStatus {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// Imported so far in this window.
    pub energy_wh: f64,
    /// The target in force (the config's, or this month's override).
    pub limit_kw: f64,
    /// The window's average if the rest of it went on at the power measured now.
    pub projected_kw: f64,
    /// What the site may draw now (before the per-phase grid limit).
    pub allowed_kw: f64,
    /// The highest finished window of this (local) month.
    pub month_peak_kw: f64,
    /// The window that ended this cycle, if one did.
    pub finished: Option<WindowDemand>,
    /// The building alone (chargers at nothing) will take this window over the target.
    pub building_exceeds: bool,
}

impl DemandStatus {
    /// The window in one line, as the terminal views show it: `18.2 kW projected of 25.0 kW
    /// target · month peak 23.9 kW`, and a warning when the building alone will take the
    /// window over the target.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{:.1} kW projected of {:.1} kW target · month peak {:.1} kW",
            self.projected_kw, self.limit_kw, self.month_peak_kw
        );
        if self.building_exceeds {
            s.push_str(" · the building alone is over the target");
        }
        s
    }
}

/// The start of the window holding `at`: windows are aligned to the local clock (a zone with
/// a half-hour offset still gets its quarter hours at :00, :15, :30 and :45 local time).
pub fn window_start(at: DateTime<Utc>, len_s: i64, tz: Tz) -> DateTime<Utc> {
    let offset = i64::from(
        tz.offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc(),
    );
    let local = at.timestamp() + offset;
    let start = local - local.rem_euclid(len_s.max(1));
    DateTime::from_timestamp(start - offset, 0).unwrap_or(at)
}

/// The local (year, month) of `at`: the month a peak counts in.
fn month_of(at: DateTime<Utc>, tz: Tz) -> (i32, u32) {
    let l = at.with_timezone(&tz);
    (l.year(), l.month())
}

/// What the site may draw now, in W: the rest of the window's budget spread over the rest of
/// the window (at least [`MIN_SPREAD_S`]), never below 0. `energy_wh`: imported so far.
pub fn allowed_w(limit_w: f64, margin_pct: f64, len_s: f64, elapsed_s: f64, energy_wh: f64) -> f64 {
    let budget_wh = limit_w * (1.0 - margin_pct / 100.0) * len_s / 3600.0;
    let rest_s = (len_s - elapsed_s).max(MIN_SPREAD_S);
    ((budget_wh - energy_wh) * 3600.0 / rest_s).max(0.0)
}

/// Follows the windows and the month's peak from the main meter's power.
#[derive(Debug, Clone)]
pub struct DemandMeter {
    settings: Demand,
    tz: Tz,
    /// A target for one local month set by command: (year, month, kW).
    month_override: Option<(i32, u32, f64)>,
    window: Option<DateTime<Utc>>,
    energy_wh: f64,
    last: Option<(DateTime<Utc>, f64)>,
    /// Wall time less steady time at the last observation: a jump of it is a step of the
    /// wall clock, whether or not the loop has announced it yet.
    offset: Option<Duration>,
    month: Option<(i32, u32)>,
    month_peak_kw: f64,
    /// The wall time is not trusted: windows roll over for the budget, but none is closed as
    /// a billing window (see [`DemandMeter::set_provisional`]).
    provisional: bool,
}

impl DemandMeter {
    pub fn new(settings: Demand, tz: Tz) -> Self {
        DemandMeter {
            settings,
            tz,
            month_override: None,
            window: None,
            energy_wh: 0.0,
            last: None,
            offset: None,
            month: None,
            month_peak_kw: 0.0,
            provisional: false,
        }
    }

    pub fn settings(&self) -> &Demand {
        &self.settings
    }

    /// New settings from a reloaded config; the window's energy so far is kept.
    pub fn reconfigure(&mut self, settings: Demand, tz: Tz) {
        if settings.window != self.settings.window || tz != self.tz {
            self.window = None;
        }
        self.settings = settings;
        self.tz = tz;
    }

    /// Whether the wall time is untrusted. While it is, the budget still follows windows of
    /// the time as it reads, but no window is closed as a billing window: none is reported
    /// finished and none counts towards the month's peak.
    pub fn set_provisional(&mut self, provisional: bool) {
        self.provisional = provisional;
    }

    /// The wall clock was stepped by `step`: the window's energy is kept and counts in the
    /// window of the corrected time, and the power since the last observation is integrated
    /// over the time that really passed. The window the old time was in is not closed.
    pub fn clock_stepped(&mut self, step: Duration) {
        self.last = self.last.map(|(t, p)| (t + step, p));
        self.offset = self.offset.map(|o| o + step);
        self.window = None;
    }

    /// A month's target set by command (None: back to the config's).
    pub fn set_month_limit(&mut self, month: Option<(i32, u32, f64)>) {
        self.month_override = month;
    }

    /// The month's peak so far, as restored from the store at start.
    pub fn restore_month_peak(&mut self, at: DateTime<Utc>, peak_kw: f64) {
        self.month = Some(month_of(at, self.tz));
        self.month_peak_kw = self.month_peak_kw.max(peak_kw);
    }

    /// The target at `at`: a valid override for its month, else the config's.
    pub fn limit_kw(&self, at: DateTime<Utc>) -> f64 {
        let (y, m) = month_of(at, self.tz);
        match self.month_override {
            Some((oy, om, kw)) if oy == y && om == m => kw,
            _ => self.settings.limit_kw,
        }
    }

    fn len_s(&self) -> i64 {
        self.settings.window.as_secs() as i64
    }

    /// Account the import since the last observation and return the state now.
    /// `import_w`: what counts (net import, or the chargers' draw); `building_w`: the
    /// building's own part of it (what remains with every charger at nothing). `None` when
    /// the meter was not read: the time passes with the last power held, as a meter that
    /// integrates would count it.
    pub fn observe(
        &mut self,
        at: DateTime<Utc>,
        import_w: Option<f64>,
        building_w: f64,
    ) -> DemandStatus {
        self.offset = None;
        self.observe_at(at, import_w, building_w)
    }

    /// [`DemandMeter::observe`] at wall time `at` read with the clock's `steady` time
    /// ([`crate::clock::Clock::now_and_steady`]): a step of the wall clock since the last
    /// observation that [`DemandMeter::clock_stepped`] has not brought yet (it came during
    /// this cycle) is taken as a step here, never integrated as time that passed.
    pub fn observe_steady(
        &mut self,
        at: DateTime<Utc>,
        steady: DateTime<Utc>,
        import_w: Option<f64>,
        building_w: f64,
    ) -> DemandStatus {
        let offset = at - steady;
        if let Some(step) = self.offset.map(|o| offset - o) {
            if step.abs() > crate::clock::STEP_THRESHOLD {
                self.clock_stepped(step);
            }
        }
        self.offset = Some(offset);
        self.observe_at(at, import_w, building_w)
    }

    fn observe_at(
        &mut self,
        at: DateTime<Utc>,
        import_w: Option<f64>,
        building_w: f64,
    ) -> DemandStatus {
        let len = self.len_s();
        let start = window_start(at, len, self.tz);
        let mut finished = None;
        let mut rolled = false;
        // Integrate the last power up to now, splitting it at the window boundary.
        if let Some((t0, p0)) = self.last {
            let dt_before = (start - t0).num_milliseconds().max(0) as f64 / 1000.0;
            let dt_total = (at - t0).num_milliseconds().max(0) as f64 / 1000.0;
            let in_old = dt_before.min(dt_total);
            self.energy_wh += p0 * in_old / 3600.0;
            if self.provisional && self.window.is_some_and(|w| w != start) {
                rolled = true;
                self.energy_wh = 0.0;
            } else if let Some(w) = self.window.filter(|&w| w != start) {
                rolled = true;
                let end = w + Duration::seconds(len);
                let demand_kw = self.energy_wh * 3600.0 / len as f64 / 1000.0;
                let done = WindowDemand {
                    start: w,
                    end,
                    demand_kw,
                    limit_kw: self.limit_kw(w),
                };
                let month = month_of(w, self.tz);
                if self.month != Some(month) {
                    self.month = Some(month);
                    self.month_peak_kw = 0.0;
                }
                self.month_peak_kw = self.month_peak_kw.max(demand_kw);
                finished = Some(done);
                self.energy_wh = 0.0;
            }
            self.energy_wh += p0 * (dt_total - in_old) / 3600.0;
        }
        if self.window != Some(start) {
            if self.window.is_some() && !rolled {
                // A gap longer than a window: the old window's energy is lost with it.
                self.energy_wh = 0.0;
            }
            self.window = Some(start);
        }
        let month = month_of(at, self.tz);
        if self.month != Some(month) {
            self.month = Some(month);
            self.month_peak_kw = 0.0;
        }
        let power = import_w
            .or(self.last.map(|(_, p)| p))
            .unwrap_or(0.0)
            .max(0.0);
        self.last = Some((at, power));
        let limit_kw = self.limit_kw(at);
        let elapsed_s = (at - start).num_milliseconds() as f64 / 1000.0;
        let rest_s = (len as f64 - elapsed_s).max(0.0);
        let len_s = len as f64;
        let projected_wh = self.energy_wh + power * rest_s / 3600.0;
        let building_wh = self.energy_wh + building_w.max(0.0) * rest_s / 3600.0;
        DemandStatus {
            window_start: start,
            window_end: start + Duration::seconds(len),
            energy_wh: self.energy_wh,
            limit_kw,
            projected_kw: projected_wh * 3.6 / len_s,
            allowed_kw: allowed_w(
                limit_kw * 1000.0,
                self.settings.margin_pct,
                len_s,
                elapsed_s,
                self.energy_wh,
            ) / 1000.0,
            month_peak_kw: self.month_peak_kw,
            finished,
            building_exceeds: building_wh * 3.6 / len_s > limit_kw + 1e-9,
        }
    }
}

/// A power cap as a per-phase current for a site of `phases` at `voltage_v`.
pub fn per_phase_a(power_w: f64, voltage_v: f64, phases: u8) -> f64 {
    (power_w / (voltage_v * f64::from(phases.max(1)))).max(0.0)
}

#[cfg(test)]
mod tests;
