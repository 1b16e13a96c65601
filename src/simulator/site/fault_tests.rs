//! The faults the anomaly rules look for, as the simulated site injects them.

use super::*;
use crate::simulator::scenario::Scenario;

/// The site every scenario here is on: an empty building, a meter on RS-485.
const SITE_HEAD: &str = r#"name = "t"
seed = 1
duration_s = 600
start = "2026-01-15T17:00:00Z"
[site]
id = "s"
grid_limit_a = 63.0
phases = 3
voltage_v = 230.0
margin_a = 1.0
failsafe_current_a = 6.0
[base_load]
points = [[0, 0, 0, 0]]
[meter]
model = "eastron-sdm630"
transport = "rtu"
"#;

fn site(fault: &str) -> SiteModel {
    let text = format!(
        r#"
{SITE_HEAD}[[charger]]
id = "cp-1"
model = "alfen-eve"
transport = "tcp"
phases = 3
phase_map = [1, 2, 3]
min_current_a = 6.0
max_current_a = 16.0
[[vehicle]]
charger = "cp-1"
arrive_s = 0
depart_s = 600
capacity_kwh = 77
soc_start = 0.2
soc_target = 0.9
max_current_a = 16
phases = 1
response_delay_s = 0
[[fault]]
at_s = 100
duration_s = 100
target = "cp-1"
{fault}
"#
    );
    let s = Scenario::parse(&text, "t").expect("scenario");
    SiteModel::from_registry(&s).expect("site")
}

fn run_to(s: &mut SiteModel, t_s: f64) {
    while s.time_s() < t_s - 1e-9 {
        s.step(0.1);
    }
}

fn register(s: &SiteModel) -> f64 {
    s.charger_truth()[0].energy_register_wh
}

#[test]
fn a_frozen_register_stands_still_and_a_drifting_one_counts_its_share() {
    let mut s = site("kind = \"frozen_register\"");
    run_to(&mut s, 110.0);
    let frozen = register(&s);
    run_to(&mut s, 190.0);
    assert_eq!(register(&s), frozen);
    run_to(&mut s, 260.0);
    assert!(register(&s) > frozen);

    let mut s = site("kind = \"meter_drift\"\namount = 0.5");
    run_to(&mut s, 100.0);
    let (reg0, took0) = (register(&s), s.vehicle_truth()[0].energy_wh);
    run_to(&mut s, 200.0);
    let (reg1, took1) = (register(&s), s.vehicle_truth()[0].energy_wh);
    assert!(((reg1 - reg0) / (took1 - took0) - 0.5).abs() < 0.01);
}

#[test]
fn a_register_jump_happens_once() {
    let mut s = site("kind = \"register_jump\"\namount = 5000");
    run_to(&mut s, 99.0);
    let before = register(&s);
    run_to(&mut s, 101.0);
    let after = register(&s);
    assert!(after - before > 5000.0 && after - before < 5010.0);
    run_to(&mut s, 200.0);
    assert!(register(&s) - after < 200.0);
}

#[test]
fn a_swapped_phase_moves_the_current_to_the_next_grid_phase() {
    let mut s = site("kind = \"swapped_phase\"");
    run_to(&mut s, 50.0);
    let g = s.grid_current_a();
    assert!(g[0] > 15.0 && g[1] < 0.1, "{g:?}");
    run_to(&mut s, 150.0);
    let g = s.grid_current_a();
    assert!(g[1] > 15.0 && g[0] < 0.1, "{g:?}");
}

#[test]
fn a_stuck_session_reports_charging_and_draws_nothing() {
    let mut s = site("kind = \"stuck_session\"");
    run_to(&mut s, 150.0);
    let t = &s.charger_truth()[0];
    assert_eq!(t.state, ChargeState::C);
    assert!(t.grid_a.iter().all(|a| *a == 0.0), "{t:?}");
}

/// Two chargers with a carded car each from 0 s, and `fault` on cp-2 from 100 s to 200 s.
fn two_bays(fault: &str) -> SiteModel {
    let bay = |id: &str, token: &str| {
        format!(
            r#"
[[charger]]
id = "{id}"
model = "webasto-next"
transport = "tcp"
phases = 3
phase_map = [1, 2, 3]
min_current_a = 6.0
max_current_a = 32.0
auth = "local"
[[vehicle]]
charger = "{id}"
arrive_s = 0
depart_s = 600
capacity_kwh = 77
soc_start = 0.2
soc_target = 0.9
max_current_a = 16
phases = 3
response_delay_s = 0
token = "{token}"
"#
        )
    };
    let text = format!(
        r#"
{SITE_HEAD}{}{}
[[fault]]
at_s = 100
duration_s = 100
target = "cp-2"
kind = "{fault}"
"#,
        bay("cp-1", "CARD0001"),
        bay("cp-2", "CARD0002")
    );
    let s = Scenario::parse(&text, "t").expect("scenario");
    SiteModel::from_registry(&s).expect("site")
}

#[test]
fn token_faults_change_what_the_id_register_shows() {
    let shown = |s: &SiteModel| s.presented_token(1);
    // An unknown card: 20 s of every minute from the onset, then the car's own again.
    let mut s = two_bays("unknown_token");
    run_to(&mut s, 50.0);
    assert_eq!(shown(&s).as_deref(), Some("CARD0002"));
    let mut seen = Vec::new();
    for t in [105.0, 125.0, 165.0, 185.0, 250.0] {
        run_to(&mut s, t);
        seen.push(shown(&s));
    }
    let unknown = Some(FaultSpec::UNKNOWN_TOKEN.to_string());
    assert_eq!(
        seen,
        [
            unknown.clone(),
            None,
            unknown,
            None,
            Some("CARD0002".to_string())
        ]
    );
    // The other charger's card while the fault lasts.
    let mut s = two_bays("token_in_use_twice");
    run_to(&mut s, 150.0);
    assert_eq!(shown(&s).as_deref(), Some("CARD0001"));
    assert_eq!(s.presented_token(0).as_deref(), Some("CARD0001"));
    run_to(&mut s, 250.0);
    assert_eq!(shown(&s).as_deref(), Some("CARD0002"));
}

#[test]
fn a_charger_drawing_without_authorisation_shows_no_card_and_ignores_a_hold() {
    let mut s = two_bays("unauthorized_draw");
    run_to(&mut s, 150.0);
    assert_eq!(s.presented_token(1), None);
    // The controller holds it at 0 A: it offers its maximum regardless, and the car draws.
    s.chargers[1].setpoint_a = Some(0.0);
    s.chargers[0].setpoint_a = Some(0.0);
    s.sync_offers();
    run_to(&mut s, 160.0);
    assert!(s.charger_phase_a(1)[0] > 15.0, "{:?}", s.charger_phase_a(1));
    assert!(s.charger_phase_a(0)[0] < 0.5, "{:?}", s.charger_phase_a(0));
}
