//! Each source on its own, then every combination: no bound ever above the installer's.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::*;
use crate::control::demand::DemandStatus;
use crate::control::profile::{ChargingProfile, Kind, Period, Purpose, StoredProfile};

const GRID_A: f64 = 63.0;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A site of two chargers, `cp-1` (6–32 A) on circuit `hall-a` (40 A), `cp-2` (6–16 A).
fn config(extra: &str) -> Arc<Config> {
    let text = format!(
        "[site]\nid = \"s\"\ngrid_limit_a = {GRID_A}\nfailsafe_current_a = 8.0\n\
         timezone = \"Europe/Berlin\"\n\
         [meter]\nmodel = \"eastron-sdm630\"\nhost = \"127.0.0.1\"\n\
         [[charger]]\nid = \"cp-1\"\nmodel = \"alfen-eve\"\nhost = \"127.0.0.2\"\n\
         min_current_a = 6.0\nmax_current_a = 32.0\n\
         [[charger]]\nid = \"cp-2\"\nmodel = \"alfen-eve\"\nhost = \"127.0.0.3\"\n\
         min_current_a = 6.0\nmax_current_a = 16.0\n\
         [[circuit]]\nid = \"hall-a\"\nlimit_a = 40.0\nchargers = [\"cp-1\"]\n{extra}"
    );
    Arc::new(crate::config::load_str(&text, "test").unwrap_or_else(|e| panic!("{e}")))
}

fn obs(chargers: Vec<ChargerObs>) -> CycleObs {
    CycleObs {
        now: t0(),
        time_trusted: true,
        mode: Mode::Normal,
        demand: None,
        chargers,
    }
}

fn plain() -> CycleObs {
    obs(vec![ChargerObs::default(); 2])
}

fn profile(charger: Option<&str>, purpose: Purpose, limit_a: f64) -> StoredProfile {
    StoredProfile {
        charger: charger.map(str::to_owned),
        profile: ChargingProfile {
            id: 1,
            stack_level: 0,
            purpose,
            kind: Kind::Absolute,
            valid_from: None,
            valid_to: None,
            start: t0() - Duration::hours(1),
            duration_s: None,
            periods: vec![Period {
                start_s: 0,
                limit_a,
                phases: None,
            }],
            min_rate_a: None,
        },
    }
}

fn demand(allowed_kw: f64) -> DemandStatus {
    DemandStatus {
        window_start: t0(),
        window_end: t0() + Duration::minutes(15),
        energy_wh: 0.0,
        limit_kw: allowed_kw,
        projected_kw: 0.0,
        allowed_kw,
        month_peak_kw: 0.0,
        finished: None,
        building_exceeds: false,
    }
}

#[test]
fn the_installer_alone_sets_the_site_circuits_and_maximums() {
    let l = Limits::new(config("")).resolve(&plain());
    assert_eq!(l.site.limit_a, GRID_A);
    assert_eq!(l.site.source, LimitSource::Installer);
    assert_eq!(l.control, l.site);
    assert_eq!(l.total_a, None);
    assert_eq!(l.circuits.len(), 1);
    assert_eq!(l.circuits[0].id, "hall-a");
    assert_eq!(l.circuits[0].limit.limit_a, 40.0);
    assert_eq!(l.circuits[0].members, vec![0]);
    assert_eq!(l.chargers[1].ceiling.limit_a, 16.0);
    assert_eq!(l.chargers[1].ceiling.source, LimitSource::Installer);
    assert_eq!(l.chargers[0].cap, None);
    assert_eq!(l.chargers[0].failsafe_a, 8.0);
    assert!(l.chargers.iter().all(|c| c.enabled));
}

#[test]
fn a_cloud_site_limit_lowers_and_lapses_at_its_expiry_never_raises() {
    let mut limits = Limits::new(config(""));
    let until = t0() + Duration::hours(6);
    limits.set_site_limit(Some(20.0), Some(until));
    let l = limits.resolve(&plain());
    assert_eq!(l.site.limit_a, 20.0);
    assert_eq!(l.site.source, LimitSource::Command);
    assert_eq!(l.site.expires_at, Some(until));
    assert_eq!(
        limits.site(until, true).limit_a,
        GRID_A,
        "lapsed at its expiry"
    );
    assert!(!limits.expire(until - Duration::seconds(1)));
    assert!(limits.expire(until));
    assert_eq!(limits.commanded_site_limit(), (None, None));
    limits.set_site_limit(Some(500.0), None);
    assert_eq!(limits.resolve(&plain()).site.limit_a, GRID_A);
    limits.set_site_limit(Some(f64::NAN), None);
    assert_eq!(limits.resolve(&plain()).site.limit_a, GRID_A);
}

#[test]
fn a_cloud_charger_cap_lowers_its_ceiling_and_cap_and_a_disable_ands_with_the_config() {
    let mut limits = Limits::new(config(""));
    limits.set_charger(0, Some(false), Some(10.0));
    let l = limits.resolve(&plain());
    let c = &l.chargers[0];
    assert!(!c.enabled);
    assert_eq!(c.disabled_by, Some(LimitSource::CloudCap));
    assert_eq!(c.ceiling.limit_a, 10.0);
    assert_eq!(c.ceiling.source, LimitSource::CloudCap);
    assert_eq!(
        c.cap.map(|b| (b.limit_a, b.source)),
        Some((10.0, LimitSource::CloudCap))
    );
    assert_eq!(c.failsafe_a, 8.0);
    // At or above the configured maximum: no cap; a NaN caps to 0.
    limits.set_charger(0, Some(true), Some(40.0));
    let l = limits.resolve(&plain());
    assert!(l.chargers[0].enabled);
    assert_eq!(l.chargers[0].cap, None);
    limits.set_charger(0, None, Some(f64::NAN));
    let l = limits.resolve(&plain());
    assert_eq!(l.chargers[0].cap.map(|b| b.limit_a), Some(0.0));
    assert_eq!(
        l.chargers[0].failsafe_a, 0.0,
        "fail-safe below its minimum: paused"
    );
}

#[test]
fn profiles_cap_the_site_and_a_charger_with_their_source() {
    let mut limits = Limits::new(config(""));
    limits.set_profiles(ProfileSet::new(vec![
        profile(None, Purpose::ChargePointMax, 50.0),
        profile(Some("cp-2"), Purpose::TxProfile, 11.0),
    ]));
    let mut o = plain();
    o.chargers[1].connected = true;
    let l = limits.resolve(&o);
    assert_eq!(
        (l.site.limit_a, l.site.source),
        (50.0, LimitSource::Profile)
    );
    let cap = l.chargers[1].cap.expect("profile cap");
    assert_eq!((cap.limit_a, cap.source), (11.0, LimitSource::Profile));
    // A transaction profile needs a car.
    assert_eq!(limits.resolve(&plain()).chargers[1].cap, None);
}

#[test]
fn schedules_cap_the_site_and_a_charger_and_all_count_when_the_time_is_untrusted() {
    // 12:00 UTC is 13:00 in Berlin: the site entry is in force, the charger's is not.
    let limits = Limits::new(config(
        "[[schedule]]\nfrom = \"12:00\"\nto = \"14:00\"\nlimit_a = 30.0\n\
         [[schedule]]\ncharger = \"cp-1\"\nfrom = \"20:00\"\nto = \"22:00\"\nlimit_a = 10.0\n",
    ));
    let l = limits.resolve(&plain());
    assert_eq!(
        (l.site.limit_a, l.site.source),
        (30.0, LimitSource::Schedule)
    );
    assert_eq!(l.chargers[0].cap, None);
    let mut o = plain();
    o.time_trusted = false;
    let l = limits.resolve(&o);
    let cap = l.chargers[0].cap.expect("every entry counts");
    assert_eq!((cap.limit_a, cap.source), (10.0, LimitSource::Schedule));
}

#[test]
fn the_demand_budget_lowers_the_control_limit_and_sets_the_total() {
    let limits = Limits::new(config(""));
    let mut o = plain();
    o.demand = Some(demand(23.0));
    let l = limits.resolve(&o);
    assert_eq!(
        l.site.source,
        LimitSource::Installer,
        "the allocator's per-phase limit"
    );
    assert_eq!(l.control.source, LimitSource::Demand);
    assert!((l.control.limit_a - 23_000.0 / 230.0 / 3.0).abs() < 1e-9);
    assert!((l.total_a.expect("total") - 100.0).abs() < 1e-9);
    o.demand = Some(demand(-5.0));
    assert_eq!(limits.resolve(&o).total_a, Some(0.0));
}

#[test]
fn a_plan_hold_and_an_idle_car_cap_a_charger_with_their_source() {
    let limits = Limits::new(config(""));
    let until = t0() + Duration::hours(11);
    let l = limits.resolve(&obs(vec![
        ChargerObs {
            connected: true,
            idle: false,
            plan_hold: Some(PlanHold { until: Some(until) }),
            auth_hold: None,
        },
        ChargerObs {
            connected: true,
            idle: true,
            plan_hold: None,
            auth_hold: None,
        },
    ]));
    let held = l.chargers[0].cap.expect("held");
    assert_eq!(
        (held.limit_a, held.source, held.expires_at),
        (0.0, LimitSource::Plan, Some(until))
    );
    let idle = l.chargers[1].cap.expect("idle");
    assert_eq!((idle.limit_a, idle.source), (6.0, LimitSource::Idle));
}

#[test]
fn the_mode_is_carried_and_the_failsafe_current_never_tops_the_ceiling() {
    let mut limits = Limits::new(config(""));
    let mut o = plain();
    o.mode = Mode::Failsafe;
    limits.set_charger(1, None, Some(7.0));
    let l = limits.resolve(&o);
    assert_eq!(l.mode, Mode::Failsafe);
    assert_eq!(l.chargers[0].failsafe_a, 8.0);
    assert_eq!(l.chargers[1].failsafe_a, 7.0);
}

#[test]
fn a_reload_replaces_the_installers_part_and_keeps_every_command() {
    let mut limits = Limits::new(config(""));
    let until = t0() + Duration::hours(1);
    limits.set_site_limit(Some(25.0), Some(until));
    limits.set_charger(0, Some(false), Some(12.0));
    limits.set_profiles(ProfileSet::new(vec![profile(
        Some("cp-2"),
        Purpose::TxDefault,
        9.0,
    )]));
    let text = "[site]\nid = \"s\"\ngrid_limit_a = 20.0\n\
         [meter]\nmodel = \"eastron-sdm630\"\nhost = \"127.0.0.1\"\n\
         [[charger]]\nid = \"cp-1\"\nmodel = \"alfen-eve\"\nhost = \"127.0.0.2\"\nmax_current_a = 10.0\n\
         [[charger]]\nid = \"cp-2\"\nmodel = \"alfen-eve\"\nhost = \"127.0.0.3\"\nmax_current_a = 16.0\n";
    limits.reconfigure(Arc::new(
        crate::config::load_str(text, "reload").unwrap_or_else(|e| panic!("{e}")),
    ));
    assert_eq!(limits.commanded_site_limit(), (Some(25.0), Some(until)));
    let l = limits.resolve(&plain());
    assert_eq!(
        (l.site.limit_a, l.site.source),
        (20.0, LimitSource::Installer)
    );
    assert!(l.circuits.is_empty());
    assert!(
        !l.chargers[0].enabled,
        "the cloud's disable outlives the reload"
    );
    assert_eq!(l.chargers[0].ceiling.limit_a, 10.0, "under the new maximum");
    assert_eq!(l.chargers[1].cap.map(|b| b.limit_a), Some(9.0));
    // Back above the command: the command binds again, with its expiry.
    limits.reconfigure(config(""));
    let l = limits.resolve(&plain());
    assert_eq!((l.site.limit_a, l.site.expires_at), (25.0, Some(until)));
    assert_eq!(l.chargers[0].ceiling.limit_a, 12.0);
}

fn any_a() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        -100.0f64..1000.0,
    ]
}

fn any_opt_a() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), any_a().prop_map(Some)]
}

/// Every authorisation state: 0–2 hold the charger, 3–4 let it charge.
fn auth_hold(k: usize) -> Option<AuthHold> {
    use crate::tokens::{AuthMode, AuthState, AuthStatus, Identity};
    let (mode, state) = [
        (AuthMode::Local, AuthState::Waiting),
        (AuthMode::Cloud, AuthState::Asking),
        (AuthMode::Local, AuthState::Refused),
        (AuthMode::Cloud, AuthState::Authorized),
        (AuthMode::Free, AuthState::Open),
    ][k];
    AuthHold::of(&AuthStatus {
        mode,
        state,
        identity: Identity {
            token: Some("04A1B2C3D4E5F6".into()),
            ..Identity::default()
        },
        refused: (state == AuthState::Refused).then(|| "not on the list".into()),
    })
}

#[test]
fn an_unauthorised_charger_is_held_at_0_a_in_every_mode() {
    let limits = Limits::new(config(""));
    for mode in [Mode::Normal, Mode::Holding, Mode::Failsafe, Mode::Startup] {
        let mut o = plain();
        o.mode = mode;
        o.chargers[0].connected = true;
        o.chargers[0].auth_hold = auth_hold(0);
        let l = limits.resolve(&o);
        let c = &l.chargers[0];
        assert_eq!(
            (c.ceiling.limit_a, c.ceiling.source),
            (0.0, LimitSource::Auth)
        );
        assert_eq!(c.failsafe_a, 0.0);
        assert_eq!(c.cap.map(|b| b.source), Some(LimitSource::Auth));
        // The other charger is untouched.
        assert_eq!(l.chargers[1].failsafe_a, 8.0);
        assert_eq!(l.chargers[1].cap, None);
    }
    assert!(auth_hold(3).is_none() && auth_hold(4).is_none());
}

proptest! {
    /// Invariant 1: no source and no combination of them lifts a site phase above
    /// `grid_limit_a`, a circuit above its own, or a charger above its configured maximum;
    /// every bound is a number, never negative.
    #[test]
    fn no_source_lifts_a_bound_above_the_installers(
        site in any_opt_a(),
        expiry_h in proptest::option::of(-2i64..3),
        cloud in proptest::collection::vec((any::<Option<bool>>(), any_opt_a()), 2),
        site_profile in any_opt_a(),
        charger_profile in any_opt_a(),
        demand_kw in proptest::option::of(any_a()),
        connected in any::<[bool; 2]>(),
        idle in any::<[bool; 2]>(),
        held in any::<[bool; 2]>(),
        auth in proptest::collection::vec(0usize..5, 2),
        trusted in any::<bool>(),
        reload in any::<bool>(),
    ) {
        let mut limits = Limits::new(config(
            "[[schedule]]\nlimit_a = 20.0\nfrom = \"00:00\"\nto = \"23:59\"\n\
             [[schedule]]\ncharger = \"cp-2\"\nfrom = \"00:00\"\nto = \"23:59\"\nlimit_w = 0\n",
        ));
        limits.set_site_limit(site, expiry_h.map(|h| t0() + Duration::hours(h)));
        for (i, &(en, max)) in cloud.iter().enumerate() {
            limits.set_charger(i, en, max);
        }
        let mut profiles = Vec::new();
        if let Some(a) = site_profile {
            profiles.push(profile(None, Purpose::ChargePointMax, a));
        }
        if let Some(a) = charger_profile {
            profiles.push(profile(Some("cp-1"), Purpose::TxDefault, a));
        }
        limits.set_profiles(ProfileSet::new(profiles));
        if reload {
            limits.reconfigure(config(""));
        }
        let o = CycleObs {
            now: t0(),
            time_trusted: trusted,
            mode: Mode::Normal,
            demand: demand_kw.map(demand),
            chargers: (0..2)
                .map(|i| ChargerObs {
                    connected: connected[i],
                    idle: idle[i],
                    plan_hold: held[i].then_some(PlanHold { until: None }),
                    auth_hold: auth_hold(auth[i]),
                })
                .collect(),
        };
        let l = limits.resolve(&o);
        // Authorisation only ever lowers: a charger it holds has nothing to give in any mode.
        for (i, c) in l.chargers.iter().enumerate() {
            if o.chargers[i].auth_hold.is_some() {
                prop_assert_eq!(c.ceiling.limit_a, 0.0);
                prop_assert_eq!(c.failsafe_a, 0.0);
                prop_assert_eq!(c.cap.map(|b| (b.limit_a, b.source)), Some((0.0, LimitSource::Auth)));
            }
        }
        let mut open = o.clone();
        for c in &mut open.chargers {
            c.auth_hold = None;
        }
        let without = limits.resolve(&open);
        for (a, b) in l.chargers.iter().zip(&without.chargers) {
            prop_assert!(a.ceiling.limit_a <= b.ceiling.limit_a);
            prop_assert!(a.failsafe_a <= b.failsafe_a);
            let offered = |c: &ChargerLimits| c.max_a.min(c.cap.map_or(f64::INFINITY, |b| b.limit_a));
            prop_assert!(offered(a) <= offered(b));
        }
        prop_assert_eq!(l.site, without.site);
        prop_assert_eq!(l.control, without.control);
        for b in [l.site, l.control] {
            prop_assert!(b.limit_a <= GRID_A && b.limit_a >= 0.0, "{b:?}");
        }
        prop_assert!(l.control.limit_a <= l.site.limit_a);
        if let Some(t) = l.total_a {
            prop_assert!(t >= 0.0 && !t.is_nan());
        }
        for c in &l.circuits {
            prop_assert!(c.limit.limit_a <= 40.0);
        }
        for (c, max) in l.chargers.iter().zip([32.0, 16.0]) {
            prop_assert!(c.ceiling.limit_a <= max && c.ceiling.limit_a >= 0.0, "{c:?}");
            prop_assert!(c.failsafe_a <= c.ceiling.limit_a && c.failsafe_a >= 0.0);
            if let Some(cap) = c.cap {
                prop_assert!(cap.limit_a >= 0.0 && !cap.limit_a.is_nan(), "{c:?}");
            }
            // What the allocator is given never lifts it above its maximum.
            let offered = c.max_a.min(c.cap.map_or(f64::INFINITY, |b| b.limit_a));
            prop_assert!(offered <= max);
        }
    }
}
