//! Configuration: raw TOML (serde, `deny_unknown_fields`) checked into [`types::Config`].
//!
//! Two stages, as in ripgrep: [`raw`] is what the installer wrote, [`types`] what evsite
//! runs on; [`validate`] turns one into the other and reports every problem in one go as
//! `file:line:col: key: reason` ([`ConfigErrors`]).

pub mod error;
mod load;
pub(crate) mod locate;
mod models;
pub mod raw;
mod report;
pub mod types;
mod validate;

pub use error::{ConfigError, ConfigErrors, KeyPath, Location, Segment};
pub use load::{check, check_with_env, load, load_str, load_with_env, Checked};
pub use models::DEFAULT_MODELS_DIR;
pub use report::ENV_PREFIX;
pub use types::*;
pub use validate::files;
pub use validate::files::FileScope;
