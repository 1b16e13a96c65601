//! Reading a config: the TOML text layered with `EVSITE__SECTION__KEY` environment
//! overrides through the `config` crate, deserialized into the raw schema, then validated.
//!
//! The `config` crate merges sources but forgets positions and is lenient about types
//! (`"63"` passes for a number), so the file is also deserialized strictly with `toml`,
//! whose errors carry spans; its error is reported unless an override supplies that key.

use std::collections::HashMap;
use std::path::Path;

use config::{Environment, File, FileFormat};

use super::error::{ConfigError, ConfigErrors, KeyPath, Location, Segment};
use super::locate::{line_col, Located};
use super::raw::RawConfig;
use super::report::{parse_key_path, EnvOverrides, Reporter, ENV_PREFIX};
use super::types::Config;
use super::validate;
use super::validate::files::FileScope;

/// Loads `path`, applying overrides from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with_env(path, process_env())
}

/// Variables that are not valid Unicode cannot be ours; skip them rather than fail.
fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.to_uppercase().starts_with(ENV_PREFIX))
        .collect()
}

/// Loads `path`, applying the `EVSITE__…` overrides found in `env` (other keys are ignored).
pub fn load_with_env(path: &Path, env: HashMap<String, String>) -> Result<Config, ConfigErrors> {
    check_with_env(path, env, FileScope::None).result
}

/// A config checked with the files it names: the config or every error, and the warnings
/// either way.
#[derive(Debug)]
pub struct Checked {
    pub result: Result<Config, ConfigErrors>,
    pub warnings: Vec<ConfigError>,
}

/// As [`load`], and checks the files the config names within `scope`
/// ([`super::files`]).
pub fn check(path: &Path, scope: FileScope) -> Checked {
    check_with_env(path, process_env(), scope)
}

/// As [`load_with_env`], and checks the files the config names within `scope`.
pub fn check_with_env(path: &Path, env: HashMap<String, String>, scope: FileScope) -> Checked {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_text(&text, &origin, EnvOverrides::new(env), scope),
        Err(e) => Checked {
            result: Err(ConfigErrors::single(ConfigError {
                location: Location::Whole { origin },
                key: String::new(),
                reason: format!("cannot read the config file: {e}"),
            })),
            warnings: Vec::new(),
        },
    }
}

/// Loads a config from its text, without environment overrides; `origin` names it in errors.
pub fn load_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    load_text(text, origin, EnvOverrides::default(), FileScope::None).result
}

fn load_text(text: &str, origin: &str, env: EnvOverrides, scope: FileScope) -> Checked {
    let mut warnings = Vec::new();
    let result = validated(text, origin, &env, scope, &mut warnings);
    Checked { result, warnings }
}

fn validated(
    text: &str,
    origin: &str,
    env: &EnvOverrides,
    scope: FileScope,
    warnings: &mut Vec<ConfigError>,
) -> Result<Config, ConfigErrors> {
    let located = match Located::parse(text) {
        Ok(located) => located,
        Err(e) => return Err(syntax_error(text, origin, &e)),
    };
    let mut rep = Reporter::new(origin, &located, env).check_files(scope);

    let strict = toml::from_str::<RawConfig>(text);
    let strict_ok = strict.is_ok();
    if let Err(e) = strict {
        let (path, location, reason) = strict_error(&rep, &located, &e);
        if env.within(&path.to_string()).is_none() {
            rep.push(location, path.to_string(), reason);
            return Err(rep.finish());
        }
    }

    let raw = match merged(text, env) {
        Ok(raw) => raw,
        Err(e) => {
            let (key, reason) = describe_config_error(&e);
            let path = parse_key_path(&key);
            let leaf = key.rsplit('.').next().unwrap_or_default();
            let var = env.within(&key).or_else(|| env.by_leaf(leaf));
            // When the file alone deserialized cleanly, the culprit is an override.
            let var = if strict_ok {
                var.or_else(|| env.first())
            } else {
                var
            };
            let location = match var {
                Some(var) => Location::Env {
                    var: var.to_owned(),
                },
                None => rep.locate(&path),
            };
            rep.push(location, key, reason);
            return Err(rep.finish());
        }
    };

    let config = validate::validate(&raw, &mut rep);
    *warnings = rep.take_warnings();
    config.ok_or_else(|| rep.finish())
}

/// The file and the overrides merged by the `config` crate, deserialized.
fn merged(text: &str, env: &EnvOverrides) -> Result<RawConfig, config::ConfigError> {
    let mut builder = config::Config::builder().add_source(File::from_str(text, FileFormat::Toml));
    if !env.is_empty() {
        builder = builder.add_source(
            Environment::with_prefix("EVSITE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env.vars().clone().into_iter().collect())),
        );
    }
    builder.build()?.try_deserialize()
}

/// The key and reason of a `config` crate error, without its own "for key … in …" suffix.
/// An unknown field is reported under its own key, so it can be traced to its variable.
fn describe_config_error(e: &config::ConfigError) -> (String, String) {
    let (key, reason) = match e {
        config::ConfigError::Type {
            unexpected,
            expected,
            key,
            ..
        } => (
            key.clone().unwrap_or_default(),
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        config::ConfigError::At { error, key, .. } => {
            let (inner_key, reason) = describe_config_error(error);
            let outer = key.clone().unwrap_or_default();
            let key = match (outer.is_empty(), inner_key.is_empty()) {
                (_, true) => outer,
                (true, false) => inner_key,
                (false, false) => format!("{outer}.{inner_key}"),
            };
            (key, reason)
        }
        config::ConfigError::Message(m) => (String::new(), m.clone()),
        other => (String::new(), other.to_string()),
    };
    match unknown_field(&reason) {
        Some(field) if !key.ends_with(field) => {
            let key = if key.is_empty() {
                field.to_owned()
            } else {
                format!("{key}.{field}")
            };
            (key, reword_unknown(&reason))
        }
        _ => (key, reword_unknown(&reason)),
    }
}

/// The key path, position and reason of a strict (`toml`) deserialization error.
fn strict_error(
    rep: &Reporter<'_>,
    located: &Located,
    e: &toml::de::Error,
) -> (KeyPath, Location, String) {
    let message = e.message();
    let span = e.span().unwrap_or(0..0);
    // An empty span is serde's way of blaming the document root (a missing section).
    let mut path = if span.is_empty() {
        KeyPath::default()
    } else {
        located.path_at(span.start)
    };
    if let Some(field) = missing_field(message) {
        path = path.key(field);
        return (
            path.clone(),
            rep.locate(&path),
            "missing required key".into(),
        );
    }
    if let Some(field) = unknown_field(message) {
        if path.segments().last() != Some(&Segment::Key(field.to_owned())) {
            path = path.key(field);
        }
        return (path, rep.at_offset(span.start), reword_unknown(message));
    }
    (path, rep.at_offset(span.start), message.to_owned())
}

fn missing_field(message: &str) -> Option<&str> {
    backticked_after(message, "missing field `")
}

fn unknown_field(message: &str) -> Option<&str> {
    backticked_after(message, "unknown field `")
}

fn backticked_after<'m>(message: &'m str, lead: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(lead)?;
    rest.find('`').map(|end| &rest[..end])
}

/// "unknown field `x`, expected one of `a`, `b`" → "unknown key, expected one of `a`, `b`".
fn reword_unknown(message: &str) -> String {
    match (unknown_field(message), message.split_once(", expected ")) {
        (Some(_), Some((_, allowed))) => format!("unknown key, expected {allowed}"),
        (Some(_), None) => "unknown key".to_owned(),
        _ => message.to_owned(),
    }
}

fn syntax_error(text: &str, origin: &str, e: &toml_edit::TomlError) -> ConfigErrors {
    let (line, col) = line_col(text, e.span().map_or(0, |s| s.start));
    ConfigErrors::single(ConfigError {
        location: Location::File {
            origin: origin.to_owned(),
            line,
            col,
        },
        key: String::new(),
        reason: format!("invalid TOML: {}", e.message().trim_end()),
    })
}
