//! The commands of the `evsite` binary, as library code so tests can drive them.
pub mod demo;
pub mod forget;
pub mod history;
pub mod live;
pub mod logging;
pub mod models;
pub mod notify;
pub mod probe;
pub mod reload;
pub mod run;
pub mod status;
pub mod table;
