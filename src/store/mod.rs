//! The local database (sled): sessions, samples, alerts and the outbox, flushed before anything
//! counts as stored.
//!
//! Layout: `schema` (opening, schema version, migration, recovery of an unreadable database),
//! `keys` (byte layouts), `sessions` (session, sample and alert writes and queries), `outbox`
//! (the gap-free message queue for the sync), `links` (Modbus request counts per charger
//! and hour, for station health), `retention` (pruning and the size cap),
//! `commands` (cloud command replies, profiles and limits), `readonly` (opening an existing
//! database for the history commands).

pub mod commands;
mod error;
mod keys;
mod links;
pub mod outbox;
mod readonly;
pub mod retention;
pub mod schema;
pub mod sessions;

use std::path::Path;

pub use error::StoreError;
pub use links::{LinkHour, LinkHours};
pub use outbox::{Envelope, OutboxEvent, OutboxTopic, StoredMessage, ALERT_SCHEMA, SESSION_SCHEMA};
pub use readonly::OpenExistingError;
pub use retention::PruneReport;
pub use schema::{migrate, OpenReport, SCHEMA_VERSION};
pub use sessions::SessionFilter;

/// The store handle; cheap to clone (all clones share one database).
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    sessions: sled::Tree,
    samples: sled::Tree,
    alerts: sled::Tree,
    outbox: sled::Tree,
}

impl Store {
    /// Opens (or creates) the database at `path`. A database sled cannot read is moved aside
    /// and a fresh one started (see [`OpenReport::moved_aside`]); one with a newer schema is
    /// refused.
    pub fn open(path: impl AsRef<Path>) -> Result<(Store, OpenReport), StoreError> {
        let (db, report) = schema::open_db(path.as_ref())?;
        let store = Store {
            meta: db.open_tree(schema::META_TREE)?,
            sessions: db.open_tree("sessions")?,
            samples: db.open_tree("samples")?,
            alerts: db.open_tree("alerts")?,
            outbox: db.open_tree("outbox")?,
            db,
        };
        Ok((store, report))
    }

    /// Flushes everything written so far (writes through this API already flush).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}
