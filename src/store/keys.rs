//! Key layouts. Big-endian integers so sled's byte order is numeric order: the outbox iterates
//! by seq and a session's samples by minute.

use chrono::{DateTime, Utc};

use super::StoreError;

/// Outbox key: the seq.
pub(crate) fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub(crate) fn decode_seq(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::corrupt("outbox key", format!("{} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// A session id becomes a key prefix followed by a NUL, so it must not hold a NUL itself
/// (otherwise "a" would also match the samples of "a\0…").
pub(crate) fn check_session_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.contains('\0') {
        return Err(StoreError::Invalid {
            what: "session id",
            detail: format!("{id:?}"),
        });
    }
    Ok(())
}

/// The prefix of all sample keys of one session.
pub(crate) fn samples_prefix(session_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(session_id.len() + 9);
    key.extend_from_slice(session_id.as_bytes());
    key.push(0);
    key
}

/// Sample key: session id, NUL, the UTC minute since the epoch.
pub(crate) fn sample_key(
    session_id: &str,
    minute_start: DateTime<Utc>,
) -> Result<Vec<u8>, StoreError> {
    let minute = u64::try_from(minute_start.timestamp().div_euclid(60)).map_err(|_| {
        StoreError::Invalid {
            what: "sample minute",
            detail: minute_start.to_rfc3339(),
        }
    })?;
    let mut key = samples_prefix(session_id);
    key.extend_from_slice(&minute.to_be_bytes());
    Ok(key)
}

/// The minute of a sample key, as the start of that minute.
pub(crate) fn sample_minute(key: &[u8]) -> Result<DateTime<Utc>, StoreError> {
    let tail = key
        .len()
        .checked_sub(8)
        .and_then(|at| key.get(at..))
        .ok_or_else(|| StoreError::corrupt("sample key", format!("{} bytes", key.len())))?;
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(tail);
    let minute = i64::try_from(u64::from_be_bytes(bytes))
        .map_err(|_| StoreError::corrupt("sample key", "minute out of range"))?;
    minute
        .checked_mul(60)
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| StoreError::corrupt("sample key", "minute out of range"))
}

pub(crate) fn encode_energy(energy_wh: f64) -> [u8; 8] {
    energy_wh.to_be_bytes()
}

pub(crate) fn decode_energy(value: &[u8]) -> Result<f64, StoreError> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| StoreError::corrupt("sample value", format!("{} bytes", value.len())))?;
    Ok(f64::from_be_bytes(bytes))
}
