//! One generated site: a random but physically plausible building, its chargers and links,
//! the cars that visit it and, on request, the faults injected into it. Everything is drawn
//! from one seed, so a site can be generated again from its seed and index alone.
//!
//! The ranges are those of real sites rather than of the shipped scenarios (the point is
//! to meet what nobody wrote a scenario for):
//! - grid limits of 25 to 400 A (log-uniform), 2 to 60 chargers (log-uniform), of every
//!   model and link kind (TCP, an RS-485 line, both kinds of Ethernet gateway), rotated
//!   phase maps, some 1-phase chargers, circuits and priorities on some sites;
//! - a building made of parts: a daily profile, ±0 to 5 A of noise, step loads of 5 to 40 A
//!   lasting 10 s to 10 min that come back (a lift, a compressor), motor-start spikes, slow
//!   ramps;
//! - cars answering a new limit within 0.5 to 5 s, 0 to 60 % of them 1-phase, with tapers,
//!   staying half an hour to ten hours; on a third of the sites up to a fifth of the cars
//!   slower than the standard (5.5 to 10 s), whose overload is scored apart;
//! - with faults, 0 to 3 per site on distinct targets, drawn from every kind the simulator
//!   has, with amplitudes spread across and beyond each rule's documented sensitivity, each
//!   placed while its target has a car (a charger fault with no car to show it is not a
//!   test of the rule).

use chrono::{DateTime, Duration, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use evsite::devices::model::{DeviceKind, Transport};
use evsite::devices::registry;
use evsite::simulator::scenario::{
    BaseLoad, ChargerEntry, CircuitSpec, FaultKind, FaultSpec, Gateway, MeterSpec, SiteSpec,
    VehicleSpec,
};
use evsite::simulator::vehicle::MAX_RESPONSE_DELAY_S;
use evsite::simulator::Scenario;

/// The limits of what is drawn; [`Bounds::FULL`] is the fleet's, a test may shrink it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub hours: [f64; 2],
    pub chargers: [usize; 2],
}

impl Bounds {
    pub const FULL: Bounds = Bounds {
        hours: [2.0, 24.0],
        chargers: [2, 60],
    };
}

/// Site `index` of the fleet drawn from `seed`.
pub fn site(seed: u64, index: usize, faults: bool, bounds: Bounds) -> Scenario {
    let site_seed = mix(seed, index as u64);
    let mut rng = SmallRng::seed_from_u64(site_seed);
    let duration_s = (rng.gen_range(bounds.hours[0]..=bounds.hours[1]) * 3600.0).round();
    let start = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default()
        + Duration::days(rng.gen_range(0..365))
        + Duration::minutes(15 * rng.gen_range(0..96));
    let grid_limit_a = log_uniform(&mut rng, 25.0, 400.0).round();
    let margin_a = rng.gen_range(1.0..=3.0_f64).round();
    let site = SiteSpec {
        id: format!("fleet-{index:03}"),
        grid_limit_a,
        phases: 3,
        voltage_v: 230.0,
        margin_a,
        failsafe_current_a: 6.0,
        timezone: None,
    };
    let n = log_uniform(
        &mut rng,
        bounds.chargers[0] as f64,
        bounds.chargers[1] as f64 + 0.99,
    ) as usize;
    let (meter, mut chargers) = devices(&mut rng, n);
    for c in &mut chargers {
        // No charger may be configured above the main fuse (the config's validation).
        c.max_current_a = c.max_current_a.min(grid_limit_a);
    }
    let circuits = circuits(&mut rng, &mut chargers, grid_limit_a);
    if rng.gen_bool(0.2) {
        for c in &mut chargers {
            c.priority = u8::from(rng.gen_bool(0.3));
        }
    }
    // The installer's choice, which validation holds to: 6 A each while the meter is
    // silent where every charger can have it under every limit, 0 (paused) where not.
    let failsafe_current_a = if failsafe_fits(&chargers, &circuits, grid_limit_a - margin_a, 6.0) {
        6.0
    } else {
        0.0
    };
    let site = SiteSpec {
        failsafe_current_a,
        ..site
    };
    let base_load = building(&mut rng, grid_limit_a, margin_a, duration_s);
    let mut vehicles = visits(&mut rng, &chargers, duration_s);
    slow_cars(mix(site_seed, SLOW_STREAM), &mut vehicles);
    let faults = if faults {
        inject(&mut rng, &chargers, &vehicles, duration_s)
    } else {
        Vec::new()
    };
    Scenario {
        name: format!("fleet-{seed}-{index:03}"),
        seed: site_seed,
        duration_s,
        start,
        site,
        base_load,
        meter,
        chargers,
        circuits,
        vehicles,
        arrivals: Vec::new(),
        faults,
        demand: None,
        tariff: None,
        schedules: Vec::new(),
        models_dir: None,
        tokens: Vec::new(),
        cloud: None,
    }
}

/// Whether `each` amps on every charger stays within `room` on every phase of the site and
/// within every circuit's limit, as the config's validation holds the fail-safe current.
fn failsafe_fits(
    chargers: &[ChargerEntry],
    circuits: &[CircuitSpec],
    room: f64,
    each: f64,
) -> bool {
    let load = |only: Option<&str>| {
        let mut phase = [0.0; 3];
        for c in chargers
            .iter()
            .filter(|c| only.is_none_or(|id| c.circuit.as_deref() == Some(id)))
        {
            for p in &c.phase_map {
                phase[usize::from(*p - 1)] += each;
            }
        }
        phase.into_iter().fold(0.0, f64::max)
    };
    load(None) <= room && circuits.iter().all(|k| load(Some(&k.id)) <= k.limit_a)
}

/// A seed per site that does not depend on the other sites (SplitMix64's finaliser).
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn log_uniform(rng: &mut SmallRng, lo: f64, hi: f64) -> f64 {
    (rng.gen_range(lo.ln()..=hi.ln())).exp()
}

fn pick<'a, T>(rng: &mut SmallRng, xs: &'a [T]) -> &'a T {
    &xs[rng.gen_range(0..xs.len())]
}

/// The main meter and `n` chargers. RS-485 devices get distinct unit ids (the meter 1), so
/// any of them may share a line or a gateway.
fn devices(rng: &mut SmallRng, n: usize) -> (MeterSpec, Vec<ChargerEntry>) {
    let models = registry::all();
    let meters: Vec<_> = models
        .iter()
        .filter(|m| m.kind == DeviceKind::Meter && m.phases == 3)
        .collect();
    let charger_models: Vec<_> = models
        .iter()
        .filter(|m| m.kind == DeviceKind::Charger)
        .collect();
    let mut next_unit = 1u8;
    let mut link = |rng: &mut SmallRng, transports: &[Transport]| {
        let transport = *pick(rng, transports);
        if transport == Transport::Tcp {
            return (transport, None, None);
        }
        let gateway = *pick(rng, &[None, Some(Gateway::Tcp), Some(Gateway::Rtu)]);
        let unit = next_unit;
        next_unit = next_unit.saturating_add(1).min(247);
        (transport, gateway, Some(unit))
    };
    let m = pick(rng, &meters);
    let (transport, gateway, unit) = link(rng, m.transports);
    let meter = MeterSpec {
        model: m.name.to_string(),
        transport,
        link: gateway,
        unit,
    };
    let chargers = (0..n)
        .map(|i| {
            let m = pick(rng, &charger_models);
            let (transport, gateway, unit) = link(rng, m.transports);
            let phases = if rng.gen_bool(0.15) { 1 } else { 3 };
            let rotation = rng.gen_range(0..3u8);
            let phase_map = if phases == 1 {
                vec![rotation + 1]
            } else {
                (0..3).map(|p| (p + rotation) % 3 + 1).collect()
            };
            ChargerEntry {
                id: format!("cp-{:02}", i + 1),
                model: m.name.to_string(),
                transport,
                link: gateway,
                phases,
                phase_map,
                min_current_a: 6.0,
                max_current_a: *pick(rng, &[16.0, 32.0]),
                priority: 0,
                circuit: None,
                unit,
                plan_energy_wh: None,
                plan_depart: None,
                auth: None,
            }
        })
        .collect();
    (meter, chargers)
}

/// On some sites with four or more chargers, one to three sub-distributions over contiguous
/// groups of chargers, each below the grid limit.
fn circuits(rng: &mut SmallRng, chargers: &mut [ChargerEntry], grid_a: f64) -> Vec<CircuitSpec> {
    if chargers.len() < 4 || !rng.gen_bool(0.3) {
        return Vec::new();
    }
    let k = rng.gen_range(1..=3usize.min(chargers.len() / 2));
    let per = chargers.len() / k;
    (0..k)
        .map(|i| {
            let id = format!("sub-{}", i + 1);
            for c in &mut chargers[i * per..(i + 1) * per] {
                c.circuit = Some(id.clone());
            }
            CircuitSpec {
                id,
                limit_a: (grid_a * rng.gen_range(0.3..0.8)).round().max(16.0),
            }
        })
        .collect()
}

/// A recurring load: `amps` on `phases` for `on_s`, every `every_s` (± a quarter).
struct Recurring {
    amps: f64,
    phases: [bool; 3],
    on_s: f64,
    every_s: f64,
}

/// The building: a daily profile with imbalanced phases, recurring step loads, motor-start
/// spikes and slow ramps, as a piecewise-linear profile (steps as 50 ms edges), scaled so
/// that the building alone stays below the grid limit less its margin, plus noise.
fn building(rng: &mut SmallRng, limit_a: f64, margin_a: f64, duration_s: f64) -> BaseLoad {
    let peak = limit_a * rng.gen_range(0.1..0.55);
    let night = peak * rng.gen_range(0.15..0.6);
    let imbalance = [0, 1, 2].map(|_| rng.gen_range(0.6..=1.0));
    let morning = rng.gen_range(6.0..10.0);
    let evening = rng.gen_range(17.0..21.0);
    let start_h = rng.gen_range(0.0..24.0);
    let profile = move |t: f64| {
        let h = (start_h + t / 3600.0) % 24.0;
        let bump = |c: f64, w: f64| (-((h - c) / w).powi(2)).exp();
        let shape = bump(morning, 1.5)
            .max(bump(evening, 2.5))
            .max(0.3 * bump(13.0, 3.0));
        imbalance.map(|k| k * (night + (peak - night) * shape))
    };
    let mut sources = Vec::new();
    for _ in 0..rng.gen_range(0..=3) {
        sources.push(Recurring {
            amps: rng.gen_range(5.0..=40.0_f64).min(limit_a * 0.35),
            phases: three_or_one(rng),
            on_s: log_uniform(rng, 10.0, 600.0),
            every_s: rng.gen_range(300.0..3600.0),
        });
    }
    for _ in 0..rng.gen_range(0..=2) {
        sources.push(Recurring {
            amps: rng.gen_range(10.0..=60.0_f64).min(limit_a * 0.5),
            phases: three_or_one(rng),
            on_s: rng.gen_range(0.5..3.0),
            every_s: rng.gen_range(300.0..3600.0),
        });
    }
    // (t, delta per phase) edges of every step, spike and ramp.
    let mut edges: Vec<(f64, [f64; 3])> = Vec::new();
    for s in &sources {
        let amps = s.phases.map(|on| if on { s.amps } else { 0.0 });
        let mut t = rng.gen_range(0.0..s.every_s);
        while t < duration_s {
            edges.push((t, amps));
            edges.push((t + s.on_s, amps.map(|a| -a)));
            t += s.on_s + s.every_s * rng.gen_range(0.75..1.25);
        }
    }
    let mut ramps: Vec<(f64, f64, [f64; 3])> = Vec::new();
    for _ in 0..rng.gen_range(0..=2) {
        let from = rng.gen_range(0.0..duration_s);
        let over = rng.gen_range(600.0..3600.0);
        let amps = rng.gen_range(5.0..=20.0_f64).min(limit_a * 0.2);
        let phases = three_or_one(rng).map(|on| if on { amps } else { 0.0 });
        ramps.push((from, from + over, phases));
    }
    let mut times: Vec<f64> = (0..=(duration_s / 900.0).ceil() as usize)
        .map(|i| i as f64 * 900.0)
        .collect();
    for (t, _) in &edges {
        times.extend([t - 0.05, *t]);
    }
    for (a, b, _) in &ramps {
        times.extend([*a, *b, b + 600.0, b + 660.0]);
    }
    times.retain(|t| *t >= 0.0 && *t <= duration_s);
    times.sort_by(f64::total_cmp);
    times.dedup();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut level = [0.0; 3];
    let mut e = 0;
    let mut points: Vec<[f64; 4]> = times
        .iter()
        .map(|&t| {
            while e < edges.len() && edges[e].0 <= t {
                for (l, d) in level.iter_mut().zip(edges[e].1) {
                    *l += d;
                }
                e += 1;
            }
            let base = profile(t);
            let ramp = |p: usize| {
                ramps
                    .iter()
                    .map(|(a, b, amps)| {
                        // Up over [a, b], held ten minutes, then off.
                        if t < *a || t > b + 660.0 {
                            0.0
                        } else if t <= *b {
                            amps[p] * (t - a) / (b - a)
                        } else if t <= b + 600.0 {
                            amps[p]
                        } else {
                            amps[p] * (b + 660.0 - t) / 60.0
                        }
                    })
                    .sum::<f64>()
            };
            [
                t,
                base[0] + level[0].max(0.0) + ramp(0),
                base[1] + level[1].max(0.0) + ramp(1),
                base[2] + level[2].max(0.0) + ramp(2),
            ]
        })
        .collect();
    let noise_a = rng.gen_range(0.0..=5.0_f64).min(limit_a * 0.05);
    // The building alone never takes the site over its limit: no controller could help it.
    let highest = points
        .iter()
        .flat_map(|p| [p[1], p[2], p[3]])
        .fold(0.0, f64::max);
    let room = limit_a - margin_a - noise_a - 1.0;
    if highest > room {
        let k = room / highest;
        for p in &mut points {
            for v in &mut p[1..] {
                *v *= k;
            }
        }
    }
    for p in &mut points {
        for v in &mut p[1..] {
            *v = (*v * 100.0).round() / 100.0;
        }
    }
    BaseLoad { points, noise_a }
}

fn three_or_one(rng: &mut SmallRng) -> [bool; 3] {
    if rng.gen_bool(0.5) {
        [true; 3]
    } else {
        let p = rng.gen_range(0..3);
        [0, 1, 2].map(|i| i == p)
    }
}

/// Visits per charger over the run: arrivals spread over the day, stays of half an hour to
/// ten hours, a share of 1-phase cars drawn per site.
fn visits(rng: &mut SmallRng, chargers: &[ChargerEntry], duration_s: f64) -> Vec<VehicleSpec> {
    let one_phase_share = rng.gen_range(0.0..=0.6);
    let mut out = Vec::new();
    for c in chargers {
        let mut t = rng.gen_range(0.0..(duration_s * 0.5).min(4.0 * 3600.0));
        while t < duration_s - 600.0 {
            let stay = log_uniform(rng, 1800.0, 36_000.0);
            let phases = if rng.gen_bool(one_phase_share) { 1 } else { 3 };
            let soc_start = rng.gen_range(0.05..0.6);
            out.push(VehicleSpec {
                charger: c.id.clone(),
                arrive_s: t.round(),
                depart_s: (t + stay).round(),
                capacity_kwh: rng.gen_range(20.0..100.0_f64).round(),
                soc_start,
                soc_target: rng.gen_range(0.7..=1.0_f64).max(soc_start),
                max_current_a: *pick(rng, &[10.0, 16.0, 16.0, 32.0]),
                phases,
                response_delay_s: rng.gen_range(0.5..=5.0),
                taper_from_soc: rng.gen_range(0.7..0.95),
                token: None,
            });
            t += stay + log_uniform(rng, 300.0, 6.0 * 3600.0);
        }
    }
    out.sort_by(|a, b| a.arrive_s.total_cmp(&b.arrive_s));
    out
}

/// The stream the slow cars are drawn from, apart from the site's own so that adding them
/// left every other draw of a seed as it was.
const SLOW_STREAM: u64 = 0x5105_ca45;

/// A third of the sites have some cars slower than the 5 s IEC 61851-1 allows (up to a
/// fifth of their visits, answering in 5.5 to 10 s): real, out of the standard, and scored
/// apart, since no controller can keep a limit against a car that ignores it for longer
/// than the response window.
fn slow_cars(seed: u64, vehicles: &mut [VehicleSpec]) {
    let mut rng = SmallRng::seed_from_u64(seed);
    if !rng.gen_bool(1.0 / 3.0) {
        return;
    }
    let share = rng.gen_range(0.02..=0.2);
    for v in vehicles {
        if rng.gen_bool(share) {
            v.response_delay_s = rng.gen_range(5.5..=MAX_RESPONSE_DELAY_S);
        }
    }
}

/// Every fault kind the simulator has, with the range its amplitude is drawn from (`None`:
/// the kind has no size). The ranges reach past each rule's documented sensitivity on both
/// sides, so the report can show where detection falls off.
pub const FAULTS: [(FaultKind, Option<[f64; 2]>); 17] = [
    (FaultKind::IgnoreSetpoints, None),
    (FaultKind::DrawWhileDisabled, None),
    (FaultKind::MeterDrift, Some([0.5, 0.95])),
    (FaultKind::FrozenRegister, None),
    (FaultKind::RegisterJump, Some([200.0, 10_000.0])),
    (FaultKind::EnergyReset, None),
    (FaultKind::SwappedPhase, None),
    (FaultKind::StuckSession, None),
    (FaultKind::PowerHigh, Some([1.1, 2.0])),
    (FaultKind::SiteMeterScale, Some([0.3, 0.95])),
    (FaultKind::BayBlocked, None),
    (FaultKind::MeterSilent, None),
    (FaultKind::ChargerError, None),
    (FaultKind::GarbledFrames, None),
    (FaultKind::Exceptions, None),
    (FaultKind::NoValue, None),
    (FaultKind::WrongUnit, None),
];

/// 0 to 3 faults on distinct targets, each while its target has a car (the meter's while
/// some charger has one).
fn inject(
    rng: &mut SmallRng,
    chargers: &[ChargerEntry],
    visits: &[VehicleSpec],
    duration_s: f64,
) -> Vec<FaultSpec> {
    let mut out: Vec<FaultSpec> = Vec::new();
    for _ in 0..rng.gen_range(0..=3) {
        let (kind, range) = *pick(rng, &FAULTS);
        let amount = range.map(|[lo, hi]| (rng.gen_range(lo..=hi) * 1000.0).round() / 1000.0);
        let meter = matches!(kind, FaultKind::SiteMeterScale | FaultKind::MeterSilent);
        let free: Vec<&VehicleSpec> = visits
            .iter()
            .filter(|v| v.depart_s - v.arrive_s >= 1800.0 && v.arrive_s + 600.0 < duration_s)
            .filter(|v| meter || !out.iter().any(|f| f.target == v.charger))
            .collect();
        if free.is_empty() || (meter && out.iter().any(|f| f.target == "meter")) {
            continue;
        }
        let v = *pick(rng, &free);
        let stay = v.depart_s.min(duration_s) - v.arrive_s;
        let at_s = (v.arrive_s + rng.gen_range(120.0..(stay * 0.5).max(180.0))).round();
        let left = (v.depart_s.min(duration_s) - at_s).max(60.0);
        let duration_s_fault = match kind {
            FaultKind::MeterSilent => rng.gen_range(20.0..300.0),
            FaultKind::GarbledFrames
            | FaultKind::Exceptions
            | FaultKind::NoValue
            | FaultKind::WrongUnit => rng.gen_range(10.0..600.0),
            FaultKind::ChargerError => rng.gen_range(60.0..1800.0_f64).min(left),
            FaultKind::DrawWhileDisabled => rng.gen_range(300.0..1800.0_f64).min(left),
            FaultKind::SiteMeterScale => rng.gen_range(600.0..7200.0),
            // The car stays for the fault: past the rule's four-hour hold when the run is
            // long enough, shorter (and then rightly not raised) when it is not.
            FaultKind::BayBlocked => rng.gen_range(4.5 * 3600.0..6.0 * 3600.0),
            _ => left,
        }
        .round();
        // A bay is blocked only past the rule's four-hour hold: a run too short to hold it
        // cannot show the rule either way.
        if kind == FaultKind::BayBlocked && at_s + duration_s_fault + 120.0 > duration_s {
            continue;
        }
        let target = if meter {
            "meter".to_string()
        } else {
            v.charger.clone()
        };
        if chargers.iter().all(|c| c.id != target) && target != "meter" {
            continue;
        }
        out.push(FaultSpec {
            at_s,
            duration_s: duration_s_fault.min(duration_s - at_s).max(1.0),
            kind,
            target,
            amount,
        });
    }
    out.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_is_the_same_from_its_seed_and_index_and_passes_the_scenario_checks() {
        for i in 0..40 {
            let a = site(7, i, true, Bounds::FULL);
            let b = site(7, i, true, Bounds::FULL);
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            a.validate().unwrap_or_else(|e| panic!("site {i}: {e}"));
            evsite::simulator::SiteModel::from_registry(&a)
                .unwrap_or_else(|e| panic!("site {i}: {e}"));
            assert!((2..=60).contains(&a.chargers.len()));
            assert!(a.faults.len() <= 3);
            let limit = a.site.grid_limit_a - a.site.margin_a;
            for p in &a.base_load.points {
                assert!(p[1..]
                    .iter()
                    .all(|v| *v >= 0.0 && *v + a.base_load.noise_a < limit));
            }
        }
        assert_ne!(
            format!("{:?}", site(7, 0, true, Bounds::FULL)),
            format!("{:?}", site(8, 0, true, Bounds::FULL))
        );
    }

    #[test]
    fn the_fleet_spans_every_link_kind_and_fault_kind() {
        let sites: Vec<Scenario> = (0..200).map(|i| site(1, i, true, Bounds::FULL)).collect();
        let links: std::collections::BTreeSet<String> = sites
            .iter()
            .flat_map(|s| {
                s.chargers
                    .iter()
                    .map(|c| format!("{:?}/{:?}", c.transport, c.link))
            })
            .collect();
        assert!(links.len() >= 4, "{links:?}");
        for (kind, _) in FAULTS {
            assert!(
                sites.iter().flat_map(|s| &s.faults).any(|f| f.kind == kind),
                "no {kind:?} in 200 sites"
            );
        }
        let one_phase = sites
            .iter()
            .flat_map(|s| &s.vehicles)
            .filter(|v| v.phases == 1)
            .count();
        assert!(one_phase > 0);
        let delays = |s: &Scenario| {
            s.vehicles
                .iter()
                .filter(|v| v.response_delay_s > 5.0)
                .count()
        };
        let with_slow = sites.iter().filter(|s| delays(s) > 0).count();
        assert!(
            (40..=100).contains(&with_slow),
            "about a third of 200 sites have slow cars: {with_slow}"
        );
        let slow: usize = sites.iter().map(delays).sum();
        let all: usize = sites.iter().map(|s| s.vehicles.len()).sum();
        assert!(
            slow * 10 < all,
            "slow cars stay a minority: {slow} of {all}"
        );
        assert!(sites
            .iter()
            .flat_map(|s| &s.vehicles)
            .all(|v| (0.5..=MAX_RESPONSE_DELAY_S).contains(&v.response_delay_s)));
    }
}
