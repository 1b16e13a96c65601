//! What the loopback benches share: the bench site (a scenario of many TCP chargers of mixed
//! models) and the percentile they report.

use evsite::simulator::Scenario;

/// TCP charger models the site is built from, in turn.
pub const MODELS: &[&str] = &[
    "alfen-eve",
    "vestel-evc04",
    "schneider-evlink-pro",
    "webasto-next",
    "bender-cc613",
    "phoenix-charx",
    "phoenix-ev-eth",
    "abb-terra-ac",
];

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A site of `chargers` TCP chargers (mixed models, rotated phase maps, a car on 3 of 4) and
/// a TCP meter; `base` is the `[base_load] points` value.
pub fn scenario(chargers: usize, limit_a: f64, base: &str) -> BenchResult<Scenario> {
    let mut text = format!(
        r#"
name = "bench"
seed = 11
duration_s = 86400
start = "2026-01-15T17:00:00Z"
[site]
id = "bench"
grid_limit_a = {limit_a}
phases = 3
voltage_v = 230.0
margin_a = 2.0
failsafe_current_a = 6.0
[base_load]
points = {base}
[meter]
model = "carlo-gavazzi-em340"
transport = "tcp"
"#
    );
    for i in 0..chargers {
        let map = ["1, 2, 3", "2, 3, 1", "3, 1, 2"][i % 3];
        text.push_str(&format!(
            "[[charger]]\nid = \"cp-{i}\"\nmodel = \"{}\"\ntransport = \"tcp\"\nphases = 3\n\
             phase_map = [{map}]\nmin_current_a = 6.0\nmax_current_a = 32.0\n",
            MODELS[i % MODELS.len()]
        ));
        if i % 4 != 3 {
            text.push_str(&format!(
                "[[vehicle]]\ncharger = \"cp-{i}\"\narrive_s = 0\ndepart_s = 86400\n\
                 capacity_kwh = 100\nsoc_start = 0.1\nsoc_target = 1.0\nmax_current_a = 32\n\
                 phases = 3\nresponse_delay_s = 1\ntaper_from_soc = 1.0\n"
            ));
        }
    }
    Ok(Scenario::parse(&text, "bench")?)
}

/// The `q` quantile of sorted figures (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
