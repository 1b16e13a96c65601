//! Opening an existing database for the history commands (`evsite sessions`, `evsite report`):
//! unlike [`Store::open`] it never creates a database, never moves one aside and never
//! migrates, because the database may belong to a running daemon or to a newer build.

use std::path::{Path, PathBuf};

use super::schema::{META_TREE, SCHEMA_KEY, SCHEMA_VERSION};
use super::{Store, StoreError};

/// Why an existing database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenExistingError {
    #[error("no database at {}", .0.display())]
    Missing(PathBuf),
    /// sled holds an exclusive lock on its data file for as long as a process has it open.
    #[error("the database is in use by the running evsite daemon ({}): {detail}", path.display())]
    InUse { path: PathBuf, detail: String },
    #[error("database at {}: {source}", path.display())]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
}

impl Store {
    /// Opens the database at `path` only if one exists there, touching nothing on failure:
    /// a missing database is [`OpenExistingError::Missing`], one held by another process
    /// [`OpenExistingError::InUse`], and one with a schema other than this build's, or
    /// without a schema version, an error. Nothing is written.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Store, OpenExistingError> {
        let path = path.as_ref();
        let store_err = |source: StoreError| OpenExistingError::Store {
            path: path.to_owned(),
            source,
        };
        // sled would create the directory and an empty database in it.
        let has_data = std::fs::metadata(path.join("db")).is_ok_and(|m| m.len() > 0);
        if !has_data {
            return Err(OpenExistingError::Missing(path.to_owned()));
        }
        let db = match super::schema::db_config(path).open() {
            Ok(db) => db,
            Err(e) if is_lock_error(&e) => {
                return Err(OpenExistingError::InUse {
                    path: path.to_owned(),
                    detail: e.to_string(),
                })
            }
            Err(e) => return Err(store_err(e.into())),
        };
        check_version(&db).map_err(store_err)?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| store_err(e.into()));
        Ok(Store {
            meta: tree(META_TREE)?,
            sessions: tree("sessions")?,
            samples: tree("samples")?,
            alerts: tree("alerts")?,
            outbox: tree("outbox")?,
            db,
        })
    }
}

/// sled 0.34 reports a held lock only as an `Other` I/O error with this text.
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::Other
            && io.to_string().contains("could not acquire lock"))
}

/// Reads only data this build wrote: an older schema would need a migration, which is the
/// daemon's to run; a newer one this build must not interpret.
fn check_version(db: &sled::Db) -> Result<(), StoreError> {
    let meta = db.open_tree(META_TREE)?;
    let Some(raw) = meta.get(SCHEMA_KEY)? else {
        return Err(StoreError::corrupt(
            "schema version",
            "missing from an existing database",
        ));
    };
    let bytes: [u8; 4] = raw
        .as_ref()
        .try_into()
        .map_err(|_| StoreError::corrupt("schema version", format!("{} bytes", raw.len())))?;
    let found = u32::from_be_bytes(bytes);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        return Err(StoreError::NoMigration {
            from: found,
            to: SCHEMA_VERSION,
        });
    }
    Ok(())
}
