//! `evsite models`: the supported meter and charger models with their link and defaults.

use std::path::Path;

use crate::devices::describe::{describe, ModelRow};
use crate::devices::file;
use crate::devices::model::ModelSpec;
use crate::devices::registry;

/// A charger with no fallback of its own: nothing bounds its current when evsite stops.
fn lacks_fallback(spec: &ModelSpec) -> bool {
    spec.charger.is_some_and(|c| {
        c.heartbeat.is_none() && c.comms_timeout.is_none() && c.safe_current.is_none()
    })
}

/// `evsite models`: the built-in models and the installer's own from `dir` (default
/// `/etc/evsite/models.d` when it exists) in one table; and the lines for stderr, the
/// invariant-3 warning of each charger without a fallback and each mistake in the files.
/// `false` when a file has mistakes.
pub fn listing(dir: Option<&Path>) -> (String, Vec<String>, bool) {
    let default = Path::new(crate::config::DEFAULT_MODELS_DIR);
    let dir = dir.or_else(|| default.is_dir().then_some(default));
    let mut notes = Vec::new();
    let mut ok = true;
    let user = match dir.map(file::load_path) {
        None => Vec::new(),
        Some(Ok(u)) => {
            notes.extend(u.warnings.iter().map(ToString::to_string));
            u.models
        }
        Some(Err(errors)) => {
            ok = false;
            notes.extend(errors);
            Vec::new()
        }
    };
    for spec in registry::all() {
        if lacks_fallback(spec) {
            notes.push(format!(
                "{}: warning: no fallback of its own (no comms timeout, heartbeat or safe \
                 current): if evsite stops, nothing bounds this charger's current (safety \
                 invariant 3 of the contract)",
                spec.name
            ));
        }
    }
    let rows: Vec<Vec<String>> = registry::all()
        .iter()
        .chain(&user)
        .map(|spec| describe(spec).cells().to_vec())
        .collect();
    (super::table::render(&ModelRow::HEADERS, &rows), notes, ok)
}

/// The file of the built-in model `id`, as shipped: the start of a user's own model.
pub fn show(id: &str) -> Result<&'static str, String> {
    registry::source(id).ok_or_else(|| {
        let known: Vec<&str> = registry::all().iter().map(|m| m.name).collect();
        format!("no built-in model {id:?}; known: {}", known.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::file::load;

    #[test]
    fn listing_adds_the_installers_models_and_names_chargers_without_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let mine = show("alfen-eve")
            .unwrap()
            .replace("id = \"alfen-eve\"", "id = \"my-alfen\"")
            .lines()
            .filter(|l| !l.starts_with("safe_current"))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.path().join("my-alfen.toml"), mine).unwrap();
        let (table, notes, ok) = listing(Some(dir.path()));
        assert!(ok);
        assert!(table.lines().any(|l| l.starts_with("my-alfen ")), "{table}");
        assert_eq!(table.lines().count(), registry::all().len() + 2, "{table}");
        let warned = |id: &str| {
            notes
                .iter()
                .any(|n| n.contains(id) && n.contains("safety invariant 3"))
        };
        assert!(warned("my-alfen.toml:"), "{notes:?}");
        assert!(warned("phoenix-charx"), "{notes:?}");
        assert!(!warned("alfen-eve"), "{notes:?}");
        std::fs::write(dir.path().join("bad.toml"), "id = 1\n").unwrap();
        let (table, notes, ok) = listing(Some(dir.path()));
        assert!(!ok);
        assert!(notes.iter().any(|n| n.contains("bad.toml:1:")), "{notes:?}");
        assert_eq!(table.lines().count(), registry::all().len() + 1, "{table}");
    }

    #[test]
    fn show_gives_the_file_that_loads_as_the_model() {
        let text = show("alfen-eve").unwrap();
        assert!(text.contains("id = \"alfen-eve\""), "{text}");
        let loaded = load("alfen-eve.toml", text).unwrap();
        assert_eq!(Some(&loaded.spec), registry::find("alfen-eve"));
        let err = show("alfen-eva").unwrap_err();
        assert!(err.contains("alfen-eve"), "{err}");
    }
}
