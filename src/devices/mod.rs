//! Devices: register maps as data, one codec, capability traits, one file per model.
pub mod chargers;
pub mod codec;
pub mod meters;
pub mod model;
pub mod registry;
pub mod regmap;
