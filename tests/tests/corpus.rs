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
        // R1-invalid-utf8.json predates R25 and is now refused as `json.utf8`.
        "R1" => &[JsonSyntax, JsonUtf8],
        "R2" => &[JsonType],
        "R3" | "R14" | "R20" => &[FieldRequired, EnumUnknown],
        "R4" => &[FieldRequired],
        "R5" | "R19" => &[FieldRequired, JsonType, StringEmpty],
        // R29 (exactness) applies to every integer field: an i64::MAX written as a float is
        // refused as `number.inexact`, which JSON Schema refuses for its range.
        "R6" | "R7" | "R9" | "R10" | "R12" | "R13" | "R18" => &[
            FieldRequired,
            JsonType,
            NumberNotInteger,
            NumberRange,
            NumberInexact,
        ],
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
        "R25" => &[JsonUtf8],
        "R26" => &[JsonLoneSurrogate],
        "R27" => &[JsonTooDeep],
        "R28" => &[JsonDuplicateKey],
        "R29" => &[NumberNotInteger, NumberInexact],
        _ => &[],
    }
}

/// Rules about the JSON text itself: their files must be refused with the rule's code alone,
/// every violation at the body (`""`) — or, for duplicate keys, at the repeated members.
fn text_rule(rule: &str) -> Option<(ErrorCode, bool)> {
    match rule {
        "R25" => Some((ErrorCode::JsonUtf8, true)),
        "R26" => Some((ErrorCode::JsonLoneSurrogate, true)),
        "R27" => Some((ErrorCode::JsonTooDeep, true)),
        "R28" => Some((ErrorCode::JsonDuplicateKey, false)),
        _ => None,
    }
}

/// The corpus's size when this floor was last raised: files may be added, never lost.
const CORPUS_FLOOR: usize = 213;

#[test]
fn corpus_is_large_enough() {
    let files = protime_tests::corpus_files().unwrap();
    assert!(
        files.len() >= CORPUS_FLOOR,
        "only {} corpus files (at least {CORPUS_FLOOR})",
        files.len()
    );
    // Every class of docs/validation-rules.md R25-R29 has files.
    for rule in ["R25", "R26", "R27", "R28", "R29"] {
        let count = files
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("invalid/{rule}-")))
            .count();
        assert!(count >= 4, "only {count} files of rule {rule}");
    }
    assert!(files.iter().any(|(k, _)| k.starts_with("valid/")));
    assert!(files.iter().any(|(k, _)| k.starts_with("invalid/")));
}

#[test]
fn rust_verdicts_match_the_corpus_labels_and_rules() {
    let mut failures = Vec::new();
    for (key, bytes) in protime_tests::corpus_files().unwrap() {
        let result = parse_delivery(&bytes);
        if let Some(name) = key.strip_prefix("valid/") {
            match result {
                Err(errors) => {
                    failures.push(format!("{name}: rejected but should be valid: {errors}"))
                }
                Ok(change) => {
                    if protime_model::parse_delivery_full_walk(&bytes) != Ok(change) {
                        failures.push(format!("{name}: the full walk judges otherwise"));
                    }
                }
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
                if let Some((code, at_body)) = text_rule(rule)
                    && !errors
                        .errors()
                        .iter()
                        .all(|e| e.code == code && (e.pointer.is_empty() == at_body))
                {
                    failures.push(format!(
                        "{name}: rule {rule} must be refused with {code} alone: {errors}"
                    ));
                }
                // Both paths give the verdict the fast path defers to.
                if protime_model::parse_delivery_full_walk(&bytes) != Err(errors.clone()) {
                    failures.push(format!("{name}: the full walk judges otherwise"));
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
