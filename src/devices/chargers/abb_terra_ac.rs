//! ABB Terra AC (firmware ≥ 1.6.5): RTU or TCP, unit 1, FC3 reads of big-endian u32 values,
//! FC16 for the u32 setpoint in mA. The energy register counts this session only. Register
//! 0x4105 (start/stop) is deliberately absent: pausing is done with a setpoint below 6 A.

use crate::devices::model::{
    ChargeState, ChargerSpec, CommsTimeout, DeviceKind, EnergyScope, ModelSpec, Parity, Readings,
    SerialDefaults, StateSpec, Transport,
};
use crate::devices::regmap::{DataType, Register, WriteFn};

const fn u32_h(addr: u16, scale: f64) -> Register {
    Register::holding(addr, DataType::U32).scale(scale)
}

/// Comms timeout written at start-up: on expiry the charger stops charging.
pub const COMMS_TIMEOUT_S: u32 = 30;

pub static SPEC: ModelSpec = ModelSpec {
    name: "abb-terra-ac",
    title: "ABB Terra AC (fw ≥ 1.6.5)",
    kind: DeviceKind::Charger,
    transports: &[Transport::Tcp, Transport::Rtu],
    default_unit: 1,
    default_port: 502,
    // devices.md gives no serial settings; 9600 8E1 is the evident factory setting (the
    // installer app sets them), to be confirmed on a unit.
    serial: Some(SerialDefaults {
        baud: 9600,
        parity: Parity::Even,
        stop_bits: 1,
    }),
    phases: 3,
    readings: Readings {
        voltage: [
            Some(u32_h(0x4016, 0.1)),
            Some(u32_h(0x4018, 0.1)),
            Some(u32_h(0x401A, 0.1)),
        ],
        current: [
            Some(u32_h(0x4010, 0.001)),
            Some(u32_h(0x4012, 0.001)),
            Some(u32_h(0x4014, 0.001)),
        ],
        // Width not stated in devices.md; u32 like its neighbours.
        power: Some(u32_h(0x401C, 1.0)),
        energy: Some(u32_h(0x401E, 1.0)),
    },
    charger: Some(ChargerSpec {
        // The low word's high byte & 0x7F: of the whole u32 that is (raw >> 8) & 0x7F.
        // 1/2 = B1/B2, 3/4 = C1/C2, 5 = stopped by the charger (a car is connected).
        state: StateSpec::Codes {
            reg: Register::holding(0x400C, DataType::U32),
            shift: 8,
            mask: 0x7F,
            map: &[
                (0, ChargeState::A),
                (2, ChargeState::B),
                (1, ChargeState::B),
                (5, ChargeState::B),
                (4, ChargeState::C),
                (3, ChargeState::C),
            ],
        },
        setpoint: u32_h(0x4100, 0.001).writable(WriteFn::Multiple),
        min_current_a: 6.0,
        // mA register; set in 0.1 A steps.
        setpoint_step_a: 0.1,
        applied_current: None,
        setpoint_validity_s: None,
        enable: None,
        heartbeat: None,
        comms_timeout: Some(CommsTimeout {
            reg: Register::holding(0x4106, DataType::U16).writable(WriteFn::Single),
            default_s: COMMS_TIMEOUT_S,
        }),
        safe_current: None,
        energy_scope: EnergyScope::Session,
        idle_close_s: None,
        fallback: "stops charging once the comms timeout has run out",
        id_tag: None,
        ev_id: None,
    }),
    hex_addresses: true,
    confidence: "H (ABB Terra AC Modbus communication v1.7; evcc agrees)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::checks::{charge_state, multiple, number, single, write};
    use crate::devices::model::ChargeState;

    fn charger() -> ChargerSpec {
        SPEC.charger.unwrap()
    }

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        // 16 000 mA = 0x00003E80.
        assert_eq!(number(r.current[0], &[0x0000, 0x3E80]), Some(16.0));
        // 2301 × 0.1 V.
        let v = number(r.voltage[1], &[0x0000, 0x08FD]).unwrap();
        assert!((v - 230.1).abs() < 1e-9, "{v}");
        let state = charger().state;
        // Low word 0x0400: high byte 4 = C2.
        assert_eq!(charge_state(&state, &[0x0000, 0x0400]), ChargeState::C);
        // Bit 7 of that byte is masked off: 0x83 → 3 = C1.
        assert_eq!(charge_state(&state, &[0x0000, 0x8300]), ChargeState::C);
        // 5 = stopped by the charger with a car connected.
        assert_eq!(charge_state(&state, &[0x0000, 0x0500]), ChargeState::B);
        assert_eq!(charge_state(&state, &[0x0000, 0x0000]), ChargeState::A);
        assert_eq!(charger().energy_scope, EnergyScope::Session);
    }

    #[test]
    fn encodes_setpoint_in_ma_with_fc16() {
        assert_eq!(
            write(&charger().setpoint, 16.0),
            multiple(0x4100, &[0x0000, 0x3E80])
        );
        let ct = charger().comms_timeout.unwrap();
        assert_eq!(
            write(&ct.reg, f64::from(ct.default_s)),
            single(0x4106, COMMS_TIMEOUT_S as u16)
        );
    }
}
