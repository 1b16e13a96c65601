//! Alfen Eve (NG9xx): Modbus TCP, socket 1 = unit 1, FC3 reads and FC16 writes of float32
//! big-endian values. A setpoint is valid for 60 s only and idle connections are closed after
//! 60 s, so evsite rewrites the setpoint well within and keeps polling.

use crate::devices::model::{
    ChargerSpec, DeviceKind, EnergyScope, ModelSpec, Readings, StateSpec, Transport,
};
use crate::devices::regmap::{DataType, Register, WriteFn};

const fn f32_h(addr: u16) -> Register {
    Register::holding(addr, DataType::F32)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "alfen-eve",
    title: "Alfen Eve (NG9xx), socket 1",
    kind: DeviceKind::Charger,
    transports: &[Transport::Tcp],
    // Socket 1; the second socket of a double station is unit 2, the station itself unit 200.
    default_unit: 1,
    default_port: 502,
    serial: None,
    phases: 3,
    readings: Readings {
        voltage: [Some(f32_h(306)), Some(f32_h(308)), Some(f32_h(310))],
        current: [Some(f32_h(320)), Some(f32_h(322)), Some(f32_h(324))],
        power: Some(f32_h(344)),
        energy: Some(Register::holding(374, DataType::F64)),
    },
    charger: Some(ChargerSpec {
        // Mode-3 state as a 5-register string: "A", "B1", "B2", "C1", "C2", "D1", "D2", "E", "F".
        state: StateSpec::Ascii(Register::holding(1201, DataType::Ascii(5))),
        // Multi-register values must be written in one request: FC16.
        setpoint: f32_h(1210).writable(WriteFn::Multiple),
        // IEC 61851 minimum; 0 A pauses.
        min_current_a: 6.0,
        setpoint_step_a: 1.0,
        applied_current: Some(f32_h(1206)),
        setpoint_validity_s: Some(60),
        enable: None,
        heartbeat: None,
        comms_timeout: None,
        // Read-only: configured in the Alfen service installer.
        safe_current: Some(f32_h(1212)),
        energy_scope: EnergyScope::Lifetime,
        idle_close_s: Some(60),
        fallback: "its safe current (read-only, set in the Alfen service installer) once the setpoint's validity has run out",
        id_tag: None,
        ev_id: None,
    }),
    hex_addresses: false,
    confidence: "H (Alfen Modbus slave manual; evcc agrees)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::checks::{charge_state, multiple, number, write};
    use crate::devices::model::ChargeState;

    fn charger() -> ChargerSpec {
        SPEC.charger.unwrap()
    }

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        // 230.1 V as float32 0x4366199A.
        let v = number(r.voltage[0], &[0x4366, 0x199A]).unwrap();
        assert!((v - 230.1).abs() < 1e-4, "{v}");
        // 12 345 678 Wh as float64 0x41678C29C0000000.
        assert_eq!(
            number(r.energy, &[0x4167, 0x8C29, 0xC000, 0x0000]),
            Some(12_345_678.0)
        );
        // "C2" then NUL padding in 1201–1205.
        assert_eq!(
            charge_state(&charger().state, &[0x4332, 0, 0, 0, 0]),
            ChargeState::C
        );
        assert_eq!(
            charge_state(&charger().state, &[0x4231, 0, 0, 0, 0]),
            ChargeState::B
        );
    }

    #[test]
    fn encodes_setpoint_as_one_fc16_float() {
        assert_eq!(
            write(&charger().setpoint, 16.0),
            multiple(1210, &[0x4180, 0x0000])
        );
        assert_eq!(charger().setpoint_validity_s, Some(60));
        assert_eq!(charger().idle_close_s, Some(60));
    }
}
