//! Each kind of explanation, from a hand-built allocation and its limits.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::control::allocate::{allocate, slack, ChargerInput, CircuitInput, LinkState};
use crate::control::limits::{ChargerLimits, CircuitLimit, PlanHold};
use crate::control::usage::Usage;
use crate::devices::model::ChargeState;

const TZ: Tz = chrono_tz::Europe::Berlin;

/// 2026-01-15 16:00 UTC: 17:00 CET.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-15T16:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

fn installer(a: f64) -> Bound {
    Bound {
        limit_a: a,
        source: LimitSource::Installer,
        expires_at: None,
    }
}

fn charger(id: &str, cap: Option<Bound>) -> ChargerLimits {
    ChargerLimits {
        id: id.to_string(),
        enabled: true,
        disabled_by: None,
        max_a: 32.0,
        ceiling: installer(32.0),
        cap,
        failsafe_a: 6.0,
        plan_hold: None,
        auth_hold: None,
    }
}

fn limits(site_a: f64, circuits: Vec<CircuitLimit>, chargers: Vec<ChargerLimits>) -> CycleLimits {
    CycleLimits {
        at: t0(),
        mode: Mode::Normal,
        site: installer(site_a),
        control: installer(site_a),
        total_a: None,
        circuits,
        chargers,
    }
}

fn input_for(l: &CycleLimits, grid_a: [f64; 3]) -> AllocInput {
    AllocInput {
        phases: 3,
        site_limit_a: l.site.limit_a,
        margin_a: 0.0,
        total_limit_a: l.total_a,
        circuits: l.circuit_inputs(),
        grid_a,
        chargers: l
            .chargers
            .iter()
            .enumerate()
            .map(|(i, c)| ChargerInput {
                phase_map: vec![0, 1, 2],
                min_a: 6.0,
                max_a: c.max_a,
                priority: 0,
                enabled: c.enabled,
                cap_a: l.cap_a(i),
                step_a: 1.0,
                link: LinkState::Online {
                    state: ChargeState::C,
                    measured_a: [0.0; 3],
                },
                usage: Usage::default(),
                waiting_since_s: None,
                charging_since_s: Some(100.0),
            })
            .collect(),
        now_s: 1000.0,
        rotation_interval_s: 900.0,
    }
}

fn seen(reason: Reason) -> Seen {
    Seen {
        online: true,
        connected: true,
        reason,
        setpoint_a: Some(16.0),
    }
}

/// Every charger's why for `l`, allocated from `input`.
fn whys(l: &CycleLimits, input: &AllocInput) -> Vec<Why> {
    let decisions = allocate(input);
    let slacks = slack(input, &decisions);
    let ctx = Context {
        limits: l,
        allocation: Some((input, &decisions, &slacks)),
        tz: TZ,
        meter_silent_s: None,
    };
    decisions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut s = seen(d.reason);
            s.setpoint_a = Some(d.setpoint_a);
            explain(i, s, &ctx)
        })
        .collect()
}

#[test]
fn a_car_still_ramping_up_is_told_where_it_is_and_where_it_goes() {
    let l = limits(63.0, Vec::new(), vec![charger("cp-1", None)]);
    let input = input_for(&l, [0.0; 3]);
    let decisions = allocate(&input);
    let slacks = slack(&input, &decisions);
    let ctx = Context {
        limits: &l,
        allocation: Some((&input, &decisions, &slacks)),
        tz: TZ,
        meter_silent_s: None,
    };
    let mut s = seen(Reason::Charging);
    s.setpoint_a = Some(10.0);
    assert_eq!(
        explain(0, s, &ctx).text,
        "at its maximum of 32 A (installer); at 10 A, rising to 32 A"
    );
}

#[test]
fn a_charger_held_by_its_circuit_names_the_circuit_phase_limit_and_source() {
    let circuit = CircuitLimit {
        id: "hall-a".into(),
        limit: installer(20.0),
        members: vec![0],
    };
    let l = limits(63.0, vec![circuit], vec![charger("cp-1", None)]);
    // Phase L2 has the base load on the site, but the circuit binds first.
    let mut input = input_for(&l, [0.0; 3]);
    input.circuits = vec![CircuitInput {
        limit_a: 20.0,
        members: vec![0],
    }];
    let w = &whys(&l, &input)[0];
    assert_eq!(w.code, WhyCode::Circuit, "{w:?}");
    assert_eq!(w.constraint.as_deref(), Some("hall-a"));
    assert_eq!(w.source, Some(LimitSource::Installer));
    assert_eq!(w.limit_a, Some(20.0));
    assert_eq!(w.phase, Some(1));
    assert_eq!(w.text, "limited by circuit hall-a on L1 (20 A, installer)");
}

#[test]
fn a_charger_held_by_the_site_names_the_phase_with_least_room_and_the_limits_expiry() {
    let until = t0() + Duration::hours(2);
    let mut l = limits(40.0, Vec::new(), vec![charger("cp-1", None)]);
    l.site = Bound {
        limit_a: 40.0,
        source: LimitSource::Command,
        expires_at: Some(until),
    };
    let input = input_for(&l, [5.0, 30.0, 10.0]);
    let w = &whys(&l, &input)[0];
    assert_eq!(w.code, WhyCode::Site, "{w:?}");
    assert_eq!(w.phase, Some(2));
    assert_eq!(w.until, Some(until));
    assert_eq!(
        w.text,
        "limited by the site limit on L2 (40 A, cloud until 19:00 CET)"
    );
}

#[test]
fn a_cloud_cap_binds_with_its_value_and_a_maximum_with_the_installer() {
    let cap = Bound {
        limit_a: 10.0,
        source: LimitSource::CloudCap,
        expires_at: Some(t0() + Duration::hours(2)),
    };
    let l = limits(
        63.0,
        Vec::new(),
        vec![charger("cp-1", Some(cap)), charger("cp-2", None)],
    );
    let input = input_for(&l, [0.0; 3]);
    let w = whys(&l, &input);
    assert_eq!(w[0].code, WhyCode::Cap, "{:?}", w[0]);
    assert_eq!(w[0].source, Some(LimitSource::CloudCap));
    assert_eq!(w[0].text, "capped by the cloud at 10 A until 19:00 CET");
    assert_eq!(w[1].code, WhyCode::Max, "{:?}", w[1]);
    assert_eq!(w[1].text, "at its maximum of 32 A (installer)");
}

#[test]
fn a_plan_hold_says_until_when_in_the_sites_zone() {
    let until = DateTime::parse_from_rfc3339("2026-01-16T00:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default();
    let hold = Bound {
        limit_a: 0.0,
        source: LimitSource::Plan,
        expires_at: Some(until),
    };
    let mut c = charger("cp-1", Some(hold));
    c.plan_hold = Some(PlanHold { until: Some(until) });
    let l = limits(63.0, Vec::new(), vec![c]);
    let input = input_for(&l, [0.0; 3]);
    let w = &whys(&l, &input)[0];
    assert_eq!(w.code, WhyCode::PlanHold, "{w:?}");
    assert_eq!(w.until, Some(until));
    assert_eq!(
        w.text,
        "held by its departure plan until Fri 16 Jan 01:00 CET (cheaper slot)"
    );
}

#[test]
fn a_cap_below_the_minimum_pauses_and_says_which() {
    let cap = Bound {
        limit_a: 4.0,
        source: LimitSource::Schedule,
        expires_at: None,
    };
    let l = limits(63.0, Vec::new(), vec![charger("cp-1", Some(cap))]);
    let w = &whys(&l, &input_for(&l, [0.0; 3]))[0];
    assert_eq!(w.code, WhyCode::Limited, "{w:?}");
    assert_eq!(
        w.text,
        "paused: capped at 4 A by the schedule, below its 6 A minimum"
    );
}

#[test]
fn no_capacity_tells_the_free_amps_against_the_minimum_and_the_constraint() {
    let l = limits(20.0, Vec::new(), vec![charger("cp-1", None)]);
    let w = &whys(&l, &input_for(&l, [5.0, 15.8, 3.0]))[0];
    assert_eq!(w.code, WhyCode::NoCapacity, "{w:?}");
    assert_eq!(w.phase, Some(2));
    assert_eq!(
        w.text,
        "paused: 4.2 A free, below the 6 A minimum, by the site limit on L2 (20 A, installer); \
         it starts when 6 A are free"
    );
}

#[test]
fn waiting_for_a_turn_tells_when_the_next_slot_frees() {
    // Two cars, room for one: the charging one has held its slot since 400 s; with a 900 s
    // rotation its slot frees at 1300 s, 5 minutes after now (1000 s).
    let l = limits(
        10.0,
        Vec::new(),
        vec![charger("cp-1", None), charger("cp-2", None)],
    );
    let mut input = input_for(&l, [0.0; 3]);
    input.chargers[0].charging_since_s = Some(400.0);
    input.chargers[1].charging_since_s = None;
    input.chargers[1].waiting_since_s = Some(900.0);
    let w = whys(&l, &input);
    assert_eq!(w[1].code, WhyCode::WaitingTurn, "{:?}", w[1]);
    assert_eq!(w[1].until, Some(t0() + Duration::minutes(5)));
    assert_eq!(
        w[1].text,
        "paused: waiting for its turn; the next slot frees at 17:05 CET"
    );
}

#[test]
fn the_demand_budget_binds_over_all_phases() {
    let mut l = limits(63.0, Vec::new(), vec![charger("cp-1", None)]);
    l.total_a = Some(30.0);
    let w = &whys(&l, &input_for(&l, [0.0; 3]))[0];
    assert_eq!(w.code, WhyCode::Demand, "{w:?}");
    assert_eq!(w.source, Some(LimitSource::Demand));
    assert_eq!(
        w.text,
        "limited by the demand budget over all phases (30 A, demand budget)"
    );
}

#[test]
fn an_idle_car_is_offered_its_minimum_and_a_car_taking_less_is_told_so() {
    let idle = Bound {
        limit_a: 6.0,
        source: LimitSource::Idle,
        expires_at: None,
    };
    let l = limits(
        63.0,
        Vec::new(),
        vec![charger("cp-1", Some(idle)), charger("cp-2", None)],
    );
    let mut input = input_for(&l, [0.0; 3]);
    input.chargers[1].usage.demand_cap_a = Some(13.0);
    let w = whys(&l, &input);
    assert_eq!(w[0].source, Some(LimitSource::Idle), "{:?}", w[0]);
    assert_eq!(
        w[0].text,
        "offered its 6 A minimum: the car took nothing when offered more"
    );
    assert_eq!(w[1].code, WhyCode::Charging, "{:?}", w[1]);
    assert_eq!(
        w[1].text,
        "charging: offered 13 A, about what the car takes"
    );
}

#[test]
fn fail_safe_holding_and_startup_say_so_with_how_long_the_meter_is_silent() {
    for (mode, code, text) in [
        (
            Mode::Failsafe,
            WhyCode::Failsafe,
            "fail-safe: main meter silent for 12 s; at the fail-safe current of 6 A",
        ),
        (
            Mode::Holding,
            WhyCode::Holding,
            "holding: main meter silent for 12 s; its setpoint kept at 16 A, only ever lowered",
        ),
        (
            Mode::Startup,
            WhyCode::Startup,
            "starting: no main meter reading yet; at the fail-safe current of 6 A",
        ),
    ] {
        let mut l = limits(63.0, Vec::new(), vec![charger("cp-1", None)]);
        l.mode = mode;
        let ctx = Context {
            limits: &l,
            allocation: None,
            tz: TZ,
            meter_silent_s: Some(12.2),
        };
        let w = explain(0, seen(Reason::Charging), &ctx);
        assert_eq!((w.code, w.text.as_str()), (code, text));
        // No car: said as such, whatever the mode.
        let mut s = seen(Reason::Charging);
        s.connected = false;
        assert_eq!(explain(0, s, &ctx).code, WhyCode::NoCar);
    }
}

#[test]
fn a_reason_with_no_limit_behind_it_is_told_plainly() {
    let mut l = limits(63.0, Vec::new(), vec![charger("cp-1", None)]);
    l.chargers[0].enabled = false;
    let mut input = input_for(&l, [0.0; 3]);
    input.chargers[0].enabled = false;
    let w = &whys(&l, &input)[0];
    assert_eq!(w.code, WhyCode::Disabled);
    assert_eq!(w.source, None);
    l.chargers[0].disabled_by = Some(LimitSource::CloudCap);
    let w = &whys(&l, &input)[0];
    assert_eq!(
        (w.source, w.text.as_str()),
        (Some(LimitSource::CloudCap), "paused: disabled by the cloud")
    );
    l.chargers[0].disabled_by = Some(LimitSource::Installer);
    assert_eq!(whys(&l, &input)[0].text, "paused: disabled in the config");
    let fine = limits(63.0, Vec::new(), vec![charger("cp-1", None)]);
    let mut input = input_for(&fine, [0.0; 3]);
    input.chargers[0].link = LinkState::Online {
        state: ChargeState::A,
        measured_a: [0.0; 3],
    };
    let w = &whys(&fine, &input)[0];
    assert_eq!(
        (w.code, w.text.as_str()),
        (WhyCode::NoCar, "paused: no car")
    );
}

#[test]
fn a_charger_held_by_authorisation_says_for_what_in_every_mode() {
    use crate::control::limits::AuthHold;
    use crate::tokens::AuthState;
    let hold = |state, token: Option<&str>, refused: Option<&str>| {
        let mut c = charger("cp-1", None);
        c.ceiling = Bound {
            limit_a: 0.0,
            source: LimitSource::Auth,
            expires_at: None,
        };
        c.cap = Some(c.ceiling);
        c.failsafe_a = 0.0;
        c.auth_hold = Some(AuthHold {
            state,
            token: token.map(str::to_owned),
            refused: refused.map(str::to_owned),
        });
        c
    };
    let cases = [
        (
            hold(AuthState::Waiting, None, None),
            "held: waiting for a token",
        ),
        (
            hold(AuthState::Asking, Some("04A1B2C3D4E5F6"), None),
            "held: asking the cloud about 04A1…",
        ),
        (
            hold(
                AuthState::Refused,
                Some("04A1B2C3D4E5F6"),
                Some("not on the list"),
            ),
            "held: token 04A1… refused: not on the list",
        ),
    ];
    for (c, text) in cases {
        let l = limits(63.0, Vec::new(), vec![c]);
        let input = input_for(&l, [0.0; 3]);
        let w = &whys(&l, &input)[0];
        assert_eq!(
            (w.code, w.source, w.text.as_str()),
            (WhyCode::Auth, Some(LimitSource::Auth), text)
        );
        assert_eq!(w.limit_a, Some(0.0));
        // The same when the main meter is silent.
        let mut f = l.clone();
        f.mode = Mode::Failsafe;
        let ctx = Context {
            limits: &f,
            allocation: None,
            tz: TZ,
            meter_silent_s: Some(30.0),
        };
        assert_eq!(explain(0, seen(Reason::Limited), &ctx).text, text);
        // No car: nothing to hold.
        let mut s = seen(Reason::NoCar);
        s.connected = false;
        assert_eq!(explain(0, s, &ctx).code, WhyCode::NoCar);
    }
    assert_eq!(short_token("AB"), "AB");
}
