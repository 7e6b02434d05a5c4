//! `protime schema [--out DIR]`: writes the JSON Schemas emitted from the model.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::Outcome;

/// Arguments of `protime schema`.
#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// Directory to write `clocking-change.schema.json` and `clocking.schema.json` (the
    /// default, documented profile) and their `.strict.schema.json` counterparts into
    /// (created if missing).
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    out: PathBuf,
}

pub(crate) fn run(args: &SchemaArgs) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for file in protime_schema::schema_files() {
        let name = Path::new(file.path)
            .file_name()
            .context("schema file without a name")?;
        let target = args.out.join(name);
        std::fs::write(&target, &file.contents)
            .with_context(|| format!("cannot write {}", target.display()))?;
        println!("wrote {}", target.display());
    }
    Ok(Outcome::Success)
}
