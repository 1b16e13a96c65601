//! Eastron SDM72D-M-2 (v2): three-phase meter with the SDM630 register layout (FC4 float32
//! big-endian). The earlier SDM72D-M (v1) has no per-phase voltage or current registers, only
//! power and energy at the same addresses, so it cannot be used for per-phase load management.

use crate::devices::meters::eastron_sdm630;
use crate::devices::model::ModelSpec;

/// The SDM630 map under another name: the v2 meter answers at the same addresses.
pub static SPEC: ModelSpec = ModelSpec {
    name: "eastron-sdm72d",
    title: "Eastron SDM72D-M-2 (v2)",
    confidence: "H (Eastron SDM72D-M-2 protocol document; v1 lacks V/A)",
    ..eastron_sdm630::SPEC
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::checks::number;

    #[test]
    fn decodes_recorded_words() {
        let r = SPEC.readings;
        // 3680 W = 0x45660000.
        assert_eq!(number(r.power, &[0x4566, 0x0000]), Some(3680.0));
        // 0.5 A = 0x3F000000.
        assert_eq!(number(r.current[1], &[0x3F00, 0x0000]), Some(0.5));
        assert!(
            r.voltage.iter().all(Option::is_some),
            "v2 has phase voltages"
        );
    }
}
