//! The framework-agnostic receive core: content type → signature over the raw body →
//! validation → sink → the HTTP answer. Any HTTP stack can call [`ReceiveCore::handle`] with
//! the request's headers and its body (read within a size limit and a deadline: that part
//! belongs to the server); the axum adapter (`receiver`, feature `axum`) does exactly that.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use protime_model::ordering::ApplyOutcome;
use protime_model::{ClockingChange, ValidationErrors};

use crate::signature::{SignatureError, Verifier};
use crate::sink::{Delivery, DeliverySink, Receipt, WebhookOrigin};

/// Why a delivery was not accepted by [`Verifier::verify_and_parse`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The signature is missing or wrong: the request may be forged. Answer 401 and keep
    /// the details in your logs (they help an operator, and a forger).
    #[error("signature check failed: {0}")]
    Signature(#[from] SignatureError),
    /// The delivery is authentic but breaks the validation rules. Store it as a dead letter
    /// and acknowledge it, or Protime retries it until the webhook is disabled.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
}

impl Verifier {
    /// Verifies the signature of `body` (the raw bytes, exactly as received), then parses and
    /// validates it with `protime_model::parse_delivery`. The signature is checked first, so
    /// an unauthenticated body is never parsed.
    ///
    /// ```
    /// use protime_webhooks::receive::ReceiveError;
    /// use protime_webhooks::signature::{sign, SignatureScheme, Verifier, WebhookKey};
    ///
    /// let key = WebhookKey::new("the key from the create call").unwrap();
    /// let verifier = Verifier::new(SignatureScheme::default(), [key.clone()]).unwrap();
    /// let body = br#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000C","id":1001}}"#;
    /// let headers = sign(&SignatureScheme::default(), &key, body, None).unwrap();
    ///
    /// let change = verifier.verify_and_parse(&headers, body).unwrap();
    /// assert_eq!(change.id().get(), 1001);
    ///
    /// let forged = verifier.verify_and_parse(&http::HeaderMap::new(), body);
    /// assert!(matches!(forged, Err(ReceiveError::Signature(_))));
    /// ```
    pub fn verify_and_parse(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ClockingChange, ReceiveError> {
        self.verify_and_parse_with(headers, body, protime_model::Profile::Documented)
    }

    /// [`Self::verify_and_parse`] under a validation profile.
    ///
    /// ```
    /// use protime_model::Profile;
    /// use protime_webhooks::receive::ReceiveError;
    /// use protime_webhooks::signature::{sign, SignatureScheme, Verifier, WebhookKey};
    ///
    /// let key = WebhookKey::new("the key from the create call").unwrap();
    /// let verifier = Verifier::new(SignatureScheme::default(), [key.clone()]).unwrap();
    /// let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0B","id":1050,"date":"2024-12-02"}}"#;
    /// let headers = sign(&SignatureScheme::default(), &key, body, None).unwrap();
    /// assert!(verifier.verify_and_parse_with(&headers, body, Profile::Documented).is_ok());
    /// let strict = verifier.verify_and_parse_with(&headers, body, Profile::Strict);
    /// assert!(matches!(strict, Err(ReceiveError::Invalid(_))));
    /// ```
    pub fn verify_and_parse_with(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        profile: protime_model::Profile,
    ) -> Result<ClockingChange, ReceiveError> {
        self.verify(headers, body)?;
        Ok(protime_model::parse_delivery_with(body, profile)?)
    }
}

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
    /// 503 with `Retry-After`: too many bodies are being read at once, or the bodies held
    /// would exceed the budget of buffered bytes (the receiver sheds load instead of
    /// queueing it without bound; Protime retries).
    Overloaded,
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
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON body answered with it. Deliberately uninformative for 401: the reason is in
    /// the receiver's log.
    pub fn body(self) -> &'static str {
        match self {
            Self::PayloadTooLarge => r#"{"error":"payload too large"}"#,
            Self::UnsupportedMediaType => {
                r#"{"error":"unsupported media type: expected application/json"}"#
            }
            Self::RequestTimeout => r#"{"error":"request body not received in time"}"#,
            Self::UnreadableBody => r#"{"error":"request body could not be read"}"#,
            Self::Unauthorized => r#"{"error":"unauthorized"}"#,
            Self::Overloaded => r#"{"error":"overloaded: retry later"}"#,
        }
    }

    /// This rejection as an [`Answer`].
    pub fn answer(self) -> Answer {
        Answer {
            status: self.status(),
            body: self.body().into(),
            receipt: None,
        }
    }
}

/// The HTTP answer to one delivery: a status and a JSON body (`application/json`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answer {
    /// 200 once the sink made the delivery durable; 4xx/503 otherwise.
    pub status: StatusCode,
    /// The JSON body.
    pub body: std::borrow::Cow<'static, str>,
    /// What the sink did, when it stored the delivery.
    pub receipt: Option<Receipt>,
}

/// Metrics the receive core records through the [`metrics`] facade (nothing is recorded
/// until the application installs a recorder, e.g. `metrics-exporter-prometheus`, as
/// `protime receive --admin` does):
///
/// - `protime_deliveries_total{outcome}` — stored deliveries by receipt (`applied`,
///   `duplicate`, `stale`, `appended`, `dead_lettered`);
/// - `protime_deliveries_refused_total{reason}` — deliveries answered without being stored
///   (`content_type`, `signature`, `invalid`, `not_stored`);
/// - `protime_delivery_duration_seconds` — histogram of the time from the body being read to
///   the durable receipt.
pub const METRICS: [&str; 3] = [
    "protime_deliveries_total",
    "protime_deliveries_refused_total",
    "protime_delivery_duration_seconds",
];

fn refused(reason: &'static str) {
    metrics::counter!("protime_deliveries_refused_total", "reason" => reason).increment(1);
}

/// At most one warning per interval for refused signatures, with the count since the last
/// one: a flood of forged requests must not flood the logs (each refusal is still counted
/// in `protime_deliveries_refused_total{reason="signature"}`).
#[derive(Debug)]
struct RefusalLog {
    interval: std::time::Duration,
    /// When the last warning was written, and the refusals since.
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl RefusalLog {
    fn new(interval: std::time::Duration) -> Self {
        Self {
            interval,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    /// Counts a refusal at `now`; `Some(count)` when a warning is due (the count it reports).
    fn note(&self, now: std::time::Instant) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.1 += 1;
        let due = state
            .0
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            let count = state.1;
            *state = (Some(now), 0);
            Some(count)
        } else {
            None
        }
    }
}

/// Default interval between two warnings about refused signatures.
pub const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The `tracing` target of the one line per stored delivery (see [`ReceiveCore::handle`]).
pub const DELIVERY_LOG_TARGET: &str = "protime::delivery";

/// What the live view shows of a change (`-` for a dead letter).
#[derive(Debug, Clone, Copy)]
struct SeenChange {
    id: i64,
    change_type: &'static str,
    kind: &'static str,
}

impl Default for SeenChange {
    fn default() -> Self {
        Self {
            id: 0,
            change_type: "-",
            kind: "-",
        }
    }
}

impl SeenChange {
    fn of(change: &protime_model::ClockingChange) -> Self {
        let kind = match change {
            protime_model::ClockingChange::InsertOrUpdate(clocking) => clocking
                .kind
                .as_ref()
                .map_or("(no kind)", |kind| kind.name()),
            protime_model::ClockingChange::Delete { .. } => "-",
        };
        Self {
            id: change.id().get(),
            change_type: change.change_type().name(),
            kind,
        }
    }
}

/// The 200 body for each receipt, written once rather than serialized per request.
fn receipt_body(receipt: Receipt) -> &'static str {
    match receipt {
        Receipt::Applied(ApplyOutcome::Applied) => r#"{"outcome":"applied"}"#,
        Receipt::Applied(ApplyOutcome::Duplicate) => r#"{"outcome":"duplicate"}"#,
        Receipt::Applied(ApplyOutcome::Stale) => r#"{"outcome":"stale"}"#,
        Receipt::Appended => r#"{"outcome":"appended"}"#,
        Receipt::DeadLettered => r#"{"outcome":"dead_lettered"}"#,
    }
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

/// Checks the `Content-Type` header against `policy`.
///
/// ```
/// use protime_webhooks::receive::{check_content_type, ContentTypePolicy, Rejection};
/// let mut headers = http::HeaderMap::new();
/// assert!(check_content_type(&headers, ContentTypePolicy::JsonIfPresent).is_ok());
/// headers.insert("content-type", "text/plain".parse().unwrap());
/// assert_eq!(check_content_type(&headers, ContentTypePolicy::JsonIfPresent), Err(Rejection::UnsupportedMediaType));
/// ```
pub fn check_content_type(headers: &HeaderMap, policy: ContentTypePolicy) -> Result<(), Rejection> {
    let value = headers.get(header::CONTENT_TYPE);
    let acceptable = match (policy, value) {
        (ContentTypePolicy::Any, _) | (ContentTypePolicy::JsonIfPresent, None) => true,
        (ContentTypePolicy::RequireJson, None) => false,
        (_, Some(v)) => v.to_str().is_ok_and(is_json_media_type),
    };
    if acceptable {
        Ok(())
    } else {
        Err(Rejection::UnsupportedMediaType)
    }
}

/// Verify → parse → sink → answer, for any HTTP stack.
///
/// ```
/// use std::sync::Arc;
/// use protime_webhooks::receive::{ReceiveCore, InvalidDeliveryPolicy, ContentTypePolicy};
/// use protime_webhooks::signature::{sign, SignatureScheme, Verifier, WebhookKey};
/// use protime_webhooks::InMemorySink;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let key = WebhookKey::new("k").unwrap();
/// let verifier = Verifier::new(SignatureScheme::default(), [key.clone()]).unwrap();
/// let core = ReceiveCore::new(verifier, Arc::new(InMemorySink::default()));
/// let body = bytes::Bytes::from_static(br#"{"changeType":"Delete","data":{"changeVersion":"0A","id":7}}"#);
/// let headers = sign(&SignatureScheme::default(), &key, &body, None).unwrap();
/// let answer = core.handle(&headers, body).await;
/// assert_eq!(answer.status, 200);
/// assert_eq!(answer.body, r#"{"outcome":"applied"}"#);
/// # }
/// ```
#[derive(Clone)]
pub struct ReceiveCore {
    refusals: Arc<RefusalLog>,
    verifier: Verifier,
    sink: Arc<dyn DeliverySink>,
    invalid_delivery: InvalidDeliveryPolicy,
    content_type: ContentTypePolicy,
    profile: protime_model::Profile,
}

impl std::fmt::Debug for ReceiveCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveCore")
            .field("verifier", &self.verifier)
            .field("invalid_delivery", &self.invalid_delivery)
            .field("content_type", &self.content_type)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl ReceiveCore {
    /// A core with the default policies.
    pub fn new(verifier: Verifier, sink: Arc<dyn DeliverySink>) -> Self {
        Self {
            refusals: Arc::new(RefusalLog::new(REFUSAL_LOG_INTERVAL)),
            verifier,
            sink,
            invalid_delivery: InvalidDeliveryPolicy::default(),
            content_type: ContentTypePolicy::default(),
            profile: protime_model::Profile::Documented,
        }
    }

    /// Sets the validation profile of deliveries (default `Profile::Documented`: only what
    /// the Protime docs require is mandatory). Under `Profile::Strict`, an `InsertOrUpdate`
    /// without `person`, `date`, `timeOfDayInMinutes` or `kind` is invalid, and handled as
    /// [`Self::with_invalid_delivery`] says.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use protime_model::Profile;
    /// use protime_webhooks::receive::ReceiveCore;
    /// use protime_webhooks::signature::{sign, SignatureScheme, Verifier, WebhookKey};
    /// use protime_webhooks::InMemorySink;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let key = WebhookKey::new("k").unwrap();
    /// let verifier = Verifier::new(SignatureScheme::default(), [key.clone()]).unwrap();
    /// // The docs' delta example: only changeVersion, id and date.
    /// let body = bytes::Bytes::from_static(br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0B","id":1050,"date":"2024-12-02"}}"#);
    /// let headers = sign(&SignatureScheme::default(), &key, &body, None).unwrap();
    /// for (profile, outcome) in [(Profile::Documented, "applied"), (Profile::Strict, "dead_lettered")] {
    ///     let core = ReceiveCore::new(verifier.clone(), Arc::new(InMemorySink::default()))
    ///         .with_profile(profile);
    ///     assert_eq!(core.profile(), profile);
    ///     let answer = core.handle(&headers, body.clone()).await;
    ///     assert_eq!(answer.body, format!(r#"{{"outcome":"{outcome}"}}"#));
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn with_profile(mut self, profile: protime_model::Profile) -> Self {
        self.profile = profile;
        self
    }

    /// The validation profile of deliveries.
    pub fn profile(&self) -> protime_model::Profile {
        self.profile
    }

    /// Sets what happens to authentic but invalid deliveries.
    #[must_use]
    pub fn with_invalid_delivery(mut self, policy: InvalidDeliveryPolicy) -> Self {
        self.invalid_delivery = policy;
        self
    }

    /// Sets which content types are accepted.
    #[must_use]
    pub fn with_content_type(mut self, policy: ContentTypePolicy) -> Self {
        self.content_type = policy;
        self
    }

    /// Writes at most one warning about refused signatures per `interval` (default
    /// [`REFUSAL_LOG_INTERVAL`]), with the number refused since the previous one.
    #[must_use]
    pub fn with_refusal_log_interval(mut self, interval: std::time::Duration) -> Self {
        self.refusals = Arc::new(RefusalLog::new(interval));
        self
    }

    /// The verifier (clones share keys).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The content type policy, for adapters that check it before reading the body.
    pub fn content_type(&self) -> ContentTypePolicy {
        self.content_type
    }

    /// Handles one delivery whose body was read completely (within the server's limits).
    ///
    /// Every stored delivery is logged at `info` on the target [`DELIVERY_LOG_TARGET`] —
    /// clocking id, change type, kind, outcome and the time from here to the durable
    /// receipt — a live view of the receiver at work; filter that target out (e.g.
    /// `warn`) to keep production logs quiet.
    pub async fn handle(&self, headers: &HeaderMap, body: Bytes) -> Answer {
        let started = std::time::Instant::now();
        if let Err(rejection) = check_content_type(headers, self.content_type) {
            refused("content_type");
            return rejection.answer();
        }
        let verified = match self.verifier.verify(headers, &body) {
            Ok(verified) => verified,
            Err(error) => {
                refused("signature");
                if let Some(refused) = self.refusals.note(std::time::Instant::now()) {
                    tracing::warn!(refused, last_error = %error, "webhook deliveries refused: signature check failed ({refused} since the last report)");
                    // Parsed only here, at most once per interval: a well-formed delivery
                    // that no key verifies suggests a scheme that differs from the sender's.
                    if protime_model::parse_delivery(&body).is_ok() {
                        tracing::warn!(
                            "the last refused delivery is a well-formed clockings change: if every delivery is refused, the signature scheme may differ from Protime's — capture a few (`protime receive --capture DIR`) and run `protime doctor signature --key-file KEYS DIR/*.json`"
                        );
                    }
                }
                return Rejection::Unauthorized.answer();
            }
        };
        let change = protime_model::parse_delivery_with(&body, self.profile);
        let origin = WebhookOrigin::new(body, verified.key_fingerprint);
        let mut seen = SeenChange::default();
        let delivery = match change {
            Ok(change) => {
                tracing::debug!(id = %change.id(), version = %change.change_version(), "webhook delivery verified");
                seen = SeenChange::of(&change);
                Delivery::webhook(change, origin)
            }
            Err(errors) => match self.invalid_delivery {
                InvalidDeliveryPolicy::Reject => {
                    refused("invalid");
                    tracing::warn!(
                        violations = errors.len(),
                        "authentic webhook delivery rejected: invalid"
                    );
                    let body =
                        serde_json::json!({ "error": "invalid delivery", "violations": errors });
                    return Answer {
                        status: StatusCode::BAD_REQUEST,
                        body: body.to_string().into(),
                        receipt: None,
                    };
                }
                InvalidDeliveryPolicy::DeadLetterAndAcknowledge => {
                    tracing::warn!(violations = errors.len(), %errors, "authentic webhook delivery is invalid: dead-lettered");
                    Delivery::DeadLetter {
                        errors,
                        webhook: origin,
                    }
                }
            },
        };
        match self.sink.record(delivery).await {
            Ok(receipt) => {
                let elapsed = started.elapsed();
                metrics::counter!("protime_deliveries_total", "outcome" => receipt.name())
                    .increment(1);
                metrics::histogram!("protime_delivery_duration_seconds")
                    .record(elapsed.as_secs_f64());
                tracing::info!(
                    target: DELIVERY_LOG_TARGET,
                    id = seen.id,
                    change = seen.change_type,
                    kind = seen.kind,
                    outcome = receipt.name(),
                    // Hundredths of a millisecond: more digits are noise in a live view.
                    latency_ms = (elapsed.as_secs_f64() * 100_000.0).round() / 100.0,
                    "delivery"
                );
                Answer {
                    status: StatusCode::OK,
                    body: receipt_body(receipt).into(),
                    receipt: Some(receipt),
                }
            }
            Err(error) => {
                refused("not_stored");
                tracing::error!(%error, "webhook delivery not stored: answering 503 so that Protime retries");
                Answer {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body: r#"{"error":"delivery not stored, retry later"}"#.into(),
                    receipt: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod refusal_log_tests {
    use std::time::{Duration, Instant};

    use super::RefusalLog;

    #[test]
    fn a_flood_of_refusals_is_reported_once_per_interval_with_its_count() {
        let log = RefusalLog::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(log.note(start), Some(1));
        for n in 1..=999_u64 {
            assert_eq!(log.note(start + Duration::from_millis(n)), None);
        }
        assert_eq!(log.note(start + Duration::from_secs(10)), Some(1000));
        assert_eq!(log.note(start + Duration::from_secs(11)), None);
        assert_eq!(log.note(start + Duration::from_secs(20)), Some(2));
    }
}
