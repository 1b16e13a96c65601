//! A simulated site (meter, chargers, vehicles) serving the drivers' own register maps.
//!
//! `scenario` is the file format, `vehicle` the pure charging physics, `charger` and `bank` a
//! device's registers and fallbacks, `site` the whole site stepped in time, `framing` and
//! `serve` the Modbus TCP/RTU servers, `write_config` the evsite config pointing at them.

pub mod bank;
pub mod charger;
pub mod framing;
pub mod scenario;
pub mod serve;
pub mod site;
pub mod vehicle;
pub mod write_config;

pub use scenario::{CloudSpec, FaultKind, Gateway, Scenario, ScenarioError};
pub use serve::{
    rtu_lines, serve_rtu_stream, serve_site, serve_tcp_stream, spawn_stepper, Endpoint, Link,
    RtuLine, ServedSite, Units,
};
pub use site::{
    ChargerTruth, DeviceId, DeviceInfo, SharedSite, SiteError, SiteModel, VehicleTruth, METER,
};
