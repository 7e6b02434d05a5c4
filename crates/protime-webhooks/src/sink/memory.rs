//! [`InMemorySink`]: state in memory, for tests, benchmarks and consumers that persist
//! elsewhere.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protime_model::ordering::{ApplyOutcome, InMemoryTracker};
use protime_model::{Clocking, ClockingChange, ClockingId, ValidationErrors};

use super::{
    BatchFuture, ClockingState, Delivery, DeliverySink, FeedCursor, FeedEntry, FeedPage, Receipt,
    SinkError, SinkFuture, SinkRead,
};

/// A sink that keeps the current state in memory. Nothing survives a restart.
///
/// By default it keeps the current clockings, a version for every id ever seen (a deleted
/// clocking leaves a tombstone, so that an older update arriving late is still recognised as
/// stale) and counts: its memory follows the number of distinct ids, not the number of
/// deliveries. [`Self::recording`] also keeps every change and
/// dead letter in arrival order and the change feed, for tests (memory grows with every
/// delivery).
///
/// ```
/// use protime_webhooks::sink::{Delivery, DeliverySink, InMemorySink, Receipt, SinkRead, WebhookOrigin};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sink = InMemorySink::recording();
/// let body = br#"{"changeType":"Delete","data":{"changeVersion":"0A","id":7}}"#;
/// let change = protime_model::parse_delivery(body).unwrap();
/// let origin = WebhookOrigin::new(bytes::Bytes::from_static(body), "k1");
/// let receipt = sink.record(Delivery::webhook(change, origin)).await.unwrap();
/// assert_eq!(receipt, Receipt::Applied(protime_model::ApplyOutcome::Applied));
/// let feed = sink.changes(Default::default(), 10).await.unwrap();
/// assert_eq!(feed.entries.len(), 1);
/// # }
/// ```
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
    feed: Vec<FeedEntry>,
}

impl InMemoryState {
    fn record(&mut self, delivery: Delivery) -> Receipt {
        match delivery {
            Delivery::Change { change, origin } => {
                let outcome = self.tracker.apply(&change);
                match outcome {
                    ApplyOutcome::Applied => self.stats.applied += 1,
                    ApplyOutcome::Duplicate => self.stats.duplicates += 1,
                    ApplyOutcome::Stale => self.stats.stale += 1,
                }
                if self.recording {
                    if outcome == ApplyOutcome::Applied {
                        let cursor = FeedCursor(self.feed.len() as u64 + 1);
                        self.feed.push(FeedEntry::new(
                            cursor,
                            change.clone(),
                            origin.kind(),
                            origin.received_at(),
                        ));
                    }
                    self.change_log.push(change);
                }
                Receipt::Applied(outcome)
            }
            Delivery::DeadLetter { errors, webhook } => {
                self.stats.dead_letters += 1;
                if self.recording {
                    self.dead_letters.push((webhook.raw_body.to_vec(), errors));
                }
                Receipt::DeadLettered
            }
        }
    }
}

impl InMemorySink {
    /// A sink that also keeps every change and dead letter it receives, and the change feed
    /// (memory grows with every delivery: for tests).
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

    fn lock(&self) -> MutexGuard<'_, InMemoryState> {
        // Each update is a handful of pushes and inserts that a panic cannot leave in a state
        // that matters here, so recover from poisoning.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl DeliverySink for InMemorySink {
    fn record(&self, delivery: Delivery) -> SinkFuture<'_, Result<Receipt, SinkError>> {
        let receipt = self.lock().record(delivery);
        Box::pin(std::future::ready(Ok(receipt)))
    }

    fn record_batch(&self, deliveries: Vec<Delivery>) -> BatchFuture<'_> {
        let mut state = self.lock();
        let receipts = deliveries
            .into_iter()
            .map(|delivery| Ok(state.record(delivery)))
            .collect();
        Box::pin(std::future::ready(receipts))
    }
}

impl SinkRead for InMemorySink {
    fn clocking(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<Clocking>, SinkError>> {
        let clocking = self.lock().tracker.get(id).cloned();
        Box::pin(std::future::ready(Ok(clocking)))
    }

    fn state(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<ClockingState>, SinkError>> {
        let state = self
            .lock()
            .tracker
            .tracked(id)
            .map(|e| ClockingState::new(e.change_version.clone(), e.clocking.clone()));
        Box::pin(std::future::ready(Ok(state)))
    }

    fn list(
        &self,
        after: Option<ClockingId>,
        limit: usize,
    ) -> SinkFuture<'_, Result<Vec<Clocking>, SinkError>> {
        let clockings = self
            .lock()
            .tracker
            .current()
            .filter(|c| after.is_none_or(|after| c.id > after))
            .take(limit)
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(clockings)))
    }

    fn changes(
        &self,
        after: FeedCursor,
        limit: usize,
    ) -> SinkFuture<'_, Result<FeedPage, SinkError>> {
        let state = self.lock();
        let result = if state.recording {
            let start = usize::try_from(after.0).unwrap_or(usize::MAX);
            let entries = state
                .feed
                .get(start..)
                .unwrap_or_default()
                .iter()
                .take(limit)
                .cloned()
                .collect();
            Ok(FeedPage::new(entries, after))
        } else {
            Err(SinkError::rejected(
                "this InMemorySink keeps no change feed; make it with InMemorySink::recording()",
            ))
        };
        Box::pin(std::future::ready(result))
    }
}
