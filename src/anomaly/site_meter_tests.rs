use chrono::{DateTime, TimeDelta};

use super::*;
use crate::control::record::{ChargerCycle, GridReading};

fn facts() -> Vec<Facts> {
    ["cp-1", "cp-2"]
        .iter()
        .map(|id| Facts {
            id: id.to_string(),
            phases: 3,
            phase_map: vec![0, 1, 2],
            min_current_a: 6.0,
            max_current_a: 32.0,
        })
        .collect()
}

/// A cycle at `t` s: the chargers report `chargers_w` each, the meter `grid_w`.
fn record(t: i64, grid_w: f64, chargers_w: [f64; 2]) -> CycleRecord {
    let mut r = CycleRecord::blank(DateTime::UNIX_EPOCH + TimeDelta::seconds(t), 63.0);
    r.grid = Some(GridReading {
        power_w: Some(grid_w),
        ..GridReading::default()
    });
    for (id, w) in ["cp-1", "cp-2"].iter().zip(chargers_w) {
        let mut c = ChargerCycle::unread(id);
        c.online = true;
        c.power_w = Some(w);
        r.chargers.push(c);
    }
    r
}

/// Runs `f(t) -> (grid, chargers)` from `from` to `to` s, returning the seconds at which the
/// verdict turned on and off.
fn run(
    w: &mut MeterAgreement,
    from: i64,
    to: i64,
    mut f: impl FnMut(i64) -> (f64, [f64; 2]),
) -> (Option<i64>, Option<i64>) {
    let s = Settings::default();
    let (mut on, mut off) = (None, None);
    let mut was = false;
    for t in from..to {
        let (g, c) = f(t);
        let v = w.observe(&record(t, g, c), &facts(), 230.0, &s);
        let now = matches!(v, Verdict::On(_));
        if now && !was {
            on.get_or_insert(t);
        }
        if !now && was {
            off.get_or_insert(t);
        }
        was = now;
    }
    (on, off)
}

/// A base load of 5 kW with a wobble of ±300 W.
fn base(t: i64) -> f64 {
    5000.0 + if t % 3 == 0 { 300.0 } else { -300.0 }
}

/// cp-1 switching between 0 and 11 kW every 2 minutes, cp-2 at 7 kW from 100 s.
fn chargers(t: i64) -> [f64; 2] {
    let a = if (t / 120) % 2 == 1 { 11_000.0 } else { 0.0 };
    let b = if t >= 100 { 7000.0 } else { 0.0 };
    [a, b]
}

#[test]
fn a_meter_that_sees_every_step_raises_nothing() {
    let mut w = MeterAgreement::default();
    let (on, _) = run(&mut w, 0, 3600, |t| {
        let c = chargers(t);
        (base(t) + c[0] + c[1], c)
    });
    assert_eq!(on, None);
}

#[test]
fn chargers_reporting_more_than_the_site_imports_raise_after_the_hold() {
    let mut w = MeterAgreement::default();
    // From 600 s the meter reads half of what flows: with 18 kW of chargers, the site shows
    // less than they report.
    let (on, off) = run(&mut w, 0, 1200, |t| {
        let c = [11_000.0, 7000.0];
        let real = base(t) + c[0] + c[1];
        (
            if (600..900).contains(&t) {
                real / 2.0
            } else {
                real
            },
            c,
        )
    });
    assert_eq!(on, Some(630), "the 30 s hold from 600 s");
    assert_eq!(off, Some(900));
}

#[test]
fn a_charger_step_the_meter_does_not_see_raises_after_three_steps_and_clears() {
    let mut w = MeterAgreement::default();
    // cp-1 steps by 11 kW every 2 minutes; from 1200 s the meter does not see cp-1 at all
    // (its feed bypasses the meter), so the residual never goes negative beyond tolerance
    // while cp-1 is off, and steps by 11 kW while on.
    let (on, off) = run(&mut w, 0, 3000, |t| {
        let c = chargers(t);
        let seen = if (1200..2200).contains(&t) { 0.0 } else { c[0] };
        (base(t) + seen + c[1] + 11_000.0, c)
    });
    let on = on.expect("raised");
    assert!((1200..1200 + 3 * 120 + 10).contains(&on), "raised at {on}");
    let off = off.expect("cleared");
    assert!(off > 2200, "cleared at {off}");
}

#[test]
fn a_base_load_step_alone_is_no_evidence() {
    let mut w = MeterAgreement::default();
    // The building switches 4 kW on and off every 90 s; the chargers stay put.
    let (on, _) = run(&mut w, 0, 3600, |t| {
        let extra = if (t / 90) % 2 == 1 { 4000.0 } else { 0.0 };
        (base(t) + extra + 18_000.0, [11_000.0, 7000.0])
    });
    assert_eq!(on, None);
}

#[test]
fn a_charger_not_read_is_a_gap_that_changes_nothing() {
    let s = Settings::default();
    let mut w = MeterAgreement::default();
    let mut r = record(0, 0.0, [11_000.0, 7000.0]);
    r.chargers[1].online = false;
    assert_eq!(w.observe(&r, &facts(), 230.0, &s), Verdict::Keep);
    let mut r = record(1, 0.0, [11_000.0, 7000.0]);
    r.grid = None;
    assert_eq!(w.observe(&r, &facts(), 230.0, &s), Verdict::Keep);
}

#[test]
fn a_meter_read_behind_a_steep_ramp_is_judged_once_the_ramp_has_settled() {
    let mut w = MeterAgreement::default();
    // 30 kW ramped up over 10 s and down again every 2 minutes; the meter shows what flowed
    // 2 s earlier. Judged mid-ramp, each step would look 6 kW short.
    let ramp = |t: i64| {
        let phase = t % 240;
        let up = (phase.min(10) as f64) * 3000.0;
        let down = if phase >= 120 {
            ((phase - 120).min(10) as f64) * 3000.0
        } else {
            0.0
        };
        [up - down, 0.0]
    };
    let (on, _) = run(&mut w, 0, 3600, |t| (base(t) + ramp(t - 2)[0], ramp(t)));
    assert_eq!(on, None);
}

/// A building whose load jumps by `lift_w` for 45 s every ten minutes (a lift, a
/// compressor), with uniform noise of ±`noise_a` on each phase; the load manager answers the
/// jump `answer_s` later by taking it off cp-1 (and gives it back as late when the load
/// goes); cp-2 steps on its own every few minutes. The meter shows `scale` of what flows
/// from `fault_from` s on.
fn lift_site(
    seed: u64,
    noise_a: f64,
    lift_w: f64,
    answer_s: i64,
    scale: f64,
    fault_from: i64,
) -> impl FnMut(i64) -> (f64, [f64; 2]) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut cp2 = 7000.0;
    let mut next = 200;
    move |t| {
        let lift = |t: i64| (t.rem_euclid(600)) < 45;
        let building = 5000.0 + if lift(t) { lift_w } else { 0.0 };
        let cp1 = if lift(t - answer_s) {
            22_000.0 - lift_w
        } else {
            22_000.0
        };
        if t >= next {
            cp2 = f64::from(rng.gen_range(0..=11)) * 1000.0;
            next = t + rng.gen_range(60..400);
        }
        let noise: f64 = (0..3)
            .map(|_| {
                if noise_a > 0.0 {
                    rng.gen_range(-noise_a..=noise_a) * 230.0
                } else {
                    0.0
                }
            })
            .sum();
        let real = building + noise + cp1 + cp2;
        let shown = if t >= fault_from { real * scale } else { real };
        (shown, [cp1, cp2])
    }
}

#[test]
fn a_building_load_the_load_manager_answers_is_no_evidence() {
    // 26 A on three phases (18 kW) or on one (6 kW), answered 1 to 5 s later, on buildings
    // of up to ±5 A of noise: a day each, no alarm.
    for (seed, lift_w) in [(1, 17_940.0), (2, 5980.0), (3, 17_940.0), (4, 5980.0)] {
        for answer_s in [1, 3, 5] {
            for noise_a in [0.0, 2.0, 5.0] {
                let mut w = MeterAgreement::default();
                let (on, _) = run(
                    &mut w,
                    0,
                    86_400,
                    lift_site(seed, noise_a, lift_w, answer_s, 1.0, i64::MAX),
                );
                assert_eq!(
                    on, None,
                    "{lift_w} W answered after {answer_s} s, ±{noise_a} A"
                );
            }
        }
    }
}

#[test]
fn a_meter_showing_part_of_what_flows_is_found_on_a_building_with_a_lift() {
    // From an hour on, the meter shows half of what flows, beside the building's own steps
    // (learned before): what the building's steps explain must not hide it.
    for seed in 1..=4 {
        let mut w = MeterAgreement::default();
        let (on, _) = run(
            &mut w,
            0,
            3 * 3600,
            lift_site(seed, 2.0, 17_940.0, 3, 0.5, 3600),
        );
        let on = on.expect("found");
        assert!(on >= 3600, "raised at {on}, before the fault");
    }
}
