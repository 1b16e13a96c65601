//! Collecting errors and deciding where each one points: a file position, or the
//! environment variable that supplied the value.

use std::collections::HashMap;

use super::error::{ConfigError, ConfigErrors, KeyPath, Location, Segment};
use super::locate::Located;
use super::validate::files::FileScope;

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "EVSITE__";

/// The environment overrides in force, by the dotted key each one sets.
#[derive(Debug, Clone, Default)]
pub struct EnvOverrides {
    /// (dotted key as the `config` crate sees it, variable name), sorted by variable name.
    keys: Vec<(String, String)>,
    /// Only the `EVSITE__` variables, as handed to the `config` crate.
    vars: HashMap<String, String>,
}

impl EnvOverrides {
    /// Keeps the `EVSITE__SECTION__KEY` variables of `env`; all others are ignored.
    pub fn new(env: HashMap<String, String>) -> Self {
        let mut keys = Vec::new();
        let mut vars = HashMap::new();
        for (var, value) in env {
            let lower = var.to_lowercase();
            let Some(rest) = lower.strip_prefix(&ENV_PREFIX.to_lowercase()) else {
                continue;
            };
            keys.push((rest.replace("__", "."), var.clone()));
            vars.insert(var, value);
        }
        keys.sort_by(|a, b| a.1.cmp(&b.1));
        EnvOverrides { keys, vars }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    /// The variable that set exactly this key.
    pub fn exact(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A variable that set this key or something below it.
    pub fn within(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k == key || k.starts_with(&format!("{key}.")))
            .map(|(_, v)| v.as_str())
    }

    /// A variable whose last key segment is `name` (for errors that name only a field).
    pub fn by_leaf(&self, name: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k.rsplit('.').next() == Some(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn first(&self) -> Option<&str> {
        self.keys.first().map(|(_, v)| v.as_str())
    }
}

/// Collects errors against one config text and its environment overrides.
pub struct Reporter<'a> {
    origin: &'a str,
    located: &'a Located,
    env: &'a EnvOverrides,
    errors: Vec<ConfigError>,
    /// Worth telling, not worth refusing the config for (a secret others may read).
    warnings: Vec<ConfigError>,
    files: FileScope,
}

impl<'a> Reporter<'a> {
    pub fn new(origin: &'a str, located: &'a Located, env: &'a EnvOverrides) -> Self {
        Reporter {
            origin,
            located,
            env,
            errors: Vec::new(),
            warnings: Vec::new(),
            files: FileScope::None,
        }
    }

    /// Also check the files the config names, within `scope`.
    pub fn check_files(mut self, scope: FileScope) -> Self {
        self.files = scope;
        self
    }

    pub fn file_scope(&self) -> FileScope {
        self.files
    }

    /// Records a warning about the value at `path`.
    pub fn warn(&mut self, path: &KeyPath, reason: impl Into<String>) {
        let location = self.locate(path);
        self.warnings.push(ConfigError {
            location,
            key: path.to_string(),
            reason: reason.into(),
        });
    }

    /// Records a warning already placed (in another file, say).
    pub fn warn_at(&mut self, location: Location, key: String, reason: String) {
        self.warnings.push(ConfigError {
            location,
            key,
            reason,
        });
    }

    /// The warnings so far.
    pub fn take_warnings(&mut self) -> Vec<ConfigError> {
        std::mem::take(&mut self.warnings)
    }

    /// Records a problem with the value at `path`.
    pub fn error(&mut self, path: &KeyPath, reason: impl Into<String>) {
        let location = self.locate(path);
        self.push(location, path.to_string(), reason.into());
    }

    /// Records a problem already placed (by a parser's span, say).
    pub fn push(&mut self, location: Location, key: String, reason: String) {
        self.errors.push(ConfigError {
            location,
            key,
            reason,
        });
    }

    /// A file position for byte `offset`.
    pub fn at_offset(&self, offset: usize) -> Location {
        let (line, col) = self.located.line_col(offset);
        Location::File {
            origin: self.origin.to_owned(),
            line,
            col,
        }
    }

    /// Where the value at `path` came from: the overriding variable, else its position in
    /// the text, else the closest enclosing table in the text.
    pub fn locate(&self, path: &KeyPath) -> Location {
        let key = path.to_string();
        if let Some(var) = self.env.exact(&key) {
            return Location::Env {
                var: var.to_owned(),
            };
        }
        if let Some(offset) = self.located.exact(path) {
            return self.at_offset(offset);
        }
        if let Some(var) = self.env.within(&key) {
            return Location::Env {
                var: var.to_owned(),
            };
        }
        self.at_offset(self.located.nearest(path))
    }

    /// Errors so far, to tell whether a section added any.
    pub fn count(&self) -> usize {
        self.errors.len()
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn finish(self) -> ConfigErrors {
        ConfigErrors {
            errors: self.errors,
        }
    }
}

/// Parses a dotted key path as printed (`charger[1].phase_map[0]`) back into segments.
pub fn parse_key_path(text: &str) -> KeyPath {
    let mut segs = Vec::new();
    for part in text.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            segs.push(Segment::Key(rest[..open].to_owned()));
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                match stripped[..close].parse() {
                    Ok(n) => segs.push(Segment::Index(n)),
                    Err(_) => segs.push(Segment::Key(stripped[..close].to_owned())),
                }
                rest = &stripped[close + 1..];
            }
        } else {
            segs.push(Segment::Key(rest.to_owned()));
        }
    }
    KeyPath(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_round_trip() {
        for text in [
            "site.grid_limit_a",
            "charger[1].phase_map[0]",
            "tariff.window[2].days",
        ] {
            assert_eq!(parse_key_path(text).to_string(), text);
        }
    }

    #[test]
    fn only_prefixed_variables_are_overrides() {
        let env = EnvOverrides::new(HashMap::from([
            ("EVSITE__SITE__GRID_LIMIT_A".to_owned(), "50".to_owned()),
            ("EVSITE_CONFIG".to_owned(), "/tmp/x.toml".to_owned()),
            ("PATH".to_owned(), "/bin".to_owned()),
        ]));
        assert_eq!(env.vars().len(), 1);
        assert_eq!(
            env.exact("site.grid_limit_a"),
            Some("EVSITE__SITE__GRID_LIMIT_A")
        );
        assert_eq!(env.within("site"), Some("EVSITE__SITE__GRID_LIMIT_A"));
        assert_eq!(env.exact("site"), None);
    }
}
