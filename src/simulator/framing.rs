//! Modbus server-side framing, small and our own so faults can reach the wire: request PDUs
//! (FC1, 3, 4, 5, 6, 16) parsed into the controller's own [`Request`], response PDUs, the RTU
//! frame length rule and CRC-16/MODBUS.

use crate::devices::regmap::Table;
use crate::modbus::request::MAX_WRITE;
pub use crate::modbus::Request;

use super::bank::Exception;

fn be(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Parse a request PDU (function code first).
pub fn parse_pdu(pdu: &[u8]) -> Result<Request, Exception> {
    let bad = Exception::ILLEGAL_VALUE;
    let fc = *pdu.first().ok_or(bad)?;
    let a = be(pdu, 1);
    let b = be(pdu, 3);
    let read = |table| match (a, b) {
        (Some(addr), Some(count)) => Ok(Request::Read { table, addr, count }),
        _ => Err(bad),
    };
    match fc {
        0x01 => read(Table::Coil),
        0x03 => read(Table::Holding),
        0x04 => read(Table::Input),
        0x05 => match (a, b) {
            (Some(addr), Some(0xFF00)) => Ok(Request::WriteCoil { addr, on: true }),
            (Some(addr), Some(0x0000)) => Ok(Request::WriteCoil { addr, on: false }),
            _ => Err(bad),
        },
        0x06 => match (a, b) {
            (Some(addr), Some(value)) => Ok(Request::WriteSingle { addr, value }),
            _ => Err(bad),
        },
        0x10 => {
            let (addr, count) = a.zip(b).ok_or(bad)?;
            let bytes = usize::from(*pdu.get(5).ok_or(bad)?);
            if count == 0 || count > MAX_WRITE || bytes != 2 * usize::from(count) {
                return Err(bad);
            }
            let values = (0..usize::from(count))
                .map(|i| be(pdu, 6 + 2 * i).ok_or(bad))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Request::WriteMultiple { addr, values })
        }
        _ => Err(Exception::ILLEGAL_FUNCTION),
    }
}

/// The exception response to function `fc`.
pub fn exception_pdu(fc: u8, e: Exception) -> Vec<u8> {
    vec![fc | 0x80, e.0]
}

/// The response to a successful read: registers big-endian, coils packed LSB first.
pub fn read_response(table: Table, words: &[u16]) -> Vec<u8> {
    match table {
        Table::Coil => {
            let mut bytes = vec![0u8; words.len().div_ceil(8)];
            for (i, w) in words.iter().enumerate() {
                if *w != 0 {
                    bytes[i / 8] |= 1 << (i % 8);
                }
            }
            let mut out = vec![0x01, bytes.len() as u8];
            out.extend(bytes);
            out
        }
        Table::Holding | Table::Input => {
            let fc = if table == Table::Holding { 0x03 } else { 0x04 };
            let mut out = vec![fc, (words.len() * 2) as u8];
            out.extend(words.iter().flat_map(|w| w.to_be_bytes()));
            out
        }
    }
}

/// CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); sent low byte first.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for b in data {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Append the CRC to an RTU frame.
pub fn with_crc(mut frame: Vec<u8>) -> Vec<u8> {
    let crc = crc16(&frame);
    frame.extend(crc.to_le_bytes());
    frame
}

/// Whether `frame` (address + PDU + CRC) carries a valid CRC.
pub fn crc_ok(frame: &[u8]) -> bool {
    frame.len() >= 4 && {
        let (body, crc) = frame.split_at(frame.len() - 2);
        crc16(body).to_le_bytes() == [crc[0], crc[1]]
    }
}

/// How much of `buf` (the start of an RTU request) makes one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtuLen {
    /// Need more bytes.
    Incomplete,
    /// The first `n` bytes are one frame.
    Complete(usize),
}

/// The length of the RTU request at the start of `buf`, known from its function code; for a
/// function we do not serve, the whole buffer counts once its CRC checks out (else wait for
/// more, or for the line to go quiet).
pub fn rtu_request_len(buf: &[u8]) -> RtuLen {
    let Some(&fc) = buf.get(1) else {
        return RtuLen::Incomplete;
    };
    let need = match fc {
        0x01..=0x06 => 8,
        0x0F | 0x10 => match buf.get(6) {
            Some(&n) => 9 + usize::from(n),
            None => return RtuLen::Incomplete,
        },
        _ if crc_ok(buf) => buf.len(),
        _ => return RtuLen::Incomplete,
    };
    if buf.len() >= need {
        RtuLen::Complete(need)
    } else {
        RtuLen::Incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_reference_frame() {
        // Read 2 input registers at 0 from unit 1: a frame every Modbus tool shows.
        let f = with_crc(vec![0x01, 0x04, 0x00, 0x00, 0x00, 0x02]);
        assert_eq!(f, vec![0x01, 0x04, 0x00, 0x00, 0x00, 0x02, 0x71, 0xCB]);
        assert!(crc_ok(&f));
        assert_eq!(rtu_request_len(&f[..5]), RtuLen::Incomplete);
        assert_eq!(rtu_request_len(&f), RtuLen::Complete(8));
    }

    #[test]
    fn parses_requests_and_rejects_malformed() {
        let wm = [0x10, 0x04, 0x1A, 0x00, 0x02, 0x04, 0x41, 0x80, 0x00, 0x00];
        assert_eq!(
            parse_pdu(&wm),
            Ok(Request::WriteMultiple {
                addr: 1050,
                values: vec![0x4180, 0]
            })
        );
        assert_eq!(parse_pdu(&wm[..8]), Err(Exception::ILLEGAL_VALUE));
        assert_eq!(
            parse_pdu(&[0x05, 0, 1, 0x12, 0x34]),
            Err(Exception::ILLEGAL_VALUE)
        );
        assert_eq!(parse_pdu(&[0x2B, 0x0E]), Err(Exception::ILLEGAL_FUNCTION));
        let mut frame = vec![7u8];
        frame.extend(wm);
        let frame = with_crc(frame);
        assert_eq!(rtu_request_len(&frame), RtuLen::Complete(frame.len()));
    }

    #[test]
    fn coil_reads_pack_bits() {
        assert_eq!(
            read_response(Table::Coil, &[1, 0, 1, 0, 0, 0, 0, 0, 1]),
            vec![0x01, 2, 0b0000_0101, 0b0000_0001]
        );
    }
}
