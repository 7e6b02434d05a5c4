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

/// A sink that keeps the current state in memory: for tests, benchmarks and consumers that
/// persist elsewhere. Nothing survives a restart.
///
/// By default it keeps the current clockings and counts, so its memory follows the number of
/// clockings, not the number of deliveries. [`Self::recording`] also keeps every change and
/// dead letter in arrival order, for tests.
#[derive(Debug, Clone, Default)]
pub struct InMemorySink {
    inner: Arc<Mutex<InMemoryState>>,
}

/// Counts of what an [`InMemorySink`] recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InMemoryStats {
    /// Changes that became the current state of their clocking.
    pub applied: u64,
    /// Redeliveries (same id and version as before).
    pub duplicates: u64,
    /// Changes older than the current state of their clocking.
    pub stale: u64,
    /// Authentic deliveries that failed validation.
    pub dead_letters: u64,
}

#[derive(Debug, Default)]
struct InMemoryState {
    tracker: InMemoryTracker,
    stats: InMemoryStats,
    recording: bool,
    change_log: Vec<ClockingChange>,
    dead_letters: Vec<(Vec<u8>, ValidationErrors)>,
}

impl InMemorySink {
    /// A sink that also keeps every change and dead letter it receives (memory grows with
    /// every delivery: for tests).
    pub fn recording() -> Self {
        Self {
            inner: Arc::new(Mutex::new(InMemoryState {
                recording: true,
                ..InMemoryState::default()
            })),
        }
    }

    /// What was recorded so far.
    pub fn stats(&self) -> InMemoryStats {
        self.lock().stats
    }

    /// A snapshot of the current state.
    pub fn tracker(&self) -> InMemoryTracker {
        self.lock().tracker.clone()
    }

    /// Every change recorded, in arrival order (duplicates and stale ones included); empty
    /// unless the sink was made with [`Self::recording`].
    pub fn change_log(&self) -> Vec<ClockingChange> {
        self.lock().change_log.clone()
    }

    /// Every dead letter recorded, in arrival order; empty unless the sink was made with
    /// [`Self::recording`] (see [`Self::stats`] for the count).
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
                    match outcome {
                        ApplyOutcome::Applied => state.stats.applied += 1,
                        ApplyOutcome::Duplicate => state.stats.duplicates += 1,
                        ApplyOutcome::Stale => state.stats.stale += 1,
                    }
                    if state.recording {
                        state.change_log.push(change);
                    }
                    RecordOutcome::Change(outcome)
                }
                Record::DeadLetter { raw_body, errors } => {
                    state.stats.dead_letters += 1;
                    if state.recording {
                        state.dead_letters.push((raw_body, errors));
                    }
                    RecordOutcome::DeadLettered
                }
            }
        };
        Box::pin(std::future::ready(Ok(outcome)))
    }
}
