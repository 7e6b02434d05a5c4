//! The axum webhook receiver (feature `axum`): a ready [`router`], and the
//! [`VerifiedDelivery`] extractor for your own handlers.
//!
//! For every POST it enforces, in this order: a body limit (413), a JSON content type (415),
//! a read deadline against slow senders (408), the HMAC signature over the raw body (401,
//! with no detail that would help a forger), then validation. A valid change goes to the
//! [`DeliverySink`]; an authentic but invalid delivery is, by default, stored as a dead
//! letter and acknowledged, so Protime does not retry it until it disables the webhook. The
//! receiver answers 2xx only after the sink reports the record durable, and 503 when the
//! sink fails, so that Protime retries.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::BodyExt as _;

use crate::error::ValidationErrors;
use crate::model::ClockingChange;
use crate::signature::Verifier;
use crate::sink::{DeliverySink, Record, RecordOutcome};
use crate::tracker::ApplyOutcome;

/// What to do with a delivery that is authentic (signature valid) but breaks the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InvalidDeliveryPolicy {
    /// Store it as a dead letter (raw body and errors) and answer 200: Protime's retries
    /// would not fix it, and repeated failures disable the webhook.
    #[default]
    DeadLetterAndAcknowledge,
    /// Answer 400 with the validation errors and store nothing; Protime retries.
    Reject,
}

/// Which `Content-Type` a delivery may have. Protime does not document the header it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ContentTypePolicy {
    /// A JSON media type (`application/json`, `application/*+json`, any parameters) when the
    /// header is present; a request without the header is accepted.
    #[default]
    JsonIfPresent,
    /// A JSON media type is required.
    RequireJson,
    /// Any content type.
    Any,
}

/// Limits and policies of the receiver.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReceiverConfig {
    /// Largest accepted body in bytes; larger ones get 413. Default 1 MiB.
    pub body_limit: usize,
    /// Time allowed to receive the whole body once the headers are in; slower requests get
    /// 408. Default 10 s.
    pub read_timeout: Duration,
    /// See [`InvalidDeliveryPolicy`].
    pub invalid_delivery: InvalidDeliveryPolicy,
    /// See [`ContentTypePolicy`].
    pub content_type: ContentTypePolicy,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            read_timeout: Duration::from_secs(10),
            invalid_delivery: InvalidDeliveryPolicy::default(),
            content_type: ContentTypePolicy::default(),
        }
    }
}

impl ReceiverConfig {
    /// Sets [`Self::body_limit`].
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
    /// Sets [`Self::read_timeout`].
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }
    /// Sets [`Self::invalid_delivery`].
    pub fn with_invalid_delivery(mut self, policy: InvalidDeliveryPolicy) -> Self {
        self.invalid_delivery = policy;
        self
    }
    /// Sets [`Self::content_type`].
    pub fn with_content_type(mut self, policy: ContentTypePolicy) -> Self {
        self.content_type = policy;
        self
    }
}

/// What the [`VerifiedDelivery`] extractor needs: the verifier and the limits.
#[derive(Debug, Clone)]
pub struct VerificationState {
    /// Verifies signatures; clones share keys, so adding a key during re-subscription is
    /// seen by the running receiver.
    pub verifier: Verifier,
    /// Limits and policies.
    pub config: Arc<ReceiverConfig>,
}

/// State of the ready-made [`router`].
#[derive(Clone)]
pub struct ReceiverState {
    verification: VerificationState,
    sink: Arc<dyn DeliverySink>,
}

impl FromRef<ReceiverState> for VerificationState {
    fn from_ref(state: &ReceiverState) -> Self {
        state.verification.clone()
    }
}

/// An authentic delivery: the signature matched one of the keys. `change` holds the
/// validation result; the raw body is kept for dead letters and audit.
#[derive(Debug)]
pub struct VerifiedDelivery {
    /// The body exactly as received.
    pub raw_body: Bytes,
    /// The validated change, or every rule it breaks.
    pub change: Result<ClockingChange, ValidationErrors>,
    /// Non-secret fingerprint of the key that matched.
    pub key_fingerprint: String,
}

/// Why a request was refused before validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// 413: the body exceeds the limit.
    PayloadTooLarge,
    /// 415: the content type is not JSON.
    UnsupportedMediaType,
    /// 408: the body did not arrive within the read timeout.
    RequestTimeout,
    /// 400: the body could not be read (connection error, malformed framing).
    UnreadableBody,
    /// 401: the signature is missing or does not match.
    Unauthorized,
}

impl Rejection {
    /// The HTTP status this rejection is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnreadableBody => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::PayloadTooLarge => "payload too large",
            Self::UnsupportedMediaType => "unsupported media type: expected application/json",
            Self::RequestTimeout => "request body not received in time",
            Self::UnreadableBody => "request body could not be read",
            // Deliberately uninformative: the reason is in the receiver's log.
            Self::Unauthorized => "unauthorized",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        json_response(
            self.status(),
            &serde_json::json!({ "error": self.message() }),
        )
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn check_content_type(headers: &HeaderMap, policy: ContentTypePolicy) -> Result<(), Rejection> {
    let value = headers.get(header::CONTENT_TYPE);
    let acceptable = match (policy, value) {
        (ContentTypePolicy::Any, _) => true,
        (ContentTypePolicy::JsonIfPresent, None) => true,
        (ContentTypePolicy::RequireJson, None) => false,
        (_, Some(v)) => v.to_str().is_ok_and(is_json_media_type),
    };
    if acceptable {
        Ok(())
    } else {
        Err(Rejection::UnsupportedMediaType)
    }
}

/// Reads the whole body within the limit and the deadline.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    config: &ReceiverConfig,
) -> Result<Bytes, Rejection> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > config.body_limit as u64) {
        return Err(Rejection::PayloadTooLarge);
    }
    let limited = http_body_util::Limited::new(body, config.body_limit);
    match tokio::time::timeout(config.read_timeout, limited.collect()).await {
        Err(_) => Err(Rejection::RequestTimeout),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(Rejection::PayloadTooLarge)
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "webhook body could not be read");
            Err(Rejection::UnreadableBody)
        }
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

impl<S> FromRequest<S> for VerifiedDelivery
where
    S: Send + Sync,
    VerificationState: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let state = VerificationState::from_ref(state);
        let (parts, body) = request.into_parts();
        check_content_type(&parts.headers, state.config.content_type)?;
        let raw_body = read_body(body, &parts.headers, &state.config).await?;
        let verified = state
            .verifier
            .verify(&parts.headers, &raw_body)
            .map_err(|error| {
                tracing::warn!(%error, "webhook delivery refused: signature check failed");
                Rejection::Unauthorized
            })?;
        let change = crate::parse_delivery(&raw_body);
        Ok(Self {
            raw_body,
            change,
            key_fingerprint: verified.key_fingerprint,
        })
    }
}

/// The 200 body for each outcome, written once rather than serialized per request.
fn outcome_body(outcome: RecordOutcome) -> &'static str {
    match outcome {
        RecordOutcome::Change(ApplyOutcome::Applied) => r#"{"outcome":"applied"}"#,
        RecordOutcome::Change(ApplyOutcome::Duplicate) => r#"{"outcome":"duplicate"}"#,
        RecordOutcome::Change(ApplyOutcome::Stale) => r#"{"outcome":"stale"}"#,
        RecordOutcome::DeadLettered => r#"{"outcome":"dead_lettered"}"#,
    }
}

async fn receive(State(state): State<ReceiverState>, delivery: VerifiedDelivery) -> Response {
    let record = match delivery.change {
        Ok(change) => {
            tracing::debug!(id = %change.id(), version = %change.change_version(), "webhook delivery verified");
            Record::Change {
                change,
                raw_body: delivery.raw_body.to_vec(),
            }
        }
        Err(errors) => match state.verification.config.invalid_delivery {
            InvalidDeliveryPolicy::Reject => {
                tracing::warn!(
                    violations = errors.len(),
                    "authentic webhook delivery rejected: invalid"
                );
                let body = serde_json::json!({ "error": "invalid delivery", "violations": errors });
                return json_response(StatusCode::BAD_REQUEST, &body);
            }
            InvalidDeliveryPolicy::DeadLetterAndAcknowledge => {
                tracing::warn!(violations = errors.len(), %errors, "authentic webhook delivery is invalid: dead-lettered");
                Record::DeadLetter {
                    raw_body: delivery.raw_body.to_vec(),
                    errors,
                }
            }
        },
    };
    match state.sink.record(record).await {
        Ok(outcome) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            outcome_body(outcome),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "webhook delivery not stored: answering 503 so that Protime retries");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({ "error": "delivery not stored, retry later" }),
            )
        }
    }
}

/// A router that receives deliveries with `POST /` (nest it where your destination URL
/// points) and hands them to `sink`.
///
/// ```no_run
/// use std::sync::Arc;
/// use protime_webhooks::receiver::{router, ReceiverConfig};
/// use protime_webhooks::signature::{SignatureScheme, Verifier, WebhookKey};
/// use protime_webhooks::store::SqliteStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let verifier = Verifier::new(SignatureScheme::default(), [WebhookKey::new("key from create")?])?;
/// let store = SqliteStore::open("clockings.sqlite")?;
/// let app = axum::Router::new().nest("/protime/clockings", router(verifier, ReceiverConfig::default(), Arc::new(store)));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app).await?;
/// # Ok(())
/// # }
/// ```
pub fn router(verifier: Verifier, config: ReceiverConfig, sink: Arc<dyn DeliverySink>) -> Router {
    let state = ReceiverState {
        verification: VerificationState {
            verifier,
            config: Arc::new(config),
        },
        sink,
    };
    Router::new().route("/", post(receive)).with_state(state)
}
