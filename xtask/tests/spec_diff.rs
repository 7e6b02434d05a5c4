//! The spec diff against fixture pairs (`tests/fixtures/spec-diff/<case>/old.json`,
//! `new.json`) and their expected classification (`expected.json`; `expected.md` where the
//! Markdown report is pinned too), and the real spec against itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use xtask::spec_diff::{Bump, diff};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spec-diff")
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every case the diff must classify; a missing directory fails the test.
const CASES: &[&str] = &[
    "field-added",
    "field-added-to-request-type",
    "field-removed",
    "field-retyped",
    "enum-value-added",
    "enum-value-removed",
    "range-widened",
    "range-narrowed",
    "minimum-removed-retypes",
    "required-added",
    "required-parameter-added",
    "operation-removed",
    "status-added",
    "reordered-equal",
];

#[test]
fn every_fixture_pair_is_classified_as_expected() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let report = diff(&read(&dir.join("old.json")), &read(&dir.join("new.json")));
        let got: Vec<Value> = report
            .changes
            .iter()
            .map(|c| {
                json!({
                    "code": c.code,
                    "location": c.location,
                    "rust": c.rust.as_str(),
                    "json_schema": c.json_schema.as_str(),
                })
            })
            .collect();
        let expected = read(&dir.join("expected.json"));
        assert_eq!(
            Value::Array(got),
            expected["changes"],
            "{name}: the diff differs from expected.json"
        );
        // The implied bump follows from the verdicts.
        let breaking = expected["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["rust"] == "breaking");
        let bump = report.rust_bump();
        match (breaking, report.is_empty()) {
            (true, _) => assert_eq!(bump, Bump::Major, "{name}"),
            (false, true) => assert_eq!(bump, Bump::None, "{name}"),
            (false, false) => assert_eq!(bump, Bump::Minor, "{name}"),
        }
        let md = dir.join("expected.md");
        if md.exists() {
            assert_eq!(
                report.to_markdown("old.json", "new.json", Some("0.1.0")),
                std::fs::read_to_string(&md).unwrap(),
                "{name}: the Markdown report differs from expected.md"
            );
        }
        seen.push(name);
    }
    for case in CASES {
        assert!(seen.iter().any(|s| s == case), "fixture {case} is missing");
    }
}

#[test]
fn reversing_a_diff_swaps_the_verdicts() {
    let dir = fixtures();
    let pairs = [
        ("enum-value-added", "enum-value-removed"),
        ("range-widened", "range-narrowed"),
    ];
    for (case, opposite) in pairs {
        let forward = diff(
            &read(&dir.join(case).join("old.json")),
            &read(&dir.join(case).join("new.json")),
        );
        let backward = diff(
            &read(&dir.join(case).join("new.json")),
            &read(&dir.join(case).join("old.json")),
        );
        let expected = read(&dir.join(opposite).join("expected.json"));
        assert_eq!(
            backward.changes.len(),
            forward.changes.len(),
            "{case} reversed"
        );
        for (change, want) in backward
            .changes
            .iter()
            .zip(expected["changes"].as_array().unwrap())
        {
            assert_eq!(change.code, want["code"], "{case} reversed");
            assert_eq!(
                change.json_schema.as_str(),
                want["json_schema"],
                "{case} reversed"
            );
        }
    }
}

#[test]
fn the_real_spec_against_itself_has_no_change() {
    let spec = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/protime-api.json"));
    let report = diff(&spec, &spec);
    assert!(report.is_empty(), "{:?}", report.changes);
    assert_eq!(report.rust_bump(), Bump::None);
    assert_eq!(report.to_json("a", "b")["changes"], json!([]));
}

#[test]
fn the_json_output_is_stable() {
    let dir = fixtures().join("required-added");
    let report = diff(&read(&dir.join("old.json")), &read(&dir.join("new.json")));
    assert_eq!(
        report.to_json("old.json", "new.json"),
        json!({
            "format": 1,
            "old": "old.json",
            "new": "new.json",
            "rust": { "breaking": 1, "non_breaking": 0, "bump": "major" },
            "json_schema": { "breaking_for_producers": 1, "breaking_for_consumers": 0, "bump": "major" },
            "changes": [{
                "code": "required-added",
                "location": "Clocking.note",
                "detail": "`note` is now required",
                "rust": "breaking",
                "rust_reason": "made required in a response it is decoded from: `Option<T>` becomes `T`, and a response without it no longer decodes",
                "json_schema": "stricter",
            }],
        })
    );
}

#[test]
fn the_readme_shows_the_pinned_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let report =
        std::fs::read_to_string(fixtures().join("enum-value-added").join("expected.md")).unwrap();
    assert!(
        readme.contains(&format!("```markdown\n{report}```\n")),
        "README.md's example report differs from tests/fixtures/spec-diff/enum-value-added/expected.md"
    );
}
