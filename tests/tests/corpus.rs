//! The cross-language corpus, judged by Rust: every file under `valid/` is accepted, every
//! file under `invalid/` is rejected with an error code of the rule its name gives
//! (`R9-…` → a code listed for R9 in docs/validation-rules.md). `.ci/check_corpus.py` judges
//! the same files with Python's `jsonschema` and compares.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use protime_model::{ErrorCode, parse_delivery};

fn codes_of_rule(rule: &str) -> &'static [ErrorCode] {
    use ErrorCode::*;
    match rule {
        "R1" => &[JsonSyntax],
        "R2" => &[JsonType],
        "R3" | "R14" | "R20" => &[FieldRequired, EnumUnknown],
        "R4" => &[FieldRequired],
        "R5" | "R19" => &[FieldRequired, JsonType, StringEmpty],
        "R6" | "R7" | "R9" | "R10" | "R12" | "R13" | "R18" => {
            &[FieldRequired, JsonType, NumberNotInteger, NumberRange]
        }
        "R8" => &[FieldRequired, JsonType, DateFormat],
        "R11" | "R21" => &[JsonType],
        "R15" | "R16" | "R17" => &[
            KindMissingField,
            KindForbiddenField,
            ArrayEmpty,
            JsonType,
            FieldRequired,
            NumberRange,
            NumberNotInteger,
        ],
        "R23" => &[NumberNotInteger],
        "R24" => &[FieldRequired],
        _ => &[],
    }
}

#[test]
fn corpus_is_large_enough() {
    let files = protime_tests::corpus_files().unwrap();
    assert!(files.len() >= 40, "only {} corpus files", files.len());
    assert!(files.iter().any(|(k, _)| k.starts_with("valid/")));
    assert!(files.iter().any(|(k, _)| k.starts_with("invalid/")));
}

#[test]
fn rust_verdicts_match_the_corpus_labels_and_rules() {
    let mut failures = Vec::new();
    for (key, bytes) in protime_tests::corpus_files().unwrap() {
        let result = parse_delivery(&bytes);
        if let Some(name) = key.strip_prefix("valid/") {
            if let Err(errors) = result {
                failures.push(format!("{name}: rejected but should be valid: {errors}"));
            }
            continue;
        }
        let name = key.trim_start_matches("invalid/");
        let rule = name.split('-').next().unwrap_or_default();
        let allowed = codes_of_rule(rule);
        assert!(
            !allowed.is_empty(),
            "{name}: file name does not start with a known rule id"
        );
        match result {
            Ok(_) => failures.push(format!("{name}: accepted but should be invalid")),
            Err(errors) => {
                if !errors.errors().iter().any(|e| allowed.contains(&e.code)) {
                    failures.push(format!(
                        "{name}: rejected, but not for rule {rule}: {errors}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
