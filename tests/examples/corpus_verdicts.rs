//! Prints Rust's verdict on every corpus file as JSON (`{"valid/x.json": true, …}`, true =
//! accepted by `parse_delivery`), for `.ci/check_corpus.py --rust-verdicts`.

use std::collections::BTreeMap;
use std::process::ExitCode;

fn main() -> ExitCode {
    let files = match protime_tests::corpus_files() {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: cannot read the corpus: {error}");
            return ExitCode::FAILURE;
        }
    };
    let verdicts: BTreeMap<String, bool> = files
        .into_iter()
        .map(|(key, bytes)| (key, protime_model::parse_delivery(&bytes).is_ok()))
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
