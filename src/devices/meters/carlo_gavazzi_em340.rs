//! Carlo Gavazzi EM340 / EM330 (RS-485) and EM24-E1 (Ethernet): the EM24 layout (FC4 INT32
//! low word first), except that imported energy lives at 0x34.

use crate::devices::model::{DeviceKind, ModelSpec, Parity, Readings, SerialDefaults, Transport};
use crate::devices::regmap::{DataType, Register};

const fn i32_in(addr: u16, scale: f64) -> Register {
    Register::input(addr, DataType::I32)
        .lsw_first()
        .scale(scale)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "carlo-gavazzi-em340",
    title: "Carlo Gavazzi EM340 / EM330 / EM24-E1",
    kind: DeviceKind::Meter,
    transports: &[Transport::Tcp, Transport::Rtu],
    default_unit: 1,
    default_port: 502,
    serial: Some(SerialDefaults {
        baud: 9600,
        parity: Parity::None,
        stop_bits: 1,
    }),
    phases: 3,
    readings: Readings {
        voltage: [
            Some(i32_in(0x00, 0.1)),
            Some(i32_in(0x02, 0.1)),
            Some(i32_in(0x04, 0.1)),
        ],
        current: [
            Some(i32_in(0x0C, 0.001)),
            Some(i32_in(0x0E, 0.001)),
            Some(i32_in(0x10, 0.001)),
        ],
        power: Some(i32_in(0x28, 0.1)),
        energy: Some(i32_in(0x34, 100.0)),
    },
    charger: None,
    confidence: "H (Carlo Gavazzi EM330/EM340 protocol document and mbmd agree)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::codec::decode_number;

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        assert_eq!(
            r.energy.unwrap().addr,
            0x34,
            "EM340 import energy is at 0x34"
        );
        // 4321 mA = 0x000010E1, low word first.
        let a = decode_number(&r.current[1].unwrap(), &[0x10E1, 0x0000])
            .unwrap()
            .unwrap();
        assert!((a - 4.321).abs() < 1e-9, "{a}");
        // 5.0 kWh = 50 = 0x00000032 → 5000 Wh.
        assert_eq!(
            decode_number(&r.energy.unwrap(), &[0x0032, 0x0000]).unwrap(),
            Some(5000.0)
        );
    }
}
