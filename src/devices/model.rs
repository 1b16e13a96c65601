//! What a device model is: its link defaults and its register map, as plain data.

use super::regmap::Register;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Meter,
    Charger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Rtu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// Factory serial settings of an RTU device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialDefaults {
    pub baud: u32,
    pub parity: Parity,
    pub stop_bits: u8,
}

/// IEC 61851 control pilot state.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ChargeState {
    /// No vehicle.
    A,
    /// Vehicle connected, not charging.
    B,
    /// Charging.
    C,
    /// Charging, ventilation required.
    D,
    /// Error (short circuit, CP down).
    E,
    /// Fault (EVSE not available).
    F,
}

impl ChargeState {
    pub fn is_connected(self) -> bool {
        !matches!(self, ChargeState::A)
    }
    pub fn is_charging(self) -> bool {
        matches!(self, ChargeState::C | ChargeState::D)
    }
    pub fn is_fault(self) -> bool {
        matches!(self, ChargeState::E | ChargeState::F)
    }
    pub fn letter(self) -> char {
        match self {
            ChargeState::A => 'A',
            ChargeState::B => 'B',
            ChargeState::C => 'C',
            ChargeState::D => 'D',
            ChargeState::E => 'E',
            ChargeState::F => 'F',
        }
    }
}

/// Per-phase and total readings a meter or a charger's meter provides. Any may be absent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Readings {
    /// Phase voltages L1–L3 in V.
    pub voltage: [Option<Register>; 3],
    /// Phase currents L1–L3 in A.
    pub current: [Option<Register>; 3],
    /// Total active power in W (positive = import / charging).
    pub power: Option<Register>,
    /// Imported (delivered) energy in Wh.
    pub energy: Option<Register>,
}

/// How a charger reports its IEC 61851 state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StateSpec {
    /// An ASCII letter (or string starting with one: "B1", "C2").
    Ascii(Register),
    /// A numeric code, optionally `(raw >> shift) & mask`, looked up in a table. The first
    /// code listed for a state is the one a simulator reports.
    Codes {
        reg: Register,
        shift: u8,
        mask: u32,
        map: &'static [(u32, ChargeState)],
    },
    /// A cable register (connected when ≥ `connected_from`) and a charging register
    /// (charging when = `charging_value`), as Vestel/Webasto Unite report it.
    CableAndCharging {
        cable: Register,
        connected_from: u32,
        charging: Register,
        charging_value: u32,
    },
}

/// What a charger's energy register counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergyScope {
    /// A lifetime total that only ever rises (but may reset or roll over).
    Lifetime,
    /// Counts the current session only; restarts at 0 on each plug-in (ABB Terra AC).
    Session,
}

/// A register written with a fixed value at a fixed period to prove the controller lives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heartbeat {
    pub reg: Register,
    pub value: u16,
    /// Largest safe period between writes, in seconds.
    pub period_s: u32,
}

/// A comms-timeout register: the charger falls back when not written for this long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommsTimeout {
    pub reg: Register,
    /// The value evsite writes at start-up, in seconds.
    pub default_s: u32,
}

/// A release / enable output (coil or register) with the values for on and off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Enable {
    pub reg: Register,
    pub on: u16,
    pub off: u16,
}

/// The vehicle's own id (ISO 15118 EVCCID), valid only while `valid_when` (a register and
/// the value it must hold) says so, where the model has such a flag (Bender: 740 = 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvId {
    pub reg: Register,
    pub valid_when: Option<(Register, u16)>,
}

/// Everything a charger adds to a meter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChargerSpec {
    pub state: StateSpec,
    /// The current limit register, in A after scaling (writable).
    pub setpoint: Register,
    /// Setpoints below this pause the charger; evsite writes 0 to pause.
    pub min_current_a: f64,
    /// The resolution the control loop allocates this charger's current in: whole amps for
    /// most, 0.1 A where the register counts mA. Every multiple of it above the minimum must
    /// survive the setpoint register's encoding unchanged.
    pub setpoint_step_a: f64,
    /// The current limit the charger actually applies (read-only), where it reports one
    /// apart from the setpoint (Alfen: 1206).
    pub applied_current: Option<Register>,
    /// How long a written setpoint stays valid before the charger falls back on its own
    /// (Alfen: 60 s); evsite rewrites it well within.
    pub setpoint_validity_s: Option<u32>,
    pub enable: Option<Enable>,
    pub heartbeat: Option<Heartbeat>,
    pub comms_timeout: Option<CommsTimeout>,
    /// The current the charger falls back to on its own (readable, maybe writable).
    pub safe_current: Option<Register>,
    pub energy_scope: EnergyScope,
    /// The charger closes a connection idle for this long (Alfen: 60 s).
    pub idle_close_s: Option<u32>,
    /// What the charger does on its own when evsite stops talking to it, as far as known
    /// (for docs/devices.md).
    pub fallback: &'static str,
    /// The user's id the charger reports for the session (RFID card, OCPP idTag): an ASCII
    /// string register, read only while a vehicle is connected.
    pub id_tag: Option<Register>,
    /// The vehicle's id, where the charger reports one.
    pub ev_id: Option<EvId>,
}

/// A supported device model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    /// The name used in config (`model = "eastron-sdm630"`).
    pub name: &'static str,
    /// Vendor and product, for humans.
    pub title: &'static str,
    pub kind: DeviceKind,
    pub transports: &'static [Transport],
    pub default_unit: u8,
    pub default_port: u16,
    pub serial: Option<SerialDefaults>,
    /// Phases the device measures (1 or 3).
    pub phases: u8,
    pub readings: Readings,
    pub charger: Option<ChargerSpec>,
    /// The manufacturer's document numbers registers in hex; listings follow it.
    pub hex_addresses: bool,
    /// How sure the register map is, and from where.
    pub confidence: &'static str,
}
