//! One small trait per device capability, so the control loop asks only for what it needs
//! and a model lacking a capability answers [`DeviceError::Unsupported`].
//!
//! Phase values are `[Option<f64>; 3]` (None: the phase is absent or reports no value);
//! scalar readings are plain numbers, with [`DeviceError::NoValue`] for a "no value" pattern.

use std::future::Future;
use std::time::Duration;

use super::error::DeviceError;
use super::model::{ChargeState, EnergyScope};

/// Everything a device measures, read with as few requests as possible.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub voltage_v: [Option<f64>; 3],
    pub current_a: [Option<f64>; 3],
    pub power_w: Option<f64>,
    pub energy_wh: Option<f64>,
    pub state: Option<ChargeState>,
    /// The current limit the charger reports applying, where the model has such a register.
    pub applied_current_a: Option<f64>,
    /// The user's id (RFID card, OCPP idTag) the charger reports while a vehicle is
    /// connected, where the model has the register. Personal data.
    pub id_tag: Option<String>,
    /// The vehicle's id (ISO 15118 EVCCID), where the model has the register.
    pub ev_id: Option<String>,
}

pub trait ReadAll {
    fn read_all(&self) -> impl Future<Output = Result<Snapshot, DeviceError>> + Send;
}

pub trait PhaseCurrents {
    fn currents_a(&self) -> impl Future<Output = Result<[Option<f64>; 3], DeviceError>> + Send;
}

pub trait PhaseVoltages {
    fn voltages_v(&self) -> impl Future<Output = Result<[Option<f64>; 3], DeviceError>> + Send;
}

pub trait Power {
    /// Total active power in W (positive = import / charging).
    fn power_w(&self) -> impl Future<Output = Result<f64, DeviceError>> + Send;
}

pub trait EnergyRegister {
    /// Imported / delivered energy in Wh.
    fn energy_wh(&self) -> impl Future<Output = Result<f64, DeviceError>> + Send;
    /// Whether the register is a lifetime total or counts the session only.
    fn energy_scope(&self) -> EnergyScope;
}

pub trait ChargeStateReader {
    fn charge_state(&self) -> impl Future<Output = Result<ChargeState, DeviceError>> + Send;
}

pub trait CurrentLimit {
    /// Set the charging current limit. 0 pauses; amps between 0 and [`Self::min_current_a`]
    /// are refused with [`DeviceError::BelowMinimum`]. Integer registers are rounded down,
    /// never up, so the charger never draws more than allocated.
    fn set_current_limit(&self, amps: f64) -> impl Future<Output = Result<(), DeviceError>> + Send;
    fn min_current_a(&self) -> f64;
    /// How long a written limit stays in force before the charger falls back on its own.
    fn setpoint_validity(&self) -> Option<Duration>;
}

pub trait EnablePause {
    /// Release (true) or stop (false) charging through the model's enable output.
    fn set_enabled(&self, on: bool) -> impl Future<Output = Result<(), DeviceError>> + Send;
}

pub trait Heartbeat {
    /// Write the heartbeat once; the caller repeats it every [`Self::heartbeat_period`].
    fn heartbeat(&self) -> impl Future<Output = Result<(), DeviceError>> + Send;
    fn heartbeat_period(&self) -> Option<Duration>;
}

pub trait CommsTimeout {
    /// Configure the charger's comms timeout (at start-up): after this much silence it
    /// falls back to its safe current or stops.
    fn configure_comms_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), DeviceError>> + Send;
    /// The timeout evsite configures by default, if the model has the register.
    fn default_comms_timeout(&self) -> Option<Duration>;
}

pub trait SafeCurrent {
    /// The current the charger falls back to on its own, in A.
    fn safe_current_a(&self) -> impl Future<Output = Result<f64, DeviceError>> + Send;
    /// Set it, where the model allows (Alfen's is read-only).
    fn set_safe_current_a(&self, amps: f64)
        -> impl Future<Output = Result<(), DeviceError>> + Send;
}
