//! Phoenix Contact EV Charge Control EV-ETH (and the Wallbe boxes built on it): Modbus TCP,
//! unit 255; readings are FC4 int32 with the low word first, the status an ASCII letter in
//! the low byte, the release a coil and the setpoint a whole-ampere holding register.

use crate::devices::model::{
    ChargerSpec, DeviceKind, Enable, EnergyScope, ModelSpec, Readings, StateSpec, Transport,
};
use crate::devices::regmap::{DataType, Register, WriteFn};

const fn i32_in(addr: u16) -> Register {
    Register::input(addr, DataType::I32).lsw_first()
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "phoenix-ev-eth",
    title: "Phoenix Contact EV Charge Control EV-ETH (and Wallbe)",
    kind: DeviceKind::Charger,
    transports: &[Transport::Tcp],
    default_unit: 255,
    default_port: 502,
    serial: None,
    phases: 3,
    // Native V, A and W (evcc reads them unscaled). Without the optional meter these read 0.
    readings: Readings {
        voltage: [Some(i32_in(108)), Some(i32_in(110)), Some(i32_in(112))],
        current: [Some(i32_in(114)), Some(i32_in(116)), Some(i32_in(118))],
        power: Some(i32_in(120)),
        energy: Some(Register::holding(904, DataType::U32).lsw_first()),
    },
    charger: Some(ChargerSpec {
        state: StateSpec::Ascii(Register::input(100, DataType::AsciiLow)),
        // Whole amperes. Wallbe firmware uses 0.1 A steps when the register reads ≥ 60;
        // that variant is not covered by this model.
        setpoint: Register::holding(528, DataType::U16).writable(WriteFn::Single),
        min_current_a: 6.0,
        setpoint_step_a: 1.0,
        applied_current: None,
        setpoint_validity_s: None,
        enable: Some(Enable {
            reg: Register::coil(400),
            on: 1,
            off: 0,
        }),
        // No watchdog known: a hung controller leaves the last setpoint in force.
        heartbeat: None,
        comms_timeout: None,
        safe_current: None,
        energy_scope: EnergyScope::Lifetime,
        idle_close_s: None,
        fallback: "**none known**: a hung controller leaves the last setpoint in force",
        id_tag: None,
        ev_id: None,
    }),
    hex_addresses: false,
    confidence: "M (one implementation, evcc phoenix-ev-eth)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::checks::{charge_state, number, single, write};
    use crate::devices::model::ChargeState;
    use crate::devices::write::encode_write;
    use crate::modbus::Request;

    fn charger() -> ChargerSpec {
        SPEC.charger.unwrap()
    }

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        // 230 V, low word first.
        assert_eq!(number(r.voltage[0], &[0x00E6, 0x0000]), Some(230.0));
        // 0x12345678 Wh, low word first.
        assert_eq!(number(r.energy, &[0x5678, 0x1234]), Some(305_419_896.0));
        // 'C' in the low byte; the high byte is ignored.
        assert_eq!(charge_state(&charger().state, &[0x0043]), ChargeState::C);
        assert_eq!(charge_state(&charger().state, &[0x2041]), ChargeState::A);
    }

    #[test]
    fn encodes_setpoint_fc6_and_enable_coil() {
        assert_eq!(write(&charger().setpoint, 16.0), single(528, 16));
        let en = charger().enable.unwrap();
        assert_eq!(
            encode_write(&en.reg, f64::from(en.on)).unwrap(),
            Request::WriteCoil {
                addr: 400,
                on: true
            }
        );
    }
}
