//! What the integration tests share: real daemons, brokers, HTTP clients, scenarios and
//! prepared databases.

pub mod corrupt;
pub mod daemon;
pub mod db;
pub mod http;
pub mod mosquitto;
pub mod scenario;
pub mod schema1;
pub mod schemas;
