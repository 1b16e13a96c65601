//! Modbus links: one shared connection per TCP endpoint, one actor per RS-485 line.
//!
//! Everything above this layer talks to a device through [`RegisterIo`]: one [`Request`] to
//! one unit, with a timeout, and a [`ModbusError`] that says what went wrong.

mod backoff;
pub mod error;
mod exchange;
pub mod link;
pub mod request;
pub mod rtu;
pub mod stats;
pub mod tcp;

use std::future::Future;

pub use error::{ErrorKind, ModbusError};
pub use link::{DeviceLink, LinkError, Links};
pub use request::Request;
pub use rtu::{RtuBus, RtuSettings};
pub use stats::{Stats, StatsSnapshot};
pub use tcp::{AsyncStream, BoxedStream, Connector, TcpConnector, TcpLink};

use crate::devices::regmap::Table;

/// Register access to one device (one unit id behind one link): one call per request, as
/// tokio-modbus's `Client::call`; the other methods are shorthands for it.
pub trait RegisterIo: Send + Sync {
    /// Send `request`: the words read (coils as 0/1), or nothing for a write.
    fn call(&self, request: Request) -> impl Future<Output = Result<Vec<u16>, ModbusError>> + Send;

    /// Read `count` registers (or coils, as 0/1 words) starting at `addr` from `table`.
    fn read(
        &self,
        table: Table,
        addr: u16,
        count: u16,
    ) -> impl Future<Output = Result<Vec<u16>, ModbusError>> + Send {
        self.call(Request::Read { table, addr, count })
    }

    /// FC6.
    fn write_single(
        &self,
        addr: u16,
        value: u16,
    ) -> impl Future<Output = Result<(), ModbusError>> + Send {
        let call = self.call(Request::WriteSingle { addr, value });
        async move { call.await.map(drop) }
    }

    /// FC16: a multi-register value is always written in one request.
    fn write_multiple(
        &self,
        addr: u16,
        values: &[u16],
    ) -> impl Future<Output = Result<(), ModbusError>> + Send {
        let values = values.to_vec();
        let call = self.call(Request::WriteMultiple { addr, values });
        async move { call.await.map(drop) }
    }

    /// FC5.
    fn write_coil(
        &self,
        addr: u16,
        on: bool,
    ) -> impl Future<Output = Result<(), ModbusError>> + Send {
        let call = self.call(Request::WriteCoil { addr, on });
        async move { call.await.map(drop) }
    }
}
