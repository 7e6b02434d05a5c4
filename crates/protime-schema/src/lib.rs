//! JSON Schema (draft 2020-12) for Protime `clockings` webhook deliveries, derived from the
//! validated model in `protime-model` so that the schema and the Rust validator cannot
//! drift apart.
//!
//! There is one schema per validation profile ([`Profile`]): the default
//! [`Profile::Documented`] one at `schemas/clocking-change.schema.json` (and
//! `schemas/clocking.schema.json`), and the [`Profile::Strict`] one at
//! `schemas/clocking-change.strict.schema.json` (and `schemas/clocking.strict.schema.json`).
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
//!
//! // The docs' delta example: valid by default, refused by the strict schema.
//! let partial = serde_json::json!({"changeType": "InsertOrUpdate",
//!     "data": {"changeVersion": "0000090200004BD0000B", "id": 1050, "date": "2024-12-02"}});
//! assert!(validator.is_valid(&partial));
//! use protime_model::Profile;
//! let strict = protime_schema::validator(protime_schema::clocking_change_schema_for(Profile::Strict)).unwrap();
//! assert!(!strict.is_valid(&partial));
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

pub use protime_model::Profile;
use protime_model::{Clocking, ClockingChange, StrictClocking, StrictClockingChange};
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

/// Schema of one delivery body (`{"changeType": …, "data": …}`) under the default
/// [`Profile::Documented`].
pub fn clocking_change_schema() -> Value {
    clocking_change_schema_for(Profile::Documented)
}

/// Schema of one clocking as the API lists it (a list page item, a get response) under the
/// default [`Profile::Documented`]: `changeVersion` is optional there (the docs' list and
/// get examples carry none); inside a change ([`clocking_change_schema`]) it is required.
pub fn clocking_schema() -> Value {
    clocking_schema_for(Profile::Documented)
}

/// Schema of one delivery body under `profile`.
///
/// ```
/// use protime_schema::{clocking_change_schema_for, Profile};
/// let strict = clocking_change_schema_for(Profile::Strict);
/// assert_eq!(strict["$id"], "https://protime.invalid/schemas/clocking-change.strict.schema.json");
/// ```
pub fn clocking_change_schema_for(profile: Profile) -> Value {
    match profile {
        Profile::Strict => root_schema::<StrictClockingChange>(
            "clocking-change.strict.schema.json",
            "Protime clockings webhook delivery (ClockingChange), strict profile",
        ),
        _ => root_schema::<ClockingChange>(
            "clocking-change.schema.json",
            "Protime clockings webhook delivery (ClockingChange)",
        ),
    }
}

/// Schema of one clocking as the API lists it under `profile`: only `Strict` requires
/// `changeVersion` of it.
///
/// ```
/// use protime_schema::{clocking_schema_for, Profile};
/// let documented = clocking_schema_for(Profile::Documented);
/// assert_eq!(documented["required"], serde_json::json!(["id"]));
/// let strict = clocking_schema_for(Profile::Strict);
/// assert_eq!(strict["required"][0], "changeVersion");
/// ```
pub fn clocking_schema_for(profile: Profile) -> Value {
    match profile {
        Profile::Strict => root_schema::<StrictClocking>(
            "clocking.strict.schema.json",
            "Protime clocking, strict profile",
        ),
        _ => root_schema::<Clocking>("clocking.schema.json", "Protime clocking"),
    }
}

/// Path of the committed delivery schema of `profile`, relative to the workspace root.
///
/// ```
/// use protime_schema::{change_schema_path, Profile};
/// assert_eq!(change_schema_path(Profile::Documented), "schemas/clocking-change.schema.json");
/// ```
pub fn change_schema_path(profile: Profile) -> &'static str {
    match profile {
        Profile::Strict => "schemas/clocking-change.strict.schema.json",
        _ => "schemas/clocking-change.schema.json",
    }
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
        (
            "schemas/clocking-change.strict.schema.json",
            clocking_change_schema_for(Profile::Strict),
        ),
        (
            "schemas/clocking.strict.schema.json",
            clocking_schema_for(Profile::Strict),
        ),
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
