//! The cross-language corpus, judged by Rust under both profiles: every file under `valid/`
//! is accepted by both, every file under `invalid/` is rejected by both, every file under
//! `strict-only-invalid/` is accepted by `Documented` and rejected by `Strict`; a rejection
//! carries an error code of the rule the file's name gives (`R9-…` → a code listed for R9 in
//! docs/validation-rules.md). `.ci/check_corpus.py` judges the same files with Python's
//! `jsonschema` against each profile's schema and compares. Also: every example body of the
//! docs (`tests/fixtures/docs-examples.json`) is judged as that file says.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use protime_model::{ErrorCode, Profile, parse_delivery, parse_delivery_with};

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
const CORPUS_FLOOR: usize = 227;

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
    for label in protime_tests::CORPUS_LABELS {
        let count = files
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{label}/")))
            .count();
        assert!(count >= 10, "only {count} files under {label}/");
    }
}

#[test]
fn rust_verdicts_match_the_corpus_labels_and_rules() {
    let mut failures = Vec::new();
    let mut judged = 0;
    for (key, bytes) in protime_tests::corpus_files().unwrap() {
        // The default is the documented profile.
        if parse_delivery(&bytes) != parse_delivery_with(&bytes, Profile::Documented) {
            failures.push(format!(
                "{key}: parse_delivery is not the documented profile"
            ));
        }
        for profile in Profile::ALL {
            judged += 1;
            if let Some(failure) = judge(&key, &bytes, profile) {
                failures.push(format!("{key} ({profile}): {failure}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(judged >= 2 * CORPUS_FLOOR, "{judged}");
}

/// What is wrong with Rust's verdict on one corpus file under `profile`, if anything.
fn judge(key: &str, bytes: &[u8], profile: Profile) -> Option<String> {
    let result = parse_delivery_with(bytes, profile);
    // Both paths give the verdict the fast path defers to.
    if protime_model::parse_delivery_full_walk(bytes, profile) != result {
        return Some("the full walk judges otherwise".into());
    }
    let name = key.rsplit('/').next().unwrap_or_default();
    if protime_tests::corpus_expects_valid(key, profile) {
        return result
            .err()
            .map(|errors| format!("rejected but should be valid: {errors}"));
    }
    let rule = name.split('-').next().unwrap_or_default();
    let allowed = codes_of_rule(rule);
    if allowed.is_empty() {
        return Some("file name does not start with a known rule id".into());
    }
    let errors = match result {
        Ok(_) => return Some("accepted but should be invalid".into()),
        Err(errors) => errors,
    };
    if !errors.errors().iter().any(|e| allowed.contains(&e.code)) {
        return Some(format!("rejected, but not for rule {rule}: {errors}"));
    }
    if let Some((code, at_body)) = text_rule(rule)
        && !errors
            .errors()
            .iter()
            .all(|e| e.code == code && (e.pointer.is_empty() == at_body))
    {
        return Some(format!(
            "rule {rule} must be refused with {code} alone: {errors}"
        ));
    }
    None
}

/// Each profile's JSON Schema (the `jsonschema` crate, formats asserted) gives every corpus
/// file its label's verdict under that profile, except where a JSON Schema cannot see the
/// rule (docs/validation-rules.md): bodies serde_json cannot read (R1, R25-R27: Rust refuses
/// them, checked above), repeated keys (R28: a `Value` keeps the last) and inexact integer
/// literals (R29: the schema sees a rounded float), which the schema must then accept.
#[test]
fn each_profile_s_schema_agrees_with_the_corpus_labels() {
    let mut failures = Vec::new();
    let mut judged = 0;
    for profile in Profile::ALL {
        let schema = protime_schema::clocking_change_schema_for(profile);
        let validator = protime_schema::validator(schema).unwrap();
        for (key, bytes) in protime_tests::corpus_files().unwrap() {
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let rule = key
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .split('-')
                .next()
                .unwrap_or_default();
            let expected = match rule {
                "R28" | "R29" if !protime_tests::corpus_expects_valid(&key, profile) => true,
                _ => protime_tests::corpus_expects_valid(&key, profile),
            };
            judged += 1;
            if validator.is_valid(&value) != expected {
                failures.push(format!("{key} ({profile}): the schema says {}", !expected));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(judged >= 2 * 190, "{judged}");
}

fn read_fixture(relative: &str) -> Vec<u8> {
    std::fs::read(protime_tests::corpus_dir().join("..").join(relative))
        .expect("a fixture named in docs-examples.json exists")
}

#[test]
fn every_docs_example_is_judged_as_its_manifest_says() {
    let manifest: serde_json::Value =
        serde_json::from_slice(&read_fixture("docs-examples.json")).unwrap();
    let entries = |section: &str| -> Vec<(String, String)> {
        manifest[section]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                let url = entry["url"].as_str().unwrap();
                assert!(
                    url.starts_with("https://documentation.myprotime.eu/"),
                    "{url}"
                );
                (entry["file"].as_str().unwrap().to_owned(), url.to_owned())
            })
            .collect()
    };
    let changes = entries("changes");
    assert!(changes.len() >= 2);
    for (file, url) in &changes {
        let bytes = read_fixture(file);
        let accepted = parse_delivery(&bytes);
        assert!(accepted.is_ok(), "{file} ({url}): {accepted:?}");
    }
    // The docs' list and get examples carry no changeVersion. The default profile accepts
    // them, with the absent version (it orders before every real one); Strict refuses them
    // with that one violation, as it did before. The clocking schemas say the same.
    let items = entries("items");
    assert!(items.len() >= 2);
    let schemas: Vec<(Profile, jsonschema::Validator)> = Profile::ALL
        .into_iter()
        .map(|profile| {
            let schema = protime_schema::clocking_schema_for(profile);
            (profile, protime_schema::validator(schema).unwrap())
        })
        .collect();
    for (file, url) in &items {
        let bytes = read_fixture(file);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(value.get("changeVersion").is_none(), "{file} ({url})");
        let clocking = protime_model::parse_clocking_with(&bytes, Profile::Documented)
            .unwrap_or_else(|errors| panic!("{file} ({url}): {errors}"));
        assert!(clocking.change_version.is_absent(), "{file} ({url})");
        assert_eq!(
            protime_model::parse_clocking(&bytes).as_ref(),
            Ok(&clocking),
            "{file} ({url}): parse_clocking is the Documented profile"
        );
        let errors = protime_model::parse_clocking_with(&bytes, Profile::Strict).unwrap_err();
        let found: Vec<(ErrorCode, &str)> = errors
            .errors()
            .iter()
            .map(|e| (e.code, e.pointer.as_str()))
            .collect();
        assert_eq!(
            found,
            [(ErrorCode::FieldRequired, "/data/changeVersion")],
            "{file} ({url}, strict)"
        );
        for (profile, validator) in &schemas {
            assert_eq!(
                validator.is_valid(&value),
                *profile == Profile::Documented,
                "{file} ({url}): the {profile} clocking schema"
            );
        }
        // With the changeVersion a delivery carries, the item is valid under both profiles
        // and both schemas, and as the data of an InsertOrUpdate.
        let mut item = value.clone();
        item["changeVersion"] = "0000090200004BD0000A".into();
        let versioned = serde_json::to_vec(&item).unwrap();
        for (profile, validator) in &schemas {
            assert!(
                protime_model::parse_clocking_with(&versioned, *profile).is_ok(),
                "{file} with a changeVersion ({profile})"
            );
            assert!(
                validator.is_valid(&item),
                "{file} with a changeVersion ({profile})"
            );
        }
        // As the data of a delivery it still needs its changeVersion, under both profiles.
        let delivery = serde_json::json!({"changeType": "InsertOrUpdate", "data": value});
        let delivery = serde_json::to_vec(&delivery).unwrap();
        for profile in Profile::ALL {
            let errors = parse_delivery_with(&delivery, profile).unwrap_err();
            assert!(
                errors.has_pointer("/data/changeVersion"),
                "{file} as a delivery ({profile}): {errors}"
            );
        }
    }
    // Every manifest entry names a file, and every docs-* corpus file is in the manifest.
    let listed: Vec<&String> = changes.iter().chain(&items).map(|(file, _)| file).collect();
    for (key, _) in protime_tests::corpus_files().unwrap() {
        if key.rsplit('/').next().unwrap_or_default().contains("docs-") {
            assert!(
                listed.iter().any(|file| file.ends_with(&key)),
                "{key} is not in docs-examples.json"
            );
        }
    }
}
