//! Encoding a write as the exact Modbus request a device expects: which function code, which
//! address, which raw words. Pure, so the driver, the tests and the simulator agree on it.

use super::codec::{encode_number, CodecError};
use super::error::DeviceError;
use super::regmap::{Register, WriteFn};
use crate::modbus::Request;

/// The request that writes the engineering `value` to `reg` with the register's [`WriteFn`].
pub fn encode_write(reg: &Register, value: f64) -> Result<Request, DeviceError> {
    let Some(write) = reg.write else {
        return Err(DeviceError::Unsupported("writing a read-only register"));
    };
    match write {
        WriteFn::Coil => Ok(Request::WriteCoil {
            addr: reg.addr,
            on: value != 0.0,
        }),
        WriteFn::Single => {
            let words = encode_number(reg, value)?;
            match words.as_slice() {
                [w] => Ok(Request::WriteSingle {
                    addr: reg.addr,
                    value: *w,
                }),
                // A multi-word value written with FC6 would be torn in two requests.
                _ => Err(CodecError::Length {
                    addr: reg.addr,
                    expected: 1,
                    got: words.len(),
                }
                .into()),
            }
        }
        WriteFn::Multiple => Ok(Request::WriteMultiple {
            addr: reg.addr,
            values: encode_number(reg, value)?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::regmap::DataType;

    #[test]
    fn fc6_single_word() {
        let r = Register::holding(5004, DataType::U16).writable(WriteFn::Single);
        assert_eq!(
            encode_write(&r, 16.0).unwrap(),
            Request::WriteSingle {
                addr: 5004,
                value: 16
            }
        );
    }

    #[test]
    fn fc16_multi_word() {
        let r = Register::holding(0x4100, DataType::U32)
            .scale(0.001)
            .writable(WriteFn::Multiple);
        assert_eq!(
            encode_write(&r, 16.0).unwrap(),
            Request::WriteMultiple {
                addr: 0x4100,
                values: vec![0x0000, 0x3E80]
            }
        );
    }

    #[test]
    fn fc5_coil() {
        let r = Register::coil(400);
        assert_eq!(
            encode_write(&r, 1.0).unwrap(),
            Request::WriteCoil {
                addr: 400,
                on: true
            }
        );
        assert_eq!(
            encode_write(&r, 0.0).unwrap(),
            Request::WriteCoil {
                addr: 400,
                on: false
            }
        );
    }

    #[test]
    fn refusals() {
        let ro = Register::holding(1, DataType::U16);
        assert!(matches!(
            encode_write(&ro, 1.0),
            Err(DeviceError::Unsupported(_))
        ));
        let torn = Register::holding(1, DataType::F32).writable(WriteFn::Single);
        assert!(matches!(
            encode_write(&torn, 1.0),
            Err(DeviceError::Codec(_))
        ));
        let small = Register::holding(1, DataType::U16).writable(WriteFn::Single);
        assert!(matches!(
            encode_write(&small, -1.0),
            Err(DeviceError::Codec(_))
        ));
    }
}
