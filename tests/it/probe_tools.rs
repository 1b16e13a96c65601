//! `evsite probe --read | --scan | --model` against a simulated site over real Modbus: TCP on
//! loopback (a built-in charger and a charger from a user's model file) and RTU on a
//! pseudo-terminal (the main meter).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::support::daemon::{until, Served};
use crate::user_model::{acme_volt, COMMS_TIMEOUT};
use evsite::devices::model::ChargeState;
use evsite::simulator::Scenario;

struct Site {
    served: Served,
    models: tempfile::TempDir,
    /// The written config, to find where each device is served.
    config: toml::Table,
}

impl Site {
    async fn start() -> Site {
        let models = tempfile::tempdir().expect("models dir");
        std::fs::write(
            models.path().join("acme-volt.toml"),
            acme_volt(COMMS_TIMEOUT),
        )
        .expect("model");
        let text = r#"
name = "probe"
seed = 9
duration_s = 3600
start = "2026-11-21T08:00:00Z"
[site]
id = "probe"
grid_limit_a = 63.0
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
[[charger]]
id = "alfen"
model = "alfen-eve"
transport = "tcp"
phases = 3
phase_map = [1, 2, 3]
min_current_a = 6.0
max_current_a = 16.0
[[vehicle]]
charger = "acme"
arrive_s = 0
depart_s = 3600
capacity_kwh = 100
soc_start = 0.2
soc_target = 1.0
max_current_a = 16
phases = 3
response_delay_s = 1
taper_from_soc = 1.0
"#;
        let mut scenario = Scenario::parse(text, "probe scenario").expect("scenario");
        scenario.models_dir = Some(models.path().to_path_buf());
        let served = Served::start(&scenario).await;
        let config: toml::Table = std::fs::read_to_string(&served.config)
            .expect("config")
            .parse()
            .expect("config parses");
        Site {
            served,
            models,
            config,
        }
    }

    /// `(port, unit)` of the charger `id`.
    fn charger(&self, id: &str) -> (String, String) {
        let c = self.config["charger"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"].as_str() == Some(id)))
            .expect("the charger");
        (c["port"].to_string(), c["unit"].to_string())
    }

    /// The meter's pseudo-terminal and unit.
    fn meter(&self) -> (PathBuf, String) {
        let bus = &self.config["bus"].as_array().expect("a bus")[0];
        (
            PathBuf::from(bus["device"].as_str().expect("device")),
            self.config["meter"]["unit"].to_string(),
        )
    }

    fn model_file(&self) -> PathBuf {
        self.models.path().join("acme-volt.toml")
    }
}

async fn probe(args: &[&str]) -> (String, String, i32) {
    let run = Command::new(env!("CARGO_BIN_EXE_evsite"))
        .arg("probe")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("probe ends within 120 s")
        .expect("evsite runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_shows_registers_raw_and_decoded_and_names_each_failure() {
    let site = Site::start().await;
    let (port, unit) = site.charger("acme");
    // The acme charger's voltages: uint16 in 0.1 V, input registers 3000–3002.
    let (out, err, code) = probe(&[
        "--read",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--unit",
        &unit,
        "--register",
        "3000",
        "--count",
        "3",
        "--input",
        "--type",
        "uint16",
        "--scale",
        "0.1",
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0x08FC"), "2300 raw: {out}");
    for r in 3000..3003 {
        assert!(out.contains(&format!("{r}: 230")), "{out}");
    }
    // Its L1 current: int32, low word first, in mA.
    let (out, _, code) = probe(&[
        "--read",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--unit",
        &unit,
        "--register",
        "3010",
        "--input",
        "--type",
        "int32",
        "--order",
        "lsw-first",
        "--scale",
        "0.001",
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    let amps: f64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("3010: "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a decoded current in {out}"));
    let truth = site.served.site.lock().expect("site").charger_truth()[0].grid_a[0];
    assert!(
        (amps - truth).abs() < 2.0,
        "read {amps} A, the car draws {truth} A"
    );

    // A register the charger does not have: the exception, named.
    let (_, err, code) = probe(&[
        "--read",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--unit",
        &unit,
        "--register",
        "9999",
    ])
    .await;
    assert_eq!(code, 69, "{err}");
    assert!(
        err.contains("exception 0x02 (illegal data address)"),
        "{err}"
    );

    // The meter on RS-485: float32 voltage at input register 0.
    let (tty, meter_unit) = site.meter();
    let (out, err, code) = probe(&[
        "--read",
        "--device",
        &path_arg(&tty),
        "--baud",
        "9600",
        "--unit",
        &meter_unit,
        "--register",
        "0",
        "--input",
        "--type",
        "float32",
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0: 230"), "{out}");
    // A unit nobody answers for on the line: a timeout, said so.
    let (_, err, code) = probe(&[
        "--read",
        "--device",
        &path_arg(&tty),
        "--baud",
        "9600",
        "--unit",
        "200",
        "--register",
        "0",
        "--timeout-ms",
        "200",
    ])
    .await;
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("no answer within 200ms"), "{err}");
    // Wrong arguments: a usage error.
    let (_, err, code) = probe(&["--read", "--unit", "1", "--register", "0"]).await;
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--host"), "{err}");
}

/// The confidence the scan gives `model` on the row of `unit`, if listed.
fn confidence(out: &str, unit: &str, model: &str) -> Option<u32> {
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(unit))?;
    let at = row.find(&format!("{model} "))?;
    row[at + model.len() + 1..].split('%').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_finds_the_units_that_answer_and_the_model_each_looks_like() {
    let site = Site::start().await;
    // The meter on a pseudo-terminal, among 20 ids of which 19 are silent.
    let (tty, meter_unit) = site.meter();
    let (out, err, code) = probe(&[
        "--scan",
        "--device",
        &path_arg(&tty),
        "--baud",
        "9600",
        "--units",
        "1-20",
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("answers"))
        .collect();
    assert_eq!(rows.len(), 1, "only the meter answers: {out}");
    let sdm = confidence(&out, &meter_unit, "eastron-sdm630").unwrap_or(0);
    assert!(sdm >= 80, "{out}");
    // Behind a TCP endpoint that answers 0x0B for absent units: the Alfen only, and it looks
    // most like an Alfen.
    let (port, unit) = site.charger("alfen");
    let (out, err, code) = probe(&["--scan", "--host", "127.0.0.1", "--port", &port]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("247 ids"), "{out}");
    let alfen = confidence(&out, &unit, "alfen-eve").unwrap_or(0);
    assert!(alfen >= 80, "{out}");
    let first = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(unit.as_str()))
        .and_then(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .nth(2)
        })
        .unwrap_or("");
    assert!(
        first.starts_with("alfen-eve"),
        "the likeliest model first: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_model_is_tried_quantity_by_quantity() {
    let site = Site::start().await;
    until(&site.served.site, "the acme car charges", |s| {
        s.charger_truth()[0].state == ChargeState::C
    })
    .await;
    let (port, unit) = site.charger("acme");
    let file = path_arg(&site.model_file());
    let (out, err, code) = probe(&[
        "--model",
        &file,
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--unit",
        &unit,
    ])
    .await;
    assert_eq!(code, 0, "the right model reads plausibly: {out}{err}");
    for q in [
        "voltage_l1",
        "current_l3",
        "power",
        "energy",
        "state",
        "setpoint",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(q) && l.trim_end().ends_with("ok")),
            "{q}: {out}"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("state") && l.contains(" C ")),
        "{out}"
    );
    assert!(!out.contains("safety invariant 3"), "{out}");

    // A draft with mistakes: the voltage's scale left out, the state codes as numbered in
    // another document (1–4 where the charger reports 10–40), and no fallback of its own.
    let draft = site.models.path().join("draft.toml");
    let text = acme_volt("")
        .replace("id = \"acme-volt\"", "id = \"acme-draft\"")
        .replace(
            "voltage_l1 = { addr = 3000, function = \"input\", type = \"uint16\", scale = 0.1 }",
            "voltage_l1 = { addr = 3000, function = \"input\", type = \"uint16\" }",
        )
        .replace("value = 10,", "value = 1,")
        .replace("value = 20,", "value = 2,")
        .replace("value = 30,", "value = 3,")
        .replace("value = 40,", "value = 4,");
    std::fs::write(&draft, text).expect("draft");
    let (out, err, code) = probe(&[
        "--model",
        &path_arg(&draft),
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--unit",
        &unit,
    ])
    .await;
    assert_eq!(code, 69, "{out}{err}");
    let line = |q: &str| {
        out.lines()
            .find(|l| l.starts_with(q))
            .unwrap_or_else(|| panic!("no {q} in {out}"))
            .to_string()
    };
    assert!(line("voltage_l1").contains("IMPLAUSIBLE: 2300 V"), "{out}");
    assert!(line("voltage_l2").trim_end().ends_with("ok"), "{out}");
    assert!(line("state").contains("not in the state table"), "{out}");
    assert!(out.contains("safety invariant 3"), "{out}");
    // A file that does not load: its located errors, and nothing read.
    std::fs::write(&draft, "id = \"x\"\nkind = \"toaster\"\n").expect("draft");
    let (_, err, code) = probe(&[
        "--model",
        &path_arg(&draft),
        "--host",
        "127.0.0.1",
        "--port",
        &port,
    ])
    .await;
    assert_eq!(code, 64, "{err}");
    assert!(err.contains(&format!("{}:2:", draft.display())), "{err}");
}
