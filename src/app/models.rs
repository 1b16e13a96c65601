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
