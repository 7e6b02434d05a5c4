//! Proves that `parse_delivery` (Rust) and the emitted JSON Schema (checked by the
//! `jsonschema` crate with format assertion on) accept exactly the same delivery bodies, on
//! wire JSON generated to hit every rule in docs/validation-rules.md. Also: accepted bodies
//! round-trip through serialization and through the `protime-raw` types unchanged, and no
//! input makes `parse_delivery` panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use protime_model::parse_delivery;
use serde_json::{Map, Value, json};

const AGREEMENT_CASES: u32 = 12_000;

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

/// A clocking that is valid or close to valid; mutations below break it further.
fn clocking() -> impl Strategy<Value = Value> {
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
            prop::sample::select(vec!["InOut", "Reason", "Activity", "ActivityEnd"]),
            reference(),
            prop::option::of(any::<bool>()),
            prop::collection::vec(activity_level(), 1..4),
            prop::option::of(prop::sample::select(vec!["Unknown", "Active", "Deleted"])),
        ),
    )
        .prop_map(
            |(
                (version, id, person, date, time, original, calculated, generated),
                (terminal, geolocation, kind, reason, is_open, levels, status),
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
                match kind {
                    "Reason" => {
                        data.insert("reason".into(), reason);
                        if let Some(open) = is_open {
                            data.insert("isOpen".into(), open.into());
                        }
                    }
                    "Activity" => {
                        data.insert("activityLevels".into(), Value::Array(levels));
                    }
                    _ => {}
                }
                if let Some(s) = status {
                    data.insert("status".into(), s.into());
                }
                json!({"changeType": "InsertOrUpdate", "data": data})
            },
        )
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

fn delivery() -> impl Strategy<Value = Value> {
    (clocking(), prop::collection::vec(mutation(), 0..3)).prop_map(|(mut body, mutations)| {
        for m in &mutations {
            apply(&mut body, m);
        }
        body
    })
}

fn schema_validator() -> jsonschema::Validator {
    protime_schema::validator(protime_schema::clocking_change_schema()).unwrap()
}

#[test]
fn rust_and_json_schema_accept_exactly_the_same_deliveries() {
    let validator = schema_validator();
    let accepted = AtomicUsize::new(0);
    let rejected = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: AGREEMENT_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&delivery(), |body| {
            let bytes = serde_json::to_vec(&body).unwrap();
            // Re-read the bytes, as both sides would see them on the wire.
            let wire: Value = serde_json::from_slice(&bytes).unwrap();
            let rust = parse_delivery(&bytes);
            let schema_ok = validator.is_valid(&wire);
            if rust.is_ok() != schema_ok {
                let schema_errors: Vec<String> = validator
                    .iter_errors(&wire)
                    .map(|e| format!("{} at {}", e, e.instance_path()))
                    .collect();
                return Err(TestCaseError::fail(format!(
                    "disagreement on {}\nrust: {:?}\nschema accepts: {schema_ok} {schema_errors:?}",
                    String::from_utf8_lossy(&bytes),
                    rust.as_ref().map(|_| ()).map_err(ToString::to_string)
                )));
            }
            if schema_ok { &accepted } else { &rejected }.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    let (accepted, rejected) = (accepted.into_inner(), rejected.into_inner());
    assert_eq!(accepted + rejected, AGREEMENT_CASES as usize);
    // Both directions must be exercised in earnest, not only one of them.
    assert!(accepted >= 1_000, "only {accepted} valid cases");
    assert!(rejected >= 1_000, "only {rejected} invalid cases");
}

#[test]
fn accepted_deliveries_round_trip_through_wire_format_and_raw_types() {
    let mut runner = TestRunner::new(Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    });
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
            let raw = protime_client::convert::change_to_raw(change.clone());
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
    #![proptest_config(Config { cases: 3_000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_delivery(&bytes);
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
fn fast_path_and_full_walk_give_the_same_result() {
    let mut runner = TestRunner::new(Config {
        cases: 3_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&delivery(), |body| {
            let bytes = serde_json::to_vec(&body).unwrap();
            let full_walk = protime_model::parse_change_value(&body);
            prop_assert_eq!(parse_delivery(&bytes), full_walk);
            Ok(())
        })
        .unwrap();
}
