//! Devices: register maps as data, one codec, capability traits, one file per model.
//!
//! `meters/` and `chargers/` hold one `SPEC` per model, one file each; the build script
//! declares a module for every file there and lists them (`MODELS`), so adding a model is
//! adding its file. `registry` finds them by name; `driver` implements the capability traits
//! of `traits` for any model from its spec.
#[cfg(test)]
mod checks;
pub mod codec;
pub mod describe;
pub mod docs;
pub mod driver;
pub mod error;
pub mod model;
pub mod plan;
pub mod registry;
pub mod regmap;
pub mod state;
pub mod traits;
pub mod write;

// `pub mod meters`, `pub mod chargers` and `MODELS`, from build.rs.
include!(concat!(env!("OUT_DIR"), "/device_models.rs"));

pub use driver::ModbusDevice;
pub use error::DeviceError;
pub use plan::plan_reads;
pub use state::{decode_state, encode_state};
pub use traits::Snapshot;
pub use write::encode_write;
