//! Prints Rust's verdict on every corpus file as JSON (`{"valid/x.json": true, …}`, true =
//! accepted by `parse_delivery_with`), for `.ci/check_corpus.py --rust-verdicts`. Under the
//! default profile (`Documented`), or under `Strict` with `--strict`. Also the verdict of
//! `parse_clocking_with` on every listed item of `tests/fixtures/docs-examples.json`, keyed
//! `item:<file>` (`item:clocking-items/x.json`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use protime_model::Profile;

fn main() -> ExitCode {
    let profile = match std::env::args().nth(1).as_deref() {
        None => Profile::Documented,
        Some("--strict") => Profile::Strict,
        Some(other) => {
            eprintln!("usage: corpus_verdicts [--strict] (unknown argument {other:?})");
            return ExitCode::from(2);
        }
    };
    let files = match protime_tests::corpus_files() {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: cannot read the corpus: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut verdicts: BTreeMap<String, bool> = files
        .into_iter()
        .map(|(key, bytes)| {
            let accepted = protime_model::parse_delivery_with(&bytes, profile).is_ok();
            (key, accepted)
        })
        .collect();
    let fixtures = protime_tests::corpus_dir().join("..");
    let manifest = std::fs::read(fixtures.join("docs-examples.json"))
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string())
        });
    let manifest = match manifest {
        Ok(manifest) => manifest,
        Err(error) => {
            eprintln!("error: cannot read tests/fixtures/docs-examples.json: {error}");
            return ExitCode::FAILURE;
        }
    };
    let items = manifest
        .get("items")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    for item in items {
        let Some(file) = item.get("file").and_then(serde_json::Value::as_str) else {
            eprintln!("error: an item of docs-examples.json names no file: {item}");
            return ExitCode::FAILURE;
        };
        let bytes = match std::fs::read(fixtures.join(file)) {
            Ok(bytes) => bytes,
            Err(error) => {
                eprintln!("error: cannot read {file}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let accepted = protime_model::parse_clocking_with(&bytes, profile).is_ok();
        verdicts.insert(format!("item:{file}"), accepted);
    }
    match serde_json::to_string_pretty(&verdicts) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
