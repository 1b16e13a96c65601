//! What cloud commands leave behind: the reply to every request id (so a repeated command is
//! answered again, not applied twice), the charging profiles, the site and charger limits in
//! force, a month's demand target and each charger's commanded departure plan — each written
//! in one flushed transaction with the reply, so a restart neither lifts a cloud-imposed limit,
//! nor drops a driver's plan, nor forgets that a command was already applied.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::{Store, StoreError};
use crate::control::plan::Plan;
use crate::control::profile::StoredProfile;

const REPLIES: &str = "cmd_replies";
const PROFILES: &str = "cmd_profiles";
const OVERRIDES: &str = "cmd_overrides";
const SITE_KEY: &[u8] = b"site";
const DEMAND_KEY: &[u8] = b"demand";
const CHARGER_PREFIX: &[u8] = b"charger\0";
const PLAN_PREFIX: &[u8] = b"plan\0";

/// A commanded site limit and when it lapses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteLimitOverride {
    pub limit_a: f64,
    pub expires_at: DateTime<Utc>,
}

/// A commanded demand target for one local month (`set_demand_limit`); it applies in that
/// month only, so a stored one from a past month is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DemandOverride {
    pub year: i32,
    pub month: u32,
    pub limit_kw: f64,
}

/// A departure plan set by `set_plan` for a charger's session in progress or its next, and
/// when it was set: the session that ends after that takes it with it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanOverride {
    pub plan: Plan,
    pub set_at: DateTime<Utc>,
}

/// A charger's cloud settings (None: as configured).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChargerOverride {
    pub enabled: Option<bool>,
    pub max_current_a: Option<f64>,
}

impl ChargerOverride {
    fn is_default(&self) -> bool {
        self.enabled.is_none_or(|e| e) && self.max_current_a.is_none()
    }
}

/// The state change a command commits together with its reply.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandChange {
    /// Nothing changes (a refused command).
    None,
    /// The site limit from now on (None: the installer's).
    SiteLimit(Option<SiteLimitOverride>),
    /// A charger's settings from now on (all default: the entry goes).
    Charger {
        id: String,
        state: ChargerOverride,
    },
    /// Store a profile, deleting those it replaces (by `chargingProfileId`).
    PutProfile {
        profile: StoredProfile,
        replaces: Vec<u32>,
    },
    RemoveProfile(u32),
    /// The month's demand target from now on (None: the config's).
    DemandLimit(Option<DemandOverride>),
    /// A charger's commanded plan from now on (None: the config's).
    Plan {
        charger: String,
        plan: Option<PlanOverride>,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredReply {
    at: DateTime<Utc>,
    reply: serde_json::Value,
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|source| StoreError::Encode { what, source })
}

fn decode<'a, T: Deserialize<'a>>(what: &'static str, raw: &'a [u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::corrupt(what, e))
}

fn charger_key(id: &str) -> Vec<u8> {
    [CHARGER_PREFIX, id.as_bytes()].concat()
}

fn plan_key(id: &str) -> Vec<u8> {
    [PLAN_PREFIX, id.as_bytes()].concat()
}

impl Store {
    fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// The reply already given to `request_id`, if any.
    pub fn stored_reply(&self, request_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        match self.tree(REPLIES)?.get(request_id.as_bytes())? {
            None => Ok(None),
            Some(raw) => Ok(Some(decode::<StoredReply>("command reply", &raw)?.reply)),
        }
    }

    /// Records the reply to `request_id` and the change it made, in one transaction, flushed
    /// before returning.
    pub async fn commit_command(
        &self,
        request_id: &str,
        at: DateTime<Utc>,
        reply: &serde_json::Value,
        change: &CommandChange,
    ) -> Result<(), StoreError> {
        let stored = encode(
            "command reply",
            &StoredReply {
                at,
                reply: reply.clone(),
            },
        )?;
        let value = match change {
            CommandChange::SiteLimit(Some(o)) => Some(encode("site limit", o)?),
            CommandChange::Charger { state, .. } if !state.is_default() => {
                Some(encode("charger override", state)?)
            }
            CommandChange::PutProfile { profile, .. } => Some(encode("profile", profile)?),
            CommandChange::DemandLimit(Some(o)) => Some(encode("demand target", o)?),
            CommandChange::Plan { plan: Some(p), .. } => Some(encode("plan", p)?),
            _ => None,
        };
        let (replies, profiles, overrides) = (
            self.tree(REPLIES)?,
            self.tree(PROFILES)?,
            self.tree(OVERRIDES)?,
        );
        (&replies, &profiles, &overrides).transaction(|(replies, profiles, overrides)| {
            replies.insert(request_id.as_bytes(), stored.as_slice())?;
            match change {
                CommandChange::None => {}
                CommandChange::SiteLimit(_) => match &value {
                    Some(v) => {
                        overrides.insert(SITE_KEY, v.as_slice())?;
                    }
                    None => {
                        overrides.remove(SITE_KEY)?;
                    }
                },
                CommandChange::Charger { id, .. } => match &value {
                    Some(v) => {
                        overrides.insert(charger_key(id), v.as_slice())?;
                    }
                    None => {
                        overrides.remove(charger_key(id))?;
                    }
                },
                CommandChange::PutProfile { profile, replaces } => {
                    for id in replaces {
                        profiles.remove(&id.to_be_bytes())?;
                    }
                    if let Some(v) = &value {
                        profiles.insert(&profile.profile.id.to_be_bytes(), v.as_slice())?;
                    }
                }
                CommandChange::RemoveProfile(id) => {
                    profiles.remove(&id.to_be_bytes())?;
                }
                CommandChange::DemandLimit(_) => match &value {
                    Some(v) => {
                        overrides.insert(DEMAND_KEY, v.as_slice())?;
                    }
                    None => {
                        overrides.remove(DEMAND_KEY)?;
                    }
                },
                CommandChange::Plan { charger, .. } => match &value {
                    Some(v) => {
                        overrides.insert(plan_key(charger), v.as_slice())?;
                    }
                    None => {
                        overrides.remove(plan_key(charger))?;
                    }
                },
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Forgets replies given before `before` (flushed); returns how many.
    pub async fn prune_replies(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let replies = self.tree(REPLIES)?;
        let mut old = Vec::new();
        for item in replies.iter() {
            let (key, raw) = item?;
            // An unreadable entry is of no use to anyone: it goes too.
            let keep = decode::<StoredReply>("command reply", &raw).is_ok_and(|r| r.at >= before);
            if !keep {
                old.push(key);
            }
        }
        for key in &old {
            replies.remove(key)?;
        }
        if !old.is_empty() {
            self.db.flush_async().await?;
        }
        Ok(old.len())
    }

    /// How many replies are kept.
    pub fn replies_len(&self) -> Result<usize, StoreError> {
        Ok(self.tree(REPLIES)?.len())
    }

    /// The commanded site limit, whether or not it has expired.
    pub fn site_limit_override(&self) -> Result<Option<SiteLimitOverride>, StoreError> {
        match self.tree(OVERRIDES)?.get(SITE_KEY)? {
            None => Ok(None),
            Some(raw) => decode("site limit", &raw).map(Some),
        }
    }

    /// The commanded demand target, for whichever month it was set.
    pub fn demand_override(&self) -> Result<Option<DemandOverride>, StoreError> {
        match self.tree(OVERRIDES)?.get(DEMAND_KEY)? {
            None => Ok(None),
            Some(raw) => decode("demand target", &raw).map(Some),
        }
    }

    /// Every charger's cloud settings, by charger id.
    pub fn charger_overrides(&self) -> Result<Vec<(String, ChargerOverride)>, StoreError> {
        self.per_charger(CHARGER_PREFIX, "charger override")
    }

    /// The entries under `prefix` (then a charger id), by charger id.
    fn per_charger<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &[u8],
        what: &'static str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(OVERRIDES)?.scan_prefix(prefix) {
            let (key, raw) = item?;
            let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            out.push((id, decode(what, &raw)?));
        }
        Ok(out)
    }

    /// Every charger's commanded plan, by charger id.
    pub fn plan_overrides(&self) -> Result<Vec<(String, PlanOverride)>, StoreError> {
        self.per_charger(PLAN_PREFIX, "plan")
    }

    /// A session on `charger` ended at `ended_at`: a plan commanded before then was that
    /// session's (or was waiting for it) and goes with it; one set later, for the next
    /// session, stays. Flushed when something went.
    pub async fn end_plan(
        &self,
        charger: &str,
        ended_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let tree = self.tree(OVERRIDES)?;
        let key = plan_key(charger);
        let Some(raw) = tree.get(&key)? else {
            return Ok(false);
        };
        // An unreadable entry cannot be applied either: it goes too.
        let ended = decode::<PlanOverride>("plan", &raw).map_or(true, |p| p.set_at <= ended_at);
        if ended {
            // Removed only if unchanged: a plan committed meanwhile is the next session's.
            let gone = tree
                .compare_and_swap(&key, Some(raw), None::<&[u8]>)?
                .is_ok();
            self.db.flush_async().await?;
            return Ok(gone);
        }
        Ok(false)
    }

    /// One charger's cloud settings (default: none).
    pub fn charger_override(&self, id: &str) -> Result<ChargerOverride, StoreError> {
        match self.tree(OVERRIDES)?.get(charger_key(id))? {
            None => Ok(ChargerOverride::default()),
            Some(raw) => decode("charger override", &raw),
        }
    }

    /// Every stored charging profile, by `chargingProfileId`.
    pub fn profiles(&self) -> Result<Vec<StoredProfile>, StoreError> {
        self.tree(PROFILES)?
            .iter()
            .map(|item| {
                let (_, raw) = item?;
                decode("profile", &raw)
            })
            .collect()
    }
}
