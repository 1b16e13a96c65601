//! A charger no built-in model knows, described in a model file of its own: the simulator
//! serves it from that file over Modbus TCP on loopback, and the real daemon, whose
//! `[devices] models_dir` names the same directory, reads its currents, energy and state and
//! writes setpoints the simulated charger follows. A file without a fallback of the charger's
//! own loads with the warning that names safety invariant 3.

use std::net::SocketAddr;
use std::path::Path;

use crate::support::daemon::{field, until, Daemon, Served};
use crate::support::http::{self, until_json};
use evsite::devices::model::ChargeState;
use evsite::simulator::Scenario;

/// The model file: registers, types, word order, scales and state codes unlike any built-in
/// model's. `fallback` is the comms-timeout line (or nothing).
pub fn acme_volt(fallback: &str) -> String {
    format!(
        r#"
id = "acme-volt"
title = "Acme Volt 22 (a charger from its register table)"
kind = "charger"
phases = 3

[provenance]
confidence = "L (written from a register table)"

[link]
transports = ["tcp"]
unit = 7
port = 502

[registers]
voltage_l1 = {{ addr = 3000, function = "input", type = "uint16", scale = 0.1 }}
voltage_l2 = {{ addr = 3001, function = "input", type = "uint16", scale = 0.1 }}
voltage_l3 = {{ addr = 3002, function = "input", type = "uint16", scale = 0.1 }}
current_l1 = {{ addr = 3010, function = "input", type = "int32", order = "lsw-first", scale = 0.001 }}
current_l2 = {{ addr = 3012, function = "input", type = "int32", order = "lsw-first", scale = 0.001 }}
current_l3 = {{ addr = 3014, function = "input", type = "int32", order = "lsw-first", scale = 0.001 }}
power = {{ addr = 3020, function = "input", type = "float32" }}
energy = {{ addr = 3030, function = "input", type = "uint64", no_value = "all-ones" }}
setpoint = {{ addr = 4100, function = "holding", type = "uint16", scale = 0.1, write = "fc16" }}
{fallback}

[state]
kind = "codes"
register = {{ addr = 4000, function = "holding", type = "uint16" }}
mask = 0xFF
codes = [
    {{ value = 10, state = "A" }},
    {{ value = 20, state = "B" }},
    {{ value = 30, state = "C" }},
    {{ value = 40, state = "E" }},
]

[charger]
min_current_a = 6.0
setpoint_step_a = 0.1
energy_scope = "lifetime"
fallback = "stops charging when its comms timeout runs out"
"#
    )
}

pub const COMMS_TIMEOUT: &str = r#"comms_timeout = { addr = 4110, function = "holding", type = "uint16", write = "fc6", default_s = 30 }"#;

/// A 20 A site (1 A margin, 4 A of building load per phase, its meter on RS-485) with one
/// acme-volt charger on TCP and a car that wants 16 A: the controller must hold the charger
/// below its maximum.
fn scenario(models: &Path) -> Scenario {
    let text = r#"
name = "user-model"
seed = 3
duration_s = 3600
start = "2026-11-21T08:00:00Z"
[site]
id = "user-model"
grid_limit_a = 20.0
phases = 3
voltage_v = 230.0
margin_a = 1.0
failsafe_current_a = 6.0
[base_load]
points = [[0, 4, 4, 4]]
[meter]
model = "eastron-sdm630"
transport = "rtu"
[[charger]]
id = "acme"
model = "acme-volt"
transport = "tcp"
phases = 3
phase_map = [1, 2, 3]
min_current_a = 6.0
max_current_a = 16.0
[[vehicle]]
charger = "acme"
arrive_s = 2
depart_s = 3600
capacity_kwh = 100
soc_start = 0.2
soc_target = 1.0
max_current_a = 16
phases = 3
response_delay_s = 1
taper_from_soc = 1.0
"#;
    let mut s = Scenario::parse(text, "user-model scenario").expect("scenario parses");
    s.models_dir = Some(models.to_path_buf());
    s
}

async fn start(fallback: &str) -> (tempfile::TempDir, Served, Daemon, SocketAddr) {
    let models = tempfile::tempdir().expect("models dir");
    std::fs::write(models.path().join("acme-volt.toml"), acme_volt(fallback)).expect("model");
    let served = Served::start(&scenario(models.path())).await;
    let config = std::fs::read_to_string(&served.config).expect("config");
    assert!(
        config.contains(&format!(
            "models_dir = {:?}",
            models.path().display().to_string()
        )),
        "the written config names the simulator's model files:\n{config}"
    );
    let port = http::free_port();
    served.add_config(&format!("\n[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    let mut d = Daemon::start(&served.config);
    let line = d.line_with(&["local API listening"]).await;
    let addr: SocketAddr = field(&line, "addr").parse().expect("the logged address");
    (models, served, d, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charger_from_a_users_file_is_served_and_controlled_end_to_end() {
    let (_models, served, mut d, addr) = start(COMMS_TIMEOUT).await;
    let site = served.site.clone();
    // The daemon reads the state codes (30 = C), the mA currents and the Wh counter, and
    // writes a setpoint below the charger's maximum, which the charger applies.
    until(
        &site,
        "the charger follows a setpoint below its maximum",
        |s| {
            s.charger_truth().iter().any(|c| {
                c.state == ChargeState::C
                    && c.setpoint_a.is_some_and(|a| (6.0..15.95).contains(&a))
                    && c.offered_a > 5.9
            })
        },
    )
    .await;
    // What the daemon reads matches what the simulated charger holds: the L1 current (within
    // a cycle's change while the car ramps), the energy counter, the state and the setpoint.
    let agrees = |v: &serde_json::Value| {
        let c = &v["cycle"]["chargers"][0];
        let t = site.lock().expect("site lock").charger_truth()[0].clone();
        let near = |x: &serde_json::Value, want: f64, tol: f64| {
            x.as_f64().is_some_and(|x| (x - want).abs() <= tol)
        };
        c["id"] == "acme"
            && c["state"] == "C"
            && t.state == ChargeState::C
            && near(&c["current_a"][0], t.grid_a[0], 1.0)
            && t.grid_a[0] > 5.0
            && near(&c["energy_wh"], t.energy_register_wh, 50.0)
            && t.setpoint_a
                .is_some_and(|sp| near(&c["setpoint_a"], sp, 0.05))
    };
    let st = until_json(
        addr,
        "/api/state",
        "the daemon's readings match the charger",
        agrees,
    )
    .await;
    let shown = &st["cycle"]["chargers"][0];
    assert!(
        shown["energy_wh"].as_f64().is_some_and(|wh| wh > 1.0e6),
        "{shown}"
    );
    let truth = site.lock().expect("site lock").charger_truth()[0].clone();
    assert!(!truth.in_fallback, "{truth:?}");
    let setpoint = truth.setpoint_a.expect("a setpoint was written");
    // The charger offers what the daemon last wrote: 0.1 A steps reach it unchanged.
    assert!(
        (truth.offered_a - setpoint).abs() < 1e-9,
        "offered {} A for a setpoint of {setpoint} A",
        truth.offered_a
    );
    assert!(
        setpoint + 1.0 + 4.0 <= 20.0 + 0.05,
        "{setpoint} A leaves the grid's margin"
    );
    let session = d.line_with(&["session started", "acme"]).await;
    assert!(!session.is_empty());
    // The file has a comms timeout: no invariant-3 warning.
    d.signal("-TERM");
    let (lines, status) = d.all_lines().await;
    assert!(status.success(), "{status:?}");
    assert!(
        !lines.iter().any(|l| l.contains("safety invariant 3")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_charger_without_a_fallback_runs_with_the_invariant_3_warning() {
    let (models, served, mut d, _addr) = start("").await;
    let warning = d.line_with(&["warning", "safety invariant 3"]).await;
    let file = models.path().join("acme-volt.toml");
    assert!(
        warning.contains(&file.display().to_string()),
        "the warning names the file: {warning}"
    );
    assert!(warning.contains("charger"), "{warning}");
    // `evsite probe` on the same config reads the charger and shows the same warning.
    let probe = tokio::process::Command::new(env!("CARGO_BIN_EXE_evsite"))
        .arg("probe")
        .arg("--config")
        .arg(&served.config)
        .kill_on_drop(true)
        .output();
    let probe = tokio::time::timeout(std::time::Duration::from_secs(60), probe)
        .await
        .expect("probe ends within 60 s")
        .expect("probe runs");
    let (out, err) = (
        String::from_utf8_lossy(&probe.stdout),
        String::from_utf8_lossy(&probe.stderr),
    );
    assert!(probe.status.success(), "{out}{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("warning") && l.contains("safety invariant 3")),
        "{err}"
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("acme "))
        .unwrap_or_else(|| panic!("no acme row: {out}"));
    assert!(row.contains("acme-volt") && row.contains(" ok "), "{row}");
    // Accepted, not refused: the daemon still controls the charger.
    until(&served.site, "the charger follows a setpoint", |s| {
        s.charger_truth()
            .iter()
            .any(|c| c.setpoint_a.is_some_and(|a| (6.0..15.95).contains(&a)))
    })
    .await;
    d.signal("-TERM");
    assert!(d.exit().await.success());
}
