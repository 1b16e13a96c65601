//! Eastron SDM72D-M-2 (v2): three-phase meter with the SDM630 register layout (FC4 float32
//! big-endian). The earlier SDM72D-M (v1) has no per-phase voltage or current registers, only
//! power and energy at the same addresses, so it cannot be used for per-phase load management.

use crate::devices::model::{DeviceKind, ModelSpec, Parity, Readings, SerialDefaults, Transport};
use crate::devices::regmap::{DataType, Register};

const fn f32_in(addr: u16) -> Register {
    Register::input(addr, DataType::F32)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "eastron-sdm72d",
    title: "Eastron SDM72D-M-2 (v2)",
    kind: DeviceKind::Meter,
    transports: &[Transport::Rtu],
    default_unit: 1,
    default_port: 502,
    serial: Some(SerialDefaults {
        baud: 9600,
        parity: Parity::None,
        stop_bits: 1,
    }),
    phases: 3,
    readings: Readings {
        voltage: [Some(f32_in(0x00)), Some(f32_in(0x02)), Some(f32_in(0x04))],
        current: [Some(f32_in(0x06)), Some(f32_in(0x08)), Some(f32_in(0x0A))],
        power: Some(f32_in(0x34)),
        energy: Some(f32_in(0x48).scale(1000.0)),
    },
    charger: None,
    confidence: "H (Eastron SDM72D-M-2 protocol document; v1 lacks V/A)",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::codec::decode_number;

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        // 3680 W = 0x45660000.
        assert_eq!(
            decode_number(&r.power.unwrap(), &[0x4566, 0x0000]).unwrap(),
            Some(3680.0)
        );
        // 0.5 A = 0x3F000000.
        assert_eq!(
            decode_number(&r.current[1].unwrap(), &[0x3F00, 0x0000]).unwrap(),
            Some(0.5)
        );
        assert!(
            r.voltage.iter().all(Option::is_some),
            "v2 has phase voltages"
        );
    }
}
