//! `evsite models`: the supported meter and charger models with their link and defaults.

use crate::devices::describe::{describe, ModelRow};
use crate::devices::registry;

/// The models table as text.
pub fn table() -> String {
    let rows: Vec<Vec<String>> = registry::all()
        .iter()
        .map(|spec| describe(spec).cells().to_vec())
        .collect();
    super::table::render(&ModelRow::HEADERS, &rows)
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
    fn show_gives_the_file_that_loads_as_the_model() {
        let text = show("alfen-eve").unwrap();
        assert!(text.contains("id = \"alfen-eve\""), "{text}");
        let loaded = load("alfen-eve.toml", text).unwrap();
        assert_eq!(Some(&loaded.spec), registry::find("alfen-eve"));
        let err = show("alfen-eva").unwrap_err();
        assert!(err.contains("alfen-eve"), "{err}");
    }
}
