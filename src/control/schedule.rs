//! The installer's `[[schedule]]` caps: on given weekdays, between two local times, the site
//! or one charger takes at most a current (per phase) or a power. Pure: evaluated at the
//! instant the caller passes, in the site's time zone, so a window follows the wall clock
//! across a DST change (17:00–20:00 stays 17:00–20:00 local, summer and winter).
//!
//! Entries compose by the minimum: every entry in force caps, none raises. Cloud profiles
//! and commands are further minimums on top, so they can only lower what the installer set.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use crate::config::{Schedule, ScheduleCap};

/// Whether `s` is in force at `at` (local time in `tz`). A window that wraps past midnight
/// belongs to the day it starts on: "fri 22:00–06:00" covers Saturday 03:00.
pub fn in_force(s: &Schedule, at: DateTime<Utc>, tz: Tz) -> bool {
    let local = at.with_timezone(&tz);
    let minute = (local.hour() * 60 + local.minute()) as u16;
    let today = local.weekday();
    let on = |d: Weekday| s.days.is_empty() || s.days.contains(&d);
    if s.from_min < s.to_min {
        on(today) && (s.from_min..s.to_min).contains(&minute)
    } else {
        (on(today) && minute >= s.from_min) || (on(today.pred()) && minute < s.to_min)
    }
}

/// A cap in amps per phase: watts are shared over `phases` at `voltage_v`.
pub fn cap_a(cap: ScheduleCap, voltage_v: f64, phases: usize) -> f64 {
    match cap {
        ScheduleCap::Amps(a) => a,
        ScheduleCap::Watts(w) => w / (voltage_v * phases.max(1) as f64),
    }
}

/// The lowest cap in force at `at` for `target` (None: the site), in amps per phase.
pub fn limit_a(
    schedules: &[Schedule],
    target: Option<&str>,
    at: DateTime<Utc>,
    tz: Tz,
    voltage_v: f64,
    phases: usize,
) -> Option<f64> {
    lowest_a(schedules, target, Some(at), tz, voltage_v, phases)
}

/// As [`limit_a`]; with no time to go by (`at` None: the wall time is not trusted), every
/// entry for `target` is taken as in force: the lowest cap any of them could set.
pub fn lowest_a(
    schedules: &[Schedule],
    target: Option<&str>,
    at: Option<DateTime<Utc>>,
    tz: Tz,
    voltage_v: f64,
    phases: usize,
) -> Option<f64> {
    schedules
        .iter()
        .filter(|s| s.charger.as_deref() == target && at.is_none_or(|at| in_force(s, at, tz)))
        .map(|s| cap_a(s.cap, voltage_v, phases))
        .reduce(f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Europe::Brussels;

    fn sched(days: &[Weekday], from: u16, to: u16, a: f64) -> Schedule {
        Schedule {
            charger: None,
            days: days.to_vec(),
            from_min: from,
            to_min: to,
            cap: ScheduleCap::Amps(a),
        }
    }

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Brussels
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    const WEEKDAYS: [Weekday; 5] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];

    #[test]
    fn evening_window_on_weekdays_only() {
        let s = sched(&WEEKDAYS, 17 * 60, 20 * 60, 25.0);
        // 2026-12-04 is a Friday, 12-05 a Saturday.
        assert!(in_force(&s, local(2026, 12, 4, 17, 0), Brussels));
        assert!(in_force(&s, local(2026, 12, 4, 19, 59), Brussels));
        assert!(!in_force(&s, local(2026, 12, 4, 20, 0), Brussels));
        assert!(!in_force(&s, local(2026, 12, 4, 16, 59), Brussels));
        assert!(!in_force(&s, local(2026, 12, 5, 18, 0), Brussels));
    }

    #[test]
    fn window_wrapping_past_midnight_belongs_to_its_start_day() {
        let s = sched(&[Weekday::Fri], 22 * 60, 6 * 60, 0.0);
        assert!(in_force(&s, local(2026, 12, 4, 23, 0), Brussels)); // Fri night
        assert!(in_force(&s, local(2026, 12, 5, 5, 59), Brussels)); // Sat morning
        assert!(!in_force(&s, local(2026, 12, 5, 6, 0), Brussels));
        assert!(!in_force(&s, local(2026, 12, 4, 3, 0), Brussels)); // Thu night's tail
    }

    #[test]
    fn windows_follow_local_time_across_dst() {
        // Brussels leaves summer time on 2026-10-25 (03:00 CEST → 02:00 CET).
        let s = sched(&[], 17 * 60, 20 * 60, 25.0);
        let summer = local(2026, 10, 24, 17, 30);
        let winter = local(2026, 10, 25, 17, 30);
        assert!(in_force(&s, summer, Brussels));
        assert!(in_force(&s, winter, Brussels));
        // The same UTC instant of day is an hour apart in local time across the change.
        assert_eq!(summer.hour(), 15);
        assert_eq!(winter.hour(), 16);
        let winter_1600_utc = Utc.with_ymd_and_hms(2026, 10, 25, 15, 30, 0).unwrap();
        assert!(!in_force(&s, winter_1600_utc, Brussels)); // 16:30 local
                                                           // Spring: 2026-03-29 02:00 CET → 03:00 CEST; a 22:00–06:00 window spans the gap.
        let night = sched(&[], 22 * 60, 6 * 60, 6.0);
        assert!(in_force(&night, local(2026, 3, 29, 3, 30), Brussels));
        assert!(!in_force(&night, local(2026, 3, 29, 6, 0), Brussels));
    }

    #[test]
    fn caps_compose_by_the_minimum_and_per_target() {
        let mut cp3 = sched(&[], 0, 1440, 16.0);
        cp3.charger = Some("cp-3".into());
        let all = vec![
            sched(&[], 0, 1440, 40.0),
            sched(&[], 17 * 60, 20 * 60, 25.0),
            cp3,
            Schedule {
                cap: ScheduleCap::Watts(6900.0),
                ..sched(&[], 18 * 60, 19 * 60, 0.0)
            },
        ];
        let at = local(2026, 12, 4, 18, 30);
        assert_eq!(limit_a(&all, None, at, Brussels, 230.0, 3), Some(10.0));
        assert_eq!(
            limit_a(&all, None, local(2026, 12, 4, 12, 0), Brussels, 230.0, 3),
            Some(40.0)
        );
        // Untrusted time: the lowest cap any entry could set, per target.
        assert_eq!(lowest_a(&all, None, None, Brussels, 230.0, 3), Some(10.0));
        assert_eq!(
            lowest_a(&all, Some("cp-3"), None, Brussels, 230.0, 3),
            Some(16.0)
        );
        assert_eq!(lowest_a(&all, Some("cp-1"), None, Brussels, 230.0, 3), None);
        assert_eq!(
            limit_a(&all, Some("cp-3"), at, Brussels, 230.0, 3),
            Some(16.0)
        );
        assert_eq!(limit_a(&all, Some("cp-1"), at, Brussels, 230.0, 3), None);
    }
}
