//! Commands from the cloud (`P/cmd/{name}`): the MQTT sync hands each one over as it came,
//! and gets back the reply it publishes on `P/cmd/reply`.
//!
//! Layout: `wire` (the bodies as sent, strict serde), `validate` (rules against the config
//! and the time), `handle` (request-id deduplication, commit, hand-over to the controller),
//! `startup` (what a restart re-applies). The limits themselves are applied by
//! [`crate::control`]; they can only ever lower the installer's.

pub mod assign;
mod authorize;
mod error;
mod handle;
mod startup;
pub mod validate;
mod wire;

use std::sync::Arc;

use chrono::TimeDelta;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::config::Config;
use crate::control::command::ControlCommand;
use crate::store::Store;

pub use error::CommandError;
pub use handle::{handle, reply, MAX_PROFILES, MAX_REQUEST_ID};
pub use startup::{load_overrides, load_profiles};
pub use validate::Command;

/// Replies are kept this long to answer a repeated `request_id`.
pub const REPLY_RETENTION: TimeDelta = TimeDelta::days(7);
/// How often old replies are pruned.
const PRUNE_EVERY: TimeDelta = TimeDelta::hours(1);

/// A command as received: its name (the last topic level) and raw body. Whoever handles it
/// answers on `reply` with the JSON to publish on `P/cmd/reply`.
#[derive(Debug)]
pub struct RawCommand {
    pub name: String,
    pub payload: Vec<u8>,
    pub reply: oneshot::Sender<serde_json::Value>,
}

/// What the handler needs: the config, the store, the controller's queue and the clock.
#[derive(Clone)]
pub struct CommandContext {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub control: mpsc::UnboundedSender<ControlCommand>,
    pub clock: Clock,
    /// The site's session pipeline, for `assign_session` on a running session (None: the
    /// stored session is updated directly).
    pub sessions: Option<mpsc::UnboundedSender<assign::AssignRequest>>,
}

/// Answers every command from `rx`, one at a time (so a repeated request id racing its
/// first delivery is still applied once), until the sender side closes.
pub async fn serve(mut rx: mpsc::Receiver<RawCommand>, ctx: CommandContext) {
    let mut pruned_at = None;
    while let Some(cmd) = rx.recv().await {
        let answer = handle(&ctx, &cmd.name, &cmd.payload).await;
        // The sync may have given up waiting; the command is applied and stored regardless.
        let _ = cmd.reply.send(answer);
        let now = ctx.clock.now();
        if pruned_at.is_none_or(|at| now - at >= PRUNE_EVERY) {
            pruned_at = Some(now);
            match ctx.store.prune_replies(now - REPLY_RETENTION).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "old command replies pruned"),
                Err(e) => tracing::warn!(error = %e, "could not prune command replies"),
            }
        }
    }
}
