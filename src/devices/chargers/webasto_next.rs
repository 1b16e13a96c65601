//! Webasto NEXT with "HEMS activated": Modbus TCP, unit 255, holding registers. The life bit
//! at 6000 must be written within half the comms timeout or the charger falls back to its
//! safe current.

use crate::devices::model::{
    ChargeState, ChargerSpec, CommsTimeout, DeviceKind, EnergyScope, Heartbeat, ModelSpec,
    Readings, StateSpec, Transport,
};
use crate::devices::regmap::{DataType, Register, WriteFn};

/// Comms timeout written at start-up.
pub const COMMS_TIMEOUT_S: u32 = 20;

const fn u16_rw(addr: u16) -> Register {
    Register::holding(addr, DataType::U16).writable(WriteFn::Single)
}

const fn ma(addr: u16) -> Register {
    Register::holding(addr, DataType::U16).scale(0.001)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "webasto-next",
    title: "Webasto NEXT (HEMS activated)",
    kind: DeviceKind::Charger,
    transports: &[Transport::Tcp],
    default_unit: 255,
    default_port: 502,
    serial: None,
    phases: 3,
    // devices.md gives no widths: currents are taken as u16 mA one register apart (the Unite
    // layout this map derives from), power and energy as u32. No voltages are published.
    readings: Readings {
        voltage: [None, None, None],
        current: [Some(ma(1008)), Some(ma(1010)), Some(ma(1012))],
        power: Some(Register::holding(1020, DataType::U32)),
        energy: Some(Register::holding(1036, DataType::U32)),
    },
    charger: Some(ChargerSpec {
        // 0 A; 1, 4 B; 3 C; 7 error (reported as E).
        state: StateSpec::Codes {
            reg: Register::holding(1000, DataType::U16),
            shift: 0,
            mask: 0xFFFF,
            map: &[
                (0, ChargeState::A),
                (1, ChargeState::B),
                (4, ChargeState::B),
                (3, ChargeState::C),
                (7, ChargeState::E),
            ],
        },
        setpoint: u16_rw(5004),
        min_current_a: 6.0,
        setpoint_step_a: 1.0,
        applied_current: None,
        setpoint_validity_s: None,
        enable: None,
        heartbeat: Some(Heartbeat {
            reg: u16_rw(6000),
            value: 1,
            period_s: COMMS_TIMEOUT_S / 2,
        }),
        comms_timeout: Some(CommsTimeout {
            reg: u16_rw(2002),
            default_s: COMMS_TIMEOUT_S,
        }),
        safe_current: Some(u16_rw(2000)),
        energy_scope: EnergyScope::Lifetime,
        idle_close_s: None,
        fallback:
            "its safe current once the life bit has not been written within the comms timeout",
        // User id (OCPP idTag, bytes 0–19); M: evcc only.
        id_tag: Some(Register::holding(1600, DataType::Ascii(10))),
        ev_id: None,
    }),
    hex_addresses: false,
    confidence: "H (Webasto NEXT Modbus document; evcc agrees)",
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
        assert_eq!(number(SPEC.readings.current[2], &[0x3E80]), Some(16.0));
        let s = charger().state;
        assert_eq!(charge_state(&s, &[3]), ChargeState::C);
        assert_eq!(charge_state(&s, &[4]), ChargeState::B);
        assert_eq!(charge_state(&s, &[7]), ChargeState::E);
    }

    #[test]
    fn encodes_fc6_writes() {
        assert_eq!(write(&charger().setpoint, 16.0), single(5004, 16));
        let hb = charger().heartbeat.unwrap();
        assert_eq!(write(&hb.reg, f64::from(hb.value)), single(6000, 1));
        assert_eq!(hb.period_s * 2, charger().comms_timeout.unwrap().default_s);
    }
}
