//! What can go wrong talking to a device, kept apart by cause: the link, the data, or the
//! model not having the capability at all.

use super::codec::CodecError;
use crate::modbus::ModbusError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Modbus(#[from] ModbusError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The model has no such capability (e.g. no heartbeat register).
    #[error("{0} is not supported by this model")]
    Unsupported(&'static str),
    /// The device answered with its "no value" pattern.
    #[error("the device reports no value for {what}")]
    NoValue { what: &'static str },
    /// A charge state code or letter the model's table does not know.
    #[error("unknown charge state {raw}")]
    BadState { raw: String },
    /// A current limit between 0 and the model's minimum: the allocator never asks for one,
    /// so receiving it is a bug upstream, not something to round.
    #[error("{amps} A is below the model's minimum of {min_a} A (0 pauses)")]
    BelowMinimum { amps: f64, min_a: f64 },
}
