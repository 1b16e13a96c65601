//! What the model files' tests share: recorded words through the model's own decoding, and
//! the request a write puts on the wire, each in one line so a model's test reads as its
//! table of facts.

use crate::devices::codec::decode_number;
use crate::devices::model::{ChargeState, StateSpec};
use crate::devices::regmap::Register;
use crate::devices::state::decode_state;
use crate::devices::write::encode_write;
use crate::modbus::Request;

/// `words` as the number `reg` holds (None for the model's "no value").
pub fn number(reg: Option<Register>, words: &[u16]) -> Option<f64> {
    let reg = reg.expect("the model has this register");
    decode_number(&reg, words).expect("the words decode")
}

/// `words`, read from a state held in one register, as the charge state.
pub fn charge_state(spec: &StateSpec, words: &[u16]) -> ChargeState {
    decode_state(spec, &[words]).expect("a known state")
}

/// The request that writes `value` to `reg`.
pub fn write(reg: &Register, value: f64) -> Request {
    encode_write(reg, value).expect("the register is writable")
}

/// Function 6: one register.
pub fn single(addr: u16, value: u16) -> Request {
    Request::WriteSingle { addr, value }
}

/// Function 16: registers from `addr`.
pub fn multiple(addr: u16, values: &[u16]) -> Request {
    Request::WriteMultiple {
        addr,
        values: values.to_vec(),
    }
}
