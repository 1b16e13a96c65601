//! The rules that need no running site: what a valid profile becomes, and the schedule
//! shapes refused because part of them could never apply.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;

fn cfg() -> Config {
    crate::config::load_str(
        include_str!("../../../tests/fixtures/config/base.toml"),
        "base.toml",
    )
    .unwrap_or_else(|e| panic!("fixture config loads: {e}"))
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn set_profile(schedule: Value, kind: &str) -> Result<Command, CommandError> {
    let mut profile = json!({
        "chargingProfileId": 4,
        "stackLevel": 2,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    });
    if kind == "Recurring" {
        profile["recurrencyKind"] = json!("Daily");
    }
    let Value::Object(body) = json!({"charger": "cp-01", "profile": profile}) else {
        unreachable!("a JSON object")
    };
    parse("set_profile", body, &cfg(), now())
}

fn schedule(duration: Option<u32>, starts: &[u32]) -> Value {
    let periods: Vec<Value> = starts
        .iter()
        .map(|&s| json!({"startPeriod": s, "limit": 10.5, "numberPhases": 3}))
        .collect();
    json!({
        "startSchedule": "2026-03-02T22:00:00+01:00",
        "duration": duration,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": periods,
        "minChargingRate": 6.0,
    })
}

#[test]
fn a_valid_recurring_profile_becomes_its_validated_form() {
    let cmd = set_profile(schedule(Some(28_800), &[0, 3600]), "Recurring");
    let Ok(Command::SetProfile(sp)) = cmd else {
        panic!("accepted: {cmd:?}")
    };
    assert_eq!(sp.charger.as_deref(), Some("cp-01"));
    let p = sp.profile;
    assert_eq!((p.id, p.stack_level), (4, 2));
    assert_eq!(p.purpose, Purpose::TxDefault);
    assert_eq!(p.kind, Kind::Recurring(Recurrency::Daily));
    assert_eq!(p.start.to_rfc3339(), "2026-03-02T21:00:00+00:00");
    assert_eq!(p.duration_s, Some(28_800));
    assert_eq!(p.periods.len(), 2);
    assert_eq!(p.periods[1].start_s, 3600);
    assert_eq!(p.periods[1].limit_a, 10.5);
    assert_eq!(p.min_rate_a, Some(6.0));
}

#[test]
fn unreachable_parts_of_a_schedule_are_refused() {
    // Longer than its recurrence.
    let e = set_profile(schedule(Some(90_000), &[0]), "Recurring");
    assert!(
        matches!(
            e,
            Err(CommandError::Invalid {
                field: "duration",
                ..
            })
        ),
        "{e:?}"
    );
    // A period after the end of the schedule.
    let e = set_profile(schedule(Some(3600), &[0, 3600]), "Absolute");
    assert!(
        matches!(
            e,
            Err(CommandError::Invalid {
                field: "chargingSchedulePeriod",
                ..
            })
        ),
        "{e:?}"
    );
    // A period after the end of the day, in a daily schedule.
    let e = set_profile(schedule(None, &[0, 86_400]), "Recurring");
    assert!(
        matches!(
            e,
            Err(CommandError::Invalid {
                field: "chargingSchedulePeriod",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn an_empty_period_list_is_a_removal() {
    let cmd = set_profile(schedule(None, &[]), "Absolute");
    assert_eq!(
        cmd.ok(),
        Some(Command::RemoveProfile {
            charger: Some("cp-01".into()),
            id: 4
        })
    );
}

#[test]
fn zero_pauses_a_charger_and_its_own_maximum_is_the_top_of_the_range() {
    let body = |max: f64| {
        let Value::Object(b) = json!({"charger": "cp-02", "max_current_a": max}) else {
            unreachable!("a JSON object")
        };
        parse("set_charger", b, &cfg(), now())
    };
    assert!(body(0.0).is_ok());
    assert!(body(16.0).is_ok());
    assert!(body(16.1).is_err(), "cp-02 is configured for 16 A");
    assert!(body(5.9).is_err(), "below the charger's minimum");
}

fn body(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object"),
    }
}

#[test]
fn set_plan_takes_energy_and_a_future_departure_or_neither() {
    let ok = parse(
        "set_plan",
        body(json!({"charger": "cp-01", "energy_wh": 30000, "depart_at": "2026-03-03T06:00:00Z"})),
        &cfg(),
        now(),
    );
    assert!(matches!(ok, Ok(Command::SetPlan { plan: Some(p), .. }) if p.energy_wh == 30000));
    let clear = parse("set_plan", body(json!({"charger": "cp-01"})), &cfg(), now());
    assert!(matches!(clear, Ok(Command::SetPlan { plan: None, .. })));
    for (b, says) in [
        (json!({"charger": "cp-01", "energy_wh": 30000}), "together"),
        (
            json!({"charger": "cp-01", "energy_wh": 30000, "depart_at": "2026-03-02T11:00:00Z"}),
            "not in the future",
        ),
        (
            json!({"charger": "cp-01", "energy_wh": 30000, "depart_at": "2026-04-02T11:00:00Z"}),
            "days ahead",
        ),
        (
            json!({"charger": "cp-01", "energy_wh": 0, "depart_at": "2026-03-03T06:00:00Z"}),
            "outside",
        ),
        (
            json!({"charger": "cp-77", "energy_wh": 1, "depart_at": "2026-03-03T06:00:00Z"}),
            "cp-77",
        ),
    ] {
        let e = parse("set_plan", body(b.clone()), &cfg(), now()).expect_err("refused");
        assert!(e.to_string().contains(says), "{b}: {e}");
    }
}

#[test]
fn set_demand_limit_needs_a_demand_section_a_month_and_a_sane_target() {
    let e = parse(
        "set_demand_limit",
        body(json!({"month": "2026-03", "limit_kw": 30.0})),
        &cfg(),
        now(),
    )
    .expect_err("no [demand] in the fixture");
    assert!(e.to_string().contains("[demand]"), "{e}");
    let text = format!(
        "{}\n[demand]\nlimit_kw = 25.0\n",
        include_str!("../../../tests/fixtures/config/base.toml")
    );
    let with = crate::config::load_str(&text, "base.toml").unwrap_or_else(|e| panic!("{e}"));
    let ok = parse(
        "set_demand_limit",
        body(json!({"month": "2026-03", "limit_kw": 30.0})),
        &with,
        now(),
    );
    assert_eq!(
        ok.ok(),
        Some(Command::SetDemandLimit {
            year: 2026,
            month: 3,
            limit_kw: Some(30.0)
        })
    );
    for (b, says) in [
        (json!({"month": "2026-13", "limit_kw": 30.0}), "not a month"),
        (json!({"month": "March", "limit_kw": 30.0}), "not a month"),
        (json!({"month": "2026-03", "limit_kw": -1.0}), "outside"),
    ] {
        let e = parse("set_demand_limit", body(b.clone()), &with, now()).expect_err("refused");
        assert!(e.to_string().contains(says), "{b}: {e}");
    }
}
