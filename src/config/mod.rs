//! Configuration: raw TOML (serde, `deny_unknown_fields`) checked into [`types::Config`].
pub mod types;
pub use types::*;
