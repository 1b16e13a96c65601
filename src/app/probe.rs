//! `evsite probe`: read every configured device once and print what it reports. A dead device
//! shows its error in its row; it never stops the others. With `--read`, `--scan` or
//! `--model`, a commissioning tool instead ([`tools`]), which needs no config.

use futures::future::join_all;

#[path = "probe_tools.rs"]
pub mod tools;

use crate::config::{Config, Device};
use crate::devices::traits::ReadAll;
use crate::devices::{DeviceError, ModbusDevice, Snapshot};
use crate::modbus::{Links, TcpConnector};

/// One row of the probe table.
#[derive(Debug, Clone)]
pub struct ProbeRow {
    pub device: String,
    pub model: &'static str,
    pub link: String,
    pub result: Result<Snapshot, String>,
}

async fn probe_one(links: &Links, cfg: &Config, name: String, dev: &Device) -> ProbeRow {
    let (link, result) = match links.device(dev, &cfg.buses) {
        Ok(l) => {
            let label = l.label().to_string();
            let d = ModbusDevice::new(dev.model, l);
            (
                label,
                d.read_all().await.map_err(|e: DeviceError| e.to_string()),
            )
        }
        Err(e) => ("-".to_string(), Err(e.to_string())),
    };
    ProbeRow {
        device: name,
        model: dev.model.name,
        link,
        result,
    }
}

/// Read every device of `cfg` once, concurrently.
pub async fn probe_rows(cfg: &Config) -> Vec<ProbeRow> {
    let links = Links::new(std::sync::Arc::new(TcpConnector));
    let mut jobs = vec![probe_one(&links, cfg, "meter".into(), &cfg.meter)];
    for c in &cfg.chargers {
        jobs.push(probe_one(&links, cfg, c.id.clone(), &c.device));
    }
    join_all(jobs).await
}

fn triple(v: &[Option<f64>; 3], digits: usize) -> String {
    let present: Vec<String> = v
        .iter()
        .map(|x| x.map_or("-".into(), |x| format!("{x:.digits$}")))
        .collect();
    present.join("/")
}

fn opt(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{:.digits$}", x * scale))
}

/// The probe table as text.
pub fn render(rows: &[ProbeRow]) -> String {
    let header = [
        "device",
        "model",
        "link",
        "status",
        "V (L1/L2/L3)",
        "A (L1/L2/L3)",
        "W",
        "kWh",
        "state",
    ];
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![r.device.clone(), r.model.to_string(), r.link.clone()];
            match &r.result {
                Ok(s) => row.extend([
                    "ok".into(),
                    triple(&s.voltage_v, 1),
                    triple(&s.current_a, 2),
                    opt(s.power_w, 1.0, 0),
                    opt(s.energy_wh, 0.001, 3),
                    s.state.map_or("-".into(), |s| s.letter().to_string()),
                ]),
                Err(e) => {
                    row.push(format!("error: {e}"));
                    row.extend(std::iter::repeat_n("-".to_string(), 5));
                }
            }
            row
        })
        .collect();
    super::table::render(&header, &rows)
}

/// Probe and render.
pub async fn probe(cfg: &Config) -> String {
    render(&probe_rows(cfg).await)
}
