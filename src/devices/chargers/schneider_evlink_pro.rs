//! Schneider EVlink Pro AC: Modbus TCP, unit 255, holding registers; float32 and u64 values
//! with the low word first; power in kW. The lifebit must be written every 2 s (unless it
//! reads 2, meaning the charger is not under Modbus supervision).

use crate::devices::model::{
    ChargeState, ChargerSpec, DeviceKind, EnergyScope, Heartbeat, ModelSpec, Readings, StateSpec,
    Transport,
};
use crate::devices::regmap::{DataType, Register, WriteFn};

const fn f32_h(addr: u16) -> Register {
    Register::holding(addr, DataType::F32).lsw_first()
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "schneider-evlink-pro",
    title: "Schneider EVlink Pro AC",
    kind: DeviceKind::Charger,
    transports: &[Transport::Tcp],
    default_unit: 255,
    default_port: 502,
    serial: None,
    phases: 3,
    readings: Readings {
        voltage: [Some(f32_h(3027)), Some(f32_h(3029)), Some(f32_h(3031))],
        current: [Some(f32_h(2999)), Some(f32_h(3001)), Some(f32_h(3003))],
        power: Some(f32_h(3059).scale(1000.0)),
        energy: Some(Register::holding(3203, DataType::U64).lsw_first()),
    },
    charger: Some(ChargerSpec {
        state: StateSpec::Codes {
            reg: Register::holding(1, DataType::U16),
            shift: 0,
            mask: 0xFFFF,
            map: &[
                (0, ChargeState::A),
                (1, ChargeState::A),
                (2, ChargeState::A),
                (6, ChargeState::A),
                (3, ChargeState::B),
                (4, ChargeState::B),
                (5, ChargeState::B),
                (7, ChargeState::B),
                (8, ChargeState::C),
                (9, ChargeState::C),
            ],
        },
        // Whole amperes; 0 disables.
        setpoint: Register::holding(4004, DataType::U16).writable(WriteFn::Single),
        min_current_a: 6.0,
        setpoint_step_a: 1.0,
        applied_current: None,
        setpoint_validity_s: None,
        enable: None,
        heartbeat: Some(Heartbeat {
            reg: Register::holding(4000, DataType::U16).writable(WriteFn::Single),
            value: 1,
            period_s: 2,
        }),
        comms_timeout: None,
        safe_current: None,
        energy_scope: EnergyScope::Lifetime,
        idle_close_s: None,
        fallback: "the charger's own fallback (only under Modbus supervision: a lifebit that reads 2 means it is not)",
        id_tag: None,
        ev_id: None,
    }),
    hex_addresses: false,
    confidence: "M (one implementation, evcc schneider-v3; Schneider GEX1969300)",
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
        // 16.0 A = float32 0x41800000, low word first.
        assert_eq!(number(r.current[0], &[0x0000, 0x4180]), Some(16.0));
        // 3.68 kW = 0x406B851F, low word first → W.
        let w = number(r.power, &[0x851F, 0x406B]).unwrap();
        assert!((w - 3680.0).abs() < 1e-3, "{w}");
        // 1 234 500 Wh = 0x12D644, u64 low word first.
        assert_eq!(
            number(r.energy, &[0xD644, 0x0012, 0x0000, 0x0000]),
            Some(1_234_500.0)
        );
        let s = charger().state;
        assert_eq!(charge_state(&s, &[8]), ChargeState::C);
        assert_eq!(charge_state(&s, &[7]), ChargeState::B);
        assert_eq!(charge_state(&s, &[6]), ChargeState::A);
    }

    #[test]
    fn encodes_setpoint_and_lifebit() {
        assert_eq!(write(&charger().setpoint, 16.0), single(4004, 16));
        let hb = charger().heartbeat.unwrap();
        assert_eq!(write(&hb.reg, f64::from(hb.value)), single(4000, 1));
        assert_eq!(hb.period_s, 2);
    }
}
