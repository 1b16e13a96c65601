//! Dynamic load management: the pure allocator and the loop around it.
//!
//! `allocate` shares the site's spare current out among the chargers, `usage` learns what
//! each car really takes, `ramp` paces setpoint changes. All three are pure: the loop feeds
//! them readings and the time.

pub mod allocate;
pub mod ramp;
pub mod usage;

// The loop and its pure helpers: fail-safe supervision and the increase gate.
pub mod base;
pub mod caps;
pub mod charger;
pub mod command;
pub mod demand;
pub mod gate;
pub mod limits;
pub mod plan;
pub mod profile;
pub mod record;
pub mod runner;
pub mod safety;
pub mod schedule;
pub mod why;
