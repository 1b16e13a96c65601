//! One simulated charger: the setpoint, enable and watchdog registers a controller writes, the
//! model's own fallback when the controller goes quiet, and the current it offers the vehicle.

use crate::devices::model::{ChargeState, ChargerSpec, EnergyScope, ModelSpec, Transport};
use crate::devices::regmap::{Register, Table};

use super::bank::{encode_state, Bank, Exception};
use super::scenario::Gateway;

/// Why a charger is not following the controller's setpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Setpoint validity, heartbeat or comms timeout expired: the safe current applies.
    SafeCurrent,
    /// Comms timeout expired on a model without a safe current (ABB Terra AC): it stops.
    Stopped,
}

/// Safe current a simulated charger ships with, where the model has the register.
pub const FACTORY_SAFE_CURRENT_A: f64 = 6.0;

#[derive(Debug, Clone)]
pub struct SimCharger {
    pub id: String,
    pub model: &'static ModelSpec,
    pub spec: ChargerSpec,
    pub transport: Transport,
    pub gateway: Option<Gateway>,
    pub unit: u8,
    pub phases: u8,
    /// 0-based grid phase of each charger phase.
    pub phase_map: Vec<usize>,
    pub min_current_a: f64,
    pub max_current_a: f64,
    pub priority: u8,
    pub circuit: Option<String>,
    /// `plan_energy_wh` and `plan_depart`, for the written config.
    pub plan: (Option<u64>, Option<String>),
    /// `auth`, for the written config (None: left out, `free`).
    pub auth: Option<crate::tokens::AuthMode>,
    pub bank: Bank,
    /// The last setpoint the controller wrote (None: never written).
    pub setpoint_a: Option<f64>,
    pub enabled: bool,
    /// Once anything was written, the model's watchdogs run.
    armed: bool,
    last_setpoint_s: f64,
    last_heartbeat_s: f64,
    last_write_s: f64,
    pub fallback: Option<Fallback>,
    /// Energy register value (Wh): lifetime total or this session, per the model.
    pub energy_wh: f64,
    /// What the power reading shows of the power drawn (1 unless a fault says otherwise).
    pub power_gain: f64,
}

impl SimCharger {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        entry: &super::scenario::ChargerEntry,
        model: &'static ModelSpec,
        spec: ChargerSpec,
        unit: u8,
        lifetime_wh: f64,
    ) -> Self {
        let mut c = SimCharger {
            id: entry.id.clone(),
            model,
            spec,
            transport: entry.transport,
            gateway: entry.link,
            unit,
            phases: entry.phases,
            phase_map: entry
                .phase_map
                .iter()
                .map(|p| usize::from(p.saturating_sub(1)))
                .collect(),
            min_current_a: entry.min_current_a,
            max_current_a: entry.max_current_a,
            priority: entry.priority,
            circuit: entry.circuit.clone(),
            plan: (entry.plan_energy_wh, entry.plan_depart.clone()),
            auth: entry.auth,
            bank: Bank::default(),
            setpoint_a: None,
            enabled: true,
            armed: false,
            last_setpoint_s: 0.0,
            last_heartbeat_s: 0.0,
            last_write_s: 0.0,
            fallback: None,
            energy_wh: match spec.energy_scope {
                EnergyScope::Lifetime => lifetime_wh,
                EnergyScope::Session => 0.0,
            },
            power_gain: 1.0,
        };
        c.bank.set_number(&spec.setpoint, entry.max_current_a);
        if let Some(safe) = spec.safe_current {
            c.bank.set_number(&safe, FACTORY_SAFE_CURRENT_A);
        }
        if let Some(en) = spec.enable {
            c.bank.put(&en.reg, &[en.on]);
        }
        if let Some(hb) = spec.heartbeat {
            c.bank.put(&hb.reg, &[0]);
        }
        if let Some(ct) = spec.comms_timeout {
            c.bank.set_number(&ct.reg, f64::from(ct.default_s));
        }
        c.encode_token(None);
        c
    }

    /// The user's token in the model's id register while a vehicle that has one is
    /// connected, zeros otherwise (as a charger shows an empty id). The vehicle id, where the
    /// model has one, reads as zeros and its validity flag as "not valid".
    pub fn encode_token(&mut self, token: Option<&str>) {
        if let Some(reg) = self.spec.id_tag {
            match token {
                Some(t) => self.bank.set_text(&reg, t),
                None => self.bank.put(&reg, &vec![0; usize::from(reg.words())]),
            }
        }
        if let Some(e) = self.spec.ev_id {
            self.bank.put(&e.reg, &vec![0; usize::from(e.reg.words())]);
            if let Some((flag, value)) = e.valid_when {
                self.bank.put(&flag, &[u16::from(value == 0)]);
            }
        }
    }

    /// The current the charger offers the vehicle now (0 = paused), before the vehicle's own
    /// limits. `error` is a charger fault (contactor open).
    pub fn offered_a(&self, error: bool) -> f64 {
        if error || !self.enabled {
            return 0.0;
        }
        let wanted = match self.fallback {
            Some(Fallback::Stopped) => 0.0,
            Some(Fallback::SafeCurrent) => self
                .spec
                .safe_current
                .and_then(|r| self.bank.number(&r))
                .unwrap_or(FACTORY_SAFE_CURRENT_A),
            None => self.setpoint_a.unwrap_or(self.max_current_a),
        };
        let amps = wanted.clamp(0.0, self.max_current_a);
        if amps < self.spec.min_current_a.max(0.1) {
            0.0
        } else {
            amps
        }
    }

    /// Run the model's watchdogs at `now_s`.
    pub fn check_watchdogs(&mut self, now_s: f64) {
        if !self.armed {
            return;
        }
        let expired = |last: f64, limit: f64| now_s - last > limit;
        let validity = self
            .spec
            .setpoint_validity_s
            .is_some_and(|v| expired(self.last_setpoint_s, f64::from(v)));
        let heartbeat = self
            .spec
            .heartbeat
            .is_some_and(|hb| expired(self.last_heartbeat_s, f64::from(hb.period_s)));
        let comms = self.spec.comms_timeout.is_some_and(|ct| {
            let limit = self.bank.number(&ct.reg).unwrap_or(f64::from(ct.default_s));
            limit > 0.0 && expired(self.last_write_s, limit)
        });
        if comms && self.spec.safe_current.is_none() {
            self.fallback = Some(Fallback::Stopped);
        } else if validity || heartbeat || comms {
            self.fallback = Some(Fallback::SafeCurrent);
        }
    }

    fn is(reg: Option<Register>, table: Table, addr: u16, len: u16) -> Option<Register> {
        reg.filter(|r| {
            let (start, end) = (u32::from(r.addr), u32::from(r.addr) + u32::from(r.words()));
            r.table == table && u32::from(addr) < end && start < u32::from(addr) + u32::from(len)
        })
    }

    /// A controller write of `values` at `addr`. `ignore` (fault) accepts the write but does
    /// not act on it.
    pub fn write(
        &mut self,
        now_s: f64,
        table: Table,
        addr: u16,
        values: &[u16],
        ignore: bool,
    ) -> Result<(), Exception> {
        let len = values.len() as u16;
        let s = self.spec;
        let setpoint = Self::is(Some(s.setpoint), table, addr, len);
        let enable = Self::is(s.enable.map(|e| e.reg), table, addr, len);
        let heartbeat = Self::is(s.heartbeat.map(|h| h.reg), table, addr, len);
        let timeout = Self::is(s.comms_timeout.map(|c| c.reg), table, addr, len);
        let safe = Self::is(
            s.safe_current.filter(|r| r.write.is_some()),
            table,
            addr,
            len,
        );
        if [setpoint, enable, heartbeat, timeout, safe]
            .iter()
            .all(Option::is_none)
        {
            return Err(Exception::ILLEGAL_ADDRESS);
        }
        self.bank.write(table, addr, values);
        if ignore {
            // A charger that ignores its controller ignores its watchdogs too: it keeps
            // drawing what it drew, the worst case the controller has to notice.
            return Ok(());
        }
        self.armed = true;
        self.last_write_s = now_s;
        if let (Some(hb), Some(_)) = (s.heartbeat, heartbeat) {
            if self.bank.number(&hb.reg) == Some(f64::from(hb.value)) {
                self.last_heartbeat_s = now_s;
                self.fallback = None;
            }
        }
        if timeout.is_some() {
            self.fallback = None;
        }
        if let Some(reg) = setpoint {
            if let Some(v) = self.bank.number(&reg) {
                self.setpoint_a = Some(v);
                self.last_setpoint_s = now_s;
                self.fallback = None;
            }
        }
        if let (Some(en), Some(reg)) = (s.enable, enable) {
            let raw = self.bank.read(reg.table, reg.addr, 1).ok();
            self.enabled = raw.and_then(|w| w.first().copied()) != Some(en.off);
        }
        Ok(())
    }

    /// A plug-in starts a new session: session-scoped energy restarts at 0.
    pub fn plug_in(&mut self) {
        if self.spec.energy_scope == EnergyScope::Session {
            self.energy_wh = 0.0;
        }
    }

    /// Encode the charger's readings into its bank.
    pub fn encode(&mut self, voltage_v: f64, phase_a: [f64; 3], state: ChargeState, error: bool) {
        let r = self.model.readings;
        if let Some(reg) = self.spec.applied_current {
            let applied = self.offered_a(error);
            self.bank.set_number(&reg, applied);
        }
        for (i, reg) in r.voltage.iter().enumerate() {
            if let Some(reg) = reg {
                let v = if i < usize::from(self.phases) {
                    voltage_v
                } else {
                    0.0
                };
                self.bank.set_number(reg, v);
            }
        }
        for (reg, a) in r.current.iter().zip(phase_a) {
            if let Some(reg) = reg {
                self.bank.set_number(reg, a);
            }
        }
        if let Some(reg) = r.power {
            self.bank.set_number(
                &reg,
                phase_a.iter().sum::<f64>() * voltage_v * self.power_gain,
            );
        }
        if let Some(reg) = r.energy {
            self.bank.set_number(&reg, self.energy_wh);
        }
        for (reg, words) in encode_state(&self.spec.state, state) {
            self.bank.put(&reg, &words);
        }
    }
}
