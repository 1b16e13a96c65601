//! The validated configuration: what the rest of evsite runs on. Built only by
//! [`crate::config::load`] from the raw TOML, so every value here has been checked.

use std::path::PathBuf;
use std::time::Duration;

use crate::devices::model::{ModelSpec, Parity};

#[derive(Debug, Clone)]
pub struct Config {
    pub site: Site,
    pub control: Control,
    pub buses: Vec<Bus>,
    pub meter: Device,
    pub chargers: Vec<Charger>,
    pub circuits: Vec<Circuit>,
    pub tariff: Option<Tariff>,
    /// `[tariff.groups.NAME]`: the tariff of each token-list group that has its own (the
    /// others, and sessions of nobody known, are billed at `tariff`).
    pub tariff_groups: std::collections::BTreeMap<String, Tariff>,
    pub mqtt: Option<Mqtt>,
    pub storage: Storage,
    pub api: Api,
    /// Who may charge: the token list (`[auth]`).
    pub auth: Auth,
    pub log: Log,
    /// The anomaly rules' thresholds (`[anomaly]`).
    pub anomaly: crate::anomaly::Settings,
    /// The utility's demand limit (`[demand]`), if the site has one.
    pub demand: Option<Demand>,
    /// The installer's `[[schedule]]` caps, in file order.
    pub schedules: Vec<Schedule>,
    /// Where trust in the wall time comes from (`[clock]`, read at start).
    pub clock: crate::clock::TrustSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub id: String,
    /// Per-phase main fuse rating: the installer's hard ceiling.
    pub grid_limit_a: f64,
    /// 1 or 3.
    pub phases: u8,
    pub voltage_v: f64,
    /// Headroom kept below `grid_limit_a`.
    pub margin_a: f64,
    /// Per-charger current when the main meter cannot be read.
    pub failsafe_current_a: f64,
    /// Local time of the site: demand windows, schedules and departure plans.
    pub timezone: chrono_tz::Tz,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub interval: Duration,
    /// How often the main meter is read between full cycles, to answer an overload at once
    /// (the overload fast path). Equal to `interval`: no reads between cycles.
    pub meter_interval: Duration,
    /// How long the main meter may be unreadable before fail-safe.
    pub meter_timeout: Duration,
    /// Largest increase of one charger's setpoint per cycle.
    pub ramp_step_a: f64,
    /// Setpoint changes smaller than this are not written.
    pub hysteresis_a: f64,
    /// How long paused chargers wait before taking a turn (rotation).
    pub rotation_interval: Duration,
    /// A charger drawing this much less than its setpoint is not using its share.
    pub unused_threshold_a: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bus {
    pub name: String,
    pub device: PathBuf,
    pub baud: u32,
    pub parity: Parity,
    pub stop_bits: u8,
    pub timeout: Duration,
    /// Silence kept between frames on the line.
    pub frame_gap: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Tcp {
        host: String,
        port: u16,
        timeout: Duration,
    },
    Rtu {
        bus: String,
    },
    /// RTU frames tunnelled over TCP to a transparent serial converter: the line's rules
    /// apply, one request at a time per `host:port` and `frame_gap` of silence between frames.
    RtuOverTcp {
        host: String,
        port: u16,
        timeout: Duration,
        frame_gap: Duration,
    },
}

impl Link {
    /// The link kind as `evsite probe` and the logs name it: `tcp`, `rtu` or `rtu-over-tcp`.
    pub fn kind(&self) -> &'static str {
        match self {
            Link::Tcp { .. } => "tcp",
            Link::Rtu { .. } => "rtu",
            Link::RtuOverTcp { .. } => "rtu-over-tcp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub model: &'static ModelSpec,
    pub link: Link,
    pub unit: u8,
}

/// A grid phase, 1-based in config and display (L1, L2, L3), 0-based here.
pub type PhaseIndex = usize;

#[derive(Debug, Clone, PartialEq)]
pub struct Charger {
    pub id: String,
    pub device: Device,
    /// Phases the charger is wired with (1 or 3).
    pub phases: u8,
    /// `phase_map[i]` is the grid phase (0-based) the charger's phase i is on.
    pub phase_map: Vec<PhaseIndex>,
    pub min_current_a: f64,
    pub max_current_a: f64,
    /// Higher is served first.
    pub priority: u8,
    pub enabled: bool,
    /// Who may charge on it (`auth`): `free`, `local` or `cloud`.
    pub auth: crate::tokens::AuthMode,
    /// The token every session here presents (`token`: a resident's own bay), on the list.
    pub token: Option<String>,
    /// A departure plan every session on this charger carries, if any.
    pub plan: Option<PlanSpec>,
}

/// `plan_energy_wh` by `plan_depart`: the next such local time after plug-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSpec {
    pub energy_wh: u64,
    /// Minutes after local midnight.
    pub depart_min: u16,
}

/// `[demand]`: keep every clock-aligned window's average import at most `limit_kw`.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub limit_kw: f64,
    pub window: Duration,
    pub include_building: bool,
    pub margin_pct: f64,
}

/// What a `[[schedule]]` entry caps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScheduleCap {
    /// Per phase.
    Amps(f64),
    /// In all (converted per phase with the site's voltage and the phases in use).
    Watts(f64),
}

/// One `[[schedule]]` entry, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// None: the site.
    pub charger: Option<String>,
    /// Empty: every day.
    pub days: Vec<chrono::Weekday>,
    /// Minutes after local midnight; `to_min` may be 1440 (24:00) and may be below
    /// `from_min` (the window wraps past midnight).
    pub from_min: u16,
    pub to_min: u16,
    pub cap: ScheduleCap,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Circuit {
    pub id: String,
    /// Per-phase limit of the sub-distribution.
    pub limit_a: f64,
    /// Charger ids on this circuit.
    pub chargers: Vec<String>,
}

/// `[tariff]`, parsed at validation into the snapshot sessions are billed with: money as
/// exact decimals, the zone and the windows' times and days as values, so nothing parses
/// the tariff again later (and nothing later can fail to).
pub type Tariff = crate::sessions::tariff::TariffSnapshot;

#[derive(Debug, Clone, PartialEq)]
pub struct Mqtt {
    pub url: String,
    pub client_id: String,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub topic_prefix: String,
    pub telemetry_interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    pub path: PathBuf,
    pub max_size_mb: u64,
    pub retention_days: u32,
    /// After this many days a finished session loses its token, user, vehicle and vehicle
    /// id, and keeps its energy and cost; at most `retention_days`.
    pub identity_retention_days: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    pub listen: std::net::SocketAddr,
    /// The bearer token's file: with one, every request needs `Authorization: Bearer`.
    pub token_file: Option<PathBuf>,
}

/// `[auth]`: the token list, read and checked with the config (and again on every reload),
/// and how `cloud` chargers wait for the cloud and cache its answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub tokens_file: Option<PathBuf>,
    /// The list as read (empty without a file, and when the config was read for its values
    /// only: see [`crate::config::validate::files::FileScope`]).
    pub tokens: std::sync::Arc<crate::tokens::TokenList>,
    /// How long a `cloud` charger waits for an answer before the list and the cache decide.
    pub cloud_timeout: std::time::Duration,
    /// Most tokens the cache of the cloud's acceptances holds (the soonest to expire go first).
    pub cache_max_entries: usize,
    /// How long an accepted token stays in the cache, unless the cloud gives an earlier expiry.
    pub cache_days: u32,
    /// How `P/sessions` carries tokens, user names and vehicle ids (read at start).
    pub publish_identity: crate::tokens::privacy::PublishIdentity,
}

impl Auth {
    pub const DEFAULT_CLOUD_TIMEOUT_S: f64 = 5.0;
    pub const DEFAULT_CACHE_MAX_ENTRIES: usize = 10_000;
    pub const DEFAULT_CACHE_DAYS: u32 = 30;
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            tokens_file: None,
            tokens: std::sync::Arc::default(),
            cloud_timeout: std::time::Duration::from_secs_f64(Self::DEFAULT_CLOUD_TIMEOUT_S),
            cache_max_entries: Self::DEFAULT_CACHE_MAX_ENTRIES,
            publish_identity: Default::default(),
            cache_days: Self::DEFAULT_CACHE_DAYS,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    /// A tracing filter ("info", "evsite=debug"); `RUST_LOG` wins when set.
    pub level: String,
}
