//! ABB B23/B24: three-phase meter, FC3 holding registers, big-endian integers with decimal
//! scales; all bits set (or 0x7FFF… for signed values) means "no value".

use crate::devices::model::{DeviceKind, ModelSpec, Parity, Readings, SerialDefaults, Transport};
use crate::devices::regmap::{DataType, NoValue, Register};

const fn u32_h(addr: u16, scale: f64) -> Register {
    Register::holding(addr, DataType::U32)
        .scale(scale)
        .no_value(NoValue::AllOnes)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "abb-b23",
    title: "ABB B23/B24",
    kind: DeviceKind::Meter,
    transports: &[Transport::Rtu],
    default_unit: 1,
    default_port: 502,
    // devices.md gives no serial defaults; 19200 8E1 is ABB's factory setting for the EQ
    // meters as remembered, not confirmed (the bus config overrides it anyway).
    serial: Some(SerialDefaults {
        baud: 19200,
        parity: Parity::Even,
        stop_bits: 1,
    }),
    phases: 3,
    readings: Readings {
        voltage: [
            Some(u32_h(0x5B00, 0.1)),
            Some(u32_h(0x5B02, 0.1)),
            Some(u32_h(0x5B04, 0.1)),
        ],
        current: [
            Some(u32_h(0x5B0C, 0.01)),
            Some(u32_h(0x5B0E, 0.01)),
            Some(u32_h(0x5B10, 0.01)),
        ],
        power: Some(
            Register::holding(0x5B14, DataType::I32)
                .scale(0.01)
                .no_value(NoValue::AllOnesOrSignedMax),
        ),
        // u64 in 0.01 kWh = 10 Wh.
        energy: Some(
            Register::holding(0x5000, DataType::U64)
                .scale(10.0)
                .no_value(NoValue::AllOnes),
        ),
    },
    charger: None,
    hex_addresses: true,
    confidence: "M (one public implementation, mbmd; serial defaults L)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::checks::number;

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        // 2301 = 0x000008FD big-endian → 230.1 V.
        let v = number(r.voltage[2], &[0x0000, 0x08FD]).unwrap();
        assert!((v - 230.1).abs() < 1e-9, "{v}");
        // 1600 = 0x00000640 → 16.00 A.
        let a = number(r.current[0], &[0x0000, 0x0640]).unwrap();
        assert!((a - 16.0).abs() < 1e-9, "{a}");
        // 12 345 678 = 0x0000_0000_00BC_614E → 123 456.78 kWh = 123 456 780 Wh.
        let e = number(r.energy, &[0x0000, 0x0000, 0x00BC, 0x614E]).unwrap();
        assert!((e - 123_456_780.0).abs() < 1e-3, "{e}");
    }

    #[test]
    fn sentinels_are_no_value() {
        let r = SPEC.readings;
        assert_eq!(number(r.voltage[0], &[0xFFFF, 0xFFFF]), None);
        assert_eq!(number(r.power, &[0x7FFF, 0xFFFF]), None);
        assert_eq!(number(r.energy, &[0xFFFF; 4]), None);
        // A real negative power (export) is not mistaken for a sentinel: -10.00 W = -1000.
        let w = number(r.power, &[0xFFFF, 0xFC18]).unwrap();
        assert!((w + 10.0).abs() < 1e-9, "{w}");
    }
}
