//! A device model's registers as data: where a value lives, how it is encoded and scaled.
//!
//! The drivers read these tables through [`crate::devices::codec`], and the simulator serves
//! the very same tables, so the two cannot drift apart.

/// Which Modbus object table a register lives in, and so which function codes reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Read with FC3; written with FC6 or FC16.
    Holding,
    /// Read with FC4; read-only.
    Input,
    /// Read with FC1; written with FC5.
    Coil,
}

/// How a multi-word value is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WordOrder {
    /// Most significant word first (Modbus "big endian").
    MswFirst,
    /// Least significant word first ("LSW-first", "word swapped").
    LswFirst,
}

/// The wire type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// One ASCII character in the high byte of one register.
    AsciiHigh,
    /// One ASCII character in the low byte of one register.
    AsciiLow,
    /// An ASCII string of this many registers, two characters each, high byte first,
    /// NUL-padded.
    Ascii(u8),
}

impl DataType {
    /// Number of 16-bit registers the value occupies.
    pub const fn words(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::AsciiHigh | DataType::AsciiLow => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
            DataType::Ascii(n) => n as u16,
        }
    }
}

/// How a value is written, when it is writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteFn {
    /// FC6, write single register (only for one-word values).
    Single,
    /// FC16, write multiple registers (a multi-word value is always written in one request).
    Multiple,
    /// FC5, write single coil.
    Coil,
}

/// One value in a device's register map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Register {
    /// 0-based address as sent on the wire.
    pub addr: u16,
    pub table: Table,
    pub dtype: DataType,
    pub order: WordOrder,
    /// Engineering value = raw × `scale` (e.g. 0.001 for mA → A, 100.0 for 0.1 kWh → Wh).
    pub scale: f64,
    /// Raw patterns that mean "no value" (e.g. all bits set on ABB meters).
    pub no_value: NoValue,
    /// How the value is written, if it is writable.
    pub write: Option<WriteFn>,
}

/// Raw patterns a device uses to say it has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoValue {
    None,
    /// All bits set (0xFFFF…), as ABB B23 and Bender's power register report.
    AllOnes,
    /// All bits set, or the largest positive signed value (0x7FFF…).
    AllOnesOrSignedMax,
}

impl Register {
    /// A read-only holding register, big-endian words, scale 1.
    pub const fn holding(addr: u16, dtype: DataType) -> Self {
        Register {
            addr,
            table: Table::Holding,
            dtype,
            order: WordOrder::MswFirst,
            scale: 1.0,
            no_value: NoValue::None,
            write: None,
        }
    }

    /// A read-only input register, big-endian words, scale 1.
    pub const fn input(addr: u16, dtype: DataType) -> Self {
        Register {
            table: Table::Input,
            ..Register::holding(addr, dtype)
        }
    }

    /// A coil (one bit).
    pub const fn coil(addr: u16) -> Self {
        Register {
            table: Table::Coil,
            write: Some(WriteFn::Coil),
            ..Register::holding(addr, DataType::U16)
        }
    }

    pub const fn scale(self, scale: f64) -> Self {
        Register { scale, ..self }
    }

    pub const fn lsw_first(self) -> Self {
        Register {
            order: WordOrder::LswFirst,
            ..self
        }
    }

    pub const fn no_value(self, no_value: NoValue) -> Self {
        Register { no_value, ..self }
    }

    pub const fn writable(self, write: WriteFn) -> Self {
        Register {
            write: Some(write),
            ..self
        }
    }

    /// Number of 16-bit registers (or coils) to read.
    pub const fn words(&self) -> u16 {
        match self.table {
            Table::Coil => 1,
            _ => self.dtype.words(),
        }
    }
}
