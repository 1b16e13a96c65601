//! Every limit in one place: the resolver that owns each source's state and, once per cycle,
//! resolves them into one [`CycleLimits`] the allocator, the overload checks, the base-load
//! filter, the increase gate, the explanations and the cycle record all read.
//!
//! Sources, and who sets them:
//! - the installer (the config): `grid_limit_a`, circuits, each charger's maximum and enable
//!   flag, `[[schedule]]` caps, the fail-safe current — replaced whole by a reload;
//! - the cloud (commands): a site limit with its expiry, per-charger caps and enable flags,
//!   charging profiles — kept across a reload, since the resolver holds them apart from the
//!   installer's part and a reload only ever replaces that part;
//! - the cycle's own observations, passed in to [`Limits::resolve`]: the demand window's
//!   budget, departure-plan holds, idle cars, authorisation (a charger nobody is authorised
//!   on is held at 0 A), and the mode (fail-safe, holding).
//!
//! Every source can only lower a bound, never raise it (invariant 1): a site phase never goes
//! above `grid_limit_a`, a charger never above its configured maximum, whatever a source
//! computes (NaN, infinite, negative). Pure: no clock, no I/O; the time is an argument.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::caps;
use super::demand::{per_phase_a, DemandStatus};
use super::profile::ProfileSet;
use super::safety::Mode;
use super::schedule;
use crate::config::Config;
use crate::tokens::{AuthState, AuthStatus};

pub use super::record::{LimitSource, SiteLimit};

/// A bound: a value in A (per phase), where it comes from and, when known, when it ends.
pub type Bound = SiteLimit;

/// The cloud's settings for one charger (`set_charger`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct CloudCharger {
    /// ANDs with the config's `enabled`.
    enabled: bool,
    /// A cap from the cloud, already made sane (a NaN is 0, a negative is 0); it only binds
    /// below the configured maximum.
    max_a: Option<f64>,
}

impl Default for CloudCharger {
    fn default() -> Self {
        CloudCharger {
            enabled: true,
            max_a: None,
        }
    }
}

/// What the cloud has commanded: untouched by a reload.
#[derive(Debug, Clone, Default)]
struct Commanded {
    /// A lower site limit, clamped to `[0, grid_limit_a]` when set.
    site_limit_a: Option<f64>,
    /// When the commanded site limit lapses (None: when replaced).
    site_limit_expires: Option<DateTime<Utc>>,
    profiles: ProfileSet,
    /// Per charger, in the config's order (a reload keeps the chargers and their order).
    chargers: Vec<CloudCharger>,
}

/// A departure plan's hold on a charger: 0 A until a cheaper slot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlanHold {
    /// When the plan expects to start charging, when known.
    pub until: Option<DateTime<Utc>>,
}

/// A charger held at 0 A by authorisation: nobody it may serve is there yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthHold {
    pub state: AuthState,
    /// The token presented (None: none yet).
    pub token: Option<String>,
    /// Why it was refused.
    pub refused: Option<String>,
}

impl AuthHold {
    /// The hold `status` puts on its charger (None: it may charge).
    pub fn of(status: &AuthStatus) -> Option<Self> {
        (!status.may_charge()).then(|| AuthHold {
            state: status.state,
            token: status.identity.token.clone(),
            refused: status.refused.clone(),
        })
    }
}

/// What the cycle observed of one charger, as far as its limits depend on it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChargerObs {
    /// A car is connected (profiles' `TxProfile` applies).
    pub connected: bool,
    /// The car took nothing when offered current: capped at its minimum.
    pub idle: bool,
    /// Held by its departure plan (None: not held).
    pub plan_hold: Option<PlanHold>,
    /// Held by authorisation (None: it may charge).
    pub auth_hold: Option<AuthHold>,
}

/// What one cycle passes in: the time, the mode and its observations.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleObs {
    pub now: DateTime<Utc>,
    /// The wall time is trusted (else every schedule entry counts as in force).
    pub time_trusted: bool,
    pub mode: Mode,
    /// The demand window so far (None: no `[demand]`, or not yet observed).
    pub demand: Option<DemandStatus>,
    /// Per charger, in the config's order.
    pub chargers: Vec<ChargerObs>,
}

/// A circuit's per-phase limit, with its configured id and its members.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitLimit {
    pub id: String,
    pub limit: Bound,
    /// Indexes into the config's chargers.
    pub members: Vec<usize>,
}

/// One charger's bounds this cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChargerLimits {
    pub id: String,
    /// Enabled by the config and not disabled by the cloud.
    pub enabled: bool,
    /// Who disabled it, when it is: the installer (config) or the cloud (`cloud_cap`).
    pub disabled_by: Option<LimitSource>,
    /// Its configured maximum (installer).
    pub max_a: f64,
    /// The most it may be offered in any mode: its maximum, or a lower cloud cap.
    pub ceiling: Bound,
    /// The lowest of every cap below its maximum — the idle watch, the cloud's cap, charging
    /// profiles, schedules, its departure plan — with the source that sets it (None: none).
    pub cap: Option<Bound>,
    /// What it is set to when the main meter is silent: the fail-safe current under its
    /// ceiling, or 0 when that is below its minimum.
    pub failsafe_a: f64,
    /// Held by its departure plan this cycle.
    pub plan_hold: Option<PlanHold>,
    /// Held at 0 A by authorisation this cycle: its ceiling, cap and fail-safe current are 0.
    pub auth_hold: Option<AuthHold>,
}

/// Every limit in force this cycle, each with its source: computed once per cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleLimits {
    pub at: DateTime<Utc>,
    pub mode: Mode,
    /// The per-phase site limit the allocator and the overload checks work to: the lowest of
    /// `grid_limit_a`, the cloud's limit, the site profile and the site schedule.
    pub site: Bound,
    /// The site limit lowered to the demand budget spread evenly over the phases, when lower:
    /// the limit the cycle record shows and the base-load filter works to.
    pub control: Bound,
    /// The demand budget summed over the phases, in A (None: no `[demand]`).
    pub total_a: Option<f64>,
    pub circuits: Vec<CircuitLimit>,
    pub chargers: Vec<ChargerLimits>,
}

impl CycleLimits {
    /// The allocator's circuits.
    pub fn circuit_inputs(&self) -> Vec<super::allocate::CircuitInput> {
        self.circuits
            .iter()
            .map(|c| super::allocate::CircuitInput {
                limit_a: c.limit.limit_a,
                members: c.members.clone(),
            })
            .collect()
    }

    /// The cap the allocator gets for charger `i` (None: no cap below its maximum).
    pub fn cap_a(&self, i: usize) -> Option<f64> {
        self.chargers.get(i).and_then(|c| c.cap).map(|b| b.limit_a)
    }
}

/// The resolver: every source's state, the installer's part apart from the commanded one.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The installer's part: replaced whole by [`Limits::reconfigure`].
    installer: Arc<Config>,
    /// The cloud's part: never touched by a reload.
    commanded: Commanded,
}

/// A NaN is 0, a negative is 0: a cap that makes no sense pauses rather than lifts.
fn sane(a: f64) -> f64 {
    if a.is_nan() {
        0.0
    } else {
        a.max(0.0)
    }
}

impl Limits {
    pub fn new(cfg: Arc<Config>) -> Self {
        let commanded = Commanded {
            chargers: vec![CloudCharger::default(); cfg.chargers.len()],
            ..Commanded::default()
        };
        Limits {
            installer: cfg,
            commanded,
        }
    }

    /// Take over a reloaded config: the installer's part only. Whatever the cloud commanded
    /// (its site limit and expiry, charger caps and enable flags, profiles) stays as it was,
    /// under the new installer's bounds. The caller keeps the chargers and their order.
    pub fn reconfigure(&mut self, cfg: Arc<Config>) {
        self.commanded
            .chargers
            .resize(cfg.chargers.len(), CloudCharger::default());
        self.installer = cfg;
    }

    /// Set (or clear) the cloud's site limit, lapsing at `expires_at`; it can only ever
    /// lower the installer's.
    pub fn set_site_limit(&mut self, limit_a: Option<f64>, expires_at: Option<DateTime<Utc>>) {
        let grid = self.installer.site.grid_limit_a;
        self.commanded.site_limit_a = limit_a.map(|l| l.clamp(0.0, grid));
        self.commanded.site_limit_expires = self.commanded.site_limit_a.and(expires_at);
    }

    /// The cloud's site limit and its expiry, as set (expired or not).
    pub fn commanded_site_limit(&self) -> (Option<f64>, Option<DateTime<Utc>>) {
        (
            self.commanded.site_limit_a,
            self.commanded.site_limit_expires,
        )
    }

    /// Clears the cloud's site limit once its expiry has passed; true when it did.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        if self.commanded.site_limit_expires.is_some_and(|e| now >= e) {
            self.set_site_limit(None, None);
            true
        } else {
            false
        }
    }

    /// Apply a cloud `set_charger` to charger `i`: `enabled` ANDs with the config's; a cap
    /// at or above the configured maximum is no cap, a NaN caps to 0.
    pub fn set_charger(&mut self, i: usize, enabled: Option<bool>, max_current_a: Option<f64>) {
        let Some(max) = self.installer.chargers.get(i).map(|c| c.max_current_a) else {
            return;
        };
        let Some(c) = self.commanded.chargers.get_mut(i) else {
            return;
        };
        if let Some(e) = enabled {
            c.enabled = e;
        }
        if let Some(m) = max_current_a {
            let m = sane(m);
            c.max_a = (m < max).then_some(m);
        }
    }

    /// Replace every charging profile in force.
    pub fn set_profiles(&mut self, profiles: ProfileSet) {
        self.commanded.profiles = profiles;
    }

    pub fn profiles(&self) -> &ProfileSet {
        &self.commanded.profiles
    }

    /// Charger `i` is enabled by the config and not disabled by the cloud.
    pub fn enabled(&self, i: usize) -> bool {
        let cfg = self.installer.chargers.get(i).is_some_and(|c| c.enabled);
        cfg && self.commanded.chargers.get(i).is_none_or(|c| c.enabled)
    }

    /// The most charger `i` may be offered: its configured maximum, or a lower cloud cap.
    pub fn ceiling(&self, i: usize) -> Bound {
        let max = self
            .installer
            .chargers
            .get(i)
            .map_or(0.0, |c| c.max_current_a);
        let installer = Bound {
            limit_a: max,
            source: LimitSource::Installer,
            expires_at: None,
        };
        match self.commanded.chargers.get(i).and_then(|c| c.max_a) {
            Some(m) if m < max => Bound {
                limit_a: m,
                source: LimitSource::CloudCap,
                expires_at: None,
            },
            _ => installer,
        }
    }

    /// Charger `i`'s fail-safe current: the site's under its ceiling, 0 below its minimum.
    pub fn failsafe_a(&self, i: usize) -> f64 {
        let min = self
            .installer
            .chargers
            .get(i)
            .map_or(0.0, |c| c.min_current_a);
        let f = self
            .installer
            .site
            .failsafe_current_a
            .min(self.ceiling(i).limit_a);
        if f < min {
            0.0
        } else {
            f
        }
    }

    /// The per-phase site limit in force at `now`: the lowest of the installer's
    /// `grid_limit_a`, the cloud's limit unless expired, the site's `ChargePointMax` profile
    /// and the site's schedule (every entry, when the time is not trusted).
    pub fn site(&self, now: DateTime<Utc>, time_trusted: bool) -> Bound {
        let cfg = &self.installer;
        let commanded = self
            .commanded
            .site_limit_a
            .filter(|_| self.commanded.site_limit_expires.is_none_or(|e| now < e));
        let mut limit = Bound {
            limit_a: cfg.site.grid_limit_a,
            source: LimitSource::Installer,
            expires_at: None,
        };
        // Only a strictly lower value wins, and a NaN never compares lower: a nonsensical
        // limit never raises the installer's.
        if let Some(c) = commanded.filter(|&c| c < limit.limit_a) {
            limit = Bound {
                limit_a: c,
                source: LimitSource::Command,
                expires_at: self.commanded.site_limit_expires,
            };
        }
        if let Some(p) = self
            .commanded
            .profiles
            .site_limit_a(now)
            .filter(|&p| p < limit.limit_a)
        {
            // A negative profile limit is 0 (a profile is validated before it is stored;
            // the resolver does not rely on it).
            limit = Bound {
                limit_a: p.max(0.0),
                source: LimitSource::Profile,
                expires_at: None,
            };
        }
        let sched = schedule::lowest_a(
            &cfg.schedules,
            None,
            time_trusted.then_some(now),
            cfg.site.timezone,
            cfg.site.voltage_v,
            usize::from(cfg.site.phases),
        );
        caps::lower(limit, sched, LimitSource::Schedule)
    }

    /// The cloud's cap and the charging profiles on charger `i` at `now`, as one cap.
    fn command_cap_a(&self, i: usize, now: DateTime<Utc>, connected: bool) -> Option<f64> {
        let id = &self.installer.chargers.get(i)?.id;
        let profile = self.commanded.profiles.charger_limit_a(id, now, connected);
        match (
            self.commanded.chargers.get(i).and_then(|c| c.max_a),
            profile,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every bound in force for the cycle `obs` describes.
    pub fn resolve(&self, obs: &CycleObs) -> CycleLimits {
        let cfg = &self.installer;
        let now = obs.now;
        let site = self.site(now, obs.time_trusted);
        let control = caps::lower(
            site,
            obs.demand
                .map(|d| per_phase_a(d.allowed_kw * 1000.0, cfg.site.voltage_v, cfg.site.phases)),
            LimitSource::Demand,
        );
        let total_a = obs
            .demand
            .map(|d| (d.allowed_kw * 1000.0 / cfg.site.voltage_v).max(0.0));
        let circuits = cfg
            .circuits
            .iter()
            .map(|ci| CircuitLimit {
                id: ci.id.clone(),
                limit: Bound {
                    limit_a: ci.limit_a,
                    source: LimitSource::Installer,
                    expires_at: None,
                },
                members: cfg
                    .chargers
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| ci.chargers.contains(&c.id))
                    .map(|(i, _)| i)
                    .collect(),
            })
            .collect();
        let chargers = cfg
            .chargers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let o = obs.chargers.get(i).cloned().unwrap_or_default();
                let sched = schedule::lowest_a(
                    &cfg.schedules,
                    Some(&c.id),
                    obs.time_trusted.then_some(now),
                    cfg.site.timezone,
                    cfg.site.voltage_v,
                    c.phase_map.len(),
                );
                ChargerLimits {
                    id: c.id.clone(),
                    enabled: self.enabled(i),
                    disabled_by: if !c.enabled {
                        Some(LimitSource::Installer)
                    } else if !self.enabled(i) {
                        Some(LimitSource::CloudCap)
                    } else {
                        None
                    },
                    max_a: c.max_current_a,
                    // Authorisation lowers every bound to 0 A, in every mode: the fail-safe
                    // and holding paths work to the ceiling and the fail-safe current.
                    ceiling: if o.auth_hold.is_some() {
                        Bound {
                            limit_a: 0.0,
                            source: LimitSource::Auth,
                            expires_at: None,
                        }
                    } else {
                        self.ceiling(i)
                    },
                    cap: self.charger_cap(i, c.min_current_a, now, &o, sched),
                    failsafe_a: if o.auth_hold.is_some() {
                        0.0
                    } else {
                        self.failsafe_a(i)
                    },
                    plan_hold: o.plan_hold,
                    auth_hold: o.auth_hold,
                }
            })
            .collect();
        CycleLimits {
            at: now,
            mode: obs.mode,
            site,
            control,
            total_a,
            circuits,
            chargers,
        }
    }

    /// Charger `i`'s cap: every cap is a minimum (authorisation, the idle watch, the cloud's
    /// cap and profiles, the installer's schedule, the session's plan); none can raise
    /// another. The source named is the first, in that order, that sets the value.
    fn charger_cap(
        &self,
        i: usize,
        min_a: f64,
        now: DateTime<Utc>,
        o: &ChargerObs,
        sched: Option<f64>,
    ) -> Option<Bound> {
        if o.auth_hold.is_some() {
            return Some(Bound {
                limit_a: 0.0,
                source: LimitSource::Auth,
                expires_at: None,
            });
        }
        let idle = o.idle.then_some(min_a);
        let plan = o.plan_hold.map(|_| 0.0);
        let value = caps::lowest([idle, self.command_cap_a(i, now, o.connected), sched, plan])?;
        let id = &self.installer.chargers[i].id;
        let cloud = self.commanded.chargers.get(i).and_then(|c| c.max_a);
        let profile = self
            .commanded
            .profiles
            .charger_limit_a(id, now, o.connected);
        let candidates = [
            (idle, LimitSource::Idle, None),
            (cloud, LimitSource::CloudCap, None),
            (profile, LimitSource::Profile, None),
            (sched, LimitSource::Schedule, None),
            (plan, LimitSource::Plan, o.plan_hold.and_then(|h| h.until)),
        ];
        let (source, expires_at) = candidates
            .iter()
            .find(|(a, _, _)| a.is_some_and(|a| sane(a) == value))
            .map_or((LimitSource::Profile, None), |&(_, s, e)| (s, e));
        Some(Bound {
            limit_a: value,
            source,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests;
