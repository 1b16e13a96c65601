//! Who may charge, decided per charger and per session: pure (no clock, no I/O), stepped once
//! per cycle with what the cycle read — a car connected or not, the id the charger reports —
//! and what it knows of the cloud (its link, its answers), on the cycle's clock.
//!
//! - `free`: open. An id on the list still names the session's owner (`authorized_by` free).
//! - `local`: held at 0 A until the charger reports a token; the token list decides.
//! - `cloud`: the cloud is asked (an [`AuthRequest`] for `P/auth/request`) and the charger is
//!   held while it is asked. The cloud's answer ([`AuthAnswer`], `P/cmd/authorize`) decides;
//!   when the link is down, or no answer came within `[auth] cloud_timeout_s`, the local
//!   list decides, and then the cache of tokens the cloud accepted before.
//!
//! A `[[charger]] token` (a resident's own bay) stands for a token presented at every plug-in,
//! decided by the list alone (`authorized_by` local).
//!
//! Rules that hold in every mode:
//! - unplugging ends the session: the next one starts from `Waiting`;
//! - once authorised, a session stays authorised to its end (a link or a cloud going away, or
//!   a late "no", never stops a car that was let charge);
//! - a charger that could not be read keeps its state (a missed read is not an unplug);
//! - in the list, a disabled entry refuses even a token the cache holds (the list is the
//!   operator's word on the site; OCPP gives the local list precedence over the cache too);
//! - a token refused while the cloud could not be asked is asked about once the link is up
//!   again, and the cloud's answer, even a late one, can still authorise a waiting session.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{normalise, AuthMode, AuthState, AuthStatus, AuthorizedBy, Identity, TokenList};

/// An authorisation request for the cloud (`P/auth/request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    /// Echoed by the cloud in its `authorize` command.
    pub request_id: String,
    pub charger: String,
    /// The token as the charger presented it (normalised: blanks dropped, upper case).
    pub token: String,
    pub at: DateTime<Utc>,
}

/// The cloud's answer (`P/cmd/authorize`), as checked by the command handler.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthAnswer {
    pub request_id: String,
    /// Normalised.
    pub token: String,
    pub accepted: bool,
    pub reason: Option<String>,
    /// Until when the cache may accept the token without asking (None: the cache's default).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Tokens the cloud accepted, each until its expiry: what decides, beside the local list,
/// while the cloud is offline or silent. Kept in the store (see `store::auth_cache`); this is
/// the controller's copy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthCache {
    /// Normalised token → until when it is accepted.
    entries: HashMap<String, DateTime<Utc>>,
}

impl AuthCache {
    pub fn new(entries: impl IntoIterator<Item = (String, DateTime<Utc>)>) -> Self {
        AuthCache {
            entries: entries
                .into_iter()
                .map(|(t, e)| (normalise(&t), e))
                .collect(),
        }
    }

    /// Whether `token` was accepted by the cloud and has not expired at `now`.
    pub fn accepts(&self, token: &str, now: DateTime<Utc>) -> bool {
        self.entries
            .get(&normalise(token))
            .is_some_and(|&until| now < until)
    }

    /// The cloud accepted `token` until `until` (a refusal removes it: see [`AuthCache::remove`]).
    pub fn insert(&mut self, token: &str, until: DateTime<Utc>) {
        self.entries.insert(normalise(token), until);
    }

    pub fn remove(&mut self, token: &str) {
        self.entries.remove(&normalise(token));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What one cycle tells a charger's authoriser.
#[derive(Debug, Clone, Copy)]
pub struct AuthInput<'a> {
    /// A car is connected (state B or C).
    pub connected: bool,
    /// The id the charger reports (None: none, or the model has no id register).
    pub id_tag: Option<&'a str>,
    pub list: &'a TokenList,
    pub cache: &'a AuthCache,
    /// The cloud link is connected now.
    pub cloud_online: bool,
    /// The wall clock, for stamps and the cache's expiries.
    pub now: DateTime<Utc>,
    /// Monotonic seconds (the cloud's timeout is a duration).
    pub now_s: f64,
    /// `[auth] cloud_timeout_s`.
    pub cloud_timeout_s: f64,
}

/// The question outstanding with the cloud for this session.
#[derive(Debug, Clone, PartialEq)]
struct Asked {
    request_id: String,
    /// Monotonic seconds when it was asked.
    since_s: f64,
}

/// One charger's authorisation, session by session.
#[derive(Debug, Clone, PartialEq)]
pub struct Authoriser {
    charger: String,
    mode: AuthMode,
    /// `[[charger]] token`: presented at every plug-in (normalised).
    fixed: Option<String>,
    status: AuthStatus,
    connected: bool,
    /// The token this session's decision is about (normalised).
    token: Option<String>,
    /// The question put to the cloud about `token`, if one was.
    asked: Option<Asked>,
}

impl Authoriser {
    pub fn new(charger: &str, mode: AuthMode, fixed: Option<&str>) -> Self {
        let mut a = Authoriser {
            charger: charger.to_owned(),
            mode,
            fixed: fixed.map(normalise).filter(|t| !t.is_empty()),
            status: AuthStatus::default(),
            connected: false,
            token: None,
            asked: None,
        };
        a.reset();
        a
    }

    /// Where the charger stands now.
    pub fn status(&self) -> &AuthStatus {
        &self.status
    }

    /// Takes over a reloaded charger's mode and fixed token. A session already authorised
    /// keeps its authorisation; one not yet decided is decided afresh under the new rules.
    pub fn reconfigure(&mut self, mode: AuthMode, fixed: Option<&str>) {
        let fixed = fixed.map(normalise).filter(|t| !t.is_empty());
        if mode == self.mode && fixed == self.fixed {
            return;
        }
        self.mode = mode;
        self.fixed = fixed;
        self.status.mode = mode;
        if self.status.state != AuthState::Authorized {
            let connected = self.connected;
            self.reset();
            self.connected = connected;
        }
    }

    fn reset(&mut self) {
        self.status = AuthStatus {
            mode: self.mode,
            state: if self.mode == AuthMode::Free {
                AuthState::Open
            } else {
                AuthState::Waiting
            },
            identity: Identity::default(),
            refused: None,
        };
        self.connected = false;
        self.token = None;
        self.asked = None;
    }

    /// One cycle, for a charger that was read (a charger that was not is not stepped). Returns
    /// the request to put to the cloud, when one is due.
    pub fn step(&mut self, input: &AuthInput<'_>) -> Option<AuthRequest> {
        if !input.connected {
            if self.connected || self.token.is_some() {
                self.reset();
            }
            return None;
        }
        self.connected = true;
        let presented = self.fixed.clone().or_else(|| {
            input
                .id_tag
                .map(normalise)
                .filter(|t: &String| !t.is_empty())
        });
        if self.mode == AuthMode::Free {
            self.free(presented.as_deref(), input.list);
            return None;
        }
        if self.status.state == AuthState::Authorized {
            return None;
        }
        let Some(token) = presented else {
            // A reader may show the id for a moment only: a decision once made stays.
            if self.token.is_none() {
                self.status.state = AuthState::Waiting;
            }
            return self.follow_up(input);
        };
        if self.token.as_deref() != Some(token.as_str()) {
            // A token presented, or another one after a refusal: decided afresh.
            self.token = Some(token.clone());
            self.asked = None;
            self.status.refused = None;
            self.status.identity = Identity {
                token: Some(token.clone()),
                ..Identity::default()
            };
            if self.mode == AuthMode::Local || self.fixed.is_some() {
                self.decide_locally(&token, input, false);
                return None;
            }
            if input.cloud_online {
                return Some(self.ask(&token, input));
            }
            self.decide_locally(&token, input, true);
            return None;
        }
        self.follow_up(input)
    }

    /// Waiting on the cloud: fall back when it is gone or silent; ask when it comes back
    /// about a token refused meanwhile.
    fn follow_up(&mut self, input: &AuthInput<'_>) -> Option<AuthRequest> {
        if self.mode != AuthMode::Cloud || self.fixed.is_some() {
            return None;
        }
        let token = self.token.clone()?;
        match self.status.state {
            AuthState::Asking => {
                let silent = self
                    .asked
                    .as_ref()
                    .is_some_and(|a| input.now_s - a.since_s >= input.cloud_timeout_s);
                if !input.cloud_online || silent {
                    self.decide_locally(&token, input, true);
                }
                None
            }
            AuthState::Refused if self.asked.is_none() && input.cloud_online => {
                Some(self.ask(&token, input))
            }
            _ => None,
        }
    }

    fn ask(&mut self, token: &str, input: &AuthInput<'_>) -> AuthRequest {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.asked = Some(Asked {
            request_id: request_id.clone(),
            since_s: input.now_s,
        });
        self.status.state = AuthState::Asking;
        self.status.refused = None;
        AuthRequest {
            request_id,
            charger: self.charger.clone(),
            token: token.to_owned(),
            at: input.now,
        }
    }

    /// The list decides; with `cache`, a token the list does not hold is let charge if the
    /// cloud accepted it before (the cloud is offline or silent).
    fn decide_locally(&mut self, token: &str, input: &AuthInput<'_>, cache: bool) {
        match input.list.get(token) {
            Some(t) if t.enabled => self.authorise(Identity::of_token(t, AuthorizedBy::Local)),
            Some(_) => self.refuse("disabled".into()),
            None if cache && input.cache.accepts(token, input.now) => self.authorise(Identity {
                token: Some(token.to_owned()),
                authorized_by: Some(AuthorizedBy::Cache),
                ..Identity::default()
            }),
            None if cache => {
                let why = if input.cloud_online {
                    "not on the list nor in the cache, and the cloud did not answer"
                } else {
                    "not on the list nor in the cache (cloud offline)"
                };
                self.refuse(why.into());
            }
            None => self.refuse("not on the list".into()),
        }
    }

    fn authorise(&mut self, identity: Identity) {
        self.status.state = AuthState::Authorized;
        self.status.identity = identity;
        self.status.refused = None;
    }

    fn refuse(&mut self, why: String) {
        self.status.state = AuthState::Refused;
        self.status.refused = Some(why);
    }

    fn free(&mut self, presented: Option<&str>, list: &TokenList) {
        self.status.state = AuthState::Open;
        let Some(token) = presented else {
            return;
        };
        if self.token.as_deref() == Some(token) {
            return;
        }
        self.token = Some(token.to_owned());
        self.status.identity = match list.get(token) {
            Some(t) => Identity::of_token(t, AuthorizedBy::Free),
            None => Identity {
                token: Some(token.to_owned()),
                authorized_by: Some(AuthorizedBy::Free),
                ..Identity::default()
            },
        };
    }

    /// The cloud's answer; true when it was about this charger's outstanding question.
    /// A "yes" authorises a session not yet authorised; a "no" refuses one not yet let charge
    /// (never one already charging).
    pub fn answer(&mut self, a: &AuthAnswer, list: &TokenList) -> bool {
        let ours = self
            .asked
            .as_ref()
            .is_some_and(|q| q.request_id == a.request_id)
            && self.token.as_deref() == Some(normalise(&a.token).as_str());
        if !ours || self.status.state == AuthState::Authorized {
            return ours;
        }
        let token = normalise(&a.token);
        if a.accepted {
            let identity = match list.get(&token) {
                Some(t) => Identity::of_token(t, AuthorizedBy::Cloud),
                None => Identity {
                    token: Some(token),
                    authorized_by: Some(AuthorizedBy::Cloud),
                    ..Identity::default()
                },
            };
            self.authorise(identity);
        } else {
            let why = match a.reason.as_deref().map(str::trim) {
                Some(r) if !r.is_empty() => format!("refused by the cloud: {r}"),
                _ => "refused by the cloud".to_string(),
            };
            self.refuse(why);
        }
        true
    }
}

#[cfg(test)]
#[path = "authorize_tests.rs"]
mod tests;
