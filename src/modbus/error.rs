//! The four ways a Modbus request fails, kept apart because they mean different things: the
//! device answered "no" (exception), did not answer (timeout), answered garbage (bad frame), or
//! the line/connection itself is gone (link).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModbusError {
    /// The device answered with a Modbus exception code.
    #[error("modbus exception {code:#04x} ({})", exception_name(*code))]
    Exception { code: u8 },
    /// No answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// An answer that could not be decoded (CRC, length, wrong unit or function).
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// The connection or serial line is down (refused, reset, closed, unplugged).
    #[error("link down: {0}")]
    Link(String),
}

/// The standard names of Modbus exception codes.
pub fn exception_name(code: u8) -> &'static str {
    match code {
        0x01 => "illegal function",
        0x02 => "illegal data address",
        0x03 => "illegal data value",
        0x04 => "server device failure",
        0x05 => "acknowledge",
        0x06 => "server device busy",
        0x08 => "memory parity error",
        0x0A => "gateway path unavailable",
        0x0B => "gateway target failed to respond",
        _ => "unknown exception",
    }
}

/// Which kind of failure, for counters and "log once" bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Exception,
    Timeout,
    BadFrame,
    Link,
}

impl ModbusError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ModbusError::Exception { .. } => ErrorKind::Exception,
            ModbusError::Timeout(_) => ErrorKind::Timeout,
            ModbusError::BadFrame(_) => ErrorKind::BadFrame,
            ModbusError::Link(_) => ErrorKind::Link,
        }
    }
}
