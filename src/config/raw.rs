//! The raw TOML schema: exactly what an installer may write, nothing checked yet.
//!
//! Numbers are kept wide (`i64`, `f64`) on purpose: an out-of-range `phases = 300` should
//! reach validation and be reported next to every other mistake with a helpful reason,
//! not stop deserialization with a bare "invalid value". Defaults that depend on other
//! values (a model's unit and port, the frame gap at a baud rate, the MQTT client id) stay
//! `Option` here and are filled in by validation.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub site: RawSite,
    /// `[devices]`: where the installer's own model files are.
    #[serde(default)]
    pub devices: RawDevices,
    #[serde(default)]
    pub control: RawControl,
    #[serde(default)]
    pub bus: Vec<RawBus>,
    pub meter: RawMeter,
    #[serde(default)]
    pub charger: Vec<RawCharger>,
    #[serde(default)]
    pub circuit: Vec<RawCircuit>,
    #[serde(default)]
    pub tariff: Option<RawTariff>,
    #[serde(default)]
    pub mqtt: Option<RawMqtt>,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub api: RawApi,
    /// `[auth]`: who may charge (the token list).
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    /// `[anomaly]`: read straight into the rules' settings (their counts are wide, so a
    /// negative one reaches validation), then range-checked.
    pub anomaly: crate::anomaly::Settings,
    /// `[demand]`: the utility's demand (peak) limit, averaged over clock-aligned windows.
    #[serde(default)]
    pub demand: Option<RawDemand>,
    /// `[[schedule]]`: the installer's time windows capping the site or a charger.
    #[serde(default)]
    pub schedule: Vec<RawSchedule>,
    /// `[clock]`: where trust in the wall time comes from (see `crate::clock::trust`).
    #[serde(default)]
    pub clock: crate::clock::TrustSettings,
}

/// `[devices]` (see `docs/devices.md`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevices {
    /// A directory of model files (`*.toml`), read besides the built-in models; default
    /// `/etc/evsite/models.d` when that exists.
    pub models_dir: Option<String>,
}

/// `[demand]` (see `docs/demand.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDemand {
    pub limit_kw: f64,
    /// The utility's averaging window, aligned to the local clock (15: :00, :15, :30, :45).
    #[serde(default = "default_window_min")]
    pub window_min: i64,
    /// Whether the building's own load counts (net import at the main meter, as the
    /// utility measures it) or only the chargers' draw.
    #[serde(default = "default_true")]
    pub include_building: bool,
    /// Kept free below the limit so that a window ends under it despite the cars' lag.
    #[serde(default = "default_demand_margin_pct")]
    pub margin_pct: f64,
}

/// One `[[schedule]]` entry: on `days`, from `from` to `to` (local time, wrapping past
/// midnight when `to` is earlier), the site (or `charger`) takes at most `limit_a` per phase
/// or `limit_w` in all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    #[serde(default)]
    pub charger: Option<String>,
    /// "mon".."sun", or "weekdays"/"weekends"; empty: every day.
    #[serde(default)]
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub limit_a: Option<f64>,
    #[serde(default)]
    pub limit_w: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub id: String,
    pub grid_limit_a: f64,
    #[serde(default = "default_phases")]
    pub phases: i64,
    #[serde(default = "default_voltage_v")]
    pub voltage_v: f64,
    #[serde(default = "default_margin_a")]
    pub margin_a: f64,
    #[serde(default = "default_failsafe_current_a")]
    pub failsafe_current_a: f64,
    /// The site's IANA time zone for `[demand]` windows, `[[schedule]]` and departure plans.
    /// Default: the tariff's, else UTC.
    #[serde(default)]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawControl {
    pub interval_ms: i64,
    /// Default: 200 ms, or `interval_ms` when that is shorter.
    pub meter_interval_ms: Option<i64>,
    pub meter_timeout_s: i64,
    pub ramp_step_a: f64,
    pub hysteresis_a: f64,
    pub rotation_interval_s: i64,
    pub unused_threshold_a: f64,
}

impl Default for RawControl {
    fn default() -> Self {
        RawControl {
            interval_ms: 1000,
            meter_interval_ms: None,
            meter_timeout_s: 10,
            ramp_step_a: 4.0,
            hysteresis_a: 0.5,
            rotation_interval_s: 900,
            unused_threshold_a: 2.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBus {
    pub name: String,
    pub device: String,
    #[serde(default = "default_baud")]
    pub baud: i64,
    #[serde(default = "default_parity")]
    pub parity: String,
    #[serde(default = "default_stop_bits")]
    pub stop_bits: i64,
    #[serde(default = "default_bus_timeout_ms")]
    pub timeout_ms: i64,
    /// Default: 3.5 character times at `baud`, at least 2 ms.
    #[serde(default)]
    pub frame_gap_ms: Option<i64>,
}

/// The site main meter. The link is either `bus` (RTU) or `host`/`port` (TCP, or RTU frames
/// over TCP to a transparent converter with `framing = "rtu-over-tcp"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeter {
    pub model: String,
    #[serde(default)]
    pub bus: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<i64>,
    /// With `host`: "tcp" (default) or "rtu-over-tcp" (a transparent serial converter).
    #[serde(default)]
    pub framing: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<i64>,
    /// With `framing = "rtu-over-tcp"`; default: from the model's serial settings.
    #[serde(default)]
    pub frame_gap_ms: Option<i64>,
    #[serde(default)]
    pub unit: Option<i64>,
}

/// One charge point. Link keys as for the meter; `flatten` cannot be combined with
/// `deny_unknown_fields`, so they are repeated here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCharger {
    pub id: String,
    pub model: String,
    #[serde(default)]
    pub bus: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<i64>,
    #[serde(default)]
    pub framing: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<i64>,
    #[serde(default)]
    pub frame_gap_ms: Option<i64>,
    #[serde(default)]
    pub unit: Option<i64>,
    #[serde(default = "default_phases")]
    pub phases: i64,
    /// Default: `[1, 2, 3][..phases]`.
    #[serde(default)]
    pub phase_map: Option<Vec<i64>>,
    #[serde(default = "default_min_current_a")]
    pub min_current_a: f64,
    pub max_current_a: f64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A departure plan for every session: this much energy by `plan_depart`.
    #[serde(default)]
    pub plan_energy_wh: Option<i64>,
    /// Local time "HH:MM" the vehicle leaves (the next such time after plug-in).
    #[serde(default)]
    pub plan_depart: Option<String>,
    /// Who may charge: `free` (default), `local` or `cloud`.
    #[serde(default)]
    pub auth: crate::tokens::AuthMode,
    /// A token every session here is taken to present (a resident's own bay).
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircuit {
    pub id: String,
    pub limit_a: f64,
    #[serde(default)]
    pub chargers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTariff {
    pub currency: String,
    pub energy_price: String,
    #[serde(default = "default_zero_money")]
    pub session_fee: String,
    #[serde(default = "default_zero_money")]
    pub idle_fee_per_min: String,
    #[serde(default)]
    pub idle_grace_min: i64,
    #[serde(default = "default_zero_money")]
    pub time_fee_per_hour: String,
    /// Default: UTC for `[tariff]`; the site tariff's zone for a group's.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub window: Vec<RawTariffWindow>,
    /// `[tariff.groups.NAME]`: a whole tariff of the same shape for the sessions of one
    /// token-list group (only in `[tariff]`, not in a group's own).
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, RawTariff>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTariffWindow {
    pub start: String,
    pub end: String,
    pub energy_price: String,
    #[serde(default)]
    pub days: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub url: String,
    /// Default: `evsite-{site.id}`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    #[serde(default = "default_telemetry_interval_s")]
    pub telemetry_interval_s: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStorage {
    pub path: String,
    pub max_size_mb: i64,
    pub retention_days: i64,
    /// Unset: as `retention_days`.
    pub identity_retention_days: Option<i64>,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            path: "/var/lib/evsite".into(),
            max_size_mb: 512,
            retention_days: 365,
            identity_retention_days: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApi {
    pub listen: String,
    /// A file holding the bearer token every request must carry (required off loopback).
    pub token_file: Option<String>,
}

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            listen: "127.0.0.1:8787".into(),
            token_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    /// The token list (see docs/tokens.md).
    pub tokens_file: Option<String>,
    /// How long a `cloud` charger waits for the cloud's answer before the list and the cache
    /// decide.
    pub cloud_timeout_s: f64,
    /// Most tokens the cache of the cloud's acceptances holds.
    pub cache_max_entries: i64,
    /// How long a token the cloud accepted stays in the cache (unless the cloud says less).
    pub cache_days: i64,
    /// How `P/sessions` carries tokens, user names and vehicle ids: `plain` or `hashed`.
    pub publish_identity: crate::tokens::privacy::PublishIdentity,
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth {
            tokens_file: None,
            cloud_timeout_s: crate::config::types::Auth::DEFAULT_CLOUD_TIMEOUT_S,
            cache_max_entries: crate::config::types::Auth::DEFAULT_CACHE_MAX_ENTRIES as i64,
            cache_days: i64::from(crate::config::types::Auth::DEFAULT_CACHE_DAYS),
            publish_identity: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
        }
    }
}

/// Request timeout of a TCP device (or one behind a gateway) when `timeout_ms` is not given.
pub const DEFAULT_TCP_TIMEOUT_MS: i64 = 1000;

fn default_phases() -> i64 {
    3
}
fn default_voltage_v() -> f64 {
    230.0
}
fn default_margin_a() -> f64 {
    2.0
}
fn default_failsafe_current_a() -> f64 {
    6.0
}
fn default_baud() -> i64 {
    9600
}
fn default_parity() -> String {
    "none".into()
}
fn default_stop_bits() -> i64 {
    1
}
fn default_bus_timeout_ms() -> i64 {
    300
}
fn default_min_current_a() -> f64 {
    6.0
}
fn default_true() -> bool {
    true
}
fn default_zero_money() -> String {
    "0.00".into()
}
fn default_window_min() -> i64 {
    15
}
fn default_demand_margin_pct() -> f64 {
    2.0
}
fn default_topic_prefix() -> String {
    "evsite".into()
}
fn default_telemetry_interval_s() -> i64 {
    10
}
