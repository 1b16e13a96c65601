//! Carlo Gavazzi EM24 (RS-485): three-phase meter, FC4 INT32 with the low word first, fixed
//! decimal scales (V ÷10, A ÷1000, W ÷10, kWh ÷10).

use crate::devices::model::{DeviceKind, ModelSpec, Parity, Readings, SerialDefaults, Transport};
use crate::devices::regmap::{DataType, Register};

pub(crate) const fn i32_in(addr: u16, scale: f64) -> Register {
    Register::input(addr, DataType::I32)
        .lsw_first()
        .scale(scale)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "carlo-gavazzi-em24",
    title: "Carlo Gavazzi EM24 (RS-485)",
    kind: DeviceKind::Meter,
    transports: &[Transport::Rtu],
    // Unit 1 is the factory address (devices.md gives none).
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
        // 0.1 kWh steps = 100 Wh.
        energy: Some(i32_in(0x42, 100.0)),
    },
    charger: None,
    hex_addresses: true,
    confidence: "H (Carlo Gavazzi EM24 protocol document and mbmd agree)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::checks::number;

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        // 2301 = 0x000008FD, low word first → 230.1 V.
        let v = number(r.voltage[0], &[0x08FD, 0x0000]).unwrap();
        assert!((v - 230.1).abs() < 1e-9, "{v}");
        // 16 000 mA = 0x00003E80 → 16 A.
        let a = number(r.current[0], &[0x3E80, 0x0000]).unwrap();
        assert!((a - 16.0).abs() < 1e-9, "{a}");
        // Export shows as negative power: -1500.0 W = -15000 = 0xFFFFC568.
        let w = number(r.power, &[0xC568, 0xFFFF]).unwrap();
        assert!((w + 1500.0).abs() < 1e-9, "{w}");
        // 123 456.7 kWh = 1 234 567 = 0x0012D687 → 123 456 700 Wh.
        let e = number(r.energy, &[0xD687, 0x0012]).unwrap();
        assert!((e - 123_456_700.0).abs() < 1e-6, "{e}");
    }
}
