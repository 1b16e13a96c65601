//! The cache of tokens the cloud accepted (`cloud` chargers): what decides, beside the local
//! token list, while the cloud is offline or silent — OCPP's authorisation cache, kept here so
//! it survives a restart. One entry per token (normalised), with when it was accepted and
//! until when it counts.
//!
//! Bounded: entries expire (the cloud's `expiry`, else `[auth] cache_days` after the answer),
//! expired entries are dropped whenever one is written, and past `[auth] cache_max_entries`
//! the entries that expire soonest make room. A refusal removes the token. Written before the
//! answer is acknowledged: the command's commit flushes it with the reply.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::tokens::normalise;

const TREE: &str = "auth_cache";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CachedToken {
    pub accepted_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Store {
    fn auth_cache_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(TREE)?)
    }

    /// Records the cloud's answer about `token` at `now`: accepted until `until`, or (None)
    /// refused. Keeps at most `max_entries`; not flushed (the caller's commit is).
    pub fn cache_answer(
        &self,
        token: &str,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        max_entries: usize,
    ) -> Result<(), StoreError> {
        let tree = self.auth_cache_tree()?;
        let key = normalise(token);
        let Some(until) = until else {
            tree.remove(key.as_bytes())?;
            return Ok(());
        };
        let value = serde_json::to_vec(&CachedToken {
            accepted_at: now,
            until,
        })
        .map_err(|source| StoreError::Encode {
            what: "cached token",
            source,
        })?;
        tree.insert(key.as_bytes(), value)?;
        // Expired or unreadable entries go; then the soonest to expire, past the bound.
        let mut live = Vec::new();
        for kv in tree.iter() {
            let (k, v) = kv?;
            match serde_json::from_slice::<CachedToken>(&v) {
                Ok(c) if c.until > now => live.push((c.until, k)),
                _ => {
                    tree.remove(k)?;
                }
            }
        }
        if live.len() > max_entries {
            live.sort();
            for (_, k) in &live[..live.len() - max_entries] {
                tree.remove(k)?;
            }
        }
        Ok(())
    }

    /// Every token the cache still accepts at `now`, with its expiry.
    pub fn cached_tokens(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, CachedToken)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.auth_cache_tree()?.iter() {
            let (k, v) = kv?;
            match serde_json::from_slice::<CachedToken>(&v) {
                Ok(c) if c.until > now => {
                    out.push((String::from_utf8_lossy(&k).into_owned(), c));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unreadable cached token skipped"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn the_cache_survives_a_reopen_expires_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = Store::open(&path).unwrap().0;
            let now = t0();
            store
                .cache_answer("cafe01", Some(now + Duration::days(30)), now, 2)
                .unwrap();
            store
                .cache_answer("OLD", Some(now + Duration::hours(1)), now, 2)
                .unwrap();
            store
                .cache_answer("BEEF", Some(now + Duration::days(2)), now, 2)
                .unwrap();
            // Over the bound of 2: the soonest to expire went.
            let left: Vec<String> = store
                .cached_tokens(now)
                .unwrap()
                .into_iter()
                .map(|(t, _)| t)
                .collect();
            assert_eq!(left, vec!["BEEF".to_string(), "CAFE01".to_string()]);
            // A refusal removes the token.
            store.cache_answer("beef", None, now, 2).unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(&path).unwrap().0;
        let cached = store.cached_tokens(t0()).unwrap();
        assert_eq!(cached.len(), 1);
        assert_eq!(cached[0].0, "CAFE01");
        assert!(store
            .cached_tokens(t0() + Duration::days(31))
            .unwrap()
            .is_empty());
    }
}
