//! Removing whose a session was, keeping what it was: `evsite forget --user U` and the
//! identity retention clear a stored session's token, user, vehicle and ISO 15118 vehicle id
//! and keep its energy, cost, group (the cost centre it is billed to) and `authorized_by`, so
//! the accounts still add up. Messages already handed to the outbox are delivered as they
//! were: what the cloud holds is the cloud's to erase.

use chrono::{DateTime, Utc};
use sled::transaction::ConflictableTransactionError;

use super::session_row::StoredSession;
use super::{Store, StoreError};
use crate::sessions::machine::{RecordState, SessionRecord};

/// Whether `r` names a person or their vehicle.
pub fn names_someone(r: &SessionRecord) -> bool {
    r.identity.token.is_some()
        || r.identity.user.is_some()
        || r.identity.vehicle.is_some()
        || r.ev_id.is_some()
}

/// Clears what names a person or their vehicle on `r`; returns whether anything was there.
pub fn anonymise(r: &mut SessionRecord) -> bool {
    let had = names_someone(r);
    r.identity.token = None;
    r.identity.user = None;
    r.identity.vehicle = None;
    r.ev_id = None;
    had
}

impl Store {
    /// Removes the identity of every finished session of user `user` (flushed before
    /// returning); returns the ids of the sessions changed, in id order. A session still
    /// active is left alone (its next update would write it again): it is reported in the
    /// second list, to be forgotten once it has ended. Running it again changes nothing.
    pub async fn forget_user(&self, user: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut active = Vec::new();
        let changed = self.anonymise_where(|r| {
            let theirs = r.identity.user.as_deref() == Some(user);
            if theirs && r.state == RecordState::Active {
                active.push(r.session_id.clone());
            }
            theirs && r.state != RecordState::Active
        })?;
        self.db.flush_async().await?;
        Ok((changed, active))
    }

    /// Removes the identity of every session that ended before `cutoff` (flushed before
    /// returning); returns how many were changed.
    pub async fn expire_identities(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let changed = self.anonymise_where(|r| {
            r.state != RecordState::Active && r.ended_at.is_some_and(|e| e < cutoff)
        })?;
        if !changed.is_empty() {
            self.db.flush_async().await?;
        }
        Ok(changed.len())
    }

    /// Anonymises the sessions `pick` selects, each in its own transaction that reads the row
    /// again, so a concurrent session write is never lost.
    fn anonymise_where(
        &self,
        mut pick: impl FnMut(&SessionRecord) -> bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for item in self.sessions.iter() {
            let (_, raw) = item?;
            let stored = StoredSession::decode(&raw)?;
            if names_someone(&stored.record) && pick(&stored.record) {
                ids.push(stored.record.session_id);
            }
        }
        let mut changed = Vec::new();
        for id in ids {
            let done = self.sessions.transaction(|sessions| {
                let Some(raw) = sessions.get(id.as_bytes())? else {
                    return Ok(false);
                };
                let mut stored =
                    StoredSession::decode(&raw).map_err(ConflictableTransactionError::Abort)?;
                if stored.record.state == RecordState::Active || !anonymise(&mut stored.record) {
                    return Ok(false);
                }
                let bytes = stored
                    .encode()
                    .map_err(ConflictableTransactionError::Abort)?;
                sessions.insert(id.as_bytes(), bytes)?;
                Ok(true)
            })?;
            if done {
                changed.push(id);
            }
        }
        Ok(changed)
    }
}
