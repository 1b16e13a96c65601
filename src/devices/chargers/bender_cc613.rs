//! Bender CC612/CC613 (also inside Mennekes AMTRON Professional, Webasto Live, Garo GLB):
//! Modbus TCP, unit 255, "Ebee/Bender/MENNEKES" register set, holding registers, big-endian
//! u32 values in mA / W / Wh. A twin station's second point answers on port 503.

use crate::devices::model::{
    ChargeState, ChargerSpec, DeviceKind, EnergyScope, EvId, ModelSpec, Readings, StateSpec,
    Transport,
};
use crate::devices::regmap::{DataType, NoValue, Register, WriteFn};

const fn u32_h(addr: u16, scale: f64) -> Register {
    Register::holding(addr, DataType::U32).scale(scale)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "bender-cc613",
    title: "Bender CC612/CC613 (also AMTRON Professional, Webasto Live, Garo GLB)",
    kind: DeviceKind::Charger,
    transports: &[Transport::Tcp],
    default_unit: 255,
    default_port: 502,
    serial: None,
    phases: 3,
    readings: Readings {
        voltage: [
            Some(u32_h(222, 1.0)),
            Some(u32_h(224, 1.0)),
            Some(u32_h(226, 1.0)),
        ],
        current: [
            Some(u32_h(212, 0.001)),
            Some(u32_h(214, 0.001)),
            Some(u32_h(216, 0.001)),
        ],
        // Briefly reads 0xFFFFFFFF while the meter updates: a missing value, not 4.3 GW.
        power: Some(u32_h(220, 1.0).no_value(NoValue::AllOnes)),
        energy: Some(u32_h(218, 1.0)),
    },
    charger: Some(ChargerSpec {
        state: StateSpec::Codes {
            reg: Register::holding(122, DataType::U16),
            shift: 0,
            mask: 0xFFFF,
            map: &[
                (1, ChargeState::A),
                (2, ChargeState::B),
                (3, ChargeState::C),
                (4, ChargeState::D),
                (5, ChargeState::E),
            ],
        },
        // HEMS current limit, whole amperes; 0 disables.
        setpoint: Register::holding(1000, DataType::U16).writable(WriteFn::Single),
        min_current_a: 6.0,
        setpoint_step_a: 1.0,
        applied_current: None,
        setpoint_validity_s: None,
        enable: None,
        heartbeat: None,
        comms_timeout: None,
        safe_current: Some(Register::holding(131, DataType::U16)),
        energy_scope: EnergyScope::Lifetime,
        idle_close_s: None,
        fallback: "no watchdog known",
        // User id (OCPP idTag, bytes 0–19) at 720; EVCCID (ASCII hex, bytes 0–11) at 741,
        // valid while 740 ("smart vehicle detected") is 1. M: as evcc quotes the manual.
        id_tag: Some(Register::holding(720, DataType::Ascii(10))),
        ev_id: Some(EvId {
            reg: Register::holding(741, DataType::Ascii(6)),
            valid_when: Some((Register::holding(740, DataType::U16), 1)),
        }),
    }),
    hex_addresses: false,
    confidence: "H (Bender CC613 Modbus manual; evcc agrees)",
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
        assert_eq!(number(r.current[0], &[0x0000, 0x3E80]), Some(16.0));
        assert_eq!(number(r.power, &[0xFFFF, 0xFFFF]), None);
        assert_eq!(number(r.power, &[0x0000, 0x0E60]), Some(3680.0));
        let s = charger().state;
        assert_eq!(charge_state(&s, &[3]), ChargeState::C);
        assert_eq!(charge_state(&s, &[5]), ChargeState::E);
    }

    #[test]
    fn encodes_setpoint_fc6() {
        assert_eq!(write(&charger().setpoint, 16.0), single(1000, 16));
    }
}
