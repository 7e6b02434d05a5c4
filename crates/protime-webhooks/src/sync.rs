//! The full sync (initial load) of clockings into a sink (feature `subscription`): pages
//! fetched with `protime-client`, written in batches that overlap the next fetch.

use std::sync::Arc;

use futures_util::StreamExt as _;
use futures_util::future::{Either, select};
use protime_client::{ClockingPage, ClockingsFilter, ExternalReference, ProtimeClient};
use protime_model::ordering::ApplyOutcome;

use crate::sink::{BatchFuture, Delivery, DeliverySink, Receipt, SinkError, SyncOrigin};
use crate::subscription::Error;

/// How many synced clockings are gathered for one [`DeliverySink::record_batch`]: pages that
/// arrive while a batch commits are added while fewer than this many are waiting, so a batch
/// holds at most this many plus one page; a slow disk gets fewer, larger transactions, and
/// the sync's memory stays bounded.
pub const MAX_SYNC_BATCH: usize = 5_000;

/// Running totals of a full sync, reported after each committed batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncProgress {
    /// Pages committed.
    pub pages: u64,
    /// Valid clockings read and committed.
    pub synced: u64,
    /// Of those, how many changed the local state.
    pub applied: u64,
    /// Of those, how many were older than (or equal to) what the sink had.
    pub not_newer: u64,
    /// Items that failed validation (each is also logged).
    pub invalid: u64,
    /// Of the synced clockings, how many the API listed without a `changeVersion` (as the
    /// docs' list example does): applied with [`ChangeVersion::absent`], which orders
    /// before every real version, so such a row is stored when its id is new, never
    /// overwrites a versioned state, and is not refreshed by a later sync (a second absent
    /// version is a duplicate), only by a versioned change (a webhook event, a delta
    /// change).
    ///
    /// [`ChangeVersion::absent`]: protime_model::ChangeVersion::absent
    pub unversioned: u64,
}

/// Called with the running totals after each committed batch.
pub type ProgressFn = Arc<dyn Fn(SyncProgress) + Send + Sync>;

/// What the sync loop waited for.
enum Event {
    Page(Option<Result<ClockingPage, protime_client::Error>>),
    Committed(Vec<Result<Receipt, SinkError>>),
}

/// The full sync of `filter` into `sink`, in batches: the pages that arrive while one batch
/// commits (at least one page; see [`MAX_SYNC_BATCH`] for the bound) form the next
/// [`DeliverySink::record_batch`] — one transaction in a durable sink — so fetching and
/// committing overlap and memory stays bounded whatever the tenant size. Items are tagged
/// [`Origin::Sync`](crate::sink::Origin::Sync) with `run` and their page.
///
/// ```no_run
/// # async fn run(client: protime_client::ProtimeClient, filter: protime_client::ClockingsFilter)
/// #              -> Result<(), protime_webhooks::subscription::Error> {
/// use protime_webhooks::subscription::sync;
/// let sink = protime_webhooks::InMemorySink::default();
/// let totals = sync(&client, &filter, &sink, "manual sync", None).await?;
/// println!("{} clockings in {} pages, {} applied", totals.synced, totals.pages, totals.applied);
/// # Ok(()) }
/// ```
pub async fn sync(
    client: &ProtimeClient,
    filter: &ClockingsFilter,
    sink: &dyn DeliverySink,
    run: &str,
    progress: Option<&ProgressFn>,
) -> Result<SyncProgress, Error> {
    sync_with_references(client, filter, &[], sink, run, progress).await
}

/// [`sync`] asking for external references on every page
/// (`?externalReferences=(people,@badge-number)…`), so that the synced rows carry the same
/// `externalReferences` as the events of a webhook created with the same references.
/// [`Subscription::reinitialize`](crate::subscription::Subscription::reinitialize) passes
/// the subscription's own references.
///
/// ```no_run
/// # async fn run(client: protime_client::ProtimeClient, filter: protime_client::ClockingsFilter)
/// #              -> Result<(), protime_webhooks::subscription::Error> {
/// use protime_client::ExternalReference;
/// use protime_webhooks::subscription::sync_with_references;
/// let sink = protime_webhooks::InMemorySink::default();
/// let references = [ExternalReference::new("people", "@badge-number")];
/// let totals = sync_with_references(&client, &filter, &references, &sink, "manual sync", None).await?;
/// println!("{} clockings", totals.synced);
/// # Ok(()) }
/// ```
pub async fn sync_with_references(
    client: &ProtimeClient,
    filter: &ClockingsFilter,
    references: &[ExternalReference],
    sink: &dyn DeliverySink,
    run: &str,
    progress: Option<&ProgressFn>,
) -> Result<SyncProgress, Error> {
    let run: Arc<str> = Arc::from(run);
    let mut totals = SyncProgress::default();
    let mut pages = std::pin::pin!(client.clocking_pages_with_references(filter, references));
    let mut pages_done = false;
    let mut gathered: Vec<Delivery> = Vec::new();
    let mut gathered_pages = 0_u64;
    let mut gathered_unversioned = 0_u64;
    // (pages, unversioned clockings, the commit) of the batch being committed.
    let mut committing: Option<(u64, u64, BatchFuture<'_>)> = None;
    loop {
        if committing.is_none() && !gathered.is_empty() {
            let batch = std::mem::take(&mut gathered);
            committing = Some((
                std::mem::take(&mut gathered_pages),
                std::mem::take(&mut gathered_unversioned),
                sink.record_batch(batch),
            ));
        }
        let room = !pages_done && gathered.len() < MAX_SYNC_BATCH;
        // `next()` on the page stream is cancel-safe: a fetch that loses the race goes on
        // inside the stream and is picked up by the next call.
        let event = match (&mut committing, room) {
            (None, false) => return Ok(totals),
            (None, true) => Event::Page(pages.next().await),
            (Some((_, _, commit)), false) => Event::Committed(commit.await),
            (Some((_, _, commit)), true) => match select(pages.next(), commit.as_mut()).await {
                Either::Left((page, _)) => Event::Page(page),
                Either::Right((receipts, _)) => Event::Committed(receipts),
            },
        };
        match event {
            Event::Page(None) => pages_done = true,
            Event::Page(Some(page)) => {
                let page = page?;
                for errors in &page.invalid {
                    totals.invalid += 1;
                    tracing::warn!(page = page.number, %errors, "sync: invalid clocking skipped");
                }
                gathered_pages += 1;
                let unversioned = page
                    .clockings
                    .iter()
                    .filter(|clocking| clocking.change_version.is_absent())
                    .count();
                if unversioned > 0 {
                    tracing::debug!(
                        page = page.number,
                        unversioned,
                        "sync: clockings listed without a changeVersion, applied as the oldest version"
                    );
                }
                gathered_unversioned += unversioned as u64;
                let origin = SyncOrigin::new(Arc::clone(&run), page.number);
                gathered.extend(
                    page.clockings
                        .into_iter()
                        .map(|clocking| Delivery::synced(clocking, origin.clone())),
                );
            }
            Event::Committed(receipts) => {
                if let Some((pages, unversioned, _)) = committing.take() {
                    totals.pages += pages;
                    totals.unversioned += unversioned;
                }
                for receipt in receipts {
                    match receipt.map_err(Error::Sink)? {
                        Receipt::Applied(ApplyOutcome::Applied) | Receipt::Appended => {
                            totals.applied += 1;
                        }
                        _ => totals.not_newer += 1,
                    }
                    totals.synced += 1;
                }
                if let Some(progress) = progress {
                    progress(totals);
                }
            }
        }
    }
}
