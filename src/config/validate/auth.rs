//! `[auth]`: the token list. Read with the config whenever the config's files are checked
//! (at start, on every reload, by `check-config`), so a reload rereads it and a broken list is
//! refused whole with each mistake at its place in the token file — the running list stays.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::check;
use super::files::{read, Content, FileScope, Reader};
use crate::config::error::{KeyPath, Location};
use crate::config::raw::{RawAuth, RawCharger};
use crate::config::report::Reporter;
use crate::config::types::{Auth, Charger};
use crate::tokens::{AuthMode, TokenList};

/// The shortest and longest wait for the cloud's answer: a driver stands at the charger.
pub const MIN_CLOUD_TIMEOUT_S: f64 = 0.5;
pub const MAX_CLOUD_TIMEOUT_S: f64 = 60.0;
/// The cache's bounds: its size on disk stays small (about 100 bytes a token).
pub const MAX_CACHE_ENTRIES: i64 = 1_000_000;
pub const MAX_CACHE_DAYS: i64 = 365;

pub fn auth(raw: &RawAuth, rep: &mut Reporter<'_>) -> Option<Auth> {
    let root = KeyPath::root("auth");
    let timeout_ok = check(
        rep,
        raw.cloud_timeout_s.is_finite()
            && (MIN_CLOUD_TIMEOUT_S..=MAX_CLOUD_TIMEOUT_S).contains(&raw.cloud_timeout_s),
        &root.key("cloud_timeout_s"),
        format!(
            "must be {MIN_CLOUD_TIMEOUT_S}–{MAX_CLOUD_TIMEOUT_S} s (a driver waits at the charger meanwhile), got {}",
            raw.cloud_timeout_s
        ),
    );
    let entries_ok = check(
        rep,
        (1..=MAX_CACHE_ENTRIES).contains(&raw.cache_max_entries),
        &root.key("cache_max_entries"),
        format!(
            "must be 1–{MAX_CACHE_ENTRIES}, got {}",
            raw.cache_max_entries
        ),
    );
    let days_ok = check(
        rep,
        (1..=MAX_CACHE_DAYS).contains(&raw.cache_days),
        &root.key("cache_days"),
        format!("must be 1–{MAX_CACHE_DAYS} days, got {}", raw.cache_days),
    );
    if !(timeout_ok && entries_ok && days_ok) {
        return None;
    }
    let base = Auth {
        cloud_timeout: Duration::from_secs_f64(raw.cloud_timeout_s),
        cache_max_entries: raw.cache_max_entries as usize,
        cache_days: raw.cache_days as u32,
        publish_identity: raw.publish_identity,
        ..Auth::default()
    };
    let path = root.key("tokens_file");
    let Some(file) = raw.tokens_file.as_deref() else {
        return Some(base);
    };
    if !check(
        rep,
        !file.trim().is_empty(),
        &path,
        "must name the token file (see docs/tokens.md), or be left out".into(),
    ) {
        return None;
    }
    let mut auth = Auth {
        tokens_file: Some(file.into()),
        ..base
    };
    if rep.file_scope() == FileScope::None {
        return Some(auth);
    }
    let checked = match read(Path::new(file), Content::PersonalData, &Reader::service()) {
        Ok(c) => c,
        Err(e) => {
            rep.error(&path, e.to_string());
            return None;
        }
    };
    if let Some(w) = checked.warning {
        rep.warn(&path, w);
    }
    // `read` has checked it is UTF-8.
    let text = String::from_utf8_lossy(&checked.bytes);
    match TokenList::parse(&text, file) {
        Ok(list) => {
            auth.tokens = Arc::new(list);
            Some(auth)
        }
        Err(errors) => {
            for e in errors.0 {
                rep.push(
                    Location::File {
                        origin: e.file,
                        line: e.line,
                        col: e.col,
                    },
                    e.key,
                    e.reason,
                );
            }
            None
        }
    }
}

/// Each charger's authorisation against the rest of the config: a mode that could never let
/// a car charge is an error where it is set, as is a `token` the list does not hold.
/// `chargers` are the checked chargers (None where one was already reported).
pub fn chargers(
    raw: &[RawCharger],
    chargers: &[Option<Charger>],
    auth: Option<&Auth>,
    has_mqtt: bool,
    rep: &mut Reporter<'_>,
) {
    for (i, (r, c)) in raw.iter().zip(chargers).enumerate() {
        let p = KeyPath::root("charger").index(i);
        if let Some(token) = &r.token {
            let norm = crate::tokens::normalise(token);
            let listed = auth.is_some_and(|a| {
                // Read for its values only: the list is not at hand to compare with.
                (a.tokens.is_empty() && rep.file_scope() == FileScope::None)
                    || a.tokens.authorise(&norm).is_some()
            });
            if norm.is_empty() {
                rep.error(
                    &p.key("token"),
                    "is empty: leave it out for a charger without one",
                );
            } else if auth.is_some_and(|a| a.tokens_file.is_none()) {
                rep.error(
                    &p.key("token"),
                    "needs [auth] tokens_file: the token must be on the token list",
                );
            } else if auth.is_some() && !listed {
                let why = match auth.and_then(|a| a.tokens.get(&norm)) {
                    Some(_) => "is disabled on the token list",
                    None => "is not on the token list",
                };
                rep.error(&p.key("token"), format!("{token:?} {why}"));
            }
        }
        let mode_path = p.key("auth");
        match r.auth {
            AuthMode::Free => {}
            AuthMode::Local => {
                if auth.is_some_and(|a| a.tokens_file.is_none()) {
                    rep.error(
                        &mode_path,
                        "\"local\" needs [auth] tokens_file: without a token list no car could charge",
                    );
                }
            }
            AuthMode::Cloud => {
                if !has_mqtt {
                    rep.error(
                        &mode_path,
                        "\"cloud\" needs [mqtt]: the cloud is asked over it",
                    );
                }
            }
        }
        if r.auth != AuthMode::Free && r.token.is_none() {
            if let Some(c) = c {
                if c.device.model.charger.and_then(|s| s.id_tag).is_none() {
                    rep.error(
                        &mode_path,
                        format!(
                            "{:?} on a {} that reports no token: no car could ever charge; set `token` (a resident's own bay) or use \"free\"",
                            r.auth.name(),
                            c.device.model.name
                        ),
                    );
                }
            }
        }
    }
}
