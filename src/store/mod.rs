//! The local database (sled): sessions, samples, alerts and the outbox, flushed before anything
//! counts as stored.
//!
//! Layout: `schema` (opening, schema version, migration, recovery of an unreadable database),
//! `keys` (byte layouts), `sessions` (session, sample and alert writes and queries), `outbox`
//! (the gap-free message queue for the sync), `links` (Modbus request counts per charger
//! and hour, for station health), `retention` (pruning and the size cap),
//! `commands` (cloud command replies, profiles and limits), `readonly` (opening an existing
//! database for the history commands), `identities` (forgetting whose a session was).

pub mod auth_cache;
pub mod commands;
mod demand;
mod error;
pub mod identities;
mod keys;
mod links;
pub mod outbox;
mod readonly;
pub mod retention;
mod salt;
pub mod schema;
mod session_row;
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
/// How long a trial open may take before the database is opened without one.
const TRIAL_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

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
        Self::from_db(schema::open_db(path.as_ref(), None)?)
    }

    /// As [`Store::open`], for a process that cannot survive a panic (the daemon aborts on
    /// one): sled panics on some corrupted files instead of returning an error, which would
    /// end the daemon at every start. So the database is first opened by `exe store-trial`
    /// in a child process; one the child dies on is moved aside like any database sled cannot
    /// read.
    pub async fn open_guarded(
        path: impl AsRef<Path>,
        exe: &Path,
    ) -> Result<(Store, OpenReport), StoreError> {
        let path = path.as_ref();
        let known_bad = match schema::run_trial(exe, path, TRIAL_WITHIN).await {
            schema::Trial::Crashed(problem) => Some(problem),
            schema::Trial::NotRun(why) => {
                tracing::warn!(%why, "database not tried in a child process first");
                None
            }
            schema::Trial::Opened | schema::Trial::Refused => None,
        };
        Self::from_db(schema::open_db(path, known_bad)?)
    }

    fn from_db((db, report): (sled::Db, OpenReport)) -> Result<(Store, OpenReport), StoreError> {
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
