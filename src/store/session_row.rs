//! A session's row in the `sessions` tree, shared by the session writes (`sessions`), the
//! outbox's acks (`outbox`), which mark a session synced, and retention. Below all three, so
//! that `sessions` uses `outbox` and nothing points back.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::StoreError;
use crate::sessions::machine::SessionRecord;

/// A session row: the record plus whether the cloud has its latest state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSession {
    pub record: SessionRecord,
    pub synced: bool,
    /// The seq of the latest message announcing this session; delivering it syncs the session.
    pub last_seq: Option<u64>,
}

impl StoredSession {
    pub fn decode(raw: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(raw).map_err(|e| StoreError::corrupt("session row", e))
    }

    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|source| StoreError::Encode {
            what: "session row",
            source,
        })
    }
}

/// Marks session `id` synced when `seq` is its latest message (inside the ack's transaction).
pub(crate) fn mark_if_latest(
    sessions: &TransactionalTree,
    id: &str,
    seq: u64,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let Some(raw) = sessions.get(id.as_bytes())? else {
        return Ok(());
    };
    let mut stored = StoredSession::decode(&raw).map_err(ConflictableTransactionError::Abort)?;
    if stored.last_seq == Some(seq) && !stored.synced {
        stored.synced = true;
        let bytes = stored
            .encode()
            .map_err(ConflictableTransactionError::Abort)?;
        sessions.insert(id.as_bytes(), bytes)?;
    }
    Ok(())
}
