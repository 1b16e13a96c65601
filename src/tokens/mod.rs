//! The token list: who may charge, and who pays. A file of its own
//! (`/etc/evsite/tokens.toml`, thousands of entries, reread on reload), separate from the
//! site's config so an operator can replace it without touching the installer's settings.
//!
//! ```toml
//! [[token]]
//! id = "04A1B2C3D4E5F6"        # RFID UID or OCPP idTag, matched case-insensitively
//! user = "Anna Berg"
//! vehicle = { name = "ID.3", battery_kwh = 58 }
//! group = "residents"          # cost centre or tariff group
//! enabled = true               # default true
//! ```
//!
//! Every mistake is reported with its place (`file:line:col: token[3].user: reason`), all of
//! them at once; a file with any error is refused whole, so a reload never half-applies one.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::config::locate::LineIndex;

mod authorize;
mod identity;
pub mod privacy;
mod queue;
#[cfg(test)]
mod tests;

pub use authorize::{AuthAnswer, AuthCache, AuthInput, AuthRequest, Authoriser};
pub use identity::{AuthMode, AuthState, AuthStatus, AuthorizedBy, Identity};
pub use queue::AuthQueue;

/// The longest id accepted. OCPP 1.6 idTags are at most 20 characters and 2.0.1 idTokens 36;
/// the identity registers of the chargers evsite reads hold up to 30 (Vestel, 15 registers).
pub const MAX_ID_LEN: usize = 64;

/// The largest battery a vehicle entry may state, in kWh (above any road vehicle a car park
/// charges; a typo such as 580 for 58 is caught).
pub const MAX_BATTERY_KWH: f64 = 300.0;

/// A vehicle as the token list knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    pub name: String,
    /// Usable battery size, when known.
    pub battery_kwh: Option<f64>,
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// As written in the file.
    pub id: String,
    pub user: String,
    pub vehicle: Option<Vehicle>,
    /// The cost centre or tariff group (None: the site's default tariff).
    pub group: Option<String>,
    pub enabled: bool,
}

/// A mistake in a token file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// The key path (`token[3].user`), empty for the whole file.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.reason)
    }
}

/// Every mistake found in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TokenErrors(pub Vec<TokenError>);

impl fmt::Display for TokenErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The token list, looked up by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenList {
    tokens: Vec<Token>,
    /// Normalised id → index into `tokens`.
    by_id: HashMap<String, usize>,
}

/// How a presented id is compared with the list: surrounding blanks and NULs (an identity
/// register's padding) dropped, ASCII case folded (OCPP idTags are case-insensitive).
pub fn normalise(id: &str) -> String {
    id.trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .to_ascii_uppercase()
}

impl TokenList {
    /// The entry for a presented id, enabled or not.
    pub fn get(&self, id: &str) -> Option<&Token> {
        self.by_id.get(&normalise(id)).map(|&i| &self.tokens[i])
    }

    /// The entry for a presented id if it may charge.
    pub fn authorise(&self, id: &str) -> Option<&Token> {
        self.get(id).filter(|t| t.enabled)
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Token> {
        self.tokens.iter()
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, TokenErrors> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &name),
            Err(e) => Err(TokenErrors(vec![TokenError {
                file: name,
                line: 0,
                col: 0,
                key: String::new(),
                reason: format!("cannot read the token file: {e}"),
            }])),
        }
    }

    /// Checks `text` (named `file` in errors): every mistake at once, or the list.
    pub fn parse(text: &str, file: &str) -> Result<Self, TokenErrors> {
        let mut errors = Errors {
            file,
            text,
            found: Vec::new(),
            lines: None,
        };
        let raw: RawFile = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                errors.push(span, "", e.message().to_string());
                return Err(TokenErrors(errors.found));
            }
        };
        let mut list = TokenList::default();
        // Where each id was first written (a byte offset: turned into a line only for a mistake,
        // since counting lines for every entry would make a large list quadratic).
        let mut first_at: HashMap<String, usize> = HashMap::new();
        for (i, t) in raw.token.into_iter().enumerate() {
            let key = |k: &str| format!("token[{}].{k}", i + 1);
            let id_span = t.id.span();
            let id = t.id.into_inner();
            let norm = normalise(&id);
            if norm.is_empty() {
                errors.push(id_span.clone(), &key("id"), "is empty".into());
            } else if norm.len() > MAX_ID_LEN {
                errors.push(
                    id_span.clone(),
                    &key("id"),
                    format!("is {} characters, at most {MAX_ID_LEN}", norm.len()),
                );
            } else if let Some(c) = norm.chars().find(|c| !c.is_ascii_graphic()) {
                errors.push(
                    id_span.clone(),
                    &key("id"),
                    format!("holds {c:?}: an id is printable ASCII with no spaces"),
                );
            }
            let user_span = t.user.span();
            let user = t.user.into_inner().trim().to_string();
            if user.is_empty() {
                errors.push(user_span, &key("user"), "is empty".into());
            }
            let vehicle = t.vehicle.map(|v| {
                let name = v.name.into_inner().trim().to_string();
                let battery_kwh = v.battery_kwh.map(|b| {
                    let span = b.span();
                    let kwh = b.into_inner();
                    if !(kwh > 0.0 && kwh <= MAX_BATTERY_KWH) {
                        errors.push(
                            span,
                            &key("vehicle.battery_kwh"),
                            format!(
                                "{kwh} kWh is not a battery size (0 < kWh ≤ {MAX_BATTERY_KWH})"
                            ),
                        );
                    }
                    kwh
                });
                Vehicle { name, battery_kwh }
            });
            let group = match t.group {
                Some(g) => {
                    let span = g.span();
                    let g = g.into_inner().trim().to_string();
                    if g.is_empty() {
                        errors.push(
                            span,
                            &key("group"),
                            "is empty: leave it out for the site's default".into(),
                        );
                    }
                    Some(g)
                }
                None => None,
            };
            if !norm.is_empty() {
                if let Some(&first) = first_at.get(&norm) {
                    let (l0, c0) = errors.line_col(first);
                    errors.push(
                        id_span,
                        &key("id"),
                        format!("{id:?} is already listed at line {l0}, column {c0} (ids match regardless of case)"),
                    );
                    continue;
                }
                first_at.insert(norm.clone(), id_span.start);
            }
            list.by_id.insert(norm, list.tokens.len());
            list.tokens.push(Token {
                id,
                user,
                vehicle,
                group,
                enabled: t.enabled,
            });
        }
        if errors.found.is_empty() {
            Ok(list)
        } else {
            Err(TokenErrors(errors.found))
        }
    }
}

struct Errors<'a> {
    file: &'a str,
    text: &'a str,
    found: Vec<TokenError>,
    /// Lines counted once, on the first mistake.
    lines: Option<LineIndex<'a>>,
}

impl<'a> Errors<'a> {
    /// 1-based line and column (in characters) of byte `offset`.
    fn line_col(&mut self, offset: usize) -> (usize, usize) {
        let text = self.text;
        self.lines
            .get_or_insert_with(|| LineIndex::new(text))
            .line_col(offset)
    }

    fn push(&mut self, span: Range<usize>, key: &str, reason: String) {
        let (line, col) = self.line_col(span.start);
        self.found.push(TokenError {
            file: self.file.to_string(),
            line,
            col,
            key: key.to_string(),
            reason,
        });
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    token: Vec<RawToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    id: Spanned<String>,
    user: Spanned<String>,
    vehicle: Option<RawVehicle>,
    group: Option<Spanned<String>>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVehicle {
    name: Spanned<String>,
    battery_kwh: Option<Spanned<f64>>,
}

fn yes() -> bool {
    true
}
