//! Shared helpers of the workspace-level tests in `tests/tests/` and the example that prints
//! Rust's verdicts on the cross-language corpus for `.ci/check_corpus.py`.

use std::path::{Path, PathBuf};

/// The cross-language corpus: `tests/fixtures/clocking-changes/{valid,invalid}/*.json`.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clocking-changes")
}

/// Every corpus file as (key relative to the corpus dir, e.g. `valid/inout-minimal.json`,
/// raw bytes), sorted by key. Files are read as bytes: some are deliberately not UTF-8.
pub fn corpus_files() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let root = corpus_dir();
    let mut files = Vec::new();
    for label in ["valid", "invalid"] {
        for entry in std::fs::read_dir(root.join(label))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((format!("{label}/{name}"), std::fs::read(&path)?));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The Rust examples in the workspace README, compiled and run as doctests so they stay true
/// (they span crates: the model, the client, the receiver and the SQLite store).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
