//! Eastron SDM120: single-phase meter, FC4 float32 big-endian. Only L1 is present.

use crate::devices::model::{DeviceKind, ModelSpec, Parity, Readings, SerialDefaults, Transport};
use crate::devices::regmap::{DataType, Register};

const fn f32_in(addr: u16) -> Register {
    Register::input(addr, DataType::F32)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "eastron-sdm120",
    title: "Eastron SDM120 (single phase)",
    kind: DeviceKind::Meter,
    transports: &[Transport::Rtu],
    default_unit: 1,
    default_port: 502,
    // The factory rate is 2400 baud, unlike the three-phase Eastron meters.
    serial: Some(SerialDefaults {
        baud: 2400,
        parity: Parity::None,
        stop_bits: 1,
    }),
    phases: 1,
    readings: Readings {
        voltage: [Some(f32_in(0x00)), None, None],
        current: [Some(f32_in(0x06)), None, None],
        power: Some(f32_in(0x0C)),
        energy: Some(f32_in(0x48).scale(1000.0)),
    },
    charger: None,
    hex_addresses: true,
    confidence: "H (Eastron protocol document and mbmd agree)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::checks::number;

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        let v = number(r.voltage[0], &[0x4366, 0x199A]).unwrap();
        assert!((v - 230.1).abs() < 1e-4, "{v}");
        // 3680 W at 0x0C, not the three-phase total at 0x34.
        assert_eq!(SPEC.readings.power.unwrap().addr, 0x0C);
        assert_eq!(number(r.power, &[0x4566, 0x0000]), Some(3680.0));
        assert!(r.voltage[1].is_none() && r.current[2].is_none());
    }
}
