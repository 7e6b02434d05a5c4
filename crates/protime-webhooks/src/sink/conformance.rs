//! The conformance suite of the sink contract (feature `conformance`): every backend runs
//! it in its own tests, so that all backends mean the same thing by "applied", "duplicate",
//! "stale", "durable batch" and "feed".
//!
//! ```
//! use std::sync::Arc;
//! use protime_webhooks::sink::{conformance, InMemorySink};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A fresh backend for every check; `recording()` keeps the change feed.
//! let report = conformance::run(|| async { Arc::new(InMemorySink::recording()) }).await;
//! assert!(report.is_ok(), "{}", report.unwrap_err());
//! # }
//! ```
//!
//! The checks: receipts follow the ordering rule; versions compare byte by byte (pairs whose
//! byte order differs from a case-insensitive or linguistic order); a synced clocking that
//! the API listed without a `changeVersion` (`ChangeVersion::absent`) is applied when its id
//! is new, is a duplicate of another unversioned one, is stale against any real version and
//! is superseded by any real version (a `Delete` included), and reads back as unversioned;
//! tombstones (`Delete` and
//! `status: Deleted`) block older updates; a batch answers one receipt per delivery, in
//! order, and applies changes of one id in batch order; redelivering everything changes
//! nothing; dead letters change no state and never reach the feed; listing pages by id;
//! many interleaved, duplicated deliveries sent concurrently (single records and batches)
//! converge to the state a sequential reference computes; and the feed holds every applied
//! change exactly once, in commit order, resumable from any cursor.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use protime_model::ordering::{ApplyOutcome, InMemoryTracker};
use protime_model::{ClockingChange, ClockingId, parse_clocking, parse_delivery};

use super::{Delivery, DeliverySink, FeedCursor, Receipt, SinkRead, SyncOrigin, WebhookOrigin};

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// The check's name.
    pub check: &'static str,
    /// What went wrong.
    pub message: String,
}

/// Every failed check of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failures(pub Vec<Failure>);

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} conformance check(s) failed:", self.0.len())?;
        for failure in &self.0 {
            writeln!(f, "- {}: {}", failure.check, failure.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Failures {}

impl Failures {
    /// Whether the named check failed.
    pub fn failed(&self, check: &str) -> bool {
        self.0.iter().any(|f| f.check == check)
    }
}

type CheckResult = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Names of the checks, in the order they run.
pub const CHECKS: [&str; 10] = [
    "receipts_follow_the_ordering_rule",
    "versions_compare_byte_by_byte",
    "unversioned_synced_clockings_order_first",
    "tombstones_block_older_updates",
    "batches_answer_in_order",
    "redelivery_is_idempotent",
    "dead_letters_change_no_state",
    "list_pages_by_id",
    "concurrent_interleaved_deliveries_converge",
    "feed_is_complete_in_commit_order_and_resumable",
];

/// Runs every check, each on a fresh backend from `make`, and reports every failure.
pub async fn run<S, F, Fut>(mut make: F) -> Result<(), Failures>
where
    S: DeliverySink + SinkRead,
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<S>>,
{
    let mut failures = Vec::new();
    for check in CHECKS {
        let sink = make().await;
        let result = match check {
            "receipts_follow_the_ordering_rule" => receipts_follow_the_ordering_rule(&*sink).await,
            "versions_compare_byte_by_byte" => versions_compare_byte_by_byte(&*sink).await,
            "unversioned_synced_clockings_order_first" => {
                unversioned_synced_clockings_order_first(&*sink).await
            }
            "tombstones_block_older_updates" => tombstones_block_older_updates(&*sink).await,
            "batches_answer_in_order" => batches_answer_in_order(&*sink).await,
            "redelivery_is_idempotent" => redelivery_is_idempotent(&*sink).await,
            "dead_letters_change_no_state" => dead_letters_change_no_state(&*sink).await,
            "list_pages_by_id" => list_pages_by_id(&*sink).await,
            "concurrent_interleaved_deliveries_converge" => {
                concurrent_interleaved_deliveries_converge(sink).await
            }
            _ => feed_is_complete(&*sink).await,
        };
        if let Err(message) = result {
            failures.push(Failure { check, message });
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failures(failures))
    }
}

// ----------------------------------------------------------------------------------------
// Deliveries
// ----------------------------------------------------------------------------------------

fn json_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

fn body_upsert(id: i64, version: &str, minute: i64, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":{},"id":{id},"person":{{"id":{}}},"date":"2026-01-15","timeOfDayInMinutes":{minute},"kind":"InOut"{extra}}}}}"#,
        json_string(version),
        1 + id % 7
    )
    .into_bytes()
}

fn body_delete(id: i64, version: &str) -> Vec<u8> {
    format!(
        r#"{{"changeType":"Delete","data":{{"changeVersion":{},"id":{id}}}}}"#,
        json_string(version)
    )
    .into_bytes()
}

fn delivery(body: Vec<u8>) -> Result<Delivery, String> {
    let change =
        parse_delivery(&body).map_err(|e| format!("the suite built an invalid change: {e}"))?;
    Ok(Delivery::webhook(
        change,
        WebhookOrigin::new(Bytes::from(body), "conformance"),
    ))
}

fn upsert(id: i64, version: &str, minute: i64) -> Result<Delivery, String> {
    delivery(body_upsert(id, version, minute, ""))
}

fn delete(id: i64, version: &str) -> Result<Delivery, String> {
    delivery(body_delete(id, version))
}

/// A synced clocking as the API lists it without a `changeVersion` (the docs' list example
/// carries none): its version is `ChangeVersion::absent`.
fn unversioned(id: i64, minute: i64) -> Result<Delivery, String> {
    let item = format!(
        r#"{{"id":{id},"person":{{"id":1}},"date":"2026-01-15","timeOfDayInMinutes":{minute},"kind":"InOut"}}"#
    );
    let clocking = parse_clocking(item.as_bytes())
        .map_err(|e| format!("the suite built an invalid clocking: {e}"))?;
    if !clocking.change_version.is_absent() {
        return Err("the suite's unversioned clocking has a version".into());
    }
    Ok(Delivery::synced(
        clocking,
        SyncOrigin::new("conformance", 1),
    ))
}

fn clocking_id(id: i64) -> Result<ClockingId, String> {
    ClockingId::new(id).map_err(|e| e.to_string())
}

async fn record<S: DeliverySink + ?Sized>(sink: &S, delivery: Delivery) -> Result<Receipt, String> {
    sink.record(delivery)
        .await
        .map_err(|e| format!("record failed: {e}"))
}

async fn expect_receipt<S: DeliverySink + ?Sized>(
    sink: &S,
    delivery: Delivery,
    expected: ApplyOutcome,
    what: &str,
) -> CheckResult {
    let receipt = record(sink, delivery).await?;
    ensure!(
        receipt == Receipt::Applied(expected),
        "{what}: expected {:?}, got {receipt:?}",
        Receipt::Applied(expected)
    );
    Ok(())
}

async fn current_version<S: SinkRead + ?Sized>(
    sink: &S,
    id: i64,
) -> Result<Option<(String, bool)>, String> {
    let state = sink
        .state(clocking_id(id)?)
        .await
        .map_err(|e| format!("state({id}) failed: {e}"))?;
    Ok(state.map(|s| (s.change_version.as_str().to_owned(), s.clocking.is_none())))
}

// ----------------------------------------------------------------------------------------
// Checks
// ----------------------------------------------------------------------------------------

async fn receipts_follow_the_ordering_rule<S: DeliverySink + SinkRead>(sink: &S) -> CheckResult {
    expect_receipt(
        sink,
        upsert(7, "0000000005", 400)?,
        ApplyOutcome::Applied,
        "first",
    )
    .await?;
    expect_receipt(
        sink,
        upsert(7, "0000000005", 400)?,
        ApplyOutcome::Duplicate,
        "same again",
    )
    .await?;
    expect_receipt(
        sink,
        upsert(7, "0000000003", 300)?,
        ApplyOutcome::Stale,
        "older",
    )
    .await?;
    expect_receipt(
        sink,
        upsert(7, "0000000009", 900)?,
        ApplyOutcome::Applied,
        "newer",
    )
    .await?;
    let clocking = sink
        .clocking(clocking_id(7)?)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("clocking 7 is missing after an applied upsert")?;
    ensure!(
        clocking.change_version.as_str() == "0000000009"
            && clocking.time_of_day.map(|t| t.get()) == Some(900),
        "clocking 7 is at {} / minute {:?}, expected the newest (0000000009 / 900)",
        clocking.change_version,
        clocking.time_of_day.map(|t| t.get())
    );
    expect_receipt(
        sink,
        upsert(8, "0000000001", 1)?,
        ApplyOutcome::Applied,
        "another id",
    )
    .await?;
    Ok(())
}

/// Pairs (lower, higher) in byte order whose order differs in a case-insensitive, a
/// numeric-aware or a linguistic comparison.
const BYTE_ORDER_PAIRS: [(&str, &str); 7] = [
    ("B", "a"),
    ("0000Z", "0000a"),
    ("Zebra", "apple"),
    ("item10", "item9"),
    ("z", "\u{e9}"),
    ("A-1", "A1"),
    ("abc", "abcd"),
];

async fn versions_compare_byte_by_byte<S: DeliverySink + SinkRead>(sink: &S) -> CheckResult {
    for (n, (lower, higher)) in BYTE_ORDER_PAIRS.iter().enumerate() {
        let id = 100 + i64::try_from(n).unwrap_or(0);
        expect_receipt(sink, upsert(id, higher, 10)?, ApplyOutcome::Applied, higher).await?;
        expect_receipt(
            sink,
            upsert(id, lower, 20)?,
            ApplyOutcome::Stale,
            &format!("{lower:?} after {higher:?} (lower in byte order)"),
        )
        .await?;
        let id = 200 + i64::try_from(n).unwrap_or(0);
        expect_receipt(sink, upsert(id, lower, 10)?, ApplyOutcome::Applied, lower).await?;
        expect_receipt(
            sink,
            upsert(id, higher, 20)?,
            ApplyOutcome::Applied,
            &format!("{higher:?} after {lower:?} (higher in byte order)"),
        )
        .await?;
        let version = current_version(sink, id).await?;
        ensure!(
            version.as_ref().map(|(v, _)| v.as_str()) == Some(*higher),
            "id {id}: stored version {version:?}, expected {higher:?}"
        );
    }
    Ok(())
}

/// The minute of day of the clocking `id` as the sink returns it (`None` when it does not
/// exist), and whether its version is absent.
async fn stored_minute<S: SinkRead + ?Sized>(
    sink: &S,
    id: i64,
) -> Result<Option<(i16, bool)>, String> {
    let clocking = sink
        .clocking(clocking_id(id)?)
        .await
        .map_err(|e| format!("clocking({id}) failed: {e}"))?;
    Ok(clocking.map(|c| {
        (
            c.time_of_day.map_or(i16::MIN, |t| t.get()),
            c.change_version.is_absent(),
        )
    }))
}

async fn unversioned_synced_clockings_order_first<S: DeliverySink + SinkRead>(
    sink: &S,
) -> CheckResult {
    // A new id: applied, and read back as unversioned (by state, clocking, list and feed).
    expect_receipt(
        sink,
        unversioned(30, 300)?,
        ApplyOutcome::Applied,
        "unversioned, new id",
    )
    .await?;
    let state = current_version(sink, 30).await?;
    ensure!(
        state == Some((String::new(), false)),
        "id 30: state {state:?}, expected a live clocking with the absent version"
    );
    ensure!(
        stored_minute(sink, 30).await? == Some((300, true)),
        "id 30: the unversioned clocking does not read back as stored"
    );
    let listed = sink
        .list(None, 100)
        .await
        .map_err(|e| format!("list failed: {e}"))?;
    ensure!(
        listed
            .iter()
            .any(|c| c.id.get() == 30 && c.change_version.is_absent()),
        "list does not return the unversioned clocking 30"
    );
    // Another unversioned copy is a duplicate: it never overwrites the first.
    expect_receipt(
        sink,
        unversioned(30, 301)?,
        ApplyOutcome::Duplicate,
        "unversioned after unversioned",
    )
    .await?;
    ensure!(
        stored_minute(sink, 30).await? == Some((300, true)),
        "id 30: a second unversioned copy changed the clocking"
    );
    // Any real version supersedes it, and it is stale against that version from then on.
    expect_receipt(
        sink,
        upsert(30, "0", 310)?,
        ApplyOutcome::Applied,
        "versioned after unversioned",
    )
    .await?;
    expect_receipt(
        sink,
        unversioned(30, 302)?,
        ApplyOutcome::Stale,
        "unversioned after versioned",
    )
    .await?;
    ensure!(
        stored_minute(sink, 30).await? == Some((310, false)),
        "id 30: expected the versioned clocking (minute 310)"
    );
    // Against a stored real version it is stale.
    expect_receipt(
        sink,
        upsert(31, "0000000005", 500)?,
        ApplyOutcome::Applied,
        "versioned",
    )
    .await?;
    expect_receipt(
        sink,
        unversioned(31, 501)?,
        ApplyOutcome::Stale,
        "unversioned over a real version",
    )
    .await?;
    let state = current_version(sink, 31).await?;
    ensure!(
        state == Some(("0000000005".into(), false)),
        "id 31: state {state:?}, expected 0000000005"
    );
    // A Delete supersedes it, and its tombstone blocks it.
    expect_receipt(
        sink,
        unversioned(32, 320)?,
        ApplyOutcome::Applied,
        "unversioned, id 32",
    )
    .await?;
    expect_receipt(
        sink,
        delete(32, "01")?,
        ApplyOutcome::Applied,
        "delete after unversioned",
    )
    .await?;
    expect_receipt(
        sink,
        unversioned(32, 321)?,
        ApplyOutcome::Stale,
        "unversioned after a delete",
    )
    .await?;
    let state = current_version(sink, 32).await?;
    ensure!(
        state == Some(("01".into(), true)),
        "id 32: state {state:?}, expected a tombstone at 01"
    );
    ensure!(
        stored_minute(sink, 32).await?.is_none(),
        "id 32: a deleted clocking is returned"
    );
    // The same rule inside one batch.
    let batch = vec![
        unversioned(33, 330)?,
        unversioned(33, 331)?,
        upsert(33, "0A", 332)?,
        unversioned(33, 333)?,
    ];
    let receipts: Vec<Option<Receipt>> = sink
        .record_batch(batch)
        .await
        .into_iter()
        .map(Result::ok)
        .collect();
    let expected: Vec<Option<Receipt>> = [
        ApplyOutcome::Applied,
        ApplyOutcome::Duplicate,
        ApplyOutcome::Applied,
        ApplyOutcome::Stale,
    ]
    .into_iter()
    .map(|outcome| Some(Receipt::Applied(outcome)))
    .collect();
    ensure!(
        receipts == expected,
        "batch on id 33: receipts {receipts:?}, expected {expected:?}"
    );
    ensure!(
        stored_minute(sink, 33).await? == Some((332, false)),
        "id 33: expected the versioned clocking (minute 332)"
    );
    // The feed holds each applied unversioned change once, readable as unversioned.
    let feed = sink
        .changes(FeedCursor::START, usize::MAX)
        .await
        .map_err(|e| format!("changes failed: {e}"))?;
    let unversioned_entries: Vec<i64> = feed
        .entries
        .iter()
        .filter(|e| e.change.change_version().is_absent())
        .map(|e| e.change.id().get())
        .collect();
    ensure!(
        unversioned_entries == [30, 32, 33],
        "the feed's unversioned entries are for ids {unversioned_entries:?}, expected [30, 32, 33]"
    );
    Ok(())
}

async fn tombstones_block_older_updates<S: DeliverySink + SinkRead>(sink: &S) -> CheckResult {
    expect_receipt(sink, upsert(1, "05", 5)?, ApplyOutcome::Applied, "upsert").await?;
    expect_receipt(sink, delete(1, "08")?, ApplyOutcome::Applied, "delete").await?;
    expect_receipt(
        sink,
        upsert(1, "06", 6)?,
        ApplyOutcome::Stale,
        "older upsert after delete",
    )
    .await?;
    expect_receipt(
        sink,
        delete(1, "08")?,
        ApplyOutcome::Duplicate,
        "delete again",
    )
    .await?;
    let state = current_version(sink, 1).await?;
    ensure!(
        state == Some(("08".into(), true)),
        "id 1: state {state:?}, expected a tombstone at 08"
    );
    let clocking = sink
        .clocking(clocking_id(1)?)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(clocking.is_none(), "a deleted clocking is still returned");
    expect_receipt(
        sink,
        upsert(1, "09", 9)?,
        ApplyOutcome::Applied,
        "newer upsert revives",
    )
    .await?;
    let soft = delivery(body_upsert(1, "10", 10, r#","status":"Deleted""#))?;
    expect_receipt(sink, soft, ApplyOutcome::Applied, "status Deleted").await?;
    let clocking = sink
        .clocking(clocking_id(1)?)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        clocking.is_none(),
        "a clocking with status Deleted is still returned"
    );
    expect_receipt(
        sink,
        upsert(1, "09", 9)?,
        ApplyOutcome::Stale,
        "older after soft delete",
    )
    .await?;
    let never = current_version(sink, 2).await?;
    ensure!(never.is_none(), "an id never seen has a state: {never:?}");
    Ok(())
}

async fn batches_answer_in_order<S: DeliverySink + SinkRead>(sink: &S) -> CheckResult {
    let empty = sink.record_batch(Vec::new()).await;
    ensure!(
        empty.is_empty(),
        "an empty batch answered {} receipts",
        empty.len()
    );
    let batch = vec![
        upsert(3, "02", 2)?,
        upsert(3, "01", 1)?,
        upsert(3, "03", 3)?,
        upsert(3, "03", 3)?,
        delete(4, "01")?,
        upsert(4, "00", 0)?,
    ];
    let expected = [
        Receipt::Applied(ApplyOutcome::Applied),
        Receipt::Applied(ApplyOutcome::Stale),
        Receipt::Applied(ApplyOutcome::Applied),
        Receipt::Applied(ApplyOutcome::Duplicate),
        Receipt::Applied(ApplyOutcome::Applied),
        Receipt::Applied(ApplyOutcome::Stale),
    ];
    let receipts = sink.record_batch(batch).await;
    ensure!(
        receipts.len() == expected.len(),
        "a batch of {} answered {} receipts",
        expected.len(),
        receipts.len()
    );
    for (n, (receipt, expected)) in receipts.into_iter().zip(expected).enumerate() {
        let receipt = receipt.map_err(|e| format!("item {n} failed: {e}"))?;
        ensure!(
            receipt == expected,
            "item {n}: expected {expected:?}, got {receipt:?}"
        );
    }
    let state = current_version(sink, 3).await?;
    ensure!(
        state == Some(("03".into(), false)),
        "id 3 after the batch: {state:?}"
    );
    Ok(())
}

async fn redelivery_is_idempotent<S: DeliverySink + SinkRead>(sink: &S) -> CheckResult {
    let bodies: Vec<Vec<u8>> = (1..=20)
        .map(|n| {
            if n % 5 == 0 {
                body_delete(n % 6 + 1, &format!("{n:04}"))
            } else {
                body_upsert(n % 6 + 1, &format!("{n:04}"), n, "")
            }
        })
        .collect();
    let first: Vec<Delivery> = bodies
        .iter()
        .cloned()
        .map(delivery)
        .collect::<Result<_, _>>()?;
    for result in sink.record_batch(first).await {
        result.map_err(|e| format!("first pass: {e}"))?;
    }
    let feed_before = sink
        .changes(FeedCursor::START, usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    let mut states_before = Vec::new();
    for id in 1..=6 {
        states_before.push(current_version(sink, id).await?);
    }
    let again: Vec<Delivery> = bodies
        .iter()
        .cloned()
        .map(delivery)
        .collect::<Result<_, _>>()?;
    for (n, result) in sink.record_batch(again).await.into_iter().enumerate() {
        let receipt = result.map_err(|e| format!("second pass: {e}"))?;
        ensure!(
            receipt != Receipt::Applied(ApplyOutcome::Applied),
            "redelivered item {n} was applied again"
        );
    }
    for id in 1..=6 {
        let state = current_version(sink, id).await?;
        ensure!(
            states_before.get(usize::try_from(id - 1).unwrap_or(0)) == Some(&state),
            "id {id} changed on redelivery"
        );
    }
    let feed_after = sink
        .changes(FeedCursor::START, usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        feed_after.entries.len() == feed_before.entries.len(),
        "the feed grew from {} to {} entries on redelivery",
        feed_before.entries.len(),
        feed_after.entries.len()
    );
    Ok(())
}

async fn dead_letters_change_no_state<S: DeliverySink + SinkRead>(sink: &S) -> CheckResult {
    let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"99","id":5,"timeOfDayInMinutes":99999}}"#;
    let errors = match parse_delivery(body) {
        Err(errors) => errors,
        Ok(_) => return Err("the suite's invalid body parsed".into()),
    };
    let receipt = record(
        sink,
        Delivery::DeadLetter {
            errors,
            webhook: WebhookOrigin::new(Bytes::from_static(body), "conformance"),
        },
    )
    .await?;
    ensure!(
        receipt == Receipt::DeadLettered,
        "a dead letter answered {receipt:?}"
    );
    let state = current_version(sink, 5).await?;
    ensure!(state.is_none(), "a dead letter created state {state:?}");
    let feed = sink
        .changes(FeedCursor::START, 10)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(feed.entries.is_empty(), "a dead letter reached the feed");
    Ok(())
}

async fn list_pages_by_id<S: DeliverySink + SinkRead>(sink: &S) -> CheckResult {
    let mut batch = Vec::new();
    for id in (1..=25).rev() {
        batch.push(upsert(id, "01", id)?);
    }
    batch.push(delete(13, "02")?);
    for result in sink.record_batch(batch).await {
        result.map_err(|e| e.to_string())?;
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = sink.list(after, 7).await.map_err(|e| e.to_string())?;
        ensure!(page.len() <= 7, "list(limit 7) returned {}", page.len());
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|c| c.id.get()));
    }
    let expected: Vec<i64> = (1..=25).filter(|id| *id != 13).collect();
    ensure!(
        seen == expected,
        "listed ids {seen:?}, expected {expected:?}"
    );
    Ok(())
}

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// Versions whose byte order differs from other orders, so a backend that compares wrongly
/// ends in another state.
const TRICKY_VERSIONS: [&str; 10] = [
    "0000A",
    "0000B",
    "0000Z",
    "0000a",
    "0000b",
    "0000z",
    "0000\u{e9}",
    "00001",
    "00009",
    "0000",
];

async fn concurrent_interleaved_deliveries_converge<S: DeliverySink + SinkRead>(
    sink: Arc<S>,
) -> CheckResult {
    const IDS: i64 = 6;
    const ROUNDS: u64 = 8;
    let mut reference = InMemoryTracker::default();
    let mut applied_receipts = 0_usize;
    for round in 0..ROUNDS {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (round + 1));
        let mut bodies = Vec::new();
        for id in 1..=IDS {
            let id = id + i64::try_from(round).unwrap_or(0) * 100;
            for version in TRICKY_VERSIONS {
                if rng.below(3) == 0 {
                    continue;
                }
                let version = format!("{round}{version}");
                let body = if rng.below(4) == 0 {
                    body_delete(id, &version)
                } else {
                    body_upsert(
                        id,
                        &version,
                        i64::try_from(rng.below(1440)).unwrap_or(0),
                        "",
                    )
                };
                bodies.push(body.clone());
                if rng.below(3) == 0 {
                    bodies.push(body);
                }
            }
        }
        for n in (1..bodies.len()).rev() {
            let k = rng.below(n + 1);
            bodies.swap(n, k);
        }
        for body in &bodies {
            let change = parse_delivery(body).map_err(|e| e.to_string())?;
            reference.apply(&change);
        }
        // Four tasks: two send one at a time, two send batches of up to 5.
        let mut tasks = Vec::new();
        for task in 0..4_usize {
            let mine: Vec<Vec<u8>> = bodies
                .iter()
                .enumerate()
                .filter(|(n, _)| n % 4 == task)
                .map(|(_, b)| b.clone())
                .collect();
            let sink = Arc::clone(&sink);
            tasks.push(tokio::spawn(async move {
                let mut applied = 0_usize;
                if task < 2 {
                    for body in mine {
                        let receipt = record(&*sink, delivery(body)?).await?;
                        applied += usize::from(receipt == Receipt::Applied(ApplyOutcome::Applied));
                    }
                } else {
                    for chunk in mine.chunks(5) {
                        let batch = chunk
                            .iter()
                            .cloned()
                            .map(delivery)
                            .collect::<Result<_, _>>()?;
                        for receipt in sink.record_batch(batch).await {
                            let receipt = receipt.map_err(|e| format!("batch item failed: {e}"))?;
                            applied +=
                                usize::from(receipt == Receipt::Applied(ApplyOutcome::Applied));
                        }
                    }
                }
                Ok::<usize, String>(applied)
            }));
        }
        for task in tasks {
            applied_receipts += task.await.map_err(|e| format!("task failed: {e}"))??;
        }
    }
    for (id, expected) in reference.entries() {
        let state = sink
            .state(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("id {id} has no state"))?;
        ensure!(
            state.change_version == expected.change_version,
            "id {id}: stored version {:?}, the byte-order reference says {:?}",
            state.change_version.as_str(),
            expected.change_version.as_str()
        );
        ensure!(
            state.clocking == expected.clocking,
            "id {id}: stored clocking differs from the reference (deleted: {}, expected deleted: {})",
            state.clocking.is_none(),
            expected.clocking.is_none()
        );
    }
    // Every applied change is in the feed, once; per id the feed's versions only rise, and
    // its last entry per id is the current state.
    let feed = sink
        .changes(FeedCursor::START, usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        feed.entries.len() == applied_receipts,
        "the feed holds {} entries, {} receipts said applied",
        feed.entries.len(),
        applied_receipts
    );
    let mut last: BTreeMap<ClockingId, &ClockingChange> = BTreeMap::new();
    for entry in &feed.entries {
        if let Some(previous) = last.get(&entry.change.id()) {
            ensure!(
                previous.change_version() < entry.change.change_version(),
                "feed: id {} goes from {:?} to {:?}",
                entry.change.id(),
                previous.change_version().as_str(),
                entry.change.change_version().as_str()
            );
        }
        last.insert(entry.change.id(), &entry.change);
    }
    for (id, expected) in reference.entries() {
        let in_feed = last.get(&id).map(|c| c.change_version());
        ensure!(
            in_feed == Some(&expected.change_version),
            "feed: last entry of id {id} is {in_feed:?}, the state is at {:?}",
            expected.change_version.as_str()
        );
    }
    Ok(())
}

async fn feed_is_complete<S: DeliverySink + SinkRead>(sink: &S) -> CheckResult {
    let mut expected = Vec::new();
    for n in 1..=30_i64 {
        let version = format!("{n:03}");
        let delivery = if n % 7 == 0 {
            delete(n % 4 + 1, &version)?
        } else {
            upsert(n % 4 + 1, &version, n)?
        };
        let change = delivery.change().cloned().ok_or("not a change")?;
        if record(sink, delivery).await? == Receipt::Applied(ApplyOutcome::Applied) {
            expected.push(change);
        }
        // A stale one and a duplicate, which must not appear.
        record(sink, upsert(n % 4 + 1, "000", 0)?).await?;
    }
    ensure!(
        expected.len() == 30,
        "{} of 30 rising versions applied",
        expected.len()
    );
    // Page through with a small limit.
    let mut read = Vec::new();
    let mut cursors = Vec::new();
    let mut cursor = FeedCursor::START;
    loop {
        let page = sink.changes(cursor, 4).await.map_err(|e| e.to_string())?;
        ensure!(
            page.entries.len() <= 4,
            "changes(limit 4) returned {}",
            page.entries.len()
        );
        if page.entries.is_empty() {
            ensure!(page.next == cursor, "an empty page moved the cursor");
            break;
        }
        for entry in &page.entries {
            ensure!(
                entry.cursor > cursor,
                "cursors do not rise: {:?} after {:?}",
                entry.cursor,
                cursor
            );
            cursor = entry.cursor;
            cursors.push(entry.cursor);
            read.push(entry.change.clone());
        }
        ensure!(
            page.next == cursor,
            "page.next is not the last entry's cursor"
        );
    }
    ensure!(
        read == expected,
        "the feed does not hold exactly the applied changes in commit order ({} read, {} applied)",
        read.len(),
        expected.len()
    );
    // Resume from the middle.
    let middle = cursors.get(14).copied().ok_or("fewer than 15 entries")?;
    let rest = sink
        .changes(middle, usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        rest.entries
            .iter()
            .map(|e| &e.change)
            .eq(expected.iter().skip(15)),
        "resuming after the 15th entry does not give the remaining 15"
    );
    Ok(())
}
