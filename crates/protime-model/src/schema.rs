//! `schemars::JsonSchema` for the model (feature `schema`). Every bound comes from the model
//! types' own constants, so the emitted JSON Schema cannot drift from the validator: changing
//! a range in the model changes the schema, and the committed files under `schemas/` then
//! fail the drift test until `cargo xtask schema` is run.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::model::{
    ActivityDefinitionRef, ActivityLevel, ActivityLevelNumber, ActivityLevels, CalendarDate,
    ChangeType, ChangeVersion, Clocking, ClockingChange, ClockingId, ClockingKind, ClockingStatus,
    Geolocation, Latitude, Longitude, MinuteOfDay, PersonRef, ReasonRef, TerminalRef,
};
use crate::profile::Profile;

/// `schema`, or `null` (an optional field given as `null` counts as absent).
fn nullable(schema: Schema) -> Schema {
    json_schema!({ "anyOf": [schema, { "type": "null" }] })
}

/// Years 0001..=9999 in strict `YYYY-MM-DD` form. `format: date` alone would leave year
/// 0000 and validators that do not assert formats to chance.
const DATE_PATTERN: &str =
    "^(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}$";

fn positive_id_schema(description: &str) -> Schema {
    json_schema!({
        "type": "integer",
        "minimum": ClockingId::MIN,
        "maximum": ClockingId::MAX,
        "description": description,
    })
}

/// `{id, externalReferences?}` for objects with an integer id.
fn numbered_ref_schema(generator: &mut SchemaGenerator, description: &str) -> Schema {
    let references = nullable(generator.subschema_for::<crate::ExternalReferences>());
    json_schema!({
        "type": "object",
        "description": description,
        "required": ["id"],
        "properties": {
            "id": positive_id_schema("Internal id (an integer of at least 1)."),
            "externalReferences": references,
        },
    })
}

impl JsonSchema for ChangeVersion {
    fn schema_name() -> Cow<'static, str> {
        "ChangeVersion".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "Ordering token of a change; compare as plain strings. A change whose version is lower than the last one applied for the same id is stale; an equal one is a redelivery.",
        })
    }
}

impl JsonSchema for ClockingId {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ClockingId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        positive_id_schema("Clocking id (an integer of at least 1).")
    }
}

impl JsonSchema for MinuteOfDay {
    fn schema_name() -> Cow<'static, str> {
        "MinuteOfDay".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "minimum": MinuteOfDay::MIN,
            "maximum": MinuteOfDay::MAX,
            "description": "Minutes relative to midnight of the clocking's date: -1440..-1 previous day, 0..1439 the date itself, 1440..2880 next day.",
        })
    }
}

impl JsonSchema for CalendarDate {
    fn schema_name() -> Cow<'static, str> {
        "CalendarDate".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date",
            "pattern": DATE_PATTERN,
            "description": "A real calendar date in strict YYYY-MM-DD form (years 0001-9999).",
        })
    }
}

impl JsonSchema for Geolocation {
    fn schema_name() -> Cow<'static, str> {
        "Geolocation".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "required": ["latitude", "longitude"],
            "properties": {
                "latitude": { "type": "number", "minimum": Latitude::MIN, "maximum": Latitude::MAX },
                "longitude": { "type": "number", "minimum": Longitude::MIN, "maximum": Longitude::MAX },
            },
        })
    }
}

impl JsonSchema for PersonRef {
    fn schema_name() -> Cow<'static, str> {
        "PersonRef".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        numbered_ref_schema(generator, "The person who clocked.")
    }
}

impl JsonSchema for TerminalRef {
    fn schema_name() -> Cow<'static, str> {
        "TerminalRef".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        numbered_ref_schema(generator, "The terminal where the clocking was made.")
    }
}

impl JsonSchema for ReasonRef {
    fn schema_name() -> Cow<'static, str> {
        "ReasonRef".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        numbered_ref_schema(generator, "The reason of a Reason clocking.")
    }
}

impl JsonSchema for ActivityDefinitionRef {
    fn schema_name() -> Cow<'static, str> {
        "ActivityDefinitionRef".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let references = nullable(generator.subschema_for::<crate::ExternalReferences>());
        json_schema!({
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": { "type": "string", "minLength": 1, "description": "Id of the activity definition (a GUID in practice)." },
                "externalReferences": references,
            },
        })
    }
}

impl JsonSchema for ActivityLevel {
    fn schema_name() -> Cow<'static, str> {
        "ActivityLevel".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let definition = generator.subschema_for::<ActivityDefinitionRef>();
        json_schema!({
            "type": "object",
            "required": ["level", "activityDefinition"],
            "properties": {
                "level": {
                    "type": "integer",
                    "minimum": ActivityLevelNumber::MIN,
                    "maximum": ActivityLevelNumber::MAX,
                },
                "activityDefinition": definition,
            },
        })
    }
}

impl JsonSchema for ActivityLevels {
    fn schema_name() -> Cow<'static, str> {
        "ActivityLevels".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let level = generator.subschema_for::<ActivityLevel>();
        json_schema!({ "type": "array", "minItems": 1, "items": level })
    }
}

/// The `data` of a `Delete` change: only `changeVersion` and `id` are checked.
struct ClockingDeletion;

impl JsonSchema for ClockingDeletion {
    fn schema_name() -> Cow<'static, str> {
        "ClockingDeletion".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let change_version = generator.subschema_for::<ChangeVersion>();
        let id = generator.subschema_for::<ClockingId>();
        json_schema!({
            "type": "object",
            "description": "data of a Delete change: changeVersion and id; other fields are ignored.",
            "required": ["changeVersion", "id"],
            "properties": { "changeVersion": change_version, "id": id },
        })
    }
}

/// `{"if": kind == <kind>, "then": …, "else": …}` for one kind-conditional rule.
fn when_kind(kind: &str, then: Schema, otherwise: Schema) -> Schema {
    json_schema!({
        "if": { "required": ["kind"], "properties": { "kind": { "const": kind } } },
        "then": then,
        "else": otherwise,
    })
}

/// Where a clocking comes from: it decides whether `changeVersion` is required.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The `data` of an `InsertOrUpdate` (a delivery, a delta change): `changeVersion` is
    /// required under every profile (ordering needs it).
    Change,
    /// A clocking as the API lists it (a list page item, a get response): only
    /// [`Profile::Strict`] requires `changeVersion` (the docs' examples carry none).
    Listed,
}

/// Whether a clocking from `source` must carry `changeVersion` under `profile`.
fn requires_version(profile: Profile, source: Source) -> bool {
    source == Source::Change || profile.requires_listed_change_version()
}

/// The fields a clocking from `source` must carry under `profile`.
fn required_fields(profile: Profile, source: Source) -> &'static [&'static str] {
    match (
        profile.requires_clocking_fields(),
        requires_version(profile, source),
    ) {
        (true, true) => &[
            "changeVersion",
            "id",
            "person",
            "date",
            "timeOfDayInMinutes",
            "kind",
        ],
        (true, false) => &["id", "person", "date", "timeOfDayInMinutes", "kind"],
        (false, true) => &["changeVersion", "id"],
        (false, false) => &["id"],
    }
}

/// The schema of one clocking from `source` under `profile`. Without `kind`, the `if` of
/// each kind-conditional rule fails, so its `else` applies: `reason`, `isOpen` and
/// `activityLevels` must be absent or null, as in the validator.
fn clocking_schema(generator: &mut SchemaGenerator, profile: Profile, source: Source) -> Schema {
    let required = required_fields(profile, source);
    // A field the profile requires may not be null (R24: null counts as missing); one it
    // does not require may (null counts as absent).
    let by_profile = |schema: Schema| {
        if profile.requires_clocking_fields() {
            schema
        } else {
            nullable(schema)
        }
    };
    let profile_note = match (profile.requires_clocking_fields(), source) {
        (true, _) => {
            "Strict profile: person, date, timeOfDayInMinutes and kind are required too (a project decision)."
        }
        (false, Source::Change) => {
            "Documented profile (the default): only changeVersion and id are required, as in the public docs; every other field is checked when present."
        }
        (false, Source::Listed) => {
            "Documented profile (the default), as the API lists a clocking (a list page item, a get response): only id is required, as in the public docs, whose list and get examples carry no changeVersion (a clocking without one orders before every versioned change of the same id); every other field, changeVersion included, is checked when present. Inside a change (clocking-change.schema.json) changeVersion is required."
        }
    };
    let minute = generator.subschema_for::<MinuteOfDay>();
    let change_version = generator.subschema_for::<ChangeVersion>();
    // A listed clocking may lack changeVersion (absent or null) where it is not required.
    let change_version = if requires_version(profile, source) {
        change_version
    } else {
        nullable(change_version)
    };
    let reason_rule = when_kind(
        "Reason",
        json_schema!({ "required": ["reason"], "properties": { "reason": { "type": "object" } } }),
        json_schema!({ "properties": { "reason": { "type": "null" }, "isOpen": { "type": "null" } } }),
    );
    let activity_rule = when_kind(
        "Activity",
        json_schema!({ "required": ["activityLevels"], "properties": { "activityLevels": { "type": "array" } } }),
        json_schema!({ "properties": { "activityLevels": { "type": "null" } } }),
    );
    json_schema!({
        "type": "object",
        "description": format!("A clocking. {profile_note} reason (and isOpen) only for kind Reason, activityLevels only for kind Activity; without a kind, none of them. Unknown fields are allowed; null on an optional field means absent. Integer fields are judged on their exact literal, keys never repeat, and nesting stays within the body's limit (docs/validation-rules.md, R27-R29): a JSON Schema cannot express these."),
        "required": required,
        "properties": {
            "changeVersion": change_version,
            "id": generator.subschema_for::<ClockingId>(),
            "person": by_profile(generator.subschema_for::<PersonRef>()),
            "date": by_profile(generator.subschema_for::<CalendarDate>()),
            "timeOfDayInMinutes": by_profile(minute.clone()),
            "originalTimeOfDayInMinutes": nullable(minute.clone()),
            "calculatedTimeOfDayInMinutes": nullable(minute),
            "isGenerated": { "type": ["boolean", "null"] },
            "terminal": nullable(generator.subschema_for::<TerminalRef>()),
            "geolocation": nullable(generator.subschema_for::<Geolocation>()),
            "kind": by_profile(json_schema!({ "enum": ClockingKind::NAMES })),
            "reason": nullable(generator.subschema_for::<ReasonRef>()),
            "isOpen": { "type": ["boolean", "null"] },
            "activityLevels": nullable(generator.subschema_for::<ActivityLevels>()),
            "status": nullable(json_schema!({ "enum": ClockingStatus::NAMES })),
        },
        "allOf": [reason_rule, activity_rule],
    })
}

/// A clocking as the API lists it, under [`Profile::Documented`]: `changeVersion` is
/// optional (see [`ChangeVersion::absent`]).
impl JsonSchema for Clocking {
    fn schema_name() -> Cow<'static, str> {
        "Clocking".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        clocking_schema(generator, Profile::Documented, Source::Listed)
    }
}

/// The clocking of an `InsertOrUpdate` change under [`Profile::Documented`]:
/// `changeVersion` is required. Named `Clocking` in the change schema.
struct ChangeClocking;

impl JsonSchema for ChangeClocking {
    fn schema_name() -> Cow<'static, str> {
        "Clocking".into()
    }
    fn schema_id() -> Cow<'static, str> {
        "protime_model::ChangeClocking".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        clocking_schema(generator, Profile::Documented, Source::Change)
    }
}

/// The JSON Schema of a [`Clocking`] under [`Profile::Strict`], for `protime-schema`. Its
/// definition is named `Clocking` too, so that both schemas have the same layout. Not part
/// of the API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct StrictClocking;

impl JsonSchema for StrictClocking {
    fn schema_name() -> Cow<'static, str> {
        "Clocking".into()
    }
    fn schema_id() -> Cow<'static, str> {
        "protime_model::StrictClocking".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        clocking_schema(generator, Profile::Strict, Source::Listed)
    }
}

/// The JSON Schema of a [`ClockingChange`] under [`Profile::Strict`], for `protime-schema`.
/// Not part of the API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct StrictClockingChange;

impl JsonSchema for StrictClockingChange {
    fn schema_name() -> Cow<'static, str> {
        "ClockingChange".into()
    }
    fn schema_id() -> Cow<'static, str> {
        "protime_model::StrictClockingChange".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        change_schema(generator, SchemaGenerator::subschema_for::<StrictClocking>)
    }
}

/// The schema of one delivery, `clocking` giving the schema of an `InsertOrUpdate`'s data.
fn change_schema(
    generator: &mut SchemaGenerator,
    clocking: fn(&mut SchemaGenerator) -> Schema,
) -> Schema {
    let deletion = generator.subschema_for::<ClockingDeletion>();
    let clocking = clocking(generator);
    json_schema!({
        "type": "object",
        "description": "One webhook delivery (or delta item) for the clockings collection. Rules a JSON Schema cannot express, which parse_delivery also enforces (docs/validation-rules.md, R25-R29): the body is UTF-8, holds no lone surrogate escape, nests arrays and objects at most 127 levels deep, and repeats no key in any object; an integer field is judged on its exact literal, so a fraction a 64-bit float loses still counts as a fraction, and an integer written with a fraction or an exponent must lie within -9007199254740991..=9007199254740991.",
        "required": ["changeType", "data"],
        "properties": {
            "changeType": { "enum": ChangeType::NAMES },
            "data": { "type": "object" },
        },
        "if": { "required": ["changeType"], "properties": { "changeType": { "const": "Delete" } } },
        "then": { "properties": { "data": deletion } },
        "else": { "properties": { "data": clocking } },
    })
}

impl JsonSchema for ClockingChange {
    fn schema_name() -> Cow<'static, str> {
        "ClockingChange".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        change_schema(generator, SchemaGenerator::subschema_for::<ChangeClocking>)
    }
}
