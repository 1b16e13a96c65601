//! Alerts: what they are (`kind`: kinds, severities and the alert record), the change of a
//! condition every source reports (`signal`: [`AlertSignal`]) and the raise/clear lifecycle
//! (`book`: de-duplication and the clear hold-off). Pure: time comes in as arguments; the
//! caller stores each change, with its outbox message ([`Alert::event_type`] at
//! [`Alert::event_ts`]), in one write.
//!
//! A leaf: nothing here imports the control loop, the sessions or the store. They depend on
//! this module, never the other way round (held by the test in `leaf_tests.rs`).

pub mod book;
pub mod kind;
pub mod signal;

pub use book::{AlertBook, AlertChange, AlertPolicy, When};
pub use kind::{Alert, AlertKind, AlertState, Severity};
pub use signal::AlertSignal;

#[cfg(test)]
mod leaf_tests;
#[cfg(test)]
mod signal_tests;
