//! `protime validate FILE…`: the model's rules on delivery bodies, as a human report or JSON.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use protime_model::{ClockingChange, parse_delivery};

use crate::Outcome;

/// Arguments of `protime validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Delivery bodies to check; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print a JSON report (an array with one entry per file) instead of text.
    #[arg(long)]
    json: bool,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        Ok(bytes)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

fn summary(change: &ClockingChange) -> String {
    match change {
        ClockingChange::InsertOrUpdate(clocking) => format!(
            "InsertOrUpdate clocking {} ({}, {} {}{})",
            clocking.id,
            clocking.kind.name(),
            clocking.date,
            clocking.time_of_day,
            if clocking.is_deleted() {
                ", soft-deleted"
            } else {
                ""
            }
        ),
        ClockingChange::Delete { id, .. } => format!("Delete clocking {id}"),
    }
}

pub(crate) fn run(args: &ValidateArgs) -> anyhow::Result<Outcome> {
    // Read everything first: an unreadable file is an error of the command, not a verdict.
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        inputs.push((path.display().to_string(), read(path)?));
    }
    let mut all_valid = true;
    let mut report = Vec::new();
    for (name, bytes) in &inputs {
        let result = parse_delivery(bytes);
        all_valid &= result.is_ok();
        if args.json {
            report.push(match &result {
                Ok(change) => {
                    serde_json::json!({ "file": name, "valid": true, "summary": summary(change) })
                }
                Err(errors) => {
                    serde_json::json!({ "file": name, "valid": false, "errors": errors })
                }
            });
        } else {
            match &result {
                Ok(change) => println!("ok       {name}: {}", summary(change)),
                Err(errors) => {
                    println!(
                        "INVALID  {name}: {} violation{}",
                        errors.len(),
                        if errors.len() == 1 { "" } else { "s" }
                    );
                    for error in errors.errors() {
                        println!("         {error}");
                    }
                }
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if all_valid {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}
