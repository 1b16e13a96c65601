//! Simulator scenarios for tests, written as an installer would write them: the head (the
//! site, its building load and its meter) and the faults.
#![allow(dead_code)]

/// A scenario's head: a three-phase 230 V site (1 A margin, 6 A fail-safe) whose main meter
/// is `meter` on `transport`; the charger and vehicle sections follow it.
pub struct Head<'a> {
    pub name: &'a str,
    pub seed: u64,
    pub duration_s: u64,
    pub grid_limit_a: f64,
    /// The building's load per phase in A, from the start.
    pub base_a: [f64; 3],
    pub meter: &'a str,
    pub transport: &'a str,
}

impl<'a> Head<'a> {
    /// An hour of a 63 A site with an SDM630 on RS-485 and 3/5/7 A of building load.
    pub fn new(name: &'a str, seed: u64) -> Self {
        Head {
            name,
            seed,
            duration_s: 3600,
            grid_limit_a: 63.0,
            base_a: [3.0, 5.0, 7.0],
            meter: "eastron-sdm630",
            transport: "rtu",
        }
    }

    pub fn toml(&self) -> String {
        let Head {
            name,
            seed,
            duration_s,
            grid_limit_a,
            base_a: [l1, l2, l3],
            meter,
            transport,
        } = self;
        format!(
            r#"
name = "{name}"
seed = {seed}
duration_s = {duration_s}
start = "2026-01-15T17:00:00Z"
[site]
id = "{name}"
grid_limit_a = {grid_limit_a:?}
phases = 3
voltage_v = 230.0
margin_a = 1.0
failsafe_current_a = 6.0
[base_load]
points = [[0, {l1:?}, {l2:?}, {l3:?}]]
[meter]
model = "{meter}"
transport = "{transport}"
"#
        )
    }
}

/// A `[[fault]]` of `kind` on `target` from `at_s` for `duration_s`.
pub fn fault(kind: &str, target: &str, at_s: f64, duration_s: f64) -> String {
    format!(
        "[[fault]]\nat_s = {at_s}\nduration_s = {duration_s}\nkind = \"{kind}\"\n\
         target = \"{target}\"\n"
    )
}
