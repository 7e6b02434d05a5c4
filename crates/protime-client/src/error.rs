//! The client's one error type: it keeps the HTTP status (also for bodies that are not
//! JSON), Protime's `error.code` / `message` / `reasons` and `validationErrors`, and never a
//! secret.

use std::time::Duration;

use protime_model::ValidationErrors;

/// Protime's documented error body, decoded: `{"error": {"code", "message", "reasons"}}`, or
/// a bare `{"validationErrors": [...]}` for model validation failures.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ApiErrorBody {
    /// `error.code`, e.g. `BadRequest`.
    pub code: Option<String>,
    /// `error.message`.
    pub message: Option<String>,
    /// `error.reasons` (business-rule validation).
    pub reasons: Vec<String>,
    /// `validationErrors` (model validation); element shape undocumented, kept as JSON.
    pub validation_errors: Vec<serde_json::Value>,
}

impl ApiErrorBody {
    pub(crate) fn from_raw(raw: protime_raw::types::ProtimeError) -> Self {
        let (code, message, reasons) = match raw.error {
            Some(detail) => (Some(detail.code), Some(detail.message), detail.reasons),
            None => (None, None, Vec::new()),
        };
        Self {
            code,
            message,
            reasons,
            validation_errors: raw.validation_errors,
        }
    }

    /// Decodes a body that progenitor could not type (e.g. an error status it did not expect).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<protime_raw::types::ProtimeError>(bytes)
            .ok()
            .map(Self::from_raw)
            .filter(|body| body.code.is_some() || !body.validation_errors.is_empty())
    }
}

impl std::fmt::Display for ApiErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => write!(f, "{code}: {message}")?,
            (Some(code), None) => write!(f, "{code}")?,
            (None, Some(message)) => write!(f, "{message}")?,
            (None, None) => f.write_str("no error body")?,
        }
        if !self.reasons.is_empty() {
            write!(f, " ({})", self.reasons.join("; "))?;
        }
        if !self.validation_errors.is_empty() {
            write!(f, " ({} validation errors)", self.validation_errors.len())?;
        }
        Ok(())
    }
}

/// `HTTP 401`, or that there was no response.
fn http_status(status: Option<u16>) -> String {
    status.map_or_else(|| "no HTTP response".to_owned(), |s| format!("HTTP {s}"))
}

/// What the client was doing, in words, for messages: `operation` is the spec's operation
/// id, kept as such in the error for programs.
fn doing(operation: &str) -> String {
    match operation {
        "create_webhook" => "creating the webhook".to_owned(),
        "list_webhooks" => "listing the webhooks".to_owned(),
        "get_webhook" => "reading the webhook".to_owned(),
        "delete_webhook" => "deleting the webhook".to_owned(),
        "list_clockings" => "listing the clockings".to_owned(),
        "get_clocking" => "reading the clocking".to_owned(),
        "delta_initial_load" => "loading the clockings (delta initial load)".to_owned(),
        "delta" => "reading the delta".to_owned(),
        "follow link" => "following a next link".to_owned(),
        other => other.replace('_', " "),
    }
}

/// When Protime asked to retry, in whole seconds.
fn retry_hint(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(
        || "no Retry-After given".to_owned(),
        |after| format!("Protime asked to retry after {} s", after.as_secs()),
    )
}

/// Error of the Protime client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client was configured wrongly (missing User-Agent, bad URL, …).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The token endpoint refused or failed; `status` is its HTTP status when there was one.
    #[error("could not get an access token ({}): {message}", http_status(*.status))]
    Token {
        /// HTTP status of the token endpoint.
        status: Option<u16>,
        /// What it said (the OAuth `error`/`error_description`, never the secret).
        message: String,
    },
    /// Protime answered with an error status.
    #[error("{} failed: Protime answered HTTP {status}: {body}", doing(operation))]
    Api {
        /// The operation, e.g. `list_clockings`.
        operation: &'static str,
        /// The HTTP status, also when the body was empty or not JSON.
        status: u16,
        /// The decoded error body (empty when there was none).
        body: ApiErrorBody,
    },
    /// 429 Too Many Requests, still after the retry budget was spent.
    #[error(
        "{} failed: rate limited by Protime after {attempts} attempts ({})", doing(operation), retry_hint(*.retry_after)
    )]
    RateLimited {
        /// The operation.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The delta token expired (410 Gone): start a new initial load (full re-initialization).
    #[error("the delta expired (410 Gone): run a new initial load")]
    DeltaExpired,
    /// The request could not be sent or the response not read (after retries, where safe).
    #[error(
        "{} failed: no answer after {attempts} attempts: {source}",
        doing(operation)
    )]
    Transport {
        /// The operation.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        #[source]
        source: reqwest::Error,
    },
    /// A success response whose body could not be understood.
    #[error("{} failed: unexpected response ({}): {message}", doing(operation), http_status(*.status))]
    InvalidResponse {
        /// The operation.
        operation: &'static str,
        /// HTTP status, when known.
        status: Option<u16>,
        /// What was wrong.
        message: String,
    },
    /// An item from Protime failed the model's validation rules.
    #[error("{}: an item failed validation: {errors}", doing(operation))]
    InvalidItem {
        /// The operation.
        operation: &'static str,
        /// The violations.
        errors: ValidationErrors,
    },
    /// A webhook destination must be an absolute `https://` URL.
    #[error(
        "webhook destination {url} is not HTTPS; Protime requires HTTPS (allow_insecure_destinations is for local tests)"
    )]
    InsecureDestination {
        /// The refused URL.
        url: String,
    },
    /// A filter that Protime would refuse, caught before sending.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// The start date of a delta filter is outside what Protime allows: "a recent date in
    /// the past", no earlier than 1 January of the previous year (see
    /// [`crate::DELTA_FILTER_DOCS`]). Caught before sending.
    #[error(
        "the delta filter starts on {start}, outside the allowed range {earliest}..={latest}: Protime's delta start date must be a recent date in the past, no earlier than 1 January of the previous year ({docs})",
        docs = crate::filter::DELTA_FILTER_DOCS
    )]
    #[non_exhaustive]
    DeltaStartOutOfRange {
        /// The refused start date.
        start: chrono::NaiveDate,
        /// The earliest allowed start (1 January of the previous year).
        earliest: chrono::NaiveDate,
        /// The latest allowed start (today, UTC, when checked by the client).
        latest: chrono::NaiveDate,
    },
}

impl Error {
    /// The HTTP status Protime answered with, when the error comes from a response.
    ///
    /// ```
    /// use protime_client::{ApiErrorBody, Error};
    /// let not_found = Error::Api { operation: "get_webhook", status: 404, body: ApiErrorBody::default() };
    /// assert_eq!(not_found.status(), Some(404));
    /// assert_eq!(Error::DeltaExpired.status(), Some(410));
    /// assert_eq!(Error::InvalidFilter("bad".into()).status(), None);
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            Self::DeltaExpired => Some(410),
            Self::Token { status, .. } => *status,
            Self::InvalidResponse { status, .. } => *status,
            _ => None,
        }
    }

    /// Whether the error means the credentials or scopes are wrong (401 or 403).
    ///
    /// ```
    /// use protime_client::{ApiErrorBody, Error};
    /// let forbidden = Error::Api { operation: "list_clockings", status: 403, body: ApiErrorBody::default() };
    /// assert!(forbidden.is_auth());
    /// assert!(Error::Token { status: Some(401), message: "invalid_client".into() }.is_auth());
    /// assert!(!Error::DeltaExpired.is_auth());
    /// ```
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }
}
