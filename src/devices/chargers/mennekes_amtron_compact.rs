//! Mennekes AMTRON Compact 2.0s / 4You 300: Modbus RTU 57600 8N2, unit 50, holding registers,
//! float32 values (big-endian assumed: devices.md gives no word order). Charging needs the
//! release register set and a heartbeat (0x55AA to 0x0D00) written every few seconds.

use crate::devices::model::{
    ChargeState, ChargerSpec, DeviceKind, Enable, EnergyScope, Heartbeat, ModelSpec, Parity,
    Readings, SerialDefaults, StateSpec, Transport,
};
use crate::devices::regmap::{DataType, Register, WriteFn};

const fn f32_h(addr: u16) -> Register {
    Register::holding(addr, DataType::F32)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "mennekes-amtron-compact",
    title: "Mennekes AMTRON Compact 2.0s / 4You 300",
    kind: DeviceKind::Charger,
    transports: &[Transport::Rtu],
    default_unit: 50,
    default_port: 502,
    serial: Some(SerialDefaults {
        baud: 57600,
        parity: Parity::None,
        stop_bits: 2,
    }),
    phases: 3,
    // Currents L1–L3 at 0x0500/02/04, voltages following at 0x0506/08/0A (f32 each).
    readings: Readings {
        voltage: [
            Some(f32_h(0x0506)),
            Some(f32_h(0x0508)),
            Some(f32_h(0x050A)),
        ],
        current: [
            Some(f32_h(0x0500)),
            Some(f32_h(0x0502)),
            Some(f32_h(0x0504)),
        ],
        power: Some(f32_h(0x0512)),
        energy: Some(f32_h(0x1000).scale(1000.0)),
    },
    charger: Some(ChargerSpec {
        // 1 A, 2–4 B (sub-states of "connected"), 5 C.
        state: StateSpec::Codes {
            reg: Register::holding(0x0100, DataType::U16),
            shift: 0,
            mask: 0xFFFF,
            map: &[
                (1, ChargeState::A),
                (2, ChargeState::B),
                (3, ChargeState::B),
                (4, ChargeState::B),
                (5, ChargeState::C),
            ],
        },
        setpoint: f32_h(0x0302).writable(WriteFn::Multiple),
        min_current_a: 6.0,
        setpoint_step_a: 1.0,
        applied_current: None,
        setpoint_validity_s: None,
        enable: Some(Enable {
            reg: Register::holding(0x0D05, DataType::U16).writable(WriteFn::Single),
            on: 1,
            off: 0,
        }),
        heartbeat: Some(Heartbeat {
            reg: Register::holding(0x0D00, DataType::U16).writable(WriteFn::Single),
            value: 0x55AA,
            // Known to work; the charger's own limit is not documented.
            period_s: 5,
        }),
        comms_timeout: None,
        safe_current: None,
        energy_scope: EnergyScope::Lifetime,
        idle_close_s: None,
        fallback: "stops without the heartbeat",
        id_tag: None,
        ev_id: None,
    }),
    hex_addresses: true,
    confidence: "M (one implementation; word order L)",
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
        // 1234.5 kWh as float32 0x449A5000 → Wh.
        assert_eq!(
            number(SPEC.readings.energy, &[0x449A, 0x5000]),
            Some(1_234_500.0)
        );
        let s = charger().state;
        assert_eq!(charge_state(&s, &[5]), ChargeState::C);
        assert_eq!(charge_state(&s, &[3]), ChargeState::B);
        assert_eq!(charge_state(&s, &[1]), ChargeState::A);
    }

    #[test]
    fn encodes_setpoint_heartbeat_and_release() {
        assert_eq!(
            write(&charger().setpoint, 16.0),
            multiple(0x0302, &[0x4180, 0x0000])
        );
        let hb = charger().heartbeat.unwrap();
        assert_eq!(write(&hb.reg, f64::from(hb.value)), single(0x0D00, 0x55AA));
        let en = charger().enable.unwrap();
        assert_eq!(write(&en.reg, f64::from(en.on)), single(0x0D05, 1));
    }
}
