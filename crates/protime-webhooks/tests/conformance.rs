//! The sink conformance suite against the in-memory sink, and against deliberately broken
//! backends, to show that the suite catches what it is there to catch.
#![cfg(feature = "conformance")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use protime_model::ordering::ApplyOutcome;
use protime_model::{ChangeVersion, Clocking, ClockingChange, ClockingId};
use protime_webhooks::sink::conformance::{self, CHECKS};
use protime_webhooks::sink::{
    BatchFuture, ClockingState, Delivery, DeliverySink, FeedCursor, FeedEntry, FeedPage,
    InMemorySink, Receipt, SinkError, SinkFuture, SinkRead,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_sink_conforms() {
    if let Err(failures) = conformance::run(|| async { Arc::new(InMemorySink::recording()) }).await
    {
        panic!("{failures}");
    }
}

/// How a broken backend compares versions.
#[derive(Clone, Copy)]
enum Comparison {
    /// Case-insensitive, as a database collation might.
    CaseInsensitive,
    /// Byte order, but the batch entry point forgets the ordering rule (last write wins).
    BatchOverwrites,
    /// Byte order, but a clocking listed without a `changeVersion` always overwrites (as if
    /// every sync refreshed it, or as a backend storing NULL for it might).
    UnversionedOverwrites,
}

/// A small state-keeping sink whose only bug is the chosen [`Comparison`].
struct BrokenSink {
    comparison: Comparison,
    state: Mutex<BrokenState>,
}

#[derive(Default)]
struct BrokenState {
    entries: BTreeMap<ClockingId, (ChangeVersion, Option<Clocking>)>,
    feed: Vec<FeedEntry>,
}

impl BrokenSink {
    fn new(comparison: Comparison) -> Self {
        Self {
            comparison,
            state: Mutex::new(BrokenState::default()),
        }
    }

    fn apply(&self, delivery: Delivery, in_batch: bool) -> Receipt {
        let Delivery::Change { change, origin } = delivery else {
            return Receipt::DeadLettered;
        };
        let mut state = self.state.lock().unwrap();
        let known = state.entries.get(&change.id()).map(|(v, _)| v.clone());
        let incoming = change.change_version();
        let outcome = match (self.comparison, known) {
            (_, None) => ApplyOutcome::Applied,
            (Comparison::BatchOverwrites, Some(_)) if in_batch => ApplyOutcome::Applied,
            (Comparison::UnversionedOverwrites, Some(_)) if incoming.is_absent() => {
                ApplyOutcome::Applied
            }
            (Comparison::CaseInsensitive, Some(known)) => {
                let (a, b) = (
                    incoming.as_str().to_lowercase(),
                    known.as_str().to_lowercase(),
                );
                if a > b {
                    ApplyOutcome::Applied
                } else if a == b {
                    ApplyOutcome::Duplicate
                } else {
                    ApplyOutcome::Stale
                }
            }
            (Comparison::BatchOverwrites | Comparison::UnversionedOverwrites, Some(known)) => {
                protime_model::decide(Some(&known), incoming)
            }
        };
        if outcome == ApplyOutcome::Applied {
            let clocking = match &change {
                ClockingChange::InsertOrUpdate(c) if !c.is_deleted() => Some(c.clone()),
                _ => None,
            };
            state
                .entries
                .insert(change.id(), (incoming.clone(), clocking));
            let cursor = FeedCursor(state.feed.len() as u64 + 1);
            state.feed.push(FeedEntry::new(
                cursor,
                change,
                origin.kind(),
                origin.received_at(),
            ));
        }
        Receipt::Applied(outcome)
    }
}

impl DeliverySink for BrokenSink {
    fn record(&self, delivery: Delivery) -> SinkFuture<'_, Result<Receipt, SinkError>> {
        let receipt = self.apply(delivery, false);
        Box::pin(std::future::ready(Ok(receipt)))
    }

    fn record_batch(&self, deliveries: Vec<Delivery>) -> BatchFuture<'_> {
        let receipts = deliveries
            .into_iter()
            .map(|d| Ok(self.apply(d, true)))
            .collect();
        Box::pin(std::future::ready(receipts))
    }
}

impl SinkRead for BrokenSink {
    fn clocking(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<Clocking>, SinkError>> {
        let state = self.state.lock().unwrap();
        let clocking = state.entries.get(&id).and_then(|(_, c)| c.clone());
        Box::pin(std::future::ready(Ok(clocking)))
    }

    fn state(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<ClockingState>, SinkError>> {
        let state = self.state.lock().unwrap();
        let found = state
            .entries
            .get(&id)
            .map(|(v, c)| ClockingState::new(v.clone(), c.clone()));
        Box::pin(std::future::ready(Ok(found)))
    }

    fn list(
        &self,
        after: Option<ClockingId>,
        limit: usize,
    ) -> SinkFuture<'_, Result<Vec<Clocking>, SinkError>> {
        let state = self.state.lock().unwrap();
        let list = state
            .entries
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| **id > a))
            .filter_map(|(_, (_, c))| c.clone())
            .take(limit)
            .collect();
        Box::pin(std::future::ready(Ok(list)))
    }

    fn changes(
        &self,
        after: FeedCursor,
        limit: usize,
    ) -> SinkFuture<'_, Result<FeedPage, SinkError>> {
        let state = self.state.lock().unwrap();
        let entries = state
            .feed
            .iter()
            .filter(|e| e.cursor > after)
            .take(limit)
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(FeedPage::new(entries, after))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_comparing_versions_case_insensitively_fails() {
    let failures =
        conformance::run(|| async { Arc::new(BrokenSink::new(Comparison::CaseInsensitive)) })
            .await
            .expect_err("a case-insensitive comparison must fail the suite");
    assert!(
        failures.failed("versions_compare_byte_by_byte"),
        "{failures}"
    );
    assert!(
        failures.failed("concurrent_interleaved_deliveries_converge"),
        "{failures}"
    );
    // What it gets right still passes.
    assert!(!failures.failed("list_pages_by_id"), "{failures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_whose_batches_skip_the_ordering_rule_fails() {
    let failures =
        conformance::run(|| async { Arc::new(BrokenSink::new(Comparison::BatchOverwrites)) })
            .await
            .expect_err("batches that overwrite must fail the suite");
    assert!(failures.failed("batches_answer_in_order"), "{failures}");
    assert!(failures.failed("redelivery_is_idempotent"), "{failures}");
    assert!(
        !failures.failed("receipts_follow_the_ordering_rule"),
        "{failures}"
    );
    assert!(failures.0.len() < CHECKS.len(), "{failures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_letting_unversioned_clockings_overwrite_fails() {
    let failures =
        conformance::run(|| async { Arc::new(BrokenSink::new(Comparison::UnversionedOverwrites)) })
            .await
            .expect_err("an unversioned clocking that overwrites must fail the suite");
    assert!(
        failures.failed("unversioned_synced_clockings_order_first"),
        "{failures}"
    );
    // Only that check uses unversioned clockings.
    assert_eq!(failures.0.len(), 1, "{failures}");
}
