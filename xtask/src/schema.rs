//! `cargo xtask schema`: writes (or checks) the JSON Schemas under `schemas/`, emitted from
//! the protime-webhooks model by protime-schema.

use std::path::Path;

use crate::{Outcome, write_or_check};

pub(crate) fn run(root: &Path, check: bool) -> anyhow::Result<Outcome> {
    let mut all_fresh = true;
    for file in protime_schema::schema_files() {
        all_fresh &= write_or_check(root, file.path, &file.contents, check)?;
    }
    Ok(if all_fresh {
        Outcome::UpToDate
    } else {
        Outcome::Stale
    })
}

#[cfg(test)]
mod tests {
    /// The drift check that `cargo test --workspace` runs: the committed JSON Schemas must be
    /// exactly what the model emits now.
    #[test]
    fn committed_schemas_match_the_model() {
        let root = crate::workspace_root();
        let stale: Vec<&str> = protime_schema::schema_files()
            .into_iter()
            .filter(|file| {
                std::fs::read_to_string(root.join(file.path)).unwrap_or_default() != file.contents
            })
            .map(|file| file.path)
            .collect();
        assert!(
            stale.is_empty(),
            "stale JSON Schema: {} differs from what the protime-webhooks model emits; run `cargo xtask schema`",
            stale.join(", ")
        );
    }
}
