//! The `--from`/`--to` bounds and local days. A date means a whole local day in the site's
//! zone: `--from D` starts at its first instant, `--to D` ends after its last, so
//! `--from 2026-03-01 --to 2026-03-31` is all of March. RFC 3339 times are exact instants
//! (`--to` exclusive).

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::HistoryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Instant(DateTime<Utc>),
    Date(NaiveDate),
}

impl Bound {
    /// RFC 3339 (`2026-03-29T01:30:00+01:00`) or a date (`2026-03-29`).
    pub fn parse(s: &str) -> Result<Bound, String> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Bound::Instant(t.with_timezone(&Utc)));
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Bound::Date)
            .map_err(|_| format!("{s:?} is neither RFC 3339 nor YYYY-MM-DD"))
    }

    /// The first instant the bound admits.
    pub fn start(&self, zone: Tz) -> Result<DateTime<Utc>, HistoryError> {
        match *self {
            Bound::Instant(t) => Ok(t),
            Bound::Date(d) => day_start(d, zone).ok_or_else(|| no_day(d, zone)),
        }
    }

    /// The first instant after the bound (exclusive end).
    pub fn end(&self, zone: Tz) -> Result<DateTime<Utc>, HistoryError> {
        match *self {
            Bound::Instant(t) => Ok(t),
            Bound::Date(d) => d
                .succ_opt()
                .and_then(|next| day_start(next, zone))
                .ok_or_else(|| no_day(d, zone)),
        }
    }
}

fn no_day(d: NaiveDate, zone: Tz) -> HistoryError {
    HistoryError::Usage(format!("{d} has no start in time zone {zone}"))
}

/// The first instant of local day `date`. Midnight itself may not exist (zones that change
/// clocks at 00:00), so the first local time of the day that does is taken.
pub fn day_start(date: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    (0..=12)
        .map(|quarter| midnight + TimeDelta::minutes(15 * quarter))
        .find_map(|local| zone.from_local_datetime(&local).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// The local date of an instant.
pub fn local_date(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
}

/// A calendar month (`--month 2026-11`): from the first instant of its first local day to the
/// first instant of the next month's, in the site's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month(pub NaiveDate);

impl Month {
    /// `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Month, String> {
        NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
            .ok()
            .filter(|_| s.len() == 7)
            .map(Month)
            .ok_or_else(|| format!("{s:?} is not a month as YYYY-MM"))
    }

    /// The month `at` falls in, in `zone`.
    pub fn of(at: DateTime<Utc>, zone: Tz) -> Month {
        let d = local_date(at, zone);
        Month(d.with_day(1).unwrap_or(d))
    }

    pub fn first_day(self) -> NaiveDate {
        self.0
    }

    pub fn next(self) -> Month {
        Month(self.0.checked_add_months(Months::new(1)).unwrap_or(self.0))
    }

    pub fn previous(self) -> Month {
        Month(self.0.checked_sub_months(Months::new(1)).unwrap_or(self.0))
    }

    /// `[start, end)` of the month in `zone`.
    pub fn bounds(self, zone: Tz) -> Result<(DateTime<Utc>, DateTime<Utc>), HistoryError> {
        let start = Bound::Date(self.0).start(zone)?;
        let end = Bound::Date(self.next().0).start(zone)?;
        Ok((start, end))
    }

    /// The days of the month, in order.
    pub fn days(self) -> impl Iterator<Item = NaiveDate> {
        let next = self.next().0;
        self.0.iter_days().take_while(move |d| *d < next)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_the_whole_local_day_even_on_a_dst_change() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let Ok(Bound::Date(d)) = Bound::parse("2026-03-29") else {
            panic!("a date")
        };
        let b = Bound::Date(d);
        let start = b.start(zone).unwrap();
        let end = b.end(zone).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-03-28T23:00:00+00:00");
        // Spring forward: the day has 23 hours.
        assert_eq!(end - start, TimeDelta::hours(23));
    }

    #[test]
    fn rfc3339_is_an_exact_instant_and_junk_is_refused() {
        let b = Bound::parse("2026-11-21T10:00:00+01:00").unwrap();
        assert_eq!(
            b.start(Tz::UTC).unwrap().to_rfc3339(),
            "2026-11-21T09:00:00+00:00"
        );
        assert_eq!(b.start(Tz::UTC).unwrap(), b.end(Tz::UTC).unwrap());
        assert!(Bound::parse("21.11.2026").is_err());
    }

    #[test]
    fn a_month_is_its_local_days_and_junk_is_refused() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let m = Month::parse("2026-10").unwrap();
        let (start, end) = m.bounds(zone).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-09-30T22:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-10-31T23:00:00+00:00");
        assert_eq!(m.days().count(), 31);
        assert_eq!(m.to_string(), "2026-10");
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(Month::of(end, zone).to_string(), "2026-11");
        for bad in ["2026-13", "2026-1", "11/2026", "2026-11-01"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_midnight_starts_the_day_at_its_first_real_time() {
        // America/Santiago sprang forward at 00:00 on 2024-09-08.
        let zone: Tz = "America/Santiago".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2024, 9, 8).unwrap();
        let start = day_start(d, zone).unwrap();
        assert_eq!(local_date(start, zone), d);
        assert_eq!(
            local_date(start - TimeDelta::seconds(1), zone),
            d.pred_opt().unwrap()
        );
    }
}
