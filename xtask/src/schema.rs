//! `cargo xtask schema`: writes (or checks) the JSON Schemas under `schemas/`, emitted from
//! the protime-model types by protime-schema's `emit_schemas` example (run through cargo,
//! so that xtask itself does not depend on the generated client).

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{Outcome, write_or_check};

pub(crate) fn run(root: &Path, check: bool) -> anyhow::Result<Outcome> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "-p",
            "protime-schema",
            "--example",
            "emit_schemas",
        ])
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!(
            "emitting the schemas failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let files: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).context("emit_schemas printed no JSON")?;
    let mut all_fresh = true;
    for file in &files {
        let (Some(path), Some(contents)) = (
            file.get("path").and_then(|v| v.as_str()),
            file.get("contents").and_then(|v| v.as_str()),
        ) else {
            bail!("emit_schemas printed an entry without path or contents");
        };
        all_fresh &= write_or_check(root, path, contents, check)?;
    }
    Ok(if all_fresh {
        Outcome::UpToDate
    } else {
        Outcome::Stale
    })
}
