//! Turns a delivery body into a [`ClockingChange`], or reports every violated rule at once.
//!
//! The walk goes over a `serde_json::Value` so that a wrong type in one field never hides
//! the violations in the others. Rules and codes: `docs/validation-rules.md`.

use serde_json::{Map, Value};

use crate::error::{Allowed, ErrorCode, ValidationError, ValidationErrors};
use crate::lexical::{self, Lexical, Literal};
use crate::model::{
    ActivityDefinitionId, ActivityDefinitionRef, ActivityLevel, ActivityLevelNumber,
    ActivityLevels, CalendarDate, ChangeType, ChangeVersion, Clocking, ClockingChange, ClockingId,
    ClockingKind, ClockingStatus, ExternalReferences, Geolocation, Latitude, Longitude,
    MinuteOfDay, PersonId, PersonRef, ReasonId, ReasonRef, TerminalId, TerminalRef,
};
use crate::profile::Profile;

/// Parses and validates one webhook delivery body (`{"changeType": …, "data": …}`) under
/// the default [`Profile::Documented`]: the same as [`parse_delivery_with`]`(body,
/// Profile::Documented)`.
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
    parse_delivery_with(body, Profile::Documented)
}

/// Parses and validates one webhook delivery body under `profile` (see [`Profile`]).
///
/// ```
/// use protime_model::{parse_delivery_with, ErrorCode, Profile};
///
/// // The docs' own delta example: only changeVersion, id and date.
/// let body = br#"{"changeType":"InsertOrUpdate",
///   "data":{"changeVersion":"0000090200004BD0000B","id":1050,"date":"2024-12-02"}}"#;
/// assert!(parse_delivery_with(body, Profile::Documented).is_ok());
/// let errors = parse_delivery_with(body, Profile::Strict).unwrap_err();
/// assert_eq!(errors.len(), 3); // person, timeOfDayInMinutes, kind
/// assert!(errors.errors().iter().all(|e| e.code == ErrorCode::FieldRequired));
/// ```
pub fn parse_delivery_with(
    body: &[u8],
    profile: Profile,
) -> Result<ClockingChange, ValidationErrors> {
    let text = utf8(body, "", "body")?;
    if let Some(change) = crate::fast_path::parse(text, profile) {
        return Ok(change);
    }
    full_walk(text, profile)
}

/// [`parse_delivery_with`] without its fast path: the full walk alone, for the tests that
/// check that both give the same verdict. Not part of the API.
#[doc(hidden)]
pub fn parse_delivery_full_walk(
    body: &[u8],
    profile: Profile,
) -> Result<ClockingChange, ValidationErrors> {
    full_walk(utf8(body, "", "body")?, profile)
}

/// What the fast path of [`parse_delivery_with`] makes of `body`: `Some` if it accepts it
/// (`parse_delivery_with` then returns exactly this), `None` if it leaves the verdict to the
/// full walk. For the tests that check that the fast path is taken. Not part of the API.
#[doc(hidden)]
pub fn parse_delivery_fast_path(body: &[u8], profile: Profile) -> Option<ClockingChange> {
    crate::fast_path::parse(std::str::from_utf8(body).ok()?, profile)
}

/// Whether the fast path of [`parse_delivery_with`] accepts `body` (see
/// [`parse_delivery_fast_path`]). Not part of the API.
#[doc(hidden)]
pub fn fast_path_accepts(body: &[u8], profile: Profile) -> bool {
    parse_delivery_fast_path(body, profile).is_some()
}

/// The body as text, or a single `json.utf8` violation at `pointer` (rule R25). Checked
/// before either path reads anything, so both see the same bytes.
fn utf8<'a>(bytes: &'a [u8], pointer: &str, what: &str) -> Result<&'a str, ValidationErrors> {
    std::str::from_utf8(bytes).map_err(|e| {
        ValidationErrors::single(ValidationError {
            pointer: pointer.to_owned(),
            code: ErrorCode::JsonUtf8,
            message: format!(
                "{what} is not valid UTF-8 (a stray byte, an overlong encoding or an encoded surrogate at byte {})",
                e.valid_up_to()
            ),
            value: None,
            allowed: None,
        })
    })
}

/// Reads one JSON text into a `Value`, or a single violation at `pointer`: `json.syntax`
/// (R1), `json.lone_surrogate` (R26) or `json.too_deep` (R27).
fn read_json(text: &str, pointer: &str, what: &str) -> Result<Value, ValidationErrors> {
    serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        // serde_json's error kinds are not public; its messages are (and a unit test pins
        // each one used here).
        let (code, problem) = if message.starts_with("lone leading surrogate in hex escape")
            || message.starts_with("unexpected end of hex escape")
        {
            (
                ErrorCode::JsonLoneSurrogate,
                "holds a lone UTF-16 surrogate escape",
            )
        } else if message.starts_with("recursion limit exceeded") {
            (
                ErrorCode::JsonTooDeep,
                "nests arrays and objects deeper than 127 levels",
            )
        } else {
            (ErrorCode::JsonSyntax, "is not valid JSON")
        };
        ValidationErrors::single(ValidationError {
            pointer: pointer.to_owned(),
            code,
            message: format!("{what} {problem}: {message}"),
            value: None,
            allowed: None,
        })
    })
}

/// One `json.duplicate_key` violation per repeated key (rule R28), if there are any.
fn refuse_duplicates(lexical: &Lexical<'_>) -> Result<(), ValidationErrors> {
    let errors = lexical
        .duplicates
        .iter()
        .map(|pointer| ValidationError {
            pointer: pointer.clone(),
            code: ErrorCode::JsonDuplicateKey,
            message: format!(
                "the key `{}` appears more than once in its object; readers disagree on which value counts",
                pointer.rsplit('/').next().unwrap_or_default().replace("~1", "/").replace("~0", "~")
            ),
            value: None,
            allowed: None,
        })
        .collect();
    match ValidationErrors::new(errors) {
        Some(errors) => Err(errors),
        None => Ok(()),
    }
}

/// The full walk over a body that is known to be UTF-8.
fn full_walk(text: &str, profile: Profile) -> Result<ClockingChange, ValidationErrors> {
    let value = read_json(text, "", "body")?;
    let lexical = lexical::scan(text, "");
    refuse_duplicates(&lexical)?;
    walk(&value, Some(&lexical), profile)
}

/// Validates one clocking as the API lists it (an item of a list page, a get response) under
/// the default [`Profile::Documented`]: the same as [`parse_clocking_with`]`(item,
/// Profile::Documented)`.
///
/// ```
/// use protime_model::parse_clocking;
/// let item = br#"{"changeVersion":"0A","id":7,"person":{"id":1},"date":"2026-01-15",
///     "timeOfDayInMinutes":480,"kind":"InOut"}"#;
/// assert_eq!(parse_clocking(item).unwrap().id.get(), 7);
/// // Only id is required of a listed clocking by default: the docs' list and get examples
/// // carry no changeVersion, so it may be absent (never empty).
/// assert!(parse_clocking(br#"{"changeVersion":"0A","id":7}"#).is_ok());
/// assert!(parse_clocking(br#"{"id":7}"#).unwrap().change_version.is_absent());
/// let errors = parse_clocking(br#"{"changeVersion":"","id":7}"#).unwrap_err();
/// assert!(errors.has_pointer("/data/changeVersion"));
/// ```
pub fn parse_clocking(item: &[u8]) -> Result<Clocking, ValidationErrors> {
    parse_clocking_with(item, Profile::Documented)
}

/// Validates one clocking as the API lists it (an item of a list page, a get response) under
/// `profile`: the rules of the `data` of an `InsertOrUpdate`, with error pointers relative
/// to a change envelope (`/data/...`), as for deliveries. The same verdict as
/// [`parse_delivery_with`] on `{"changeType":"InsertOrUpdate","data":<item>}`, with the same
/// typed fast path, except for one rule: under [`Profile::Documented`] a listed clocking may
/// lack `changeVersion` (absent or `null`; the docs' list and get examples carry none), and
/// its version is then [`ChangeVersion::absent`]. A present `changeVersion` must still be a
/// non-empty string, and [`Profile::Strict`] still requires it. The nesting limit (R27)
/// counts the envelope that the item would sit in.
///
/// ```
/// use protime_model::{parse_clocking_with, Profile};
/// let item = br#"{"changeVersion":"0A","id":7}"#;
/// assert!(parse_clocking_with(item, Profile::Documented).is_ok());
/// let errors = parse_clocking_with(item, Profile::Strict).unwrap_err();
/// assert!(errors.has_pointer("/data/person"));
///
/// let unversioned = br#"{"id":7,"person":{"id":1},"date":"2026-01-15",
///     "timeOfDayInMinutes":480,"kind":"InOut"}"#;
/// let clocking = parse_clocking_with(unversioned, Profile::Documented).unwrap();
/// assert!(clocking.change_version.is_absent());
/// let errors = parse_clocking_with(unversioned, Profile::Strict).unwrap_err();
/// assert_eq!(errors.len(), 1);
/// assert!(errors.has_pointer("/data/changeVersion"));
/// ```
pub fn parse_clocking_with(item: &[u8], profile: Profile) -> Result<Clocking, ValidationErrors> {
    let text = utf8(item, "/data", "the clocking")?;
    if let Some(clocking) = crate::fast_path::parse_clocking(text, profile)
        && lexical::max_depth(text) < MAX_DEPTH
    {
        return Ok(clocking);
    }
    clocking_full_walk(text, profile)
}

/// [`parse_clocking_with`] without its fast path: the full walk alone, for the tests that
/// check that both give the same verdict. Not part of the API.
#[doc(hidden)]
pub fn parse_clocking_full_walk(
    item: &[u8],
    profile: Profile,
) -> Result<Clocking, ValidationErrors> {
    clocking_full_walk(utf8(item, "/data", "the clocking")?, profile)
}

/// What the fast path of [`parse_clocking_with`] makes of `item`: `Some` if it accepts it
/// (`parse_clocking_with` then returns exactly this), `None` if it leaves the verdict to the
/// full walk. Not part of the API.
#[doc(hidden)]
pub fn parse_clocking_fast_path(item: &[u8], profile: Profile) -> Option<Clocking> {
    let text = std::str::from_utf8(item).ok()?;
    crate::fast_path::parse_clocking(text, profile).filter(|_| lexical::max_depth(text) < MAX_DEPTH)
}

/// Reads back a change that a sink stored (its raw body or its serialized JSON): the rules of
/// [`parse_delivery`] (the default [`Profile::Documented`]), except that the clocking of an
/// `InsertOrUpdate` may lack `changeVersion`, as a clocking that a sync listed without one
/// ([`ChangeVersion::absent`]) is stored. A webhook delivery or a delta change is never
/// stored without a version: they are validated with [`parse_delivery`] first.
///
/// ```
/// use protime_model::{parse_clocking, parse_stored_change, ClockingChange};
/// let listed = parse_clocking(br#"{"id":7,"date":"2024-12-02"}"#).unwrap();
/// let stored = serde_json::to_vec(&ClockingChange::InsertOrUpdate(listed.clone())).unwrap();
/// assert_eq!(stored, br#"{"changeType":"InsertOrUpdate","data":{"id":7,"date":"2024-12-02"}}"#);
/// assert!(protime_model::parse_delivery(&stored).is_err());
/// assert_eq!(parse_stored_change(&stored).unwrap(), ClockingChange::InsertOrUpdate(listed));
/// ```
pub fn parse_stored_change(body: &[u8]) -> Result<ClockingChange, ValidationErrors> {
    let text = utf8(body, "", "body")?;
    if let Some(change) = crate::fast_path::parse(text, Profile::Documented) {
        return Ok(change);
    }
    let value = read_json(text, "", "body")?;
    let lexical = lexical::scan(text, "");
    refuse_duplicates(&lexical)?;
    walk_with(
        &value,
        Some(&lexical),
        Profile::Documented,
        Version::MayBeAbsent,
    )
}

/// The full walk over one listed clocking that is known to be UTF-8.
fn clocking_full_walk(text: &str, profile: Profile) -> Result<Clocking, ValidationErrors> {
    let data = read_json(text, "/data", "the clocking")?;
    let lexical = lexical::scan(text, "/data");
    if lexical.max_depth >= MAX_DEPTH {
        return Err(ValidationErrors::single(ValidationError {
            pointer: "/data".into(),
            code: ErrorCode::JsonTooDeep,
            message: format!(
                "the clocking nests arrays and objects {} levels deep; inside a change that is deeper than 127 levels",
                lexical.max_depth
            ),
            value: None,
            allowed: None,
        }));
    }
    refuse_duplicates(&lexical)?;
    let envelope = serde_json::json!({ "changeType": "InsertOrUpdate", "data": data });
    match walk_with(&envelope, Some(&lexical), profile, Version::listed(profile))? {
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

/// serde_json refuses a 128th level of nested arrays and objects (its recursion limit), so a
/// delivery body nests at most 127 levels. A clocking item sits one level below its change.
const MAX_DEPTH: usize = 127;

/// Validates an already-parsed JSON value as one clocking change (see [`parse_delivery`])
/// under the default [`Profile::Documented`]: the same as
/// [`parse_change_value_with`]`(value, Profile::Documented)`.
///
/// A `Value` no longer holds what its text said about duplicate keys (R28) or about the
/// exact spelling of numbers (R29): a number read as a float counts as an integer when the
/// float is one, within ±9007199254740991. Prefer [`parse_delivery`] on the bytes.
///
/// ```
/// use protime_model::parse_change_value;
/// let value = serde_json::json!({"changeType": "Delete",
///     "data": {"changeVersion": "0000090200004BD0000C", "id": 1001}});
/// assert!(parse_change_value(&value).unwrap().removes_clocking());
/// ```
pub fn parse_change_value(value: &Value) -> Result<ClockingChange, ValidationErrors> {
    parse_change_value_with(value, Profile::Documented)
}

/// Validates an already-parsed JSON value as one clocking change under `profile` (see
/// [`parse_delivery_with`] and [`parse_change_value`]).
///
/// ```
/// use protime_model::{parse_change_value_with, Profile};
/// let value = serde_json::json!({"changeType": "InsertOrUpdate",
///     "data": {"changeVersion": "0000090200004BD0000B", "id": 1050, "date": "2024-12-02"}});
/// assert!(parse_change_value_with(&value, Profile::Documented).is_ok());
/// assert!(parse_change_value_with(&value, Profile::Strict).is_err());
/// ```
pub fn parse_change_value_with(
    value: &Value,
    profile: Profile,
) -> Result<ClockingChange, ValidationErrors> {
    walk(value, None, profile)
}

/// The rules over a parsed value; `lexical`, when the text is at hand, gives the exact
/// spelling of float-valued numbers.
fn walk(
    value: &Value,
    lexical: Option<&Lexical<'_>>,
    profile: Profile,
) -> Result<ClockingChange, ValidationErrors> {
    walk_with(value, lexical, profile, Version::Required)
}

/// Whether an `InsertOrUpdate`'s clocking must carry `changeVersion`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    /// A delivery or a delta change: ordering needs it (R5), under both profiles.
    Required,
    /// A listed clocking under [`Profile::Documented`] (the docs' list and get examples
    /// carry none), or a stored one: absent or `null` is [`ChangeVersion::absent`].
    MayBeAbsent,
}

impl Version {
    /// What a listed clocking needs under `profile`: only Strict requires the version.
    fn listed(profile: Profile) -> Self {
        if profile.requires_listed_change_version() {
            Self::Required
        } else {
            Self::MayBeAbsent
        }
    }
}

fn walk_with(
    value: &Value,
    lexical: Option<&Lexical<'_>>,
    profile: Profile,
    version: Version,
) -> Result<ClockingChange, ValidationErrors> {
    let mut walker = Walker {
        errors: Vec::new(),
        lexical,
        profile,
        version,
    };
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
    lexical::push_token(&mut out, token);
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

struct Walker<'l, 'a> {
    errors: Vec<ValidationError>,
    lexical: Option<&'l Lexical<'a>>,
    profile: Profile,
    /// Whether an `InsertOrUpdate`'s clocking must carry `changeVersion` (a `Delete` always
    /// must).
    version: Version,
}

/// The largest magnitude up to which every integer has an exact 64-bit float (2^53 − 1): an
/// integer written with a fraction or an exponent must lie within it (R29).
const EXACT_FLOAT_INTEGERS: i128 = (1 << 53) - 1;

impl Walker<'_, '_> {
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

    /// A field that [`Profile::Strict`] requires and [`Profile::Documented`] does not:
    /// `Some(Some(..))` when present, `Some(None)` when absent and allowed to be, `None` after
    /// recording `field.required`.
    fn by_profile<'v>(
        &mut self,
        object: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Option<Option<(&'v Value, String)>> {
        if self.profile.requires_clocking_fields() {
            self.required(object, key, parent).map(Some)
        } else {
            Some(Self::optional(object, key, parent))
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

    /// An integer in range. The value counts, not the spelling, as in JSON Schema (R23:
    /// `510.0` and `5.1e2` are 510), but exactly (R29): a number that serde_json reads as a
    /// float is judged on its literal when the text is at hand, never on the rounded float,
    /// and an integer written with a fraction or an exponent must lie within ±(2^53 − 1).
    fn integer(&mut self, value: &Value, pointer: String, range: IntRange) -> Option<i64> {
        let Value::Number(number) = value else {
            self.wrong_type(pointer, value, "integer");
            return None;
        };
        let allowed = Allowed::IntegerRange {
            min: range.min,
            max: range.max,
        };
        // How the number reads in the error messages: its literal when the text is at hand.
        let shown =
            |literal: Option<&str>| literal.map_or_else(|| number.to_string(), str::to_owned);
        let (exact, float_spelled, literal) = if let Some(i) = number.as_i64() {
            (i128::from(i), false, None)
        } else if let Some(u) = number.as_u64() {
            (i128::from(u), false, None)
        } else {
            let literal = self.lexical.and_then(|l| l.float_literal(&pointer));
            let judged = match literal.and_then(lexical::read_literal) {
                Some(Literal::Integer {
                    value,
                    float_spelled,
                }) => Some((value, float_spelled)),
                Some(Literal::Fraction) => None,
                // No text (a `Value` given directly): the float is all there is.
                None => {
                    let f = number.as_f64().unwrap_or(f64::NAN);
                    // Saturating cast: anything beyond i128 is out of every range anyway.
                    (f.is_finite() && f.fract() == 0.0).then_some((f as i128, true))
                }
            };
            let Some((exact, float_spelled)) = judged else {
                self.error(
                    pointer,
                    ErrorCode::NumberNotInteger,
                    format!(
                        "expected an integer, found {} with a fractional part",
                        shown(literal)
                    ),
                    Some(value),
                    Some(allowed),
                );
                return None;
            };
            (exact, float_spelled, literal)
        };
        if exact < i128::from(range.min) || exact > i128::from(range.max) {
            self.error(
                pointer,
                ErrorCode::NumberRange,
                format!("{} is out of range", shown(literal)),
                Some(value),
                Some(allowed),
            );
            return None;
        }
        if float_spelled && exact.abs() > EXACT_FLOAT_INTEGERS {
            self.error(
                pointer,
                ErrorCode::NumberInexact,
                format!(
                    "{} is an integer written with a fraction or an exponent beyond ±9007199254740991, where a 64-bit float cannot hold every integer (readers may round it); write it without a fraction or exponent",
                    shown(literal)
                ),
                Some(value),
                Some(allowed),
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

    /// The `changeVersion` of an `InsertOrUpdate`'s clocking: required, except for a listed
    /// (or stored) clocking under [`Profile::Documented`], where absent or `null` is
    /// [`ChangeVersion::absent`]; a present value must be a non-empty string either way.
    fn clocking_version(&mut self, data: &Map<String, Value>) -> Option<ChangeVersion> {
        match self.version {
            Version::Required => self.change_version(data),
            Version::MayBeAbsent => match Self::optional(data, "changeVersion", "/data") {
                None => Some(ChangeVersion::absent()),
                Some((value, pointer)) => {
                    let text = self.non_empty_string(value, pointer)?;
                    ChangeVersion::new(text).ok()
                }
            },
        }
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

    /// A kind-conditional field on a clocking without `kind` (allowed only under
    /// [`Profile::Documented`]): the docs allow it only for one kind, so without a kind it is
    /// forbidden.
    fn forbidden_without_kind(&mut self, data: &Map<String, Value>, key: &str, only_for: &str) {
        if let Some((value, pointer)) = Self::optional(data, key, "/data") {
            self.error(
                pointer,
                ErrorCode::KindForbiddenField,
                format!(
                    "`{key}` is only allowed for kind {only_for}, and the clocking has no kind"
                ),
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

    /// `kind` with its kind-specific data: `Some(None)` when the clocking has no kind (which
    /// then carries none of the kind-conditional fields), `None` when invalid.
    fn kind(&mut self, data: &Map<String, Value>) -> Option<Option<ClockingKind>> {
        let Some((value, pointer)) = self.by_profile(data, "kind", "/data")? else {
            self.forbidden_without_kind(data, "reason", "Reason");
            self.forbidden_without_kind(data, "isOpen", "Reason");
            self.forbidden_without_kind(data, "activityLevels", "Activity");
            let conditional_absent = ["reason", "isOpen", "activityLevels"]
                .iter()
                .all(|key| Self::optional(data, key, "/data").is_none());
            return conditional_absent.then_some(None);
        };
        self.one_of(value, pointer, ClockingKind::NAMES)
            .and_then(|name| self.known_kind(data, name))
            .map(Some)
    }

    fn known_kind(&mut self, data: &Map<String, Value>, name: &str) -> Option<ClockingKind> {
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
        let change_version = self.clocking_version(data);
        let id = self.clocking_id(data);
        let person = self
            .by_profile(data, "person", "/data")
            .and_then(|field| match field {
                None => Some(None),
                Some((v, p)) => self
                    .numbered_ref(v, &p)
                    .and_then(|(id, external_references)| {
                        Some(Some(PersonRef {
                            id: PersonId::new(id).ok()?,
                            external_references,
                        }))
                    }),
            });
        let date = self
            .by_profile(data, "date", "/data")
            .and_then(|field| match field {
                None => Some(None),
                Some((v, p)) => self.date(v, p).map(Some),
            });
        let time_of_day = self
            .by_profile(data, "timeOfDayInMinutes", "/data")
            .and_then(|field| match field {
                None => Some(None),
                Some((v, p)) => self.minute(v, p).map(Some),
            });
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

#[cfg(test)]
mod tests {
    //! One verdict per input class, on both paths (docs/validation-rules.md, R23 and
    //! R25–R29). `tests/tests/agreement.rs` generates many more.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const VALID: &str = r#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0A","id":7,"person":{"id":1,"externalReferences":{"@badge-number":"12"}},"date":"2026-01-15","timeOfDayInMinutes":480,"kind":"Activity","activityLevels":[{"level":1,"activityDefinition":{"id":"a1"}}]}}"#;

    /// `VALID` with `from` replaced by `to` (exactly once).
    fn body(from: &str, to: &str) -> Vec<u8> {
        assert_eq!(VALID.matches(from).count(), 1, "{from}");
        VALID.replacen(from, to, 1).into_bytes()
    }

    fn with_bytes(from: &str, to: &[u8]) -> Vec<u8> {
        let (before, after) = VALID.split_once(from).unwrap();
        [before.as_bytes(), to, after.as_bytes()].concat()
    }

    /// Both paths give the same verdict under `profile`; returns it as (code, pointer)
    /// pairs, empty if valid.
    fn verdict_with(body: &[u8], profile: Profile) -> Vec<(ErrorCode, String)> {
        let full = parse_delivery_full_walk(body, profile);
        let fast = parse_delivery_fast_path(body, profile);
        if let Some(change) = &fast {
            assert_eq!(
                full.as_ref(),
                Ok(change),
                "the fast path accepted what the full walk did not"
            );
        }
        assert_eq!(parse_delivery_with(body, profile), full);
        match full {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.code, e.pointer)).collect(),
        }
    }

    /// The verdict, the same under both profiles (every body here carries every field
    /// `Strict` requires, unless it is refused as a text).
    fn verdict(body: &[u8]) -> Vec<(ErrorCode, String)> {
        let documented = verdict_with(body, Profile::Documented);
        assert_eq!(
            parse_delivery(body),
            parse_delivery_with(body, Profile::Documented)
        );
        assert_eq!(verdict_with(body, Profile::Strict), documented);
        documented
    }

    fn one(code: ErrorCode, pointer: &str) -> Vec<(ErrorCode, String)> {
        vec![(code, pointer.to_owned())]
    }

    fn pairs(errors: ValidationErrors) -> Vec<(ErrorCode, String)> {
        errors.into_iter().map(|e| (e.code, e.pointer)).collect()
    }

    #[test]
    fn the_base_body_takes_the_fast_path() {
        assert!(fast_path_accepts(VALID.as_bytes(), Profile::Documented));
        assert!(fast_path_accepts(VALID.as_bytes(), Profile::Strict));
        assert!(verdict(VALID.as_bytes()).is_empty());
    }

    /// The docs' delta example (https://documentation.myprotime.eu/protimeapi/how-to/track-changes-with-delta/).
    const DOCS_DELTA: &str = r#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000B","id":1050,"date":"2024-12-02"}}"#;

    /// `DOCS_DELTA` with `extra` members added to its data.
    fn partial(extra: &str) -> Vec<u8> {
        DOCS_DELTA
            .replacen(
                "\"date\":\"2024-12-02\"",
                &format!("\"date\":\"2024-12-02\"{extra}"),
                1,
            )
            .into_bytes()
    }

    #[test]
    fn the_documented_profile_requires_only_what_ordering_needs() {
        let body = DOCS_DELTA.as_bytes();
        assert!(verdict_with(body, Profile::Documented).is_empty());
        assert!(fast_path_accepts(body, Profile::Documented));
        assert!(!fast_path_accepts(body, Profile::Strict));
        let Ok(ClockingChange::InsertOrUpdate(clocking)) = parse_delivery(body) else {
            panic!("the docs' example is refused");
        };
        assert_eq!(
            clocking.date.map(|d| d.to_string()).as_deref(),
            Some("2024-12-02")
        );
        assert_eq!(
            (clocking.person, clocking.time_of_day, clocking.kind),
            (None, None, None)
        );
        assert_eq!(
            verdict_with(body, Profile::Strict),
            vec![
                (ErrorCode::FieldRequired, "/data/person".to_owned()),
                (
                    ErrorCode::FieldRequired,
                    "/data/timeOfDayInMinutes".to_owned()
                ),
                (ErrorCode::FieldRequired, "/data/kind".to_owned()),
            ]
        );
        // Only changeVersion and id, or null for the four fields: accepted by default.
        let bare = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"1","id":1}}"#;
        assert!(verdict_with(bare, Profile::Documented).is_empty());
        assert_eq!(verdict_with(bare, Profile::Strict).len(), 4);
        let nulls = partial(r#","person":null,"timeOfDayInMinutes":null,"kind":null"#);
        assert!(verdict_with(&nulls, Profile::Documented).is_empty());
        assert!(fast_path_accepts(&nulls, Profile::Documented));
        // What ordering needs stays required under both profiles.
        for profile in Profile::ALL {
            let no_version =
                br#"{"changeType":"InsertOrUpdate","data":{"id":1,"date":"2024-12-02"}}"#;
            assert!(
                verdict_with(no_version, profile)
                    .contains(&(ErrorCode::FieldRequired, "/data/changeVersion".to_owned()))
            );
            let no_id = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"1"}}"#;
            assert!(
                verdict_with(no_id, profile)
                    .contains(&(ErrorCode::FieldRequired, "/data/id".to_owned()))
            );
        }
        assert_eq!(
            verdict_with(
                br#"{"changeType":"InsertOrUpdate","data":{"id":1}}"#,
                Profile::Documented
            ),
            one(ErrorCode::FieldRequired, "/data/changeVersion")
        );
    }

    #[test]
    fn every_documented_constraint_applies_when_its_field_is_present() {
        for (extra, code, pointer) in [
            (
                r#","timeOfDayInMinutes":2881"#,
                ErrorCode::NumberRange,
                "/data/timeOfDayInMinutes",
            ),
            (
                r#","person":{}"#,
                ErrorCode::FieldRequired,
                "/data/person/id",
            ),
            (
                r#","person":{"id":0}"#,
                ErrorCode::NumberRange,
                "/data/person/id",
            ),
            (r#","kind":"inout""#, ErrorCode::EnumUnknown, "/data/kind"),
            (
                r#","kind":"Reason""#,
                ErrorCode::KindMissingField,
                "/data/reason",
            ),
            (
                r#","kind":"InOut","reason":{"id":1}"#,
                ErrorCode::KindForbiddenField,
                "/data/reason",
            ),
            (
                r#","geolocation":{"latitude":91,"longitude":0}"#,
                ErrorCode::NumberRange,
                "/data/geolocation/latitude",
            ),
            (
                r#","status":"deleted""#,
                ErrorCode::EnumUnknown,
                "/data/status",
            ),
        ] {
            assert_eq!(
                verdict_with(&partial(extra), Profile::Documented),
                one(code, pointer),
                "{extra}"
            );
        }
        let bad_date = DOCS_DELTA.replacen("2024-12-02", "2024-2-3", 1);
        assert_eq!(
            verdict_with(bad_date.as_bytes(), Profile::Documented),
            one(ErrorCode::DateFormat, "/data/date")
        );
    }

    #[test]
    fn without_a_kind_no_kind_conditional_field_is_allowed() {
        for (extra, pointer) in [
            (r#","reason":{"id":12}"#, "/data/reason"),
            (r#","isOpen":true"#, "/data/isOpen"),
            (
                r#","activityLevels":[{"level":1,"activityDefinition":{"id":"a"}}]"#,
                "/data/activityLevels",
            ),
            (r#","activityLevels":[]"#, "/data/activityLevels"),
            (r#","reason":"x""#, "/data/reason"),
        ] {
            let body = partial(extra);
            assert_eq!(
                verdict_with(&body, Profile::Documented),
                one(ErrorCode::KindForbiddenField, pointer),
                "{extra}"
            );
            assert!(!fast_path_accepts(&body, Profile::Documented));
        }
        // null counts as absent (R24).
        let nulls = partial(r#","reason":null,"isOpen":null,"activityLevels":null"#);
        assert!(verdict_with(&nulls, Profile::Documented).is_empty());
        // Under Strict, a missing kind is reported, and the fields are not judged again.
        assert_eq!(
            verdict_with(
                &partial(r#","person":{"id":1},"timeOfDayInMinutes":1,"reason":{"id":1}"#),
                Profile::Strict
            ),
            one(ErrorCode::FieldRequired, "/data/kind")
        );
    }

    #[test]
    fn a_listed_clocking_may_lack_its_version_under_documented_only() {
        let full = r#""id":7,"person":{"id":1},"date":"2026-01-15","timeOfDayInMinutes":480,"kind":"InOut""#;
        for item in [
            format!("{{{full}}}"),
            format!(r#"{{"changeVersion":null,{full}}}"#),
        ] {
            let item = item.as_bytes();
            // Both paths: the fast path accepts it, and the full walk alone agrees.
            let fast = crate::parse::parse_clocking_fast_path(item, Profile::Documented).unwrap();
            assert!(fast.change_version.is_absent());
            assert_eq!(
                parse_clocking_full_walk(item, Profile::Documented),
                Ok(fast.clone())
            );
            assert_eq!(parse_clocking(item), Ok(fast.clone()));
            // Serialized without changeVersion, and read back as absent.
            let text = serde_json::to_string(&fast).unwrap();
            assert!(!text.contains("changeVersion"), "{text}");
            assert_eq!(parse_clocking(text.as_bytes()), Ok(fast.clone()));
            let stored = serde_json::to_vec(&ClockingChange::InsertOrUpdate(fast.clone())).unwrap();
            assert_eq!(
                parse_stored_change(&stored),
                Ok(ClockingChange::InsertOrUpdate(fast))
            );
            // Strict refuses it with the one violation it always reported.
            assert!(crate::parse::parse_clocking_fast_path(item, Profile::Strict).is_none());
            for errors in [
                parse_clocking_with(item, Profile::Strict).unwrap_err(),
                parse_clocking_full_walk(item, Profile::Strict).unwrap_err(),
            ] {
                assert_eq!(
                    pairs(errors),
                    one(ErrorCode::FieldRequired, "/data/changeVersion")
                );
            }
        }
        // A present version is still judged under both profiles.
        for (version, code) in [
            (r#""""#, ErrorCode::StringEmpty),
            ("5", ErrorCode::JsonType),
        ] {
            let item = format!(r#"{{"changeVersion":{version},{full}}}"#);
            for profile in Profile::ALL {
                assert_eq!(
                    pairs(parse_clocking_with(item.as_bytes(), profile).unwrap_err()),
                    one(code, "/data/changeVersion")
                );
            }
        }
        // A delivery, a delta change and a stored Delete still require it.
        let delivery = format!(r#"{{"changeType":"InsertOrUpdate","data":{{{full}}}}}"#);
        for profile in Profile::ALL {
            assert_eq!(
                verdict_with(delivery.as_bytes(), profile),
                vec![(ErrorCode::FieldRequired, "/data/changeVersion".to_owned())]
            );
            let value: Value = serde_json::from_str(&delivery).unwrap();
            assert!(parse_change_value_with(&value, profile).is_err());
        }
        let delete = br#"{"changeType":"Delete","data":{"id":7}}"#;
        assert!(
            parse_stored_change(delete)
                .unwrap_err()
                .has_pointer("/data/changeVersion")
        );
    }

    #[test]
    fn a_partial_clocking_item_and_value_follow_the_profile() {
        let item = br#"{"changeVersion":"0A","id":7,"date":"2024-12-02"}"#;
        let clocking = parse_clocking(item).unwrap();
        assert_eq!(clocking.id.get(), 7);
        assert_eq!(parse_clocking_with(item, Profile::Documented), Ok(clocking));
        let errors = parse_clocking_with(item, Profile::Strict).unwrap_err();
        assert!(errors.has_pointer("/data/person") && errors.has_pointer("/data/kind"));
        let value: Value = serde_json::from_str(DOCS_DELTA).unwrap();
        assert!(parse_change_value(&value).is_ok());
        assert!(parse_change_value_with(&value, Profile::Strict).is_err());
        // Serialized without the absent fields, and read back the same.
        let change = parse_delivery(DOCS_DELTA.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&change).unwrap(), DOCS_DELTA);
    }

    #[test]
    fn invalid_utf8_anywhere_is_refused_whole() {
        let utf8 = one(ErrorCode::JsonUtf8, "");
        for bad in [
            &b"\xff"[..],
            b"\x80",
            b"\xc3",
            b"\xc0\xaf",         // overlong '/'
            b"\xe0\x80\xaf",     // overlong '/'
            b"\xf0\x80\x80\xaf", // overlong '/'
            b"\xc1\xbf",         // overlong DEL
            b"\xed\xa0\x80",     // encoded surrogate U+D800
            b"\xf4\x90\x80\x80", // beyond U+10FFFF
        ] {
            // in a known string, an unknown field's value and key, between tokens
            let mut known = VALID.as_bytes().to_vec();
            let at = VALID.find("\"0A\"").unwrap() + 2;
            known.splice(at..at, bad.iter().copied());
            assert_eq!(verdict(&known), utf8, "{known:?}");
            let unknown = with_bytes("\"kind\"", &[b"\"x\":\"", bad, b"\",\"kind\""].concat());
            assert_eq!(verdict(&unknown), utf8);
            let key = with_bytes("\"kind\"", &[b"\"x", bad, b"\":1,\"kind\""].concat());
            assert_eq!(verdict(&key), utf8);
            let between = with_bytes("\"kind\"", &[bad, b" \"kind\""].concat());
            assert_eq!(verdict(&between), utf8);
        }
        assert_eq!(
            parse_clocking(b"{\"x\":\"\xc0\xaf\"}")
                .unwrap_err()
                .errors()[0]
                .code,
            ErrorCode::JsonUtf8
        );
    }

    #[test]
    fn lone_surrogates_anywhere_are_refused() {
        let lone = one(ErrorCode::JsonLoneSurrogate, "");
        for escape in [
            r"\ud800",
            r"\udbff",
            r"\udc00",
            r"\udfff",
            r"\udc00\ud800",
            r"\ud800\u0041",
            r"\ud800\n",
            r"\ud800x",
            r"\ud800\ud800",
        ] {
            for place in [
                body("\"0A\"", &format!("\"0A{escape}\"")),
                body("\"a1\"", &format!("\"{escape}\"")),
                body("\"12\"", &format!("\"{escape}\"")),
                body("\"kind\"", &format!("\"x\":\"{escape}\",\"kind\"")),
                body(
                    "\"kind\"",
                    &format!("\"x\":{{\"y\":[\"{escape}\"]}},\"kind\""),
                ),
                body("\"kind\"", &format!("\"x{escape}\":1,\"kind\"")),
                body(
                    "\"changeType\"",
                    &format!("\"x\":\"{escape}\",\"changeType\""),
                ),
            ] {
                assert_eq!(verdict(&place), lone, "{}", String::from_utf8_lossy(&place));
            }
        }
        // A well-formed pair is a character like any other.
        assert!(verdict(&body("\"kind\"", r#""x":"\ud83d\ude00","kind""#)).is_empty());
    }

    #[test]
    fn nesting_has_one_limit_on_both_paths() {
        // The body is level 1, `data` level 2; `x` in data opens level 3.
        let nested = |levels: usize, open: &str, close: &str| {
            format!("{}{}", open.repeat(levels), close.repeat(levels))
        };
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let close = if open == "[" {
                close.to_owned()
            } else {
                format!("1{close}")
            };
            let close = close.as_str();
            for (levels, ok) in [(125, true), (126, false), (127, false), (10_000, false)] {
                let inner = if open == "[" {
                    nested(levels, open, close)
                } else {
                    format!("{}1{}", open.repeat(levels), "}".repeat(levels))
                };
                let unknown = body("\"kind\"", &format!("\"x\":{inner},\"kind\""));
                let expected = if ok {
                    Vec::new()
                } else {
                    one(ErrorCode::JsonTooDeep, "")
                };
                assert_eq!(verdict(&unknown), expected, "{levels} in an unknown field");
                // In a known field: still too deep first, else a type error.
                let known = body("480", &inner);
                let found = verdict(&known);
                if ok {
                    assert_eq!(found, one(ErrorCode::JsonType, "/data/timeOfDayInMinutes"));
                } else {
                    assert_eq!(found, expected, "{levels} in a known field");
                }
                // Inside the external references (level 4), one level deeper.
                let references = body("\"12\"", &format!("\"12\",\"x\":{inner}"));
                let found = verdict(&references);
                if levels < 124 {
                    assert_eq!(
                        found,
                        one(ErrorCode::JsonType, "/data/person/externalReferences/x")
                    );
                } else {
                    assert_eq!(
                        found,
                        one(ErrorCode::JsonTooDeep, ""),
                        "{levels} in references"
                    );
                }
            }
        }
        // 127 levels in all is the deepest body there is.
        let deepest = format!(
            "{{\"changeType\":\"Delete\",\"data\":{{\"changeVersion\":\"1\",\"id\":1,\"x\":{}1{}}}}}",
            "[".repeat(125),
            "]".repeat(125)
        );
        assert!(verdict(deepest.as_bytes()).is_empty());
        let deeper = deepest.replacen('[', "[[", 1).replacen(']', "]]", 1);
        assert_eq!(verdict(deeper.as_bytes()), one(ErrorCode::JsonTooDeep, ""));
    }

    #[test]
    fn a_clocking_item_counts_the_change_around_it() {
        let item = |levels: usize| {
            format!(
                r#"{{"changeVersion":"0A","id":7,"person":{{"id":1}},"date":"2026-01-15","timeOfDayInMinutes":480,"kind":"InOut","x":{}1{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        for levels in [124, 125, 126, 127, 10_000] {
            let text = item(levels);
            let wrapped = format!(r#"{{"changeType":"InsertOrUpdate","data":{text}}}"#);
            let as_item = parse_clocking(text.as_bytes())
                .map(|_| ())
                .map_err(|e| e.errors()[0].code);
            let as_change = parse_delivery(wrapped.as_bytes())
                .map(|_| ())
                .map_err(|e| e.errors()[0].code);
            assert_eq!(as_item, as_change, "{levels}");
        }
    }

    #[test]
    fn serde_json_messages_the_classification_relies_on() {
        let message = |text: &str| serde_json::from_str::<Value>(text).unwrap_err().to_string();
        assert!(message(r#""\ud800""#).starts_with("unexpected end of hex escape"));
        assert!(message(r#""\udc00""#).starts_with("lone leading surrogate in hex escape"));
        assert!(message(r#""\ud800\u0041""#).starts_with("lone leading surrogate in hex escape"));
        assert!(message(&"[".repeat(128)).starts_with("recursion limit exceeded"));
        assert!(
            serde_json::from_str::<Value>(&format!("{}{}", "[".repeat(127), "]".repeat(127)))
                .is_ok()
        );
    }

    #[test]
    fn integer_fields_read_the_literal_exactly() {
        let id = |literal: &str| verdict(&body("\"id\":7", &format!("\"id\":{literal}")));
        let minute = |literal: &str| verdict(&body("480", literal));
        let ok = Vec::new;
        let at_id = |code| one(code, "/data/id");
        let at_minute = |code| one(code, "/data/timeOfDayInMinutes");
        // R23: the value counts, not the spelling.
        assert_eq!(minute("480.0"), ok());
        assert_eq!(minute("4.8e2"), ok());
        assert_eq!(minute("48000e-2"), ok());
        assert_eq!(minute("-0"), ok());
        assert_eq!(minute("-0.0"), ok());
        assert_eq!(id("1.0"), ok());
        assert_eq!(id("9007199254740991.0"), ok());
        // R29: exactly, never rounded.
        assert_eq!(id("9007199254740993.0"), at_id(ErrorCode::NumberInexact));
        assert_eq!(id("9007199254740992.0"), at_id(ErrorCode::NumberInexact));
        assert_eq!(id("9.007199254740993e15"), at_id(ErrorCode::NumberInexact));
        assert_eq!(id("9223372036854775807.0"), at_id(ErrorCode::NumberInexact));
        assert_eq!(id("1.0000000000000001"), at_id(ErrorCode::NumberNotInteger));
        assert_eq!(
            minute("480.00000000000001"),
            at_minute(ErrorCode::NumberNotInteger)
        );
        assert_eq!(id("1.5"), at_id(ErrorCode::NumberNotInteger));
        assert_eq!(id("1e-400"), at_id(ErrorCode::NumberNotInteger));
        // Integer literals beyond any range, and floats far out.
        assert_eq!(id("9223372036854775807"), ok());
        assert_eq!(id("9223372036854775808"), at_id(ErrorCode::NumberRange));
        assert_eq!(id("18446744073709551616"), at_id(ErrorCode::NumberRange));
        assert_eq!(id("9223372036854775808.0"), at_id(ErrorCode::NumberRange));
        assert_eq!(id("1e300"), at_id(ErrorCode::NumberRange));
        assert_eq!(id("-0"), at_id(ErrorCode::NumberRange));
        assert_eq!(minute("1e300"), at_minute(ErrorCode::NumberRange));
        assert_eq!(minute("-1e300"), at_minute(ErrorCode::NumberRange));
        assert_eq!(id("1e400"), one(ErrorCode::JsonSyntax, ""));
        // The rounded float is never what is applied.
        let change = parse_delivery(&body("\"id\":7", "\"id\":9007199254740991.0")).unwrap();
        assert_eq!(change.id().get(), 9_007_199_254_740_991);
        // In an ignored field, a number is only a number.
        assert!(verdict(&body("\"kind\"", "\"x\":1.0000000000000001,\"kind\"")).is_empty());
    }

    #[test]
    fn a_value_given_directly_is_judged_on_its_float() {
        let value = |id: Value| {
            parse_change_value(&serde_json::json!({"changeType": "Delete", "data": {"changeVersion": "1", "id": id}}))
                .map(|c| c.id().get())
                .map_err(|e| e.errors()[0].code)
        };
        assert_eq!(value(serde_json::json!(1.0)), Ok(1));
        assert_eq!(
            value(serde_json::json!(9_007_199_254_740_991.0)),
            Ok(9_007_199_254_740_991)
        );
        assert_eq!(
            value(serde_json::json!(9_007_199_254_740_992.0)),
            Err(ErrorCode::NumberInexact)
        );
        assert_eq!(
            value(serde_json::json!(1.5)),
            Err(ErrorCode::NumberNotInteger)
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_every_level() {
        let cases = [
            (
                "\"changeType\":\"InsertOrUpdate\"",
                "\"changeType\":\"Delete\",\"changeType\":\"InsertOrUpdate\"",
                "/changeType",
            ),
            ("\"changeType\"", "\"x\":1,\"x\":1,\"changeType\"", "/x"),
            ("\"id\":7", "\"id\":7,\"id\":7", "/data/id"),
            ("\"id\":7", "\"id\":8,\"i\\u0064\":7", "/data/id"),
            ("\"kind\"", "\"kind\":\"InOut\",\"kind\"", "/data/kind"),
            ("\"kind\"", "\"a/b\":1,\"a/b\":2,\"kind\"", "/data/a~1b"),
            ("{\"id\":1,", "{\"id\":1,\"id\":2,", "/data/person/id"),
            (
                "\"12\"",
                "\"12\",\"@badge-number\":\"13\"",
                "/data/person/externalReferences/@badge-number",
            ),
            (
                "\"level\":1",
                "\"level\":1,\"level\":1",
                "/data/activityLevels/0/level",
            ),
            (
                "{\"id\":\"a1\"}",
                "{\"id\":\"a1\",\"id\":\"a2\"}",
                "/data/activityLevels/0/activityDefinition/id",
            ),
            (
                "\"kind\"",
                "\"x\":[{\"y\":{\"z\":1,\"z\":2}}],\"kind\"",
                "/data/x/0/y/z",
            ),
            ("\"kind\"", "\"x\":null,\"x\":null,\"kind\"", "/data/x"),
            (
                "\"kind\"",
                "\"isOpen\":null,\"isOpen\":null,\"kind\"",
                "/data/isOpen",
            ),
        ];
        for (from, to, pointer) in cases {
            assert_eq!(
                verdict(&body(from, to)),
                one(ErrorCode::JsonDuplicateKey, pointer),
                "{to}"
            );
        }
        // A Delete's ignored fields are still JSON: no repeated keys there either.
        let delete =
            br#"{"changeType":"Delete","data":{"changeVersion":"1","id":1,"junk":{"a":1,"a":1}}}"#;
        assert_eq!(
            verdict(delete),
            one(ErrorCode::JsonDuplicateKey, "/data/junk/a")
        );
        // Every repeated key is reported once, and nothing else is.
        let many = body(
            "\"id\":7",
            "\"id\":7,\"id\":0,\"id\":-1,\"date\":1,\"date\":2",
        );
        assert_eq!(
            verdict(&many),
            vec![
                (ErrorCode::JsonDuplicateKey, "/data/id".to_owned()),
                (ErrorCode::JsonDuplicateKey, "/data/date".to_owned())
            ]
        );
        // Large objects switch the fast path's key set to hashing; still caught.
        let keys: String = (0..40).map(|i| format!("\"k{i}\":1,")).collect();
        assert_eq!(
            verdict(&body("\"kind\"", &format!("{keys}\"k7\":2,\"kind\""))),
            one(ErrorCode::JsonDuplicateKey, "/data/k7")
        );
        assert!(verdict(&body("\"kind\"", &format!("{keys}\"kind\""))).is_empty());
        assert!(fast_path_accepts(
            &body("\"kind\"", &format!("{keys}\"kind\"")),
            Profile::Strict
        ));
    }

    /// Found by the `parse_delivery` fuzz target once listed clockings could lack their
    /// changeVersion: a whole body (unknown `changeTyVersion`, `pe` and `data` members)
    /// read as a listed item is a valid clocking without a version under Documented, while
    /// the same item in an `InsertOrUpdate` envelope is refused for its changeVersion alone.
    #[test]
    fn an_item_without_change_version_differs_from_its_envelope_by_r5_alone() {
        let item = br#"{"changeTyVersion":"0000090200004BD0000A","id":19250,"person":{"id":1},
            "date":"2026-01-15","pe":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000A",
            "id":19250,"person":{"id":1},"date":"2026-01-15","timeOfDayInMinutes":-0,"kind":"InOut"}}"#;
        let listed = parse_clocking_with(item, Profile::Documented).unwrap();
        assert!(listed.change_version.is_absent());
        assert_eq!(listed.id.get(), 19250);
        let errors = parse_clocking_with(item, Profile::Strict).unwrap_err();
        assert!(errors.has_pointer("/data/changeVersion"));
        let mut envelope = br#"{"changeType":"InsertOrUpdate","data":"#.to_vec();
        envelope.extend_from_slice(item);
        envelope.push(b'}');
        let errors = parse_delivery_with(&envelope, Profile::Documented).unwrap_err();
        assert!(
            errors
                .errors()
                .iter()
                .all(|e| e.pointer == "/data/changeVersion"),
            "{errors:?}"
        );
    }

    /// A listed item nests at most 126 levels (its envelope would make 127): at 127 both
    /// paths refuse it, the fast path included (found by cargo-mutants: `<` → `<=` there
    /// passed every other test).
    #[test]
    fn a_listed_item_at_the_nesting_limit_takes_no_fast_path() {
        let item = |levels: usize| {
            format!(
                r#"{{"changeVersion":"0A","id":7,"x":{}{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        let deepest = item(125);
        assert_eq!(lexical::max_depth(&deepest), 126);
        assert!(parse_clocking_fast_path(deepest.as_bytes(), Profile::Documented).is_some());
        assert!(parse_clocking_with(deepest.as_bytes(), Profile::Documented).is_ok());
        let too_deep = item(126);
        assert_eq!(lexical::max_depth(&too_deep), 127);
        assert!(parse_clocking_fast_path(too_deep.as_bytes(), Profile::Documented).is_none());
        let errors = parse_clocking_with(too_deep.as_bytes(), Profile::Documented).unwrap_err();
        assert!(errors.has_code(ErrorCode::JsonTooDeep), "{errors:?}");
    }
}
