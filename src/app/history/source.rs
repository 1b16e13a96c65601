//! Where the history commands read from: the database named by `--db` or by the config's
//! `[storage] path`, and the time zone days are counted in (`--tz`, else the tariff's, else
//! UTC).

use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use super::{HistoryArgs, HistoryError};
use crate::store::Store;

/// The default config location on a device, as for `evsite run`.
pub const DEFAULT_CONFIG: &str = "/etc/evsite/evsite.toml";

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub db: PathBuf,
    pub zone: Tz,
    /// The configured chargers, when a config was read: the report shows idle ones too.
    pub chargers: Vec<String>,
    /// The config's local API, when a config was read: where the daemon holding the
    /// database answers instead.
    pub api: Option<crate::config::Api>,
}

impl Source {
    /// `--db` wins over the config's storage path; the config is read only when there is no
    /// `--db` or when it was named (flag or `EVSITE_CONFIG`).
    pub fn resolve(args: &HistoryArgs) -> Result<Source, HistoryError> {
        let (db, config) = match (&args.db, &args.config) {
            (Some(db), None) => (db.clone(), None),
            (Some(db), Some(path)) => (db.clone(), Some(load(path)?)),
            (None, path) => {
                let cfg = load(path.as_deref().unwrap_or(Path::new(DEFAULT_CONFIG)))?;
                (cfg.storage.path.clone(), Some(cfg))
            }
        };
        let tariff_zone = match config.as_ref().and_then(|c| c.tariff.as_ref()) {
            Some(t) => Some(parse_zone(&t.timezone).map_err(HistoryError::Usage)?),
            None => None,
        };
        Ok(Source {
            db,
            zone: args.tz.or(tariff_zone).unwrap_or(Tz::UTC),
            api: config.as_ref().map(|c| c.api.clone()),
            chargers: config
                .map(|c| c.chargers.into_iter().map(|c| c.id).collect())
                .unwrap_or_default(),
        })
    }

    /// The source of a running site: its config's database, chargers and zone (`tz`, else
    /// the tariff's, else UTC).
    pub fn of_config(cfg: &crate::config::Config, tz: Option<Tz>) -> Result<Source, HistoryError> {
        let tariff_zone = match &cfg.tariff {
            Some(t) => Some(parse_zone(&t.timezone).map_err(HistoryError::Usage)?),
            None => None,
        };
        Ok(Source {
            db: cfg.storage.path.clone(),
            zone: tz.or(tariff_zone).unwrap_or(Tz::UTC),
            chargers: cfg.chargers.iter().map(|c| c.id.clone()).collect(),
            api: Some(cfg.api.clone()),
        })
    }

    /// Opens the database without creating, migrating or moving anything.
    pub fn open(&self) -> Result<Store, HistoryError> {
        Ok(Store::open_existing(&self.db)?)
    }
}

fn load(path: &Path) -> Result<crate::config::Config, HistoryError> {
    crate::config::load(path).map_err(HistoryError::Config)
}

/// An IANA time zone name ("Europe/Berlin", "UTC").
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {name:?} (expected an IANA name such as Europe/Berlin)")
    })
}
