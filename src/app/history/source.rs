//! Where the history commands read from: the database named by `--db` or by the config's
//! `[storage] path`, the time zone days and months are counted in (`--tz`, else the site's
//! `[site] timezone`, which defaults to the tariff's, else UTC), and the config's `[demand]`
//! target.

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
    /// The config's `[demand]` target, when a config with one was read: the report then
    /// has a demand section even for months with no window stored.
    pub demand_limit_kw: Option<f64>,
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
        Ok(match config {
            Some(cfg) => Source {
                db,
                ..Source::of_config(&cfg, args.tz)
            },
            None => Source {
                db,
                zone: args.tz.unwrap_or(Tz::UTC),
                chargers: Vec::new(),
                api: None,
                demand_limit_kw: None,
            },
        })
    }

    /// The source of a running site: its config's database, chargers, demand target and zone
    /// (`tz`, else the site's).
    pub fn of_config(cfg: &crate::config::Config, tz: Option<Tz>) -> Source {
        Source {
            db: cfg.storage.path.clone(),
            zone: tz.unwrap_or(cfg.site.timezone),
            chargers: cfg.chargers.iter().map(|c| c.id.clone()).collect(),
            api: Some(cfg.api.clone()),
            demand_limit_kw: cfg.demand.as_ref().map(|d| d.limit_kw),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(edit: impl Fn(String) -> String) -> crate::config::Config {
        let base = include_str!("../../../tests/fixtures/config/base.toml");
        crate::config::load_str(&edit(base.to_owned()), "base").expect("a valid config")
    }

    #[test]
    fn the_site_zone_wins_over_the_tariffs_and_tz_over_both() {
        let cfg = config(|t| {
            t.replace("[site]\n", "[site]\ntimezone = \"Europe/London\"\n")
                + "\n[demand]\nlimit_kw = 25.0\n"
        });
        let s = Source::of_config(&cfg, None);
        assert_eq!(s.zone, chrono_tz::Europe::London);
        assert_eq!(s.demand_limit_kw, Some(25.0));
        assert_eq!(Source::of_config(&cfg, Some(Tz::UTC)).zone, Tz::UTC);
        // Without its own zone the site keeps the tariff's; without [demand], no target.
        let s = Source::of_config(&config(|t| t), None);
        assert_eq!(s.zone, chrono_tz::Europe::Berlin);
        assert_eq!(s.demand_limit_kw, None);
    }
}
