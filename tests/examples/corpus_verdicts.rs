//! Prints Rust's verdict on every corpus file as JSON (`{"valid/x.json": true, …}`, true =
//! accepted by `parse_delivery_with`), for `.ci/check_corpus.py --rust-verdicts`. Under the
//! default profile (`Documented`), or under `Strict` with `--strict`.

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
    let verdicts: BTreeMap<String, bool> = files
        .into_iter()
        .map(|(key, bytes)| {
            let accepted = protime_model::parse_delivery_with(&bytes, profile).is_ok();
            (key, accepted)
        })
        .collect();
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
