//! The scenario file: a site, its base load, devices, the vehicles that visit over the day and
//! the faults to inject. An RS-485 device may be served behind a simulated Ethernet gateway
//! (`link = "gateway-tcp"` or `"gateway-rtu"`, see [`Gateway`]). Parsed strictly (unknown
//! keys are errors, like the daemon's config) so a typo cannot silently make a scenario
//! easier than it reads.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::devices::model::Transport;
use crate::simulator::vehicle::MAX_RESPONSE_DELAY_S;

mod arrivals;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {source}")]
    Parse {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

/// A whole scenario, as written in the file (before `[[arrivals]]` are expanded).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub duration_s: f64,
    /// The wall-clock time the scenario starts at (RFC 3339).
    #[serde(deserialize_with = "rfc3339")]
    pub start: DateTime<Utc>,
    pub site: SiteSpec,
    pub base_load: BaseLoad,
    pub meter: MeterSpec,
    #[serde(default, rename = "charger")]
    pub chargers: Vec<ChargerEntry>,
    #[serde(default, rename = "circuit")]
    pub circuits: Vec<CircuitSpec>,
    #[serde(default, rename = "vehicle")]
    pub vehicles: Vec<VehicleSpec>,
    #[serde(default)]
    pub arrivals: Vec<Arrivals>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
    /// Written into the site's config as they are (`[demand]`, `[tariff]`,
    /// `[[schedule]]`): the daemon's own validation checks them.
    #[serde(default)]
    pub demand: Option<toml::Table>,
    #[serde(default)]
    pub tariff: Option<toml::Table>,
    #[serde(default, rename = "schedule")]
    pub schedules: Vec<toml::Table>,
    /// An installer's model files (a directory of `*.toml`, or one file) the devices' models
    /// may come from besides the built-in ones; relative to the scenario file. The written
    /// config names the same place as `[devices] models_dir`, so the simulator and the daemon
    /// read the same files.
    #[serde(default)]
    pub models_dir: Option<PathBuf>,
    /// The site's token list (`[[token]]` entries as in a token file): written beside the
    /// config and named by its `[auth] tokens_file` when there are any.
    #[serde(default, rename = "token")]
    pub tokens: Vec<toml::Table>,
    /// The cloud `cloud` chargers ask (`evsite-sim run` models it; see [`CloudSpec`]). Without
    /// one, `run` has no cloud: the list and the cache decide at once. A served site asks a
    /// real one.
    #[serde(default)]
    pub cloud: Option<CloudSpec>,
}

/// A modelled cloud for chargers in `cloud` mode: which tokens it accepts, how long it takes
/// to answer, and when it is offline (the link down: requests go nowhere, answers are lost).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSpec {
    /// Tokens it accepts (matched as the site matches them); it refuses every other.
    #[serde(default)]
    pub accepts: Vec<String>,
    /// Tokens it never answers about (a cloud that is up but silent for them).
    #[serde(default)]
    pub silent: Vec<String>,
    /// Seconds from a request to its answer.
    #[serde(default)]
    pub latency_s: f64,
    /// `[from_s, to_s)` windows when it is offline.
    #[serde(default)]
    pub offline: Vec<[f64; 2]>,
    /// The site's `[auth] cloud_timeout_s` (None: evsite's default).
    #[serde(default)]
    pub timeout_s: Option<f64>,
}

impl CloudSpec {
    /// Whether the cloud is reachable at `t_s`.
    pub fn online_at(&self, t_s: f64) -> bool {
        !self.offline.iter().any(|w| t_s >= w[0] && t_s < w[1])
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    pub id: String,
    pub grid_limit_a: f64,
    pub phases: u8,
    pub voltage_v: f64,
    pub margin_a: f64,
    pub failsafe_current_a: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// Household / building load per grid phase, linearly interpolated between points.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseLoad {
    /// `[t_s, l1_a, l2_a, l3_a]`, in increasing time.
    pub points: Vec<[f64; 4]>,
    /// Uniform noise of ± this many amps per phase, from the scenario's seed.
    #[serde(default)]
    pub noise_a: f64,
}

impl BaseLoad {
    /// The profile's per-phase current at `t_s` (held flat before the first and after the
    /// last point), without noise.
    pub fn at(&self, t_s: f64) -> [f64; 3] {
        let pick = |p: &[f64; 4]| [p[1], p[2], p[3]];
        let Some(first) = self.points.first() else {
            return [0.0; 3];
        };
        if t_s <= first[0] {
            return pick(first);
        }
        // The first point at or after `t_s` (points are in increasing time): a generated
        // building has thousands of them, read every physics step.
        let i = self.points.partition_point(|p| p[0] < t_s);
        if let (Some(a), Some(b)) = (
            i.checked_sub(1).map(|j| &self.points[j]),
            self.points.get(i),
        ) {
            let span = b[0] - a[0];
            let f = if span > 0.0 { (t_s - a[0]) / span } else { 1.0 };
            return [1, 2, 3].map(|k| a[k] + (b[k] - a[k]) * f);
        }
        self.points.last().map(pick).unwrap_or([0.0; 3])
    }
}

/// How `evsite-sim serve` reaches an RS-485 device through an Ethernet gateway on loopback,
/// instead of on a pseudo-terminal. Every device with the same `link` sits behind one
/// gateway (one port), told apart by unit id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Gateway {
    /// A protocol-converting gateway: Modbus TCP in front, RTU on the line behind.
    #[serde(rename = "gateway-tcp")]
    Tcp,
    /// A transparent serial converter: the RTU frames themselves, over TCP.
    #[serde(rename = "gateway-rtu")]
    Rtu,
}

impl Gateway {
    /// The name a scenario file uses.
    pub fn name(self) -> &'static str {
        match self {
            Gateway::Tcp => "gateway-tcp",
            Gateway::Rtu => "gateway-rtu",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterSpec {
    pub model: String,
    pub transport: Transport,
    /// With `transport = "rtu"`: served behind a gateway (see [`Gateway`]).
    #[serde(default)]
    pub link: Option<Gateway>,
    /// Defaults to the model's factory unit id.
    #[serde(default)]
    pub unit: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargerEntry {
    pub id: String,
    pub model: String,
    pub transport: Transport,
    /// With `transport = "rtu"`: served behind a gateway (see [`Gateway`]).
    #[serde(default)]
    pub link: Option<Gateway>,
    pub phases: u8,
    /// 1-based grid phase of each charger phase.
    pub phase_map: Vec<u8>,
    pub min_current_a: f64,
    pub max_current_a: f64,
    #[serde(default)]
    pub priority: u8,
    #[serde(default)]
    pub circuit: Option<String>,
    /// Defaults to the model's factory unit id.
    #[serde(default)]
    pub unit: Option<u8>,
    /// A departure plan for every session (written into the config as they are).
    #[serde(default)]
    pub plan_energy_wh: Option<u64>,
    #[serde(default)]
    pub plan_depart: Option<String>,
    /// Who may charge here (`free`, `local`, `cloud`; written into the config when given).
    #[serde(default)]
    pub auth: Option<crate::tokens::AuthMode>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitSpec {
    pub id: String,
    pub limit_a: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleSpec {
    pub charger: String,
    pub arrive_s: f64,
    pub depart_s: f64,
    pub capacity_kwh: f64,
    pub soc_start: f64,
    pub soc_target: f64,
    pub max_current_a: f64,
    pub phases: u8,
    #[serde(default = "default_delay")]
    pub response_delay_s: f64,
    #[serde(default = "default_taper")]
    pub taper_from_soc: f64,
    /// The user's token (RFID card, OCPP idTag) the charger reports while the vehicle is
    /// connected, in its model's id register.
    #[serde(default)]
    pub token: Option<String>,
}

fn default_delay() -> f64 {
    2.0
}
fn default_taper() -> f64 {
    0.8
}

/// A compact, seeded way to write many visits: `count` vehicles arriving uniformly within
/// `window_s` at chargers drawn from `chargers` (all when empty), each staying `stay_s`. Two
/// visits to one charger never overlap: a draw that would is moved to the charger's next
/// free time, and dropped if that is past the window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    pub count: u32,
    #[serde(default)]
    pub chargers: Vec<String>,
    pub window_s: [f64; 2],
    pub stay_s: [f64; 2],
    pub capacity_kwh: [f64; 2],
    pub soc_start: [f64; 2],
    pub soc_target: f64,
    /// Vehicle current limits to choose from (e.g. `[16.0, 32.0]`).
    pub max_current_a: Vec<f64>,
    /// Share of 1-phase cars, 0–1.
    #[serde(default)]
    pub one_phase_share: f64,
    #[serde(default = "default_delay_range")]
    pub response_delay_s: [f64; 2],
    #[serde(default = "default_taper")]
    pub taper_from_soc: f64,
}

fn default_delay_range() -> [f64; 2] {
    [1.0, 5.0]
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The device does not answer at all.
    MeterSilent,
    /// The charger reports state E/F and delivers nothing.
    ChargerError,
    /// Writes are acknowledged but never applied.
    IgnoreSetpoints,
    /// Answers are corrupted on the wire.
    GarbledFrames,
    /// The energy register restarts at 0.
    EnergyReset,
    /// The energy register counts `amount` (default 0.8) times the energy delivered.
    MeterDrift,
    /// The energy register stands still while energy flows.
    FrozenRegister,
    /// The energy register jumps by `amount` Wh (default 5000) once.
    RegisterJump,
    /// The charger is wired with its phases rotated by one grid phase from its `phase_map`.
    SwappedPhase,
    /// The charger is disabled (a cloud `set_charger`) and ignores it: the car keeps drawing.
    DrawWhileDisabled,
    /// The charger reports state C and offers current, and the car draws nothing.
    StuckSession,
    /// The charger's power reading is `amount` (default 1.5) times the power drawn.
    PowerHigh,
    /// The site meter's current and power readings are `amount` (default 0.5) times what
    /// flows, as behind current transformers of another ratio than configured. Target
    /// `meter`.
    SiteMeterScale,
    /// The car is full: from the onset it takes nothing more, and stays plugged in (state B)
    /// for the fault's duration.
    BayBlocked,
    /// Every request is refused with exception 4 (server device failure).
    Exceptions,
    /// Reads answer all-ones words: NaN in float registers, 0xFFFF sentinels in integers.
    NoValue,
    /// Answers carry another unit's address, as a miswired or misaddressed device does.
    WrongUnit,
    /// A card the token list does not know is presented at the charger again and again: its
    /// id shows in the charger's id register for 20 s of every minute from the onset (the
    /// charger clears it after refusing it). The controller reads ids only while a car is
    /// plugged in, so a scenario plugs one in.
    UnknownToken,
    /// The charger reports the token of a car plugged in at another charger (a copied
    /// card, or one card used for two cars) while its own car is plugged in.
    TokenInUseTwice,
    /// The charger runs free of the controller (writes acknowledged, not applied; it offers
    /// its maximum) and its car presents no token: energy flows with nobody authorised.
    UnauthorizedDraw,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub at_s: f64,
    pub duration_s: f64,
    pub kind: FaultKind,
    /// A charger id, or "meter".
    pub target: String,
    /// The fault's size, for kinds that have one (`meter_drift`, `register_jump`,
    /// `power_high`, `site_meter_scale`).
    #[serde(default)]
    pub amount: Option<f64>,
}

impl FaultSpec {
    /// The register gain of a `meter_drift` fault.
    pub const DEFAULT_DRIFT: f64 = 0.8;
    /// The step of a `register_jump` fault, Wh.
    pub const DEFAULT_JUMP_WH: f64 = 5000.0;
    /// The power reading's gain of a `power_high` fault.
    pub const DEFAULT_POWER_GAIN: f64 = 1.5;
    /// The readings' gain of a `site_meter_scale` fault.
    pub const DEFAULT_METER_SCALE: f64 = 0.5;
    /// The card an `unknown_token` fault presents (on no token list the simulator writes) …
    pub const UNKNOWN_TOKEN: &'static str = "0BADC0DE99";
    /// … once every this many seconds from its onset …
    pub const UNKNOWN_TOKEN_PERIOD_S: f64 = 60.0;
    /// … for this long each time.
    pub const UNKNOWN_TOKEN_SHOWN_S: f64 = 20.0;

    pub fn active_at(&self, t_s: f64) -> bool {
        t_s >= self.at_s && t_s < self.at_s + self.duration_s
    }
}

/// Accept an RFC 3339 string or a TOML datetime (both are natural to write).
fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Toml(toml::value::Datetime),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Toml(dt) => dt.to_string(),
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| serde::de::Error::custom(format!("start: not RFC 3339 ({e}): {text}")))
}

impl Scenario {
    /// Parse and check a scenario; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            origin: origin.to_string(),
            source: Box::new(e),
        })?;
        scenario
            .validate()
            .map_err(|reason| ScenarioError::Invalid {
                origin: origin.to_string(),
                reason,
            })?;
        Ok(scenario)
    }

    pub fn from_path(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut scenario = Self::parse(&text, &path.display().to_string())?;
        if let (Some(dir), Some(base)) = (&scenario.models_dir, path.parent()) {
            if dir.is_relative() {
                let joined = base.join(dir);
                // Absolute, so that a written config names the same files wherever it is.
                scenario.models_dir = Some(std::path::absolute(&joined).unwrap_or(joined));
            }
        }
        Ok(scenario)
    }

    /// Check what the file format cannot: phases, ranges and references.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.site;
        if !(s.phases == 1 || s.phases == 3) {
            return Err("site.phases must be 1 or 3".into());
        }
        if !(s.grid_limit_a > 0.0 && s.voltage_v > 0.0 && self.duration_s > 0.0) {
            return Err("grid_limit_a, voltage_v and duration_s must be positive".into());
        }
        if self.base_load.points.windows(2).any(|w| w[1][0] < w[0][0]) {
            return Err("base_load.points must be in increasing time".into());
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.chargers {
            if c.id == "meter" || !ids.insert(c.id.as_str()) {
                return Err(format!("charger id {:?} is reserved or used twice", c.id));
            }
            if !(c.phases == 1 || c.phases == 3) || c.phase_map.len() != usize::from(c.phases) {
                return Err(format!(
                    "charger {}: phases must be 1 or 3, with one phase_map entry each",
                    c.id
                ));
            }
            if c.phase_map.iter().any(|p| *p < 1 || *p > s.phases) {
                return Err(format!(
                    "charger {}: phase_map outside 1..={}",
                    c.id, s.phases
                ));
            }
            if !(0.0 < c.min_current_a && c.min_current_a <= c.max_current_a) {
                return Err(format!("charger {}: need 0 < min_current_a ≤ max", c.id));
            }
            if let Some(circuit) = &c.circuit {
                if !self.circuits.iter().any(|k| &k.id == circuit) {
                    return Err(format!("charger {}: unknown circuit {circuit}", c.id));
                }
            }
        }
        for v in &self.vehicles {
            check_vehicle(v, &ids)?;
        }
        for a in &self.arrivals {
            if a.chargers.iter().any(|c| !ids.contains(c.as_str())) {
                return Err("arrivals: unknown charger".into());
            }
            if a.max_current_a.is_empty() || a.window_s[1] < a.window_s[0] {
                return Err("arrivals: need max_current_a choices and a window".into());
            }
        }
        for f in &self.faults {
            if f.target != "meter" && !ids.contains(f.target.as_str()) {
                return Err(format!("fault: unknown target {}", f.target));
            }
        }
        if let Some(c) = &self.cloud {
            if !(c.latency_s.is_finite() && c.latency_s >= 0.0) {
                return Err("cloud.latency_s must be 0 or more".into());
            }
            if c.offline
                .iter()
                .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
            {
                return Err(
                    "cloud.offline: each window is [from_s, to_s] with from_s < to_s".into(),
                );
            }
        }
        Ok(())
    }
}

fn check_vehicle(
    v: &VehicleSpec,
    chargers: &std::collections::HashSet<&str>,
) -> Result<(), String> {
    let who = format!("vehicle at {} (t={})", v.charger, v.arrive_s);
    if !chargers.contains(v.charger.as_str()) {
        return Err(format!("{who}: unknown charger"));
    }
    if !(v.phases == 1 || v.phases == 3) {
        return Err(format!("{who}: phases must be 1 or 3"));
    }
    if !(0.0..=MAX_RESPONSE_DELAY_S).contains(&v.response_delay_s) {
        return Err(format!(
            "{who}: response_delay_s must be within 0–{MAX_RESPONSE_DELAY_S} s"
        ));
    }
    if !(v.depart_s > v.arrive_s && v.capacity_kwh > 0.0 && v.max_current_a > 0.0) {
        return Err(format!(
            "{who}: need depart_s > arrive_s, positive capacity and current"
        ));
    }
    let unit = 0.0..=1.0;
    if !(unit.contains(&v.soc_start)
        && unit.contains(&v.soc_target)
        && unit.contains(&v.taper_from_soc))
    {
        return Err(format!("{who}: soc values must be within 0–1"));
    }
    if let Some(t) = &v.token {
        // An OCPP 1.6 idTag is at most 20 characters: it fits every model's id register.
        if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| (0x21..0x7F).contains(&b)) {
            return Err(format!(
                "{who}: token {t:?} must be 1–20 printable ASCII characters without blanks \
                 (an OCPP idTag)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
name = "t"
seed = 7
duration_s = 3600
start = "2025-01-15T17:00:00Z"
[site]
id = "s"
grid_limit_a = 32.0
phases = 3
voltage_v = 230.0
margin_a = 1.0
failsafe_current_a = 6.0
[base_load]
points = [[0, 2, 4, 6], [100, 12, 14, 16]]
[meter]
model = "eastron-sdm630"
transport = "rtu"
[[charger]]
id = "cp-1"
model = "alfen-eve"
transport = "tcp"
phases = 3
phase_map = [1, 2, 3]
min_current_a = 6.0
max_current_a = 32.0
[[arrivals]]
count = 5
window_s = [0, 3000]
stay_s = [300, 600]
capacity_kwh = [40, 80]
soc_start = [0.2, 0.5]
soc_target = 0.8
max_current_a = [16, 32]
"#;

    /// A scenario's own models are found beside it, whatever the working directory, and a
    /// charger may name one; a broken file stops the site with its located error.
    #[test]
    fn models_dir_is_relative_to_the_scenario_and_its_models_are_served() {
        use crate::simulator::{SiteError, SiteModel};
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models.d");
        std::fs::create_dir(&models).unwrap();
        let mine = crate::devices::registry::source("alfen-eve")
            .unwrap()
            .replace("id = \"alfen-eve\"", "id = \"my-alfen\"");
        std::fs::write(models.join("my-alfen.toml"), &mine).unwrap();
        let text = format!(
            "models_dir = \"models.d\"\n{}",
            SMALL.replace("model = \"alfen-eve\"", "model = \"my-alfen\"")
        );
        let path = dir.path().join("site.toml");
        std::fs::write(&path, &text).unwrap();
        let s = Scenario::from_path(&path).unwrap();
        assert_eq!(s.models_dir.as_deref(), Some(models.as_path()));
        let site = SiteModel::from_registry(&s).unwrap();
        assert_eq!(site.chargers()[0].model.name, "my-alfen");
        assert_eq!(site.models_dir(), Some(models.as_path()));
        // Without its file the model is unknown; with a mistake in it, the mistake is named.
        let bare = Scenario::parse(&text.replacen("models_dir = \"models.d\"\n", "", 1), "t");
        assert!(matches!(
            SiteModel::from_registry(&bare.unwrap()),
            Err(SiteError::UnknownModel { .. })
        ));
        std::fs::write(
            models.join("my-alfen.toml"),
            mine.replace("type = \"float64\"", "type = \"double\""),
        )
        .unwrap();
        let err = SiteModel::from_registry(&s).err().unwrap().to_string();
        assert!(err.contains("my-alfen.toml:"), "{err}");
        assert!(err.contains("double"), "{err}");
    }

    #[test]
    fn a_vehicles_token_is_checked() {
        let vehicle = |token: &str| {
            format!(
                "{SMALL}\n[[vehicle]]\ncharger = \"cp-1\"\narrive_s = 0\ndepart_s = 10\n\
                 capacity_kwh = 60\nsoc_start = 0.2\nsoc_target = 0.9\nmax_current_a = 16\n\
                 phases = 3\n{token}"
            )
        };
        let ok = Scenario::parse(&vehicle("token = \"04A1B2C3D4E5F6\"\n"), "t").unwrap();
        let v = ok.vehicles.last().unwrap();
        assert_eq!(v.token.as_deref(), Some("04A1B2C3D4E5F6"));
        for bad in ["", "with blank", "0123456789ABCDEF01234", "caf\u{e9}"] {
            let err = Scenario::parse(&vehicle(&format!("token = {bad:?}\n")), "t").unwrap_err();
            assert!(err.to_string().contains("token"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn parses_interpolates_and_expands_arrivals_deterministically() {
        let s = Scenario::parse(SMALL, "t").unwrap();
        assert_eq!(s.base_load.at(50.0), [7.0, 9.0, 11.0]);
        assert_eq!(s.base_load.at(-5.0), [2.0, 4.0, 6.0]);
        assert_eq!(s.base_load.at(500.0), [12.0, 14.0, 16.0]);
        let a = s.all_vehicles();
        assert_eq!(a, s.all_vehicles(), "seeded: same list every time");
        assert!(!a.is_empty() && a.len() <= 5);
        for w in a.windows(2) {
            assert!(
                w[1].arrive_s > w[0].depart_s,
                "visits to one charger overlap"
            );
        }
    }

    #[test]
    fn unknown_keys_and_bad_references_are_rejected() {
        let typo = SMALL
            .replace("noise_a", "x")
            .replace("seed = 7", "seed = 7\nsed = 1");
        assert!(matches!(
            Scenario::parse(&typo, "t"),
            Err(ScenarioError::Parse { .. })
        ));
        let bad = format!(
            "{SMALL}\n[[fault]]\nat_s = 1\nduration_s = 1\nkind = \"meter_silent\"\ntarget = \"cp-9\"\n"
        );
        assert!(matches!(
            Scenario::parse(&bad, "t"),
            Err(ScenarioError::Invalid { .. })
        ));
    }
}
