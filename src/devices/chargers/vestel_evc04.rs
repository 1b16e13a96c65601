//! Vestel EVC04 (also Webasto Unite, Ampure Unite): Modbus TCP, unit 255, readings via FC4
//! input registers, writes via FC6 to holding registers. The charger falls back to its
//! failsafe current when the alive register is not written within the failsafe timeout.

use crate::devices::model::{
    ChargerSpec, CommsTimeout, DeviceKind, EnergyScope, Heartbeat, ModelSpec, Readings, StateSpec,
    Transport,
};
use crate::devices::regmap::{DataType, Register, WriteFn};

/// Failsafe timeout written at start-up.
pub const COMMS_TIMEOUT_S: u32 = 20;

const fn u16_in(addr: u16, scale: f64) -> Register {
    Register::input(addr, DataType::U16).scale(scale)
}

const fn u16_rw(addr: u16) -> Register {
    Register::holding(addr, DataType::U16).writable(WriteFn::Single)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "vestel-evc04",
    title: "Vestel EVC04 / Webasto Unite / Ampure Unite",
    kind: DeviceKind::Charger,
    transports: &[Transport::Tcp],
    default_unit: 255,
    default_port: 502,
    serial: None,
    phases: 3,
    // Phase values are u16 one register apart from the next (not contiguous pairs).
    readings: Readings {
        voltage: [
            Some(u16_in(1014, 1.0)),
            Some(u16_in(1016, 1.0)),
            Some(u16_in(1018, 1.0)),
        ],
        current: [
            Some(u16_in(1008, 0.001)),
            Some(u16_in(1010, 0.001)),
            Some(u16_in(1012, 0.001)),
        ],
        power: Some(Register::input(1020, DataType::U32)),
        // 0.1 kWh steps = 100 Wh.
        energy: Some(Register::input(1036, DataType::U32).scale(100.0)),
    },
    charger: Some(ChargerSpec {
        state: StateSpec::CableAndCharging {
            cable: Register::input(1004, DataType::U16),
            connected_from: 2,
            charging: Register::input(1001, DataType::U16),
            charging_value: 1,
        },
        // Whole amperes; 0 pauses.
        setpoint: u16_rw(5004),
        min_current_a: 6.0,
        setpoint_step_a: 1.0,
        applied_current: None,
        setpoint_validity_s: None,
        enable: None,
        heartbeat: Some(Heartbeat {
            reg: u16_rw(6000),
            value: 1,
            period_s: COMMS_TIMEOUT_S / 4,
        }),
        comms_timeout: Some(CommsTimeout {
            reg: u16_rw(2002),
            default_s: COMMS_TIMEOUT_S,
        }),
        safe_current: Some(u16_rw(2000)),
        energy_scope: EnergyScope::Lifetime,
        idle_close_s: None,
        fallback: "its failsafe current once the alive register has not been written within the failsafe timeout",
        // RFID, firmware 3.156 and later only (older: exception or zeros, i.e. no id); M: evcc.
        id_tag: Some(Register::input(1516, DataType::Ascii(15))),
        ev_id: None,
    }),
    hex_addresses: false,
    confidence: "H (Vestel EVC04 Modbus document; evcc agrees)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::checks::{number, single, write};
    use crate::devices::model::ChargeState;
    use crate::devices::state::decode_state;

    fn charger() -> ChargerSpec {
        SPEC.charger.unwrap()
    }

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        // 12 345 × 0.1 kWh = 1 234 500 Wh.
        assert_eq!(number(r.energy, &[0x0000, 0x3039]), Some(1_234_500.0));
        // 16 000 mA in one u16.
        assert_eq!(number(r.current[0], &[0x3E80]), Some(16.0));
        let s = charger().state;
        // Cable state first, then charging state.
        assert_eq!(decode_state(&s, &[&[2], &[1]]).unwrap(), ChargeState::C);
        assert_eq!(decode_state(&s, &[&[2], &[0]]).unwrap(), ChargeState::B);
        assert_eq!(decode_state(&s, &[&[0], &[0]]).unwrap(), ChargeState::A);
    }

    #[test]
    fn encodes_fc6_writes() {
        assert_eq!(write(&charger().setpoint, 16.0), single(5004, 16));
        let ct = charger().comms_timeout.unwrap();
        assert_eq!(
            write(&ct.reg, f64::from(ct.default_s)),
            single(2002, COMMS_TIMEOUT_S as u16)
        );
        let hb = charger().heartbeat.unwrap();
        assert_eq!(write(&hb.reg, f64::from(hb.value)), single(6000, 1));
        assert_eq!(hb.period_s * 4, ct.default_s);
    }
}
