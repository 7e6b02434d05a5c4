//! JSON Schema (draft 2020-12) for Protime `clockings` webhook deliveries, derived from the
//! validated model in `protime-model` so that the schema and the Rust validator cannot
//! drift apart.
//!
//! The committed files under `schemas/` are produced by [`schema_files`] (run
//! `cargo xtask schema` after changing the model); `cargo test --workspace` fails when they
//! are stale. Consumers in other languages validate with those files; Rust consumers can
//! build a validator directly:
//!
//! ```
//! let validator = protime_schema::validator(protime_schema::clocking_change_schema()).unwrap();
//! let body = serde_json::json!({"changeType": "Delete",
//!     "data": {"changeVersion": "0000090200004BD0000C", "id": 1001}});
//! assert!(validator.is_valid(&body));
//! ```
//!
//! # Features
//!
//! None.
//!
//! # Public dependencies
//!
//! - `serde_json` 1: the schemas are `serde_json::Value`s;
//! - `jsonschema` 0.61: [`validator`] returns a `jsonschema::Validator`.

use protime_model::{Clocking, ClockingChange};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;

/// Base of the `$id` of every emitted schema.
pub const SCHEMA_ID_BASE: &str = "https://protime.invalid/schemas/";

fn root_schema<T: JsonSchema>(file_name: &str, title: &str) -> Value {
    let generator = SchemaGenerator::new(SchemaSettings::draft2020_12());
    let schema = generator.into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Value::Object(map) = &mut value {
        map.insert(
            "$id".into(),
            Value::from(format!("{SCHEMA_ID_BASE}{file_name}")),
        );
        map.insert("title".into(), Value::from(title));
    }
    value
}

/// Schema of one delivery body: `{"changeType": …, "data": …}`.
pub fn clocking_change_schema() -> Value {
    root_schema::<ClockingChange>(
        "clocking-change.schema.json",
        "Protime clockings webhook delivery (ClockingChange)",
    )
}

/// Schema of one clocking (the `data` of an `InsertOrUpdate` change).
pub fn clocking_schema() -> Value {
    root_schema::<Clocking>("clocking.schema.json", "Protime clocking")
}

/// One emitted schema file.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaFile {
    /// Path relative to the workspace root, e.g. `schemas/clocking-change.schema.json`.
    pub path: &'static str,
    /// The file's exact contents (pretty-printed JSON with a trailing newline).
    pub contents: String,
}

/// Every schema file this crate emits, exactly as committed under `schemas/`.
pub fn schema_files() -> Vec<SchemaFile> {
    [
        (
            "schemas/clocking-change.schema.json",
            clocking_change_schema(),
        ),
        ("schemas/clocking.schema.json", clocking_schema()),
    ]
    .into_iter()
    .map(|(path, value)| SchemaFile {
        path,
        contents: pretty(&value),
    })
    .collect()
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// A `jsonschema` validator for `schema` with format assertion on (`format: date` is
/// otherwise only an annotation in draft 2020-12).
pub fn validator(
    schema: Value,
) -> Result<jsonschema::Validator, Box<jsonschema::ValidationError<'static>>> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(Box::new)
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
