//! Devices: register maps as data, one codec, capability traits, one file per model.
//!
//! Each model is a TOML file (`file` reads it): the built-in ones are `models/*.toml`,
//! embedded by the build script (`BUILTIN_FILES`), so adding a model is adding its file;
//! installers add their own in a models directory. `registry` finds them by name; `driver`
//! implements the capability traits of `traits` for any model from its spec. The Rust data in
//! `meters/` and `chargers/` (one `SPEC` each, `MODELS`) is the golden reference the files
//! are tested against, compiled for tests only.
#[cfg(test)]
mod checks;
pub mod codec;
pub mod describe;
pub mod docs;
pub mod driver;
pub mod error;
pub mod file;
#[cfg(test)]
mod golden;
pub mod model;
pub mod plan;
pub mod registry;
pub mod regmap;
pub mod state;
pub mod traits;
pub mod write;

// `BUILTIN_FILES`, and for tests `pub mod meters`, `pub mod chargers` and `MODELS`, from
// build.rs.
include!(concat!(env!("OUT_DIR"), "/device_models.rs"));

pub use driver::ModbusDevice;
pub use error::DeviceError;
pub use plan::plan_reads;
pub use state::{decode_state, encode_state};
pub use traits::Snapshot;
pub use write::encode_write;
