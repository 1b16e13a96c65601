//! The one Modbus request type: what the read planner and the write encoder produce, what a
//! link task queues and sends, and what the simulator parses off the wire. One type from the
//! device layer down to the link (and back up in the simulator), so they cannot drift apart.

use crate::devices::regmap::{Register, Table};

/// Most registers one read may cover (FC3/FC4; the simulator applies it to coils too).
pub const MAX_READ: u16 = 125;
/// Most registers one FC16 write may carry (the PDU limit of 253 bytes).
pub const MAX_WRITE: u16 = 123;

/// One Modbus request to one unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// FC1 (coils, as 0/1 words), FC3 (holding) or FC4 (input): `count` words from `addr`.
    Read { table: Table, addr: u16, count: u16 },
    /// FC6, write single register.
    WriteSingle { addr: u16, value: u16 },
    /// FC16, write multiple registers: a multi-word value is always written in one request.
    WriteMultiple { addr: u16, values: Vec<u16> },
    /// FC5, write single coil.
    WriteCoil { addr: u16, on: bool },
}

impl Request {
    /// The Modbus function code.
    pub fn function_code(&self) -> u8 {
        match self {
            Request::Read {
                table: Table::Coil, ..
            } => 0x01,
            Request::Read {
                table: Table::Holding,
                ..
            } => 0x03,
            Request::Read {
                table: Table::Input,
                ..
            } => 0x04,
            Request::WriteCoil { .. } => 0x05,
            Request::WriteSingle { .. } => 0x06,
            Request::WriteMultiple { .. } => 0x10,
        }
    }

    /// The table the request reads or writes.
    pub fn table(&self) -> Table {
        match self {
            Request::Read { table, .. } => *table,
            Request::WriteCoil { .. } => Table::Coil,
            Request::WriteSingle { .. } | Request::WriteMultiple { .. } => Table::Holding,
        }
    }

    /// The first address the request touches.
    pub fn addr(&self) -> u16 {
        match self {
            Request::Read { addr, .. }
            | Request::WriteSingle { addr, .. }
            | Request::WriteMultiple { addr, .. }
            | Request::WriteCoil { addr, .. } => *addr,
        }
    }

    /// How many registers (or coils) the request touches.
    pub fn count(&self) -> u16 {
        match self {
            Request::Read { count, .. } => *count,
            Request::WriteSingle { .. } | Request::WriteCoil { .. } => 1,
            Request::WriteMultiple { values, .. } => values.len() as u16,
        }
    }

    /// The words a write stores from [`Request::addr`] on (a coil as 0/1); `None` for a read.
    pub fn written(&self) -> Option<Vec<u16>> {
        match self {
            Request::Read { .. } => None,
            Request::WriteSingle { value, .. } => Some(vec![*value]),
            Request::WriteMultiple { values, .. } => Some(values.clone()),
            Request::WriteCoil { on, .. } => Some(vec![u16::from(*on)]),
        }
    }

    /// The words of `reg` within the answer to this read, if the read covers it.
    pub fn slice<'a>(&self, reg: &Register, words: &'a [u16]) -> Option<&'a [u16]> {
        let Request::Read { table, addr, .. } = self else {
            return None;
        };
        if reg.table != *table || reg.addr < *addr {
            return None;
        }
        let start = usize::from(reg.addr - addr);
        words.get(start..start + usize::from(reg.words()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::regmap::DataType;

    #[test]
    fn function_codes_and_tables() {
        let cases = [
            (
                Request::Read {
                    table: Table::Coil,
                    addr: 1,
                    count: 2,
                },
                0x01,
                Table::Coil,
            ),
            (
                Request::Read {
                    table: Table::Holding,
                    addr: 1,
                    count: 2,
                },
                0x03,
                Table::Holding,
            ),
            (
                Request::Read {
                    table: Table::Input,
                    addr: 1,
                    count: 2,
                },
                0x04,
                Table::Input,
            ),
            (Request::WriteCoil { addr: 1, on: true }, 0x05, Table::Coil),
            (
                Request::WriteSingle { addr: 1, value: 2 },
                0x06,
                Table::Holding,
            ),
            (
                Request::WriteMultiple {
                    addr: 1,
                    values: vec![2, 3],
                },
                0x10,
                Table::Holding,
            ),
        ];
        for (req, fc, table) in cases {
            assert_eq!(req.function_code(), fc, "{req:?}");
            assert_eq!(req.table(), table, "{req:?}");
            assert_eq!(req.addr(), 1, "{req:?}");
        }
    }

    #[test]
    fn slices_only_what_a_read_covers() {
        let read = Request::Read {
            table: Table::Input,
            addr: 10,
            count: 4,
        };
        let words = [1, 2, 3, 4];
        let f32_at_12 = Register::input(12, DataType::F32);
        assert_eq!(read.slice(&f32_at_12, &words), Some(&[3, 4][..]));
        // Past the end, before the start, another table, or a write: not covered.
        let f32_at_13 = Register::input(13, DataType::F32);
        assert_eq!(read.slice(&f32_at_13, &words), None);
        assert_eq!(read.slice(&Register::input(9, DataType::U16), &words), None);
        assert_eq!(
            read.slice(&Register::holding(12, DataType::F32), &words),
            None
        );
        let write = Request::WriteSingle { addr: 12, value: 1 };
        assert_eq!(
            write.slice(&Register::holding(12, DataType::U16), &[1]),
            None
        );
    }

    #[test]
    fn writes_say_what_they_store() {
        assert_eq!(
            Request::WriteCoil { addr: 3, on: true }.written(),
            Some(vec![1])
        );
        assert_eq!(
            Request::WriteMultiple {
                addr: 3,
                values: vec![7, 8]
            }
            .written(),
            Some(vec![7, 8])
        );
        let read = Request::Read {
            table: Table::Holding,
            addr: 3,
            count: 2,
        };
        assert_eq!(read.written(), None);
        assert_eq!(read.count(), 2);
    }
}
