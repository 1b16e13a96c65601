//! evsite: an edge site controller for EV charging.
//!
//! Layout: `config` (schema and validation), `modbus` (links: shared TCP connections and one
//! actor per RS-485 line), `devices` (register maps as data, one generic codec, capability
//! traits), `control` (the load management loop around the pure allocator), `simulator` (a
//! simulated site serving the same register maps, for `evsite demo`, tests and `evsite-sim`),
//! `sync` (the cloud link over MQTT), `api` (the local HTTP API and status page).
#![forbid(unsafe_code)]

pub mod alerts;
pub mod anomaly;
pub mod api;
pub mod app;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod devices;
pub mod electric;
pub mod modbus;
pub mod sessions;
pub mod simulator;
pub mod site;
pub mod store;
pub mod sync;
pub mod tokens;
pub mod view;
