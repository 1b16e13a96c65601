//! The one generic codec: raw register words ⇄ engineering values, driven by a [`Register`].

use super::regmap::{DataType, NoValue, Register, WordOrder};

/// A decoded register value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    #[error("expected {expected} registers at {addr}, got {got}")]
    Length {
        addr: u16,
        expected: u16,
        got: usize,
    },
    #[error("value {value} does not fit register {addr} ({dtype:?} × {scale})")]
    OutOfRange {
        addr: u16,
        value: f64,
        dtype: DataType,
        scale: f64,
    },
    #[error("register {addr} holds text, not a number")]
    NotANumber { addr: u16 },
}

/// Put words into most-significant-first order.
fn msw_first(reg: &Register, words: &[u16]) -> Vec<u16> {
    let mut w = words.to_vec();
    if reg.order == WordOrder::LswFirst {
        w.reverse();
    }
    w
}

fn join(words: &[u16]) -> u64 {
    words
        .iter()
        .fold(0u64, |acc, &w| (acc << 16) | u64::from(w))
}

fn is_no_value(reg: &Register, raw: u64, bits: u32) -> bool {
    let all_ones = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    match reg.no_value {
        NoValue::None => false,
        NoValue::AllOnes => raw == all_ones,
        NoValue::AllOnesOrSignedMax => raw == all_ones || raw == all_ones >> 1,
    }
}

/// Decode the words read for `reg`. `Ok(None)` means the device said "no value".
pub fn decode(reg: &Register, words: &[u16]) -> Result<Option<Value>, CodecError> {
    let n = reg.words();
    if words.len() != usize::from(n) {
        return Err(CodecError::Length {
            addr: reg.addr,
            expected: n,
            got: words.len(),
        });
    }
    let ordered = msw_first(reg, words);
    let raw = join(&ordered);
    let bits = u32::from(n) * 16;
    let text = |bytes: Vec<u8>| {
        let s: String = bytes
            .into_iter()
            .filter(|b| *b != 0)
            .map(char::from)
            .collect();
        Some(Value::Text(s.trim().to_string()))
    };
    let number: f64 = match reg.dtype {
        DataType::AsciiHigh => return Ok(text(vec![(words[0] >> 8) as u8])),
        DataType::AsciiLow => return Ok(text(vec![(words[0] & 0xFF) as u8])),
        DataType::Ascii(_) => {
            return Ok(text(
                words
                    .iter()
                    .flat_map(|w| [(w >> 8) as u8, (w & 0xFF) as u8])
                    .collect(),
            ))
        }
        _ if is_no_value(reg, raw, bits) => return Ok(None),
        DataType::U16 | DataType::U32 | DataType::U64 => raw as f64,
        DataType::I16 => f64::from(raw as u16 as i16),
        DataType::I32 => f64::from(raw as u32 as i32),
        DataType::I64 => raw as i64 as f64,
        DataType::F32 => f64::from(f32::from_bits(raw as u32)),
        DataType::F64 => f64::from_bits(raw),
    };
    if !number.is_finite() {
        return Ok(None);
    }
    Ok(Some(Value::Number(number * reg.scale)))
}

/// Decode a numeric register; text is an error.
pub fn decode_number(reg: &Register, words: &[u16]) -> Result<Option<f64>, CodecError> {
    match decode(reg, words)? {
        None => Ok(None),
        Some(Value::Number(v)) => Ok(Some(v)),
        Some(Value::Text(_)) => Err(CodecError::NotANumber { addr: reg.addr }),
    }
}

fn split(reg: &Register, raw: u64) -> Vec<u16> {
    let n = reg.words();
    let mut w: Vec<u16> = (0..n)
        .rev()
        .map(|i| ((raw >> (16 * u32::from(i))) & 0xFFFF) as u16)
        .collect();
    if reg.order == WordOrder::LswFirst {
        w.reverse();
    }
    w
}

/// Encode an engineering value for `reg` (the inverse of [`decode_number`]); integers are
/// rounded to the nearest raw step.
pub fn encode_number(reg: &Register, value: f64) -> Result<Vec<u16>, CodecError> {
    let raw = value / reg.scale;
    let out_of_range = || CodecError::OutOfRange {
        addr: reg.addr,
        value,
        dtype: reg.dtype,
        scale: reg.scale,
    };
    if !raw.is_finite() {
        return Err(out_of_range());
    }
    let r = raw.round();
    let fits = |lo: f64, hi: f64| r >= lo && r <= hi;
    let bits: u64 = match reg.dtype {
        DataType::U16 if fits(0.0, f64::from(u16::MAX)) => r as u64,
        DataType::I16 if fits(f64::from(i16::MIN), f64::from(i16::MAX)) => r as i16 as u16 as u64,
        DataType::U32 if fits(0.0, f64::from(u32::MAX)) => r as u64,
        DataType::I32 if fits(f64::from(i32::MIN), f64::from(i32::MAX)) => r as i32 as u32 as u64,
        DataType::U64 if fits(0.0, u64::MAX as f64) => r as u64,
        DataType::I64 if fits(i64::MIN as f64, i64::MAX as f64) => r as i64 as u64,
        DataType::F32 => u64::from((raw as f32).to_bits()),
        DataType::F64 => raw.to_bits(),
        _ => return Err(out_of_range()),
    };
    Ok(split(reg, bits))
}

/// What an id register (user or vehicle id, ASCII, two bytes a word, high byte first) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdText {
    /// No id: all zeros, all 0xFFFF, or blanks only.
    None,
    /// The id, trailing NULs and blanks (and leading blanks) trimmed.
    Id(String),
    /// Bytes no id has (control characters, non-ASCII): reported as no id, and counted.
    Unprintable,
}

/// Decode an id register's words. Never fails: anything that is not a printable ASCII id is
/// [`IdText::None`] or [`IdText::Unprintable`].
pub fn decode_id(words: &[u16]) -> IdText {
    if words.iter().all(|w| *w == 0xFFFF) {
        return IdText::None;
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    // The id ends at its first NUL; what follows is padding (zeros, or stale bytes some
    // firmware leaves behind).
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let text = &bytes[..end];
    if !text.iter().all(|b| (0x20..0x7F).contains(b)) {
        return IdText::Unprintable;
    }
    let s = String::from_utf8_lossy(text).trim().to_string();
    if s.is_empty() {
        IdText::None
    } else {
        IdText::Id(s)
    }
}

/// Encode text for an ASCII register (padded with NULs, cut to fit).
pub fn encode_text(reg: &Register, text: &str) -> Vec<u16> {
    let bytes = text.as_bytes();
    match reg.dtype {
        DataType::AsciiHigh => vec![u16::from(bytes.first().copied().unwrap_or(0)) << 8],
        DataType::AsciiLow => vec![u16::from(bytes.first().copied().unwrap_or(0))],
        _ => (0..usize::from(reg.words()))
            .map(|i| {
                let hi = bytes.get(2 * i).copied().unwrap_or(0);
                let lo = bytes.get(2 * i + 1).copied().unwrap_or(0);
                (u16::from(hi) << 8) | u16::from(lo)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::regmap::Register as R;

    #[test]
    fn float32_big_endian() {
        // 230.5 V as IEEE-754 0x43668000
        let r = R::input(0, DataType::F32);
        assert_eq!(decode_number(&r, &[0x4366, 0x8000]).unwrap(), Some(230.5));
        assert_eq!(encode_number(&r, 230.5).unwrap(), vec![0x4366, 0x8000]);
    }

    #[test]
    fn int32_lsw_first_with_scale() {
        // 2301 (0x000008FD) low word first, ÷10 → 230.1
        let r = R::input(0, DataType::I32).lsw_first().scale(0.1);
        let v = decode_number(&r, &[0x08FD, 0x0000]).unwrap().unwrap();
        assert!((v - 230.1).abs() < 1e-9);
        assert_eq!(encode_number(&r, 230.1).unwrap(), vec![0x08FD, 0x0000]);
        assert_eq!(
            decode_number(&r, &[0xFFFF, 0xFFFF]).unwrap(),
            Some(-0.1),
            "negative values keep their sign"
        );
    }

    #[test]
    fn u64_no_value_sentinel() {
        let r = R::holding(0, DataType::U64).no_value(NoValue::AllOnes);
        assert_eq!(decode_number(&r, &[0xFFFF; 4]).unwrap(), None);
        let s = R::holding(0, DataType::I32).no_value(NoValue::AllOnesOrSignedMax);
        assert_eq!(decode_number(&s, &[0x7FFF, 0xFFFF]).unwrap(), None);
    }

    #[test]
    fn ascii_variants() {
        let hi = R::input(0, DataType::AsciiHigh);
        assert_eq!(
            decode(&hi, &[0x4300]).unwrap(),
            Some(Value::Text("C".into()))
        );
        let s = R::holding(0, DataType::Ascii(5));
        assert_eq!(
            decode(&s, &encode_text(&s, "B2")).unwrap(),
            Some(Value::Text("B2".into()))
        );
    }

    #[test]
    fn wrong_length_and_range_are_errors() {
        let r = R::holding(0, DataType::U32);
        assert!(decode(&r, &[1]).is_err());
        let u = R::holding(0, DataType::U16);
        assert!(encode_number(&u, -1.0).is_err());
        assert!(encode_number(&u, 70000.0).is_err());
    }
}
