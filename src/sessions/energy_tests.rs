//! Tests of the energy meter: register scopes, resets, rollovers, jumps, integration and the
//! per-minute split.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::*;

/// 11 kW, the usual three-phase 16 A charger.
const MAX_W: f64 = 11_000.0;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 18, 0, 0)
        .single()
        .unwrap_or_default()
}

fn at(s: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(s)
}

fn sum(samples: &[Sample]) -> f64 {
    samples.iter().map(|s| s.energy_wh).sum()
}

#[test]
fn lifetime_register_counts_differences_from_the_first_reading() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    assert_eq!(m.observe(at(0), Some(1_000_000.0), Some(0.0)), None);
    assert_eq!(m.observe(at(60), Some(1_000_100.0), Some(7_000.0)), None);
    assert_eq!(m.observe(at(120), Some(1_000_250.0), Some(7_000.0)), None);
    assert_eq!(m.energy_wh(), 250.0);
    assert_eq!(m.meter_start_wh(), Some(1_000_000.0));
    assert_eq!(m.meter_end_wh(), Some(1_000_250.0));
    assert_eq!(m.source(), EnergySource::Register);
    assert_eq!(m.max_power_w(), Some(7_000.0));
    assert!(m.notes().is_empty());
}

#[test]
fn a_missing_register_reading_is_bridged_by_the_next_one() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    m.observe(at(0), Some(500.0), None);
    m.observe(at(60), None, None);
    m.observe(at(120), Some(800.0), None);
    assert_eq!(m.energy_wh(), 300.0);
    assert_eq!(m.source(), EnergySource::Register);
}

#[test]
fn a_reset_counts_from_the_new_value_bridged_by_power() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    m.observe(at(0), Some(5_000.0), Some(6_000.0));
    m.observe(at(60), Some(5_100.0), Some(6_000.0));
    // Reset between readings: the register says nothing of this minute, power does (100 Wh).
    let note = m.observe(at(120), Some(3.0), Some(6_000.0));
    assert_eq!(
        note,
        Some(MeterNote::Reset {
            at: at(120),
            from_wh: 5_100.0,
            to_wh: 3.0
        })
    );
    m.observe(at(180), Some(103.0), Some(6_000.0));
    assert!((m.energy_wh() - 300.0).abs() < 1e-9, "{}", m.energy_wh());
    assert_eq!(m.meter_end_wh(), Some(103.0));
}

#[test]
fn a_reset_without_power_loses_only_the_unseen_interval() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    m.observe(at(0), Some(1_000.0), None);
    m.observe(at(600), Some(1_500.0), None);
    m.observe(at(1200), Some(20.0), None);
    m.observe(at(1800), Some(520.0), None);
    assert_eq!(m.energy_wh(), 1_000.0);
}

#[test]
fn small_drops_of_a_float_register_are_noise() {
    let cfg = MeterConfig {
        resolution_wh: 10.0,
        ..MeterConfig::lifetime(MAX_W)
    };
    let mut m = EnergyMeter::new(cfg);
    m.observe(at(0), Some(10_000.0), None);
    assert_eq!(m.observe(at(10), Some(9_994.0), None), None);
    m.observe(at(20), Some(10_030.0), None);
    assert_eq!(m.energy_wh(), 30.0);
}

#[test]
fn rollover_with_a_known_modulus_adds_the_wrap() {
    // u32 counting 0.1 kWh.
    let modulus = 4_294_967_296.0 * 100.0;
    let cfg = MeterConfig {
        modulus_wh: Some(modulus),
        resolution_wh: 100.0,
        ..MeterConfig::lifetime(MAX_W)
    };
    let mut m = EnergyMeter::new(cfg);
    m.observe(at(0), Some(modulus - 200.0), None);
    let note = m.observe(at(300), Some(300.0), None);
    assert_eq!(
        note,
        Some(MeterNote::Rollover {
            at: at(300),
            from_wh: modulus - 200.0,
            to_wh: 300.0
        })
    );
    assert_eq!(m.energy_wh(), 500.0);
    m.observe(at(600), Some(800.0), None);
    assert_eq!(m.energy_wh(), 1_000.0);
}

#[test]
fn a_drop_far_from_the_modulus_is_a_reset_not_a_wrap() {
    let cfg = MeterConfig {
        modulus_wh: Some(4_294_967_296.0),
        ..MeterConfig::lifetime(MAX_W)
    };
    let mut m = EnergyMeter::new(cfg);
    m.observe(at(0), Some(2_000_000.0), None);
    let note = m.observe(at(60), Some(10.0), None);
    assert!(matches!(note, Some(MeterNote::Reset { .. })), "{note:?}");
    assert_eq!(m.energy_wh(), 0.0);
}

#[test]
fn session_scope_starts_at_the_first_reading() {
    let cfg = MeterConfig {
        scope: EnergyScope::Session,
        ..MeterConfig::lifetime(MAX_W)
    };
    let mut m = EnergyMeter::new(cfg);
    m.observe(at(0), Some(0.0), None);
    m.observe(at(600), Some(1_200.0), None);
    assert_eq!(m.energy_wh(), 1_200.0);
    assert_eq!(m.meter_start_wh(), Some(0.0));
    assert_eq!(m.meter_end_wh(), Some(1_200.0));
}

#[test]
fn session_scope_restart_counts_everything_shown_after_it() {
    // The register still shows the last session's total at plug-in, then restarts at 0.
    let cfg = MeterConfig {
        scope: EnergyScope::Session,
        ..MeterConfig::lifetime(MAX_W)
    };
    let mut m = EnergyMeter::new(cfg);
    m.observe(at(0), Some(25_000.0), None);
    let note = m.observe(at(30), Some(40.0), None);
    assert!(matches!(note, Some(MeterNote::Reset { .. })), "{note:?}");
    m.observe(at(630), Some(1_040.0), None);
    assert_eq!(m.energy_wh(), 1_040.0);
    assert_eq!(m.meter_start_wh(), Some(25_000.0));
}

#[test]
fn no_register_integrates_power_by_trapezoid() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    m.observe(at(0), None, Some(0.0));
    m.observe(at(60), None, Some(6_000.0));
    m.observe(at(120), None, None);
    m.observe(at(180), None, Some(6_000.0));
    // 0→6 kW over a minute = 50 Wh; 6 kW for two minutes = 200 Wh.
    assert!((m.energy_wh() - 250.0).abs() < 1e-9, "{}", m.energy_wh());
    assert_eq!(m.source(), EnergySource::Integrated);
    assert_eq!(m.meter_start_wh(), None);
    assert_eq!(m.meter_end_wh(), None);
}

#[test]
fn power_before_the_first_register_reading_is_kept() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    m.observe(at(0), None, Some(3_600.0));
    m.observe(at(60), Some(9_000.0), Some(3_600.0));
    m.observe(at(120), Some(9_060.0), Some(3_600.0));
    assert!((m.energy_wh() - 120.0).abs() < 1e-9, "{}", m.energy_wh());
    assert_eq!(m.source(), EnergySource::Register);
    assert_eq!(m.meter_start_wh(), Some(9_000.0));
}

#[test]
fn an_implausible_jump_is_rejected_and_flagged() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    m.observe(at(0), Some(10_000.0), None);
    // 11 kW for 60 s is 183 Wh; 50 kWh is a glitch.
    let note = m.observe(at(60), Some(60_000.0), None);
    assert!(
        matches!(note, Some(MeterNote::ImplausibleJump { from_wh, to_wh, .. })
            if from_wh == 10_000.0 && to_wh == 60_000.0),
        "{note:?}"
    );
    assert_eq!(m.energy_wh(), 0.0);
    // The register comes back: the glitch never counted.
    assert_eq!(m.observe(at(120), Some(10_150.0), None), None);
    assert_eq!(m.energy_wh(), 150.0);
    assert_eq!(m.notes().len(), 1);
}

#[test]
fn a_jump_confirmed_by_the_next_reading_rebases_without_counting_it() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    m.observe(at(0), Some(10_000.0), Some(6_000.0));
    m.observe(at(60), Some(900_000.0), Some(6_000.0));
    let note = m.observe(at(120), Some(900_100.0), Some(6_000.0));
    assert!(matches!(note, Some(MeterNote::Rebased { .. })), "{note:?}");
    // Power for the jump's minute (100 Wh), the register after it (100 Wh).
    assert!((m.energy_wh() - 200.0).abs() < 1e-9, "{}", m.energy_wh());
    m.observe(at(180), Some(900_200.0), Some(6_000.0));
    assert!((m.energy_wh() - 300.0).abs() < 1e-9, "{}", m.energy_wh());
}

#[test]
fn a_delta_spanning_a_minute_boundary_is_split_by_time() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    // 18:00:45 → 18:01:15, 100 Wh: half in each minute.
    m.observe(at(45), Some(0.0), None);
    m.observe(at(75), Some(100.0), None);
    // 18:01:15 → 18:03:15, 120 Wh: 45 s, 60 s, 15 s.
    m.observe(at(195), Some(220.0), None);
    let got: Vec<(i64, f64)> = m
        .samples()
        .iter()
        .map(|s| ((s.minute_start - t0()).num_seconds(), s.energy_wh))
        .collect();
    let want = [(0, 50.0), (60, 50.0 + 45.0), (120, 60.0), (180, 15.0)];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((gm, ge), (wm, we)) in got.iter().zip(want) {
        assert_eq!(*gm, wm);
        assert!((ge - we).abs() < 1e-9, "{got:?}");
    }
}

#[test]
fn out_of_order_and_garbage_observations_are_ignored() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    m.observe(at(60), Some(100.0), Some(1_000.0));
    m.observe(at(0), Some(50.0), Some(1_000.0));
    m.observe(at(90), Some(f64::NAN), Some(f64::INFINITY));
    m.observe(at(120), Some(130.0), Some(1_000.0));
    assert_eq!(m.energy_wh(), 30.0);
    assert_eq!(m.max_power_w(), Some(1_000.0));
}

proptest! {
    /// Whatever the register does, the samples add up to the total and never go negative,
    /// and the total never exceeds what the charger could deliver over the session.
    #[test]
    fn samples_add_up_and_stay_physical(
        steps in proptest::collection::vec((1i64..400, -2_000.0f64..1_500.0, 0.0f64..11_000.0), 1..60),
        modulus in proptest::option::of(50_000.0f64..200_000.0),
    ) {
        let cfg = MeterConfig { modulus_wh: modulus, ..MeterConfig::lifetime(MAX_W) };
        let mut m = EnergyMeter::new(cfg);
        let mut t = 0i64;
        let mut reg = 40_000.0f64;
        m.observe(at(t), Some(reg), Some(0.0));
        for (dt, dreg, p) in steps {
            t += dt;
            reg = (reg + dreg).max(0.0);
            if let Some(md) = modulus { reg %= md; }
            m.observe(at(t), Some(reg), Some(p));
        }
        prop_assert!((sum(m.samples()) - m.energy_wh()).abs() < 1e-6);
        prop_assert!(m.samples().iter().all(|s| s.energy_wh >= 0.0));
        prop_assert!(m.samples().windows(2).all(|w| w[0].minute_start < w[1].minute_start));
        let hours = t as f64 / 3600.0;
        // Every counted step is bounded by the jump check or by power, itself ≤ MAX_W.
        let bound = MAX_W * hours * POWER_SLACK + 60.0 * (1.0 + FIXED_SLACK_WH) + 11_000.0 * hours;
        prop_assert!(m.energy_wh() <= bound, "{} > {}", m.energy_wh(), bound);
    }
}

/// A 0.1 kWh integer register read every second while 11 kW flow: the true count starts
/// at 1,234,567.8 Wh, mid-step.
fn stepped_run(m: &mut EnergyMeter, from_s: i64, to_s: i64, true_wh: &mut f64) {
    let p = 11_000.0;
    for s in from_s..=to_s {
        if s > from_s {
            *true_wh += p / 3600.0;
        }
        let shown = (*true_wh / 100.0).floor() * 100.0;
        m.observe(at(s), Some(shown), Some(p));
    }
}

fn stepped() -> MeterConfig {
    MeterConfig {
        resolution_wh: 100.0,
        stepped: true,
        ..MeterConfig::lifetime(22_000.0)
    }
}

#[test]
fn a_coarse_stepped_register_is_refined_by_power_to_within_a_few_wh() {
    let mut m = EnergyMeter::new(stepped());
    let start = 1_234_567.8;
    let mut truth = start;
    stepped_run(&mut m, 0, 1_000, &mut truth);
    m.finish(at(1_000));
    let delivered = truth - start;
    // The register alone would be off by up to a step (100 Wh).
    assert!(
        (m.energy_wh() - delivered).abs() < 5.0,
        "{} vs {delivered}",
        m.energy_wh()
    );
    let in_samples: f64 = m.samples().iter().map(|s| s.energy_wh).sum();
    assert!((in_samples - m.energy_wh()).abs() < 1e-6);
}

#[test]
fn a_stepped_register_resumed_after_a_restart_still_counts_exactly() {
    let mut m = EnergyMeter::new(stepped());
    let start = 1_234_567.8;
    let mut truth = start;
    stepped_run(&mut m, 0, 600, &mut truth);
    let resume = Resume {
        samples: m.samples().to_vec(),
        start_wh: m.meter_start_wh(),
        last_wh: m.meter_end_wh(),
        last_at: at(600),
        max_power_w: m.max_power_w(),
        notes: Vec::new(),
        energy_wh: m.energy_wh(),
    };
    // Down for five minutes while the car charged on.
    truth += 11_000.0 * 300.0 / 3600.0;
    let mut r = EnergyMeter::resume(stepped(), resume, at(900));
    stepped_run(&mut r, 900, 1_500, &mut truth);
    r.finish(at(1_500));
    let delivered = truth - start;
    assert!(
        (r.energy_wh() - delivered).abs() < 5.0,
        "{} vs {delivered}",
        r.energy_wh()
    );
}

/// A charge on a 1 s loop whose power swings between 4 and 10 kW; the register counts
/// `gain(t)` of what flows (1: healthy, 0: frozen, 0.7: drifting), read as a `step` Wh
/// integer. Returns the true energy delivered (the trapezoid of the power, as it flows
/// linearly between readings).
fn faulty_run(
    m: &mut EnergyMeter,
    to_s: i64,
    step: f64,
    gain: impl Fn(i64) -> f64,
    fault_at: Option<(i64, RegisterFault)>,
) -> f64 {
    let power = |s: i64| 7_000.0 + 3_000.0 * (s as f64 / 97.0).sin();
    let mut truth = 0.0;
    let mut register = 2_000_000.0;
    for s in 0..=to_s {
        if s > 0 {
            let wh = (power(s - 1) + power(s)) / 2.0 / 3600.0;
            truth += wh;
            register += wh * gain(s);
        }
        let p = power(s);
        m.observe_with(
            at(s),
            Some((register / step).floor() * step),
            Some(p),
            Some(p),
        );
        if let Some((f, reason)) = fault_at {
            if f == s {
                assert!(m.register_fault(at(s), reason));
            }
        }
    }
    truth
}

fn integrated_since(m: &EnergyMeter) -> Option<DateTime<Utc>> {
    m.notes().iter().find_map(|n| match n {
        MeterNote::IntegratedPower { since, .. } => Some(*since),
        _ => None,
    })
}

#[test]
fn a_frozen_register_is_replaced_by_power_from_its_last_move() {
    for (cfg, step) in [(MeterConfig::lifetime(MAX_W), 1.0), (stepped(), 100.0)] {
        let mut m = EnergyMeter::new(cfg);
        // Frozen from 600 s; found at 660 s (fine) or once 230 Wh flowed (coarse, ~720 s).
        let found = if step > 1.0 { 720 } else { 660 };
        let truth = faulty_run(
            &mut m,
            1_800,
            step,
            |s| if s >= 600 { 0.0 } else { 1.0 },
            Some((found, RegisterFault::RegisterFrozen)),
        );
        assert!(
            (m.energy_wh() - truth).abs() <= 20.0,
            "step {step}: {} Wh recorded, {truth:.1} Wh delivered",
            m.energy_wh()
        );
        assert!((sum(m.samples()) - m.energy_wh()).abs() < 1e-6);
        let since = integrated_since(&m).unwrap_or_else(|| panic!("no note: {:?}", m.notes()));
        assert!(since <= at(600) && since >= at(480), "since {since}");
        assert!(m.integrating());
        assert!(
            !m.register_fault(at(1_800), RegisterFault::RegisterFrozen),
            "once"
        );
    }
}

#[test]
fn a_drifting_register_is_replaced_by_power_from_where_they_last_agreed() {
    for (cfg, step, found) in [
        (MeterConfig::lifetime(MAX_W), 1.0, 640),
        (stepped(), 100.0, 900),
    ] {
        let mut m = EnergyMeter::new(cfg);
        let truth = faulty_run(
            &mut m,
            2_400,
            step,
            |s| if s >= 600 { 0.7 } else { 1.0 },
            Some((found, RegisterFault::MeterDrift)),
        );
        assert!(
            (m.energy_wh() - truth).abs() <= 20.0,
            "step {step}: {} Wh recorded, {truth:.1} Wh delivered",
            m.energy_wh()
        );
        assert!((sum(m.samples()) - m.energy_wh()).abs() < 1e-6);
        let since = integrated_since(&m).unwrap_or_else(|| panic!("no note: {:?}", m.notes()));
        assert!(since <= at(600), "since {since}");
    }
}

#[test]
fn without_a_fault_found_the_register_is_billed_as_it_counts() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    let truth = faulty_run(
        &mut m,
        1_200,
        1.0,
        |s| if s >= 600 { 0.7 } else { 1.0 },
        None,
    );
    let register = m.meter_end_wh().unwrap_or(0.0) - m.meter_start_wh().unwrap_or(0.0);
    assert!((m.energy_wh() - register).abs() < 1e-6);
    assert!(truth - m.energy_wh() > 100.0, "the drift shows");
    assert!(integrated_since(&m).is_none() && !m.integrating());
}

#[test]
fn a_power_reading_that_is_off_keeps_the_register() {
    // The power reads 1.5 × what flows; the register and currents × voltage agree.
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    let mut register: f64 = 10_000.0;
    for s in 0..=600 {
        register += 7_000.0 / 3600.0;
        m.observe_with(at(s), Some(register.floor()), Some(10_500.0), Some(7_000.0));
    }
    let before = m.energy_wh();
    assert!(!m.register_fault(at(600), RegisterFault::MeterDrift));
    assert_eq!(m.energy_wh(), before);
    assert!(m.notes().is_empty());
}

#[test]
fn a_session_on_integrated_power_stays_on_it_after_a_restart() {
    let mut m = EnergyMeter::new(MeterConfig::lifetime(MAX_W));
    faulty_run(
        &mut m,
        900,
        1.0,
        |s| if s >= 600 { 0.0 } else { 1.0 },
        Some((660, RegisterFault::RegisterFrozen)),
    );
    let r = Resume {
        samples: m.samples().to_vec(),
        start_wh: m.meter_start_wh(),
        last_wh: m.meter_end_wh(),
        last_at: at(900),
        max_power_w: m.max_power_w(),
        notes: m.notes().to_vec(),
        energy_wh: m.energy_wh(),
    };
    let before = m.energy_wh();
    let mut back = EnergyMeter::resume(MeterConfig::lifetime(MAX_W), r, at(1_000));
    assert!(back.integrating());
    assert!(integrated_since(&back).is_some());
    assert!(matches!(
        back.notes().last(),
        Some(MeterNote::Resumed { .. })
    ));
    // The register moves again, far too much: not counted; power is.
    let frozen = back.meter_end_wh().unwrap_or(0.0);
    back.observe_with(at(1_000), Some(frozen), Some(7_200.0), None);
    back.observe_with(at(1_060), Some(frozen + 5_000.0), Some(7_200.0), None);
    assert!(
        (back.energy_wh() - before - 120.0).abs() < 1e-6,
        "{}",
        back.energy_wh()
    );
}
