//! The composite limit: stack levels, validity windows, recurring schedules across midnight
//! and week ends, duration ends, TxProfile against TxDefault, site against charger targets.

use chrono::{DateTime, Utc};

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
}

fn profile(
    id: u32,
    level: u32,
    purpose: Purpose,
    start: &str,
    periods: &[(u32, f64)],
) -> ChargingProfile {
    ChargingProfile {
        id,
        stack_level: level,
        purpose,
        kind: Kind::Absolute,
        valid_from: None,
        valid_to: None,
        start: t(start),
        duration_s: None,
        periods: periods
            .iter()
            .map(|&(start_s, limit_a)| Period {
                start_s,
                limit_a,
                phases: None,
            })
            .collect(),
        min_rate_a: None,
    }
}

fn on(charger: Option<&str>, profile: ChargingProfile) -> StoredProfile {
    StoredProfile {
        charger: charger.map(str::to_owned),
        profile,
    }
}

const T0: &str = "2026-03-02T00:00:00Z";

#[test]
fn absolute_periods_apply_from_their_start_and_not_before_the_schedule() {
    let p = profile(
        1,
        0,
        Purpose::TxDefault,
        "2026-03-02T10:00:00Z",
        &[(0, 16.0), (3600, 10.0)],
    );
    assert_eq!(p.limit_at(t("2026-03-02T09:59:59Z")), None);
    assert_eq!(p.limit_at(t("2026-03-02T10:00:00Z")), Some(16.0));
    assert_eq!(p.limit_at(t("2026-03-02T10:59:59Z")), Some(16.0));
    assert_eq!(p.limit_at(t("2026-03-02T11:00:00Z")), Some(10.0));
    // No duration: the last period lasts.
    assert_eq!(p.limit_at(t("2026-04-01T00:00:00Z")), Some(10.0));
}

#[test]
fn a_schedule_ends_after_its_duration() {
    let mut p = profile(1, 0, Purpose::TxDefault, T0, &[(0, 16.0)]);
    p.duration_s = Some(7200);
    assert_eq!(p.limit_at(t("2026-03-02T01:59:59Z")), Some(16.0));
    assert_eq!(p.limit_at(t("2026-03-02T02:00:00Z")), None);
}

#[test]
fn valid_from_and_valid_to_bound_the_profile() {
    let mut p = profile(1, 0, Purpose::TxDefault, T0, &[(0, 16.0)]);
    p.valid_from = Some(t("2026-03-05T00:00:00Z"));
    p.valid_to = Some(t("2026-03-06T00:00:00Z"));
    assert_eq!(p.limit_at(t("2026-03-04T23:59:59Z")), None);
    assert_eq!(p.limit_at(t("2026-03-05T00:00:00Z")), Some(16.0));
    assert_eq!(p.limit_at(t("2026-03-05T23:59:59Z")), Some(16.0));
    assert_eq!(
        p.limit_at(t("2026-03-06T00:00:00Z")),
        None,
        "valid_to is exclusive"
    );
}

#[test]
fn a_daily_schedule_runs_across_midnight_every_day() {
    // 22:00 to 06:00: 10 A until 02:00, then 20 A; no limit in the day.
    let mut p = profile(
        1,
        0,
        Purpose::TxDefault,
        "2026-03-02T22:00:00Z",
        &[(0, 10.0), (4 * 3600, 20.0)],
    );
    p.kind = Kind::Recurring(Recurrency::Daily);
    p.duration_s = Some(8 * 3600);
    for day in ["2026-03-02", "2026-03-03", "2026-03-20"] {
        assert_eq!(
            p.limit_at(t(&format!("{day}T23:30:00Z"))),
            Some(10.0),
            "{day}"
        );
    }
    for day in ["2026-03-03", "2026-03-04", "2026-03-21"] {
        assert_eq!(
            p.limit_at(t(&format!("{day}T01:59:00Z"))),
            Some(10.0),
            "{day}"
        );
        assert_eq!(
            p.limit_at(t(&format!("{day}T02:00:00Z"))),
            Some(20.0),
            "{day}"
        );
        assert_eq!(
            p.limit_at(t(&format!("{day}T05:59:59Z"))),
            Some(20.0),
            "{day}"
        );
        assert_eq!(p.limit_at(t(&format!("{day}T06:00:00Z"))), None, "{day}");
        assert_eq!(p.limit_at(t(&format!("{day}T12:00:00Z"))), None, "{day}");
    }
}

#[test]
fn a_weekly_schedule_repeats_every_seven_days_only() {
    // Mondays 08:00-12:00 (2026-03-02 is a Monday).
    let mut p = profile(
        1,
        0,
        Purpose::ChargePointMax,
        "2026-03-02T08:00:00Z",
        &[(0, 12.0)],
    );
    p.kind = Kind::Recurring(Recurrency::Weekly);
    p.duration_s = Some(4 * 3600);
    assert_eq!(p.limit_at(t("2026-03-09T09:00:00Z")), Some(12.0));
    assert_eq!(p.limit_at(t("2026-03-10T09:00:00Z")), None, "a Tuesday");
    assert_eq!(p.limit_at(t("2026-03-16T11:59:00Z")), Some(12.0));
}

#[test]
fn the_highest_stack_level_in_force_wins_and_lower_levels_fill_its_gaps() {
    let base = profile(1, 0, Purpose::TxDefault, T0, &[(0, 32.0)]);
    let mut peak = profile(
        2,
        5,
        Purpose::TxDefault,
        "2026-03-02T17:00:00Z",
        &[(0, 20.0)],
    );
    peak.duration_s = Some(3 * 3600);
    let set = ProfileSet::new(vec![on(Some("cp-1"), base), on(Some("cp-1"), peak)]);
    assert_eq!(
        set.charger_limit_a("cp-1", t("2026-03-02T12:00:00Z"), true),
        Some(32.0)
    );
    // A higher level wins even with a higher limit than a lower level would give.
    assert_eq!(
        set.charger_limit_a("cp-1", t("2026-03-02T18:00:00Z"), true),
        Some(20.0)
    );
    assert_eq!(
        set.charger_limit_a("cp-1", t("2026-03-02T20:00:00Z"), true),
        Some(32.0)
    );
    assert_eq!(
        set.charger_limit_a("cp-2", t("2026-03-02T18:00:00Z"), true),
        None
    );

    let high_raise = profile(3, 9, Purpose::TxDefault, T0, &[(0, 40.0)]);
    let set = ProfileSet::new(vec![
        on(
            Some("cp-1"),
            profile(1, 0, Purpose::TxDefault, T0, &[(0, 10.0)]),
        ),
        on(Some("cp-1"), high_raise),
    ]);
    assert_eq!(
        set.charger_limit_a("cp-1", t("2026-03-02T01:00:00Z"), true),
        Some(40.0)
    );
}

#[test]
fn tx_profile_overrides_tx_default_only_while_a_vehicle_is_connected() {
    let set = ProfileSet::new(vec![
        on(
            Some("cp-1"),
            profile(1, 0, Purpose::TxDefault, T0, &[(0, 16.0)]),
        ),
        on(
            Some("cp-1"),
            profile(2, 0, Purpose::TxProfile, T0, &[(0, 24.0)]),
        ),
    ]);
    let at = t("2026-03-02T10:00:00Z");
    assert_eq!(set.charger_limit_a("cp-1", at, true), Some(24.0));
    assert_eq!(set.charger_limit_a("cp-1", at, false), Some(16.0));
}

#[test]
fn charge_point_max_caps_whatever_the_transaction_profiles_allow() {
    let set = ProfileSet::new(vec![
        on(
            Some("cp-1"),
            profile(1, 0, Purpose::ChargePointMax, T0, &[(0, 13.0)]),
        ),
        on(
            Some("cp-1"),
            profile(2, 0, Purpose::TxProfile, T0, &[(0, 24.0)]),
        ),
    ]);
    let at = t("2026-03-02T10:00:00Z");
    assert_eq!(set.charger_limit_a("cp-1", at, true), Some(13.0));
    let set = ProfileSet::new(vec![
        on(
            Some("cp-1"),
            profile(1, 0, Purpose::ChargePointMax, T0, &[(0, 13.0)]),
        ),
        on(
            Some("cp-1"),
            profile(2, 0, Purpose::TxProfile, T0, &[(0, 8.0)]),
        ),
    ]);
    assert_eq!(set.charger_limit_a("cp-1", at, true), Some(8.0));
}

#[test]
fn a_site_tx_default_applies_to_every_charger_unless_one_has_its_own() {
    let set = ProfileSet::new(vec![
        on(None, profile(1, 0, Purpose::TxDefault, T0, &[(0, 10.0)])),
        on(
            Some("cp-2"),
            profile(2, 0, Purpose::TxDefault, T0, &[(0, 20.0)]),
        ),
    ]);
    let at = t("2026-03-02T10:00:00Z");
    assert_eq!(set.charger_limit_a("cp-1", at, true), Some(10.0));
    assert_eq!(set.charger_limit_a("cp-2", at, true), Some(20.0));
    // The site's TxDefault is no site cap.
    assert_eq!(set.site_limit_a(at), None);
}

#[test]
fn a_site_charge_point_max_limits_the_site_not_the_chargers() {
    let set = ProfileSet::new(vec![on(
        None,
        profile(1, 0, Purpose::ChargePointMax, T0, &[(0, 25.0)]),
    )]);
    let at = t("2026-03-02T10:00:00Z");
    assert_eq!(set.site_limit_a(at), Some(25.0));
    assert_eq!(set.charger_limit_a("cp-1", at, true), None);
}
