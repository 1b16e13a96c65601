//! Why a command was refused. The `Display` text is the `error` of the reply, so it names the
//! field and the rule broken, in words an operator of the cloud can act on.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command {0:?} (known: set_site_limit, set_charger, set_profile, set_plan, set_demand_limit, assign_session, authorize, resync)")]
    Unknown(String),
    /// The body is not JSON, not an object, or does not fit the command's schema.
    #[error("malformed command: {0}")]
    Malformed(String),
    #[error("request_id: {0}")]
    RequestId(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(
        "limit_a {limit_a} A is above the installer's grid_limit_a of {grid_limit_a} A: refused"
    )]
    AboveInstallerLimit { limit_a: f64, grid_limit_a: f64 },
    #[error("charger: no charger {0:?} on this site")]
    UnknownCharger(String),
    #[error("resync is served by the sync link, not by the command handler")]
    NotHandledHere,
    /// The command was valid but could not be recorded; nothing was applied.
    #[error("could not record the command, nothing applied: {0}")]
    Store(#[from] StoreError),
}

impl CommandError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        CommandError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Whether the same command could succeed later: such refusals are not remembered
    /// against their request id.
    pub fn is_transient(&self) -> bool {
        matches!(self, CommandError::Store(_))
    }
}
