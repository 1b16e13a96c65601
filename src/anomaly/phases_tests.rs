use chrono::{DateTime, TimeDelta};

use super::*;
use crate::control::record::{ChargerCycle, CycleRecord};

fn facts(id: &str, map: Vec<usize>) -> Facts {
    Facts {
        id: id.into(),
        phases: map.len() as u8,
        phase_map: map,
        min_current_a: 6.0,
        max_current_a: 32.0,
    }
}

/// A record with base load `base` per grid phase and each charger drawing `amps` on its
/// charger phases, wired as `wired` (which may differ from the config).
fn record(t: i64, base: [f64; 3], chargers: &[(&str, [f64; 3], &[usize])]) -> CycleRecord {
    let mut r = CycleRecord::blank(DateTime::UNIX_EPOCH + TimeDelta::seconds(t), 40.0);
    let mut grid = base;
    for (id, amps, wired) in chargers {
        let mut c = ChargerCycle::unread(id);
        c.online = true;
        c.current_a = amps.map(Some);
        for (i, p) in wired.iter().enumerate() {
            grid[*p] += amps[i];
        }
        r.chargers.push(c);
    }
    r.grid_a = Some(grid);
    r
}

fn raised(w: &mut PhaseWatch, recs: &[CycleRecord], f: &[Facts]) -> Vec<Verdict> {
    let s = Settings::default();
    recs.iter()
        .flat_map(|r| w.observe(r, f, &s))
        .map(|(_, _, v)| v)
        .collect()
}

/// A one-phase car ramping up 6 → 10 → 14 → 18 A and back down on cp-1, while cp-2 moves
/// the other way on all three phases.
fn ramps(wired: &[usize]) -> Vec<CycleRecord> {
    let steps = [0.0, 6.0, 10.0, 14.0, 18.0, 14.0, 10.0, 6.0, 0.0];
    let wired2: &[usize] = &[1, 2, 0];
    steps
        .iter()
        .enumerate()
        .map(|(t, a)| {
            let other = 20.0 - a / 2.0;
            record(
                t as i64,
                [5.0 + 0.3 * (t % 2) as f64, 4.0, 6.0],
                &[
                    ("cp-1", [*a, 0.0, 0.0], wired),
                    ("cp-2", [other; 3], wired2),
                ],
            )
        })
        .collect()
}

#[test]
fn steps_on_the_configured_phase_raise_nothing() {
    let f = [facts("cp-1", vec![0]), facts("cp-2", vec![1, 2, 0])];
    let mut w = PhaseWatch::new(2);
    assert!(raised(&mut w, &ramps(&[0]), &f).is_empty());
}

#[test]
fn steps_on_another_phase_raise_a_mismatch_after_three_of_them() {
    let f = [facts("cp-1", vec![0]), facts("cp-2", vec![1, 2, 0])];
    let mut w = PhaseWatch::new(2);
    let recs = ramps(&[1]);
    let s = Settings::default();
    let mut first = None;
    for r in &recs {
        for (k, id, v) in w.observe(r, &f, &s) {
            if first.is_none() && matches!(v, Verdict::On(_)) {
                assert_eq!((k, id.as_str()), (AlertKind::PhaseMapMismatch, "cp-1"));
                first = Some(r.seq_or_time());
            }
        }
    }
    assert_eq!(first, Some(3));
}

#[test]
fn equal_steps_on_all_phases_prove_nothing() {
    let f = [facts("cp-1", vec![0, 1, 2])];
    let mut w = PhaseWatch::new(1);
    // Wired rotated, but a three-phase car draws the same on every phase.
    let recs: Vec<CycleRecord> = [0.0, 8.0, 16.0, 24.0, 32.0, 16.0, 0.0]
        .iter()
        .enumerate()
        .map(|(t, a)| record(t as i64, [5.0; 3], &[("cp-1", [*a; 3], &[1, 2, 0])]))
        .collect();
    assert!(raised(&mut w, &recs, &f).is_empty());
}

trait Second {
    fn seq_or_time(&self) -> i64;
}

impl Second for CycleRecord {
    fn seq_or_time(&self) -> i64 {
        self.at.timestamp()
    }
}
