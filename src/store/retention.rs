//! Retention and the size cap. Only samples of sessions that are synced and no longer active
//! are ever deleted, and hours of Modbus counts (kept only locally) past the retention;
//! session rows, unsynced data and the outbox are never pruned.

use chrono::{DateTime, TimeDelta, Utc};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::keys::{sample_minute, samples_prefix};
use super::session_row::StoredSession;
use super::{Store, StoreError};
use crate::sessions::machine::RecordState;

/// What a [`Store::prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Samples deleted for being older than the retention.
    pub expired: usize,
    /// Samples deleted to get under the size cap.
    pub for_size: usize,
    /// Hours of Modbus counts deleted for being older than the retention.
    pub link_hours: usize,
    /// Size on disk after pruning.
    pub size_on_disk: u64,
}

impl StoredSession {
    /// A session whose samples may go: the cloud has it, and it will not change any more.
    fn prunable(&self) -> bool {
        self.synced && self.record.state != RecordState::Active
    }
}

impl Store {
    /// Marks a session as synced, so its samples may be pruned (flushed before returning).
    /// Returns whether the session exists.
    pub async fn mark_synced(&self, session_id: &str) -> Result<bool, StoreError> {
        let found = self.sessions.transaction(|sessions| {
            let Some(raw) = sessions.get(session_id.as_bytes())? else {
                return Ok(false);
            };
            let mut stored =
                StoredSession::decode(&raw).map_err(ConflictableTransactionError::Abort)?;
            stored.synced = true;
            let bytes = stored
                .encode()
                .map_err(ConflictableTransactionError::Abort)?;
            sessions.insert(session_id.as_bytes(), bytes)?;
            Ok(true)
        })?;
        self.db.flush_async().await?;
        Ok(found)
    }

    /// The database's size on disk in bytes.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Deletes samples of synced, finished sessions older than `now - retention`; then, while
    /// the database is over `max_bytes`, the remaining samples of such sessions, oldest
    /// session first. Hours of Modbus counts that ended before `now - retention` go too.
    ///
    /// sled reclaims space lazily, so the size on disk may stay over the cap after deletions;
    /// the cap pass then removes every prunable sample, and never anything else.
    pub async fn prune(
        &self,
        now: DateTime<Utc>,
        retention: TimeDelta,
        max_bytes: u64,
    ) -> Result<PruneReport, StoreError> {
        let cutoff = now - retention;
        let mut report = PruneReport::default();
        let mut candidates = Vec::new();
        for id in self.prunable_sessions()? {
            let mut oldest_kept = None;
            let mut expired = Vec::new();
            for item in self.samples.scan_prefix(samples_prefix(&id)) {
                let (key, _) = item?;
                let minute = sample_minute(&key)?;
                if minute < cutoff {
                    expired.push(key);
                } else {
                    oldest_kept =
                        Some(oldest_kept.map_or(minute, |m: DateTime<Utc>| m.min(minute)));
                }
            }
            report.expired += self.remove_samples(&id, &expired)?;
            if let Some(oldest) = oldest_kept {
                candidates.push((oldest, id));
            }
        }
        report.link_hours = self.prune_link_hours(cutoff)?;
        self.db.flush_async().await?;
        report.size_on_disk = self.size_on_disk()?;

        candidates.sort();
        for (_, id) in candidates {
            if report.size_on_disk <= max_bytes {
                break;
            }
            let keys = self
                .samples
                .scan_prefix(samples_prefix(&id))
                .keys()
                .collect::<Result<Vec<_>, _>>()?;
            report.for_size += self.remove_samples(&id, &keys)?;
            self.db.flush_async().await?;
            report.size_on_disk = self.size_on_disk()?;
        }
        if report.expired + report.for_size + report.link_hours > 0 {
            tracing::info!(
                expired = report.expired,
                for_size = report.for_size,
                link_hours = report.link_hours,
                size_on_disk = report.size_on_disk,
                "samples pruned"
            );
        }
        Ok(report)
    }

    fn prunable_sessions(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for item in self.sessions.iter() {
            let (_, raw) = item?;
            let stored = StoredSession::decode(&raw)?;
            if stored.prunable() {
                ids.push(stored.record.session_id);
            }
        }
        Ok(ids)
    }

    /// Deletes the given sample keys of one session, re-checking in the same transaction that
    /// the session is still prunable (a write may have made it unsynced since it was listed).
    fn remove_samples(&self, id: &str, keys: &[sled::IVec]) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let removed = (&self.sessions, &self.samples).transaction(|(sessions, samples)| {
            let still = match sessions.get(id.as_bytes())? {
                Some(raw) => StoredSession::decode(&raw)
                    .map_err(ConflictableTransactionError::Abort)?
                    .prunable(),
                None => false,
            };
            if !still {
                return Ok(0);
            }
            for key in keys {
                samples.remove(key)?;
            }
            Ok(keys.len())
        })?;
        Ok(removed)
    }
}
