//! Devices: register maps as data, one codec, capability traits, one file per model.
pub mod codec;
pub mod model;
pub mod regmap;
