//! Turns a delivery body into a [`ClockingChange`], or reports every violated rule at once.
//!
//! The walk goes over a `serde_json::Value` so that a wrong type in one field never hides
//! the violations in the others. Rules and codes: `docs/validation-rules.md`.

use serde_json::{Map, Value};

use crate::error::{Allowed, ErrorCode, ValidationError, ValidationErrors};
use crate::model::{
    ActivityDefinitionId, ActivityDefinitionRef, ActivityLevel, ActivityLevelNumber,
    ActivityLevels, CalendarDate, ChangeType, ChangeVersion, Clocking, ClockingChange, ClockingId,
    ClockingKind, ClockingStatus, ExternalReferences, Geolocation, Latitude, Longitude,
    MinuteOfDay, PersonId, PersonRef, ReasonId, ReasonRef, TerminalId, TerminalRef,
};

/// Parses and validates one webhook delivery body (`{"changeType": …, "data": …}`).
///
/// Malformed JSON, wrong types, out-of-range values and kind-conditional violations are all
/// reported together, each with a JSON Pointer, a stable [`ErrorCode`], the offending value
/// and what is allowed. Unknown fields are ignored. Never panics.
///
/// ```
/// use protime_model::{parse_delivery, ClockingChange, ErrorCode};
///
/// let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000A",
///   "id":19250,"person":{"id":1},"date":"2026-01-15","timeOfDayInMinutes":510,"kind":"InOut"}}"#;
/// let change = parse_delivery(body).unwrap();
/// assert_eq!(change.id().get(), 19250);
///
/// let bad = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"1","id":1,
///   "person":{"id":1},"date":"2024-2-3","timeOfDayInMinutes":2881,"kind":"Reason"}}"#;
/// let errors = parse_delivery(bad).unwrap_err();
/// assert_eq!(errors.len(), 3);
/// assert!(errors.has_pointer("/data/timeOfDayInMinutes"));
/// assert!(errors.has_code(ErrorCode::KindMissingField));
/// ```
pub fn parse_delivery(body: &[u8]) -> Result<ClockingChange, ValidationErrors> {
    if let Some(change) = crate::fast_path::parse(body) {
        return Ok(change);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ValidationErrors::single(ValidationError {
            pointer: String::new(),
            code: ErrorCode::JsonSyntax,
            message: format!("body is not valid JSON: {e}"),
            value: None,
            allowed: None,
        })
    })?;
    parse_change_value(&value)
}

/// Validates one clocking as the API lists it (an item of a list page, a get response): the
/// rules of the `data` of an `InsertOrUpdate`, with error pointers relative to a change
/// envelope (`/data/...`), as for deliveries. The same verdict as [`parse_delivery`] on
/// `{"changeType":"InsertOrUpdate","data":<item>}`, with the same typed fast path.
///
/// ```
/// use protime_model::parse_clocking;
/// let item = br#"{"changeVersion":"0A","id":7,"person":{"id":1},"date":"2026-01-15",
///     "timeOfDayInMinutes":480,"kind":"InOut"}"#;
/// assert_eq!(parse_clocking(item).unwrap().id.get(), 7);
/// let errors = parse_clocking(br#"{"changeVersion":"0A","id":7}"#).unwrap_err();
/// assert!(errors.errors().iter().any(|e| e.pointer == "/data/person"));
/// ```
pub fn parse_clocking(item: &[u8]) -> Result<Clocking, ValidationErrors> {
    if let Some(clocking) = crate::fast_path::parse_clocking(item) {
        return Ok(clocking);
    }
    let data: Value = serde_json::from_slice(item).map_err(|e| {
        ValidationErrors::single(ValidationError {
            pointer: "/data".into(),
            code: ErrorCode::JsonSyntax,
            message: format!("the clocking is not valid JSON: {e}"),
            value: None,
            allowed: None,
        })
    })?;
    let envelope = serde_json::json!({ "changeType": "InsertOrUpdate", "data": data });
    match parse_change_value(&envelope)? {
        ClockingChange::InsertOrUpdate(clocking) => Ok(clocking),
        // The envelope above is always an InsertOrUpdate.
        ClockingChange::Delete { .. } => Err(ValidationErrors::single(ValidationError {
            pointer: "/changeType".into(),
            code: ErrorCode::EnumUnknown,
            message: "expected an InsertOrUpdate change".into(),
            value: Some(Value::from("Delete")),
            allowed: None,
        })),
    }
}

/// Validates an already-parsed JSON value as one clocking change (see [`parse_delivery`]).
///
/// ```
/// use protime_model::parse_change_value;
/// let value = serde_json::json!({"changeType": "Delete",
///     "data": {"changeVersion": "0000090200004BD0000C", "id": 1001}});
/// assert!(parse_change_value(&value).unwrap().removes_clocking());
/// ```
pub fn parse_change_value(value: &Value) -> Result<ClockingChange, ValidationErrors> {
    let mut walker = Walker::default();
    let change = walker.change(value);
    match (change, ValidationErrors::new(walker.errors)) {
        (Some(change), None) => Ok(change),
        (_, Some(errors)) => Err(errors),
        // Every path that yields no value records an error; keep a guard all the same.
        (None, None) => Err(ValidationErrors::single(ValidationError {
            pointer: String::new(),
            code: ErrorCode::JsonType,
            message: "body is not a clocking change".into(),
            value: None,
            allowed: None,
        })),
    }
}

/// Appends one reference token to a JSON Pointer, escaped per RFC 6901.
fn child(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Integer bounds of one field.
#[derive(Clone, Copy)]
struct IntRange {
    min: i64,
    max: i64,
}

const MINUTE_RANGE: IntRange = IntRange {
    min: MinuteOfDay::MIN as i64,
    max: MinuteOfDay::MAX as i64,
};
const ID_RANGE: IntRange = IntRange {
    min: ClockingId::MIN,
    max: ClockingId::MAX,
};
const LEVEL_RANGE: IntRange = IntRange {
    min: ActivityLevelNumber::MIN as i64,
    max: ActivityLevelNumber::MAX as i64,
};

#[derive(Default)]
struct Walker {
    errors: Vec<ValidationError>,
}

impl Walker {
    fn error(
        &mut self,
        pointer: String,
        code: ErrorCode,
        message: impl Into<String>,
        value: Option<&Value>,
        allowed: Option<Allowed>,
    ) {
        self.errors.push(ValidationError {
            pointer,
            code,
            message: message.into(),
            value: value.cloned(),
            allowed,
        });
    }

    fn wrong_type(&mut self, pointer: String, value: &Value, expected: &'static str) {
        let found = json_type_name(value);
        self.error(
            pointer,
            ErrorCode::JsonType,
            format!("expected {expected}, found {found}"),
            Some(value),
            Some(Allowed::Type { expected }),
        );
    }

    /// A present, non-null field, or `None` after recording `field.required`.
    fn required<'v>(
        &mut self,
        object: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Option<(&'v Value, String)> {
        let pointer = child(parent, key);
        match object.get(key) {
            None | Some(Value::Null) => {
                self.error(
                    pointer,
                    ErrorCode::FieldRequired,
                    format!("`{key}` is required (missing or null)"),
                    None,
                    None,
                );
                None
            }
            Some(value) => Some((value, pointer)),
        }
    }

    /// A present, non-null field; absent and `null` both mean "not given".
    fn optional<'v>(
        object: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Option<(&'v Value, String)> {
        match object.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some((value, child(parent, key))),
        }
    }

    fn object<'v>(&mut self, value: &'v Value, pointer: String) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.wrong_type(pointer, other, "object");
                None
            }
        }
    }

    /// An integer (integer-valued floats such as `510.0` count, as in JSON Schema) in range.
    fn integer(&mut self, value: &Value, pointer: String, range: IntRange) -> Option<i64> {
        let Value::Number(number) = value else {
            self.wrong_type(pointer, value, "integer");
            return None;
        };
        let exact: i128 = if let Some(i) = number.as_i64() {
            i128::from(i)
        } else if let Some(u) = number.as_u64() {
            i128::from(u)
        } else {
            let f = number.as_f64().unwrap_or(f64::NAN);
            if !f.is_finite() || f.fract() != 0.0 {
                self.error(
                    pointer,
                    ErrorCode::NumberNotInteger,
                    "expected an integer, found a number with a fractional part",
                    Some(value),
                    Some(Allowed::IntegerRange {
                        min: range.min,
                        max: range.max,
                    }),
                );
                return None;
            }
            // Saturating cast: anything beyond i128 is out of every range anyway.
            f as i128
        };
        if exact < i128::from(range.min) || exact > i128::from(range.max) {
            self.error(
                pointer,
                ErrorCode::NumberRange,
                format!("{number} is out of range"),
                Some(value),
                Some(Allowed::IntegerRange {
                    min: range.min,
                    max: range.max,
                }),
            );
            return None;
        }
        i64::try_from(exact).ok()
    }

    fn number(&mut self, value: &Value, pointer: String, min: f64, max: f64) -> Option<f64> {
        let Some(f) = value.as_f64() else {
            self.wrong_type(pointer, value, "number");
            return None;
        };
        if !(min..=max).contains(&f) {
            self.error(
                pointer,
                ErrorCode::NumberRange,
                format!("{f} is out of range"),
                Some(value),
                Some(Allowed::NumberRange { min, max }),
            );
            return None;
        }
        Some(f)
    }

    fn boolean(&mut self, value: &Value, pointer: String) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                self.wrong_type(pointer, other, "boolean");
                None
            }
        }
    }

    fn non_empty_string<'v>(&mut self, value: &'v Value, pointer: String) -> Option<&'v str> {
        match value {
            Value::String(s) if s.is_empty() => {
                self.error(
                    pointer,
                    ErrorCode::StringEmpty,
                    "must not be empty",
                    Some(value),
                    None,
                );
                None
            }
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(pointer, other, "string");
                None
            }
        }
    }

    fn one_of<'v>(
        &mut self,
        value: &'v Value,
        pointer: String,
        allowed: &'static [&'static str],
    ) -> Option<&'v str> {
        match value {
            Value::String(s) if allowed.contains(&s.as_str()) => Some(s),
            other => {
                self.error(
                    pointer,
                    ErrorCode::EnumUnknown,
                    format!("unknown value {other}"),
                    Some(other),
                    Some(Allowed::OneOf { values: allowed }),
                );
                None
            }
        }
    }

    fn change(&mut self, value: &Value) -> Option<ClockingChange> {
        let envelope = self.object(value, String::new())?;
        let change_type = self
            .required(envelope, "changeType", "")
            .and_then(|(v, p)| self.one_of(v, p, ChangeType::NAMES));
        let data = self
            .required(envelope, "data", "")
            .and_then(|(v, p)| self.object(v, p));
        let data = data?;
        match change_type {
            Some("Delete") => self.deletion(data),
            Some(_) => self.clocking(data).map(ClockingChange::InsertOrUpdate),
            // Unknown change type: the data cannot be judged against a shape.
            None => None,
        }
    }

    fn change_version(&mut self, data: &Map<String, Value>) -> Option<ChangeVersion> {
        let (value, pointer) = self.required(data, "changeVersion", "/data")?;
        let text = self.non_empty_string(value, pointer)?;
        ChangeVersion::new(text).ok()
    }

    fn clocking_id(&mut self, data: &Map<String, Value>) -> Option<ClockingId> {
        let (value, pointer) = self.required(data, "id", "/data")?;
        let id = self.integer(value, pointer, ID_RANGE)?;
        ClockingId::new(id).ok()
    }

    fn deletion(&mut self, data: &Map<String, Value>) -> Option<ClockingChange> {
        let change_version = self.change_version(data);
        let id = self.clocking_id(data);
        Some(ClockingChange::Delete {
            id: id?,
            change_version: change_version?,
        })
    }

    fn external_references(
        &mut self,
        object: &Map<String, Value>,
        parent: &str,
    ) -> Option<Option<ExternalReferences>> {
        let Some((value, pointer)) = Self::optional(object, "externalReferences", parent) else {
            return Some(None);
        };
        let map = self.object(value, pointer.clone())?;
        let mut references = ExternalReferences::new();
        let mut ok = true;
        for (name, reference) in map {
            match reference {
                Value::String(s) => {
                    references.insert(name.clone(), s.clone());
                }
                other => {
                    ok = false;
                    self.wrong_type(child(&pointer, name), other, "string");
                }
            }
        }
        ok.then_some(Some(references))
    }

    /// `{id, externalReferences?}` with an integer id of at least 1.
    fn numbered_ref(
        &mut self,
        value: &Value,
        pointer: &str,
    ) -> Option<(i64, Option<ExternalReferences>)> {
        let object = self.object(value, pointer.to_owned())?;
        let id = self
            .required(object, "id", pointer)
            .and_then(|(v, p)| self.integer(v, p, ID_RANGE));
        let references = self.external_references(object, pointer);
        Some((id?, references?))
    }

    fn minute(&mut self, value: &Value, pointer: String) -> Option<MinuteOfDay> {
        self.integer(value, pointer, MINUTE_RANGE)
            .and_then(|m| MinuteOfDay::new(m).ok())
    }

    /// An optional minute field: `Some(None)` when absent, `None` when invalid.
    fn optional_minute(
        &mut self,
        data: &Map<String, Value>,
        key: &str,
    ) -> Option<Option<MinuteOfDay>> {
        match Self::optional(data, key, "/data") {
            None => Some(None),
            Some((value, pointer)) => self.minute(value, pointer).map(Some),
        }
    }

    fn date(&mut self, value: &Value, pointer: String) -> Option<CalendarDate> {
        let Value::String(text) = value else {
            self.wrong_type(pointer, value, "string");
            return None;
        };
        let parsed = CalendarDate::parse(text);
        if parsed.is_none() {
            self.error(
                pointer,
                ErrorCode::DateFormat,
                "not a calendar date in YYYY-MM-DD form",
                Some(value),
                Some(Allowed::Format {
                    format: "YYYY-MM-DD (a real date, years 0001-9999)",
                }),
            );
        }
        parsed
    }

    fn geolocation(&mut self, value: &Value, pointer: &str) -> Option<Geolocation> {
        let object = self.object(value, pointer.to_owned())?;
        let latitude = self
            .required(object, "latitude", pointer)
            .and_then(|(v, p)| self.number(v, p, Latitude::MIN, Latitude::MAX));
        let longitude = self
            .required(object, "longitude", pointer)
            .and_then(|(v, p)| self.number(v, p, Longitude::MIN, Longitude::MAX));
        Some(Geolocation {
            latitude: Latitude::new(latitude?).ok()?,
            longitude: Longitude::new(longitude?).ok()?,
        })
    }

    fn activity_level(&mut self, value: &Value, pointer: &str) -> Option<ActivityLevel> {
        let object = self.object(value, pointer.to_owned())?;
        let level = self
            .required(object, "level", pointer)
            .and_then(|(v, p)| self.integer(v, p, LEVEL_RANGE));
        let definition = self
            .required(object, "activityDefinition", pointer)
            .and_then(|(v, p)| {
                let definition = self.object(v, p.clone())?;
                let id = self
                    .required(definition, "id", &p)
                    .and_then(|(v, p)| self.non_empty_string(v, p));
                let references = self.external_references(definition, &p);
                Some(ActivityDefinitionRef {
                    id: ActivityDefinitionId::new(id?).ok()?,
                    external_references: references?,
                })
            });
        Some(ActivityLevel {
            level: ActivityLevelNumber::new(level?).ok()?,
            activity_definition: definition?,
        })
    }

    fn activity_levels(&mut self, value: &Value, pointer: &str) -> Option<ActivityLevels> {
        let Value::Array(items) = value else {
            self.wrong_type(pointer.to_owned(), value, "array");
            return None;
        };
        if items.is_empty() {
            self.error(
                pointer.to_owned(),
                ErrorCode::ArrayEmpty,
                "an Activity clocking needs at least one activity level",
                Some(value),
                None,
            );
            return None;
        }
        let mut levels = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            match self.activity_level(item, &child(pointer, &index.to_string())) {
                Some(level) => levels.push(level),
                None => ok = false,
            }
        }
        if ok {
            ActivityLevels::new(levels)
        } else {
            None
        }
    }

    fn forbidden(&mut self, data: &Map<String, Value>, key: &str, kind: &str) {
        if let Some((value, pointer)) = Self::optional(data, key, "/data") {
            self.error(
                pointer,
                ErrorCode::KindForbiddenField,
                format!("`{key}` is not allowed for kind {kind}"),
                Some(value),
                Some(Allowed::Absent),
            );
        }
    }

    fn missing_for_kind(&mut self, key: &str, kind: &str) {
        self.error(
            child("/data", key),
            ErrorCode::KindMissingField,
            format!("`{key}` is required for kind {kind}"),
            None,
            None,
        );
    }

    fn kind(&mut self, data: &Map<String, Value>) -> Option<ClockingKind> {
        let name = self
            .required(data, "kind", "/data")
            .and_then(|(v, p)| self.one_of(v, p, ClockingKind::NAMES))?;
        match name {
            "Reason" => {
                self.forbidden(data, "activityLevels", name);
                let is_open = match Self::optional(data, "isOpen", "/data") {
                    None => Some(None),
                    Some((v, p)) => self.boolean(v, p).map(Some),
                };
                let reason = match Self::optional(data, "reason", "/data") {
                    None => {
                        self.missing_for_kind("reason", name);
                        None
                    }
                    Some((v, p)) => {
                        self.numbered_ref(v, &p)
                            .and_then(|(id, external_references)| {
                                Some(ReasonRef {
                                    id: ReasonId::new(id).ok()?,
                                    external_references,
                                })
                            })
                    }
                };
                Some(ClockingKind::Reason {
                    reason: reason?,
                    is_open: is_open?,
                })
            }
            "Activity" => {
                self.forbidden(data, "reason", name);
                self.forbidden(data, "isOpen", name);
                let levels = match Self::optional(data, "activityLevels", "/data") {
                    None => {
                        self.missing_for_kind("activityLevels", name);
                        None
                    }
                    Some((v, p)) => self.activity_levels(v, &p),
                };
                Some(ClockingKind::Activity { levels: levels? })
            }
            other => {
                self.forbidden(data, "reason", other);
                self.forbidden(data, "isOpen", other);
                self.forbidden(data, "activityLevels", other);
                Some(if other == "InOut" {
                    ClockingKind::InOut
                } else {
                    ClockingKind::ActivityEnd
                })
            }
        }
    }

    fn clocking(&mut self, data: &Map<String, Value>) -> Option<Clocking> {
        let change_version = self.change_version(data);
        let id = self.clocking_id(data);
        let person = self.required(data, "person", "/data").and_then(|(v, p)| {
            self.numbered_ref(v, &p)
                .and_then(|(id, external_references)| {
                    Some(PersonRef {
                        id: PersonId::new(id).ok()?,
                        external_references,
                    })
                })
        });
        let date = self
            .required(data, "date", "/data")
            .and_then(|(v, p)| self.date(v, p));
        let time_of_day = self
            .required(data, "timeOfDayInMinutes", "/data")
            .and_then(|(v, p)| self.minute(v, p));
        let original_time_of_day = self.optional_minute(data, "originalTimeOfDayInMinutes");
        let calculated_time_of_day = self.optional_minute(data, "calculatedTimeOfDayInMinutes");
        let is_generated = match Self::optional(data, "isGenerated", "/data") {
            None => Some(None),
            Some((v, p)) => self.boolean(v, p).map(Some),
        };
        let terminal = match Self::optional(data, "terminal", "/data") {
            None => Some(None),
            Some((v, p)) => self
                .numbered_ref(v, &p)
                .and_then(|(id, external_references)| {
                    Some(Some(TerminalRef {
                        id: TerminalId::new(id).ok()?,
                        external_references,
                    }))
                }),
        };
        let geolocation = match Self::optional(data, "geolocation", "/data") {
            None => Some(None),
            Some((v, p)) => self.geolocation(v, &p).map(Some),
        };
        let kind = self.kind(data);
        let status = match Self::optional(data, "status", "/data") {
            None => Some(None),
            Some((v, p)) => self
                .one_of(v, p, ClockingStatus::NAMES)
                .and_then(ClockingStatus::from_name)
                .map(Some),
        };
        Some(Clocking {
            change_version: change_version?,
            id: id?,
            person: person?,
            date: date?,
            time_of_day: time_of_day?,
            original_time_of_day: original_time_of_day?,
            calculated_time_of_day: calculated_time_of_day?,
            is_generated: is_generated?,
            terminal: terminal?,
            geolocation: geolocation?,
            kind: kind?,
            status: status?,
        })
    }
}
