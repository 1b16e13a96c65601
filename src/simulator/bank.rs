//! A simulated device's register bank: the raw words a Modbus master reads, filled from the
//! physics through the model's own register table and the shared codec.

use std::collections::HashMap;

use crate::devices::codec::{decode_number, encode_number, encode_text};
use crate::devices::model::{ChargeState, StateSpec};
use crate::devices::regmap::{Register, Table};
use crate::modbus::request::MAX_READ;

/// The standard Modbus exception codes the simulator answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception(pub u8);

impl Exception {
    pub const ILLEGAL_FUNCTION: Exception = Exception(0x01);
    pub const ILLEGAL_ADDRESS: Exception = Exception(0x02);
    pub const ILLEGAL_VALUE: Exception = Exception(0x03);
}

#[derive(Debug, Clone, Default)]
pub struct Bank {
    words: HashMap<(Table, u16), u16>,
}

impl Bank {
    /// Store `words` at the register's addresses.
    pub fn put(&mut self, reg: &Register, words: &[u16]) {
        for (i, w) in words.iter().enumerate() {
            self.words
                .insert((reg.table, reg.addr.wrapping_add(i as u16)), *w);
        }
    }

    /// Encode a number into `reg`. A value the register cannot hold is left out rather than
    /// wrapped: a stale reading is closer to a real device than a wrong one.
    pub fn set_number(&mut self, reg: &Register, value: f64) {
        if let Ok(words) = encode_number(reg, value) {
            self.put(reg, &words);
        }
    }

    pub fn set_text(&mut self, reg: &Register, text: &str) {
        let words = encode_text(reg, text);
        self.put(reg, &words);
    }

    /// The value `reg` holds now, decoded.
    pub fn number(&self, reg: &Register) -> Option<f64> {
        let words: Option<Vec<u16>> = (0..reg.words())
            .map(|i| {
                self.words
                    .get(&(reg.table, reg.addr.wrapping_add(i)))
                    .copied()
            })
            .collect();
        decode_number(reg, &words?).ok().flatten()
    }

    pub fn contains(&self, table: Table, addr: u16) -> bool {
        self.words.contains_key(&(table, addr))
    }

    /// A block read: the gaps inside a block read as 0 (as on most devices), but a block that
    /// touches no known register is an illegal address.
    pub fn read(&self, table: Table, addr: u16, count: u16) -> Result<Vec<u16>, Exception> {
        if count == 0 || count > MAX_READ || u32::from(addr) + u32::from(count) > 0x1_0000 {
            return Err(Exception::ILLEGAL_VALUE);
        }
        let words: Vec<Option<u16>> = (0..count)
            .map(|i| self.words.get(&(table, addr + i)).copied())
            .collect();
        if words.iter().all(Option::is_none) {
            return Err(Exception::ILLEGAL_ADDRESS);
        }
        Ok(words.into_iter().map(|w| w.unwrap_or(0)).collect())
    }

    /// Store written words (the caller has checked the target is writable).
    pub fn write(&mut self, table: Table, addr: u16, values: &[u16]) {
        for (i, v) in values.iter().enumerate() {
            self.words.insert((table, addr.wrapping_add(i as u16)), *v);
        }
    }
}

/// The words that report `state` under `spec`, per register. A state a model cannot express
/// is reported as the nearest one it can (a fault as "connected, not charging").
pub fn encode_state(spec: &StateSpec, state: ChargeState) -> Vec<(Register, Vec<u16>)> {
    match spec {
        StateSpec::Ascii(reg) => {
            let text = match state {
                ChargeState::A => "A",
                ChargeState::B => "B2",
                ChargeState::C => "C2",
                ChargeState::D => "D2",
                ChargeState::E => "E",
                ChargeState::F => "F",
            };
            vec![(*reg, encode_text(reg, text))]
        }
        StateSpec::Codes {
            reg,
            shift,
            mask,
            map,
        } => {
            let fallbacks: &[ChargeState] = match state {
                ChargeState::E | ChargeState::F => {
                    &[state, ChargeState::F, ChargeState::E, ChargeState::B]
                }
                ChargeState::D => &[ChargeState::D, ChargeState::C],
                _ => &[state],
            };
            let code = fallbacks
                .iter()
                .find_map(|s| map.iter().find(|(_, m)| m == s).map(|(c, _)| *c));
            match code {
                Some(code) => {
                    let raw = (u64::from(code & mask)) << shift;
                    encode_number(reg, raw as f64 * reg.scale)
                        .map(|w| vec![(*reg, w)])
                        .unwrap_or_default()
                }
                None => Vec::new(),
            }
        }
        StateSpec::CableAndCharging {
            cable,
            connected_from,
            charging,
            charging_value,
        } => {
            let cable_raw = if state.is_connected() {
                *connected_from
            } else {
                0
            };
            let charging_raw = if state.is_charging() {
                *charging_value
            } else if *charging_value == 0 {
                1
            } else {
                0
            };
            let mut out = Vec::new();
            if let Ok(w) = encode_number(cable, f64::from(cable_raw) * cable.scale) {
                out.push((*cable, w));
            }
            if let Ok(w) = encode_number(charging, f64::from(charging_raw) * charging.scale) {
                out.push((*charging, w));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::codec::{decode, Value};
    use crate::devices::regmap::DataType;

    #[test]
    fn block_reads_fill_gaps_but_reject_unknown_blocks() {
        let mut b = Bank::default();
        let r = Register::input(6, DataType::F32);
        b.set_number(&r, 12.5);
        assert_eq!(b.number(&r), Some(12.5));
        assert_eq!(b.read(Table::Input, 4, 4), Ok(vec![0, 0, 0x4148, 0]));
        assert_eq!(
            b.read(Table::Input, 100, 2),
            Err(Exception::ILLEGAL_ADDRESS)
        );
        assert_eq!(
            b.read(Table::Holding, 6, 2),
            Err(Exception::ILLEGAL_ADDRESS)
        );
    }

    #[test]
    fn states_encode_per_spec_kind() {
        let ascii = StateSpec::Ascii(Register::holding(1201, DataType::Ascii(5)));
        let (reg, words) = &encode_state(&ascii, ChargeState::C)[0];
        assert_eq!(decode(reg, words).unwrap(), Some(Value::Text("C2".into())));
        static MAP: [(u32, ChargeState); 3] = [
            (0, ChargeState::A),
            (1, ChargeState::B),
            (3, ChargeState::C),
        ];
        let codes = StateSpec::Codes {
            reg: Register::holding(0x400C, DataType::U32),
            shift: 8,
            mask: 0x7F,
            map: &MAP,
        };
        assert_eq!(encode_state(&codes, ChargeState::C)[0].1, vec![0, 0x0300]);
        // No fault code in this map: reported as connected, not charging.
        assert_eq!(encode_state(&codes, ChargeState::F)[0].1, vec![0, 0x0100]);
    }
}
