//! Modbus links: one shared connection per TCP endpoint, one actor per RS-485 line.
//!
//! Everything above this layer talks to a device through [`RegisterIo`]: read or write
//! registers of one unit, with a timeout, and a [`ModbusError`] that says what went wrong.

mod backoff;
pub mod error;
mod exchange;
pub mod link;
pub mod rtu;
pub mod stats;
pub mod tcp;

use std::future::Future;

pub use error::{ErrorKind, ModbusError};
pub use link::{DeviceLink, LinkError, Links};
pub use rtu::{RtuBus, RtuSettings};
pub use stats::{Stats, StatsSnapshot};
pub use tcp::{AsyncStream, BoxedStream, Connector, TcpConnector, TcpLink};

use crate::devices::regmap::Table;

/// Register access to one device (one unit id behind one link).
pub trait RegisterIo: Send + Sync {
    /// Read `count` registers (or coils, as 0/1 words) starting at `addr` from `table`.
    fn read(
        &self,
        table: Table,
        addr: u16,
        count: u16,
    ) -> impl Future<Output = Result<Vec<u16>, ModbusError>> + Send;
    /// FC6.
    fn write_single(
        &self,
        addr: u16,
        value: u16,
    ) -> impl Future<Output = Result<(), ModbusError>> + Send;
    /// FC16: a multi-register value is always written in one request.
    fn write_multiple(
        &self,
        addr: u16,
        values: &[u16],
    ) -> impl Future<Output = Result<(), ModbusError>> + Send;
    /// FC5.
    fn write_coil(
        &self,
        addr: u16,
        on: bool,
    ) -> impl Future<Output = Result<(), ModbusError>> + Send;
}
