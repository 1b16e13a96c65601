//! `evsite forget --user U`: removes a person's identity (token, user, vehicle, vehicle id)
//! from every stored session, keeping energy, cost and group for the accounts (see
//! [`crate::store::identities`]). Straight on the database: the daemon holds it exclusively
//! while it runs, so it is stopped for this (the command says so rather than wait).

use std::path::{Path, PathBuf};

use crate::store::{OpenExistingError, Store};

/// The default config location on a device, as for `evsite run`.
const DEFAULT_CONFIG: &str = "/etc/evsite/evsite.toml";

#[derive(Debug, Clone, clap::Args)]
pub struct ForgetArgs {
    /// The user whose identity goes (as the token list names them).
    #[arg(long)]
    pub user: String,
    /// The database directory (default: the config's `[storage] path`).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// The config naming the database.
    #[arg(long, short, env = "EVSITE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error("{0}")]
    Config(crate::config::ConfigErrors),
    #[error("{0}")]
    Open(#[from] OpenExistingError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("--user must name someone")]
    NoUser,
}

impl ForgetError {
    /// 78 for a bad config, 75 (try again) while the daemon holds the database, 74 for a
    /// database error, 64 for a bad argument.
    pub fn exit_code(&self) -> u8 {
        match self {
            ForgetError::Config(_) => 78,
            ForgetError::Open(OpenExistingError::InUse { .. }) => 75,
            ForgetError::Open(_) | ForgetError::Store(_) => 74,
            ForgetError::NoUser => 64,
        }
    }
}

/// Forgets the user; returns what it changed, as printed.
pub async fn forget(args: &ForgetArgs) -> Result<String, ForgetError> {
    let user = args.user.trim();
    if user.is_empty() {
        return Err(ForgetError::NoUser);
    }
    let db = match &args.db {
        Some(db) => db.clone(),
        None => {
            let path = args.config.as_deref().unwrap_or(Path::new(DEFAULT_CONFIG));
            crate::config::load(path)
                .map_err(ForgetError::Config)?
                .storage
                .path
        }
    };
    let store = Store::open_existing(&db)?;
    let (changed, active) = store.forget_user(user).await?;
    let mut out = match changed.len() {
        0 => format!("no stored session names user {user:?} any more\n"),
        n => format!(
            "user {user:?} forgotten in {n} session{}: token, user, vehicle and vehicle id removed; energy, cost and group kept\n",
            if n == 1 { "" } else { "s" }
        ),
    };
    for id in &changed {
        out.push_str(&format!("  {id}\n"));
    }
    if !active.is_empty() {
        out.push_str(&format!(
            "{} session{} of user {user:?} still active, left as they are: run this again once {} ended\n",
            active.len(),
            if active.len() == 1 { "" } else { "s" },
            if active.len() == 1 { "it has" } else { "they have" }
        ));
        for id in &active {
            out.push_str(&format!("  {id}\n"));
        }
    }
    Ok(out)
}
