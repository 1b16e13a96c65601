//! `authorize`: the cloud's answer to an authorisation request (`P/auth/request`), echoing its
//! `request_id`. The cache of tokens the cloud accepted follows every answer — a yes adds the
//! token until its expiry (the cloud's `expires_at`, at most `[auth] cache_days` ahead), a no
//! removes it — and is written before the reply, flushed with it; then the charger that asked
//! is told. An answer nobody is waiting for (too late, after a restart) still updates the
//! cache, and a second answer with the same `request_id` gets the first one's reply.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::error::CommandError;
use super::CommandContext;
use crate::config::Config;
use crate::control::command::ControlCommand;
use crate::store::commands::CommandChange;
use crate::tokens::{normalise, AuthAnswer, MAX_ID_LEN};

/// The longest `reason` kept (it is shown to operators, not stored in sessions).
pub const MAX_REASON: usize = 200;

/// The body as the cloud sends it (`request_id` removed first).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wire {
    pub token: String,
    pub accepted: bool,
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 3339: until when the token may be accepted from the cache.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The charger asked about, as in the request (optional; checked when given).
    #[serde(default)]
    pub charger: Option<String>,
}

/// Checks an answer; `request_id` is the command's own.
pub fn parse(
    request_id: &str,
    w: Wire,
    cfg: &Config,
    now: DateTime<Utc>,
) -> Result<AuthAnswer, CommandError> {
    let token = normalise(&w.token);
    if token.is_empty() {
        return Err(CommandError::invalid("token", "is empty"));
    }
    if token.len() > MAX_ID_LEN || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(CommandError::invalid(
            "token",
            format!("must be at most {MAX_ID_LEN} printable ASCII characters without blanks"),
        ));
    }
    if let Some(c) = &w.charger {
        if !cfg.chargers.iter().any(|x| &x.id == c) {
            return Err(CommandError::UnknownCharger(c.clone()));
        }
    }
    let reason = w
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON)
    {
        return Err(CommandError::invalid(
            "reason",
            format!("is longer than {MAX_REASON} characters"),
        ));
    }
    let expires_at = match w.expires_at.as_deref() {
        None => None,
        Some(text) => {
            let t = DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    CommandError::invalid(
                        "expires_at",
                        format!("{text:?} is not an RFC 3339 time: {e}"),
                    )
                })?;
            if t <= now {
                return Err(CommandError::invalid(
                    "expires_at",
                    format!("{text} has already passed"),
                ));
            }
            Some(t)
        }
    };
    // Until when the cache accepts the token: never beyond the site's own bound.
    let longest = now + Duration::days(i64::from(cfg.auth.cache_days));
    Ok(AuthAnswer {
        request_id: request_id.to_owned(),
        token,
        accepted: w.accepted,
        reason,
        expires_at: w
            .accepted
            .then(|| expires_at.map_or(longest, |t| t.min(longest))),
    })
}

/// The cache written (not yet flushed: the command's commit flushes it with the reply) and
/// the answer for the controller.
pub fn plan(
    ctx: &CommandContext,
    a: AuthAnswer,
) -> Result<(CommandChange, Option<ControlCommand>), CommandError> {
    ctx.store.cache_answer(
        &a.token,
        a.expires_at,
        ctx.clock.now(),
        ctx.cfg.auth.cache_max_entries,
    )?;
    Ok((CommandChange::None, Some(ControlCommand::AuthAnswer(a))))
}
