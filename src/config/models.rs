//! The device models config can name: the built-in ones in the device registry, and the
//! installer's own from the models directory (`[devices] models_dir`).
//!
//! Validation goes through these functions only, so the registry is one seam.

use std::path::Path;

use super::error::{KeyPath, Location};
use super::raw::RawDevices;
use super::report::Reporter;
use crate::devices::file;
use crate::devices::model::ModelSpec;
use crate::devices::registry;

/// Where the installer's models are when the config names no directory.
pub const DEFAULT_MODELS_DIR: &str = "/etc/evsite/models.d";

/// The model called `name` among `user` and the built-in ones, if any.
pub fn find(user: &[&'static ModelSpec], name: &str) -> Option<&'static ModelSpec> {
    user.iter()
        .copied()
        .find(|m| m.name == name)
        .or_else(|| registry::find(name))
}

/// Every model: the built-in ones, then `user`.
pub fn all(user: &[&'static ModelSpec]) -> Vec<&'static ModelSpec> {
    registry::all().iter().chain(user).copied().collect()
}

/// Reads every `*.toml` in the models directory, in file-name order. Each mistake in a file is
/// reported at its place in that file (`file:line:col`), each warning too; a model with errors
/// is left out, and one named like another model is refused.
pub fn user_models(raw: &RawDevices, rep: &mut Reporter<'_>) -> Vec<&'static ModelSpec> {
    let path = KeyPath::root("devices").key("models_dir");
    let dir = match raw.models_dir.as_deref() {
        Some(d) => {
            if !Path::new(d).is_dir() {
                rep.error(&path, format!("{d:?} is not a directory"));
                return Vec::new();
            }
            d
        }
        None if Path::new(DEFAULT_MODELS_DIR).is_dir() => DEFAULT_MODELS_DIR,
        None => return Vec::new(),
    };
    let mut files = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) == Some("toml") {
                    files.push(p);
                }
            }
        }
        Err(e) => {
            rep.error(&path, format!("cannot read {dir:?}: {e}"));
            return Vec::new();
        }
    }
    files.sort();
    let mut models: Vec<&'static ModelSpec> = Vec::new();
    for p in files {
        let origin = p.display().to_string();
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => {
                rep.push(
                    Location::Whole { origin },
                    String::new(),
                    format!("cannot read this model file: {e}"),
                );
                continue;
            }
        };
        let at = |f: &file::Finding| Location::File {
            origin: f.file.clone(),
            line: f.line,
            col: f.col,
        };
        match file::load(&origin, &text) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    rep.warn_at(at(w), w.key.clone(), w.reason.clone());
                }
                let name = loaded.spec.name;
                if registry::find(name).is_some() || models.iter().any(|m| m.name == name) {
                    rep.push(
                        Location::File {
                            origin,
                            line: 1,
                            col: 1,
                        },
                        "id".into(),
                        format!("another model is already called {name:?}; give this one an id of its own"),
                    );
                    continue;
                }
                // Leaked: a config's models live as long as the program that read it.
                models.push(Box::leak(Box::new(loaded.spec)));
            }
            Err(findings) => {
                for f in findings {
                    if f.warning {
                        rep.warn_at(at(&f), f.key, f.reason);
                    } else {
                        rep.push(at(&f), f.key, f.reason);
                    }
                }
            }
        }
    }
    models
}

#[cfg(test)]
mod tests {
    use crate::config::{check, load_str, FileScope};
    use crate::devices::registry;

    const BASE: &str = include_str!("../../tests/fixtures/config/base.toml");

    /// The base config with the first charger set to `model` and the models directory `dir`.
    fn config(model: &str, dir: &std::path::Path) -> String {
        let text = BASE.replacen("model = \"alfen-eve\"", &format!("model = \"{model}\""), 1);
        format!(
            "[devices]\nmodels_dir = {:?}\n\n{text}",
            dir.display().to_string()
        )
    }

    /// Alfen's shipped file under the id `my-alfen`, with `edit` applied.
    fn my_alfen(edit: impl Fn(String) -> String) -> String {
        let text = registry::source("alfen-eve")
            .unwrap()
            .replace("id = \"alfen-eve\"", "id = \"my-alfen\"");
        edit(text)
    }

    #[test]
    fn a_user_model_is_found_by_its_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("my-alfen.toml"), my_alfen(|t| t)).unwrap();
        std::fs::write(dir.path().join("README.txt"), "not a model").unwrap();
        let cfg = load_str(&config("my-alfen", dir.path()), "site.toml").unwrap();
        let m = cfg.chargers[0].device.model;
        assert_eq!(m.name, "my-alfen");
        assert_eq!(m.charger, registry::find("alfen-eve").unwrap().charger);
        // Without the directory the model is unknown, and the error lists the known ones.
        let err = load_str(&config("my-alfen", &dir.path().join("nope")), "site.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("site.toml:2:14: devices.models_dir:"), "{err}");
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn a_mistake_in_a_user_model_is_located_in_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = my_alfen(|t| t.replace("type = \"float64\"", "type = \"double\""));
        let line = text.lines().position(|l| l.contains("\"double\"")).unwrap() + 1;
        let col = text
            .lines()
            .nth(line - 1)
            .unwrap()
            .find("\"double\"")
            .unwrap()
            + 1;
        let file = dir.path().join("my-alfen.toml");
        std::fs::write(&file, &text).unwrap();
        let err = load_str(&config("my-alfen", dir.path()), "site.toml")
            .unwrap_err()
            .to_string();
        let at = format!("{}:{line}:{col}: registers.energy.type:", file.display());
        assert!(err.contains(&at), "{at}\n{err}");
        // And the charger naming the refused model is an error of the config too.
        assert!(err.contains("unknown charger model \"my-alfen\""), "{err}");
    }

    #[test]
    fn a_user_model_may_not_take_a_built_in_id() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alfen.toml");
        std::fs::write(&file, registry::source("alfen-eve").unwrap()).unwrap();
        let err = load_str(&config("alfen-eve", dir.path()), "site.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{}:1:1: id:", file.display())),
            "{err}"
        );
    }

    #[test]
    fn a_charger_with_no_fallback_loads_with_a_located_warning() {
        let dir = tempfile::tempdir().unwrap();
        let text = my_alfen(|t| {
            t.lines()
                .filter(|l| !l.starts_with("safe_current"))
                .collect::<Vec<_>>()
                .join("\n")
        });
        let file = dir.path().join("my-alfen.toml");
        std::fs::write(&file, &text).unwrap();
        let etc = tempfile::tempdir().unwrap();
        let site = etc.path().join("site.toml");
        std::fs::write(&site, config("my-alfen", dir.path())).unwrap();
        let checked = check(&site, FileScope::None);
        let cfg = checked.result.unwrap();
        assert_eq!(cfg.chargers[0].device.model.name, "my-alfen");
        let line = text.lines().position(|l| l == "[charger]").unwrap() + 1;
        let shown: Vec<String> = checked.warnings.iter().map(ToString::to_string).collect();
        assert!(
            shown
                .iter()
                .any(|w| w.starts_with(&format!("{}:{line}:", file.display()))
                    && w.contains("safety invariant 3")),
            "{shown:?}"
        );
    }
}
