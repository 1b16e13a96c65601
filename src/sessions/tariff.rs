//! The tariff in force at a session's start, frozen into the session: prices as exact
//! decimals, time-of-use windows read in the local time of a named zone.
//!
//! A session is billed by the tariff it started under even if the configuration changes
//! while it runs, so the snapshot is self-contained and serializable (money as decimal
//! strings, the zone as its IANA name, window times as `"HH:MM"`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Label of the energy price that applies outside every window.
pub const STANDARD_LABEL: &str = "standard";

/// A local wall-clock time as minutes after midnight; 1440 is "24:00" (end of day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockTime(u16);

impl ClockTime {
    pub const END_OF_DAY: ClockTime = ClockTime(24 * 60);

    pub fn from_hm(hour: u16, minute: u16) -> Option<ClockTime> {
        let m = hour.checked_mul(60)?.checked_add(minute)?;
        (minute < 60 && m <= 24 * 60).then_some(ClockTime(m))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl FromStr for ClockTime {
    type Err = ();

    /// Strictly `"HH:MM"`, 00:00–24:00.
    fn from_str(s: &str) -> Result<Self, ()> {
        let (h, m) = s.split_once(':').ok_or(())?;
        let two = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
        if !two(h) || !two(m) {
            return Err(());
        }
        let (h, m) = (h.parse().map_err(|_| ())?, m.parse().map_err(|_| ())?);
        ClockTime::from_hm(h, m).ok_or(())
    }
}

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|()| serde::de::Error::custom(format!("{s:?} is not a local time \"HH:MM\"")))
    }
}

/// A time-of-use window: its own energy price between two local times on some weekdays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouWindow {
    /// Names the window on cost lines, e.g. `"17:00-21:00 mon,tue,wed,thu,fri"`.
    pub label: String,
    pub start: ClockTime,
    /// Earlier than `start` for a window that runs past midnight.
    pub end: ClockTime,
    pub energy_price: Decimal,
    /// Days the window *starts* on; empty means every day.
    #[serde(with = "day_names")]
    pub days: Vec<Weekday>,
}

impl TouWindow {
    /// Whether local wall-clock `minute` (after midnight) of `weekday` falls in the window.
    /// The part of an overnight window after midnight belongs to the day it started on, so
    /// a Friday 22:00–06:00 window covers Saturday 05:00 but not Friday 05:00.
    pub fn covers(&self, minute: u16, weekday: Weekday) -> bool {
        let on = |d: Weekday| self.days.is_empty() || self.days.contains(&d);
        let (start, end) = (self.start.0, self.end.0);
        if start < end {
            (start..end).contains(&minute) && on(weekday)
        } else {
            (minute >= start && on(weekday)) || (minute < end && on(weekday.pred()))
        }
    }
}

/// The energy price in force at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate<'a> {
    /// Index into [`TariffSnapshot::windows`]; `None` for the standard price.
    pub window: Option<usize>,
    pub label: &'a str,
    pub price_per_kwh: Decimal,
}

/// A tariff as frozen into a session. Money is exact (`Decimal`), serialized as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffSnapshot {
    pub currency: String,
    /// Per kWh outside every window.
    pub energy_price: Decimal,
    pub session_fee: Decimal,
    pub idle_fee_per_min: Decimal,
    pub idle_grace_min: u32,
    pub time_fee_per_hour: Decimal,
    /// The zone the windows' local times are read in.
    #[serde(with = "tz_name")]
    pub timezone: Tz,
    /// The first window that covers an instant wins (config order).
    pub windows: Vec<TouWindow>,
}

impl TariffSnapshot {
    /// The energy price at `at`: the first window covering its local wall-clock time, else
    /// the standard price. Local time comes from the zone's rules, so across a DST change
    /// a repeated local hour is priced by the window twice and a skipped one never.
    pub fn rate_at(&self, at: DateTime<Utc>) -> Rate<'_> {
        let local = at.with_timezone(&self.timezone);
        // Zone offsets are whole minutes (for every zone in use since 1972), so the minute
        // of the day is exact and minute-aligned samples stay aligned.
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let weekday = local.weekday();
        self.windows
            .iter()
            .enumerate()
            .find(|(_, w)| w.covers(minute, weekday))
            .map(|(i, w)| Rate {
                window: Some(i),
                label: &w.label,
                price_per_kwh: w.energy_price,
            })
            .unwrap_or(Rate {
                window: None,
                label: STANDARD_LABEL,
                price_per_kwh: self.energy_price,
            })
    }

    /// `(window label, price per kWh)` at `at`; see [`TariffSnapshot::rate_at`].
    pub fn price_at(&self, at: DateTime<Utc>) -> (&str, Decimal) {
        let rate = self.rate_at(at);
        (rate.label, rate.price_per_kwh)
    }
}

/// A non-negative amount of money as the configuration writes it, e.g. `"0.35"`: plain
/// digits with an optional fraction, no sign, exponent or separators, so what the installer
/// wrote is exactly what is charged.
pub fn parse_amount(value: &str) -> Option<Decimal> {
    let (whole, frac) = value.split_once('.').unwrap_or((value, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) {
        return None;
    }
    Decimal::from_str_exact(value).ok()
}

impl TouWindow {
    /// A window labelled by its times and days, e.g. `"17:00-21:00 mon,fri"`.
    pub fn new(
        start: ClockTime,
        end: ClockTime,
        energy_price: Decimal,
        days: Vec<Weekday>,
    ) -> Self {
        let mut label = format!("{start}-{end}");
        if !days.is_empty() {
            let names: Vec<&str> = days.iter().map(|d| day_names::name(*d)).collect();
            label = format!("{label} {}", names.join(","));
        }
        TouWindow {
            label,
            start,
            end,
            energy_price,
            days,
        }
    }
}

/// Weekdays as the configuration spells them (`"mon"` … `"sun"`): for the tariff's and the
/// schedules' `days`.
pub(crate) mod day_names {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Monday first.
    pub const NAMES: [(&str, Weekday); 7] = [
        ("mon", Weekday::Mon),
        ("tue", Weekday::Tue),
        ("wed", Weekday::Wed),
        ("thu", Weekday::Thu),
        ("fri", Weekday::Fri),
        ("sat", Weekday::Sat),
        ("sun", Weekday::Sun),
    ];

    pub fn parse(s: &str) -> Option<Weekday> {
        NAMES.iter().find(|(n, _)| *n == s).map(|(_, d)| *d)
    }

    pub fn name(d: Weekday) -> &'static str {
        NAMES[d.num_days_from_monday() as usize].0
    }

    pub fn serialize<S: Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(days.iter().map(|d| name(*d)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| {
                parse(s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a day")))
            })
            .collect()
    }
}

/// A zone by its IANA name, so a stored snapshot reads back in any build.
mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(|_| {
            serde::de::Error::custom(format!("{name:?} is not a known IANA time zone"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn win(start: &str, end: &str, price: &str, days: &[&str]) -> TouWindow {
        TouWindow::new(
            start.parse().unwrap(),
            end.parse().unwrap(),
            parse_amount(price).unwrap(),
            days.iter().map(|d| day_names::parse(d).unwrap()).collect(),
        )
    }

    fn tariff(tz: &str, windows: Vec<TouWindow>) -> TariffSnapshot {
        TariffSnapshot {
            currency: "EUR".into(),
            energy_price: dec!(0.30),
            session_fee: dec!(0.00),
            idle_fee_per_min: dec!(0.00),
            idle_grace_min: 0,
            time_fee_per_hour: dec!(0.00),
            timezone: tz.parse().unwrap(),
            windows,
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
    }

    #[test]
    fn labels_windows_by_times_and_days() {
        let t = tariff(
            "Europe/Berlin",
            vec![win("17:00", "21:00", "0.45", &["mon", "fri"])],
        );
        assert_eq!(t.energy_price.to_string(), "0.30");
        assert_eq!(t.windows[0].label, "17:00-21:00 mon,fri");
        assert_eq!(t.windows[0].energy_price, dec!(0.45));
        assert_eq!(
            tariff("UTC", vec![win("22:00", "06:00", "0.1", &[])]).windows[0].label,
            "22:00-06:00"
        );
    }

    #[test]
    fn amounts_are_plain_non_negative_decimals_kept_exact() {
        assert_eq!(
            parse_amount("0.30").map(|d| d.to_string()),
            Some("0.30".into())
        );
        assert_eq!(parse_amount("12"), Some(dec!(12)));
        for bad in ["-0.30", "0,30", "1e3", "", ".5", "1.", "0.30 ", "+1"] {
            assert_eq!(parse_amount(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn window_over_midnight_belongs_to_the_day_it_starts() {
        // 2026-01-16 is a Friday; UTC keeps local time equal to the instant.
        let t = tariff("UTC", vec![win("22:00", "06:00", "0.12", &["fri"])]);
        let night = "22:00-06:00 fri";
        assert_eq!(
            t.price_at(utc(2026, 1, 16, 21, 59)),
            (STANDARD_LABEL, dec!(0.30))
        );
        assert_eq!(t.price_at(utc(2026, 1, 16, 22, 0)), (night, dec!(0.12)));
        assert_eq!(t.price_at(utc(2026, 1, 16, 23, 59)), (night, dec!(0.12)));
        assert_eq!(t.price_at(utc(2026, 1, 17, 0, 0)), (night, dec!(0.12)));
        assert_eq!(t.price_at(utc(2026, 1, 17, 5, 59)), (night, dec!(0.12)));
        assert_eq!(
            t.price_at(utc(2026, 1, 17, 6, 0)),
            (STANDARD_LABEL, dec!(0.30))
        );
        // Friday early morning is Thursday's night, and Saturday's night is not listed.
        assert_eq!(t.price_at(utc(2026, 1, 16, 5, 0)).1, dec!(0.30));
        assert_eq!(t.price_at(utc(2026, 1, 17, 23, 0)).1, dec!(0.30));
    }

    #[test]
    fn end_of_day_and_first_window_wins() {
        let t = tariff(
            "UTC",
            vec![
                win("18:00", "24:00", "0.50", &[]),
                win("12:00", "20:00", "0.20", &[]),
            ],
        );
        assert_eq!(t.price_at(utc(2026, 1, 16, 23, 59)).1, dec!(0.50));
        assert_eq!(t.price_at(utc(2026, 1, 17, 0, 0)).1, dec!(0.30));
        assert_eq!(t.price_at(utc(2026, 1, 16, 19, 0)).1, dec!(0.50));
        assert_eq!(t.price_at(utc(2026, 1, 16, 17, 59)).1, dec!(0.20));
        assert_eq!(t.rate_at(utc(2026, 1, 16, 17, 59)).window, Some(1));
    }

    #[test]
    fn windows_follow_local_time_in_the_zone() {
        let t = tariff("Europe/Berlin", vec![win("17:00", "21:00", "0.45", &[])]);
        // Winter: UTC+1, so 17:00 local is 16:00Z; summer: UTC+2, 15:00Z.
        assert_eq!(t.price_at(utc(2026, 1, 16, 15, 59)).1, dec!(0.30));
        assert_eq!(t.price_at(utc(2026, 1, 16, 16, 0)).1, dec!(0.45));
        assert_eq!(t.price_at(utc(2026, 7, 16, 15, 0)).1, dec!(0.45));
        assert_eq!(t.price_at(utc(2026, 7, 16, 19, 0)).1, dec!(0.30));
    }

    #[test]
    fn repeated_local_hour_in_autumn_is_in_the_window_twice() {
        // 2026-10-25: 03:00 CEST (01:00Z) goes back to 02:00 CET; local 02:00–03:00 is both
        // 00:00–01:00Z and 01:00–02:00Z.
        let t = tariff("Europe/Berlin", vec![win("02:00", "03:00", "0.10", &[])]);
        assert_eq!(t.price_at(utc(2026, 10, 24, 23, 59)).1, dec!(0.30));
        assert_eq!(t.price_at(utc(2026, 10, 25, 0, 0)).1, dec!(0.10));
        assert_eq!(t.price_at(utc(2026, 10, 25, 0, 59)).1, dec!(0.10));
        assert_eq!(t.price_at(utc(2026, 10, 25, 1, 0)).1, dec!(0.10));
        assert_eq!(t.price_at(utc(2026, 10, 25, 1, 59)).1, dec!(0.10));
        assert_eq!(t.price_at(utc(2026, 10, 25, 2, 0)).1, dec!(0.30));
    }

    #[test]
    fn skipped_local_hour_in_spring_is_never_in_the_window() {
        // 2026-03-29: 02:00 CET (01:00Z) jumps to 03:00 CEST; local 02:xx never happens.
        let t = tariff("Europe/Berlin", vec![win("02:00", "03:00", "0.10", &[])]);
        let mut at = utc(2026, 3, 28, 22, 0);
        while at < utc(2026, 3, 29, 6, 0) {
            assert_eq!(t.price_at(at).1, dec!(0.30), "at {at}");
            at += chrono::Duration::minutes(1);
        }
        // The next night has its 02:00 again.
        assert_eq!(t.price_at(utc(2026, 3, 30, 0, 30)).1, dec!(0.10));
    }

    #[test]
    fn snapshot_serializes_money_as_strings_and_reads_back() {
        let t = tariff(
            "Europe/Berlin",
            vec![win("22:00", "06:00", "0.12", &["sat"])],
        );
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["energy_price"], "0.30");
        assert_eq!(json["timezone"], "Europe/Berlin");
        assert_eq!(json["windows"][0]["start"], "22:00");
        assert_eq!(json["windows"][0]["end"], "06:00");
        assert_eq!(json["windows"][0]["energy_price"], "0.12");
        assert_eq!(json["windows"][0]["days"], serde_json::json!(["sat"]));
        let back: TariffSnapshot = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, t);

        let mut bad = json;
        bad["timezone"] = "Mars/Olympus".into();
        assert!(serde_json::from_value::<TariffSnapshot>(bad).is_err());
    }
}
