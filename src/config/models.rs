//! The device models config can name, looked up in the device registry.
//!
//! Validation goes through these two functions only, so the registry is one seam.

use crate::devices::model::ModelSpec;

/// The model called `name`, if evsite supports it.
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    all().iter().copied().find(|m| m.name == name)
}

/// Every supported model.
pub fn all() -> &'static [&'static ModelSpec] {
    // Filled by the device registry (`crate::devices::registry`).
    &[]
}
