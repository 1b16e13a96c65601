//! One command, start to finish: a repeated `request_id` gets its stored reply and nothing
//! else; a new one is checked, its change and reply committed together (flushed), then handed
//! to the controller. Refusals are remembered too, so a retry gets the same answer.

use serde_json::{json, Map, Value};

use super::error::CommandError;
use super::validate::{parse, Command};
use super::CommandContext;
use crate::control::command::ControlCommand;
use crate::control::profile::{ProfileSet, StoredProfile};
use crate::store::commands::{
    ChargerOverride, CommandChange, DemandOverride, PlanOverride, SiteLimitOverride,
};

/// Most profiles the site holds at once.
pub const MAX_PROFILES: usize = 32;
/// Longest accepted `request_id`, in bytes (it is a database key).
pub const MAX_REQUEST_ID: usize = 128;

/// The reply published on `P/cmd/reply`.
pub fn reply(request_id: &Value, outcome: Result<(), &CommandError>) -> Value {
    match outcome {
        Ok(()) => json!({"request_id": request_id, "ok": true, "error": null}),
        Err(e) => json!({"request_id": request_id, "ok": false, "error": e.to_string()}),
    }
}

/// Handles command `name` with body `payload`; returns the reply to publish.
pub async fn handle(ctx: &CommandContext, name: &str, payload: &[u8]) -> Value {
    let (request_id, body) = match split(payload) {
        Ok(parts) => parts,
        Err((echo, e)) => {
            tracing::info!(command = name, error = %e, "command refused");
            return reply(&echo, Err(&e));
        }
    };
    let echo = Value::String(request_id.clone());
    match ctx.store.stored_reply(&request_id) {
        Ok(Some(stored)) => {
            tracing::info!(
                command = name,
                request_id,
                "repeated request id: answered again"
            );
            return stored;
        }
        Ok(None) => {}
        Err(e) => return reply(&echo, Err(&CommandError::Store(e))),
    }
    let now = ctx.clock.now();
    let parsed = if name == "authorize" {
        super::validate::typed(body)
            .and_then(|w| super::authorize::parse(&request_id, w, &ctx.cfg, now))
            .map(Command::Authorize)
    } else {
        parse(name, body, &ctx.cfg, now)
    };
    let planned = match parsed {
        Ok(Command::AssignSession(a)) => super::assign::apply(ctx, a)
            .await
            .map(|()| (CommandChange::None, None)),
        parsed => parsed.and_then(|cmd| plan(ctx, cmd)),
    };
    let (change, control) = match planned {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(command = name, request_id, error = %e, "command refused");
            let answer = reply(&echo, Err(&e));
            if !e.is_transient() {
                if let Err(e) = ctx
                    .store
                    .commit_command(&request_id, now, &answer, &CommandChange::None)
                    .await
                {
                    tracing::warn!(request_id, error = %e, "could not record a refused command");
                }
            }
            return answer;
        }
    };
    let answer = reply(&echo, Ok(()));
    if let Err(e) = ctx
        .store
        .commit_command(&request_id, now, &answer, &change)
        .await
    {
        let e = CommandError::Store(e);
        tracing::warn!(command = name, request_id, error = %e, "command not applied");
        return reply(&echo, Err(&e));
    }
    tracing::info!(command = name, request_id, "command applied");
    if let Some(c) = control {
        if ctx.control.send(c).is_err() {
            // Stored: the daemon applies it at its next start (see `load_overrides`).
            tracing::warn!(
                command = name,
                "controller not running: the change applies at start"
            );
        }
    }
    answer
}

/// The request id and the rest of the body, or what to echo with the refusal.
fn split(payload: &[u8]) -> Result<(String, Map<String, Value>), (Value, CommandError)> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        (
            Value::Null,
            CommandError::Malformed(format!("not JSON: {e}")),
        )
    })?;
    let Value::Object(mut body) = value else {
        return Err((
            Value::Null,
            CommandError::Malformed("the body must be a JSON object".into()),
        ));
    };
    match body.remove("request_id") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_REQUEST_ID => Ok((id, body)),
        Some(other) => Err((
            other,
            CommandError::RequestId("must be a non-empty string of at most 128 bytes"),
        )),
        None => Err((Value::Null, CommandError::RequestId("missing"))),
    }
}

/// What a valid command changes in the store and tells the controller; refusals that need
/// the stored state (profile count, removing another target's profile) happen here.
fn plan(
    ctx: &CommandContext,
    cmd: Command,
) -> Result<(CommandChange, Option<ControlCommand>), CommandError> {
    let grid_limit_a = ctx.cfg.site.grid_limit_a;
    match cmd {
        Command::SetSiteLimit {
            limit_a,
            expires_at,
        } => {
            // The installer's limit itself: no override (the cloud lifting its own limit).
            let limit = (limit_a < grid_limit_a).then_some(limit_a);
            Ok((
                CommandChange::SiteLimit(limit.map(|limit_a| SiteLimitOverride {
                    limit_a,
                    expires_at,
                })),
                Some(ControlCommand::SetSiteLimit {
                    limit_a: limit,
                    expires_at: limit.map(|_| expires_at),
                }),
            ))
        }
        Command::SetCharger {
            charger,
            enabled,
            max_current_a,
        } => {
            let configured_max = ctx
                .cfg
                .chargers
                .iter()
                .find(|c| c.id == charger)
                .map_or(0.0, |c| c.max_current_a);
            let mut state: ChargerOverride = ctx.store.charger_override(&charger)?;
            if let Some(e) = enabled {
                state.enabled = (!e).then_some(false);
            }
            if let Some(m) = max_current_a {
                state.max_current_a = (m < configured_max).then_some(m);
            }
            Ok((
                CommandChange::Charger {
                    id: charger.clone(),
                    state,
                },
                Some(ControlCommand::SetCharger {
                    charger,
                    enabled,
                    max_current_a,
                }),
            ))
        }
        Command::SetProfile(new) => {
            let mut profiles = ctx.store.profiles()?;
            // OCPP: a profile replaces one with its id, or with its target, purpose and level.
            let replaced = |p: &StoredProfile| {
                p.profile.id == new.profile.id
                    || (p.charger == new.charger
                        && p.profile.purpose == new.profile.purpose
                        && p.profile.stack_level == new.profile.stack_level)
            };
            let replaces = profiles
                .iter()
                .filter(|p| replaced(p))
                .map(|p| p.profile.id)
                .collect();
            profiles.retain(|p| !replaced(p));
            if profiles.len() >= MAX_PROFILES {
                return Err(CommandError::invalid(
                    "profile",
                    format!("the site already holds {MAX_PROFILES} profiles: remove one first"),
                ));
            }
            profiles.push(new.clone());
            Ok((
                CommandChange::PutProfile {
                    profile: new,
                    replaces,
                },
                Some(ControlCommand::SetProfiles(ProfileSet::new(profiles))),
            ))
        }
        Command::RemoveProfile { charger, id } => {
            let mut profiles = ctx.store.profiles()?;
            if let Some(p) = profiles.iter().find(|p| p.profile.id == id) {
                if p.charger != charger {
                    let on = p.charger.as_deref().unwrap_or("the site");
                    return Err(CommandError::invalid(
                        "charger",
                        format!("profile {id} is installed on {on}"),
                    ));
                }
            }
            profiles.retain(|p| p.profile.id != id);
            Ok((
                CommandChange::RemoveProfile(id),
                Some(ControlCommand::SetProfiles(ProfileSet::new(profiles))),
            ))
        }
        // A plan is kept until its session ends (the recorder drops it then), so a restart
        // in the middle of the session keeps it.
        Command::SetPlan { charger, plan } => Ok((
            CommandChange::Plan {
                charger: charger.clone(),
                plan: plan.map(|plan| PlanOverride {
                    plan,
                    set_at: ctx.clock.now(),
                }),
            },
            Some(ControlCommand::SetPlan { charger, plan }),
        )),
        Command::SetDemandLimit {
            year,
            month,
            limit_kw,
        } => Ok((
            CommandChange::DemandLimit(limit_kw.map(|limit_kw| DemandOverride {
                year,
                month,
                limit_kw,
            })),
            Some(ControlCommand::SetDemandLimit(
                limit_kw.map(|kw| (year, month, kw)),
            )),
        )),
        Command::Authorize(a) => super::authorize::plan(ctx, a),
        Command::Resync { .. } | Command::AssignSession(_) => Err(CommandError::NotHandledHere),
    }
}
