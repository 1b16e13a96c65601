//! Alerts: what they are (`kind`: kinds, severities and the alert record) and their
//! raise/clear lifecycle (`book`: de-duplication and the clear hold-off). Pure: time comes in
//! as arguments; the caller stores each change with [`crate::store::Store::put_alert`] and
//! hands [`Alert::outbox_event`] to the outbox in the same write.

pub mod book;
pub mod kind;

pub use book::{AlertBook, AlertChange, AlertPolicy, When};
pub use kind::{Alert, AlertKind, AlertState, Severity};
