//! How long one allocation takes on large sites: it runs every control cycle, on a
//! Raspberry Pi, and must stay a small part of the cycle.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use evsite::control::allocate::{allocate, AllocInput, ChargerInput, CircuitInput, LinkState};
use evsite::control::usage::Usage;
use evsite::devices::model::ChargeState;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const CIRCUITS: usize = 10;

/// A 3-phase site: mixed 1- and 3-phase chargers with rotated phase maps, 10 circuits,
/// 3 priority classes, a few offline, some cars using one phase or capped.
fn site(chargers: usize) -> AllocInput {
    let mut rng = SmallRng::seed_from_u64(7);
    let now_s = 100_000.0;
    let chargers: Vec<ChargerInput> = (0..chargers)
        .map(|i| {
            let phases = if rng.gen_bool(0.5) { 3 } else { 1 };
            let rot = i % 3;
            let link = if rng.gen_bool(0.02) {
                LinkState::Offline { assumed_a: 16.0 }
            } else {
                let state = match rng.gen_range(0..10) {
                    0 => ChargeState::A,
                    1 => ChargeState::B,
                    _ => ChargeState::C,
                };
                LinkState::Online {
                    state,
                    measured_a: [rng.gen_range(0.0..16.0); 3],
                }
            };
            let charging = rng.gen_bool(0.7);
            let since = now_s - rng.gen_range(0.0..3000.0);
            ChargerInput {
                phase_map: (0..phases).map(|p| (rot + p) % 3).collect(),
                min_a: 6.0,
                max_a: if rng.gen_bool(0.5) { 16.0 } else { 32.0 },
                priority: rng.gen_range(0..3),
                enabled: true,
                cap_a: None,
                step_a: if rng.gen_bool(0.5) { 1.0 } else { 0.1 },
                link,
                usage: Usage {
                    demand_cap_a: rng.gen_bool(0.2).then_some(12.0),
                    active: [true, !rng.gen_bool(0.2), !rng.gen_bool(0.2)],
                },
                waiting_since_s: (!charging).then_some(since),
                charging_since_s: charging.then_some(since),
            }
        })
        .collect();
    let n = chargers.len();
    let circuits = (0..CIRCUITS)
        .map(|c| CircuitInput {
            limit_a: 8.0 * (n / CIRCUITS) as f64,
            members: (c * n / CIRCUITS..(c + 1) * n / CIRCUITS).collect(),
        })
        .collect();
    AllocInput {
        phases: 3,
        // Enough for roughly half the chargers at a fair share: the interesting regime.
        site_limit_a: 5.0 * n as f64,
        margin_a: 2.0,
        total_limit_a: None,
        circuits,
        grid_a: [0.5 * n as f64 * 8.0; 3],
        chargers,
        now_s,
        rotation_interval_s: 900.0,
    }
}

fn bench_allocate(c: &mut Criterion) {
    let mut group = c.benchmark_group("allocate");
    for n in [100, 1000] {
        let input = site(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| allocate(black_box(input)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_allocate);
criterion_main!(benches);
