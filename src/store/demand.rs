//! Each demand window's measured average (`[demand]`), keyed by its start, so the month's
//! peak survives a restart and `evsite report` and the API can show it. Flushed before it
//! counts as stored, like everything else here.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

use super::{Store, StoreError};
use crate::control::demand::WindowDemand;

fn key(start: DateTime<Utc>) -> [u8; 8] {
    start.timestamp().to_be_bytes()
}

impl Store {
    fn demand_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("demand")?)
    }

    /// Store a finished window (replacing one with the same start).
    pub async fn put_demand_window(&self, w: &WindowDemand) -> Result<(), StoreError> {
        let value = serde_json::to_vec(w).map_err(|source| StoreError::Encode {
            what: "demand window",
            source,
        })?;
        self.demand_tree()?.insert(key(w.start), value)?;
        self.flush().await
    }

    /// The windows that started in `[from, to)`, in time order. Unreadable entries are
    /// skipped (logged): a bad row must not hide the others.
    pub fn demand_windows(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WindowDemand>, StoreError> {
        let mut out = Vec::new();
        for kv in self.demand_tree()?.range(key(from)..key(to)) {
            let (_, v) = kv?;
            match serde_json::from_slice::<WindowDemand>(&v) {
                Ok(w) => out.push(w),
                Err(e) => tracing::warn!(error = %e, "unreadable demand window skipped"),
            }
        }
        Ok(out)
    }

    /// The highest window of the local month holding `at` in `tz`, if any was stored.
    pub fn month_peak(
        &self,
        at: DateTime<Utc>,
        tz: Tz,
    ) -> Result<Option<WindowDemand>, StoreError> {
        let local = at.with_timezone(&tz);
        let first = local
            .date_naive()
            .with_day(1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|n| n.and_local_timezone(tz).earliest())
            .map_or(at, |t| t.with_timezone(&Utc));
        Ok(self
            .demand_windows(first, at + chrono::Duration::days(1))?
            .into_iter()
            .max_by(|a, b| a.demand_kw.total_cmp(&b.demand_kw)))
    }
}
