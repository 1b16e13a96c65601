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

/// Quiet cycles before any step: the rule first measures the site's noise.
const WARM: i64 = 30;

/// A one-phase car ramping up 6 → 10 → 14 → 18 A and back down on cp-1, each for two cycles
/// (after [`WARM`] quiet cycles), while cp-2 moves the other way on all three phases.
fn ramps(wired: &[usize]) -> Vec<CycleRecord> {
    let steps = [0.0, 6.0, 10.0, 14.0, 18.0, 14.0, 10.0, 6.0, 0.0];
    let wired2: &[usize] = &[1, 2, 0];
    (0..WARM)
        .map(|_| 0.0)
        .chain(steps.iter().flat_map(|a| [*a, *a]))
        .enumerate()
        .map(|(t, a)| {
            let other = 20.0 - a / 2.0;
            record(
                t as i64,
                [5.0 + 0.3 * (t % 2) as f64, 4.0, 6.0],
                &[("cp-1", [a, 0.0, 0.0], wired), ("cp-2", [other; 3], wired2)],
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
fn a_clean_step_on_another_phase_raises_a_mismatch() {
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
    // cp-2 moves with every step of cp-1, but evenly on its three phases (the same through
    // any map), so cp-1's first step of 6 A on a quiet site is proof on its own, judged once
    // it has settled.
    assert_eq!(first, Some(WARM + 3));
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

/// A generated three-phase site, one record per second: a building with imbalanced phases,
/// uniform noise of ±`noise_a` per phase on every reading and a load of 26 A that comes on
/// for 45 s every ten minutes (on one phase or all three); and `maps.len()` chargers, each
/// with cars of one or three phases (a third of them one-phase, on the charger's first
/// phase) whose current steps to a new value every 20 s to 5 min, and now and then right
/// after the building's load switched (the load manager answering it). `wired` gives how
/// each charger is really wired (its configured map where it is right).
struct Site {
    rng: rand::rngs::SmallRng,
    noise_a: f64,
    maps: Vec<Vec<usize>>,
    wired: Vec<Vec<usize>>,
    cars: Vec<(u8, f64, i64)>,
    /// Cars of this many phases only, per charger (None: drawn).
    fixed: Vec<Option<u8>>,
    lift_phases: [bool; 3],
}

impl Site {
    fn new(seed: u64, noise_a: f64, maps: Vec<Vec<usize>>, wired: Vec<Vec<usize>>) -> Site {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let lift_phases = if rng.gen_bool(0.5) {
            [true; 3]
        } else {
            let p = rng.gen_range(0..3);
            [0, 1, 2].map(|i| i == p)
        };
        let cars = maps.iter().map(|_| (3, 0.0, 0)).collect();
        Site {
            fixed: maps.iter().map(|_| None).collect(),
            rng,
            noise_a,
            maps,
            wired,
            cars,
            lift_phases,
        }
    }

    fn facts(&self) -> Vec<Facts> {
        self.maps
            .iter()
            .enumerate()
            .map(|(i, m)| facts(&format!("cp-{i}"), m.clone()))
            .collect()
    }

    fn record(&mut self, t: i64) -> CycleRecord {
        use rand::Rng;
        let lift = |t: i64| (t % 600) < 45;
        let answer = !lift(t - 2) && lift(t - 1) || lift(t - 2) && !lift(t - 1);
        for (i, car) in self.cars.iter_mut().enumerate() {
            if t >= car.2 || (answer && self.rng.gen_bool(0.5)) {
                if t >= car.2 && self.rng.gen_bool(0.1) {
                    // The next car.
                    car.0 = if self.rng.gen_bool(1.0 / 3.0) { 1 } else { 3 };
                }
                let phases = self.fixed[i].unwrap_or(car.0);
                car.0 = phases.min(self.maps[i].len() as u8).max(1);
                car.1 = if self.rng.gen_bool(0.15) {
                    0.0
                } else {
                    f64::from(self.rng.gen_range(6..=32))
                };
                car.2 = t + self.rng.gen_range(20..300);
            }
        }
        let mut base = [8.0, 5.0, 6.5];
        for (b, on) in base.iter_mut().zip(self.lift_phases) {
            if on && lift(t) {
                *b += 26.0;
            }
            if self.noise_a > 0.0 {
                *b += self.rng.gen_range(-self.noise_a..=self.noise_a);
            }
        }
        let chargers: Vec<(String, [f64; 3], Vec<usize>)> = self
            .cars
            .iter()
            .enumerate()
            .map(|(i, (phases, a, _))| {
                let mut amps = [0.0; 3];
                for x in amps.iter_mut().take(usize::from(*phases)) {
                    *x = *a;
                }
                (format!("cp-{i}"), amps, self.wired[i].clone())
            })
            .collect();
        let refs: Vec<(&str, [f64; 3], &[usize])> = chargers
            .iter()
            .map(|(id, a, w)| (id.as_str(), *a, w.as_slice()))
            .collect();
        record(t, base, &refs)
    }
}

/// Every map: three-phase ones in each rotation and one-phase ones on each phase.
fn generated_maps(seed: u64, n: usize) -> Vec<Vec<usize>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed ^ 0x5eed);
    (0..n)
        .map(|_| {
            let r = rng.gen_range(0..3usize);
            if rng.gen_bool(0.2) {
                vec![r]
            } else {
                (0..3).map(|p| (p + r) % 3).collect()
            }
        })
        .collect()
}

/// One phase later on the grid: how the simulator's `swapped_phase` fault wires a charger.
fn rotated(m: &[usize]) -> Vec<usize> {
    m.iter().map(|p| (p + 1) % 3).collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// Healthy generated sites of every noise level up to ±5 A, a third of the cars
    /// one-phase, a building load switching every ten minutes: six hours, no alarm.
    #[test]
    fn healthy_generated_sites_raise_nothing(seed in 0u64..1_000_000, noise in 0.0f64..=5.0, n in 2usize..=6) {
        let maps = generated_maps(seed, n);
        let mut site = Site::new(seed, noise, maps.clone(), maps);
        let f = site.facts();
        let mut w = PhaseWatch::new(f.len());
        let s = Settings::default();
        for t in 0..6 * 3600 {
            let r = site.record(t);
            let out = w.observe(&r, &f, &s);
            proptest::prop_assert!(out.is_empty(), "t = {t}: {out:?}");
        }
    }

    /// A charger wired one phase off, with a one-phase car (the only car a swapped phase
    /// shows with), on a site of any noise up to ±5 A: found within the hour its car steps
    /// through, once its steps stand out from the noise measured on the site.
    #[test]
    fn a_rotated_charger_with_a_one_phase_car_is_found(seed in 0u64..1_000_000, noise in 0.0f64..=5.0) {
        let maps = vec![vec![0, 1, 2], vec![2, 0, 1], vec![1]];
        let mut wired = maps.clone();
        wired[0] = rotated(&maps[0]);
        let mut site = Site::new(seed, noise, maps, wired);
        site.fixed[0] = Some(1);
        let f = site.facts();
        let mut w = PhaseWatch::new(f.len());
        let s = Settings::default();
        let mut found = None;
        for t in 0..3600 {
            let r = site.record(t);
            for (_, id, v) in w.observe(&r, &f, &s) {
                if matches!(v, Verdict::On(_)) {
                    proptest::prop_assert_eq!(id.as_str(), "cp-0");
                    found.get_or_insert(t);
                }
            }
        }
        proptest::prop_assert!(found.is_some(), "not found in an hour at ±{noise} A");
    }
}

#[test]
fn the_noise_measured_on_the_site_is_the_spread_of_its_changes() {
    // ±4 A uniform on every reading: a change is the difference of two, whose scaled MAD is
    // 0.868 × 4 A.
    let maps = vec![vec![0, 1, 2]];
    let mut site = Site::new(5, 4.0, maps.clone(), maps);
    site.fixed[0] = Some(3);
    let f = site.facts();
    let mut w = PhaseWatch::new(1);
    let s = Settings::default();
    // Hold the car still so every change is noise.
    site.cars[0] = (3, 16.0, i64::MAX);
    for t in 0..400 {
        let r = site.record(t + 100);
        w.observe(&r, &f, &s);
    }
    let sigma = w.noise().expect("measured");
    for x in sigma {
        assert!((2.9..=4.1).contains(&x), "{sigma:?}");
    }
}
