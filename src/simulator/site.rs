//! The whole simulated site stepped in time: base load, chargers, the vehicles visiting them,
//! the main meter that sees it all through each charger's phase map (so control is
//! closed-loop), injected faults, and the truth a run is scored against.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::devices::model::{ChargeState, DeviceKind, ModelSpec, Readings, Transport};
use crate::devices::regmap::Table;

use super::bank::{Bank, Exception};
use super::charger::SimCharger;
use super::scenario::{BaseLoad, FaultKind, FaultSpec, Gateway, Scenario, SiteSpec};
use super::vehicle::Vehicle;

mod truth;
pub use truth::{ChargerTruth, VehicleTruth};

#[cfg(test)]
#[path = "site/fault_tests.rs"]
mod fault_tests;

/// A site shared between the Modbus servers and the stepping task. Lock it only for short,
/// synchronous sections: never across an await.
pub type SharedSite = Arc<Mutex<SiteModel>>;

/// Index of a device in the site: [`METER`] or `1 + charger index`.
pub type DeviceId = usize;
pub const METER: DeviceId = 0;

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("{device}: unknown model {model:?}")]
    UnknownModel { device: String, model: String },
    #[error("{device}: model {model} is not a {expected}")]
    WrongKind {
        device: String,
        model: String,
        expected: &'static str,
    },
    #[error("{device}: model {model} has no {transport:?} interface")]
    Transport {
        device: String,
        model: String,
        transport: Transport,
    },
    #[error(
        "{device}: link = \"{}\" puts an RS-485 device behind a gateway; it needs \
         transport = \"rtu\"",
        gateway.name()
    )]
    GatewayNeedsRtu { device: String, gateway: Gateway },
    #[error("no free unit id left on the RTU line for {device}")]
    NoFreeUnit { device: String },
    #[error("the scenario's model files:\n{}", .0.join("\n"))]
    Models(Vec<String>),
}

/// How a device is reached, for the servers and the config writer.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    pub index: DeviceId,
    pub id: String,
    pub model: &'static ModelSpec,
    pub transport: Transport,
    /// Served behind a gateway on loopback instead of on a pseudo-terminal.
    pub gateway: Option<Gateway>,
    pub unit: u8,
}

struct Visit {
    charger: usize,
    arrive_s: f64,
    depart_s: f64,
    plugged: bool,
    vehicle: Vehicle,
    token: Option<String>,
}

struct Meter {
    info: DeviceInfo,
    bank: Bank,
    energy_wh: f64,
}

pub struct SiteModel {
    start: DateTime<Utc>,
    t_s: f64,
    site: SiteSpec,
    base_load: BaseLoad,
    rng: SmallRng,
    base_a: [f64; 3],
    grid_a: [f64; 3],
    meter: Meter,
    chargers: Vec<SimCharger>,
    visits: Vec<Visit>,
    faults: Vec<(FaultSpec, Option<DeviceId>, bool)>,
    circuits: Vec<(String, f64)>,
    /// `[demand]`, `[tariff]` and `[[schedule]]` of the scenario, for the written config.
    shaping: Shaping,
    /// The scenario's own model files, for the written config.
    models_dir: Option<std::path::PathBuf>,
}

/// The scenario's sections written into the site's config as they are.
#[derive(Debug, Clone, Default)]
pub struct Shaping {
    pub demand: Option<toml::Table>,
    pub tariff: Option<toml::Table>,
    pub schedules: Vec<toml::Table>,
    /// The token list (`[[token]]` entries), for the written token file.
    pub tokens: Vec<toml::Table>,
    /// The modelled cloud, for `cloud` chargers.
    pub cloud: Option<super::scenario::CloudSpec>,
}

fn lookup(
    resolve: &dyn Fn(&str) -> Option<&'static ModelSpec>,
    device: &str,
    model: &str,
    kind: DeviceKind,
    transport: Transport,
) -> Result<&'static ModelSpec, SiteError> {
    let spec = resolve(model).ok_or_else(|| SiteError::UnknownModel {
        device: device.into(),
        model: model.into(),
    })?;
    if spec.kind != kind {
        return Err(SiteError::WrongKind {
            device: device.into(),
            model: model.into(),
            expected: if kind == DeviceKind::Meter {
                "meter"
            } else {
                "charger"
            },
        });
    }
    if !spec.transports.contains(&transport) {
        return Err(SiteError::Transport {
            device: device.into(),
            model: model.into(),
            transport,
        });
    }
    Ok(spec)
}

/// Only an RS-485 device sits behind a gateway.
fn check_gateway(
    device: &str,
    transport: Transport,
    gateway: Option<Gateway>,
) -> Result<(), SiteError> {
    match gateway {
        Some(gateway) if transport != Transport::Rtu => Err(SiteError::GatewayNeedsRtu {
            device: device.into(),
            gateway,
        }),
        _ => Ok(()),
    }
}

/// RTU devices share one line, so their unit ids must differ: keep the wanted id when free,
/// else take the next free one.
fn assign_unit(used: &mut Vec<u8>, wanted: u8, device: &str) -> Result<u8, SiteError> {
    let unit = (0..247u16)
        .map(|i| ((u16::from(wanted.max(1)) - 1 + i) % 247 + 1) as u8)
        .find(|u| !used.contains(u))
        .ok_or_else(|| SiteError::NoFreeUnit {
            device: device.into(),
        })?;
    used.push(unit);
    Ok(unit)
}

impl SiteModel {
    /// Build the site of `scenario`, with device models looked up by `resolve` (the model
    /// registry in production; tests may pass their own).
    pub fn new(
        scenario: &Scenario,
        resolve: &dyn Fn(&str) -> Option<&'static ModelSpec>,
    ) -> Result<Self, SiteError> {
        let mut rng = SmallRng::seed_from_u64(scenario.seed);
        let mut rtu_units = Vec::new();
        let m = &scenario.meter;
        let meter_model = lookup(resolve, "meter", &m.model, DeviceKind::Meter, m.transport)?;
        check_gateway("meter", m.transport, m.link)?;
        let mut unit = m.unit.unwrap_or(meter_model.default_unit);
        if m.transport == Transport::Rtu {
            unit = assign_unit(&mut rtu_units, unit, "meter")?;
        }
        let meter = Meter {
            info: DeviceInfo {
                index: METER,
                id: "meter".into(),
                model: meter_model,
                transport: m.transport,
                gateway: m.link,
                unit,
            },
            bank: Bank::default(),
            energy_wh: rng.gen_range(5.0e6..5.0e7),
        };
        let mut chargers = Vec::new();
        for c in &scenario.chargers {
            let model = lookup(resolve, &c.id, &c.model, DeviceKind::Charger, c.transport)?;
            check_gateway(&c.id, c.transport, c.link)?;
            let spec = model.charger.ok_or_else(|| SiteError::WrongKind {
                device: c.id.clone(),
                model: c.model.clone(),
                expected: "charger",
            })?;
            let mut unit = c.unit.unwrap_or(model.default_unit);
            if c.transport == Transport::Rtu {
                unit = assign_unit(&mut rtu_units, unit, &c.id)?;
            }
            let lifetime = rng.gen_range(1.0e6..2.0e7);
            chargers.push(SimCharger::new(c, model, spec, unit, lifetime));
        }
        let visits = scenario
            .all_vehicles()
            .iter()
            .filter_map(|v| {
                let charger = chargers.iter().position(|c| c.id == v.charger)?;
                Some(Visit {
                    charger,
                    arrive_s: v.arrive_s,
                    depart_s: v.depart_s,
                    plugged: false,
                    vehicle: Vehicle::new(v),
                    token: v.token.clone(),
                })
            })
            .collect();
        let faults = scenario
            .faults
            .iter()
            .map(|f| {
                let dev = if f.target == "meter" {
                    Some(METER)
                } else {
                    chargers
                        .iter()
                        .position(|c| c.id == f.target)
                        .map(|i| i + 1)
                };
                (f.clone(), dev, false)
            })
            .collect();
        let mut model = SiteModel {
            start: scenario.start,
            t_s: 0.0,
            site: scenario.site.clone(),
            base_load: scenario.base_load.clone(),
            rng,
            base_a: [0.0; 3],
            grid_a: [0.0; 3],
            meter,
            chargers,
            visits,
            faults,
            circuits: scenario
                .circuits
                .iter()
                .map(|c| (c.id.clone(), c.limit_a))
                .collect(),
            shaping: Shaping {
                demand: scenario.demand.clone(),
                tariff: scenario.tariff.clone(),
                schedules: scenario.schedules.clone(),
                tokens: scenario.tokens.clone(),
                cloud: scenario.cloud.clone(),
            },
            models_dir: scenario.models_dir.clone(),
        };
        // Settle plug-ins and readings at t = 0 so the first read already makes sense.
        model.step(0.0);
        Ok(model)
    }

    /// Build the site with the supported models (the device registry) and the scenario's own
    /// model files (`models_dir`), if it names any.
    pub fn from_registry(scenario: &Scenario) -> Result<Self, SiteError> {
        let user = Self::user_models(scenario)?;
        Self::new(scenario, &|name| user.find(name))
    }

    /// The models of the scenario's `models_dir` (none when it names none); their warnings
    /// are logged.
    pub fn user_models(scenario: &Scenario) -> Result<crate::devices::file::UserModels, SiteError> {
        let Some(dir) = &scenario.models_dir else {
            return Ok(Default::default());
        };
        let user = crate::devices::file::load_path(dir).map_err(SiteError::Models)?;
        for w in &user.warnings {
            tracing::warn!("{w}");
        }
        Ok(user)
    }

    /// The scenario's own model files, if it names any.
    pub fn models_dir(&self) -> Option<&std::path::Path> {
        self.models_dir.as_deref()
    }

    pub fn into_shared(self) -> SharedSite {
        Arc::new(Mutex::new(self))
    }

    /// Seconds since the scenario started.
    pub fn time_s(&self) -> f64 {
        self.t_s
    }

    /// The wall-clock time the simulation is at.
    pub fn wall_time(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::milliseconds((self.t_s * 1000.0).round() as i64)
    }

    pub fn site(&self) -> &SiteSpec {
        &self.site
    }

    pub fn shaping(&self) -> &Shaping {
        &self.shaping
    }

    pub fn circuits(&self) -> &[(String, f64)] {
        &self.circuits
    }

    pub fn chargers(&self) -> &[SimCharger] {
        &self.chargers
    }

    pub fn devices(&self) -> Vec<DeviceInfo> {
        let mut out = vec![self.meter.info.clone()];
        out.extend(self.chargers.iter().enumerate().map(|(i, c)| DeviceInfo {
            index: i + 1,
            id: c.id.clone(),
            model: c.model,
            transport: c.transport,
            gateway: c.gateway,
            unit: c.unit,
        }));
        out
    }

    /// Whether a fault of `kind` is acting on `device` now.
    pub fn fault_active(&self, device: DeviceId, kind: FaultKind) -> bool {
        self.faults
            .iter()
            .any(|(f, d, _)| f.kind == kind && *d == Some(device) && f.active_at(self.t_s))
    }

    /// How much of the energy delivered through `device` its register counts now.
    fn register_gain(&self, device: DeviceId) -> f64 {
        if self.fault_active(device, FaultKind::FrozenRegister) {
            return 0.0;
        }
        self.faults
            .iter()
            .find(|(f, d, _)| {
                f.kind == FaultKind::MeterDrift && *d == Some(device) && f.active_at(self.t_s)
            })
            .map_or(1.0, |(f, _, _)| {
                f.amount.unwrap_or(FaultSpec::DEFAULT_DRIFT)
            })
    }

    /// What the power reading of `device` shows of the power drawn now.
    fn power_gain(&self, device: DeviceId) -> f64 {
        self.faults
            .iter()
            .find(|(f, d, _)| {
                f.kind == FaultKind::PowerHigh && *d == Some(device) && f.active_at(self.t_s)
            })
            .map_or(1.0, |(f, _, _)| {
                f.amount.unwrap_or(FaultSpec::DEFAULT_POWER_GAIN)
            })
    }

    /// What the site meter's current and power readings show of what flows now.
    fn meter_scale(&self) -> f64 {
        self.faults
            .iter()
            .find(|(f, d, _)| {
                f.kind == FaultKind::SiteMeterScale && *d == Some(METER) && f.active_at(self.t_s)
            })
            .map_or(1.0, |(f, _, _)| {
                f.amount.unwrap_or(FaultSpec::DEFAULT_METER_SCALE)
            })
    }

    fn charger_state(&self, ci: usize) -> ChargeState {
        if self.fault_active(ci + 1, FaultKind::ChargerError) {
            return ChargeState::F;
        }
        match self.visits.iter().find(|v| v.charger == ci && v.plugged) {
            None => ChargeState::A,
            Some(_) if self.fault_active(ci + 1, FaultKind::StuckSession) => ChargeState::C,
            Some(v) if v.vehicle.current_a() > 0.0 => ChargeState::C,
            Some(_) => ChargeState::B,
        }
    }

    /// Tell each plugged-in vehicle what its charger offers now.
    fn sync_offers(&mut self) {
        let now = self.t_s;
        for ci in 0..self.chargers.len() {
            let error = self.fault_active(ci + 1, FaultKind::ChargerError);
            let mut offered = self.chargers[ci].offered_a(error);
            if self.fault_active(ci + 1, FaultKind::StuckSession)
                || self.fault_active(ci + 1, FaultKind::BayBlocked)
            {
                // The charger says it offers; the car never sees it (or is full).
                offered = 0.0;
            }
            if !error && self.fault_active(ci + 1, FaultKind::UnauthorizedDraw) {
                // Free of the controller: the charger offers all it can.
                offered = self.chargers[ci].max_current_a;
            }
            for v in self
                .visits
                .iter_mut()
                .filter(|v| v.charger == ci && v.plugged)
            {
                if error {
                    v.vehicle.interrupt();
                } else {
                    v.vehicle.offer(now, offered);
                }
            }
        }
    }

    /// Advance the site by `dt_s` seconds.
    pub fn step(&mut self, dt_s: f64) {
        let t0 = self.t_s;
        let dt = dt_s.max(0.0);
        for (f, dev, done) in self.faults.iter_mut() {
            if f.kind == FaultKind::EnergyReset && !*done && f.active_at(t0) {
                *done = true;
                match *dev {
                    Some(METER) => self.meter.energy_wh = 0.0,
                    Some(d) => self.chargers[d - 1].energy_wh = 0.0,
                    None => {}
                }
            }
            if f.kind == FaultKind::RegisterJump && !*done && f.active_at(t0) {
                *done = true;
                let jump = f.amount.unwrap_or(FaultSpec::DEFAULT_JUMP_WH);
                match *dev {
                    Some(METER) => self.meter.energy_wh += jump,
                    Some(d) => self.chargers[d - 1].energy_wh += jump,
                    None => {}
                }
            }
        }
        for v in self.visits.iter_mut() {
            let here = t0 >= v.arrive_s && t0 < v.depart_s;
            if here && !v.plugged {
                v.plugged = true;
                self.chargers[v.charger].plug_in();
            } else if !here && v.plugged {
                v.plugged = false;
                v.vehicle.interrupt();
            }
        }
        for c in self.chargers.iter_mut() {
            c.check_watchdogs(t0);
        }
        self.sync_offers();
        let voltage = self.site.voltage_v;
        let mut charger_wh = 0.0;
        let gains: Vec<f64> = (0..self.chargers.len())
            .map(|ci| self.register_gain(ci + 1))
            .collect();
        for v in self.visits.iter_mut().filter(|v| v.plugged) {
            let c = &mut self.chargers[v.charger];
            let wh = v.vehicle.step(t0, dt, voltage, c.phases);
            c.energy_wh += wh * gains[v.charger];
            charger_wh += wh;
        }
        self.t_s = t0 + dt;
        // Faults and watchdogs that start within this step act from its end on (a charger
        // error opens the contactor at once), not a whole step later.
        for c in self.chargers.iter_mut() {
            c.check_watchdogs(self.t_s);
        }
        self.sync_offers();
        let noise = self.base_load.noise_a;
        let mut base = self.base_load.at(self.t_s);
        if noise > 0.0 {
            for b in base.iter_mut() {
                *b += self.rng.gen_range(-noise..=noise);
            }
        }
        let phases = usize::from(self.site.phases);
        for (i, b) in base.iter_mut().enumerate() {
            *b = if i < phases { b.max(0.0) } else { 0.0 };
        }
        let base_wh = base.iter().sum::<f64>() * voltage * dt / 3600.0;
        self.meter.energy_wh += base_wh + charger_wh;
        self.base_a = base;
        self.grid_a = base;
        for ci in 0..self.chargers.len() {
            let g = self.charger_grid_a(ci);
            for (p, a) in self.grid_a.iter_mut().zip(g) {
                *p += a;
            }
        }
        self.encode();
    }

    /// Current per charger phase drawn through charger `ci` now.
    fn charger_phase_a(&self, ci: usize) -> [f64; 3] {
        let c = &self.chargers[ci];
        self.visits
            .iter()
            .filter(|v| v.charger == ci && v.plugged)
            .map(|v| v.vehicle.phase_currents_a(c.phases))
            .fold([0.0; 3], |acc, x| {
                [acc[0] + x[0], acc[1] + x[1], acc[2] + x[2]]
            })
    }

    /// The same, per grid phase through the charger's phase map.
    fn charger_grid_a(&self, ci: usize) -> [f64; 3] {
        let mut grid = [0.0; 3];
        let local = self.charger_phase_a(ci);
        let phases = usize::from(self.site.phases);
        let rotate = phases == 3 && self.fault_active(ci + 1, FaultKind::SwappedPhase);
        for (i, g) in self.chargers[ci].phase_map.iter().enumerate() {
            let g = if rotate { (g + 1) % 3 } else { *g };
            if let Some(slot) = grid.get_mut(g) {
                *slot += local[i];
            }
        }
        grid
    }

    fn encode(&mut self) {
        let v = self.site.voltage_v;
        let phases = usize::from(self.site.phases);
        let scale = self.meter_scale();
        let grid = self.grid_a.map(|a| a * scale);
        encode_meter(&mut self.meter, v, phases, grid);
        for ci in 0..self.chargers.len() {
            let state = self.charger_state(ci);
            let local = self.charger_phase_a(ci);
            let error = self.fault_active(ci + 1, FaultKind::ChargerError);
            self.chargers[ci].power_gain = self.power_gain(ci + 1);
            self.chargers[ci].encode(v, local, state, error);
            let token = self.presented_token(ci);
            self.chargers[ci].encode_token(token.as_deref());
        }
    }

    /// The id charger `ci` shows now: its plugged-in car's token, unless a fault says
    /// otherwise.
    fn presented_token(&self, ci: usize) -> Option<String> {
        let device = ci + 1;
        let plugged = |c: usize| self.visits.iter().find(|v| v.charger == c && v.plugged);
        if self.fault_active(device, FaultKind::UnknownToken) {
            // A refused card, shown again every minute from the fault's onset.
            let onset = self
                .faults
                .iter()
                .filter(|(f, d, _)| {
                    f.kind == FaultKind::UnknownToken && *d == Some(device) && f.active_at(self.t_s)
                })
                .map(|(f, _, _)| f.at_s)
                .fold(f64::INFINITY, f64::min);
            let phase = (self.t_s - onset).rem_euclid(FaultSpec::UNKNOWN_TOKEN_PERIOD_S);
            return (phase < FaultSpec::UNKNOWN_TOKEN_SHOWN_S)
                .then(|| FaultSpec::UNKNOWN_TOKEN.to_string());
        }
        if self.fault_active(device, FaultKind::UnauthorizedDraw) {
            return None;
        }
        let own = plugged(ci)?;
        if self.fault_active(device, FaultKind::TokenInUseTwice) {
            if let Some(t) = (0..self.chargers.len())
                .filter(|&c| c != ci)
                .filter_map(|c| plugged(c).and_then(|v| v.token.clone()))
                .next()
            {
                return Some(t);
            }
        }
        own.token.clone()
    }

    /// Per-phase current at the grid connection (what the main meter measures).
    pub fn grid_current_a(&self) -> [f64; 3] {
        self.grid_a
    }

    /// Per-phase base load (everything but the chargers).
    pub fn base_load_a(&self) -> [f64; 3] {
        self.base_a
    }

    /// Whether a plugged-in car slower than IEC 61851-1 allows is still drawing above a lower
    /// offer it has not followed yet: overload now is the car's, not the controller's.
    pub fn slow_car_lagging(&self) -> bool {
        self.visits
            .iter()
            .any(|v| v.plugged && v.vehicle.lagging_decrease())
    }

    /// Perfect knowledge for an ideal controller: per charger, the plugged-in vehicle's
    /// acceptance (A per phase) and the number of charger phases it draws on.
    pub fn vehicle_demand(&self) -> Vec<Option<(f64, u8)>> {
        (0..self.chargers.len())
            .map(|ci| {
                self.visits
                    .iter()
                    .find(|v| v.charger == ci && v.plugged)
                    .map(|v| {
                        let phases = self.chargers[ci].phases;
                        (v.vehicle.acceptance_a(), v.vehicle.active_phases(phases))
                    })
            })
            .collect()
    }

    /// The token of the car plugged in at charger `ci`, if it carries one.
    pub fn plugged_token(&self, ci: usize) -> Option<&str> {
        self.visits
            .iter()
            .find(|v| v.charger == ci && v.plugged)
            .and_then(|v| v.token.as_deref())
    }

    /// Set a charger's offer directly, bypassing Modbus and the charger's watchdogs: how the
    /// ideal controller behind the scorecard's `utilization` acts.
    pub fn set_offer_direct(&mut self, charger: usize, amps: f64) {
        if let Some(c) = self.chargers.get_mut(charger) {
            c.setpoint_a = Some(amps);
            c.enabled = true;
        }
        self.sync_offers();
    }

    /// A master reads `count` registers (or coils) of `device`.
    pub fn read(
        &mut self,
        device: DeviceId,
        table: Table,
        addr: u16,
        count: u16,
    ) -> Result<Vec<u16>, Exception> {
        let bank = if device == METER {
            &self.meter.bank
        } else {
            &self
                .chargers
                .get(device - 1)
                .ok_or(Exception::ILLEGAL_ADDRESS)?
                .bank
        };
        bank.read(table, addr, count)
    }

    /// A master writes `values` at `addr` of `device` (coils as 0/1).
    pub fn write(
        &mut self,
        device: DeviceId,
        table: Table,
        addr: u16,
        values: &[u16],
    ) -> Result<(), Exception> {
        if device == METER {
            return Err(Exception::ILLEGAL_ADDRESS);
        }
        let ignore = self.fault_active(device, FaultKind::IgnoreSetpoints)
            || self.fault_active(device, FaultKind::DrawWhileDisabled)
            || self.fault_active(device, FaultKind::UnauthorizedDraw);
        let now = self.t_s;
        let charger = self
            .chargers
            .get_mut(device - 1)
            .ok_or(Exception::ILLEGAL_ADDRESS)?;
        charger.write(now, table, addr, values, ignore)?;
        self.sync_offers();
        Ok(())
    }
}

fn encode_meter(meter: &mut Meter, voltage_v: f64, phases: usize, grid: [f64; 3]) {
    let Readings {
        voltage,
        current,
        power,
        energy,
    } = meter.info.model.readings;
    for (i, reg) in voltage.iter().enumerate() {
        if let Some(reg) = reg {
            let v = if i < phases { voltage_v } else { 0.0 };
            meter.bank.set_number(reg, v);
        }
    }
    for (reg, a) in current.iter().zip(grid) {
        if let Some(reg) = reg {
            meter.bank.set_number(reg, a);
        }
    }
    if let Some(reg) = power {
        meter
            .bank
            .set_number(&reg, grid.iter().sum::<f64>() * voltage_v);
    }
    if let Some(reg) = energy {
        meter.bank.set_number(&reg, meter.energy_wh);
    }
}
