//! The published JSON schemas (`schemas/*.json`), for checking what evsite sends against them.

use serde_json::Value;

/// The validator of `schemas/{name}`.
pub fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("schema file");
    let value: Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::validator_for(&value).expect("a valid schema")
}

/// Fails with every error when `instance` does not fit `v`.
pub fn assert_valid(v: &jsonschema::Validator, instance: &Value) {
    let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{instance}\n{errors:#?}");
}
