//! The vendored spec and the model state the same ranges and enums: a changed bound on either
//! side fails here, naming both values (the JSON Schema is derived from the model, and its
//! own drift test covers that side).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use protime_model::{
    ActivityLevelNumber, ChangeType, ClockingId, ClockingKind, ClockingStatus, Latitude, Longitude,
    MinuteOfDay, PersonId, ReasonId, TerminalId,
};
use serde_json::Value;

fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/protime-api.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    spec.pointer(&format!("/components/schemas/{name}"))
        .unwrap_or_else(|| panic!("the spec has no schema {name}"))
}

fn bound(spec: &Value, schema_name: &str, property: &str, which: &str) -> Option<f64> {
    schema(spec, schema_name)
        .pointer(&format!("/properties/{property}/{which}"))
        .and_then(Value::as_f64)
}

fn names(spec: &Value, schema_name: &str) -> Vec<String> {
    schema(spec, schema_name)["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema_name} is not an enum in the spec"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn minute_ranges_agree() {
    let spec = spec();
    for schema_name in ["Clocking", "ClockingChangeData"] {
        for property in [
            "timeOfDayInMinutes",
            "originalTimeOfDayInMinutes",
            "calculatedTimeOfDayInMinutes",
        ] {
            assert_eq!(
                (
                    bound(&spec, schema_name, property, "minimum"),
                    bound(&spec, schema_name, property, "maximum")
                ),
                (
                    Some(f64::from(MinuteOfDay::MIN)),
                    Some(f64::from(MinuteOfDay::MAX))
                ),
                "{schema_name}.{property}: spec vs MinuteOfDay::MIN/MAX"
            );
        }
    }
}

#[test]
fn geolocation_and_level_ranges_agree() {
    let spec = spec();
    assert_eq!(
        (
            bound(&spec, "Geolocation", "latitude", "minimum"),
            bound(&spec, "Geolocation", "latitude", "maximum")
        ),
        (Some(Latitude::MIN), Some(Latitude::MAX))
    );
    assert_eq!(
        (
            bound(&spec, "Geolocation", "longitude", "minimum"),
            bound(&spec, "Geolocation", "longitude", "maximum")
        ),
        (Some(Longitude::MIN), Some(Longitude::MAX))
    );
    assert_eq!(
        bound(&spec, "ActivityLevel", "level", "minimum"),
        Some(f64::from(ActivityLevelNumber::MIN))
    );
}

#[test]
fn id_minimums_agree() {
    let spec = spec();
    let minimum = |schema_name: &str| bound(&spec, schema_name, "id", "minimum");
    assert_eq!(minimum("Clocking"), Some(ClockingId::MIN as f64));
    assert_eq!(minimum("ClockingChangeData"), Some(ClockingId::MIN as f64));
    assert_eq!(minimum("PersonRef"), Some(PersonId::MIN as f64));
    assert_eq!(minimum("TerminalRef"), Some(TerminalId::MIN as f64));
    assert_eq!(minimum("ReasonRef"), Some(ReasonId::MIN as f64));
}

#[test]
fn enums_agree() {
    let spec = spec();
    assert_eq!(names(&spec, "ClockingKind"), ClockingKind::NAMES);
    assert_eq!(names(&spec, "ClockingStatus"), ClockingStatus::NAMES);
    assert_eq!(names(&spec, "ChangeType"), ChangeType::NAMES);
}
