//! Phoenix Contact CHARX SEC-3xxx, connector 1: Modbus TCP, holding registers at
//! connector × 1000 + offset, big-endian integers in milli-units; the status is an ASCII
//! letter in the high byte; the setpoint is whole amperes and 0 disables.

use crate::devices::model::{
    ChargerSpec, DeviceKind, EnergyScope, EvId, ModelSpec, Readings, StateSpec, Transport,
};
use crate::devices::regmap::{DataType, Register, WriteFn};

/// Connector 1; a second connector would be a model with base 2000.
const BASE: u16 = 1000;

const fn i32_h(offset: u16, scale: f64) -> Register {
    Register::holding(BASE + offset, DataType::I32).scale(scale)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "phoenix-charx",
    title: "Phoenix Contact CHARX SEC-3xxx, connector 1",
    kind: DeviceKind::Charger,
    transports: &[Transport::Tcp],
    // devices.md gives no unit id; the CHARX answers on unit 1 (assumed, confirm on site).
    default_unit: 1,
    default_port: 502,
    serial: None,
    phases: 3,
    // devices.md gives the types of V (int32) and energy (int64); A and W are taken as int32
    // like V. The table is not stated: holding, as evcc reads it.
    readings: Readings {
        voltage: [
            Some(i32_h(232, 0.001)),
            Some(i32_h(234, 0.001)),
            Some(i32_h(236, 0.001)),
        ],
        current: [
            Some(i32_h(238, 0.001)),
            Some(i32_h(240, 0.001)),
            Some(i32_h(242, 0.001)),
        ],
        power: Some(i32_h(244, 0.001)),
        energy: Some(Register::holding(BASE + 250, DataType::I64)),
    },
    charger: Some(ChargerSpec {
        state: StateSpec::Ascii(Register::holding(BASE + 299, DataType::AsciiHigh)),
        setpoint: Register::holding(BASE + 301, DataType::U16).writable(WriteFn::Single),
        min_current_a: 6.0,
        setpoint_step_a: 1.0,
        applied_current: None,
        setpoint_validity_s: None,
        enable: None,
        heartbeat: None,
        comms_timeout: None,
        safe_current: None,
        energy_scope: EnergyScope::Lifetime,
        idle_close_s: None,
        fallback: "none known",
        // RFID at 275, EV id at 265, 10 registers each (M: evcc only).
        id_tag: Some(Register::holding(BASE + 275, DataType::Ascii(10))),
        ev_id: Some(EvId {
            reg: Register::holding(BASE + 265, DataType::Ascii(10)),
            valid_when: None,
        }),
    }),
    hex_addresses: false,
    confidence: "M (one implementation, evcc phoenix-charx; unit id L)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::checks::{charge_state, number, single, write};
    use crate::devices::model::ChargeState;

    fn charger() -> ChargerSpec {
        SPEC.charger.unwrap()
    }

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        assert_eq!(r.voltage[0].unwrap().addr, 1232, "connector 1 offset");
        // 230 000 mV = 0x00038270.
        assert_eq!(number(r.voltage[0], &[0x0003, 0x8270]), Some(230.0));
        // 'B' in the high byte.
        assert_eq!(charge_state(&charger().state, &[0x4200]), ChargeState::B);
    }

    #[test]
    fn encodes_setpoint_fc6() {
        assert_eq!(write(&charger().setpoint, 16.0), single(1301, 16));
    }
}
