//! Validation errors: every violation of a delivery body, each with a JSON Pointer, a stable
//! code, the offending value and what would have been allowed.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// Stable, machine-readable code of one violated rule. The rules are listed in
/// `docs/validation-rules.md`; codes never change meaning once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not syntactically valid JSON (rule R1).
    #[serde(rename = "json.syntax")]
    JsonSyntax,
    /// The body is not valid UTF-8 — a stray byte, an overlong encoding such as `C0 AF`, an
    /// encoded surrogate — wherever it is (rule R25).
    #[serde(rename = "json.utf8")]
    JsonUtf8,
    /// A string or a key holds a `\u` escape of a lone UTF-16 surrogate, such as `"\ud800"`,
    /// wherever it is, unknown fields included (rule R26).
    #[serde(rename = "json.lone_surrogate")]
    JsonLoneSurrogate,
    /// Arrays and objects are nested deeper than the parser's limit, wherever it is
    /// (rule R27).
    #[serde(rename = "json.too_deep")]
    JsonTooDeep,
    /// An object holds the same key twice, at any level (rule R28). Readers disagree on which
    /// value counts, so the body is refused.
    #[serde(rename = "json.duplicate_key")]
    JsonDuplicateKey,
    /// A value has the wrong JSON type (object, string, boolean, number, array).
    #[serde(rename = "json.type")]
    JsonType,
    /// A required field is missing, or `null`.
    #[serde(rename = "field.required")]
    FieldRequired,
    /// A string is not one of the allowed values (enums are case-sensitive).
    #[serde(rename = "enum.unknown")]
    EnumUnknown,
    /// A number lies outside its allowed range.
    #[serde(rename = "number.range")]
    NumberRange,
    /// A number that must be an integer has a fractional part.
    #[serde(rename = "number.not_integer")]
    NumberNotInteger,
    /// An integer written with a fraction or an exponent (`9007199254740993.0`) lies beyond
    /// ±9007199254740991, where a 64-bit float cannot hold every integer (rule R29).
    #[serde(rename = "number.inexact")]
    NumberInexact,
    /// A string that must not be empty is empty.
    #[serde(rename = "string.empty")]
    StringEmpty,
    /// A date is not a real calendar date in strict `YYYY-MM-DD` form.
    #[serde(rename = "date.format")]
    DateFormat,
    /// A field that the clocking's `kind` requires is missing.
    #[serde(rename = "kind.missing_field")]
    KindMissingField,
    /// A field that the clocking's `kind` does not allow is present.
    #[serde(rename = "kind.forbidden_field")]
    KindForbiddenField,
    /// An array that must have at least one element is empty.
    #[serde(rename = "array.empty")]
    ArrayEmpty,
}

impl ErrorCode {
    /// The code as it appears in reports and in `docs/validation-rules.md`, e.g. `number.range`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JsonSyntax => "json.syntax",
            Self::JsonUtf8 => "json.utf8",
            Self::JsonLoneSurrogate => "json.lone_surrogate",
            Self::JsonTooDeep => "json.too_deep",
            Self::JsonDuplicateKey => "json.duplicate_key",
            Self::JsonType => "json.type",
            Self::FieldRequired => "field.required",
            Self::EnumUnknown => "enum.unknown",
            Self::NumberRange => "number.range",
            Self::NumberNotInteger => "number.not_integer",
            Self::NumberInexact => "number.inexact",
            Self::StringEmpty => "string.empty",
            Self::DateFormat => "date.format",
            Self::KindMissingField => "kind.missing_field",
            Self::KindForbiddenField => "kind.forbidden_field",
            Self::ArrayEmpty => "array.empty",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a violated rule would have accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Allowed {
    /// A JSON type, e.g. `object` or `integer`.
    Type {
        /// The expected JSON type name.
        expected: &'static str,
    },
    /// An inclusive integer range.
    IntegerRange {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// An inclusive range of numbers.
    NumberRange {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// One of a fixed set of strings.
    OneOf {
        /// The allowed values.
        values: &'static [&'static str],
    },
    /// A textual description of the expected format, e.g. `YYYY-MM-DD`.
    Format {
        /// The expected format.
        format: &'static str,
    },
    /// The field must be absent (or `null`) for the given clocking kind.
    Absent,
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Type { expected } => write!(f, "expected {expected}"),
            Self::IntegerRange { min, max } => write!(f, "allowed {min}..={max}"),
            Self::NumberRange { min, max } => write!(f, "allowed {min}..={max}"),
            Self::OneOf { values } => write!(f, "allowed one of {}", values.join(", ")),
            Self::Format { format } => write!(f, "expected format {format}"),
            Self::Absent => f.write_str("must be absent"),
        }
    }
}

/// One violated rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationError {
    /// JSON Pointer (RFC 6901) to the offending value, e.g. `/data/timeOfDayInMinutes`.
    /// Empty for the whole body.
    pub pointer: String,
    /// Stable machine-readable code of the rule.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// The offending value, when there is one (absent for missing fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// What would have been accepted, when that can be stated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Allowed>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(body)"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {} [{}]", self.message, self.code)?;
        if let Some(value) = &self.value {
            write!(f, " (found {})", truncate_for_display(value))?;
        }
        if let Some(allowed) = &self.allowed {
            write!(f, " ({allowed})")?;
        }
        Ok(())
    }
}

/// Keeps error messages short when a huge value is offending.
fn truncate_for_display(value: &Value) -> String {
    const LIMIT: usize = 80;
    let text = value.to_string();
    if text.chars().count() <= LIMIT {
        text
    } else {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}…")
    }
}

/// Every violation found in one delivery body; never empty.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct ValidationErrors {
    errors: Vec<ValidationError>,
}

impl ValidationErrors {
    pub(crate) fn new(errors: Vec<ValidationError>) -> Option<Self> {
        if errors.is_empty() {
            None
        } else {
            Some(Self { errors })
        }
    }

    /// A report of exactly one violation (for layers that check something the walker does
    /// not see, such as a conversion from another type).
    ///
    /// ```
    /// use protime_model::{ErrorCode, ValidationError, ValidationErrors};
    /// let errors = ValidationErrors::single(ValidationError {
    ///     pointer: "/data/id".into(),
    ///     code: ErrorCode::JsonType,
    ///     message: "expected an integer".into(),
    ///     value: None,
    ///     allowed: None,
    /// });
    /// assert_eq!(errors.len(), 1);
    /// ```
    pub fn single(error: ValidationError) -> Self {
        Self {
            errors: vec![error],
        }
    }

    /// The violations, in the order the rules were checked.
    pub fn errors(&self) -> &[ValidationError] {
        &self.errors
    }

    /// Number of violations (at least one).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always `false`: a `ValidationErrors` holds at least one violation.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Whether any violation has the given code.
    pub fn has_code(&self, code: ErrorCode) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }

    /// Whether any violation points at `pointer`.
    pub fn has_pointer(&self, pointer: &str) -> bool {
        self.errors.iter().any(|e| e.pointer == pointer)
    }
}

impl IntoIterator for ValidationErrors {
    type Item = ValidationError;
    type IntoIter = std::vec::IntoIter<ValidationError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(
            f,
            "invalid clocking change: {count} violation{}",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}
