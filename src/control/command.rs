//! Changes to a running controller from outside its loop (cloud commands, a config reload).
//! They queue on a channel and are applied at the start of the next cycle, so a change never
//! lands halfway through one and a paused-clock simulation stays deterministic.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::plan::Plan;
use super::profile::ProfileSet;
use crate::config::Config;

/// One change to apply. Every variant keeps the installer's `grid_limit_a` and each
/// charger's `max_current_a` as hard ceilings: nothing here can raise them.
#[derive(Debug)]
pub enum ControlCommand {
    /// A lower site limit (None: back to the installer's `grid_limit_a`), in force until
    /// `expires_at` (None: until replaced).
    SetSiteLimit {
        limit_a: Option<f64>,
        expires_at: Option<DateTime<Utc>>,
    },
    /// Per-charger limits from the cloud; a None field leaves that setting as it is.
    /// `enabled` ANDs with the config's; `max_current_a` caps below the configured maximum
    /// (the configured maximum or more: no cap from the cloud).
    SetCharger {
        charger: String,
        enabled: Option<bool>,
        max_current_a: Option<f64>,
    },
    /// Replaces every charging profile in force.
    SetProfiles(ProfileSet),
    /// A departure plan for a charger's session in progress, or its next (None: the
    /// config's plan, if any).
    SetPlan { charger: String, plan: Option<Plan> },
    /// A plan commanded for a session that was in progress when evsite last stopped, with
    /// the session's energy so far: applied if the first reading still finds a car plugged
    /// in, dropped if it left meanwhile (from the store at start).
    RestorePlan {
        charger: String,
        plan: Plan,
        delivered_wh: f64,
    },
    /// The demand target for one local month, `(year, month, kW)` (None: the config's).
    /// The per-phase limits still apply under it.
    SetDemandLimit(Option<(i32, u32, f64)>),
    /// The month's peak so far, from the store at start.
    RestoreMonthPeak { at: DateTime<Utc>, peak_kw: f64 },
    /// The cloud's answer to an authorisation request (`P/cmd/authorize`), already in the
    /// store's cache; `expires_at` is when the cache stops accepting the token.
    AuthAnswer(crate::tokens::AuthAnswer),
    /// The cache of tokens the cloud accepted, from the store at start.
    RestoreAuthCache(Vec<(String, DateTime<Utc>)>),
    /// A reloaded config's live settings (limits, tuning, charger limits, priorities, phase
    /// maps, circuits). Its devices must be the running ones; a config that changes them is
    /// refused (they are only connected at start). Only the installer's own file can change
    /// the hard ceilings.
    Reconfigure(Arc<Config>),
}
