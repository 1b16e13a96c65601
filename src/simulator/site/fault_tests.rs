//! The faults the anomaly rules look for, as the simulated site injects them.

use super::*;
use crate::simulator::scenario::Scenario;

fn site(fault: &str) -> SiteModel {
    let text = format!(
        r#"
name = "t"
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
[[charger]]
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
