//! The allocator's rules, one test each.

use super::*;
use crate::control::usage::{UsageParams, UsageTracker};

fn site(limit: f64, chargers: Vec<ChargerInput>) -> AllocInput {
    AllocInput {
        phases: 3,
        site_limit_a: limit,
        margin_a: 0.0,
        total_limit_a: None,
        circuits: Vec::new(),
        grid_a: [0.0; 3],
        chargers,
        now_s: 1000.0,
        rotation_interval_s: 900.0,
    }
}

fn charger(phase_map: &[usize]) -> ChargerInput {
    ChargerInput {
        phase_map: phase_map.to_vec(),
        min_a: 6.0,
        max_a: 32.0,
        priority: 0,
        enabled: true,
        cap_a: None,
        step_a: 1.0,
        link: LinkState::Online {
            state: ChargeState::C,
            measured_a: [0.0; 3],
        },
        usage: Usage::default(),
        waiting_since_s: None,
        charging_since_s: Some(990.0),
    }
}

fn setpoints(input: &AllocInput) -> Vec<f64> {
    allocate(input).iter().map(|d| d.setpoint_a).collect()
}

#[test]
fn spare_current_is_shared_equally_and_floored_to_whole_amps() {
    let input = site(32.0, vec![charger(&[0]), charger(&[0]), charger(&[0])]);
    let mut got = setpoints(&input);
    // 32 / 3 = 10.67: floored, then the two spare amps go out one step at a time.
    got.sort_by(f64::total_cmp);
    assert_eq!(got, vec![10.0, 11.0, 11.0]);
}

#[test]
fn one_phase_car_on_three_phase_charger_frees_two_phases_for_others() {
    let chargers = vec![charger(&[0, 1, 2]), charger(&[1]), charger(&[2])];
    let mut input = site(20.0, chargers);
    assert_eq!(setpoints(&input), vec![10.0, 10.0, 10.0]);
    input.chargers[0].usage.active = [true, false, false];
    assert_eq!(setpoints(&input), vec![20.0, 20.0, 20.0]);
}

#[test]
fn a_16_amp_cars_unused_share_goes_to_others_and_comes_back_when_it_draws() {
    let mut input = site(40.0, vec![charger(&[0]), charger(&[0])]);
    let mut trackers = [0, 1].map(|_| UsageTracker::new(UsageParams::new(2.0), 1, 6.0, 32.0));
    let mut setpoint = [0.0f64, 0.0];
    // The first car accepts 16 A at most; the second takes whatever it is offered.
    let mut car_limit = [16.0, 32.0];
    let mut run = |input: &mut AllocInput, car_limit: [f64; 2], from: u32, to: u32| {
        for t in from..to {
            for i in 0..2 {
                let drawn = setpoint[i].min(car_limit[i]);
                input.chargers[i].usage =
                    trackers[i].observe(setpoint[i], &[drawn], true, t as f64);
            }
            input.now_s = t as f64;
            for (s, d) in setpoint.iter_mut().zip(allocate(input)) {
                *s = d.setpoint_a;
            }
        }
        setpoint
    };
    assert_eq!(run(&mut input, car_limit, 0, 60), [18.0, 22.0]);
    car_limit[0] = 32.0;
    assert_eq!(run(&mut input, car_limit, 60, 120), [20.0, 20.0]);
}

#[test]
fn a_demand_cap_below_min_still_gets_min() {
    let mut input = site(40.0, vec![charger(&[0])]);
    input.chargers[0].usage.demand_cap_a = Some(3.0);
    assert_eq!(setpoints(&input), vec![6.0]);
}

#[test]
fn a_profile_below_min_pauses() {
    let mut input = site(40.0, vec![charger(&[0])]);
    input.chargers[0].cap_a = Some(5.0);
    let d = allocate(&input);
    assert_eq!(d[0].setpoint_a, 0.0);
    assert_eq!(d[0].reason, Reason::Limited);
    input.chargers[0].cap_a = Some(12.5);
    assert_eq!(setpoints(&input), vec![12.0]);
}

#[test]
fn never_between_zero_and_min_when_not_all_minimums_fit() {
    let input = site(10.0, vec![charger(&[0]), charger(&[0])]);
    let d = allocate(&input);
    assert_eq!(d[0].setpoint_a, 10.0);
    assert_eq!(d[1].setpoint_a, 0.0);
    assert_eq!(d[1].reason, Reason::WaitingTurn);
}

#[test]
fn rotation_lets_a_waiting_car_in_after_the_interval() {
    let mut input = site(10.0, vec![charger(&[0]), charger(&[0])]);
    let mut turns = [
        Turn {
            waiting_since_s: None,
            charging_since_s: Some(0.0),
        },
        Turn {
            waiting_since_s: Some(0.0),
            charging_since_s: None,
        },
    ];
    let mut charged_s = [0.0, 0.0];
    let mut longest_wait: f64 = 0.0;
    for t in (0..7200).step_by(10) {
        input.now_s = t as f64;
        for (ch, turn) in input.chargers.iter_mut().zip(&turns) {
            ch.waiting_since_s = turn.waiting_since_s;
            ch.charging_since_s = turn.charging_since_s;
        }
        let d = allocate(&input);
        assert_eq!(d.iter().filter(|d| d.setpoint_a > 0.0).count(), 1);
        for i in 0..2 {
            if d[i].setpoint_a > 0.0 {
                charged_s[i] += 10.0;
            }
            turns[i] = turns[i].after(&d[i], true, t as f64);
            if let Some(w) = turns[i].waiting_since_s {
                longest_wait = longest_wait.max(t as f64 - w);
            }
        }
    }
    assert!(longest_wait <= 900.0, "a car waited {longest_wait} s");
    assert_eq!(charged_s, [3600.0, 3600.0]);
}

#[test]
fn a_fresh_slot_is_kept_while_the_other_waits_less_than_the_interval() {
    let mut input = site(10.0, vec![charger(&[0]), charger(&[0])]);
    input.chargers[0].charging_since_s = Some(500.0);
    input.chargers[1].charging_since_s = None;
    input.chargers[1].waiting_since_s = Some(400.0);
    assert_eq!(setpoints(&input), vec![10.0, 0.0]);
    // Once the waiting car has waited a full interval it goes first.
    input.now_s = 1300.0;
    assert_eq!(setpoints(&input), vec![0.0, 10.0]);
}

#[test]
fn offline_charger_is_reserved_on_its_phases_and_in_its_circuit() {
    let mut offline = charger(&[0, 1]);
    offline.link = LinkState::Offline { assumed_a: 16.0 };
    let mut input = site(32.0, vec![offline, charger(&[0]), charger(&[2])]);
    let d = allocate(&input);
    assert_eq!(
        d[0],
        Decision {
            setpoint_a: 0.0,
            reason: Reason::Offline
        }
    );
    assert_eq!(d[1].setpoint_a, 16.0);
    assert_eq!(d[2].setpoint_a, 32.0);
    // In a circuit, the reserve counts against the circuit too.
    input.circuits.push(CircuitInput {
        limit_a: 24.0,
        members: vec![0, 2],
    });
    input.chargers[0].phase_map = vec![2];
    assert_eq!(setpoints(&input), vec![0.0, 32.0, 8.0]);
}

#[test]
fn overload_decreases_at_once() {
    let mut input = site(32.0, vec![charger(&[0]), charger(&[1])]);
    input.chargers[0].link = LinkState::Online {
        state: ChargeState::C,
        measured_a: [20.0, 0.0, 0.0],
    };
    // Grid phase 0 carries the car's 20 A plus 20 A of other load: base load 20 A.
    input.grid_a = [40.0, 0.0, 0.0];
    assert_eq!(setpoints(&input), vec![12.0, 32.0]);
    // The base load alone leaves less than a minimum: that phase is paused entirely.
    input.grid_a = [48.0, 0.0, 0.0];
    assert_eq!(setpoints(&input), vec![0.0, 32.0]);
    input.grid_a = [60.0, 0.0, 0.0];
    let d = allocate(&input);
    assert_eq!(d[0].reason, Reason::NoCapacity);
}

#[test]
fn unknown_meter_reading_means_no_capacity() {
    let mut input = site(32.0, vec![charger(&[0]), charger(&[1])]);
    input.grid_a = [f64::NAN, 0.0, 0.0];
    assert_eq!(setpoints(&input), vec![0.0, 32.0]);
}

#[test]
fn margin_is_kept_free() {
    let mut input = site(32.0, vec![charger(&[0])]);
    input.margin_a = 2.5;
    assert_eq!(setpoints(&input), vec![29.0]);
}

#[test]
fn a_total_limit_is_shared_over_the_phases_the_building_leaves_free_without_a_margin() {
    // A demand budget of 60 A summed over the phases, the building at 10/4/4 A: 42 A are
    // left, and no margin is kept below the budget. Spread evenly as 20 A per phase less the
    // margin, the cars would get 8 + 14 + 14 = 36 A of it.
    let chargers = vec![charger(&[0]), charger(&[1]), charger(&[2])];
    let mut input = site(63.0, chargers);
    input.grid_a = [10.0, 4.0, 4.0];
    input.margin_a = 2.0;
    input.total_limit_a = Some(60.0);
    assert_eq!(setpoints(&input), vec![14.0, 14.0, 14.0]);
    // A three-phase car counts three times over.
    let mut input = site(63.0, vec![charger(&[0, 1, 2])]);
    input.grid_a = [10.0, 4.0, 4.0];
    input.margin_a = 2.0;
    input.total_limit_a = Some(60.0);
    assert_eq!(setpoints(&input), vec![14.0]);
    // It never raises a per-phase limit: the margin still holds below the site's.
    input.total_limit_a = Some(1000.0);
    assert_eq!(setpoints(&input), vec![32.0]);
    input.site_limit_a = 30.0;
    assert_eq!(setpoints(&input), vec![18.0]);
    // Below the minimum nothing charges; a nonsensical total gives nothing.
    input.total_limit_a = Some(18.0 + 17.0);
    assert_eq!(setpoints(&input), vec![0.0]);
    input.total_limit_a = Some(f64::NAN);
    assert_eq!(setpoints(&input), vec![0.0]);
}

#[test]
fn circuit_limit_binds_only_its_members() {
    let mut input = site(63.0, vec![charger(&[0]), charger(&[0]), charger(&[0])]);
    input.circuits.push(CircuitInput {
        limit_a: 16.0,
        members: vec![0, 1],
    });
    assert_eq!(setpoints(&input), vec![8.0, 8.0, 32.0]);
}

#[test]
fn phase_map_rotation_is_accounted_on_grid_phases() {
    // Charger 0's only phase is on grid L2; its measured 10 A is part of L2's 30 A.
    let mut x = charger(&[1]);
    x.link = LinkState::Online {
        state: ChargeState::C,
        measured_a: [10.0, 0.0, 0.0],
    };
    let mut input = site(32.0, vec![x, charger(&[0])]);
    input.grid_a = [0.0, 30.0, 0.0];
    assert_eq!(setpoints(&input), vec![12.0, 32.0]);
    // Rotated 3-phase chargers: each grid phase carries one phase of each.
    let mut input = site(
        30.0,
        vec![
            charger(&[0, 1, 2]),
            charger(&[1, 2, 0]),
            charger(&[2, 0, 1]),
        ],
    );
    input.grid_a = [0.0, 6.0, 0.0];
    assert_eq!(setpoints(&input), vec![8.0, 8.0, 8.0]);
}

#[test]
fn higher_priority_is_served_first() {
    let mut input = site(20.0, vec![charger(&[0]), charger(&[0]), charger(&[1])]);
    input.chargers[0].priority = 1;
    input.chargers[0].max_a = 16.0;
    // The low-priority car has waited far longer: priority still wins.
    input.chargers[1].charging_since_s = None;
    input.chargers[1].waiting_since_s = Some(0.0);
    let d = allocate(&input);
    assert_eq!(d[0].setpoint_a, 16.0);
    assert_eq!(
        d[1],
        Decision {
            setpoint_a: 0.0,
            reason: Reason::NoCapacity
        }
    );
    // A low-priority charger on another phase is not held back.
    assert_eq!(d[2].setpoint_a, 20.0);
}

#[test]
fn states_that_ask_for_nothing_get_nothing() {
    let mut chargers: Vec<_> = (0..4).map(|_| charger(&[0])).collect();
    for (ch, state) in chargers.iter_mut().zip([
        ChargeState::A,
        ChargeState::E,
        ChargeState::F,
        ChargeState::B,
    ]) {
        ch.link = LinkState::Online {
            state,
            measured_a: [0.0; 3],
        };
    }
    chargers[3].enabled = false;
    let reasons: Vec<_> = allocate(&site(32.0, chargers))
        .iter()
        .map(|d| d.reason)
        .collect();
    assert_eq!(
        reasons,
        vec![
            Reason::NoCar,
            Reason::Fault,
            Reason::Fault,
            Reason::Disabled,
        ]
    );
}
