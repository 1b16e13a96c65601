//! `[auth]`: the token list. Read with the config whenever the config's files are checked
//! (at start, on every reload, by `check-config`), so a reload rereads it and a broken list is
//! refused whole with each mistake at its place in the token file — the running list stays.

use std::path::Path;
use std::sync::Arc;

use super::check;
use super::files::{read, Content, FileScope, Reader};
use crate::config::error::{KeyPath, Location};
use crate::config::raw::RawAuth;
use crate::config::report::Reporter;
use crate::config::types::Auth;
use crate::tokens::TokenList;

pub fn auth(raw: &RawAuth, rep: &mut Reporter<'_>) -> Option<Auth> {
    let path = KeyPath::root("auth").key("tokens_file");
    let Some(file) = raw.tokens_file.as_deref() else {
        return Some(Auth::default());
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
        tokens: Arc::default(),
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
