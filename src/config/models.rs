//! The device models config can name, looked up in the device registry.
//!
//! Validation goes through these two functions only, so the registry is one seam.

use crate::devices::model::ModelSpec;
use crate::devices::registry;

/// The model called `name`, if evsite supports it.
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    registry::find(name)
}

/// Every supported model.
pub fn all() -> &'static [&'static ModelSpec] {
    registry::all()
}
