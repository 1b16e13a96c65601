//! What the daemon applies at start so a restart does not lift a cloud-imposed limit: the
//! stored profiles, an unexpired site limit, each configured charger's cloud settings and a
//! month's demand target.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::control::command::ControlCommand;
use crate::control::profile::{ProfileSet, StoredProfile};
use crate::store::{Store, StoreError};

/// Every stored charging profile.
pub fn load_profiles(store: &Store) -> Result<Vec<StoredProfile>, StoreError> {
    store.profiles()
}

/// The changes to queue on a new controller before its first cycle: the profiles (always,
/// possibly empty), the site limit unless it expired by `now`, and the settings of chargers
/// still in `cfg` (those of removed chargers are skipped).
pub fn load_overrides(
    store: &Store,
    cfg: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<ControlCommand>, StoreError> {
    let mut out = vec![ControlCommand::SetProfiles(ProfileSet::new(load_profiles(
        store,
    )?))];
    if let Some(o) = store.site_limit_override()? {
        if o.expires_at > now && o.limit_a < cfg.site.grid_limit_a {
            out.push(ControlCommand::SetSiteLimit {
                limit_a: Some(o.limit_a),
                expires_at: Some(o.expires_at),
            });
        }
    }
    if let Some(o) = store.demand_override()? {
        // The controller applies it only within its month, and only under `[demand]`.
        out.push(ControlCommand::SetDemandLimit(Some((
            o.year, o.month, o.limit_kw,
        ))));
    }
    for (id, o) in store.charger_overrides()? {
        if !cfg.chargers.iter().any(|c| c.id == id) {
            tracing::warn!(charger = %id, "stored cloud settings for a charger no longer configured");
            continue;
        }
        out.push(ControlCommand::SetCharger {
            charger: id,
            enabled: o.enabled,
            max_current_a: o.max_current_a,
        });
    }
    Ok(out)
}
