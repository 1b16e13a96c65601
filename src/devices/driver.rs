//! The one generic driver: a [`ModbusDevice`] implements every capability trait from its
//! model's register map, over any [`RegisterIo`] link.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::codec::{decode_id, decode_number, IdText};
use super::error::DeviceError;
use super::model::{ChargerSpec, EnergyScope, ModelSpec};
use super::plan::{plan_reads, plan_registers};
use super::regmap::{DataType, NoValue, Register};
use super::state::{decode_state, state_registers};
use super::traits::{
    ChargeStateReader, CommsTimeout, CurrentLimit, EnablePause, EnergyRegister, Heartbeat,
    PhaseCurrents, PhaseVoltages, Power, ReadAll, SafeCurrent, Snapshot,
};
use super::write::encode_write;
use crate::devices::codec::CodecError;
use crate::modbus::{ModbusError, RegisterIo, Request};

/// A device of a known model behind a register link.
#[derive(Debug)]
pub struct ModbusDevice<L: RegisterIo> {
    spec: &'static ModelSpec,
    io: L,
    /// The coalesced reads of `read_all`, computed once.
    plan: Vec<Request>,
    /// The reads of the id registers, apart from `plan`: an id is optional information, and
    /// a charger that refuses it (older firmware) must not fail the readings.
    id_plan: Vec<Request>,
    /// Id registers that held bytes no id has (control characters, non-ASCII).
    bad_ids: AtomicU64,
    /// Whether such an id was logged already (once per device, not every cycle).
    bad_id_logged: AtomicBool,
    /// The charger answered "illegal data address" for its id registers (firmware without
    /// them): they are not asked for again, which would cost a round trip every cycle.
    ids_absent: AtomicBool,
}

/// Registers read in blocks, and the words each block returned.
struct Fetched {
    blocks: Vec<Request>,
    data: Vec<Vec<u16>>,
}

impl Fetched {
    /// The words of `reg`; a block answered short is a length error, never a panic.
    fn words(&self, reg: &Register) -> Result<&[u16], DeviceError> {
        self.blocks
            .iter()
            .zip(&self.data)
            .find_map(|(b, d)| b.slice(reg, d))
            .ok_or_else(|| {
                DeviceError::Codec(CodecError::Length {
                    addr: reg.addr,
                    expected: reg.words(),
                    got: 0,
                })
            })
    }

    fn number(&self, reg: &Register) -> Result<Option<f64>, DeviceError> {
        Ok(decode_number(reg, self.words(reg)?)?)
    }

    fn phases(&self, regs: &[Option<Register>; 3]) -> Result<[Option<f64>; 3], DeviceError> {
        let mut out = [None; 3];
        for (o, r) in out.iter_mut().zip(regs) {
            if let Some(r) = r {
                *o = self.number(r)?;
            }
        }
        Ok(out)
    }
}

/// Round `amps` down to the register's step for integer registers (floats pass through), so
/// a limit is never rounded up past what was allocated.
fn floor_to_step(reg: &Register, amps: f64) -> f64 {
    match reg.dtype {
        DataType::F32 | DataType::F64 => amps,
        // The epsilon keeps exact multiples (6.0 / 0.001) from falling a step short.
        _ => ((amps / reg.scale) + 1e-9).floor() * reg.scale,
    }
}

impl<L: RegisterIo> ModbusDevice<L> {
    pub fn new(spec: &'static ModelSpec, io: L) -> Self {
        ModbusDevice {
            spec,
            io,
            plan: plan_reads(spec),
            id_plan: plan_registers(&id_registers(spec)),
            bad_ids: AtomicU64::new(0),
            bad_id_logged: AtomicBool::new(false),
            ids_absent: AtomicBool::new(false),
        }
    }

    /// How many id reads held bytes no id has (each such read reports no id).
    pub fn bad_ids(&self) -> u64 {
        self.bad_ids.load(Ordering::Relaxed)
    }

    /// The ids the charger reports (user, vehicle). A read that fails (an exception from
    /// firmware without the registers, a timeout) is no id, never an error: the readings
    /// already succeeded and the charger is online.
    async fn read_ids(&self) -> (Option<String>, Option<String>) {
        let Some(c) = &self.spec.charger else {
            return (None, None);
        };
        if self.id_plan.is_empty() || self.ids_absent.load(Ordering::Relaxed) {
            return (None, None);
        }
        let f = match self.fetch(self.id_plan.clone()).await {
            Ok(f) => f,
            Err(DeviceError::Modbus(ModbusError::Exception { code: 0x02 })) => {
                self.ids_absent.store(true, Ordering::Relaxed);
                tracing::warn!(
                    model = self.spec.name,
                    "the charger has no id registers (older firmware?): no user id is read \
                     from it until evsite restarts"
                );
                return (None, None);
            }
            Err(_) => return (None, None),
        };
        let id_tag = c.id_tag.and_then(|r| self.id_text(&f, &r));
        let ev_id = c.ev_id.and_then(|e| {
            if let Some((flag, value)) = e.valid_when {
                let words = f.words(&flag).ok()?;
                if words.first() != Some(&value) {
                    return None;
                }
            }
            self.id_text(&f, &e.reg)
        });
        (id_tag, ev_id)
    }

    fn id_text(&self, f: &Fetched, reg: &Register) -> Option<String> {
        match decode_id(f.words(reg).ok()?) {
            IdText::None => None,
            IdText::Id(s) => Some(s),
            IdText::Unprintable => {
                self.bad_ids.fetch_add(1, Ordering::Relaxed);
                if !self.bad_id_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        model = self.spec.name,
                        addr = reg.addr,
                        "an id register holds bytes no id has; reporting no id (logged once)"
                    );
                }
                None
            }
        }
    }

    pub fn spec(&self) -> &'static ModelSpec {
        self.spec
    }

    pub fn io(&self) -> &L {
        &self.io
    }

    /// The reads `read_all` issues.
    pub fn plan(&self) -> &[Request] {
        &self.plan
    }

    /// The reads `read_all` adds while a vehicle is connected, for the ids.
    pub fn id_plan(&self) -> &[Request] {
        &self.id_plan
    }

    fn charger(&self, what: &'static str) -> Result<&'static ChargerSpec, DeviceError> {
        self.spec
            .charger
            .as_ref()
            .ok_or(DeviceError::Unsupported(what))
    }

    async fn fetch(&self, blocks: Vec<Request>) -> Result<Fetched, DeviceError> {
        let mut data = Vec::with_capacity(blocks.len());
        for b in &blocks {
            data.push(self.io.call(b.clone()).await?);
        }
        Ok(Fetched { blocks, data })
    }

    /// Read a few registers, coalesced the same way as `read_all`.
    async fn fetch_regs(&self, regs: &[Register]) -> Result<Fetched, DeviceError> {
        self.fetch(plan_registers(regs)).await
    }

    async fn read_one(&self, reg: &Register) -> Result<Option<f64>, DeviceError> {
        self.fetch_regs(std::slice::from_ref(reg))
            .await?
            .number(reg)
    }

    async fn read_phases(
        &self,
        regs: &[Option<Register>; 3],
        what: &'static str,
    ) -> Result<[Option<f64>; 3], DeviceError> {
        let present: Vec<Register> = regs.iter().flatten().copied().collect();
        if present.is_empty() {
            return Err(DeviceError::Unsupported(what));
        }
        self.fetch_regs(&present).await?.phases(regs)
    }

    async fn write_value(&self, reg: &Register, value: f64) -> Result<(), DeviceError> {
        self.io.call(encode_write(reg, value)?).await?;
        Ok(())
    }

    fn assemble(&self, f: &Fetched) -> Result<Snapshot, DeviceError> {
        let r = &self.spec.readings;
        let opt = |reg: &Option<Register>| -> Result<Option<f64>, DeviceError> {
            match reg {
                Some(reg) => f.number(reg),
                None => Ok(None),
            }
        };
        let (state, applied) = match &self.spec.charger {
            Some(c) => {
                let regs = state_registers(&c.state);
                let words = regs
                    .iter()
                    .map(|r| f.words(r))
                    .collect::<Result<Vec<_>, _>>()?;
                (
                    Some(decode_state(&c.state, &words)?),
                    opt(&c.applied_current)?,
                )
            }
            None => (None, None),
        };
        Ok(Snapshot {
            voltage_v: f.phases(&r.voltage)?,
            current_a: f.phases(&r.current)?,
            power_w: opt(&r.power)?,
            energy_wh: opt(&r.energy.map(as_counter))?,
            state,
            applied_current_a: applied,
            id_tag: None,
            ev_id: None,
        })
    }
}

/// The id registers of a model (user, vehicle and the vehicle id's validity flag), read
/// apart from the readings.
pub fn id_registers(spec: &ModelSpec) -> Vec<Register> {
    let Some(c) = &spec.charger else {
        return Vec::new();
    };
    let mut regs: Vec<Register> = c.id_tag.into_iter().collect();
    if let Some(e) = c.ev_id {
        regs.push(e.reg);
        regs.extend(e.valid_when.map(|(flag, _)| flag));
    }
    regs
}

/// An energy counter whose words are all ones has no value, whether or not its model says
/// so: it is how devices (and gateways standing in for a silent device) fill a register they
/// cannot answer, while a real counter passes that value for one count at most before it
/// rolls over. Taken as a reading, it bills the register's whole range.
fn as_counter(reg: Register) -> Register {
    match (reg.no_value, reg.dtype) {
        (
            NoValue::None,
            DataType::U16
            | DataType::U32
            | DataType::U64
            | DataType::I16
            | DataType::I32
            | DataType::I64,
        ) => Register {
            no_value: NoValue::AllOnes,
            ..reg
        },
        _ => reg,
    }
}

impl<L: RegisterIo> ReadAll for ModbusDevice<L> {
    /// One request per planned block; an unknown charge state is an error (the charger is in
    /// a condition the model does not describe), a "no value" pattern is `None`.
    async fn read_all(&self) -> Result<Snapshot, DeviceError> {
        let fetched = self.fetch(self.plan.clone()).await?;
        let mut snap = self.assemble(&fetched)?;
        // Ids only while a vehicle is connected: no round trip for an empty bay, and an id
        // left in the registers after unplugging is not shown.
        if snap.state.is_some_and(|s| s.is_connected()) {
            (snap.id_tag, snap.ev_id) = self.read_ids().await;
        }
        Ok(snap)
    }
}

impl<L: RegisterIo> PhaseCurrents for ModbusDevice<L> {
    async fn currents_a(&self) -> Result<[Option<f64>; 3], DeviceError> {
        self.read_phases(&self.spec.readings.current, "phase currents")
            .await
    }
}

impl<L: RegisterIo> PhaseVoltages for ModbusDevice<L> {
    async fn voltages_v(&self) -> Result<[Option<f64>; 3], DeviceError> {
        self.read_phases(&self.spec.readings.voltage, "phase voltages")
            .await
    }
}

impl<L: RegisterIo> Power for ModbusDevice<L> {
    async fn power_w(&self) -> Result<f64, DeviceError> {
        let reg = self
            .spec
            .readings
            .power
            .ok_or(DeviceError::Unsupported("power"))?;
        self.read_one(&reg)
            .await?
            .ok_or(DeviceError::NoValue { what: "power" })
    }
}

impl<L: RegisterIo> EnergyRegister for ModbusDevice<L> {
    async fn energy_wh(&self) -> Result<f64, DeviceError> {
        let reg = self
            .spec
            .readings
            .energy
            .map(as_counter)
            .ok_or(DeviceError::Unsupported("energy"))?;
        self.read_one(&reg)
            .await?
            .ok_or(DeviceError::NoValue { what: "energy" })
    }

    /// Meters count a lifetime total.
    fn energy_scope(&self) -> EnergyScope {
        self.spec
            .charger
            .map_or(EnergyScope::Lifetime, |c| c.energy_scope)
    }
}

impl<L: RegisterIo> ChargeStateReader for ModbusDevice<L> {
    async fn charge_state(&self) -> Result<super::model::ChargeState, DeviceError> {
        let c = self.charger("charge state")?;
        let regs = state_registers(&c.state);
        let f = self.fetch_regs(&regs).await?;
        let words = regs
            .iter()
            .map(|r| f.words(r))
            .collect::<Result<Vec<_>, _>>()?;
        decode_state(&c.state, &words)
    }
}

impl<L: RegisterIo> CurrentLimit for ModbusDevice<L> {
    async fn set_current_limit(&self, amps: f64) -> Result<(), DeviceError> {
        let c = self.charger("current limit")?;
        if amps == 0.0 {
            // Models with a release output pause through it: their setpoint register may
            // refuse 0 (Phoenix EV-ETH takes 6–80 A only).
            return match c.enable {
                Some(en) => self.write_value(&en.reg, f64::from(en.off)).await,
                None => self.write_value(&c.setpoint, 0.0).await,
            };
        }
        if !amps.is_finite() || amps < c.min_current_a {
            return Err(DeviceError::BelowMinimum {
                amps,
                min_a: c.min_current_a,
            });
        }
        self.write_value(&c.setpoint, floor_to_step(&c.setpoint, amps))
            .await?;
        // Resuming after a pause: the release is rewritten with every limit so a charger
        // that rebooted (and lost it) is released again within one cycle.
        if let Some(en) = c.enable {
            self.write_value(&en.reg, f64::from(en.on)).await?;
        }
        Ok(())
    }

    fn min_current_a(&self) -> f64 {
        self.spec.charger.map_or(0.0, |c| c.min_current_a)
    }

    fn setpoint_validity(&self) -> Option<Duration> {
        self.spec
            .charger
            .and_then(|c| c.setpoint_validity_s)
            .map(|s| Duration::from_secs(u64::from(s)))
    }
}

impl<L: RegisterIo> EnablePause for ModbusDevice<L> {
    async fn set_enabled(&self, on: bool) -> Result<(), DeviceError> {
        let en = self
            .charger("enable")?
            .enable
            .ok_or(DeviceError::Unsupported("enable"))?;
        let raw = if on { en.on } else { en.off };
        self.write_value(&en.reg, f64::from(raw)).await
    }
}

impl<L: RegisterIo> Heartbeat for ModbusDevice<L> {
    async fn heartbeat(&self) -> Result<(), DeviceError> {
        let hb = self
            .charger("heartbeat")?
            .heartbeat
            .ok_or(DeviceError::Unsupported("heartbeat"))?;
        self.write_value(&hb.reg, f64::from(hb.value)).await
    }

    fn heartbeat_period(&self) -> Option<Duration> {
        self.spec
            .charger
            .and_then(|c| c.heartbeat)
            .map(|h| Duration::from_secs(u64::from(h.period_s)))
    }
}

impl<L: RegisterIo> CommsTimeout for ModbusDevice<L> {
    async fn configure_comms_timeout(&self, timeout: Duration) -> Result<(), DeviceError> {
        let ct = self
            .charger("comms timeout")?
            .comms_timeout
            .ok_or(DeviceError::Unsupported("comms timeout"))?;
        // Whole seconds, at least one: a zero timeout would mean "off" on some chargers.
        let secs = timeout.as_secs().max(1);
        self.write_value(&ct.reg, secs as f64).await
    }

    fn default_comms_timeout(&self) -> Option<Duration> {
        self.spec
            .charger
            .and_then(|c| c.comms_timeout)
            .map(|t| Duration::from_secs(u64::from(t.default_s)))
    }
}

impl<L: RegisterIo> SafeCurrent for ModbusDevice<L> {
    async fn safe_current_a(&self) -> Result<f64, DeviceError> {
        let reg = self
            .charger("safe current")?
            .safe_current
            .ok_or(DeviceError::Unsupported("safe current"))?;
        self.read_one(&reg).await?.ok_or(DeviceError::NoValue {
            what: "safe current",
        })
    }

    async fn set_safe_current_a(&self, amps: f64) -> Result<(), DeviceError> {
        let reg = self
            .charger("safe current")?
            .safe_current
            .ok_or(DeviceError::Unsupported("safe current"))?;
        self.write_value(&reg, floor_to_step(&reg, amps)).await
    }
}

#[cfg(test)]
mod tests;
