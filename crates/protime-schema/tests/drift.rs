//! The drift check of the JSON Schemas: the committed files under `schemas/` must be exactly
//! what the protime-model types emits now (`cargo xtask schema` regenerates them).
#![allow(missing_docs)]

#[test]
fn committed_schemas_match_the_model() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let stale: Vec<&str> = protime_schema::schema_files()
        .into_iter()
        .filter(|file| {
            std::fs::read_to_string(root.join(file.path)).unwrap_or_default() != file.contents
        })
        .map(|file| file.path)
        .collect();
    assert!(
        stale.is_empty(),
        "stale JSON Schema: {} differs from what the protime-model types emits; run `cargo xtask schema`",
        stale.join(", ")
    );
}
