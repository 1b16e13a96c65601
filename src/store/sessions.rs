//! Sessions, their per-minute samples and alerts: each write is one sled transaction with
//! the outbox message announcing it, flushed before the caller hears it is stored.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;
use uuid::Uuid;

use super::keys::{
    check_session_id, decode_energy, encode_energy, sample_key, sample_minute, samples_prefix,
};
use super::outbox::{append, OutboxEvent, OutboxTopic};
use super::session_row::StoredSession;
use super::{Store, StoreError};
use crate::sessions::energy::Sample;
use crate::sessions::machine::{RecordState, SessionRecord};

/// Which sessions to list. `from`/`to` bound `plugged_in_at` (`from` inclusive, `to`
/// exclusive).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFilter {
    pub charger: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl SessionFilter {
    fn matches(&self, r: &SessionRecord) -> bool {
        self.charger.as_ref().is_none_or(|c| *c == r.charger)
            && self.from.is_none_or(|from| r.plugged_in_at >= from)
            && self.to.is_none_or(|to| r.plugged_in_at < to)
    }
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

impl Store {
    /// Stores a session's record, its new (or updated) samples and, when given, the message
    /// announcing it, all in one transaction, flushed before returning. Returns the message's
    /// seq. The session counts as unsynced until that message (or a later one) is acked.
    pub async fn put_session(
        &self,
        record: &SessionRecord,
        new_samples: &[Sample],
        outbox_event: Option<OutboxEvent>,
    ) -> Result<Option<u64>, StoreError> {
        self.write_session(record, new_samples, outbox_event, Vec::new())
            .await
    }

    /// As [`Store::put_session`], for a session whose times were corrected (the clock was
    /// stepped): `samples` are all of its samples, and replace those stored, in the same
    /// transaction.
    pub async fn put_restamped_session(
        &self,
        record: &SessionRecord,
        samples: &[Sample],
        outbox_event: Option<OutboxEvent>,
    ) -> Result<Option<u64>, StoreError> {
        check_session_id(&record.session_id)?;
        let stale = self
            .samples
            .scan_prefix(samples_prefix(&record.session_id))
            .keys()
            .collect::<Result<Vec<_>, _>>()?;
        self.write_session(record, samples, outbox_event, stale)
            .await
    }

    async fn write_session(
        &self,
        record: &SessionRecord,
        new_samples: &[Sample],
        outbox_event: Option<OutboxEvent>,
        stale_samples: Vec<sled::IVec>,
    ) -> Result<Option<u64>, StoreError> {
        check_session_id(&record.session_id)?;
        let id = record.session_id.as_bytes();
        let samples = new_samples
            .iter()
            .map(|s| {
                Ok((
                    sample_key(&record.session_id, s.minute_start)?,
                    encode_energy(s.energy_wh),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Drawn outside the transaction: a retried transaction keeps the same message id.
        let msg_id = Uuid::new_v4();
        let seq = (&self.sessions, &self.samples, &self.outbox, &self.meta).transaction(
            |(sessions, samples_tree, outbox, meta)| {
                let previous = match sessions.get(id)? {
                    Some(raw) => Some(StoredSession::decode(&raw).map_err(abort)?),
                    None => None,
                };
                for key in &stale_samples {
                    samples_tree.remove(key)?;
                }
                for (key, value) in &samples {
                    samples_tree.insert(key.as_slice(), value)?;
                }
                let seq = match &outbox_event {
                    Some(event) => {
                        Some(append(meta, outbox, OutboxTopic::Sessions, msg_id, event)?)
                    }
                    None => None,
                };
                let row = StoredSession {
                    record: record.clone(),
                    synced: false,
                    last_seq: seq.or(previous.and_then(|p| p.last_seq)),
                };
                sessions.insert(id, row.encode().map_err(abort)?)?;
                Ok(seq)
            },
        )?;
        self.db.flush_async().await?;
        Ok(seq)
    }

    /// Stores an alert (any JSON-serialisable body) and, when given, its message, in one
    /// transaction, flushed before returning. Returns the message's seq.
    pub async fn put_alert<A: Serialize>(
        &self,
        alert_id: &str,
        alert: &A,
        outbox_event: Option<OutboxEvent>,
    ) -> Result<Option<u64>, StoreError> {
        let body = serde_json::to_vec(alert).map_err(|source| StoreError::Encode {
            what: "alert",
            source,
        })?;
        let msg_id = Uuid::new_v4();
        let seq =
            (&self.alerts, &self.outbox, &self.meta).transaction(|(alerts, outbox, meta)| {
                let seq = match &outbox_event {
                    Some(event) => Some(append(meta, outbox, OutboxTopic::Alerts, msg_id, event)?),
                    None => None,
                };
                alerts.insert(alert_id.as_bytes(), body.as_slice())?;
                Ok(seq)
            })?;
        self.db.flush_async().await?;
        Ok(seq)
    }

    /// One stored alert.
    pub fn alert(&self, alert_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.alerts
            .get(alert_id.as_bytes())?
            .map(|raw| serde_json::from_slice(&raw).map_err(|e| StoreError::corrupt("alert", e)))
            .transpose()
    }

    /// Every stored alert, raised or cleared (within retention), skipping rows that do not
    /// decode as alerts (logged).
    pub fn alerts(&self) -> Result<Vec<crate::alerts::Alert>, StoreError> {
        let mut out = Vec::new();
        for item in self.alerts.iter() {
            let (key, raw) = item?;
            match serde_json::from_slice::<crate::alerts::Alert>(&raw) {
                Ok(a) => out.push(a),
                Err(e) => tracing::error!(
                    alert = %String::from_utf8_lossy(&key),
                    error = %e,
                    "stored alert unreadable; skipped"
                ),
            }
        }
        Ok(out)
    }

    /// Alerts still raised, to carry their lifecycle over a restart. A row that does not
    /// decode as an alert is skipped with an error logged: it must not stop the daemon.
    pub fn active_alerts(&self) -> Result<Vec<crate::alerts::Alert>, StoreError> {
        let mut out = Vec::new();
        for item in self.alerts.iter() {
            let (key, raw) = item?;
            match serde_json::from_slice::<crate::alerts::Alert>(&raw) {
                Ok(a) if a.state == crate::alerts::AlertState::Raised => out.push(a),
                Ok(_) => {}
                Err(e) => tracing::error!(
                    alert = %String::from_utf8_lossy(&key),
                    error = %e,
                    "stored alert unreadable; skipped"
                ),
            }
        }
        Ok(out)
    }

    /// One stored session.
    pub fn session(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.stored_session(session_id)?.map(|s| s.record))
    }

    /// Whether the cloud has the session's latest state (`None`: no such session).
    pub fn is_synced(&self, session_id: &str) -> Result<Option<bool>, StoreError> {
        Ok(self.stored_session(session_id)?.map(|s| s.synced))
    }

    pub(crate) fn stored_session(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.sessions
            .get(id.as_bytes())?
            .map(|raw| StoredSession::decode(&raw))
            .transpose()
    }

    /// Sessions matching the filter, in session id order.
    pub fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.sessions.iter() {
            let (_, raw) = item?;
            let stored = StoredSession::decode(&raw)?;
            if filter.matches(&stored.record) {
                out.push(stored.record);
            }
        }
        Ok(out)
    }

    /// Sessions still active, to resume (or close) after a restart.
    pub fn open_sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        let mut all = self.sessions(&SessionFilter::default())?;
        all.retain(|r| r.state == RecordState::Active);
        Ok(all)
    }

    /// A session's samples, oldest minute first.
    pub fn samples(&self, session_id: &str) -> Result<Vec<Sample>, StoreError> {
        check_session_id(session_id)?;
        self.samples
            .scan_prefix(samples_prefix(session_id))
            .map(|item| {
                let (k, v) = item?;
                Ok(Sample {
                    minute_start: sample_minute(&k)?,
                    energy_wh: decode_energy(&v)?,
                })
            })
            .collect()
    }

    /// Stores many session records, each with the message announcing it, in one transaction
    /// and one flush: for importing a backlog and for benchmarks, where a flush per record
    /// would dominate. Returns the seqs given, in order.
    pub async fn put_sessions_batch(
        &self,
        items: &[(SessionRecord, OutboxEvent)],
    ) -> Result<Vec<u64>, StoreError> {
        for (record, _) in items {
            check_session_id(&record.session_id)?;
        }
        let ids: Vec<Uuid> = items.iter().map(|_| Uuid::new_v4()).collect();
        let seqs = (&self.sessions, &self.outbox, &self.meta).transaction(
            |(sessions, outbox, meta)| {
                let mut seqs = Vec::with_capacity(items.len());
                for ((record, event), msg_id) in items.iter().zip(&ids) {
                    let seq = append(meta, outbox, OutboxTopic::Sessions, *msg_id, event)?;
                    let row = StoredSession {
                        record: record.clone(),
                        synced: false,
                        last_seq: Some(seq),
                    };
                    let bytes = row.encode().map_err(ConflictableTransactionError::Abort)?;
                    sessions.insert(record.session_id.as_bytes(), bytes)?;
                    seqs.push(seq);
                }
                Ok(seqs)
            },
        )?;
        self.db.flush_async().await?;
        Ok(seqs)
    }
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
