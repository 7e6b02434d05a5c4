//! The delivery sink contract (v2): where authentic deliveries and synced clockings go, and
//! how they are read back.
//!
//! - [`DeliverySink`] takes [`Delivery`] values one at a time ([`DeliverySink::record`]) or
//!   as a batch ([`DeliverySink::record_batch`], one transaction in a durable backend), and
//!   answers a [`Receipt`] each only once the delivery is durable: the receiver acknowledges
//!   Protime (2xx) right after, and Protime never sends it again.
//! - Every delivery says where it came from ([`Origin`]): a webhook (the raw body exactly as
//!   received and the fingerprint of the key that verified it) or a full sync (the page it was
//!   read from; no body is made up for it).
//! - [`SinkError`] says whether to retry ([`SinkErrorKind::Unavailable`]: the receiver
//!   answers 503 and Protime retries) or not ([`SinkErrorKind::Rejected`]), and keeps its
//!   source.
//! - [`SinkRead`] is the read side of sinks that keep state: the current clocking, the
//!   state of an id (tombstones included), a list by id, and a **change feed**: every applied
//!   change after a [`FeedCursor`], in commit order, resumable.
//! - The `conformance` module (feature `conformance`) is the test suite every backend runs.
//!
//! # Ordering
//! State is last-writer-wins per clocking id by `changeVersion` compared **byte by byte**
//! ([`protime_model::decide`]); a backend on a database must not compare with a collation
//! (PostgreSQL: `COLLATE "C"`). Deletions leave tombstones that keep their version.
//!
//! # Implementing a backend
//! Override [`DeliverySink::record_batch`] with one transaction per batch; make
//! read-decide-write atomic per clocking id when several writers share the database; give
//! the feed a cursor that a reader can never skip past an entry that commits later; and run
//! `conformance::run` in the backend's tests.

mod memory;
mod retention;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use protime_model::ordering::ApplyOutcome;
use protime_model::{ChangeVersion, Clocking, ClockingChange, ClockingId, ValidationErrors};

pub use memory::{InMemorySink, InMemoryStats};
pub use retention::{
    ErasureCounts, Purge, PurgeCounts, RETENTION_BATCH, erasure_change, names_person,
    retention_windows,
};

/// A boxed, `Send` future: what the sink traits return (object-safe, so that a receiver can
/// hold an `Arc<dyn DeliverySink>`).
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`DeliverySink::record_batch`] returns: one result per delivery, in order.
pub type BatchFuture<'a> = SinkFuture<'a, Vec<Result<Receipt, SinkError>>>;

/// A webhook delivery's provenance: the body exactly as received, nothing re-serialized.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookOrigin {
    /// The body exactly as received (verified against its signature).
    pub raw_body: Bytes,
    /// Non-secret fingerprint of the key that verified it.
    pub key_fingerprint: String,
    /// When the receiver got it.
    pub received_at: DateTime<Utc>,
}

impl WebhookOrigin {
    /// A webhook origin received now.
    ///
    /// ```
    /// use protime_webhooks::sink::WebhookOrigin;
    /// let origin = WebhookOrigin::new(bytes::Bytes::from_static(b"{}"), "eaa2ba0c");
    /// assert_eq!(origin.key_fingerprint, "eaa2ba0c");
    /// ```
    pub fn new(raw_body: Bytes, key_fingerprint: impl Into<String>) -> Self {
        Self {
            raw_body,
            key_fingerprint: key_fingerprint.into(),
            received_at: Utc::now(),
        }
    }
}

/// A synced clocking's provenance: which page of which sync run it was read from. Synced
/// items have no webhook body, and none is made up for them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncOrigin {
    /// Names the sync run (e.g. the webhook id it initializes); free text, shared by every
    /// item of the run.
    pub run: Arc<str>,
    /// Page number within the run, from 0.
    pub page: u64,
    /// When the page was read.
    pub received_at: DateTime<Utc>,
}

impl SyncOrigin {
    /// Page `page` of sync run `run`, read now.
    ///
    /// ```
    /// use protime_webhooks::sink::SyncOrigin;
    /// assert_eq!(SyncOrigin::new("webhook a7d8", 3).page, 3);
    /// ```
    pub fn new(run: impl Into<Arc<str>>, page: u64) -> Self {
        Self {
            run: run.into(),
            page,
            received_at: Utc::now(),
        }
    }
}

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A signed webhook delivery.
    Webhook(WebhookOrigin),
    /// A page of a full sync (or an initial load).
    Sync(SyncOrigin),
}

impl Origin {
    /// `"webhook"` or `"sync"`: the name stores keep.
    ///
    /// ```
    /// use protime_webhooks::sink::{Origin, SyncOrigin};
    /// assert_eq!(Origin::Sync(SyncOrigin::new("r", 0)).kind(), "sync");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Sync(_) => "sync",
        }
    }

    /// When the delivery was received or the page read.
    pub fn received_at(&self) -> DateTime<Utc> {
        match self {
            Self::Webhook(origin) => origin.received_at,
            Self::Sync(origin) => origin.received_at,
        }
    }
}

/// One thing to record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Delivery {
    /// A valid change, from a webhook or a sync.
    Change {
        /// The validated change.
        change: ClockingChange,
        /// Where it came from.
        origin: Origin,
    },
    /// An authentic webhook delivery that failed validation, kept for inspection and
    /// replay. Only webhooks dead-letter: they are the only origin with a body to keep.
    DeadLetter {
        /// Why it was rejected.
        errors: ValidationErrors,
        /// The delivery, body exactly as received.
        webhook: WebhookOrigin,
    },
}

impl Delivery {
    /// A change from a webhook.
    ///
    /// ```
    /// use protime_webhooks::sink::{Delivery, WebhookOrigin};
    /// let body = br#"{"changeType":"Delete","data":{"changeVersion":"0A","id":7}}"#;
    /// let change = protime_model::parse_delivery(body).unwrap();
    /// let delivery = Delivery::webhook(change, WebhookOrigin::new(bytes::Bytes::from_static(body), "k1"));
    /// assert!(matches!(delivery, Delivery::Change { .. }));
    /// ```
    pub fn webhook(change: ClockingChange, origin: WebhookOrigin) -> Self {
        Self::Change {
            change,
            origin: Origin::Webhook(origin),
        }
    }

    /// A clocking read by a sync, as an `InsertOrUpdate`.
    pub fn synced(clocking: Clocking, origin: SyncOrigin) -> Self {
        Self::Change {
            change: ClockingChange::InsertOrUpdate(clocking),
            origin: Origin::Sync(origin),
        }
    }

    /// The change, when this is one.
    pub fn change(&self) -> Option<&ClockingChange> {
        match self {
            Self::Change { change, .. } => Some(change),
            Self::DeadLetter { .. } => None,
        }
    }
}

/// What a sink did with a delivery. Returned only once the delivery is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Receipt {
    /// A state-keeping sink applied the change by the ordering rule (see [`ApplyOutcome`]).
    Applied(ApplyOutcome),
    /// A log-only sink (e.g. a message stream) appended the change without deciding it
    /// against a current state: an honest "stored", not an ordering verdict.
    Appended,
    /// The dead letter was stored.
    DeadLettered,
}

impl Receipt {
    /// A short name: `applied`, `duplicate`, `stale`, `appended` or `dead_lettered`.
    ///
    /// ```
    /// use protime_model::ApplyOutcome;
    /// use protime_webhooks::sink::Receipt;
    /// assert_eq!(Receipt::Applied(ApplyOutcome::Stale).name(), "stale");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Applied(ApplyOutcome::Applied) => "applied",
            Self::Applied(ApplyOutcome::Duplicate) => "duplicate",
            Self::Applied(ApplyOutcome::Stale) => "stale",
            Self::Appended => "appended",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// Whether a failed record may succeed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SinkErrorKind {
    /// Not stored now (database down, disk full, lock timeout, store closed): retry later.
    /// The receiver answers 503 so that Protime retries.
    Unavailable,
    /// Can never be stored as it is (e.g. too large for the backend, or an operation the
    /// sink does not support). Retrying the same input fails the same way.
    Rejected,
}

/// Error of a sink: the delivery was not made durable and must not be acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", match .kind { SinkErrorKind::Unavailable => "sink unavailable", SinkErrorKind::Rejected => "rejected by the sink" })]
#[non_exhaustive]
pub struct SinkError {
    /// Whether to retry.
    pub kind: SinkErrorKind,
    /// What went wrong (never contains a key or a body).
    pub message: String,
    /// The backend's error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl SinkError {
    /// A transient failure: retry later.
    ///
    /// ```
    /// use protime_webhooks::sink::{SinkError, SinkErrorKind};
    /// let error = SinkError::unavailable("database is locked");
    /// assert!(error.is_retryable());
    /// assert_eq!(error.to_string(), "sink unavailable: database is locked");
    /// ```
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            kind: SinkErrorKind::Unavailable,
            message: message.into(),
            source: None,
        }
    }

    /// A permanent failure for this input.
    ///
    /// ```
    /// use protime_webhooks::sink::SinkError;
    /// assert!(!SinkError::rejected("too large").is_retryable());
    /// ```
    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            kind: SinkErrorKind::Rejected,
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` as the cause.
    ///
    /// ```
    /// use std::error::Error as _;
    /// use protime_webhooks::sink::SinkError;
    /// let io = std::io::Error::other("disk full");
    /// let error = SinkError::unavailable("commit failed").with_source(io);
    /// assert_eq!(error.source().unwrap().to_string(), "disk full");
    /// ```
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Whether the same delivery may be stored by a later attempt.
    pub fn is_retryable(&self) -> bool {
        self.kind == SinkErrorKind::Unavailable
    }
}

/// Destination of deliveries. Every `Ok` receipt means *durable*: for a persistent sink,
/// committed; the receiver answers 2xx right after, and 5xx on error so Protime retries.
pub trait DeliverySink: Send + Sync + 'static {
    /// Records one delivery.
    fn record(&self, delivery: Delivery) -> SinkFuture<'_, Result<Receipt, SinkError>>;

    /// Records a batch, in order: the result has one entry per delivery, in the same order,
    /// and each `Ok` is durable once the future resolves. Changes of the same id within a
    /// batch are applied in batch order. The default records one at a time; a database
    /// backend overrides it with one transaction (one sync to disk) for the whole batch.
    fn record_batch(&self, deliveries: Vec<Delivery>) -> BatchFuture<'_> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(deliveries.len());
            for delivery in deliveries {
                results.push(self.record(delivery).await);
            }
            results
        })
    }
}

/// The stored state of one clocking id: its last applied version, and the clocking as of
/// that version (`None`: a tombstone).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClockingState {
    /// Version of the last applied change.
    pub change_version: ChangeVersion,
    /// The clocking, or `None` when the last applied change removed it.
    pub clocking: Option<Clocking>,
}

impl ClockingState {
    /// A state.
    pub fn new(change_version: ChangeVersion, clocking: Option<Clocking>) -> Self {
        Self {
            change_version,
            clocking,
        }
    }
}

/// Position in a change feed. `FeedCursor::START` is before the first entry; each entry
/// carries its own cursor, and reading "after" it resumes right behind it. Opaque: compare
/// cursors of one store only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeedCursor(pub u64);

impl FeedCursor {
    /// Before the first entry.
    pub const START: Self = Self(0);
}

/// One applied change in a feed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FeedEntry {
    /// This entry's position: pass it to [`SinkRead::changes`] to read what follows.
    pub cursor: FeedCursor,
    /// The change that became the current state of its clocking.
    pub change: ClockingChange,
    /// `"webhook"` or `"sync"` (see [`Origin::kind`]).
    pub origin: &'static str,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

impl FeedEntry {
    /// An entry.
    pub fn new(
        cursor: FeedCursor,
        change: ClockingChange,
        origin: &'static str,
        received_at: DateTime<Utc>,
    ) -> Self {
        Self {
            cursor,
            change,
            origin,
            received_at,
        }
    }
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct FeedPage {
    /// Applied changes in commit order.
    pub entries: Vec<FeedEntry>,
    /// Where to continue: the last entry's cursor, or the requested one when empty.
    pub next: FeedCursor,
}

impl FeedPage {
    /// A page; `next` is the last entry's cursor, or `after` when there is none.
    pub fn new(entries: Vec<FeedEntry>, after: FeedCursor) -> Self {
        let next = entries.last().map_or(after, |e| e.cursor);
        Self { entries, next }
    }
}

/// The change a backend's log entry holds, read back: the webhook body exactly as received,
/// or — for a synced item, which has no body — the change as the backend serialized it
/// (`serde_json` of [`ClockingChange`]). Either is parsed again through
/// [`protime_model::parse_delivery`] (the default, documented profile, which accepts whatever
/// the strict one accepted), so what a store returns meets the current rules; a synced
/// item's `change_json` through [`protime_model::parse_stored_change`], the same rules
/// except that its clocking may lack `changeVersion` (one the API listed without it, whose
/// version is [`protime_model::ChangeVersion::absent`]). The error says what is wrong, for
/// the backend to report with the entry's position.
///
/// ```
/// use protime_webhooks::sink::stored_change;
/// let body = br#"{"changeType":"Delete","data":{"changeVersion":"0A","id":7}}"#;
/// assert_eq!(stored_change(Some(body), None).unwrap().id().get(), 7);
/// assert!(stored_change(None, None).is_err());
/// // A `change_json` written before the validation profiles (every field present) and one
/// // of a partial clocking (valid under the default profile) both read back.
/// let old = r#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0A","id":8,"person":{"id":1},"date":"2026-01-15","timeOfDayInMinutes":480,"kind":"InOut"}}"#;
/// let read = stored_change(None, Some(old)).unwrap();
/// assert_eq!(serde_json::to_string(&read).unwrap(), old);
/// let partial = r#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0B","id":9,"date":"2026-01-15"}}"#;
/// assert_eq!(serde_json::to_string(&stored_change(None, Some(partial)).unwrap()).unwrap(), partial);
/// // A clocking synced without a changeVersion reads back with the absent version; a
/// // webhook body without one is refused.
/// let unversioned = r#"{"changeType":"InsertOrUpdate","data":{"id":10,"date":"2026-01-15"}}"#;
/// assert!(stored_change(None, Some(unversioned)).unwrap().change_version().is_absent());
/// assert!(stored_change(Some(unversioned.as_bytes()), None).is_err());
/// ```
pub fn stored_change(
    raw_body: Option<&[u8]>,
    change_json: Option<&str>,
) -> Result<ClockingChange, String> {
    let read = match (raw_body, change_json) {
        (Some(body), _) => protime_model::parse_delivery(body),
        (None, Some(json)) => protime_model::parse_stored_change(json.as_bytes()),
        (None, None) => return Err("neither raw_body nor change_json".into()),
    };
    read.map_err(|errors| format!("the stored change is not valid: {errors}"))
}

/// The read side of a state-keeping sink.
pub trait SinkRead: Send + Sync + 'static {
    /// The clocking with this id, if it currently exists (not deleted).
    fn clocking(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<Clocking>, SinkError>>;

    /// The stored state of this id, tombstones included; `None` if never seen.
    fn state(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<ClockingState>, SinkError>>;

    /// Existing clockings with an id above `after` (all when `None`), by id, at most
    /// `limit` of them. Page through with the last id returned.
    fn list(
        &self,
        after: Option<ClockingId>,
        limit: usize,
    ) -> SinkFuture<'_, Result<Vec<Clocking>, SinkError>>;

    /// Applied changes after `after`, in commit order, at most `limit`. Every applied change
    /// appears exactly once, and a change that commits after a reader passed a cursor always
    /// appears after that cursor (no gaps under concurrent writers).
    fn changes(
        &self,
        after: FeedCursor,
        limit: usize,
    ) -> SinkFuture<'_, Result<FeedPage, SinkError>>;
}

#[cfg(feature = "conformance")]
pub mod conformance;
