//! Shared helpers of the workspace-level tests in `tests/tests/` and the example that prints
//! Rust's verdicts on the cross-language corpus for `.ci/check_corpus.py`.

use std::path::{Path, PathBuf};

/// The cross-language corpus: `tests/fixtures/clocking-changes/<label>/*.json`, one label
/// per directory of [`CORPUS_LABELS`].
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clocking-changes")
}

/// The corpus directories, each an expected verdict per profile (docs/validation-rules.md):
/// `valid/` is accepted under both profiles, `invalid/` refused under both, and
/// `strict-only-invalid/` accepted under `Documented` and refused under `Strict`.
pub const CORPUS_LABELS: [&str; 3] = ["valid", "invalid", "strict-only-invalid"];

/// Whether a corpus file with this key (`valid/x.json`) must be accepted under `profile`.
pub fn corpus_expects_valid(key: &str, profile: protime_model::Profile) -> bool {
    match key.split('/').next() {
        Some("valid") => true,
        Some("strict-only-invalid") => profile == protime_model::Profile::Documented,
        _ => false,
    }
}

/// Every corpus file as (key relative to the corpus dir, e.g. `valid/inout-minimal.json`,
/// raw bytes), sorted by key. Files are read as bytes: some are deliberately not UTF-8.
pub fn corpus_files() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let root = corpus_dir();
    let mut files = Vec::new();
    for label in CORPUS_LABELS {
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
