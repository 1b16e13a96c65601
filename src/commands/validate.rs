//! From a command body to a [`Command`] that is safe to apply: every type, range and
//! reference checked against the config and the time now. A refused command changes nothing.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::CommandError;
use super::wire;
use crate::config::Config;
use crate::control::plan::Plan;
use crate::control::profile::{ChargingProfile, Kind, Period, Purpose, Recurrency, StoredProfile};

/// Most periods one schedule may hold (OCPP's `ChargingScheduleMaxPeriods` is typically 24–48).
pub const MAX_PERIODS: usize = 48;

/// A valid command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    SetSiteLimit {
        limit_a: f64,
        expires_at: DateTime<Utc>,
    },
    SetCharger {
        charger: String,
        enabled: Option<bool>,
        max_current_a: Option<f64>,
    },
    SetProfile(StoredProfile),
    /// `set_profile` with an empty `chargingSchedulePeriod`: remove that profile.
    RemoveProfile {
        charger: Option<String>,
        id: u32,
    },
    Resync {
        from_seq: u64,
    },
    SetPlan {
        charger: String,
        plan: Option<Plan>,
    },
    /// `(year, month, kW)`; kW None: the config's target again.
    SetDemandLimit {
        year: i32,
        month: u32,
        limit_kw: Option<f64>,
    },
    /// `assign_session`: applied by [`super::assign::apply`], not through the controller.
    AssignSession(super::assign::Assignment),
    /// The cloud's answer to an authorisation request (see `commands::authorize`).
    Authorize(crate::tokens::AuthAnswer),
}

/// The furthest ahead a plan's departure may be.
pub const MAX_PLAN_AHEAD_DAYS: i64 = 7;

/// Checks the body of command `name` (without its `request_id`).
pub fn parse(
    name: &str,
    body: Map<String, Value>,
    cfg: &Config,
    now: DateTime<Utc>,
) -> Result<Command, CommandError> {
    match name {
        "set_site_limit" => site_limit(typed(body)?, cfg, now),
        "set_charger" => charger(typed(body)?, cfg),
        "set_profile" => profile(typed(body)?, cfg, now),
        "set_plan" => plan(typed(body)?, cfg, now),
        "set_demand_limit" => demand_limit(typed(body)?, cfg),
        "assign_session" => super::assign::parse(body, cfg).map(Command::AssignSession),
        "resync" => {
            let r: wire::Resync = typed(body)?;
            Ok(Command::Resync {
                from_seq: r.from_seq,
            })
        }
        other => Err(CommandError::Unknown(other.to_owned())),
    }
}

pub(super) fn typed<T: DeserializeOwned>(body: Map<String, Value>) -> Result<T, CommandError> {
    serde_json::from_value(Value::Object(body)).map_err(|e| CommandError::Malformed(e.to_string()))
}

fn time(field: &'static str, text: &str) -> Result<DateTime<Utc>, CommandError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| CommandError::invalid(field, format!("{text:?} is not an RFC 3339 time: {e}")))
}

fn site_limit(
    w: wire::SetSiteLimit,
    cfg: &Config,
    now: DateTime<Utc>,
) -> Result<Command, CommandError> {
    if !(w.limit_a.is_finite() && w.limit_a > 0.0) {
        return Err(CommandError::invalid("limit_a", "must be a number above 0"));
    }
    let grid_limit_a = cfg.site.grid_limit_a;
    if w.limit_a > grid_limit_a {
        return Err(CommandError::AboveInstallerLimit {
            limit_a: w.limit_a,
            grid_limit_a,
        });
    }
    let expires_at = time("expires_at", &w.expires_at)?;
    if expires_at <= now {
        return Err(CommandError::invalid(
            "expires_at",
            format!("{} is not in the future", w.expires_at),
        ));
    }
    Ok(Command::SetSiteLimit {
        limit_a: w.limit_a,
        expires_at,
    })
}

fn plan(w: wire::SetPlan, cfg: &Config, now: DateTime<Utc>) -> Result<Command, CommandError> {
    if !cfg.chargers.iter().any(|c| c.id == w.charger) {
        return Err(CommandError::UnknownCharger(w.charger));
    }
    let plan = match (w.energy_wh, w.depart_at) {
        (None, None) => None,
        (Some(energy_wh), Some(depart)) => {
            if !(1..=1_000_000).contains(&energy_wh) {
                return Err(CommandError::invalid(
                    "energy_wh",
                    format!("{energy_wh} Wh is outside 1–1000000 Wh"),
                ));
            }
            let depart_at = time("depart_at", &depart)?;
            if depart_at <= now {
                return Err(CommandError::invalid(
                    "depart_at",
                    format!("{depart} is not in the future"),
                ));
            }
            if depart_at - now > chrono::Duration::days(MAX_PLAN_AHEAD_DAYS) {
                return Err(CommandError::invalid(
                    "depart_at",
                    format!("{depart} is more than {MAX_PLAN_AHEAD_DAYS} days ahead"),
                ));
            }
            Some(Plan {
                energy_wh,
                depart_at,
            })
        }
        _ => {
            return Err(CommandError::invalid(
                "set_plan",
                "give energy_wh and depart_at together (both absent: the configured plan)",
            ))
        }
    };
    Ok(Command::SetPlan {
        charger: w.charger,
        plan,
    })
}

fn demand_limit(w: wire::SetDemandLimit, cfg: &Config) -> Result<Command, CommandError> {
    if cfg.demand.is_none() {
        return Err(CommandError::invalid(
            "set_demand_limit",
            "the site has no [demand] limit in its config",
        ));
    }
    let parsed = w.month.split_once('-').and_then(|(y, m)| {
        let ok = y.len() == 4 && m.len() == 2;
        let (y, m) = (y.parse::<i32>().ok()?, m.parse::<u32>().ok()?);
        (ok && (1..=12).contains(&m)).then_some((y, m))
    });
    let Some((year, month)) = parsed else {
        return Err(CommandError::invalid(
            "month",
            format!("{:?} is not a month such as \"2026-12\"", w.month),
        ));
    };
    if let Some(kw) = w.limit_kw {
        if !(kw.is_finite() && kw > 0.0 && kw <= 10_000.0) {
            return Err(CommandError::invalid(
                "limit_kw",
                format!("{kw} kW is outside (0, 10000] kW"),
            ));
        }
    }
    Ok(Command::SetDemandLimit {
        year,
        month,
        limit_kw: w.limit_kw,
    })
}

fn charger(w: wire::SetCharger, cfg: &Config) -> Result<Command, CommandError> {
    let c = cfg
        .chargers
        .iter()
        .find(|c| c.id == w.charger)
        .ok_or_else(|| CommandError::UnknownCharger(w.charger.clone()))?;
    if w.enabled.is_none() && w.max_current_a.is_none() {
        return Err(CommandError::invalid(
            "set_charger",
            "nothing to set: give enabled, max_current_a or both",
        ));
    }
    if let Some(m) = w.max_current_a {
        // 0 pauses the charger; anything between 0 and its minimum it cannot offer.
        let ok = m == 0.0 || (m >= c.min_current_a && m <= c.max_current_a);
        if !m.is_finite() || !ok {
            return Err(CommandError::invalid(
                "max_current_a",
                format!(
                    "{m} A is outside charger {}'s configured range: 0 or {} to {} A",
                    c.id, c.min_current_a, c.max_current_a
                ),
            ));
        }
    }
    Ok(Command::SetCharger {
        charger: w.charger,
        enabled: w.enabled,
        max_current_a: w.max_current_a,
    })
}

fn profile(w: wire::SetProfile, cfg: &Config, now: DateTime<Utc>) -> Result<Command, CommandError> {
    if let Some(id) = &w.charger {
        if !cfg.chargers.iter().any(|c| &c.id == id) {
            return Err(CommandError::UnknownCharger(id.clone()));
        }
    }
    let p = w.profile;
    let s = p.charging_schedule;
    if s.charging_schedule_period.is_empty() {
        return Ok(Command::RemoveProfile {
            charger: w.charger,
            id: p.charging_profile_id,
        });
    }
    let purpose = match p.charging_profile_purpose {
        wire::Purpose::ChargePointMax => Purpose::ChargePointMax,
        wire::Purpose::TxDefault => Purpose::TxDefault,
        wire::Purpose::TxProfile if w.charger.is_none() => {
            return Err(CommandError::invalid(
                "chargingProfilePurpose",
                "a TxProfile limits one charger's session: give a charger",
            ))
        }
        wire::Purpose::TxProfile => Purpose::TxProfile,
    };
    let kind = match (p.charging_profile_kind, p.recurrency_kind) {
        (wire::Kind::Relative, _) => {
            return Err(CommandError::invalid(
                "chargingProfileKind",
                "Relative is not supported (no transaction start to anchor it): use Absolute or Recurring",
            ))
        }
        (wire::Kind::Absolute, None) => Kind::Absolute,
        (wire::Kind::Absolute, Some(_)) => {
            return Err(CommandError::invalid("recurrencyKind", "only for a Recurring profile"))
        }
        (wire::Kind::Recurring, None) => {
            return Err(CommandError::invalid("recurrencyKind", "required for a Recurring profile"))
        }
        (wire::Kind::Recurring, Some(wire::Recurrency::Daily)) => Kind::Recurring(Recurrency::Daily),
        (wire::Kind::Recurring, Some(wire::Recurrency::Weekly)) => {
            Kind::Recurring(Recurrency::Weekly)
        }
    };
    let valid_from = p
        .valid_from
        .as_deref()
        .map(|t| time("validFrom", t))
        .transpose()?;
    let valid_to = p
        .valid_to
        .as_deref()
        .map(|t| time("validTo", t))
        .transpose()?;
    if let Some(to) = valid_to {
        if to <= now || valid_from.is_some_and(|from| to <= from) {
            return Err(CommandError::invalid(
                "validTo",
                "must be in the future and after validFrom",
            ));
        }
    }
    match s.charging_rate_unit.as_str() {
        "A" => {}
        "W" => {
            return Err(CommandError::invalid(
                "chargingRateUnit",
                "W is not supported: limits are per-phase currents, send them in A",
            ))
        }
        other => {
            return Err(CommandError::invalid(
                "chargingRateUnit",
                format!("{other:?}: must be \"A\""),
            ))
        }
    }
    let start = match s.start_schedule.as_deref() {
        Some(t) => time("startSchedule", t)?,
        None => {
            return Err(CommandError::invalid(
                "startSchedule",
                "required: a schedule here is anchored in time, not to a transaction",
            ))
        }
    };
    let recurrence_s = match kind {
        Kind::Recurring(r) => Some(r.period_s()),
        Kind::Absolute => None,
    };
    if let Some(d) = s.duration {
        if d == 0 || recurrence_s.is_some_and(|r| i64::from(d) > r) {
            return Err(CommandError::invalid(
                "duration",
                "must be above 0 and, when recurring, at most the recurrence period",
            ));
        }
    }
    if let Some(m) = s.min_charging_rate {
        if !(m.is_finite() && m >= 0.0) {
            return Err(CommandError::invalid(
                "minChargingRate",
                "must be a number, 0 or more",
            ));
        }
    }
    let periods = periods(
        &s,
        recurrence_s,
        w.charger.is_none() && purpose == Purpose::ChargePointMax,
        cfg,
    )?;
    Ok(Command::SetProfile(StoredProfile {
        charger: w.charger,
        profile: ChargingProfile {
            id: p.charging_profile_id,
            stack_level: p.stack_level,
            purpose,
            kind,
            valid_from,
            valid_to,
            start,
            duration_s: s.duration,
            periods,
            min_rate_a: s.min_charging_rate,
        },
    }))
}

/// The periods: the first at 0, strictly increasing, each reachable, limits in range. A site
/// cap above the installer's limit is refused, as `set_site_limit` refuses one.
fn periods(
    s: &wire::ChargingSchedule,
    recurrence_s: Option<i64>,
    site_cap: bool,
    cfg: &Config,
) -> Result<Vec<Period>, CommandError> {
    const FIELD: &str = "chargingSchedulePeriod";
    if s.charging_schedule_period.len() > MAX_PERIODS {
        return Err(CommandError::invalid(
            FIELD,
            format!("at most {MAX_PERIODS} periods"),
        ));
    }
    let grid_limit_a = cfg.site.grid_limit_a;
    let mut out: Vec<Period> = Vec::with_capacity(s.charging_schedule_period.len());
    for (i, p) in s.charging_schedule_period.iter().enumerate() {
        let start = i64::from(p.start_period);
        let problem = if i == 0 && p.start_period != 0 {
            Some("the first startPeriod must be 0".to_owned())
        } else if out
            .last()
            .is_some_and(|last| p.start_period <= last.start_s)
        {
            Some("startPeriod must increase from period to period".to_owned())
        } else if s.duration.is_some_and(|d| p.start_period >= d)
            || recurrence_s.is_some_and(|r| start >= r)
        {
            Some("startPeriod beyond the schedule's duration or recurrence".to_owned())
        } else if !(p.limit.is_finite() && p.limit >= 0.0) {
            Some("limit must be a number, 0 or more (A)".to_owned())
        } else if site_cap && p.limit > grid_limit_a {
            Some(format!(
                "limit {} A is above the installer's grid_limit_a of {grid_limit_a} A: refused",
                p.limit
            ))
        } else if p.number_phases.is_some_and(|n| !(1..=3).contains(&n)) {
            Some("numberPhases must be 1, 2 or 3".to_owned())
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(CommandError::invalid(
                FIELD,
                format!("period {i}: {reason}"),
            ));
        }
        out.push(Period {
            start_s: p.start_period,
            limit_a: p.limit,
            phases: p.number_phases,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
