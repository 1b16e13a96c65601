//! One request/response exchange on a tokio-modbus client context, shared by the TCP and RTU
//! link tasks: the job the handles queue to a link task (a [`Request`] for one unit), the call
//! under a timeout (tokio-modbus has none), and the mapping of its nested result onto
//! [`ModbusError`].

use std::io;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::slave::{Slave, SlaveContext};

use super::error::ModbusError;
use super::request::Request;
use crate::devices::regmap::Table;

/// The answer to one request: read values (empty for writes), and whether the link had to be
/// re-established to serve it (counted on the requesting device).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) result: Result<Vec<u16>, ModbusError>,
    pub(crate) reconnected: bool,
}

impl Outcome {
    pub(crate) fn new(result: Result<Vec<u16>, ModbusError>) -> Self {
        Self {
            result,
            reconnected: false,
        }
    }
}

/// A request queued to a link task.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) unit: u8,
    pub(crate) request: Request,
    pub(crate) timeout: Duration,
    pub(crate) reply: oneshot::Sender<Outcome>,
}

/// Queue depth per link: the control loop has a handful of requests in flight per cycle, so a
/// full queue means the link task is far behind and callers should wait, not pile up.
pub(crate) const QUEUE: usize = 64;

/// Send a request to a link task and wait for its answer.
pub(crate) async fn submit(
    tx: &mpsc::Sender<Job>,
    unit: u8,
    request: Request,
    timeout: Duration,
) -> Outcome {
    let (reply, answer) = oneshot::channel();
    let job = Job {
        unit,
        request,
        timeout,
        reply,
    };
    if tx.send(job).await.is_err() {
        return Outcome::new(Err(ModbusError::Link("link task stopped".into())));
    }
    answer
        .await
        .unwrap_or_else(|_| Outcome::new(Err(ModbusError::Link("link task stopped".into()))))
}

/// Run one request on `ctx` for `unit`, bounded by `timeout`.
pub(crate) async fn execute(
    ctx: &mut Context,
    unit: u8,
    request: &Request,
    timeout: Duration,
) -> Result<Vec<u16>, ModbusError> {
    ctx.set_slave(Slave(unit));
    let call = async {
        match request {
            Request::Read {
                table: Table::Holding,
                addr,
                count,
            } => ctx.read_holding_registers(*addr, *count).await,
            Request::Read {
                table: Table::Input,
                addr,
                count,
            } => ctx.read_input_registers(*addr, *count).await,
            Request::Read {
                table: Table::Coil,
                addr,
                count,
            } => ctx
                .read_coils(*addr, *count)
                .await
                .map(|r| r.map(|bits| bits.into_iter().map(u16::from).collect())),
            Request::WriteSingle { addr, value } => ctx
                .write_single_register(*addr, *value)
                .await
                .map(|r| r.map(|()| Vec::new())),
            Request::WriteMultiple { addr, values } => ctx
                .write_multiple_registers(*addr, values)
                .await
                .map(|r| r.map(|()| Vec::new())),
            Request::WriteCoil { addr, on } => ctx
                .write_single_coil(*addr, *on)
                .await
                .map(|r| r.map(|()| Vec::new())),
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_elapsed) => Err(ModbusError::Timeout(timeout)),
        Ok(result) => map_result(result),
    }
}

/// The exact mapping of tokio-modbus's nested result: the inner error is the device's
/// exception, the outer one is either an undecodable frame or a broken link.
pub(crate) fn map_result<T>(result: tokio_modbus::Result<T>) -> Result<T, ModbusError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(code)) => Err(ModbusError::Exception { code: code.into() }),
        Err(tokio_modbus::Error::Transport(err)) if err.kind() == io::ErrorKind::InvalidData => {
            Err(ModbusError::BadFrame(err.to_string()))
        }
        Err(tokio_modbus::Error::Transport(err)) => Err(link_error(&err)),
        Err(tokio_modbus::Error::Protocol(err)) => Err(ModbusError::BadFrame(err.to_string())),
    }
}

/// A transport error as a link error; a bare "success" errno (tokio-modbus reports a stream
/// that ended with the last OS error) is spelled out so the log says what happened.
pub(crate) fn link_error(err: &io::Error) -> ModbusError {
    if err.raw_os_error() == Some(0) {
        ModbusError::Link("connection closed by peer".into())
    } else {
        ModbusError::Link(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use tokio_modbus::{ExceptionCode, ProtocolError};

    use super::*;

    #[test]
    fn maps_tokio_modbus_results_exactly() {
        assert_eq!(map_result::<u8>(Ok(Ok(7))), Ok(7));
        assert_eq!(
            map_result::<u8>(Ok(Err(ExceptionCode::IllegalDataAddress))),
            Err(ModbusError::Exception { code: 2 })
        );
        let crc = io::Error::new(io::ErrorKind::InvalidData, "Invalid CRC");
        assert!(matches!(
            map_result::<u8>(Err(crc.into())),
            Err(ModbusError::BadFrame(_))
        ));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(
            map_result::<u8>(Err(reset.into())),
            Err(ModbusError::Link(_))
        ));
        let closed = io::Error::from_raw_os_error(0);
        assert_eq!(
            map_result::<u8>(Err(closed.into())),
            Err(ModbusError::Link("connection closed by peer".into()))
        );
        let mismatch = ProtocolError::FunctionCodeMismatch {
            request: tokio_modbus::FunctionCode::ReadHoldingRegisters,
            result: Err(tokio_modbus::ExceptionResponse {
                function: tokio_modbus::FunctionCode::ReadCoils,
                exception: ExceptionCode::IllegalFunction,
            }),
        };
        assert!(matches!(
            map_result::<u8>(Err(mismatch.into())),
            Err(ModbusError::BadFrame(_))
        ));
    }
}
