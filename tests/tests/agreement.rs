//! Proves that `parse_delivery_with` (Rust) and the emitted JSON Schema of the same profile
//! (checked by the `jsonschema` crate with format assertion on) accept exactly the same
//! delivery bodies — for each validation profile (`Documented` against
//! `schemas/clocking-change.schema.json`, `Strict` against
//! `schemas/clocking-change.strict.schema.json`) — on
//! wire JSON generated to hit every rule in docs/validation-rules.md — except the classes a
//! JSON Schema cannot express (duplicate keys, the exact spelling of numbers), each allowed
//! to differ only in the one direction and with the one violation the docs name; and bodies
//! the schema side cannot even read (not UTF-8, lone surrogates, nesting beyond 127), which
//! Rust must refuse with the class's own code.
//!
//! Also: an independent oracle (bounds and enums written here from the docs and read from
//! `openapi/protime-api.json`, never from the model) that the model's constants, the emitted
//! schema and the verdicts on every boundary must match; the fast path and the full walk of
//! `parse_delivery` give the same verdict on every generated body, byte-level classes
//! included, and the fast path is taken for ordinary valid bodies; accepted bodies
//! round-trip; no input makes `parse_delivery` panic. Listed clockings (`parse_clocking_with`,
//! which under `Documented` accepts an item without `changeVersion`) are generated with and
//! without their version and judged against `schemas/clocking.schema.json` and
//! `schemas/clocking.strict.schema.json`, on both paths. Every generated class and every
//! kind × conditional field × state has a coverage floor. Failing cases are persisted under
//! `tests/proptest-regressions/agreement/` and replayed first on every run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use protime_model::{
    ErrorCode, Profile, fast_path_accepts, parse_delivery, parse_delivery_fast_path,
    parse_delivery_full_walk, parse_delivery_with,
};
use serde_json::{Map, Value, json};

const AGREEMENT_CASES: u32 = 12_000;
const BYTE_CLASS_CASES: u32 = 4_000;
const DIFFERENTIAL_CASES: u32 = 6_000;

/// A runner whose failures are saved in `tests/<path>` (the test's working directory is the
/// package root) and replayed first on every later run.
fn config(cases: u32, path: &'static str) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(path))),
        ..Config::default()
    }
}

/// Counts generated cases by label, for the coverage floors.
#[derive(Default)]
struct Coverage(Mutex<BTreeMap<String, usize>>);

impl Coverage {
    fn hit(&self, label: impl Into<String>) {
        *self.0.lock().unwrap().entry(label.into()).or_default() += 1;
    }

    fn count(&self, label: &str) -> usize {
        self.0.lock().unwrap().get(label).copied().unwrap_or(0)
    }

    /// Prints the counts (shown with `--nocapture`).
    fn report(&self, test: &str) {
        eprintln!("{test} coverage: {:#?}", self.0.lock().unwrap());
    }

    /// Asserts that every label has been hit at least `floor` times.
    fn assert_floor<'a>(&self, labels: impl IntoIterator<Item = &'a str>, floor: usize) {
        let counts = self.0.lock().unwrap();
        let low: Vec<String> = labels
            .into_iter()
            .filter_map(|label| {
                let n = counts.get(label).copied().unwrap_or(0);
                (n < floor).then(|| format!("{label}: {n}"))
            })
            .collect();
        assert!(
            low.is_empty(),
            "coverage below {floor}: {low:?}\nall counts: {counts:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The independent oracle: what docs/validation-rules.md says, written out here by hand.
// ---------------------------------------------------------------------------------------

mod oracle {
    /// R9, R10: `timeOfDayInMinutes`, `originalTimeOfDayInMinutes`,
    /// `calculatedTimeOfDayInMinutes`.
    pub(crate) const MINUTES: (i64, i64) = (-1440, 2880);
    /// R6, R7, R12, R15: clocking, person, terminal and reason ids.
    pub(crate) const IDS: (i64, i64) = (1, 9_223_372_036_854_775_807);
    /// R18: `activityLevels[i].level`.
    pub(crate) const LEVELS: (i64, i64) = (1, 2_147_483_647);
    /// R13.
    pub(crate) const LATITUDE: (f64, f64) = (-90.0, 90.0);
    pub(crate) const LONGITUDE: (f64, f64) = (-180.0, 180.0);
    /// R14, R20, R3.
    pub(crate) const KINDS: [&str; 4] = ["InOut", "Reason", "Activity", "ActivityEnd"];
    pub(crate) const STATUSES: [&str; 3] = ["Unknown", "Active", "Deleted"];
    pub(crate) const CHANGE_TYPES: [&str; 2] = ["InsertOrUpdate", "Delete"];
    /// R27: the deepest nesting of arrays and objects, the body's object counting as 1.
    pub(crate) const MAX_DEPTH: usize = 127;
    /// R29: an integer written with a fraction or an exponent must lie within ±(2^53 − 1).
    pub(crate) const EXACT_FLOAT_INTEGERS: i128 = 9_007_199_254_740_991;

    /// The integer fields, with their pointers (in an `InsertOrUpdate`) and ranges.
    pub(crate) const INTEGER_FIELDS: [(&str, (i64, i64)); 8] = [
        ("/data/id", IDS),
        ("/data/person/id", IDS),
        ("/data/terminal/id", IDS),
        ("/data/reason/id", IDS),
        ("/data/timeOfDayInMinutes", MINUTES),
        ("/data/originalTimeOfDayInMinutes", MINUTES),
        ("/data/calculatedTimeOfDayInMinutes", MINUTES),
        ("/data/activityLevels/0/level", LEVELS),
    ];

    /// R15–R17: which conditional field each kind requires, allows or forbids.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Rule {
        Required,
        Optional,
        Forbidden,
    }

    pub(crate) fn conditional(kind: &str, field: &str) -> Rule {
        match (kind, field) {
            ("Reason", "reason") | ("Activity", "activityLevels") => Rule::Required,
            ("Reason", "isOpen") => Rule::Optional,
            _ => Rule::Forbidden,
        }
    }

    pub(crate) const CONDITIONAL_FIELDS: [&str; 3] = ["reason", "isOpen", "activityLevels"];

    /// The fields of an `InsertOrUpdate`'s data that each profile requires: the docs require
    /// only what ordering needs; `Strict` adds R7, R8, R9 and R14's "required".
    pub(crate) const REQUIRED_DOCUMENTED: [&str; 2] = ["changeVersion", "id"];
    pub(crate) const REQUIRED_STRICT: [&str; 6] = [
        "changeVersion",
        "id",
        "person",
        "date",
        "timeOfDayInMinutes",
        "kind",
    ];
    /// The fields only `Strict` requires.
    pub(crate) const STRICT_ONLY: [&str; 4] = ["person", "date", "timeOfDayInMinutes", "kind"];
}

fn read_json(relative: &str) -> Value {
    let path = format!("{}/../{relative}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn the_oracle_matches_the_docs_the_spec_the_model_and_the_schema() {
    use protime_model::{
        ActivityLevelNumber, ChangeType, ClockingId, ClockingKind, ClockingStatus, Latitude,
        Longitude, MinuteOfDay, PersonId, ReasonId, TerminalId,
    };

    // The docs state the same bounds and names as the oracle.
    let docs = std::fs::read_to_string(format!(
        "{}/../docs/validation-rules.md",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let row = |id: &str| {
        docs.lines()
            .find(|line| line.starts_with(&format!("| {id} |")))
            .unwrap_or_else(|| panic!("docs: no row {id}"))
            .to_owned()
    };
    let (min, max) = oracle::MINUTES;
    assert!(
        row("R9").contains(&format!("{min}..={max}")),
        "{}",
        row("R9")
    );
    assert!(
        row("R10").contains(&format!("{min}..={max}")),
        "{}",
        row("R10")
    );
    assert!(row("R6").contains(&format!("{}..={}", oracle::IDS.0, oracle::IDS.1)));
    // Which profile requires what: the docs' table says it as the oracle does.
    for (id, field) in [
        ("R7", "person"),
        ("R8", "date"),
        ("R9", "timeOfDayInMinutes"),
        ("R14", "kind"),
    ] {
        assert!(oracle::STRICT_ONLY.contains(&field));
        assert!(
            row(id).contains("| both; required: Strict |"),
            "{}",
            row(id)
        );
    }
    for (id, field, profile) in [
        // A listed clocking may lack changeVersion under Documented (assumption row 84).
        (
            "R5",
            "changeVersion",
            "| both for a delivery; listed clocking: required: Strict |",
        ),
        ("R6", "id", "| both |"),
    ] {
        assert!(oracle::REQUIRED_DOCUMENTED.contains(&field));
        assert!(
            row(id).contains(" is required") && row(id).contains(profile),
            "{}",
            row(id)
        );
    }
    assert!(row("R18").contains(&format!("{}..={}", oracle::LEVELS.0, oracle::LEVELS.1)));
    assert!(row("R13").contains("(-90..=90)") && row("R13").contains("(-180..=180)"));
    for kind in oracle::KINDS {
        assert!(
            row("R14").contains(&format!("`{kind}`")),
            "R14 lacks {kind}"
        );
    }
    for status in oracle::STATUSES {
        assert!(
            row("R20").contains(&format!("`{status}`")),
            "R20 lacks {status}"
        );
    }
    for change_type in oracle::CHANGE_TYPES {
        assert!(row("R3").contains(&format!("`{change_type}`")));
    }
    assert!(row("R27").contains(&oracle::MAX_DEPTH.to_string()));
    assert!(row("R29").contains(&oracle::EXACT_FLOAT_INTEGERS.to_string()));

    // The vendored OpenAPI spec, read directly.
    let spec = read_json("openapi/protime-api.json");
    let schema = |name: &str| spec["components"]["schemas"][name].clone();
    for name in ["Clocking", "ClockingChangeData"] {
        for field in [
            "timeOfDayInMinutes",
            "originalTimeOfDayInMinutes",
            "calculatedTimeOfDayInMinutes",
        ] {
            let property = &schema(name)["properties"][field];
            assert_eq!(
                property["minimum"].as_i64(),
                Some(oracle::MINUTES.0),
                "{name}.{field}"
            );
            assert_eq!(
                property["maximum"].as_i64(),
                Some(oracle::MINUTES.1),
                "{name}.{field}"
            );
        }
    }
    for name in [
        "Clocking",
        "ClockingChangeData",
        "PersonRef",
        "TerminalRef",
        "ReasonRef",
    ] {
        let id = &schema(name)["properties"]["id"];
        assert_eq!(id["minimum"].as_i64(), Some(oracle::IDS.0), "{name}.id");
        // No maximum in the spec: `int64` bounds it.
        assert_eq!(id["format"], "int64", "{name}.id");
        assert_eq!(i64::MAX, oracle::IDS.1);
    }
    let level = &schema("ActivityLevel")["properties"]["level"];
    assert_eq!(level["minimum"].as_i64(), Some(oracle::LEVELS.0));
    assert_eq!(level["format"], "int32");
    assert_eq!(i64::from(i32::MAX), oracle::LEVELS.1);
    let geolocation = &schema("Geolocation")["properties"];
    assert_eq!(
        geolocation["latitude"]["minimum"].as_f64(),
        Some(oracle::LATITUDE.0)
    );
    assert_eq!(
        geolocation["latitude"]["maximum"].as_f64(),
        Some(oracle::LATITUDE.1)
    );
    assert_eq!(
        geolocation["longitude"]["minimum"].as_f64(),
        Some(oracle::LONGITUDE.0)
    );
    assert_eq!(
        geolocation["longitude"]["maximum"].as_f64(),
        Some(oracle::LONGITUDE.1)
    );
    let names = |name: &str| -> Vec<String> {
        serde_json::from_value(schema(name)["enum"].clone()).unwrap()
    };
    assert_eq!(names("ClockingKind"), oracle::KINDS);
    assert_eq!(names("ClockingStatus"), oracle::STATUSES);
    assert_eq!(names("ChangeType"), oracle::CHANGE_TYPES);

    // The model's constants.
    assert_eq!(
        (i64::from(MinuteOfDay::MIN), i64::from(MinuteOfDay::MAX)),
        oracle::MINUTES
    );
    for (min, max) in [
        (ClockingId::MIN, ClockingId::MAX),
        (PersonId::MIN, PersonId::MAX),
        (TerminalId::MIN, TerminalId::MAX),
        (ReasonId::MIN, ReasonId::MAX),
    ] {
        assert_eq!((min, max), oracle::IDS);
    }
    assert_eq!(
        (
            i64::from(ActivityLevelNumber::MIN),
            i64::from(ActivityLevelNumber::MAX)
        ),
        oracle::LEVELS
    );
    assert_eq!((Latitude::MIN, Latitude::MAX), oracle::LATITUDE);
    assert_eq!((Longitude::MIN, Longitude::MAX), oracle::LONGITUDE);
    assert_eq!(ClockingKind::NAMES, oracle::KINDS);
    assert_eq!(ClockingStatus::NAMES, oracle::STATUSES);
    assert_eq!(ChangeType::NAMES, oracle::CHANGE_TYPES);

    // The emitted schemas of both profiles, both as generated now and as committed under
    // schemas/.
    for (profile, emitted) in [
        (
            Profile::Documented,
            protime_schema::clocking_change_schema(),
        ),
        (
            Profile::Documented,
            read_json("schemas/clocking-change.schema.json"),
        ),
        (
            Profile::Strict,
            protime_schema::clocking_change_schema_for(Profile::Strict),
        ),
        (
            Profile::Strict,
            read_json(protime_schema::change_schema_path(Profile::Strict)),
        ),
    ] {
        let at = |pointer: &str| {
            emitted
                .pointer(pointer)
                .cloned()
                .unwrap_or_else(|| panic!("schema: nothing at {pointer}"))
        };
        let int_bounds = |pointer: &str| {
            (
                at(&format!("{pointer}/minimum")).as_i64().unwrap(),
                at(&format!("{pointer}/maximum")).as_i64().unwrap(),
            )
        };
        assert_eq!(int_bounds("/$defs/MinuteOfDay"), oracle::MINUTES);
        for pointer in [
            "/$defs/ClockingDeletion/properties/id",
            "/$defs/Clocking/properties/id",
            "/$defs/PersonRef/properties/id",
            "/$defs/TerminalRef/properties/id",
            "/$defs/ReasonRef/properties/id",
        ] {
            assert_eq!(int_bounds(pointer), oracle::IDS, "{pointer}");
        }
        assert_eq!(
            int_bounds("/$defs/ActivityLevel/properties/level"),
            oracle::LEVELS
        );
        for (pointer, (min, max)) in [
            ("/$defs/Geolocation/properties/latitude", oracle::LATITUDE),
            ("/$defs/Geolocation/properties/longitude", oracle::LONGITUDE),
        ] {
            assert_eq!(at(&format!("{pointer}/minimum")).as_f64(), Some(min));
            assert_eq!(at(&format!("{pointer}/maximum")).as_f64(), Some(max));
        }
        let (required, kind_enum) = match profile {
            Profile::Strict => (
                json!(oracle::REQUIRED_STRICT),
                "/$defs/Clocking/properties/kind/enum",
            ),
            _ => (
                json!(oracle::REQUIRED_DOCUMENTED),
                "/$defs/Clocking/properties/kind/anyOf/0/enum",
            ),
        };
        assert_eq!(at("/$defs/Clocking/required"), required, "{profile}");
        assert_eq!(at(kind_enum), json!(oracle::KINDS));
        assert_eq!(
            at("/$defs/Clocking/properties/status/anyOf/0/enum"),
            json!(oracle::STATUSES)
        );
        assert_eq!(
            at("/properties/changeType/enum"),
            json!(oracle::CHANGE_TYPES)
        );
    }
}

/// Each profile with the validator of its own schema.
fn profile_validators() -> Vec<(Profile, jsonschema::Validator)> {
    Profile::ALL
        .into_iter()
        .map(|profile| {
            let schema = protime_schema::clocking_change_schema_for(profile);
            (profile, protime_schema::validator(schema).unwrap())
        })
        .collect()
}

/// A valid body with every integer field present (a `Reason` clocking carries all but the
/// level; an `Activity` one all but the reason).
fn full_body(kind: &str) -> Value {
    let mut data = json!({
        "changeVersion": "0000090200004BD0000A", "id": 19250,
        "person": {"id": 5, "externalReferences": {"@badge-number": "0042"}},
        "date": "2026-01-15", "timeOfDayInMinutes": 480,
        "originalTimeOfDayInMinutes": 470, "calculatedTimeOfDayInMinutes": 475,
        "terminal": {"id": 3}, "geolocation": {"latitude": 50.8, "longitude": 4.3},
        "kind": kind,
    });
    match kind {
        "Reason" => data["reason"] = json!({"id": 12}),
        "Activity" => {
            data["activityLevels"] = json!([{"level": 1, "activityDefinition": {"id": "d-1"}}]);
        }
        _ => {}
    }
    json!({"changeType": "InsertOrUpdate", "data": data})
}

#[test]
fn every_boundary_of_the_oracle_is_judged_as_the_docs_say() {
    let validators = profile_validators();
    let mut checked = 0;
    // Every body here carries every field Strict requires: both profiles judge alike.
    let mut judge = |body: &Value, expected_ok: bool, what: &str| {
        let bytes = serde_json::to_vec(body).unwrap();
        for (profile, validator) in &validators {
            let rust = parse_delivery_with(&bytes, *profile);
            assert_eq!(
                rust.is_ok(),
                expected_ok,
                "Rust ({profile}) on {what}: {rust:?}"
            );
            assert_eq!(
                validator.is_valid(body),
                expected_ok,
                "schema ({profile}) on {what}"
            );
        }
        checked += 1;
    };
    for (pointer, (min, max)) in oracle::INTEGER_FIELDS {
        let kind = if pointer.contains("activityLevels") {
            "Activity"
        } else {
            "Reason"
        };
        let mut values: Vec<(Value, bool)> = vec![
            (json!(min), true),
            (json!(max), true),
            (json!(i128::from(min) - 1), false),
        ];
        // One past the maximum, as JSON can write it.
        if max == i64::MAX {
            values.push((json!(9_223_372_036_854_775_808_u64), false));
        } else {
            values.push((json!(max + 1), false));
        }
        for (value, ok) in values {
            let mut body = full_body(kind);
            *body.pointer_mut(pointer).unwrap() = value.clone();
            judge(&body, ok, &format!("{pointer} = {value}"));
        }
    }
    for (field, (min, max)) in [
        ("latitude", oracle::LATITUDE),
        ("longitude", oracle::LONGITUDE),
    ] {
        let pointer = format!("/data/geolocation/{field}");
        for (value, ok) in [
            (min, true),
            (max, true),
            (min - 1e-9, false),
            (max + 1e-9, false),
        ] {
            let mut body = full_body("InOut");
            *body.pointer_mut(&pointer).unwrap() = json!(value);
            judge(&body, ok, &format!("{pointer} = {value}"));
        }
    }
    for kind in oracle::KINDS {
        judge(&full_body(kind), true, kind);
        let mut body = full_body(kind);
        body["data"]["kind"] = json!(kind.to_lowercase());
        judge(&body, false, &kind.to_lowercase());
        for field in oracle::CONDITIONAL_FIELDS {
            let present = match field {
                "reason" => json!({"id": 1}),
                "isOpen" => json!(true),
                _ => json!([{"level": 1, "activityDefinition": {"id": "d"}}]),
            };
            let mut with = full_body(kind);
            with["data"][field] = present;
            let rule = oracle::conditional(kind, field);
            judge(
                &with,
                rule != oracle::Rule::Forbidden,
                &format!("{kind} with {field}"),
            );
            let mut without = full_body(kind);
            without["data"].as_object_mut().unwrap().remove(field);
            judge(
                &without,
                rule != oracle::Rule::Required,
                &format!("{kind} without {field}"),
            );
        }
    }
    for status in oracle::STATUSES {
        let mut body = full_body("InOut");
        body["data"]["status"] = json!(status);
        judge(&body, true, status);
        body["data"]["status"] = json!(status.to_uppercase());
        judge(&body, false, &status.to_uppercase());
    }
    for change_type in oracle::CHANGE_TYPES {
        let mut body = full_body("InOut");
        body["changeType"] = json!(change_type);
        judge(&body, true, change_type);
        body["changeType"] = json!(format!("{change_type} "));
        judge(&body, false, "a change type with a space");
    }
    assert!(checked >= 80, "{checked}");
    // The fields only Strict requires: absent or null, each alone or all together, accepted
    // by Documented and refused by Strict; the kind-conditional fields without a kind are
    // refused by both (docs/validation-rules.md, "Profiles").
    let mut partial = 0;
    for kind in oracle::KINDS {
        let mut removals: Vec<Vec<&str>> = oracle::STRICT_ONLY
            .iter()
            .map(|field| vec![*field])
            .collect();
        removals.push(oracle::STRICT_ONLY.to_vec());
        for fields in removals {
            for null in [false, true] {
                let mut body = full_body(kind);
                let data = body["data"].as_object_mut().unwrap();
                for field in &fields {
                    if null {
                        data.insert((*field).into(), Value::Null);
                    } else {
                        data.remove(*field);
                    }
                }
                let kind_gone = fields.contains(&"kind");
                let conditional_present = oracle::CONDITIONAL_FIELDS
                    .iter()
                    .any(|f| data.get(*f).is_some_and(|v| !v.is_null()));
                let documented_ok = !(kind_gone && conditional_present);
                let bytes = serde_json::to_vec(&body).unwrap();
                for (profile, validator) in &validators {
                    let expected = *profile == Profile::Documented && documented_ok;
                    let what = format!("{kind} without {fields:?} (null: {null}), {profile}");
                    assert_eq!(
                        parse_delivery_with(&bytes, *profile).is_ok(),
                        expected,
                        "Rust on {what}"
                    );
                    assert_eq!(validator.is_valid(&body), expected, "schema on {what}");
                }
                partial += 1;
            }
        }
    }
    assert_eq!(partial, 40);
}

// ---------------------------------------------------------------------------------------
// Generators of wire JSON (as `Value`).
// ---------------------------------------------------------------------------------------

fn minute() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => prop::sample::select(vec![-1441_i64, -1440, -1439, -1, 0, 1439, 1440, 2879, 2880, 2881]),
        3 => -1440_i64..=2880,
        1 => any::<i32>().prop_map(i64::from),
    ]
}

fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => (1_i64..=100_000_000).prop_map(Value::from),
        1 => prop::sample::select(vec![
            json!(0), json!(-1), json!(i64::MAX), json!(9_223_372_036_854_775_808_u64),
            json!(1.0), json!(1.5), json!("1"), json!(9.3e18), json!(1e300),
        ]),
    ]
}

fn external_references() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::collection::btree_map(
            prop::sample::select(vec!["@badge-number", "@employee-number", "HRMID", "a/b~c", "@external-code"]),
            prop_oneof![
                4 => "[a-zA-Z0-9é€😀 ]{0,8}".prop_map(Value::from),
                1 => Just(json!(5)),
                1 => Just(Value::Null),
            ],
            0..3,
        )
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        1 => Just(json!([])),
        1 => Just(Value::Null),
    ]
}

fn reference() -> impl Strategy<Value = Value> {
    (id(), prop::option::of(external_references())).prop_map(|(id, refs)| {
        let mut map = Map::new();
        map.insert("id".into(), id);
        if let Some(refs) = refs {
            map.insert("externalReferences".into(), refs);
        }
        Value::Object(map)
    })
}

fn date() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (1990_i32..2035, 1_u32..=12, 1_u32..=31).prop_map(|(y, m, d)| Value::from(format!("{y:04}-{m:02}-{d:02}"))),
        2 => prop::sample::select(vec![
            "2024-02-29", "2023-02-29", "2024-02-30", "2024-2-3", "0000-01-01", "0001-01-01",
            "9999-12-31", "2024-13-01", "2024-00-10", "20240203", "2024-02-03T00:00:00",
            "2024-02-03\n", " 2024-02-03", "２０２４-02-03", "+2024-02-03", "",
        ]).prop_map(Value::from),
        1 => Just(json!(20240203)),
    ]
}

fn activity_level() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            6 => (1_i64..=10).prop_map(Value::from),
            1 => prop::sample::select(vec![json!(0), json!(-1), json!(2_147_483_647), json!(2_147_483_648_i64), json!(1.5), json!(2.0), Value::Null]),
        ],
        prop_oneof![
            6 => "[0-9a-f]{8}-[0-9a-f]{4}".prop_map(Value::from),
            1 => prop::sample::select(vec![json!(""), json!(5), Value::Null]),
        ],
        prop::option::of(external_references()),
    )
        .prop_map(|(level, definition_id, refs)| {
            let mut definition = Map::new();
            definition.insert("id".into(), definition_id);
            if let Some(refs) = refs {
                definition.insert("externalReferences".into(), refs);
            }
            json!({"level": level, "activityDefinition": definition})
        })
}

fn geolocation() -> impl Strategy<Value = Value> {
    let latitude = prop_oneof![4 => -90.0_f64..=90.0, 1 => prop::sample::select(vec![-90.0, 90.0, -90.0001, 90.5, 1000.0])];
    let longitude = prop_oneof![4 => -180.0_f64..=180.0, 1 => prop::sample::select(vec![-180.0, 180.0, 180.0001, -181.0])];
    (latitude, longitude, 0_u8..8).prop_map(|(lat, lon, variant)| match variant {
        0 => json!({"longitude": lon}),
        1 => json!({"latitude": lat.to_string(), "longitude": lon}),
        2 => json!({"latitude": lat as i64, "longitude": lon as i64}),
        _ => json!({"latitude": lat, "longitude": lon}),
    })
}

/// How a kind-conditional field (`reason`, `isOpen`, `activityLevels`) is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldState {
    /// What the kind wants: present when required, absent when forbidden, either when
    /// optional.
    AsTheKindWants,
    /// Present with a value of the right type.
    Present,
    Absent,
    Null,
    WrongType,
}

fn field_state() -> impl Strategy<Value = FieldState> {
    // Weighted so that every kind × field × state is reached hundreds of times in
    // AGREEMENT_CASES, while most bodies stay close to valid.
    prop_oneof![
        12 => Just(FieldState::AsTheKindWants),
        1 => Just(FieldState::Present),
        1 => Just(FieldState::Absent),
        1 => Just(FieldState::Null),
        1 => Just(FieldState::WrongType),
    ]
}

/// Sets one conditional field of `data` as `state` says, `present` being a right-typed value.
fn set_conditional(
    data: &mut Map<String, Value>,
    kind: &str,
    field: &str,
    state: FieldState,
    present: Value,
    wrong: Value,
    optional_present: bool,
) {
    let state = match state {
        FieldState::AsTheKindWants => match oracle::conditional(kind, field) {
            oracle::Rule::Required => FieldState::Present,
            oracle::Rule::Optional if optional_present => FieldState::Present,
            _ => FieldState::Absent,
        },
        other => other,
    };
    match state {
        FieldState::Present => {
            data.insert(field.into(), present);
        }
        FieldState::Null => {
            data.insert(field.into(), Value::Null);
        }
        FieldState::WrongType => {
            data.insert(field.into(), wrong);
        }
        FieldState::Absent | FieldState::AsTheKindWants => {
            data.remove(field);
        }
    }
}

/// A clocking that is valid or close to valid; mutations below break it further.
fn clocking() -> BoxedStrategy<Value> {
    (
        (
            "[0-9A-F]{20}",
            id(),
            reference(),
            date(),
            minute(),
            prop::option::of(minute()),
            prop::option::of(minute()),
            prop::option::of(any::<bool>()),
        ),
        (
            prop::option::of(reference()),
            prop::option::of(geolocation()),
            prop::sample::select(oracle::KINDS.to_vec()),
            (
                reference(),
                field_state(),
                prop::sample::select(vec![json!("12"), json!(12), json!([])]),
            ),
            (
                any::<bool>(),
                field_state(),
                any::<bool>(),
                prop::sample::select(vec![json!("true"), json!(1), json!({})]),
            ),
            (
                prop::collection::vec(activity_level(), 1..4),
                field_state(),
                prop::sample::select(vec![json!({}), json!("x"), json!(1)]),
            ),
            prop::option::of(prop::sample::select(oracle::STATUSES.to_vec())),
        ),
        // Sometimes a partial clocking (valid under Documented only): each field that only
        // Strict requires kept (0), removed (1; a removed kind takes its conditional fields
        // along) or null (2; a null kind leaves them, which Documented refuses).
        prop::option::weighted(0.2, prop::collection::vec(0_u8..3, 4)),
    )
        .prop_map(
            |(
                (version, id, person, date, time, original, calculated, generated),
                (
                    terminal,
                    geolocation,
                    kind,
                    (reason, reason_state, reason_wrong),
                    (open, open_state, open_given, open_wrong),
                    (levels, levels_state, levels_wrong),
                    status,
                ),
                partial,
            )| {
                let mut data = Map::new();
                data.insert("changeVersion".into(), version.into());
                data.insert("id".into(), id);
                data.insert("person".into(), person);
                data.insert("date".into(), date);
                data.insert("timeOfDayInMinutes".into(), time.into());
                if let Some(m) = original {
                    data.insert("originalTimeOfDayInMinutes".into(), m.into());
                }
                if let Some(m) = calculated {
                    data.insert("calculatedTimeOfDayInMinutes".into(), m.into());
                }
                if let Some(g) = generated {
                    data.insert("isGenerated".into(), g.into());
                }
                if let Some(t) = terminal {
                    data.insert("terminal".into(), t);
                }
                if let Some(g) = geolocation {
                    data.insert("geolocation".into(), g);
                }
                data.insert("kind".into(), kind.into());
                set_conditional(
                    &mut data,
                    kind,
                    "reason",
                    reason_state,
                    reason,
                    reason_wrong,
                    true,
                );
                set_conditional(
                    &mut data,
                    kind,
                    "isOpen",
                    open_state,
                    open.into(),
                    open_wrong,
                    open_given,
                );
                set_conditional(
                    &mut data,
                    kind,
                    "activityLevels",
                    levels_state,
                    Value::Array(levels),
                    levels_wrong,
                    true,
                );
                if let Some(s) = status {
                    data.insert("status".into(), s.into());
                }
                for (field, state) in oracle::STRICT_ONLY.iter().zip(partial.unwrap_or_default()) {
                    match state {
                        1 => {
                            data.remove(*field);
                            if *field == "kind" {
                                for conditional in oracle::CONDITIONAL_FIELDS {
                                    data.remove(conditional);
                                }
                            }
                        }
                        2 => {
                            data.insert((*field).into(), Value::Null);
                        }
                        _ => {}
                    }
                }
                json!({"changeType": "InsertOrUpdate", "data": data})
            },
        )
        .boxed()
}

const DATA_FIELDS: &[&str] = &[
    "changeVersion",
    "id",
    "person",
    "date",
    "timeOfDayInMinutes",
    "originalTimeOfDayInMinutes",
    "calculatedTimeOfDayInMinutes",
    "isGenerated",
    "terminal",
    "geolocation",
    "kind",
    "reason",
    "isOpen",
    "activityLevels",
    "status",
];

/// One way to break (or harmlessly change) a delivery.
#[derive(Debug, Clone)]
enum Mutation {
    RemoveDataField(&'static str),
    NullDataField(&'static str),
    SetDataField(&'static str, Value),
    SetEnvelopeField(&'static str, Option<Value>),
    MinuteAsFloat(&'static str, bool),
    UnknownField(u8, Value),
    ToDelete,
    ReplaceBody(Value),
    /// An object turned into the array of its values (serde's derived structs accept that).
    ObjectAsArray(&'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = prop::sample::select(DATA_FIELDS.to_vec());
    let minute_field = prop::sample::select(vec![
        "timeOfDayInMinutes",
        "originalTimeOfDayInMinutes",
        "calculatedTimeOfDayInMinutes",
    ]);
    let odd_value = prop::sample::select(vec![
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(2881),
        json!(""),
        json!("x"),
        json!([]),
        json!({}),
        json!([{"level": 1, "activityDefinition": {"id": "a"}}]),
        json!({"id": 3}),
        json!("InOut"),
        json!("inout"),
        json!("Teleport"),
        json!("Reason"),
        json!("Activity"),
        json!("ActivityEnd"),
        json!("active"),
        json!("Deleted"),
        json!(1.5),
        json!(510.0),
        json!({"latitude": 0, "longitude": 0}),
        json!(false),
    ]);
    prop_oneof![
        2 => field.clone().prop_map(Mutation::RemoveDataField),
        2 => field.clone().prop_map(Mutation::NullDataField),
        4 => (field, odd_value).prop_map(|(f, v)| Mutation::SetDataField(f, v)),
        2 => (
            prop::sample::select(vec!["changeType", "data"]),
            prop::option::of(prop::sample::select(vec![
                json!("InsertOrUpdate"), json!("Delete"), json!("delete"), json!("INSERTORUPDATE"),
                json!("Upsert"), json!(""), json!(null), json!(1), json!([]), json!("x"),
            ])),
        ).prop_map(|(f, v)| Mutation::SetEnvelopeField(f, v)),
        3 => (minute_field, any::<bool>()).prop_map(|(f, fractional)| Mutation::MinuteAsFloat(f, fractional)),
        2 => (0_u8..3, prop::sample::select(vec![json!(null), json!({"nested": [1, 2]}), json!("x"), json!(1e30)]))
            .prop_map(|(level, v)| Mutation::UnknownField(level, v)),
        1 => Just(Mutation::ToDelete),
        2 => prop::sample::select(vec!["person", "terminal", "geolocation", "reason", "activityLevels", "data", "body"])
            .prop_map(Mutation::ObjectAsArray),
        1 => prop::sample::select(vec![json!([]), json!("x"), json!(null), json!(1), json!({})]).prop_map(Mutation::ReplaceBody),
    ]
}

fn data(body: &mut Value) -> Option<&mut Map<String, Value>> {
    body.get_mut("data")?.as_object_mut()
}

fn apply(body: &mut Value, mutation: &Mutation) {
    match mutation {
        Mutation::RemoveDataField(f) => {
            if let Some(d) = data(body) {
                d.remove(*f);
            }
        }
        Mutation::NullDataField(f) => {
            if let Some(d) = data(body) {
                d.insert((*f).to_string(), Value::Null);
            }
        }
        Mutation::SetDataField(f, v) => {
            if let Some(d) = data(body) {
                d.insert((*f).to_string(), v.clone());
            }
        }
        Mutation::SetEnvelopeField(f, v) => {
            if let Some(map) = body.as_object_mut() {
                match v {
                    Some(v) => {
                        map.insert((*f).to_string(), v.clone());
                    }
                    None => {
                        map.remove(*f);
                    }
                }
            }
        }
        Mutation::MinuteAsFloat(f, fractional) => {
            if let Some(d) = data(body)
                && let Some(m) = d.get(*f).and_then(Value::as_i64)
            {
                let value = if *fractional {
                    m as f64 + 0.5
                } else {
                    m as f64
                };
                d.insert((*f).to_string(), json!(value));
            }
        }
        Mutation::UnknownField(level, v) => {
            let target = match level {
                0 => body.as_object_mut(),
                1 => data(body),
                _ => data(body)
                    .and_then(|d| d.get_mut("person"))
                    .and_then(Value::as_object_mut),
            };
            if let Some(map) = target {
                map.insert("someFutureField".into(), v.clone());
            }
        }
        Mutation::ToDelete => {
            if let Some(map) = body.as_object_mut() {
                map.insert("changeType".into(), json!("Delete"));
            }
        }
        Mutation::ReplaceBody(v) => *body = v.clone(),
        Mutation::ObjectAsArray(f) => {
            let as_array = |v: &mut Value| {
                if let Value::Object(map) = v {
                    *v = Value::Array(map.values().cloned().collect());
                }
            };
            match *f {
                "body" => as_array(body),
                "data" => {
                    if let Some(d) = body.get_mut("data") {
                        as_array(d);
                    }
                }
                "activityLevels" => {
                    if let Some(Value::Array(levels)) =
                        data(body).and_then(|d| d.get_mut("activityLevels"))
                    {
                        levels.iter_mut().for_each(as_array);
                    }
                }
                field => {
                    if let Some(v) = data(body).and_then(|d| d.get_mut(field)) {
                        as_array(v);
                    }
                }
            }
        }
    }
}

fn delivery() -> BoxedStrategy<Value> {
    (clocking(), prop::collection::vec(mutation(), 0..3))
        .prop_map(|(mut body, mutations)| {
            for m in &mutations {
                apply(&mut body, m);
            }
            body
        })
        .boxed()
}

/// The labels of the kind × conditional field × state coverage of one body, if its kind is
/// one of the four.
fn conditional_labels(body: &Value) -> Vec<String> {
    let Some(data) = body.get("data").and_then(Value::as_object) else {
        return Vec::new();
    };
    let kind = match data.get("kind") {
        None | Some(Value::Null) => "no kind",
        Some(kind) => match kind.as_str() {
            Some(kind) if oracle::KINDS.contains(&kind) => kind,
            _ => return Vec::new(),
        },
    };
    oracle::CONDITIONAL_FIELDS
        .iter()
        .map(|field| {
            let state = match (data.get(*field), *field) {
                (None, _) => "absent",
                (Some(Value::Null), _) => "null",
                (Some(Value::Object(_)), "reason")
                | (Some(Value::Bool(_)), "isOpen")
                | (Some(Value::Array(_)), "activityLevels") => "present",
                _ => "wrong-type",
            };
            format!("{kind} {field} {state}")
        })
        .collect()
}

fn all_conditional_labels() -> Vec<String> {
    let mut labels = Vec::new();
    for kind in oracle::KINDS.into_iter().chain(["no kind"]) {
        for field in oracle::CONDITIONAL_FIELDS {
            for state in ["present", "absent", "null", "wrong-type"] {
                labels.push(format!("{kind} {field} {state}"));
            }
        }
    }
    labels
}

#[test]
fn rust_and_json_schema_accept_exactly_the_same_deliveries() {
    let validators = profile_validators();
    let coverage = Coverage::default();
    let mut runner = TestRunner::new(config(
        AGREEMENT_CASES,
        "proptest-regressions/agreement/rust_and_json_schema_accept_exactly_the_same_deliveries.txt",
    ));
    runner
        .run(&delivery(), |body| {
            let bytes = serde_json::to_vec(&body).unwrap();
            // Re-read the bytes, as both sides would see them on the wire.
            let wire: Value = serde_json::from_slice(&bytes).unwrap();
            let mut verdicts = Vec::new();
            for (profile, validator) in &validators {
                let rust = parse_delivery_with(&bytes, *profile);
                let schema_ok = validator.is_valid(&wire);
                if rust.is_ok() != schema_ok {
                    let schema_errors: Vec<String> = validator
                        .iter_errors(&wire)
                        .map(|e| format!("{} at {}", e, e.instance_path()))
                        .collect();
                    return Err(TestCaseError::fail(format!(
                        "disagreement ({profile}) on {}\nrust: {:?}\nschema accepts: {schema_ok} {schema_errors:?}",
                        String::from_utf8_lossy(&bytes),
                        rust.as_ref().map(|_| ()).map_err(ToString::to_string)
                    )));
                }
                coverage.hit(format!("{profile} {}", if schema_ok { "accepted" } else { "rejected" }));
                verdicts.push(rust);
            }
            // parse_delivery is the documented profile; Strict accepts a subset of it, with
            // the same value.
            prop_assert_eq!(&parse_delivery(&bytes), &verdicts[0]);
            if let Ok(strict) = &verdicts[1] {
                prop_assert_eq!(verdicts[0].as_ref(), Ok(strict));
            } else if verdicts[0].is_ok() {
                coverage.hit("accepted by documented only");
            }
            for label in conditional_labels(&wire) {
                coverage.hit(label);
            }
            Ok(())
        })
        .unwrap();
    for profile in Profile::ALL {
        assert_eq!(
            coverage.count(&format!("{profile} accepted"))
                + coverage.count(&format!("{profile} rejected")),
            AGREEMENT_CASES as usize
        );
    }
    // Both directions must be exercised in earnest, not only one of them, under each
    // profile; and the bodies the profiles judge differently too.
    coverage.report("rust_and_json_schema_accept_exactly_the_same_deliveries");
    coverage.assert_floor(
        [
            "documented accepted",
            "documented rejected",
            "strict accepted",
            "strict rejected",
        ],
        1_000,
    );
    coverage.assert_floor(["accepted by documented only"], 250);
    // Every kind with every conditional field present, absent, null and of a wrong type.
    // And, under Documented, a clocking without a kind with each of them in each state.
    let labels = all_conditional_labels();
    let (without_kind, with_kind): (Vec<&str>, Vec<&str>) = labels
        .iter()
        .map(String::as_str)
        .partition(|label| label.starts_with("no kind"));
    coverage.assert_floor(with_kind, 80);
    coverage.assert_floor(without_kind, 30);
}

// ---------------------------------------------------------------------------------------
// Listed clockings (a list page item, a get response): `parse_clocking_with` against the
// clocking schemas, where `changeVersion` is optional under Documented only.
// ---------------------------------------------------------------------------------------

const LISTED_CASES: u32 = 6_000;

/// Each profile with the validator of its clocking (listed item) schema.
fn clocking_validators() -> Vec<(Profile, jsonschema::Validator)> {
    Profile::ALL
        .into_iter()
        .map(|profile| {
            let schema = protime_schema::clocking_schema_for(profile);
            (profile, protime_schema::validator(schema).unwrap())
        })
        .collect()
}

/// What a listed item does with its `changeVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListedVersion {
    /// As generated (usually a valid version).
    Keep,
    /// Left out, as in the docs' list and get examples.
    Absent,
    /// `null`.
    Null,
    /// Present but invalid: the empty string.
    Empty,
}

/// The `data` of a generated delivery (mutated, valid or partial: the listed clocking), its
/// `changeVersion` treated as `version` says.
fn listed_item() -> BoxedStrategy<(Value, ListedVersion)> {
    (
        prop_oneof![2 => delivery(), 1 => valid_delivery(), 1 => partial_delivery()],
        prop_oneof![
            3 => Just(ListedVersion::Keep),
            4 => Just(ListedVersion::Absent),
            1 => Just(ListedVersion::Null),
            1 => Just(ListedVersion::Empty),
        ],
    )
        .prop_map(|(body, version)| {
            let mut item = body.get("data").cloned().unwrap_or(Value::Null);
            if let Some(data) = item.as_object_mut() {
                match version {
                    ListedVersion::Keep => {}
                    ListedVersion::Absent => {
                        data.remove("changeVersion");
                    }
                    ListedVersion::Null => {
                        data.insert("changeVersion".into(), Value::Null);
                    }
                    ListedVersion::Empty => {
                        data.insert("changeVersion".into(), json!(""));
                    }
                }
            }
            (item, version)
        })
        .boxed()
}

/// On listed items, with and without `changeVersion`: `parse_clocking_with` and the clocking
/// schema of the same profile give the same verdict; its fast path and its full walk agree
/// (and the fast path is taken for ordinary unversioned items under Documented); Strict
/// accepts a subset of Documented with the same value; an item without a version (absent or
/// `null`) is accepted by Documented only with the absent version, and refused by Strict;
/// an item with a version gets the verdict of the delivery that carries it.
#[test]
fn listed_clockings_agree_across_paths_profiles_and_schemas() {
    let validators = clocking_validators();
    let coverage = Coverage::default();
    let mut runner = TestRunner::new(config(
        LISTED_CASES,
        "proptest-regressions/agreement/listed_clockings_agree.txt",
    ));
    runner
        .run(&listed_item(), |(item, version)| {
            let bytes = serde_json::to_vec(&item).unwrap();
            let wire: Value = serde_json::from_slice(&bytes).unwrap();
            let unversioned =
                wire.is_object() && matches!(wire.get("changeVersion"), None | Some(Value::Null));
            let mut verdicts = Vec::new();
            for (profile, validator) in &validators {
                let rust = protime_model::parse_clocking_with(&bytes, *profile);
                // Both paths.
                let full = protime_model::parse_clocking_full_walk(&bytes, *profile);
                prop_assert_eq!(&rust, &full, "parse_clocking_with is not its full walk ({})", profile);
                if let Some(fast) = protime_model::parse_clocking_fast_path(&bytes, *profile) {
                    prop_assert_eq!(full.as_ref(), Ok(&fast), "the fast path accepted what the full walk did not ({})", profile);
                    coverage.hit(format!("{profile} fast path taken{}", if unversioned { " unversioned" } else { "" }));
                }
                // The schema.
                let schema_ok = validator.is_valid(&wire);
                if rust.is_ok() != schema_ok {
                    let schema_errors: Vec<String> = validator
                        .iter_errors(&wire)
                        .map(|e| format!("{} at {}", e, e.instance_path()))
                        .collect();
                    return Err(TestCaseError::fail(format!(
                        "disagreement ({profile}) on the listed item {}\nrust: {:?}\nschema accepts: {schema_ok} {schema_errors:?}",
                        String::from_utf8_lossy(&bytes),
                        rust.as_ref().map(|_| ()).map_err(ToString::to_string)
                    )));
                }
                let state = if rust.is_ok() { "accepted" } else { "rejected" };
                coverage.hit(format!("{profile} {state}"));
                if unversioned {
                    coverage.hit(format!("{profile} {state} unversioned"));
                }
                // With a version, the verdict of the delivery that carries the item.
                if !unversioned && wire.is_object() {
                    let delivery = serde_json::to_vec(
                        &json!({"changeType": "InsertOrUpdate", "data": wire.clone()}),
                    )
                    .unwrap();
                    let from_delivery = parse_delivery_with(&delivery, *profile);
                    match (&rust, from_delivery) {
                        (Ok(clocking), Ok(change)) => prop_assert_eq!(
                            protime_model::ClockingChange::InsertOrUpdate(clocking.clone()),
                            change
                        ),
                        (Err(_), Err(_)) => {}
                        (rust, delivery) => {
                            return Err(TestCaseError::fail(format!(
                                "({profile}) the item says {:?}, its delivery {:?}",
                                rust.as_ref().map(|_| ()).map_err(ToString::to_string),
                                delivery.map(|_| ()).map_err(|e| e.to_string())
                            )));
                        }
                    }
                }
                verdicts.push(rust);
            }
            // parse_clocking is the documented profile.
            prop_assert_eq!(&protime_model::parse_clocking(&bytes), &verdicts[0]);
            // Strict accepts a subset of Documented, with the same value.
            if let Ok(strict) = &verdicts[1] {
                prop_assert_eq!(verdicts[0].as_ref(), Ok(strict));
                prop_assert!(!unversioned, "Strict accepted an item without changeVersion");
            }
            if unversioned {
                if let Ok(clocking) = &verdicts[0] {
                    prop_assert!(clocking.change_version.is_absent());
                    // Serialized without changeVersion, and read back the same.
                    let text = serde_json::to_vec(clocking).unwrap();
                    prop_assert!(!String::from_utf8_lossy(&text).contains("\"changeVersion\""));
                    let read_back = protime_model::parse_clocking(&text);
                    prop_assert_eq!(read_back.as_ref(), Ok(clocking));
                }
                // Strict says field.required at /data/changeVersion, whatever else it says.
                let errors = verdicts[1].as_ref().unwrap_err();
                prop_assert!(errors.errors().iter().any(|e| e.code == ErrorCode::FieldRequired
                    && e.pointer == "/data/changeVersion"));
            } else if let Ok(clocking) = &verdicts[0] {
                prop_assert!(!clocking.change_version.is_absent());
            }
            if version == ListedVersion::Empty {
                prop_assert!(verdicts.iter().all(Result::is_err), "an empty changeVersion was accepted");
            }
            Ok(())
        })
        .unwrap();
    coverage.report("listed_clockings_agree_across_paths_profiles_and_schemas");
    coverage.assert_floor(
        [
            "documented accepted",
            "documented rejected",
            "strict accepted",
            "strict rejected",
            "documented accepted unversioned",
            "documented rejected unversioned",
            "strict rejected unversioned",
        ],
        300,
    );
    coverage.assert_floor(
        [
            "documented fast path taken",
            "documented fast path taken unversioned",
            "strict fast path taken",
        ],
        200,
    );
}

// ---------------------------------------------------------------------------------------
// Byte-level classes: bodies that a `Value` cannot hold, or holds only in part.
// ---------------------------------------------------------------------------------------

/// The classes of generated byte-level cases, each with its coverage floor.
const CLASSES: [&str; 7] = [
    "plain",
    "invalid-utf8",
    "overlong-utf8",
    "lone-surrogate",
    "deep-nesting",
    "number-literal",
    "duplicate-key",
];

/// What Rust must answer for one case, as far as the class decides it.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Only that both paths agree (and, where the schema can read it, the schema too).
    Anything,
    /// Accepted.
    Valid,
    /// Refused, for whatever reason.
    Invalid,
    /// Refused with exactly these (code, pointer) violations.
    Exactly(Vec<(&'static str, String)>),
    /// Whatever else, the violations at this pointer are exactly these codes (none: valid
    /// there).
    AtPointer(String, Vec<&'static str>),
}

#[derive(Debug, Clone)]
struct Case {
    class: &'static str,
    /// A finer label for coverage (slot, field, level…).
    detail: String,
    bytes: Vec<u8>,
    expect: Expect,
    /// The violations Rust may report while the schema accepts — a rule the schema cannot
    /// express (duplicate keys, the exact spelling of numbers) — and nothing else.
    rust_only: Vec<(&'static str, String)>,
    /// For an accepted body, the exact integer expected at a pointer (never a rounded one).
    exact_value: Option<(String, i128)>,
    /// A valid body of the ordinary kind (integers written as integers): the fast path must
    /// take it.
    ordinary: bool,
    /// The body lacks a field only `Strict` requires: `expect` and `ordinary` hold under
    /// `Documented` only; under `Strict` the body must be refused.
    partial: bool,
}

impl Case {
    fn new(class: &'static str, detail: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Self {
        Self {
            class,
            detail: detail.into(),
            bytes,
            expect,
            rust_only: Vec::new(),
            exact_value: None,
            ordinary: false,
            partial: false,
        }
    }

    /// What the case expects under `profile`.
    fn expect_under(&self, profile: Profile) -> Expect {
        if self.partial && profile == Profile::Strict {
            Expect::Invalid
        } else {
            self.expect.clone()
        }
    }
}

/// A marker string put where raw bytes go after serialization.
const HOLE: &str = "\u{e000}hole\u{e000}";

fn replace_once(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the marker is in the serialized body");
    [&haystack[..at], replacement, &haystack[at + needle.len()..]].concat()
}

/// `body` serialized, with the JSON string `"HOLE"` (quotes included) replaced by `raw`.
fn fill_value(body: &Value, raw: &[u8]) -> Vec<u8> {
    let bytes = serde_json::to_vec(body).unwrap();
    replace_once(&bytes, format!("\"{HOLE}\"").as_bytes(), raw)
}

/// `body` serialized, with `HOLE` inside a string or key replaced by `raw`.
fn fill_inside(body: &Value, raw: &[u8]) -> Vec<u8> {
    let bytes = serde_json::to_vec(body).unwrap();
    replace_once(&bytes, HOLE.as_bytes(), raw)
}

fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Sets the value at `pointer`, creating (or replacing) objects on the way; `false` if an
/// array index on the way does not exist.
fn set_at(body: &mut Value, pointer: &str, value: Value) -> bool {
    let tokens: Vec<String> = pointer.split('/').skip(1).map(unescape_token).collect();
    let Some((last, parents)) = tokens.split_last() else {
        *body = value;
        return true;
    };
    let mut current = body;
    for token in parents {
        if current.is_array()
            && let Ok(index) = token.parse::<usize>()
        {
            match current.get_mut(index) {
                Some(item) => current = item,
                None => return false,
            }
            continue;
        }
        if !current.is_object() {
            *current = json!({});
        }
        current = current
            .as_object_mut()
            .unwrap()
            .entry(token.clone())
            .or_insert_with(|| json!({}));
    }
    match current {
        Value::Array(items) if last.parse::<usize>().is_ok() => {
            match last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => {
                    *item = value;
                    true
                }
                None => false,
            }
        }
        other => {
            if !other.is_object() {
                *other = json!({});
            }
            other.as_object_mut().unwrap().insert(last.clone(), value);
            true
        }
    }
}

/// A valid clocking change: every field within its rules, the conditional fields as the kind
/// wants them.
fn valid_delivery() -> BoxedStrategy<Value> {
    let references = prop::option::of(prop::collection::btree_map(
        prop::sample::select(vec!["@badge-number", "HRMID", "a/b~c"]),
        "[a-zA-Z0-9é€😀 ]{0,8}",
        0..3,
    ));
    (
        (
            "[0-9A-F]{20}",
            1_i64..=100_000_000,
            (1_i64..=1_000_000, references.clone()),
            (1990_i32..2035, 1_u32..=12, 1_u32..=28),
            -1440_i64..=2880,
            prop::option::of(-1440_i64..=2880),
            prop::option::of(-1440_i64..=2880),
            prop::option::of(any::<bool>()),
        ),
        (
            prop::option::of(1_i64..=1_000),
            prop::option::of((-90.0_f64..=90.0, -180.0_f64..=180.0)),
            prop::sample::select(oracle::KINDS.to_vec()),
            (1_i64..=500, prop::option::of(any::<bool>())),
            prop::collection::vec((1_i64..=5, "[0-9a-f]{8}", references), 1..3),
            prop::option::of(prop::sample::select(oracle::STATUSES.to_vec())),
            prop::option::of(prop::sample::select(vec![json!(null), json!({"nested": [1, "x"]}), json!("later")])),
        ),
    )
        .prop_map(
            |(
                (version, id, (person, person_refs), (y, m, d), time, original, calculated, generated),
                (terminal, geolocation, kind, (reason, open), levels, status, unknown),
            )| {
                let mut data = json!({
                    "changeVersion": version, "id": id, "person": {"id": person},
                    "date": format!("{y:04}-{m:02}-{d:02}"), "timeOfDayInMinutes": time, "kind": kind,
                });
                if let Some(refs) = person_refs {
                    data["person"]["externalReferences"] = json!(refs);
                }
                for (field, value) in [
                    ("originalTimeOfDayInMinutes", original.map(Value::from)),
                    ("calculatedTimeOfDayInMinutes", calculated.map(Value::from)),
                    ("isGenerated", generated.map(Value::from)),
                    ("terminal", terminal.map(|t| json!({"id": t}))),
                    ("geolocation", geolocation.map(|(lat, lon)| json!({"latitude": lat, "longitude": lon}))),
                    ("status", status.map(Value::from)),
                    ("someFutureField", unknown),
                ] {
                    if let Some(value) = value {
                        data[field] = value;
                    }
                }
                match kind {
                    "Reason" => {
                        data["reason"] = json!({"id": reason});
                        if let Some(open) = open {
                            data["isOpen"] = json!(open);
                        }
                    }
                    "Activity" => {
                        data["activityLevels"] = levels
                            .into_iter()
                            .map(|(level, definition, refs)| {
                                let mut definition = json!({"id": definition});
                                if let Some(refs) = refs {
                                    definition["externalReferences"] = json!(refs);
                                }
                                json!({"level": level, "activityDefinition": definition})
                            })
                            .collect();
                    }
                    _ => {}
                }
                json!({"changeType": "InsertOrUpdate", "data": data})
            },
        )
    .boxed()
}

/// A clocking change valid under `Documented` and refused by `Strict`: a valid delivery
/// without some of the fields only `Strict` requires (each removed or null; without a kind,
/// without the kind-conditional fields too).
fn partial_delivery() -> BoxedStrategy<Value> {
    (
        valid_delivery(),
        prop::collection::vec(0_u8..3, 4).prop_filter("drop at least one field", |states| {
            states.iter().any(|s| *s != 0)
        }),
    )
        .prop_map(|(mut body, states)| {
            let data = body["data"].as_object_mut().unwrap();
            for (field, state) in oracle::STRICT_ONLY.iter().zip(states) {
                match state {
                    1 => {
                        data.remove(*field);
                    }
                    2 => {
                        data.insert((*field).into(), Value::Null);
                    }
                    _ => {}
                }
            }
            if data.get("kind").is_none_or(Value::is_null) {
                for field in oracle::CONDITIONAL_FIELDS {
                    data.remove(field);
                }
            }
            body
        })
        .boxed()
}

fn valid_delete() -> BoxedStrategy<Value> {
    (
        "[0-9A-F]{20}",
        1_i64..=100_000_000,
        prop::option::of(prop::sample::select(vec![
            json!({"person": {"id": "not checked"}}),
            json!({"kind": "nonsense", "timeOfDayInMinutes": 99999}),
            json!({"nested": {"a": [1, 2.5, "x"]}}),
        ])),
    )
        .prop_map(|(version, id, junk)| {
            let mut data = json!({"changeVersion": version, "id": id});
            if let Some(Value::Object(junk)) = junk {
                data.as_object_mut().unwrap().extend(junk);
            }
            json!({"changeType": "Delete", "data": data})
        })
        .boxed()
}

/// A base body for a byte-level class and whether it is valid: mostly valid (so that the
/// class decides the verdict), sometimes a valid `Delete`, sometimes broken by mutations.
fn base() -> BoxedStrategy<(Value, bool)> {
    prop_oneof![
        6 => valid_delivery().prop_map(|b| (b, true)),
        2 => valid_delete().prop_map(|b| (b, true)),
        2 => delivery().prop_map(|b| (b, false)),
    ]
    .boxed()
}

/// Where a byte-level payload goes.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Inside the string value of a known field.
    KnownString(&'static str),
    /// Inside the string value of an unknown field added to the object at this pointer.
    UnknownString(&'static str),
    /// Inside an unknown key added to the object at this pointer.
    UnknownKey(&'static str),
    /// Between two tokens (the n-th place where whitespace may go).
    Between(usize),
}

const KNOWN_STRINGS: [&str; 7] = [
    "/changeType",
    "/data/changeVersion",
    "/data/date",
    "/data/kind",
    "/data/status",
    "/data/person/externalReferences/HRMID",
    "/data/activityLevels/0/activityDefinition/id",
];

const OBJECTS: [&str; 6] = [
    "",
    "/data",
    "/data/person",
    "/data/activityLevels/0",
    "/data/someFutureField/deeper",
    "/data/activityLevels/0/activityDefinition/externalReferences",
];

fn slot() -> impl Strategy<Value = Slot> {
    prop_oneof![
        3 => prop::sample::select(KNOWN_STRINGS.to_vec()).prop_map(Slot::KnownString),
        2 => prop::sample::select(OBJECTS.to_vec()).prop_map(Slot::UnknownString),
        2 => prop::sample::select(OBJECTS.to_vec()).prop_map(Slot::UnknownKey),
        2 => (0_usize..64).prop_map(Slot::Between),
    ]
}

/// `body` with `raw` put at `slot`; the slot's label. Objects missing on the way are created.
fn put(body: &Value, slot: Slot, raw: &[u8]) -> (Vec<u8>, String) {
    let mut body = body.clone();
    match slot {
        Slot::KnownString(pointer) => {
            let text = body.pointer(pointer).and_then(Value::as_str).unwrap_or("x");
            let with_hole = format!("{text}{HOLE}");
            if !set_at(&mut body, pointer, Value::from(with_hole)) {
                set_at(
                    &mut body,
                    "/data/changeVersion",
                    Value::from(format!("0A{HOLE}")),
                );
            }
            (fill_inside(&body, raw), format!("known {pointer}"))
        }
        Slot::UnknownString(object) => {
            let pointer = format!("{object}/futureText");
            if !set_at(&mut body, &pointer, Value::from(format!("a{HOLE}b"))) {
                set_at(&mut body, "/futureText", Value::from(format!("a{HOLE}b")));
            }
            (
                fill_inside(&body, raw),
                format!("unknown value in {object:?}"),
            )
        }
        Slot::UnknownKey(object) => {
            let pointer = format!("{object}/k{}", escape_token(HOLE));
            if !set_at(&mut body, &pointer, json!(1)) {
                set_at(&mut body, &format!("/k{HOLE}"), json!(1));
            }
            (
                fill_inside(&body, raw),
                format!("unknown key in {object:?}"),
            )
        }
        Slot::Between(n) => {
            let bytes = serde_json::to_vec(&body).unwrap();
            let places = token_boundaries(&bytes);
            let at = places.get(n % places.len().max(1)).copied().unwrap_or(0);
            let mut out = bytes[..at].to_vec();
            out.extend_from_slice(raw);
            out.extend_from_slice(&bytes[at..]);
            (out, "between tokens".to_owned())
        }
    }
}

/// The offsets right after a structural character (`{ [ , :`) outside strings.
fn token_boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut places = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b'{' | b'[' | b',' | b':') {
            places.push(i + 1);
        }
    }
    places
}

fn whole_body(code: &'static str) -> Expect {
    Expect::Exactly(vec![(code, String::new())])
}

fn plain_case() -> BoxedStrategy<Case> {
    prop_oneof![
        3 => valid_delivery().prop_map(|body| {
            let mut case = Case::new("plain", "valid", serde_json::to_vec(&body).unwrap(), Expect::Valid);
            case.ordinary = true;
            case
        }),
        1 => valid_delete().prop_map(|body| {
            Case::new("plain", "valid delete", serde_json::to_vec(&body).unwrap(), Expect::Valid)
        }),
        2 => partial_delivery().prop_map(|body| {
            let mut case = Case::new("plain", "valid partial", serde_json::to_vec(&body).unwrap(), Expect::Valid);
            case.ordinary = true;
            case.partial = true;
            case
        }),
        3 => delivery().prop_map(|body| {
            Case::new("plain", "mutated", serde_json::to_vec(&body).unwrap(), Expect::Anything)
        }),
    ]
    .boxed()
}

fn invalid_utf8_case(overlong: bool) -> BoxedStrategy<Case> {
    let payloads: Vec<&'static [u8]> = if overlong {
        vec![
            b"\xc0\xaf",         // '/' in two bytes
            b"\xc0\x80",         // NUL in two bytes
            b"\xc1\xbf",         // DEL in two bytes
            b"\xe0\x80\xaf",     // '/' in three bytes
            b"\xe0\x9f\xbf",     // U+07FF in three bytes
            b"\xf0\x80\x80\xaf", // '/' in four bytes
            b"\xf0\x8f\xbf\xbf", // U+FFFF in four bytes
        ]
    } else {
        vec![
            b"\xff",
            b"\xfe",
            b"\x80",
            b"\xbf\xbf",
            b"\xc3",             // a lead byte without its continuation
            b"\xc3\x28",         // a lead byte before ASCII
            b"\xe2\x82",         // a truncated three-byte sequence
            b"\xed\xa0\x80",     // U+D800 encoded
            b"\xed\xbf\xbf",     // U+DFFF encoded
            b"\xf4\x90\x80\x80", // beyond U+10FFFF
            b"\xf8\x88\x80\x80\x80",
        ]
    };
    let class = if overlong {
        "overlong-utf8"
    } else {
        "invalid-utf8"
    };
    (base(), slot(), prop::sample::select(payloads))
        .prop_map(move |((body, _), slot, payload)| {
            let (bytes, detail) = put(&body, slot, payload);
            Case::new(class, detail, bytes, whole_body("json.utf8"))
        })
        .boxed()
}

fn lone_surrogate_case() -> BoxedStrategy<Case> {
    let escapes = vec![
        r"\ud800",
        r"\udbff",
        r"\udc00",
        r"\udfff",
        r"\udc00\ud800", // a reversed pair
        r"\ud800\ud800",
        r"\ud800\u0041",
        r"\ud800\n",
        r"\ud800x",
        r"\uDFFF\uD800",
    ];
    let slots = prop_oneof![
        3 => prop::sample::select(KNOWN_STRINGS.to_vec()).prop_map(Slot::KnownString),
        2 => prop::sample::select(OBJECTS.to_vec()).prop_map(Slot::UnknownString),
        2 => prop::sample::select(OBJECTS.to_vec()).prop_map(Slot::UnknownKey),
    ];
    (base(), slots, prop::sample::select(escapes))
        .prop_map(|((body, _), slot, escape)| {
            let (bytes, detail) = put(&body, slot, escape.as_bytes());
            Case::new(
                "lone-surrogate",
                detail,
                bytes,
                whole_body("json.lone_surrogate"),
            )
        })
        .boxed()
}

/// Where deep nesting goes: the value of a known field, or of an unknown one.
const DEEP_SLOTS: [(&str, bool); 9] = [
    ("/data/id", true),
    ("/data/person", true),
    ("/data/person/externalReferences", true),
    ("/data/activityLevels", true),
    ("/data", true),
    ("/futureField", false),
    ("/data/futureField", false),
    ("/data/person/futureField", false),
    ("/data/someFutureField/deeper/futureField", false),
];

fn deep_nesting_case() -> BoxedStrategy<Case> {
    (
        base(),
        prop::sample::select(DEEP_SLOTS.to_vec()),
        prop::sample::select(vec![126_usize, 127, 128, 129, 10_000]),
        0_u8..3,
    )
        .prop_map(|((mut body, _), (pointer, known), total, shape)| {
            // A value at a pointer of t tokens sits in t enclosing containers.
            let tokens = pointer.split('/').skip(1).count();
            let total = if total == 10_000 {
                total + tokens
            } else {
                total
            };
            let levels = total - tokens;
            let mut nested = String::new();
            for level in 0..levels {
                nested.push_str(match (shape, level % 2) {
                    (0, _) | (2, 0) => "[",
                    _ => "{\"a\":",
                });
            }
            nested.push('1');
            for level in (0..levels).rev() {
                nested.push(match (shape, level % 2) {
                    (0, _) | (2, 0) => ']',
                    _ => '}',
                });
            }
            let placed = set_at(&mut body, pointer, Value::from(HOLE));
            assert!(placed, "{pointer}");
            let bytes = fill_value(&body, nested.as_bytes());
            let expect = if total > oracle::MAX_DEPTH {
                whole_body("json.too_deep")
            } else {
                Expect::Anything
            };
            let depth = match total {
                t if t > 1_000 => "10000+".to_owned(),
                t => t.to_string(),
            };
            let place = if known { "known" } else { "unknown" };
            Case::new("deep-nesting", format!("{place} {depth}"), bytes, expect)
        })
        .boxed()
}

/// A number literal and its exact value, annotated by hand (not computed by the model).
#[derive(Debug, Clone, Copy)]
enum Exact {
    Integer(i128),
    Fraction,
    /// Beyond a 64-bit float: serde_json refuses it (R1).
    BeyondFloat,
}

const LITERALS: [(&str, Exact); 38] = [
    ("1", Exact::Integer(1)),
    ("510", Exact::Integer(510)),
    ("1.0", Exact::Integer(1)),
    ("510.0", Exact::Integer(510)),
    ("5.1e2", Exact::Integer(510)),
    ("5.1E+2", Exact::Integer(510)),
    ("51000e-2", Exact::Integer(510)),
    ("1E0", Exact::Integer(1)),
    ("-0", Exact::Integer(0)),
    ("-0.0", Exact::Integer(0)),
    ("0.0", Exact::Integer(0)),
    ("0", Exact::Integer(0)),
    ("-1", Exact::Integer(-1)),
    ("1.5", Exact::Fraction),
    ("-1.5", Exact::Fraction),
    ("510.5", Exact::Fraction),
    ("5.105e2", Exact::Fraction),
    ("1e-400", Exact::Fraction),
    ("1.0000000000000001", Exact::Fraction),
    ("480.00000000000001", Exact::Fraction),
    ("9007199254740991.0", Exact::Integer(9_007_199_254_740_991)),
    ("9007199254740992.0", Exact::Integer(9_007_199_254_740_992)),
    ("9007199254740993.0", Exact::Integer(9_007_199_254_740_993)),
    (
        "9.007199254740993e15",
        Exact::Integer(9_007_199_254_740_993),
    ),
    (
        "9223372036854775807",
        Exact::Integer(9_223_372_036_854_775_807),
    ),
    (
        "9223372036854775807.0",
        Exact::Integer(9_223_372_036_854_775_807),
    ),
    (
        "9223372036854775808",
        Exact::Integer(9_223_372_036_854_775_808),
    ),
    (
        "9223372036854775808.0",
        Exact::Integer(9_223_372_036_854_775_808),
    ),
    (
        "18446744073709551616",
        Exact::Integer(18_446_744_073_709_551_616),
    ),
    (
        "-9223372036854775809",
        Exact::Integer(-9_223_372_036_854_775_809),
    ),
    ("1e300", Exact::Integer(i128::MAX)),
    ("-1e300", Exact::Integer(i128::MIN)),
    ("1e400", Exact::BeyondFloat),
    ("2880.0", Exact::Integer(2880)),
    ("2881", Exact::Integer(2881)),
    ("-1440e0", Exact::Integer(-1440)),
    ("2147483647.0", Exact::Integer(2_147_483_647)),
    ("2.147483648e9", Exact::Integer(2_147_483_648)),
];

/// What the docs say about `literal` in an integer field of `range` (R23, R29, R6–R18):
/// the violation's code, if any.
fn judge_literal(literal: &str, exact: Exact, (min, max): (i64, i64)) -> Option<&'static str> {
    match exact {
        Exact::BeyondFloat => Some("json.syntax"),
        Exact::Fraction => Some("number.not_integer"),
        Exact::Integer(value) if value < i128::from(min) || value > i128::from(max) => {
            Some("number.range")
        }
        Exact::Integer(value)
            if literal.contains(['.', 'e', 'E']) && value.abs() > oracle::EXACT_FLOAT_INTEGERS =>
        {
            Some("number.inexact")
        }
        Exact::Integer(_) => None,
    }
}

/// Whether a reader that goes through a 64-bit float (a JSON Schema validator) sees an
/// integer in range where the exact literal is refused: the only numbers Rust may refuse
/// alone.
fn float_reader_accepts(literal: &str, (min, max): (i64, i64)) -> bool {
    let f: f64 = literal.parse().unwrap();
    f.is_finite() && f.fract() == 0.0 && f >= min as f64 && f <= max as f64
}

fn number_literal_case() -> BoxedStrategy<Case> {
    (
        base(),
        prop::sample::select(oracle::INTEGER_FIELDS.to_vec()),
        prop::sample::select(LITERALS.to_vec()),
    )
        .prop_map(|((body, valid), (pointer, range), (literal, exact))| {
            number_case(body, valid, pointer, range, literal, exact)
        })
        .boxed()
}

/// `literal` written into the integer field at `pointer` of `body`, with what the docs say
/// about it.
fn number_case(
    mut body: Value,
    valid: bool,
    pointer: &'static str,
    range: (i64, i64),
    literal: &'static str,
    exact: Exact,
) -> Case {
    let is_delete = body["changeType"] == "Delete";
    // Make the field exist and count: a reason needs a Reason clocking, a level an Activity
    // one.
    if !is_delete && valid {
        let data = body["data"].as_object_mut().unwrap();
        if pointer.starts_with("/data/reason") {
            data.insert("kind".into(), json!("Reason"));
            data.remove("activityLevels");
            data.insert("reason".into(), json!({"id": 1}));
        } else if pointer.starts_with("/data/activityLevels") {
            data.insert("kind".into(), json!("Activity"));
            data.remove("reason");
            data.remove("isOpen");
            data.insert(
                "activityLevels".into(),
                json!([{"level": 1, "activityDefinition": {"id": "d"}}]),
            );
        }
    }
    let (pointer, range) = if set_at(&mut body, pointer, Value::from(HOLE)) {
        (pointer, range)
    } else {
        set_at(&mut body, "/data/id", Value::from(HOLE));
        ("/data/id", oracle::IDS)
    };
    let bytes = fill_value(&body, literal.as_bytes());
    let judged = judge_literal(literal, exact, range);
    let counts = !is_delete || pointer == "/data/id";
    let expect = match (judged, valid) {
        (Some("json.syntax"), _) => whole_body("json.syntax"),
        // A Delete ignores every field but changeVersion and id.
        _ if valid && !counts => Expect::Valid,
        (None, true) => Expect::Valid,
        (Some(code), true) => Expect::Exactly(vec![(code, pointer.to_owned())]),
        (judged, false) if counts => {
            Expect::AtPointer(pointer.to_owned(), judged.into_iter().collect())
        }
        _ => Expect::Anything,
    };
    let mut case = Case::new(
        "number-literal",
        format!("{pointer} {literal}"),
        bytes,
        expect,
    );
    if let (Some(code), true) = (judged, counts)
        && code != "json.syntax"
        && float_reader_accepts(literal, range)
    {
        case.rust_only = vec![(code, pointer.to_owned())];
    }
    if let (None, true, true, Exact::Integer(value)) = (judged, valid, counts, exact) {
        case.exact_value = Some((pointer.to_owned(), value));
    }
    case
}

/// Objects that get a key twice.
const DUPLICATE_OBJECTS: [&str; 10] = [
    "",
    "/data",
    "/data/person",
    "/data/person/externalReferences",
    "/data/terminal",
    "/data/geolocation",
    "/data/reason",
    "/data/activityLevels/0",
    "/data/activityLevels/0/activityDefinition",
    "/data/someFutureField",
];

fn duplicate_key_case() -> BoxedStrategy<Case> {
    (
        base(),
        prop::sample::select(DUPLICATE_OBJECTS.to_vec()),
        any::<prop::sample::Index>(),
        any::<bool>(),
        prop::sample::select(vec![
            json!(1),
            json!("x"),
            json!(null),
            json!({"id": 2}),
            json!([]),
            json!("InOut"),
        ]),
    )
        .prop_map(|((mut body, _), object, index, escaped, value)| {
            // The object, created if absent (an activity level only if there is one), else
            // `data`, else the envelope.
            if !body.is_object() {
                body = json!({"futureKey": 0});
            }
            // An activity level exists only on an Activity clocking: make one when needed.
            if object.contains("activityLevels")
                && body.pointer(object).is_none()
                && let Some(data) = body.get_mut("data").and_then(Value::as_object_mut)
            {
                data.insert("kind".into(), json!("Activity"));
                data.remove("reason");
                data.remove("isOpen");
                data.insert(
                    "activityLevels".into(),
                    json!([{"level": 1, "activityDefinition": {"id": "d"}}]),
                );
            }
            let object = if body.pointer(object).is_some_and(Value::is_object)
                || (!object.contains("activityLevels")
                    && set_at(&mut body, &format!("{object}/futureKey"), json!(0)))
            {
                object
            } else if body.pointer("/data").is_some_and(Value::is_object) {
                "/data"
            } else {
                ""
            };
            let target = if object.is_empty() {
                &mut body
            } else {
                body.pointer_mut(object).unwrap()
            };
            let map = target.as_object_mut().unwrap();
            if map.is_empty() {
                map.insert("futureKey".into(), json!(0));
            }
            let key = map.keys().nth(index.index(map.len())).unwrap().clone();
            map.insert(HOLE.into(), value);
            // The second occurrence, spelled as is or with its first character escaped
            // (`"\u0069d"` is `"id"`).
            let spelled = if escaped {
                let mut chars = key.chars();
                let first = chars.next().unwrap();
                let rest: String = chars.collect();
                let mut units = [0_u16; 2];
                let escapes: String = first
                    .encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect();
                format!(
                    "{escapes}{}",
                    serde_json::to_string(&rest).unwrap().trim_matches('"')
                )
            } else {
                serde_json::to_string(&key)
                    .unwrap()
                    .trim_matches('"')
                    .to_owned()
            };
            let bytes = fill_inside(&body, spelled.as_bytes());
            let pointer = format!("{object}/{}", escape_token(&key));
            let level = if object.is_empty() {
                "envelope"
            } else {
                object
            };
            let mut case = Case::new(
                "duplicate-key",
                format!("in {level}"),
                bytes,
                Expect::Exactly(vec![("json.duplicate_key", pointer.clone())]),
            );
            case.rust_only = vec![("json.duplicate_key", pointer)];
            case
        })
        .boxed()
}

fn byte_case() -> BoxedStrategy<Case> {
    prop_oneof![
        2 => plain_case(),
        1 => invalid_utf8_case(false),
        1 => invalid_utf8_case(true),
        1 => lone_surrogate_case(),
        1 => deep_nesting_case(),
        1 => number_literal_case(),
        1 => duplicate_key_case(),
    ]
    .boxed()
}

fn violations(
    result: &Result<protime_model::ClockingChange, protime_model::ValidationErrors>,
) -> Vec<(&'static str, String)> {
    match result {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .errors()
            .iter()
            .map(|e| (e.code.as_str(), e.pointer.clone()))
            .collect(),
    }
}

/// Checks Rust's verdict on `case` under `profile` against what its class decides.
fn check_expectation(
    case: &Case,
    profile: Profile,
    rust: &Result<protime_model::ClockingChange, protime_model::ValidationErrors>,
) -> Result<(), TestCaseError> {
    let found = violations(rust);
    let shown = || {
        String::from_utf8_lossy(&case.bytes)
            .chars()
            .take(600)
            .collect::<String>()
    };
    match &case.expect_under(profile) {
        Expect::Anything => {}
        Expect::Invalid => prop_assert!(
            rust.is_err(),
            "{} {} accepted under {profile}: {}",
            case.class,
            case.detail,
            shown()
        ),
        Expect::Valid => prop_assert!(
            rust.is_ok(),
            "{} {}: {found:?} on {}",
            case.class,
            case.detail,
            shown()
        ),
        Expect::Exactly(expected) => {
            prop_assert_eq!(
                &found,
                expected,
                "{} {} on {}",
                case.class,
                case.detail,
                shown()
            );
        }
        Expect::AtPointer(pointer, codes) => {
            let at: Vec<&str> = found
                .iter()
                .filter(|(_, p)| p == pointer)
                .map(|(c, _)| *c)
                .collect();
            // Some other violation (a wrong kind, an unknown change type) may keep the field
            // from being judged at all; when it is judged, it is judged as the docs say.
            if !at.is_empty() || found.is_empty() {
                prop_assert_eq!(&at, codes, "{} {} on {}", case.class, case.detail, shown());
            }
        }
    }
    if let (Some((pointer, value)), Ok(change)) = (&case.exact_value, rust) {
        let wire = serde_json::to_value(change).unwrap();
        let applied = wire
            .pointer(pointer)
            .and_then(Value::as_i64)
            .map(i128::from);
        prop_assert_eq!(
            applied,
            Some(*value),
            "{} was applied as {:?}",
            pointer,
            applied
        );
    }
    Ok(())
}

/// Rust against the JSON Schema on one byte-level case: the same verdict, or the schema side
/// cannot read the body (Rust refuses it), or Rust alone refuses it for a rule the schema
/// cannot express — with exactly the violations the case names, nothing broader.
fn check_against_schema(
    case: &Case,
    profile: Profile,
    validator: &jsonschema::Validator,
    coverage: &Coverage,
) -> Result<(), TestCaseError> {
    let rust = parse_delivery_with(&case.bytes, profile);
    check_expectation(case, profile, &rust)?;
    coverage.hit(case.class);
    let Ok(wire) = serde_json::from_slice::<Value>(&case.bytes) else {
        // The schema side cannot read the body at all: Rust refuses it with the class's own
        // code (checked above), never accepts it.
        prop_assert!(rust.is_err());
        coverage.hit(format!("{} unreadable by the schema side", case.class));
        return Ok(());
    };
    let schema_ok = validator.is_valid(&wire);
    if rust.is_ok() == schema_ok {
        coverage.hit(format!("{} agreed", case.class));
        return Ok(());
    }
    let found = violations(&rust);
    let excused =
        schema_ok && !found.is_empty() && found.iter().all(|v| case.rust_only.contains(v));
    if !excused {
        let schema_errors: Vec<String> = validator
            .iter_errors(&wire)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        return Err(TestCaseError::fail(format!(
            "disagreement ({} {}, {profile}) on {}\nrust: {found:?}\nschema accepts: {schema_ok} {schema_errors:?}",
            case.class,
            case.detail,
            String::from_utf8_lossy(&case.bytes)
        )));
    }
    coverage.hit(format!("{} refused by Rust alone", case.class));
    Ok(())
}

/// The fast path against the full walk on one case: what the fast path accepts, the full walk
/// accepts as the same value; `parse_delivery` answers exactly as the full walk; the class's
/// verdict holds; ordinary valid bodies take the fast path.
fn check_paths(case: &Case, profile: Profile, coverage: &Coverage) -> Result<(), TestCaseError> {
    let full_walk = parse_delivery_full_walk(&case.bytes, profile);
    let fast_path = parse_delivery_fast_path(&case.bytes, profile);
    let delivered = parse_delivery_with(&case.bytes, profile);
    if let Some(change) = &fast_path {
        prop_assert_eq!(
            full_walk.as_ref(),
            Ok(change),
            "the fast path accepted {} {} that the full walk judges otherwise ({}): {}",
            case.class,
            case.detail,
            profile,
            String::from_utf8_lossy(&case.bytes)
        );
    }
    // Same value, or the same violations (codes, pointers, messages, values).
    prop_assert_eq!(&delivered, &full_walk);
    if profile == Profile::Documented {
        prop_assert_eq!(&parse_delivery(&case.bytes), &full_walk);
    }
    check_expectation(case, profile, &full_walk)?;
    coverage.hit(case.class);
    coverage.hit(format!("{} {}", case.class, case.detail));
    if case.ordinary && !(case.partial && profile == Profile::Strict) {
        prop_assert!(
            fast_path_accepts(&case.bytes, profile),
            "the fast path did not take an ordinary valid body ({profile}): {}",
            String::from_utf8_lossy(&case.bytes)
        );
        coverage.hit("ordinary valid, fast path taken");
        if case.partial {
            coverage.hit("ordinary partial valid, fast path taken");
        }
    }
    if fast_path.is_some() {
        coverage.hit("fast path taken");
    }
    Ok(())
}

#[test]
fn rust_and_json_schema_agree_on_byte_level_classes_except_where_a_schema_cannot_see() {
    let validators = profile_validators();
    let coverage = Coverage::default();
    let mut runner = TestRunner::new(config(
        BYTE_CLASS_CASES,
        "proptest-regressions/agreement/rust_and_json_schema_agree_on_byte_level_classes.txt",
    ));
    runner
        .run(&byte_case(), |case| {
            for (profile, validator) in &validators {
                check_against_schema(&case, *profile, validator, &coverage)?;
            }
            Ok(())
        })
        .unwrap();
    coverage.report(
        "rust_and_json_schema_agree_on_byte_level_classes_except_where_a_schema_cannot_see",
    );
    coverage.assert_floor(CLASSES, 300);
    // Each class reaches the schema side as the docs say: unreadable, or readable and then
    // only the classes a schema cannot see may differ.
    coverage.assert_floor(
        [
            "invalid-utf8 unreadable by the schema side",
            "overlong-utf8 unreadable by the schema side",
            "lone-surrogate unreadable by the schema side",
            "deep-nesting unreadable by the schema side",
            "deep-nesting agreed",
            "number-literal agreed",
            "number-literal refused by Rust alone",
            "duplicate-key refused by Rust alone",
            "plain agreed",
        ],
        20,
    );
}

#[test]
fn fast_path_and_full_walk_give_the_same_result() {
    let coverage = Coverage::default();
    let mut runner = TestRunner::new(config(
        DIFFERENTIAL_CASES,
        "proptest-regressions/agreement/fast_path_and_full_walk_give_the_same_result.txt",
    ));
    runner
        .run(&byte_case(), |case| {
            for profile in Profile::ALL {
                check_paths(&case, profile, &coverage)?;
            }
            Ok(())
        })
        .unwrap();
    coverage.report("fast_path_and_full_walk_give_the_same_result");
    coverage.assert_floor(CLASSES, 300);
    coverage.assert_floor(["ordinary valid, fast path taken"], 500);
    coverage.assert_floor(["ordinary partial valid, fast path taken"], 100);
    // Invalid UTF-8 and lone surrogates in known and unknown places, and between tokens.
    let mut places = Vec::new();
    for class in ["invalid-utf8", "overlong-utf8", "lone-surrogate"] {
        for pointer in KNOWN_STRINGS {
            places.push(format!("{class} known {pointer}"));
        }
        for object in OBJECTS {
            places.push(format!("{class} unknown value in {object:?}"));
            places.push(format!("{class} unknown key in {object:?}"));
        }
    }
    places.push("invalid-utf8 between tokens".to_owned());
    places.push("overlong-utf8 between tokens".to_owned());
    coverage.assert_floor(places.iter().map(String::as_str), 5);
    // Nesting at 126/127/128/129 and far beyond, in known and unknown fields.
    let depths: Vec<String> = ["known", "unknown"]
        .iter()
        .flat_map(|place| {
            ["126", "127", "128", "129", "10000+"]
                .iter()
                .map(move |depth| format!("deep-nesting {place} {depth}"))
        })
        .collect();
    coverage.assert_floor(depths.iter().map(String::as_str), 20);
    // A duplicate key at every level.
    let levels: Vec<String> = DUPLICATE_OBJECTS
        .iter()
        .map(|o| {
            format!(
                "duplicate-key in {}",
                if o.is_empty() { "envelope" } else { o }
            )
        })
        .collect();
    coverage.assert_floor(levels.iter().map(String::as_str), 20);
}

/// Every literal of the table in every integer field, of a `Reason`, an `Activity` and a
/// `Delete` body: both paths, the docs' verdict, the exact value applied, and the schema story.
#[test]
fn every_literal_in_every_integer_field_has_one_verdict() {
    let validators = profile_validators();
    let coverage = Coverage::default();
    let delete = json!({"changeType": "Delete", "data": {"changeVersion": "0A", "id": 7}});
    for base in [full_body("Reason"), full_body("Activity"), delete] {
        for (pointer, range) in oracle::INTEGER_FIELDS {
            for (literal, exact) in LITERALS {
                let case = number_case(base.clone(), true, pointer, range, literal, exact);
                for (profile, validator) in &validators {
                    check_paths(&case, *profile, &coverage).unwrap();
                    check_against_schema(&case, *profile, validator, &coverage).unwrap();
                }
            }
        }
    }
    assert_eq!(
        coverage.count("number-literal"),
        2 * Profile::ALL.len() * 3 * oracle::INTEGER_FIELDS.len() * LITERALS.len()
    );
    // Both directions of the schema story occur: agreement, and the Rust-only literals.
    coverage.report("every_literal_in_every_integer_field_has_one_verdict");
    coverage.assert_floor(
        [
            "number-literal agreed",
            "number-literal refused by Rust alone",
            "number-literal unreadable by the schema side",
        ],
        10,
    );
}

#[test]
fn accepted_deliveries_round_trip_through_wire_format_and_raw_types() {
    let mut runner = TestRunner::new(config(
        2_000,
        "proptest-regressions/agreement/accepted_deliveries_round_trip.txt",
    ));
    runner
        .run(&delivery(), |body| {
            let bytes = serde_json::to_vec(&body).unwrap();
            let Ok(change) = parse_delivery(&bytes) else {
                return Ok(());
            };
            // Model -> wire -> model.
            let wire = serde_json::to_vec(&change).unwrap();
            prop_assert_eq!(parse_delivery(&wire).unwrap(), change.clone());
            // Model -> raw -> model.
            // A parsed delivery always carries a version, so it always has a raw form.
            let raw = protime_client::convert::change_to_raw(change.clone()).unwrap();
            prop_assert_eq!(
                protime_client::convert::change_from_raw(raw.clone()).unwrap(),
                change.clone()
            );
            // The raw type deserializes the same wire bytes to the same value.
            let raw_from_wire: protime_raw::types::ClockingChange =
                serde_json::from_slice(&wire).unwrap();
            prop_assert_eq!(raw_from_wire, raw);
            Ok(())
        })
        .unwrap();
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "changeType",
            "data",
            "InsertOrUpdate",
            "Delete",
            "kind",
            "Reason"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(DATA_FIELDS.to_vec()).prop_map(String::from),
                    prop::sample::select(vec![
                        "changeType",
                        "data",
                        "level",
                        "activityDefinition",
                        "externalReferences",
                        "latitude"
                    ])
                    .prop_map(String::from),
                    ".{0,6}",
                ],
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(3_000, "proptest-regressions/agreement/never_panic.txt"))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for profile in Profile::ALL {
            let _ = parse_delivery_with(&bytes, profile);
            let _ = parse_delivery_full_walk(&bytes, profile);
            let _ = protime_model::parse_clocking_with(&bytes, profile);
        }
    }

    #[test]
    fn arbitrary_json_never_panics_and_errors_carry_pointers(value in arbitrary_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        if let Err(errors) = parse_delivery(&bytes) {
            prop_assert!(!errors.is_empty());
            for error in errors.errors() {
                prop_assert!(error.pointer.is_empty() || error.pointer.starts_with('/'));
                prop_assert!(!error.message.is_empty());
            }
        }
    }

    #[test]
    fn arbitrary_envelopes_never_panic(data in arbitrary_json(), kind in prop::sample::select(vec!["InsertOrUpdate", "Delete"])) {
        let body = json!({"changeType": kind, "data": data});
        let _ = parse_delivery(&serde_json::to_vec(&body).unwrap());
    }
}

#[test]
fn the_error_codes_of_the_new_classes_are_stable() {
    for (code, text) in [
        (ErrorCode::JsonUtf8, "json.utf8"),
        (ErrorCode::JsonLoneSurrogate, "json.lone_surrogate"),
        (ErrorCode::JsonTooDeep, "json.too_deep"),
        (ErrorCode::JsonDuplicateKey, "json.duplicate_key"),
        (ErrorCode::NumberInexact, "number.inexact"),
    ] {
        assert_eq!(code.as_str(), text);
        assert_eq!(serde_json::to_value(code).unwrap(), json!(text));
    }
}
