//! The evsite config for a served site: the scenario's site and chargers, pointed at the
//! loopback ports and pseudo-terminals the simulator listens on, so `evsite probe` and
//! `evsite run` work against it at once.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::devices::model::Parity;

use super::serve::{Endpoint, Link};
use super::site::{SiteModel, METER};

/// Bus timeout written for the simulated lines: a pty answers at once.
const BUS_TIMEOUT_MS: u32 = 300;

#[derive(Debug, thiserror::Error)]
pub enum WriteConfigError {
    #[error("device {0} is not served")]
    NotServed(String),
    #[error("cannot serialise the config: {0}")]
    Toml(#[from] toml::ser::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Serialize)]
struct File {
    site: super::scenario::SiteSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    devices: Option<Devices>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bus: Vec<Bus>,
    meter: Device,
    charger: Vec<Charger>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    circuit: Vec<Circuit>,
    storage: Storage,
    #[serde(skip_serializing_if = "Option::is_none")]
    demand: Option<toml::Table>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tariff: Option<toml::Table>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    schedule: Vec<toml::Table>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<toml::Table>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mqtt: Option<toml::Table>,
    clock: ClockSection,
}

/// The token file's name beside the site's data.
pub const TOKENS_FILE: &str = "tokens.toml";

/// The scenario's token list as a token file (None: it has none).
pub fn tokens_toml(site: &SiteModel) -> Option<String> {
    let tokens = &site.shaping().tokens;
    if tokens.is_empty() {
        return None;
    }
    let mut file = toml::Table::new();
    file.insert(
        "token".into(),
        toml::Value::Array(tokens.iter().cloned().map(toml::Value::Table).collect()),
    );
    toml::to_string(&file).ok()
}

/// `[auth]` and `[mqtt]` for a scenario with a token list or a cloud: the token file in
/// `data_dir`, the cloud's timeout, and for `cloud` chargers a broker on the usual local port
/// (`evsite-sim run` models the cloud itself and connects none).
fn auth_sections(site: &SiteModel, data_dir: &Path) -> (Option<toml::Table>, Option<toml::Table>) {
    let shaping = site.shaping();
    let mut auth = toml::Table::new();
    if !shaping.tokens.is_empty() {
        auth.insert(
            "tokens_file".into(),
            toml::Value::String(data_dir.join(TOKENS_FILE).display().to_string()),
        );
    }
    if let Some(t) = shaping.cloud.as_ref().and_then(|c| c.timeout_s) {
        auth.insert("cloud_timeout_s".into(), toml::Value::Float(t));
    }
    let cloud = site
        .chargers()
        .iter()
        .any(|c| c.auth == Some(crate::tokens::AuthMode::Cloud));
    let mqtt = cloud.then(|| {
        let mut m = toml::Table::new();
        m.insert(
            "url".into(),
            toml::Value::String("mqtt://127.0.0.1:1883".into()),
        );
        m
    });
    ((!auth.is_empty()).then_some(auth), mqtt)
}

/// `[clock]`: a simulated site runs on the machine's time, vouched for so that the daemon
/// behaves the same on a machine whose clock is not synchronised (a container, a test box).
#[derive(Serialize)]
struct ClockSection {
    trusted: bool,
}

/// `[devices]`: where the scenario's own model files are.
#[derive(Serialize)]
struct Devices {
    models_dir: PathBuf,
}

#[derive(Serialize)]
struct Bus {
    name: String,
    device: PathBuf,
    baud: u32,
    parity: Parity,
    stop_bits: u8,
    timeout_ms: u32,
}

#[derive(Serialize)]
struct Device {
    model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    framing: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bus: Option<String>,
    unit: u8,
}

#[derive(Serialize)]
struct Charger {
    id: String,
    #[serde(flatten)]
    device: Device,
    phases: u8,
    phase_map: Vec<usize>,
    min_current_a: f64,
    max_current_a: f64,
    priority: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_energy_wh: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_depart: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<crate::tokens::AuthMode>,
}

#[derive(Serialize)]
struct Circuit {
    id: String,
    limit_a: f64,
    chargers: Vec<String>,
}

#[derive(Serialize)]
struct Storage {
    path: PathBuf,
}

fn device(e: &Endpoint) -> Device {
    let loopback = || Some("127.0.0.1".to_string());
    let (host, port, bus, framing) = match &e.link {
        Link::Tcp { port } | Link::GatewayTcp { port } => (loopback(), Some(*port), None, None),
        Link::GatewayRtu { port } => (loopback(), Some(*port), None, Some("rtu-over-tcp")),
        Link::Rtu { bus, .. } => (None, None, Some(bus.clone()), None),
    };
    Device {
        model: e.device.model.name.to_string(),
        host,
        port,
        framing,
        bus,
        unit: e.device.unit,
    }
}

/// The config text for `site` served at `endpoints`, with its store under `data_dir`.
pub fn config_toml(
    site: &SiteModel,
    endpoints: &[Endpoint],
    data_dir: &Path,
) -> Result<String, WriteConfigError> {
    let find = |index: usize, id: &str| {
        endpoints
            .iter()
            .find(|e| e.device.index == index)
            .ok_or_else(|| WriteConfigError::NotServed(id.to_string()))
    };
    let mut bus: Vec<Bus> = Vec::new();
    for e in endpoints {
        if let Link::Rtu {
            bus: name,
            path,
            serial,
        } = &e.link
        {
            if !bus.iter().any(|b| &b.name == name) {
                bus.push(Bus {
                    name: name.clone(),
                    device: path.clone(),
                    baud: serial.baud,
                    parity: serial.parity,
                    stop_bits: serial.stop_bits,
                    timeout_ms: BUS_TIMEOUT_MS,
                });
            }
        }
    }
    let charger = site
        .chargers()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(Charger {
                id: c.id.clone(),
                device: device(find(i + 1, &c.id)?),
                phases: c.phases,
                phase_map: c.phase_map.iter().map(|p| p + 1).collect(),
                min_current_a: c.min_current_a,
                max_current_a: c.max_current_a,
                priority: c.priority,
                plan_energy_wh: c.plan.0,
                plan_depart: c.plan.1.clone(),
                auth: c.auth,
            })
        })
        .collect::<Result<Vec<_>, WriteConfigError>>()?;
    let circuit = site
        .circuits()
        .iter()
        .map(|(id, limit_a)| Circuit {
            id: id.clone(),
            limit_a: *limit_a,
            chargers: site
                .chargers()
                .iter()
                .filter(|c| c.circuit.as_deref() == Some(id))
                .map(|c| c.id.clone())
                .collect(),
        })
        .collect();
    let (auth, mqtt) = auth_sections(site, data_dir);
    let file = File {
        site: site.site().clone(),
        devices: site.models_dir().map(|d| Devices {
            models_dir: d.to_path_buf(),
        }),
        bus,
        meter: device(find(METER, "meter")?),
        charger,
        circuit,
        storage: Storage {
            path: data_dir.join("data"),
        },
        demand: site.shaping().demand.clone(),
        tariff: site.shaping().tariff.clone(),
        schedule: site.shaping().schedules.clone(),
        auth,
        mqtt,
        clock: ClockSection { trusted: true },
    };
    Ok(toml::to_string(&file)?)
}

/// Write [`config_toml`] to `path`.
pub fn write_config(
    path: &Path,
    site: &SiteModel,
    endpoints: &[Endpoint],
    data_dir: &Path,
) -> Result<(), WriteConfigError> {
    let text = config_toml(site, endpoints, data_dir)?;
    if let Some(tokens) = tokens_toml(site) {
        let at = data_dir.join(TOKENS_FILE);
        std::fs::write(&at, tokens)
            .map_err(|source| WriteConfigError::Write { path: at, source })?;
    }
    std::fs::write(path, text).map_err(|source| WriteConfigError::Write {
        path: path.to_path_buf(),
        source,
    })
}
