//! What the daemon applies at start so a restart does not lift a cloud-imposed limit nor drop
//! a driver's plan: the stored profiles, an unexpired site limit, each configured charger's
//! cloud settings, a month's demand target and the commanded departure plans.

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
    let open = store.open_sessions()?;
    for (id, o) in store.plan_overrides()? {
        if o.plan.depart_at <= now || !cfg.chargers.iter().any(|c| c.id == id) {
            continue;
        }
        // A session still open on the charger is the plan's (it would have taken the plan
        // with it had it ended); otherwise the plan waits for the next one.
        out.push(match open.iter().find(|r| r.charger == id) {
            Some(r) => ControlCommand::RestorePlan {
                charger: id,
                plan: o.plan,
                delivered_wh: r.energy_wh as f64,
            },
            None => ControlCommand::SetPlan {
                charger: id,
                plan: Some(o.plan),
            },
        });
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
