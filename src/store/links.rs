//! Modbus request counts per charger and UTC hour: what station health reads for a charger's
//! error rate over a report's range. The recorder adds each tally of the pipeline into its
//! hour's row, flushed. Not announced to the cloud; retention drops rows past the retention.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Store, StoreError};

/// The tree, added in schema 2 without a migration: a database without it has no counts.
pub(crate) const LINKS_TREE: &str = "link_hours";

/// One charger's requests in one UTC hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkHour {
    pub requests: u64,
    /// Sent but not answered well (as `/metrics` counts them: requests less those ok).
    pub failed: u64,
}

/// Per charger, its stored hours (each by its start) in time order.
pub type LinkHours = BTreeMap<String, Vec<(DateTime<Utc>, LinkHour)>>;

/// Key: charger id, NUL, the UTC hour since the epoch (big-endian, so hours sort in order).
fn key(charger: &str, hour: i64) -> Result<Vec<u8>, StoreError> {
    if charger.is_empty() || charger.contains('\0') {
        return Err(StoreError::Invalid {
            what: "charger id",
            detail: format!("{charger:?}"),
        });
    }
    let hour = u64::try_from(hour).map_err(|_| StoreError::Invalid {
        what: "link count hour",
        detail: hour.to_string(),
    })?;
    let mut k = Vec::with_capacity(charger.len() + 9);
    k.extend_from_slice(charger.as_bytes());
    k.push(0);
    k.extend_from_slice(&hour.to_be_bytes());
    Ok(k)
}

fn decode_key(k: &[u8]) -> Result<(String, DateTime<Utc>), StoreError> {
    let bad = || StoreError::corrupt("link count key", format!("{} bytes", k.len()));
    let split = k.len().checked_sub(9).ok_or_else(bad)?;
    if k.get(split) != Some(&0) {
        return Err(bad());
    }
    let charger = std::str::from_utf8(&k[..split]).map_err(|_| bad())?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&k[split + 1..]);
    let at = i64::try_from(u64::from_be_bytes(b))
        .ok()
        .and_then(|h| h.checked_mul(3600))
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(bad)?;
    Ok((charger.to_owned(), at))
}

fn encode(v: LinkHour) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&v.requests.to_be_bytes());
    out[8..].copy_from_slice(&v.failed.to_be_bytes());
    out
}

fn decode(raw: &[u8]) -> Result<LinkHour, StoreError> {
    let bytes: [u8; 16] = raw
        .try_into()
        .map_err(|_| StoreError::corrupt("link count", format!("{} bytes", raw.len())))?;
    let (r, f) = bytes.split_at(8);
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        u64::from_be_bytes(w)
    };
    Ok(LinkHour {
        requests: word(r),
        failed: word(f),
    })
}

impl Store {
    fn links_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(LINKS_TREE)?)
    }

    /// Adds each charger's `(id, counts)` into the row of the UTC hour `at` falls in, in one
    /// transaction, flushed before returning.
    pub async fn add_link_counts(
        &self,
        at: DateTime<Utc>,
        counts: &[(&str, LinkHour)],
    ) -> Result<(), StoreError> {
        let hour = at.timestamp().div_euclid(3600);
        let keyed = counts
            .iter()
            .map(|(c, v)| Ok((key(c, hour)?, *v)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.links_tree()?.transaction(|t| {
            for (k, add) in &keyed {
                let before = match t.get(k)? {
                    Some(raw) => decode(&raw)
                        .map_err(sled::transaction::ConflictableTransactionError::Abort)?,
                    None => LinkHour::default(),
                };
                let sum = LinkHour {
                    requests: before.requests.saturating_add(add.requests),
                    failed: before.failed.saturating_add(add.failed),
                };
                t.insert(k.as_slice(), &encode(sum))?;
            }
            Ok(())
        })?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Every stored hour, per charger, whose start lies in `[from, to)` (open ends: no
    /// bound). Reads nothing, and creates nothing, in a database without counts.
    pub fn link_hours(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<LinkHours, StoreError> {
        let mut out = LinkHours::new();
        // The read-only open must not write, and opening a missing tree creates it.
        if !self
            .db
            .tree_names()
            .iter()
            .any(|n| n == LINKS_TREE.as_bytes())
        {
            return Ok(out);
        }
        for item in self.links_tree()?.iter() {
            let (k, v) = item?;
            let (charger, at) = decode_key(&k)?;
            if from.is_some_and(|f| at < f) || to.is_some_and(|t| at >= t) {
                continue;
            }
            out.entry(charger).or_default().push((at, decode(&v)?));
        }
        Ok(out)
    }

    /// Deletes the hours that ended before `cutoff`; returns how many.
    pub(crate) fn prune_link_hours(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        if !self
            .db
            .tree_names()
            .iter()
            .any(|n| n == LINKS_TREE.as_bytes())
        {
            return Ok(0);
        }
        let tree = self.links_tree()?;
        let mut n = 0;
        for item in tree.iter() {
            let (k, _) = item?;
            let (_, at) = decode_key(&k)?;
            if at + TimeDelta::hours(1) <= cutoff {
                tree.remove(&k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_hour_within_a_charger() {
        let a = key("cp-1", 10).unwrap();
        let b = key("cp-1", 300).unwrap();
        assert!(a < b);
        let (c, at) = decode_key(&b).unwrap();
        assert_eq!(c, "cp-1");
        assert_eq!(at.timestamp(), 300 * 3600);
        assert!(key("a\0b", 1).is_err());
        let v = LinkHour {
            requests: 7,
            failed: 3,
        };
        assert_eq!(decode(&encode(v)).unwrap(), v);
    }

    /// sled drops its file lock on background threads some time after the last handle goes:
    /// wait (bounded) for the lock itself, as the next opener takes it.
    fn wait_released(path: &std::path::Path) {
        use fs2::FileExt;
        let file = std::fs::File::open(path.join("db")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while file.try_lock_exclusive().is_err() {
            assert!(std::time::Instant::now() < deadline, "sled kept its lock");
            std::thread::yield_now();
        }
        FileExt::unlock(&file).unwrap();
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn counts_add_up_per_hour_survive_a_reopen_read_only_and_expire_with_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let c = |requests, failed| LinkHour { requests, failed };
        rt.block_on(async {
            let (store, _) = Store::open(&path).unwrap();
            // No counts yet: nothing, and the read creates no tree.
            assert!(store.link_hours(None, None).unwrap().is_empty());
            assert!(!store
                .db
                .tree_names()
                .iter()
                .any(|n| n == LINKS_TREE.as_bytes()));
            let q = |s| at(s);
            store
                .add_link_counts(
                    q("2026-11-21T10:00:00Z"),
                    &[("cp-1", c(100, 2)), ("cp-2", c(90, 0))],
                )
                .await
                .unwrap();
            store
                .add_link_counts(q("2026-11-21T10:45:00Z"), &[("cp-1", c(50, 8))])
                .await
                .unwrap();
            store
                .add_link_counts(q("2026-11-21T11:00:00Z"), &[("cp-1", c(10, 1))])
                .await
                .unwrap();
        });
        // Dropped (the daemon stopped); the history commands open it read-only.
        wait_released(&path);
        let store = Store::open_existing(&path).unwrap();
        let all = store.link_hours(None, None).unwrap();
        assert_eq!(
            all["cp-1"],
            [
                (at("2026-11-21T10:00:00Z"), c(150, 10)),
                (at("2026-11-21T11:00:00Z"), c(10, 1))
            ]
        );
        assert_eq!(all["cp-2"], [(at("2026-11-21T10:00:00Z"), c(90, 0))]);
        let later = store
            .link_hours(Some(at("2026-11-21T10:30:00Z")), None)
            .unwrap();
        assert_eq!(later["cp-1"], [(at("2026-11-21T11:00:00Z"), c(10, 1))]);
        assert!(!later.contains_key("cp-2"));
        drop(store);
        wait_released(&path);
        rt.block_on(async {
            let (store, _) = Store::open(&path).unwrap();
            let r = store
                .prune(at("2026-11-22T11:30:00Z"), TimeDelta::days(1), u64::MAX)
                .await
                .unwrap();
            assert_eq!(r.link_hours, 2, "the 10:00 hours ended a day before");
            let left = store.link_hours(None, None).unwrap();
            assert_eq!(left.len(), 1);
            assert_eq!(left["cp-1"], [(at("2026-11-21T11:00:00Z"), c(10, 1))]);
        });
    }
}
