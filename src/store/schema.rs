//! Opening the database: a schema version in `meta`, the migration hook, and recovery from a
//! database sled cannot open (moved aside, never deleted, so nothing is lost to a restart loop).

use std::path::{Path, PathBuf};

use chrono::Utc;

use super::StoreError;

/// The layout this build writes. Bump it with a step in [`migrate`] when data already stored
/// must be read differently; a tree added alongside (`link_hours`) needs none, since a
/// database without it reads as having nothing there and an older build ignores it.
pub const SCHEMA_VERSION: u32 = 2;

pub(crate) const META_TREE: &str = "meta";
pub(crate) const SCHEMA_KEY: &[u8] = b"schema_version";

/// What happened while opening, for the caller to act on (a `store_recovered` alert).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Where an unopenable database was moved before a fresh one was started.
    pub moved_aside: Option<PathBuf>,
    /// The schema version found on disk, when it was older and migrated.
    pub migrated_from: Option<u32>,
}

/// Brings a database written with schema `from` up to `to`, one version at a time. Runs
/// before anything else touches the trees.
pub fn migrate(db: &sled::Db, from: u32, to: u32) -> Result<(), StoreError> {
    for version in from..to {
        match version {
            // Version 0: the layout of version 1 before the version key was written.
            0 => {}
            // Version 1 stored outbox messages without their topic.
            1 => {
                let n = super::outbox::tag_untagged(db)?;
                tracing::info!(messages = n, "outbox messages given their topic");
            }
            _ => return Err(StoreError::NoMigration { from, to }),
        }
    }
    Ok(())
}

/// sled's page cache. Its default (1 GiB) would let a long outbox drain or a history query
/// grow the daemon towards it; a site controller has a few hundred MiB in all, and the
/// working set (open sessions, the head of the outbox) is far smaller.
pub const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// How every store is opened.
pub(crate) fn db_config(path: &Path) -> sled::Config {
    sled::Config::new().path(path).cache_capacity(CACHE_BYTES)
}

/// Opens the database at `path`, moving it aside and starting afresh when sled cannot read
/// it (an error, or a panic where panics unwind), its schema version is unreadable, or
/// `known_bad` says a trial open already failed that way.
pub(crate) fn open_db(
    path: &Path,
    known_bad: Option<String>,
) -> Result<(sled::Db, OpenReport), StoreError> {
    let mut report = OpenReport::default();
    let existed = has_data(path);
    let opened = match known_bad {
        Some(problem) if existed => Err(problem),
        _ => std::panic::catch_unwind(|| db_config(path).open())
            .map_err(|panic| format!("sled crashed reading it: {}", panic_text(&panic))),
    };
    let problem = match opened {
        Err(problem) => problem,
        Ok(opened) => match opened {
            Ok(db) => match check_schema(&db, existed) {
                Ok(migrated_from) => {
                    report.migrated_from = migrated_from;
                    return Ok((db, report));
                }
                Err(StoreError::Corrupt { what, detail }) => {
                    drop(db);
                    format!("{what}: {detail}")
                }
                Err(e) => return Err(e),
            },
            Err(e) if unreadable(&e) => e.to_string(),
            Err(e) => return Err(e.into()),
        },
    };
    let aside = move_aside(path)?;
    tracing::error!(path = %path.display(), moved_to = %aside.display(), %problem,
        "database could not be opened; moved aside, starting a fresh one");
    report.moved_aside = Some(aside);
    let db = db_config(path).open()?;
    check_schema(&db, false)?;
    Ok((db, report))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// How a trial open of the database in a child process went (see [`super::Store::open_guarded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trial {
    /// It opened, or there was nothing to open.
    Opened,
    /// sled returned an error: the real open will classify it (a lock held elsewhere is not
    /// a bad database).
    Refused,
    /// The child died opening it: sled crashed on the files.
    Crashed(String),
    /// The trial could not be run (no executable to run, or it took too long): open as
    /// usual.
    NotRun(String),
}

/// Exit code of a trial open that sled refused with an error (EX_DATAERR).
pub const TRIAL_REFUSED: i32 = 65;

/// The child's side of a trial open: opens the database at `path` and closes it again.
pub fn trial_open(path: &Path) -> Result<(), StoreError> {
    db_config(path).open()?;
    Ok(())
}

/// Runs `exe store-trial PATH` and waits up to `within` for it.
pub async fn run_trial(exe: &Path, path: &Path, within: std::time::Duration) -> Trial {
    if !has_data(path) {
        return Trial::Opened;
    }
    let child = tokio::process::Command::new(exe)
        .arg("store-trial")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Trial::NotRun(format!("{}: {e}", exe.display())),
    };
    match tokio::time::timeout(within, child.wait()).await {
        Ok(Ok(status)) if status.success() => Trial::Opened,
        Ok(Ok(status)) if status.code() == Some(TRIAL_REFUSED) => Trial::Refused,
        Ok(Ok(status)) => Trial::Crashed(format!("sled crashed reading it ({status})")),
        Ok(Err(e)) => Trial::NotRun(e.to_string()),
        Err(_) => Trial::NotRun(format!("no answer within {} s", within.as_secs())),
    }
}

/// Errors that mean the files themselves are bad. A lock held by another process, a missing
/// permission or a full disk are not: moving those aside would hide a live database.
fn unreadable(e: &sled::Error) -> bool {
    match e {
        sled::Error::Corruption { .. } | sled::Error::ReportableBug(_) => true,
        sled::Error::Unsupported(_) => true,
        sled::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
        ),
        sled::Error::CollectionNotFound(_) => false,
    }
}

/// Whether sled's data file is there and not empty: the database is not new.
fn has_data(path: &Path) -> bool {
    std::fs::metadata(path.join("db")).is_ok_and(|m| m.len() > 0)
}

/// Writes the version on a fresh database, migrates an older one, refuses a newer one.
/// Returns the version migrated from, if any.
///
/// sled 0.34 treats a damaged log as a torn write and opens what precedes the damage, often
/// nothing, without an error. The version key is the first thing ever written, so an existing
/// data file without it means the database was lost, not that it is new.
fn check_schema(db: &sled::Db, existed: bool) -> Result<Option<u32>, StoreError> {
    let meta = db.open_tree(META_TREE)?;
    let found = match meta.get(SCHEMA_KEY)? {
        None if existed => {
            return Err(StoreError::corrupt(
                "schema version",
                "missing from an existing database",
            ))
        }
        None => {
            meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            db.flush()?;
            return Ok(None);
        }
        Some(v) => {
            let bytes: [u8; 4] = v
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::corrupt("schema version", format!("{} bytes", v.len())))?;
            u32::from_be_bytes(bytes)
        }
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(None);
    }
    migrate(db, found, SCHEMA_VERSION)?;
    meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
    db.flush()?;
    tracing::info!(
        from = found,
        to = SCHEMA_VERSION,
        "database schema migrated"
    );
    Ok(Some(found))
}

/// Renames `path` to `<path>.corrupt-<UTC timestamp>`, with a counter if that name is taken.
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".to_owned());
    let base = format!("{name}.corrupt-{stamp}");
    let mut target = path.with_file_name(&base);
    let mut n = 1;
    while target.exists() {
        target = path.with_file_name(format!("{base}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &target).map_err(|source| StoreError::MoveAside {
        path: path.to_owned(),
        source,
    })?;
    Ok(target)
}
