//! What the daemon applies at start so a restart does not lift a cloud-imposed limit nor drop
//! a driver's plan: the stored profiles, an unexpired site limit, each configured charger's
//! cloud settings, a month's demand target and the commanded departure plans.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::control::command::ControlCommand;
use crate::control::plan::Plan;
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
    out.extend(plans(store, cfg, now)?);
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

/// The departure plans to carry over a restart. A commanded plan: a session still open on its
/// charger is the plan's (it would have taken the plan with it had it ended), which goes on
/// with the energy it had; otherwise the plan waits for the next car. A session open with a
/// plan from the config goes on with what it had too, rather than starting the plan again.
fn plans(
    store: &Store,
    cfg: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<ControlCommand>, StoreError> {
    let configured = |id: &str| cfg.chargers.iter().any(|c| c.id == id);
    let open = store.open_sessions()?;
    let session = |id: &str| open.iter().find(|r| r.charger == id);
    let mut out = Vec::new();
    // Chargers whose plan a command set: the config's plan in their session gave way to it.
    let mut commanded = Vec::new();
    for (id, o) in store.plan_overrides()? {
        if o.plan.depart_at <= now || !configured(&id) {
            continue;
        }
        commanded.push(id.clone());
        out.push(match session(&id) {
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
    for r in &open {
        let Some(p) = r.plan else { continue };
        if p.depart_at <= now || !configured(&r.charger) || commanded.contains(&r.charger) {
            continue;
        }
        out.push(ControlCommand::RestorePlan {
            charger: r.charger.clone(),
            plan: Plan {
                energy_wh: p.energy_wh,
                depart_at: p.depart_at,
            },
            delivered_wh: r.energy_wh as f64,
        });
    }
    Ok(out)
}
