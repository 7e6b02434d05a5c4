//! Project automation for the protime workspace.
//!
//! - `cargo xtask codegen` regenerates every progenitor client from its OpenAPI spec.
//! - `cargo xtask codegen --check` regenerates in memory and fails with a unified diff
//!   when a committed file differs.
//! - `cargo xtask schema [--check]` does the same for the JSON Schemas under `schemas/`.
//! - `cargo xtask spec diff OLD NEW [--format markdown|json]` prints a semantic diff of two
//!   OpenAPI documents, each change classified for Rust and JSON Schema users.
//! - `cargo xtask spec import FILE [--root DIR] [--no-schemas]` takes a new spec from
//!   Protime: normalize, preflight, carry our annotations over, write, regenerate, report.

mod codegen;
mod schema;
mod spec;

use xtask::{normalize, preflight};

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <codegen | schema> [--check]\n       cargo xtask spec diff OLD NEW [--format markdown|json] [--require-bump BASE_VERSION]\n       cargo xtask spec import FILE [--root DIR] [--no-schemas]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str);
    if command == Some("spec") {
        return spec::main(args.get(1..).unwrap_or_default(), &workspace_root());
    }
    let check = args.iter().skip(1).any(|a| a == "--check");
    if let Some(unknown) = args.iter().skip(1).find(|a| *a != "--check") {
        eprintln!("error: unknown argument `{unknown}`\n{USAGE}");
        return ExitCode::from(2);
    }
    let root = workspace_root();
    let result = match command {
        Some("codegen") => codegen::run(&root, check),
        Some("schema") => schema::run(&root, check),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(Outcome::UpToDate) => ExitCode::SUCCESS,
        Ok(Outcome::Stale) => ExitCode::FAILURE,
        Err(error) => {
            // One line per cause, no backtrace: these errors are meant to be acted on.
            for line in format!("{error:#}").lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// What a generation run found.
pub(crate) enum Outcome {
    /// Every file matched (check mode) or was written (write mode).
    UpToDate,
    /// Check mode only: at least one committed file differs from a fresh generation.
    Stale,
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Compares `fresh` with the file at `relative` (check mode, printing a unified diff when
/// they differ) or writes it (write mode). Returns whether the file was already up to date.
pub(crate) fn write_or_check(
    root: &Path,
    relative: &str,
    fresh: &str,
    check: bool,
) -> anyhow::Result<bool> {
    let path = root.join(relative);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == fresh {
        if !check {
            println!("{relative}: up to date");
        }
        return Ok(true);
    }
    if check {
        let diff = similar::TextDiff::from_lines(&committed, fresh);
        // Write errors are ignored: a closed pipe (`| head`) must not turn into a panic.
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "{relative} is stale: it differs from a fresh generation; run `cargo xtask codegen` (clients) or `cargo xtask schema` (JSON Schemas)"
        );
        let _ = write!(
            stderr,
            "{}",
            diff.unified_diff().context_radius(3).header(
                &format!("a/{relative} (committed)"),
                &format!("b/{relative} (generated)")
            )
        );
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, fresh)?;
    println!("{relative}: written");
    Ok(true)
}
