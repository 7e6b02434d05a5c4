//! Errors: the crate's [`Error`], and the API's error responses in Protime's documented
//! `ProtimeError` shape.

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protime_raw::types::{ProtimeError, ProtimeErrorDetail};

/// Why a sandbox could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A [`crate::SandboxConfig`] value cannot work.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// The listening socket could not be bound.
    #[error("could not listen on {address}: {source}")]
    Bind {
        /// The address tried.
        address: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// [`crate::Sandbox::new`] was called outside a Tokio runtime (deliveries run on it).
    #[error("the sandbox needs a Tokio runtime: call it from within one")]
    NoRuntime,
    /// The HTTP client for deliveries could not be built.
    #[error("the delivery HTTP client could not be built: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// An error answer of an API route: a status and a `ProtimeError` body (boxed: it travels in
/// `Result`s).
#[derive(Debug, Clone)]
pub(crate) struct ApiError(Box<Details>);

#[derive(Debug, Clone)]
struct Details {
    status: StatusCode,
    body: ProtimeError,
    retry_after: Option<u64>,
    www_authenticate: Option<&'static str>,
}

impl ApiError {
    fn wrapped(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self(Box::new(Details {
            status,
            body: ProtimeError {
                error: Some(ProtimeErrorDetail {
                    code: code.to_owned(),
                    message: message.into(),
                    reasons: Vec::new(),
                }),
                validation_errors: Vec::new(),
            },
            retry_after: None,
            www_authenticate: None,
        }))
    }

    /// `400` for a business-rule (controller) validation failure, with `reasons`.
    pub(crate) fn bad_request(message: impl Into<String>, reasons: Vec<String>) -> Self {
        let mut error = Self::wrapped(StatusCode::BAD_REQUEST, "BadRequest", message);
        if let Some(detail) = error.0.body.error.as_mut() {
            detail.reasons = reasons;
        }
        error
    }

    /// `400` for a model (deserialization) validation failure: `validationErrors` without the
    /// `error` wrapper, as the docs describe.
    pub(crate) fn model_validation(error: &serde_json::Error) -> Self {
        let message = error.to_string();
        let mut item = serde_json::Map::new();
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            item.insert("field".into(), field.into());
        }
        item.insert("message".into(), message.into());
        item.insert("line".into(), error.line().into());
        item.insert("column".into(), error.column().into());
        Self(Box::new(Details {
            status: StatusCode::BAD_REQUEST,
            body: ProtimeError {
                error: None,
                validation_errors: vec![serde_json::Value::Object(item)],
            },
            retry_after: None,
            www_authenticate: None,
        }))
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        let mut error = Self::wrapped(StatusCode::UNAUTHORIZED, "Unauthorized", message);
        error.0.www_authenticate = Some("Bearer error=\"invalid_token\"");
        error
    }

    pub(crate) fn forbidden(scope: &str) -> Self {
        Self::wrapped(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("The access token lacks the scope {scope}."),
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::wrapped(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::wrapped(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "This method is not supported on this resource.",
        )
    }

    pub(crate) fn gone(message: impl Into<String>) -> Self {
        Self::wrapped(StatusCode::GONE, "Gone", message)
    }

    pub(crate) fn uri_too_long(length: usize) -> Self {
        Self::wrapped(
            StatusCode::URI_TOO_LONG,
            "UriTooLong",
            format!("The request URI has {length} characters; the limit is 4096."),
        )
    }

    pub(crate) fn too_many_requests(retry_after_seconds: u64) -> Self {
        let mut error = Self::wrapped(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Rate limit exceeded: retry after the Retry-After delay.",
        );
        error.0.retry_after = Some(retry_after_seconds);
        error
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::wrapped(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            message,
        )
    }

    pub(crate) fn unavailable(retry_after_seconds: u64) -> Self {
        let mut error = Self::wrapped(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is under maintenance.",
        );
        error.0.retry_after = Some(retry_after_seconds);
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let details = *self.0;
        let body = serde_json::to_vec(&details.body).unwrap_or_default();
        let mut response = (
            details.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(seconds) = details.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = details.www_authenticate {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
