//! Who charged and on whose say-so: the types the control loop, the session tracker, the
//! anomaly rules, the store and the cloud share. The rules that decide live beside them in
//! [`crate::tokens`]; these are only the words.

use serde::{Deserialize, Serialize};

/// How a charger decides who may charge (`[[charger]] auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Anyone may charge, as without authorisation. An id the charger reports is still
    /// looked up, so the session knows whose it is.
    #[default]
    Free,
    /// Held at 0 A until the charger reports a token on the local list.
    Local,
    /// The cloud is asked (`P/auth/request`, answered on `P/cmd/authorize`); when it is
    /// offline or silent, the local list and the cache of tokens it accepted decide.
    Cloud,
}

impl AuthMode {
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::Free => "free",
            AuthMode::Local => "local",
            AuthMode::Cloud => "cloud",
        }
    }
}

/// What let a session charge, as recorded on it (`authorized_by` in `session.v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizedBy {
    /// The charger is in `free` mode.
    Free,
    /// The local token list.
    Local,
    /// The cloud answered yes.
    Cloud,
    /// The cache of tokens the cloud accepted before, with the cloud offline or silent.
    Cache,
    /// The cloud named the session's owner after the fact (`assign_session`).
    Assigned,
}

impl AuthorizedBy {
    pub fn name(self) -> &'static str {
        match self {
            AuthorizedBy::Free => "free",
            AuthorizedBy::Local => "local",
            AuthorizedBy::Cloud => "cloud",
            AuthorizedBy::Cache => "cache",
            AuthorizedBy::Assigned => "assigned",
        }
    }
}

/// Whose a session is, as far as known. Every field is optional: a charger with no id
/// register in `free` mode knows nobody. Flattened into `session.v1` as optional fields, so
/// consumers that ignore them keep working.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identity {
    /// The token (RFID UID, OCPP idTag) as presented or assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The vehicle's name as the token list knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<String>,
    /// The cost centre or tariff group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_by: Option<AuthorizedBy>,
}

impl Identity {
    /// Nothing known.
    pub fn is_empty(&self) -> bool {
        *self == Identity::default()
    }

    /// The identity a token list entry gives, authorised by `by`.
    pub fn of_token(token: &super::Token, by: AuthorizedBy) -> Self {
        Identity {
            token: Some(token.id.clone()),
            user: Some(token.user.clone()),
            vehicle: token.vehicle.as_ref().map(|v| v.name.clone()),
            group: token.group.clone(),
            authorized_by: Some(by),
        }
    }
}

/// Where a charger stands with authorisation this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthState {
    /// `free` mode: nothing to decide.
    #[default]
    Open,
    /// No token presented yet: held at 0 A.
    Waiting,
    /// A token was presented and the cloud was asked: held at 0 A until it answers or the
    /// fallback decides.
    Asking,
    /// May charge.
    Authorized,
    /// The token presented was refused: held at 0 A.
    Refused,
}

/// A charger's authorisation as the cycle record carries it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AuthStatus {
    pub mode: AuthMode,
    pub state: AuthState,
    /// Whose session it is, as far as known (in `free` mode too, from the token list).
    #[serde(skip_serializing_if = "Identity::is_empty")]
    pub identity: Identity,
    /// Why a token was refused ("not on the list", "disabled", "refused by the cloud").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl AuthStatus {
    /// Whether the charger may draw current this cycle.
    pub fn may_charge(&self) -> bool {
        matches!(self.state, AuthState::Open | AuthState::Authorized)
    }
}
