//! `assign_session`: the cloud names the owner of a session after the fact (an app or QR
//! start, a charger with no id register), running or ended. The session takes
//! `authorized_by = assigned`, is re-priced from its start by its group's tariff, and its
//! updated record is stored (flushed) and announced again on `P/sessions` under the same
//! `session_id`.
//!
//! A running session lives in the session tracker, so the assignment goes through the site's
//! pipeline, which hands it to the recorder in order with the session's own updates (an
//! assignment racing the session's end lands on the stored final record). The reply waits
//! until the updated record is stored.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::error::CommandError;
use super::CommandContext;
use crate::config::Config;
use crate::sessions::machine::{RecordState, SessionRecord};
use crate::sessions::tariff::TariffSnapshot;
use crate::sessions::tracker::assign_ended;
use crate::store::{OutboxEvent, Store};
use crate::tokens::{AuthorizedBy, Identity};

/// Longest `session_id`, `user`, `group` or `vehicle` accepted, in bytes.
pub const MAX_FIELD: usize = 128;

/// The body as sent (`request_id` removed). Either `token`, or any of `user`, `group`,
/// `vehicle`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    session_id: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    vehicle: Option<String>,
}

/// A valid assignment: the session and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub session_id: String,
    /// `authorized_by` is `assigned`.
    pub identity: Identity,
}

/// Checks an `assign_session` body: a token must be on the site's token list (its entry
/// gives the user, vehicle and group); without one, a user, group or vehicle is named.
pub fn parse(body: Map<String, Value>, cfg: &Config) -> Result<Assignment, CommandError> {
    let w: Wire = serde_json::from_value(Value::Object(body))
        .map_err(|e| CommandError::Malformed(e.to_string()))?;
    let text = |field: &'static str, v: &str| {
        if v.trim().is_empty() || v.len() > MAX_FIELD || v.contains('\0') {
            return Err(CommandError::invalid(
                field,
                format!("must be 1–{MAX_FIELD} bytes of text, got {v:?}"),
            ));
        }
        Ok(())
    };
    text("session_id", &w.session_id)?;
    let named = [&w.user, &w.group, &w.vehicle];
    let identity = match &w.token {
        Some(_) if named.iter().any(|f| f.is_some()) => {
            return Err(CommandError::invalid(
                "token",
                "give token alone (the token list names its user, vehicle and group), or user, group and vehicle without it",
            ))
        }
        Some(token) => {
            let entry = cfg.auth.tokens.get(token).ok_or_else(|| {
                CommandError::invalid(
                    "token",
                    format!("unknown token {token:?}: not on the site's token list"),
                )
            })?;
            Identity::of_token(entry, AuthorizedBy::Assigned)
        }
        None if named.iter().all(|f| f.is_none()) => {
            return Err(CommandError::invalid(
                "assign_session",
                "name the owner: token, or user, group and/or vehicle",
            ))
        }
        None => {
            for (field, v) in [("user", &w.user), ("group", &w.group), ("vehicle", &w.vehicle)] {
                if let Some(v) = v {
                    text(field, v)?;
                }
            }
            Identity {
                token: None,
                user: w.user,
                vehicle: w.vehicle,
                group: w.group,
                authorized_by: Some(AuthorizedBy::Assigned),
            }
        }
    };
    Ok(Assignment {
        session_id: w.session_id,
        identity,
    })
}

/// The outcome the pipeline reports back: the record as stored, or why not.
pub type Outcome = Result<SessionRecord, CommandError>;

/// Where the pipeline answers an assignment, once. Cloned with the event it travels in (every
/// sink gets a copy); only the first answer is delivered.
#[derive(Clone)]
pub struct Responder(Arc<Mutex<Option<oneshot::Sender<Outcome>>>>);

impl Responder {
    pub fn new() -> (Self, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        (Responder(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    pub fn send(&self, outcome: Outcome) {
        let tx = self.0.lock().ok().and_then(|mut g| g.take());
        if let Some(tx) = tx {
            let _ = tx.send(outcome);
        }
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}

impl PartialEq for Responder {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// An assignment on its way to the pipeline (from the command handler).
#[derive(Debug)]
pub struct AssignRequest {
    pub assignment: Assignment,
    pub done: Responder,
}

/// Applies a valid assignment: through the site's pipeline when one runs (`ctx.sessions`),
/// else straight to the stored session. Returns once the updated record is stored.
pub async fn apply(ctx: &CommandContext, a: Assignment) -> Result<(), CommandError> {
    if ctx.store.session(&a.session_id)?.is_none() {
        return Err(unknown_session(&a.session_id));
    }
    let Some(sessions) = &ctx.sessions else {
        let tariff = group_tariff(&ctx.cfg, a.identity.group.as_deref());
        let publish = crate::site::recorder::publisher(&ctx.cfg, &ctx.store);
        let announce = ctx.cfg.mqtt.is_some().then_some(&publish);
        let site = &ctx.cfg.site.id;
        let now = ctx.clock.now();
        return assign_stored(&ctx.store, site, announce, now, a, tariff)
            .await
            .map(drop);
    };
    let (done, answer) = Responder::new();
    sessions
        .send(AssignRequest {
            assignment: a,
            done,
        })
        .map_err(|_| not_running())?;
    answer.await.map_err(|_| not_running())?.map(drop)
}

fn not_running() -> CommandError {
    CommandError::invalid(
        "assign_session",
        "the session pipeline is not running (evsite is stopping): try again",
    )
}

fn unknown_session(id: &str) -> CommandError {
    CommandError::invalid("session_id", format!("unknown session {id:?} on this site"))
}

/// The snapshot of `group`'s own tariff in `cfg`, if it has one.
fn group_tariff(cfg: &Config, group: Option<&str>) -> Option<TariffSnapshot> {
    cfg.tariff_groups.get(group?).cloned()
}

/// Names the owner of session `a.session_id` as stored (ended, or no longer followed by the
/// tracker): re-priced from its samples under `tariff` (the group's own; None keeps the
/// snapshot it holds), stored with the message announcing it again, flushed.
pub async fn assign_stored(
    store: &Store,
    site: &str,
    announce: Option<&crate::tokens::privacy::Publish>,
    now: chrono::DateTime<chrono::Utc>,
    a: Assignment,
    tariff: Option<TariffSnapshot>,
) -> Outcome {
    let Some(mut record) = store.session(&a.session_id)? else {
        return Err(unknown_session(&a.session_id));
    };
    let samples = store.samples(&a.session_id)?;
    if samples.is_empty() && record.energy_wh > 0 && record.cost.is_some() {
        return Err(CommandError::invalid(
            "session_id",
            format!(
                "session {:?} can no longer be re-priced: its per-minute energy is past retention",
                a.session_id
            ),
        ));
    }
    assign_ended(&mut record, &samples, a.identity, tariff);
    let event = announce.map(|publish| {
        OutboxEvent::new(
            site,
            message_type(record.state),
            now,
            publish.session(&record),
        )
    });
    store.put_session(&record, &[], event).await?;
    if announce.is_none() && record.state != RecordState::Active {
        store.mark_synced(&record.session_id).await?;
    }
    tracing::info!(session = %record.session_id, "session assigned");
    Ok(record)
}

/// The `type` a stored session's updated record is announced with: the one its state has.
fn message_type(state: RecordState) -> &'static str {
    match state {
        RecordState::Active => "session.updated",
        RecordState::Completed | RecordState::Interrupted => "session.completed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> Config {
        let mut cfg = crate::config::load_str(
            include_str!("../../tests/fixtures/config/base.toml"),
            "base",
        )
        .expect("a valid config");
        let list = crate::tokens::TokenList::parse(
            "[[token]]\nid = \"04A1B2\"\nuser = \"Anna\"\ngroup = \"company\"\nvehicle = { name = \"ID.3\" }\n",
            "tokens.toml",
        )
        .expect("a valid list");
        cfg.auth.tokens = Arc::new(list);
        cfg
    }

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn refused(v: Value) -> String {
        match parse(body(v.clone()), &cfg()) {
            Ok(a) => panic!("{v} was accepted: {a:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_token_on_the_list_names_its_user_vehicle_and_group() {
        let a = parse(
            body(json!({"session_id": "s-1", "token": " 04a1b2 "})),
            &cfg(),
        )
        .expect("accepted");
        assert_eq!(a.session_id, "s-1");
        assert_eq!(a.identity.token.as_deref(), Some("04A1B2"));
        assert_eq!(a.identity.user.as_deref(), Some("Anna"));
        assert_eq!(a.identity.vehicle.as_deref(), Some("ID.3"));
        assert_eq!(a.identity.group.as_deref(), Some("company"));
        assert_eq!(a.identity.authorized_by, Some(AuthorizedBy::Assigned));
    }

    #[test]
    fn without_a_token_the_named_fields_are_taken_as_given() {
        let a = parse(
            body(json!({"session_id": "s-1", "group": "visitors"})),
            &cfg(),
        )
        .expect("accepted");
        assert_eq!(a.identity.token, None);
        assert_eq!(a.identity.user, None);
        assert_eq!(a.identity.group.as_deref(), Some("visitors"));
        assert_eq!(a.identity.authorized_by, Some(AuthorizedBy::Assigned));
    }

    #[test]
    fn mistakes_are_refused_with_the_field() {
        assert!(refused(json!({"session_id": "s-1", "token": "FFFF"})).contains("unknown token"));
        assert!(
            refused(json!({"session_id": "s-1", "token": "04A1B2", "user": "x"}))
                .contains("give token alone")
        );
        assert!(refused(json!({"session_id": "s-1"})).contains("name the owner"));
        assert!(refused(json!({"session_id": "", "user": "x"})).starts_with("session_id:"));
        assert!(refused(json!({"session_id": "s-1", "user": " "})).starts_with("user:"));
        let long = "x".repeat(MAX_FIELD + 1);
        assert!(refused(json!({"session_id": "s-1", "group": long})).starts_with("group:"));
        assert!(refused(json!({"token": "04A1B2"})).contains("malformed"));
        assert!(
            refused(json!({"session_id": "s-1", "user": "x", "owner": "y"})).contains("malformed")
        );
        assert!(refused(json!({"session_id": 7, "user": "x"})).contains("malformed"));
    }
}
