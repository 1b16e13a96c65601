//! Charge state as data: decode a model's state registers to an IEC 61851 state, and the
//! inverse, which the simulator uses to present a state through the same registers.

use super::codec::{decode, decode_number, encode_number, encode_text, Value};
use super::error::DeviceError;
use super::model::{ChargeState, StateSpec};
use super::regmap::{DataType, Register};

/// The registers a state spec reads, in the order [`decode_state`] expects their words.
pub fn state_registers(spec: &StateSpec) -> Vec<Register> {
    match *spec {
        StateSpec::Ascii(reg) => vec![reg],
        StateSpec::Codes { reg, .. } => vec![reg],
        StateSpec::CableAndCharging {
            cable, charging, ..
        } => vec![cable, charging],
    }
}

fn letter_state(c: char) -> Option<ChargeState> {
    match c.to_ascii_uppercase() {
        'A' => Some(ChargeState::A),
        'B' => Some(ChargeState::B),
        'C' => Some(ChargeState::C),
        'D' => Some(ChargeState::D),
        'E' => Some(ChargeState::E),
        'F' => Some(ChargeState::F),
        _ => None,
    }
}

fn raw_code(reg: &Register, words: &[u16]) -> Result<u64, DeviceError> {
    match decode_number(reg, words)? {
        // State registers are unsigned integers with scale 1, so the value is the raw code.
        Some(v) if v >= 0.0 => Ok(v as u64),
        Some(v) => Err(DeviceError::BadState {
            raw: format!("{v}"),
        }),
        None => Err(DeviceError::NoValue {
            what: "charge state",
        }),
    }
}

/// Decode the state from the words of [`state_registers`], one slice per register.
pub fn decode_state(spec: &StateSpec, words: &[&[u16]]) -> Result<ChargeState, DeviceError> {
    let regs = state_registers(spec);
    if words.len() != regs.len() {
        return Err(DeviceError::BadState {
            raw: format!(
                "{} register values for {} registers",
                words.len(),
                regs.len()
            ),
        });
    }
    match *spec {
        StateSpec::Ascii(reg) => {
            let text = match decode(&reg, words[0])? {
                Some(Value::Text(t)) => t,
                Some(Value::Number(n)) => n.to_string(),
                None => String::new(),
            };
            text.chars()
                .next()
                .and_then(letter_state)
                .ok_or(DeviceError::BadState {
                    raw: format!("{text:?}"),
                })
        }
        StateSpec::Codes {
            reg,
            shift,
            mask,
            map,
        } => {
            let raw = raw_code(&reg, words[0])?;
            let code = (raw >> shift) & u64::from(mask);
            map.iter()
                .find(|(c, _)| u64::from(*c) == code)
                .map(|(_, s)| *s)
                .ok_or(DeviceError::BadState {
                    raw: format!("{code} (raw {raw:#x})"),
                })
        }
        StateSpec::CableAndCharging {
            cable,
            connected_from,
            charging,
            charging_value,
        } => {
            let cable_raw = raw_code(&cable, words[0])?;
            let charging_raw = raw_code(&charging, words[1])?;
            Ok(if charging_raw == u64::from(charging_value) {
                ChargeState::C
            } else if cable_raw >= u64::from(connected_from) {
                ChargeState::B
            } else {
                ChargeState::A
            })
        }
    }
}

/// The text a model with ASCII state shows for `state`: two-character models report the
/// "allowed" variant ("B2", "C2"), which is what a charger under control shows.
fn state_text(reg: &Register, state: ChargeState) -> String {
    let letter = state.letter().to_string();
    match (reg.dtype, state) {
        (DataType::Ascii(_), ChargeState::B | ChargeState::C | ChargeState::D) => {
            format!("{letter}2")
        }
        _ => letter,
    }
}

/// Register words that make [`decode_state`] return `state`; empty when the model cannot
/// express it (e.g. D on a charger that has no code for it).
pub fn encode_state(spec: &StateSpec, state: ChargeState) -> Vec<(Register, Vec<u16>)> {
    match *spec {
        StateSpec::Ascii(reg) => vec![(reg, encode_text(&reg, &state_text(&reg, state)))],
        StateSpec::Codes {
            reg, shift, map, ..
        } => map
            .iter()
            .find(|(_, s)| *s == state)
            .and_then(|(code, _)| {
                let raw = u64::from(*code) << shift;
                encode_number(&reg, raw as f64).ok()
            })
            .map(|w| vec![(reg, w)])
            .unwrap_or_default(),
        StateSpec::CableAndCharging {
            cable,
            connected_from,
            charging,
            charging_value,
        } => {
            let idle = if charging_value == 0 { 1 } else { 0 };
            let (cable_raw, charging_raw) = match state {
                ChargeState::A => (0, idle),
                ChargeState::B => (connected_from, idle),
                ChargeState::C => (connected_from, charging_value),
                _ => return Vec::new(),
            };
            let words = |reg: &Register, raw: u32| encode_number(reg, f64::from(raw)).ok();
            match (words(&cable, cable_raw), words(&charging, charging_raw)) {
                (Some(c), Some(g)) => vec![(cable, c), (charging, g)],
                _ => Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::model::DeviceKind;
    use crate::devices::registry;

    const ALL_STATES: [ChargeState; 6] = [
        ChargeState::A,
        ChargeState::B,
        ChargeState::C,
        ChargeState::D,
        ChargeState::E,
        ChargeState::F,
    ];

    fn round_trip(spec: &StateSpec, state: ChargeState) -> Option<ChargeState> {
        let enc = encode_state(spec, state);
        if enc.is_empty() {
            return None;
        }
        let words: Vec<&[u16]> = enc.iter().map(|(_, w)| w.as_slice()).collect();
        let regs: Vec<Register> = enc.iter().map(|(r, _)| *r).collect();
        assert_eq!(regs, state_registers(spec), "encoded in decode order");
        Some(decode_state(spec, &words).unwrap())
    }

    #[test]
    fn every_charger_round_trips_a_b_c() {
        for m in registry::all() {
            let Some(c) = m.charger else {
                assert_eq!(m.kind, DeviceKind::Meter);
                continue;
            };
            for s in ALL_STATES {
                match round_trip(&c.state, s) {
                    Some(back) => assert_eq!(back, s, "{} {s:?}", m.name),
                    None => assert!(
                        !matches!(s, ChargeState::A | ChargeState::B | ChargeState::C),
                        "{} cannot express {s:?}",
                        m.name
                    ),
                }
            }
        }
    }

    #[test]
    fn ascii_two_char_codes() {
        let spec = StateSpec::Ascii(Register::holding(1201, DataType::Ascii(5)));
        // "C2" = 0x4332 then NULs.
        assert_eq!(
            decode_state(&spec, &[&[0x4332, 0, 0, 0, 0]]).unwrap(),
            ChargeState::C
        );
        assert_eq!(
            encode_state(&spec, ChargeState::B)[0].1,
            vec![0x4232, 0, 0, 0, 0]
        );
        assert!(matches!(
            decode_state(&spec, &[&[0x5800, 0, 0, 0, 0]]),
            Err(DeviceError::BadState { .. })
        ));
    }

    #[test]
    fn unknown_code_is_bad_state() {
        let spec = registry::find("webasto-next")
            .unwrap()
            .charger
            .unwrap()
            .state;
        assert!(matches!(
            decode_state(&spec, &[&[2]]),
            Err(DeviceError::BadState { .. })
        ));
    }

    #[test]
    fn cable_and_charging() {
        let spec = registry::find("vestel-evc04")
            .unwrap()
            .charger
            .unwrap()
            .state;
        // Cable 3 (locked) counts as connected; charging 1 wins over the cable.
        assert_eq!(decode_state(&spec, &[&[3], &[0]]).unwrap(), ChargeState::B);
        assert_eq!(decode_state(&spec, &[&[1], &[0]]).unwrap(), ChargeState::A);
        assert_eq!(decode_state(&spec, &[&[2], &[1]]).unwrap(), ChargeState::C);
    }
}
