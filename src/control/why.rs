//! Why a charger has the current it has: the one constraint that binds it this cycle, and
//! where that constraint comes from ("limited by circuit hall-a on L2 (100 A, installer)").
//! Every cycle record carries one per charger; the API, the live page, `evsite status`, the
//! demo and the telemetry show it.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::allocate::{AllocInput, Constraint, Decision, Reason, Slack};
use super::limits::{AuthHold, Bound, ChargerLimits, CycleLimits};
use super::record::LimitSource;
use super::safety::Mode;
use crate::tokens::AuthState;

/// What binds a charger this cycle, as a stable code (the compact form in telemetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhyCode {
    /// Not known yet (no cycle has decided it).
    #[default]
    Unknown,
    /// Charging, with nothing named as binding it.
    Charging,
    /// Offered its own maximum.
    Max,
    /// Held by the site's per-phase limit.
    Site,
    /// Held by a circuit's per-phase limit.
    Circuit,
    /// Held by the demand window's budget.
    Demand,
    /// Capped below its maximum (a cloud cap, a profile, a schedule, an idle car).
    Cap,
    /// Held at 0 A by its departure plan until a cheaper slot.
    PlanHold,
    /// Held at 0 A by authorisation: waiting for a token, asking the cloud, or refused.
    Auth,
    /// Paused: its minimum does not fit in what is free.
    NoCapacity,
    /// Paused: its minimum would fit, but others of its priority hold the slots for now.
    WaitingTurn,
    /// Paused: its caps leave less than its minimum.
    Limited,
    NoCar,
    Disabled,
    Fault,
    BadPhaseMap,
    Offline,
    /// The main meter is silent: every charger at the fail-safe current.
    Failsafe,
    /// The main meter missed a read: setpoints held, only ever lowered.
    Holding,
    /// No measurement yet since start.
    Startup,
}

/// Why a charger has its current this cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Why {
    pub code: WhyCode,
    /// Where the binding limit comes from, when a limit binds.
    pub source: Option<LimitSource>,
    /// The binding constraint's name: a circuit id, a profile id (None: not named).
    pub constraint: Option<String>,
    /// The grid phase where it binds, 1-based (None: not phase-specific).
    pub phase: Option<u8>,
    /// The binding limit's value, in A per phase (None: no limit binds).
    pub limit_a: Option<f64>,
    /// When the binding limit or hold ends, when known.
    pub until: Option<DateTime<Utc>>,
    /// The same in words, for a person.
    pub text: String,
}

impl Why {
    /// The plain explanation of the allocator's reason, with no constraint named.
    pub fn from_reason(reason: Reason) -> Self {
        let (code, text) = match reason {
            Reason::Charging => (WhyCode::Charging, "charging"),
            Reason::Offline => (WhyCode::Offline, "offline: counted at its last setpoint"),
            Reason::NoCar => (WhyCode::NoCar, "paused: no car"),
            Reason::Disabled => (WhyCode::Disabled, "paused: disabled"),
            Reason::Fault => (WhyCode::Fault, "paused: the charger reports an error"),
            Reason::Limited => (
                WhyCode::Limited,
                "paused: its caps leave less than its minimum",
            ),
            Reason::BadPhaseMap => (
                WhyCode::BadPhaseMap,
                "paused: its phase map does not fit the site",
            ),
            Reason::NoCapacity => (
                WhyCode::NoCapacity,
                "paused: its minimum does not fit in what is free",
            ),
            Reason::WaitingTurn => (WhyCode::WaitingTurn, "paused: waiting for its turn"),
        };
        Why {
            code,
            text: text.to_string(),
            ..Why::default()
        }
    }
}

/// What the cycle saw of one charger, besides its limits and the allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    /// Read this cycle.
    pub online: bool,
    /// A car is connected.
    pub connected: bool,
    /// The allocator's reason (normal mode), else the last one.
    pub reason: Reason,
    /// The setpoint written (None: never written).
    pub setpoint_a: Option<f64>,
}

/// A normal cycle's allocation: its input, its decisions and every charger's slack.
pub type Allocation<'a> = (&'a AllocInput, &'a [Decision], &'a [Option<Slack>]);

/// What explaining a cycle needs beyond each charger's own part.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub limits: &'a CycleLimits,
    /// The allocation of a normal cycle: its input, decisions and every charger's slack.
    pub allocation: Option<Allocation<'a>>,
    /// The site's time zone: times are told in it, with the zone named.
    pub tz: Tz,
    /// How long the main meter has been silent (fail-safe, holding).
    pub meter_silent_s: Option<f64>,
}

/// A limit's source in words.
fn source_words(s: LimitSource) -> &'static str {
    match s {
        LimitSource::Installer => "installer",
        LimitSource::Command => "cloud",
        LimitSource::Profile => "charging profile",
        LimitSource::Schedule => "schedule",
        LimitSource::Demand => "demand budget",
        LimitSource::CloudCap => "cloud",
        LimitSource::Plan => "departure plan",
        LimitSource::Idle => "idle car",
        LimitSource::Failsafe => "fail-safe",
        LimitSource::Auth => "authorisation",
    }
}

/// A token as told to a person: its first four characters, the rest elided ("04A1…"), so a
/// card's number is not spelt out on every page and log line.
pub fn short_token(token: &str) -> String {
    let mut chars = token.chars();
    let head: String = chars.by_ref().take(4).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// A charger held by authorisation, in words.
fn auth_why(hold: &AuthHold) -> Why {
    let token = hold.token.as_deref().map(short_token);
    let text = match (hold.state, token) {
        (AuthState::Asking, Some(t)) => format!("held: asking the cloud about {t}"),
        (AuthState::Refused, Some(t)) => format!(
            "held: token {t} refused: {}",
            hold.refused.as_deref().unwrap_or("not authorised")
        ),
        _ => "held: waiting for a token".to_string(),
    };
    Why {
        code: WhyCode::Auth,
        source: Some(LimitSource::Auth),
        limit_a: Some(0.0),
        text,
        ..Why::default()
    }
}

/// `at` in the site's zone, the zone named ("18:00 CET"); another local day adds its date.
pub fn local_time(at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let l = at.with_timezone(&tz);
    if l.date_naive() == now.with_timezone(&tz).date_naive() {
        l.format("%H:%M %Z").to_string()
    } else {
        l.format("%a %d %b %H:%M %Z").to_string()
    }
}

/// Amps as a person reads them: whole amps without decimals, else one decimal.
fn amps(a: f64) -> String {
    if (a - a.round()).abs() < 0.05 {
        format!("{:.0}", a)
    } else {
        format!("{a:.1}")
    }
}

fn until_words(until: Option<DateTime<Utc>>, ctx: &Context) -> String {
    until.map_or_else(String::new, |u| {
        format!(" until {}", local_time(u, ctx.limits.at, ctx.tz))
    })
}

impl Why {
    fn bound(code: WhyCode, b: &Bound, text: String) -> Self {
        Why {
            code,
            source: Some(b.source),
            constraint: None,
            phase: None,
            limit_a: Some(b.limit_a),
            until: b.expires_at,
            text,
        }
    }
}

/// Why charger `i` has its current this cycle: the one constraint that binds it and where
/// it comes from. Pure: from the cycle's limits, its allocation and what was read. A car
/// still ramping up to what it was given is told so: the constraint binds what it is given.
pub fn explain(i: usize, seen: Seen, ctx: &Context) -> Why {
    let mut w = binding(i, seen, ctx);
    let given = ctx
        .allocation
        .filter(|_| ctx.limits.mode == Mode::Normal)
        .and_then(|(_, decisions, _)| decisions.get(i))
        .filter(|d| d.reason == Reason::Charging)
        .map(|d| d.setpoint_a);
    if let (Some(given), Some(at)) = (given, seen.setpoint_a) {
        if at < given - 1e-6 {
            w.text = format!("{}; at {} A, rising to {} A", w.text, amps(at), amps(given));
        }
    }
    w
}

/// The binding constraint of what charger `i` was given (see [`explain`]).
fn binding(i: usize, seen: Seen, ctx: &Context) -> Why {
    let Some(l) = ctx.limits.chargers.get(i) else {
        return Why::from_reason(seen.reason);
    };
    let mode = ctx.limits.mode;
    // A car no one has authorised is held in every mode, before any other limit matters.
    if let Some(hold) = l
        .auth_hold
        .as_ref()
        .filter(|_| seen.online && seen.connected)
    {
        if l.enabled {
            return auth_why(hold);
        }
    }
    if mode != Mode::Normal || ctx.allocation.is_none() {
        if !seen.online {
            return Why::from_reason(Reason::Offline);
        }
        if !seen.connected {
            return Why::from_reason(Reason::NoCar);
        }
        if !l.enabled {
            return disabled(l);
        }
        let silent = ctx
            .meter_silent_s
            .map_or_else(String::new, |s| format!(" for {s:.0} s"));
        let (code, text) = match mode {
            Mode::Holding => (
                WhyCode::Holding,
                format!(
                    "holding: main meter silent{silent}; its setpoint kept{}, only ever lowered",
                    seen.setpoint_a
                        .map_or_else(String::new, |s| format!(" at {} A", amps(s)))
                ),
            ),
            Mode::Startup => (
                WhyCode::Startup,
                format!(
                    "starting: no main meter reading yet; at the fail-safe current of {} A",
                    amps(l.failsafe_a)
                ),
            ),
            _ if l.failsafe_a > 0.0 => (
                WhyCode::Failsafe,
                format!(
                    "fail-safe: main meter silent{silent}; at the fail-safe current of {} A",
                    amps(l.failsafe_a)
                ),
            ),
            _ => (
                WhyCode::Failsafe,
                format!("fail-safe: main meter silent{silent}; paused, the fail-safe current is below its minimum"),
            ),
        };
        return Why {
            code,
            source: (mode != Mode::Holding).then_some(LimitSource::Failsafe),
            limit_a: (mode != Mode::Holding).then_some(l.failsafe_a),
            text,
            ..Why::default()
        };
    }
    let Some((input, decisions, slacks)) = ctx.allocation else {
        return Why::from_reason(seen.reason);
    };
    let (Some(d), Some(ch)) = (decisions.get(i), input.chargers.get(i)) else {
        return Why::from_reason(seen.reason);
    };
    let slack = slacks.get(i).copied().flatten();
    match d.reason {
        Reason::Limited => {
            if let Some(cap) = l.cap.filter(|c| c.limit_a < ch.min_a) {
                if cap.source == LimitSource::Plan {
                    let until = until_words(cap.expires_at, ctx);
                    return Why::bound(
                        WhyCode::PlanHold,
                        &cap,
                        format!("held by its departure plan{until} (cheaper slot)"),
                    );
                }
                let until = until_words(cap.expires_at, ctx);
                return Why::bound(
                    WhyCode::Limited,
                    &cap,
                    format!(
                        "paused: capped at {} A by the {}{until}, below its {} A minimum",
                        amps(cap.limit_a),
                        source_words(cap.source),
                        amps(ch.min_a)
                    ),
                );
            }
            Why::bound(
                WhyCode::Limited,
                &l.ceiling,
                format!(
                    "paused: its maximum of {} A ({}) is below its {} A minimum",
                    amps(l.ceiling.limit_a),
                    source_words(l.ceiling.source),
                    amps(ch.min_a)
                ),
            )
        }
        Reason::Charging => {
            let Some(s) = slack else {
                return Why::from_reason(d.reason);
            };
            let sp = d.setpoint_a;
            if sp >= s.hard_cap_a - 1e-6 {
                return match l.cap.filter(|c| c.limit_a < l.max_a) {
                    Some(cap) if cap.source == LimitSource::Idle => Why::bound(
                        WhyCode::Cap,
                        &cap,
                        format!(
                            "offered its {} A minimum: the car took nothing when offered more",
                            amps(cap.limit_a)
                        ),
                    ),
                    Some(cap) => {
                        let until = until_words(cap.expires_at, ctx);
                        Why::bound(
                            WhyCode::Cap,
                            &cap,
                            format!(
                                "capped by the {} at {} A{until}",
                                source_words(cap.source),
                                amps(cap.limit_a)
                            ),
                        )
                    }
                    None => Why::bound(
                        WhyCode::Max,
                        &l.ceiling,
                        format!(
                            "at its maximum of {} A ({})",
                            amps(l.ceiling.limit_a),
                            source_words(l.ceiling.source)
                        ),
                    ),
                };
            }
            if sp >= s.cap_a - 1e-6 {
                return Why {
                    code: WhyCode::Charging,
                    text: format!("charging: offered {} A, about what the car takes", amps(sp)),
                    ..Why::default()
                };
            }
            match s.tightest {
                Some((c, _)) => constraint_why(c, ctx, input, None),
                None => Why::from_reason(d.reason),
            }
        }
        Reason::NoCapacity => match slack.and_then(|s| s.tightest) {
            Some((c, free)) => constraint_why(c, ctx, input, Some((free.max(0.0), ch.min_a))),
            None => Why::from_reason(d.reason),
        },
        Reason::Disabled => disabled(l),
        Reason::WaitingTurn => {
            let mut w = Why::from_reason(d.reason);
            // When a car of its priority that holds a slot has held it for the rotation
            // interval: then the slots are dealt out again.
            let next = (input.rotation_interval_s > 0.0)
                .then(|| {
                    input
                        .chargers
                        .iter()
                        .zip(decisions)
                        .filter(|(o, od)| {
                            o.priority == ch.priority && od.reason == Reason::Charging
                        })
                        .filter_map(|(o, _)| o.charging_since_s)
                        .map(|t| t + input.rotation_interval_s)
                        .filter(|&t| t > input.now_s)
                        .reduce(f64::min)
                })
                .flatten();
            if let Some(t) = next {
                let at = ctx.limits.at
                    + chrono::Duration::milliseconds(((t - input.now_s) * 1000.0) as i64);
                w.until = Some(at);
                w.text = format!(
                    "paused: waiting for its turn; the next slot frees at {}",
                    local_time(at, ctx.limits.at, ctx.tz)
                );
            }
            w
        }
        _ => Why::from_reason(d.reason),
    }
}

/// A disabled charger, and by whom.
fn disabled(l: &ChargerLimits) -> Why {
    let text = match l.disabled_by {
        Some(LimitSource::Installer) => "paused: disabled in the config",
        Some(_) => "paused: disabled by the cloud",
        None => "paused: disabled",
    };
    Why {
        code: WhyCode::Disabled,
        source: l.disabled_by,
        text: text.to_string(),
        ..Why::default()
    }
}

/// A constraint of the allocation explained: what bounds it, with its name, phase, value and
/// source. `paused`: the free amps and the charger's minimum, when it got nothing.
fn constraint_why(
    c: Constraint,
    ctx: &Context,
    input: &AllocInput,
    paused: Option<(f64, f64)>,
) -> Why {
    let limits = ctx.limits;
    let (code, bound, name, phase, what) = match c {
        Constraint::Site { phase } => (
            WhyCode::Site,
            limits.site,
            None,
            Some(phase),
            "the site limit".to_string(),
        ),
        Constraint::Circuit { circuit, phase } => {
            let ci = limits.circuits.get(circuit);
            let id = ci.map_or_else(|| format!("#{}", circuit + 1), |c| c.id.clone());
            let bound = ci.map_or(
                Bound {
                    limit_a: input.circuits.get(circuit).map_or(0.0, |c| c.limit_a),
                    source: LimitSource::Installer,
                    expires_at: None,
                },
                |c| c.limit,
            );
            (
                WhyCode::Circuit,
                bound,
                Some(id.clone()),
                Some(phase),
                format!("circuit {id}"),
            )
        }
        Constraint::Total => (
            WhyCode::Demand,
            Bound {
                limit_a: limits.total_a.unwrap_or(0.0),
                source: LimitSource::Demand,
                expires_at: None,
            },
            None,
            None,
            "the demand budget".to_string(),
        ),
    };
    let on = phase.map_or_else(
        || " over all phases".to_string(),
        |p| format!(" on L{}", p + 1),
    );
    let until = until_words(bound.expires_at, ctx);
    let detail = format!(
        "{what}{on} ({} A, {}{until})",
        amps(bound.limit_a),
        source_words(bound.source)
    );
    let (code, text) = match paused {
        None => (code, format!("limited by {detail}")),
        Some((free, min)) => (
            WhyCode::NoCapacity,
            format!(
                "paused: {} A free, below the {} A minimum, by {detail}; it starts when {} A are free",
                amps_free(free),
                amps(min),
                amps(min)
            ),
        ),
    };
    Why {
        code,
        source: Some(bound.source),
        constraint: name,
        phase: phase.map(|p| p as u8 + 1),
        limit_a: Some(bound.limit_a),
        until: bound.expires_at,
        text,
    }
}

/// Free amps, always with one decimal ("4.2", "0.0").
fn amps_free(a: f64) -> String {
    format!("{a:.1}")
}

#[cfg(test)]
mod tests;
