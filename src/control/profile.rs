//! Charging profiles (OCPP 1.6 semantics, limits in amps) and the composite limit they set at
//! an instant. Pure: the caller passes the time and whether a vehicle is connected.
//!
//! Composition, as OCPP 1.6 composes a charge point's schedules:
//! - per purpose and target, among the profiles valid at the instant *and* with a period in
//!   force, the highest `stack_level` wins (a finished schedule lets the next lower one show);
//! - a charger's limit is the lower of its `ChargePointMax` and its transaction limit: its
//!   `TxProfile` while a vehicle is connected, else its own `TxDefault`, else the site's
//!   (connector 0) `TxDefault`;
//! - the site's `ChargePointMax` caps the site current per phase.
//!
//! The caller applies every limit as a cap below the installer's, never above.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which limit a profile sets (OCPP `chargingProfilePurpose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    /// A cap on the charger (or, for the site, on the site current).
    ChargePointMax,
    /// The limit of any session that has no `TxProfile`.
    TxDefault,
    /// The limit of the session in progress (here: while a vehicle is connected).
    TxProfile,
}

/// How a recurring schedule repeats: every 24 h or every 7 days from its start (absolute
/// time, as OCPP: a schedule anchored in local time moves by an hour across a DST change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recurrency {
    Daily,
    Weekly,
}

impl Recurrency {
    pub fn period_s(self) -> i64 {
        match self {
            Recurrency::Daily => 86_400,
            Recurrency::Weekly => 7 * 86_400,
        }
    }
}

/// OCPP `chargingProfileKind`, with the recurrency folded in (`Relative` is not supported:
/// there is no transaction start to anchor it to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Absolute,
    Recurring(Recurrency),
}

/// One step of a schedule: from `start_s` after the schedule's start, at most `limit_a` per
/// phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Period {
    pub start_s: u32,
    pub limit_a: f64,
    /// OCPP `numberPhases`: kept for reference, not used (a charger's wiring is in config).
    pub phases: Option<u8>,
}

/// A validated charging profile (built by the command parser).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargingProfile {
    /// OCPP `chargingProfileId`: unique on the site.
    pub id: u32,
    pub stack_level: u32,
    pub purpose: Purpose,
    pub kind: Kind,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    /// `startSchedule`: where offsets count from (of the first recurrence, if recurring).
    pub start: DateTime<Utc>,
    /// `duration`: the schedule ends this long after its start (None: the last period lasts).
    pub duration_s: Option<u32>,
    /// Sorted by `start_s`, strictly increasing, the first at 0.
    pub periods: Vec<Period>,
    /// OCPP `minChargingRate`: kept, not used (the charger's configured minimum applies).
    pub min_rate_a: Option<f64>,
}

impl ChargingProfile {
    /// The limit this profile sets at `at`, or None when it is not valid then or none of
    /// its periods is in force.
    pub fn limit_at(&self, at: DateTime<Utc>) -> Option<f64> {
        if self.valid_from.is_some_and(|from| at < from) || self.valid_to.is_some_and(|to| at >= to)
        {
            return None;
        }
        let since_ms = (at - self.start).num_milliseconds();
        let offset_ms = match self.kind {
            Kind::Absolute if since_ms < 0 => return None,
            Kind::Absolute => since_ms,
            Kind::Recurring(r) => since_ms.rem_euclid(r.period_s() * 1000),
        };
        if self
            .duration_s
            .is_some_and(|d| offset_ms >= i64::from(d) * 1000)
        {
            return None;
        }
        self.periods
            .iter()
            .rev()
            .find(|p| i64::from(p.start_s) * 1000 <= offset_ms)
            .map(|p| p.limit_a)
    }
}

/// A profile and what it applies to: a charger id, or the site (OCPP connector 0) when None.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredProfile {
    pub charger: Option<String>,
    pub profile: ChargingProfile,
}

/// Every profile installed on the site.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileSet {
    profiles: Vec<StoredProfile>,
}

impl ProfileSet {
    pub fn new(profiles: Vec<StoredProfile>) -> Self {
        ProfileSet { profiles }
    }

    pub fn profiles(&self) -> &[StoredProfile] {
        &self.profiles
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The site's `ChargePointMax` limit per phase at `at`.
    pub fn site_limit_a(&self, at: DateTime<Utc>) -> Option<f64> {
        self.winner(None, Purpose::ChargePointMax, at)
    }

    /// A charger's limit at `at`; `tx_active`: a vehicle is connected to it.
    pub fn charger_limit_a(
        &self,
        charger: &str,
        at: DateTime<Utc>,
        tx_active: bool,
    ) -> Option<f64> {
        let own = Some(charger);
        let cap = self.winner(own, Purpose::ChargePointMax, at);
        let tx = tx_active
            .then(|| self.winner(own, Purpose::TxProfile, at))
            .flatten()
            .or_else(|| self.winner(own, Purpose::TxDefault, at))
            .or_else(|| self.winner(None, Purpose::TxDefault, at));
        match (cap, tx) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The limit of the highest stack level in force for one target and purpose. Two at the
    /// same level (not stored together, but possible in a hand-built set): the lower limit.
    fn winner(&self, target: Option<&str>, purpose: Purpose, at: DateTime<Utc>) -> Option<f64> {
        let mut best: Option<(u32, f64)> = None;
        for sp in &self.profiles {
            let p = &sp.profile;
            if sp.charger.as_deref() != target || p.purpose != purpose {
                continue;
            }
            let Some(limit) = p.limit_at(at) else {
                continue;
            };
            best = match best {
                Some((level, b)) if level > p.stack_level => Some((level, b)),
                Some((level, b)) if level == p.stack_level => Some((level, b.min(limit))),
                _ => Some((p.stack_level, limit)),
            };
        }
        best.map(|(_, limit)| limit)
    }
}

#[cfg(test)]
mod tests;
