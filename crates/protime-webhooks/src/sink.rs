//! Where the receiver hands authentic deliveries: a [`DeliverySink`] must make a delivery
//! durable (or, for the in-memory sink, recorded) before it returns, because the receiver
//! acknowledges Protime only after that.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::error::ValidationErrors;
use crate::model::ClockingChange;
use crate::tracker::{ApplyOutcome, InMemoryTracker};

/// One authentic delivery, as the receiver hands it over.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Record {
    /// A valid change.
    Change {
        /// The validated change.
        change: ClockingChange,
        /// The body exactly as received.
        raw_body: Vec<u8>,
    },
    /// An authentic delivery that failed validation, kept for inspection and replay.
    DeadLetter {
        /// The body exactly as received.
        raw_body: Vec<u8>,
        /// Why it was rejected.
        errors: ValidationErrors,
    },
}

/// What a sink did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordOutcome {
    /// The change was applied (see [`ApplyOutcome`]); it is in the change log either way.
    Change(ApplyOutcome),
    /// The dead letter was stored.
    DeadLettered,
}

/// Error of a sink: the delivery was not made durable and must not be acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("the delivery could not be stored: {message}")]
#[non_exhaustive]
pub struct SinkError {
    /// What went wrong (never contains a key).
    pub message: String,
}

impl SinkError {
    /// A sink error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The future a sink returns.
pub type SinkFuture<'a> =
    Pin<Box<dyn Future<Output = Result<RecordOutcome, SinkError>> + Send + 'a>>;

/// Destination of authentic deliveries. `record` resolves only once the record is durable
/// (for a persistent sink: committed); the receiver answers 2xx after that and 5xx on error,
/// so Protime retries.
pub trait DeliverySink: Send + Sync + 'static {
    /// Records one delivery.
    fn record(&self, record: Record) -> SinkFuture<'_>;
}

/// A sink that keeps state in memory: for tests, benchmarks and consumers that persist
/// elsewhere. Nothing survives a restart.
#[derive(Debug, Clone, Default)]
pub struct InMemorySink {
    inner: Arc<Mutex<InMemoryState>>,
}

#[derive(Debug, Default)]
struct InMemoryState {
    tracker: InMemoryTracker,
    change_log: Vec<ClockingChange>,
    dead_letters: Vec<(Vec<u8>, ValidationErrors)>,
}

impl InMemorySink {
    /// A snapshot of the current state.
    pub fn tracker(&self) -> InMemoryTracker {
        self.lock().tracker.clone()
    }

    /// Every change recorded, in arrival order (duplicates and stale ones included).
    pub fn change_log(&self) -> Vec<ClockingChange> {
        self.lock().change_log.clone()
    }

    /// Every dead letter recorded, in arrival order.
    pub fn dead_letters(&self) -> Vec<(Vec<u8>, ValidationErrors)> {
        self.lock().dead_letters.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InMemoryState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters here (each update is a single push/insert), so recover from poisoning.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl DeliverySink for InMemorySink {
    fn record(&self, record: Record) -> SinkFuture<'_> {
        let outcome = {
            let mut state = self.lock();
            match record {
                Record::Change { change, .. } => {
                    let outcome = state.tracker.apply(&change);
                    state.change_log.push(change);
                    RecordOutcome::Change(outcome)
                }
                Record::DeadLetter { raw_body, errors } => {
                    state.dead_letters.push((raw_body, errors));
                    RecordOutcome::DeadLettered
                }
            }
        };
        Box::pin(std::future::ready(Ok(outcome)))
    }
}
