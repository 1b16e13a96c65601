//! Eastron SDM630 (v2): three-phase meter, FC4 input registers, float32 big-endian, native
//! units (V, A, W, kWh).

use crate::devices::model::{DeviceKind, ModelSpec, Parity, Readings, SerialDefaults, Transport};
use crate::devices::regmap::{DataType, Register};

const fn f32_in(addr: u16) -> Register {
    Register::input(addr, DataType::F32)
}

pub static SPEC: ModelSpec = ModelSpec {
    name: "eastron-sdm630",
    title: "Eastron SDM630 v2",
    kind: DeviceKind::Meter,
    transports: &[Transport::Rtu],
    default_unit: 1,
    default_port: 502,
    // Factory 9600 8N1; some units ship with even parity, which the bus config overrides.
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
        // Import kWh; ×1000 gives Wh.
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
        // 230.1 V as the nearest float32, 0x4366199A.
        let v = number(r.voltage[0], &[0x4366, 0x199A]).unwrap();
        assert!((v - 230.1).abs() < 1e-4, "{v}");
        // 16.0 A = 0x41800000.
        assert_eq!(number(r.current[2], &[0x4180, 0x0000]), Some(16.0));
        // 1234.5 kWh = 0x449A5000 → 1 234 500 Wh.
        assert_eq!(number(r.energy, &[0x449A, 0x5000]), Some(1_234_500.0));
    }
}
