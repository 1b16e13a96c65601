//! Expanding `[[arrivals]]` into visits: seeded, so a scenario always yields the same day.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Scenario, VehicleSpec};

impl Scenario {
    /// Every visit: the `[[vehicle]]` entries followed by the seeded `[[arrivals]]` draws,
    /// ordered by arrival time. The same scenario always yields the same list.
    pub fn all_vehicles(&self) -> Vec<VehicleSpec> {
        let mut out = self.vehicles.clone();
        let mut rng = SmallRng::seed_from_u64(self.seed ^ 0x5EED_A221);
        for a in &self.arrivals {
            let pool: Vec<&str> = if a.chargers.is_empty() {
                self.chargers.iter().map(|c| c.id.as_str()).collect()
            } else {
                a.chargers.iter().map(String::as_str).collect()
            };
            if pool.is_empty() {
                continue;
            }
            for _ in 0..a.count {
                let mut arrive = uniform(&mut rng, a.window_s);
                let stay = uniform(&mut rng, a.stay_s);
                let clash = |out: &[VehicleSpec], charger: &str, arrive: f64| {
                    out.iter()
                        .filter(|v| v.charger == charger)
                        .find(|v| v.arrive_s < arrive + stay + 60.0 && arrive < v.depart_s + 60.0)
                        .map(|v| v.depart_s + 60.0)
                };
                // Drivers take a free charger; when all are taken they wait for one.
                let free: Vec<&str> = pool
                    .iter()
                    .copied()
                    .filter(|c| clash(&out, c, arrive).is_none())
                    .collect();
                let charger = if free.is_empty() {
                    pool[rng.gen_range(0..pool.len())]
                } else {
                    free[rng.gen_range(0..free.len())]
                };
                for _ in 0..=out.len() {
                    match clash(&out, charger, arrive) {
                        Some(next) => arrive = next,
                        None => break,
                    }
                }
                let capacity_kwh = uniform(&mut rng, a.capacity_kwh);
                let soc_start = uniform(&mut rng, a.soc_start);
                let max_current_a = a.max_current_a[rng.gen_range(0..a.max_current_a.len())];
                let phases = if rng.gen_bool(a.one_phase_share.clamp(0.0, 1.0)) {
                    1
                } else {
                    3
                };
                let response_delay_s = uniform(&mut rng, a.response_delay_s)
                    .clamp(0.0, crate::simulator::vehicle::MAX_RESPONSE_DELAY_S);
                if arrive > a.window_s[1] {
                    continue;
                }
                out.push(VehicleSpec {
                    charger: charger.to_string(),
                    arrive_s: arrive,
                    depart_s: arrive + stay,
                    capacity_kwh,
                    soc_start,
                    soc_target: a.soc_target.max(soc_start),
                    max_current_a,
                    phases,
                    response_delay_s,
                    taper_from_soc: a.taper_from_soc,
                    token: None,
                });
            }
        }
        out.sort_by(|a, b| a.arrive_s.total_cmp(&b.arrive_s));
        out
    }
}

fn uniform(rng: &mut SmallRng, [lo, hi]: [f64; 2]) -> f64 {
    if hi > lo {
        rng.gen_range(lo..hi)
    } else {
        lo
    }
}
