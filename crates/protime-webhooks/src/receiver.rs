//! The axum adapter of the receive core (feature `axum`): a ready [`router`], and the
//! [`VerifiedDelivery`] extractor for your own handlers. The adapter reads the body within
//! the limit and the deadline; [`crate::receive::ReceiveCore`] does the rest.
//!
//! For every POST it enforces, in this order: a JSON content type (415), a body limit (413,
//! before reading when `Content-Length` says so), a cap on bodies read at once and a budget
//! of buffered bytes (503 with `Retry-After`), a read deadline against slow senders (408),
//! the HMAC signature over the raw body (401,
//! with no detail that would help a forger), then validation. A valid change goes to the
//! [`DeliverySink`]; an authentic but invalid delivery is, by default, stored as a dead
//! letter and acknowledged, so Protime does not retry it until it disables the webhook. The
//! receiver answers 2xx only after the sink reports the delivery durable, and 503 when the
//! sink fails (whatever the [`SinkErrorKind`](crate::sink::SinkErrorKind): an unstored
//! delivery is never acknowledged), so that Protime retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::BodyExt as _;

use std::borrow::Cow;

use protime_model::{ClockingChange, ValidationErrors};

use crate::receive::{Answer, ReceiveCore, check_content_type};
pub use crate::receive::{ContentTypePolicy, InvalidDeliveryPolicy, Rejection};
use crate::signature::Verifier;
use crate::sink::DeliverySink;

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
    /// Most request bodies being read at once (every body is read before its signature can
    /// be checked, so these are unauthenticated); more get 503 with `Retry-After`. Default
    /// 128.
    pub max_concurrent_body_reads: usize,
    /// Most bytes of request bodies held at once, by every router built from this
    /// configuration (clones share the count); a body that would go over gets 503 with
    /// `Retry-After`. Bytes are counted as they arrive, and released when the delivery has
    /// been answered. Default 16 MiB.
    pub max_buffered_bytes: usize,
    /// What is being read and held now.
    budget: Arc<BodyBudget>,
    /// Sees every request whose body was read (see [`Self::with_observer`]).
    observer: Option<RequestObserver>,
    /// How deliveries are validated (see [`Self::with_profile`]).
    profile: protime_model::Profile,
}

/// Sees each request the [`router`] has read — method, URI, headers and the raw body,
/// before the signature is checked — e.g. to capture deliveries for diagnosis (`protime
/// receive --capture DIR`). It runs on the request's task: keep it short.
#[derive(Clone)]
pub struct RequestObserver(Arc<ObserveFn>);

/// What a [`RequestObserver`] calls.
type ObserveFn = dyn Fn(&axum::http::request::Parts, &Bytes) + Send + Sync;

impl RequestObserver {
    /// Wraps `observe`.
    pub fn new(
        observe: impl Fn(&axum::http::request::Parts, &Bytes) + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(observe))
    }
}

impl std::fmt::Debug for RequestObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestObserver")
    }
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            read_timeout: Duration::from_secs(10),
            invalid_delivery: InvalidDeliveryPolicy::default(),
            content_type: ContentTypePolicy::default(),
            max_concurrent_body_reads: 128,
            max_buffered_bytes: 16 * 1024 * 1024,
            budget: Arc::default(),
            observer: None,
            profile: protime_model::Profile::Documented,
        }
    }
}

/// Bodies being read, and bytes held, now.
#[derive(Debug, Default)]
struct BodyBudget {
    reads: AtomicUsize,
    bytes: AtomicUsize,
}

/// One body's share of the budget: its read slot (until the body is read) and its bytes
/// (until the delivery is answered).
#[derive(Debug)]
struct Reservation {
    budget: Arc<BodyBudget>,
    reading: bool,
    bytes: usize,
}

impl Reservation {
    fn start(config: &ReceiverConfig) -> Result<Self, Rejection> {
        let budget = Arc::clone(&config.budget);
        if budget.reads.fetch_add(1, Ordering::AcqRel) >= config.max_concurrent_body_reads {
            budget.reads.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejection::Overloaded);
        }
        Ok(Self {
            budget,
            reading: true,
            bytes: 0,
        })
    }

    /// Counts `more` bytes as held, unless that goes over `limit`.
    fn hold(&mut self, more: usize, limit: usize) -> Result<(), Rejection> {
        let before = self.budget.bytes.fetch_add(more, Ordering::AcqRel);
        if before.saturating_add(more) > limit {
            self.budget.bytes.fetch_sub(more, Ordering::AcqRel);
            return Err(Rejection::Overloaded);
        }
        self.bytes += more;
        Ok(())
    }

    fn done_reading(&mut self) {
        if std::mem::take(&mut self.reading) {
            self.budget.reads.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.done_reading();
        self.budget.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
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
    /// Shows every request whose body was read to `observer`, before the signature check.
    ///
    /// ```
    /// use protime_webhooks::receiver::{ReceiverConfig, RequestObserver};
    /// let config = ReceiverConfig::default().with_observer(RequestObserver::new(|parts, body| {
    ///     eprintln!("{} {} ({} bytes)", parts.method, parts.uri, body.len());
    /// }));
    /// # let _ = config;
    /// ```
    pub fn with_observer(mut self, observer: RequestObserver) -> Self {
        self.observer = Some(observer);
        self
    }
    /// Sets the validation profile of deliveries. The default, `Profile::Documented`,
    /// requires only what the Protime docs require (`changeType`, `data.id`,
    /// `data.changeVersion`); `Profile::Strict` also requires `person`, `date`,
    /// `timeOfDayInMinutes` and `kind`, and a delivery without them is handled as
    /// [`Self::invalid_delivery`] says (dead-lettered by default).
    ///
    /// ```
    /// use protime_model::Profile;
    /// use protime_webhooks::receiver::ReceiverConfig;
    /// assert_eq!(ReceiverConfig::default().profile(), Profile::Documented);
    /// let config = ReceiverConfig::default().with_profile(Profile::Strict);
    /// assert_eq!(config.profile(), Profile::Strict);
    /// ```
    pub fn with_profile(mut self, profile: protime_model::Profile) -> Self {
        self.profile = profile;
        self
    }
    /// The validation profile of deliveries (see [`Self::with_profile`]).
    pub fn profile(&self) -> protime_model::Profile {
        self.profile
    }
    /// Sets [`Self::max_concurrent_body_reads`] (at least 1).
    pub fn with_max_concurrent_body_reads(mut self, reads: usize) -> Self {
        self.max_concurrent_body_reads = reads.max(1);
        self
    }
    /// Sets [`Self::max_buffered_bytes`] (at least the body limit, so that one largest body
    /// always fits).
    pub fn with_max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes.max(self.body_limit);
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
#[derive(Clone, Debug)]
pub struct ReceiverState {
    core: ReceiveCore,
    config: Arc<ReceiverConfig>,
}

impl FromRef<ReceiverState> for VerificationState {
    fn from_ref(state: &ReceiverState) -> Self {
        VerificationState {
            verifier: state.core.verifier().clone(),
            config: Arc::clone(&state.config),
        }
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

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = self.answer().into_response();
        if self == Self::Overloaded {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            match self.body {
                Cow::Borrowed(body) => Body::from(body),
                Cow::Owned(body) => Body::from(body),
            },
        )
            .into_response()
    }
}

/// Reads the whole body within the limit, the deadline and the budget; the returned
/// reservation holds the body's bytes in the budget until it is dropped.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    config: &ReceiverConfig,
) -> Result<(Bytes, Reservation), Rejection> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > config.body_limit as u64) {
        return Err(Rejection::PayloadTooLarge);
    }
    let mut reservation = Reservation::start(config)?;
    let mut limited = http_body_util::Limited::new(body, config.body_limit);
    let mut collected = bytes::BytesMut::new();
    let read = async {
        while let Some(frame) = limited.frame().await {
            let frame = frame.map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    Rejection::PayloadTooLarge
                } else {
                    tracing::debug!(%error, "webhook body could not be read");
                    Rejection::UnreadableBody
                }
            })?;
            if let Ok(data) = frame.into_data() {
                reservation.hold(data.len(), config.max_buffered_bytes)?;
                collected.extend_from_slice(&data);
            }
        }
        Ok::<_, Rejection>(())
    };
    match tokio::time::timeout(config.read_timeout, read).await {
        Err(_) => Err(Rejection::RequestTimeout),
        Ok(Err(rejection)) => Err(rejection),
        Ok(Ok(())) => {
            reservation.done_reading();
            Ok((collected.freeze(), reservation))
        }
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
        let (raw_body, _reservation) = read_body(body, &parts.headers, &state.config).await?;
        let verified = state
            .verifier
            .verify(&parts.headers, &raw_body)
            .map_err(|error| {
                tracing::warn!(%error, "webhook delivery refused: signature check failed");
                Rejection::Unauthorized
            })?;
        let change = protime_model::parse_delivery_with(&raw_body, state.config.profile);
        Ok(Self {
            raw_body,
            change,
            key_fingerprint: verified.key_fingerprint,
        })
    }
}

async fn receive(State(state): State<ReceiverState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(rejection) = check_content_type(&parts.headers, state.core.content_type()) {
        return rejection.into_response();
    }
    match read_body(body, &parts.headers, &state.config).await {
        Ok((body, reservation)) => {
            if let Some(observer) = &state.config.observer {
                (observer.0)(&parts, &body);
            }
            let answer = state.core.handle(&parts.headers, body).await;
            // The body's bytes count against the budget until it is answered.
            drop(reservation);
            answer.into_response()
        }
        Err(rejection) => rejection.into_response(),
    }
}

/// A router that receives deliveries with `POST /` (nest it where your destination URL
/// points) and hands them to `sink`.
///
/// ```no_run
/// use std::sync::Arc;
/// use protime_webhooks::receiver::{router, ReceiverConfig};
/// use protime_webhooks::signature::{SignatureScheme, Verifier, WebhookKey};
/// use protime_webhooks::InMemorySink; // or protime_store_sqlite::SqliteStore
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let verifier = Verifier::new(SignatureScheme::default(), [WebhookKey::new("key from create")?])?;
/// let store = InMemorySink::default();
/// let app = axum::Router::new().nest("/protime/clockings", router(verifier, ReceiverConfig::default(), Arc::new(store)));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app).await?;
/// # Ok(())
/// # }
/// ```
pub fn router(verifier: Verifier, config: ReceiverConfig, sink: Arc<dyn DeliverySink>) -> Router {
    let core = ReceiveCore::new(verifier, sink)
        .with_invalid_delivery(config.invalid_delivery)
        .with_content_type(config.content_type)
        .with_profile(config.profile);
    let state = ReceiverState {
        core,
        config: Arc::new(config),
    };
    Router::new().route("/", post(receive)).with_state(state)
}
