//! The PostgreSQL backend of the `protime-webhooks` sink contract: a [`DeliverySink`] and
//! [`SinkRead`] that several receiver replicas share.
//!
//! [`PgStore`] keeps, in one database (and optionally one schema per Protime tenant):
//!
//! - `clocking_state`: the current state, one row per clocking id, last writer wins by
//!   `changeVersion` compared byte by byte (`protime_model::decide`, in Rust, against the
//!   row locked `FOR UPDATE`; version columns use `COLLATE "C"`); deletions leave a
//!   tombstone so an older update that arrives late cannot resurrect the clocking;
//! - `change_log`: every authentic valid webhook delivery, redeliveries and stale ones
//!   included, with the body exactly as received; every applied synced clocking, with its
//!   sync run and page. Append-only, but for retention and erasure. Applied entries carry a
//!   **feed position**;
//! - `dead_letters`: every authentic delivery that failed validation, with its errors;
//! - `erasures`: when a person was erased and how many rows went, never whose.
//!
//! # Retention and erasure
//!
//! Nothing is removed unless asked. [`PgStore::purge`] removes history by age (webhook
//! bodies, change-log entries, dead letters) but never a state row — the per-id watermark
//! that keeps a late, older delivery stale — nor the entry holding a current clocking.
//! [`PgStore::forget_person`] erases a person's clockings, leaving erased tombstones (id and
//! version) and one feed entry of origin `erasure` (a Delete) per clocking. Removed entries
//! leave gaps in the feed positions; the feed stays in commit order and gap-free for what
//! it still holds.
//!
//! # Several writers
//!
//! Receivers on different machines write the same ids at once. Each transaction inserts
//! the rows of new ids and then locks every row of its ids in ascending id order, decides
//! against the locked versions, and writes; so two writers never both apply to the same id
//! from the same old version, and lock waits never form a cycle (see `apply.rs`).
//! Redelivery is idempotent: a version already stored is a `Duplicate`, logged and
//! acknowledged, and changes nothing.
//!
//! # Durability and group commit
//!
//! A receipt is returned only after the transaction holding the delivery has committed,
//! with `synchronous_commit=on` set on every session whatever the server's default (read it
//! back with [`PgStore::synchronous_commit`]). Each replica queues deliveries on a bounded
//! channel; each of its writer tasks takes what is queued (up to 4,096 deliveries, one
//! `record_batch` never split) and commits it as one transaction — one WAL flush for the
//! whole group — and only then answers every waiter. If the group cannot be committed,
//! every waiter gets the error and nothing of it is acknowledged.
//!
//! # Change feed
//!
//! [`SinkRead::changes`] returns applied changes after a cursor, in commit order. Feed
//! positions are dense and handed out in commit order: a transaction takes them by updating
//! a one-row counter as its last write and holds that row lock until its commit is visible.
//! A reader therefore never sees position 11 while position 10 can still commit — the gap
//! problem of sequence numbers taken in one order and committed in another does not arise.
//! The price is that commits that add feed entries are serialized across replicas for the
//! duration of the final insert and the commit. [`PgStore::notifications`] wakes a follower
//! on each such commit (`LISTEN`/`NOTIFY`).
//!
//! # Why tokio-postgres and deadpool
//!
//! `tokio-postgres` is the asynchronous driver underneath most of the Rust PostgreSQL
//! ecosystem: it pipelines statements on one connection (a group's writes and its `COMMIT`
//! go in one round trip), sends arrays for set-based statements, and exposes `LISTEN`
//! notifications; `deadpool-postgres` is a small pool with statement caching and bounded
//! waits. `sqlx` was not chosen: its SQLite driver links a `libsqlite3-sys` of its own next
//! to `rusqlite`'s, and the compile-time query checking it is known for needs a database at
//! build time. Migrations are `refinery`'s, as in the SQLite store.
//!
//! # Schema migrations
//!
//! Applied when the store connects ([`PgStore::connect`]), SQL files in `migrations/`,
//! recorded in `protime_schema_history`; replicas starting together migrate one at a time
//! (an advisory lock), and a database whose schema is newer than this code is refused with
//! [`StoreError::Unsupported`].
//!
//! ```no_run
//! use protime_model::{parse_delivery, ApplyOutcome};
//! use protime_store_postgres::PgStore;
//! use protime_webhooks::sink::{Delivery, Receipt, WebhookOrigin};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::connect("postgres://protime@db.internal/clockings").await?;
//! let body = br#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000C","id":7}}"#;
//! let change = parse_delivery(body)?;
//! let origin = WebhookOrigin::new(bytes::Bytes::from_static(body), "eaa2ba0c");
//! let receipt = store.record(Delivery::webhook(change, origin)).await?;
//! assert_eq!(receipt, Receipt::Applied(ApplyOutcome::Applied));
//! store.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
#![doc = document_features::document_features!()]
//!
//! # Public dependencies
//!
//! - `protime-webhooks` 0.1 and `protime-model` 0.1: the sink contract this store implements
//!   ([`DeliverySink`], [`SinkRead`]) and the model it stores;
//! - `tokio-postgres` 0.7: the source of [`StoreError::Postgres`] and
//!   [`StoreError::Batch`], and the session `testing::TestDatabase::session` returns
//!   (feature `testing`); `deadpool-postgres` 0.14: `From<deadpool_postgres::PoolError>`
//!   for [`StoreError`];
//! - `tokio` 1: the store runs on (and needs) a tokio runtime.

mod apply;
mod config;
mod error;
mod lease;
mod notify;
mod read;
mod retention;
mod schema;
mod subscription;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use protime_model::{ChangeVersion, Clocking, ClockingId};
use protime_webhooks::sink::{
    BatchFuture, ClockingState, Delivery, DeliverySink, FeedCursor, FeedPage, Receipt, SinkError,
    SinkFuture, SinkRead,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

pub use config::PgStoreConfig;
pub use error::StoreError;
pub use lease::{LeaseHolder, OwnerLock};
pub use notify::ChangeNotifications;
pub use protime_webhooks::sink::RETENTION_BATCH;
pub use read::{DeadLetter, StoreStats};
pub use retention::{ErasureCounts, ErasureRecord, Purge, PurgeCounts};
pub use subscription::CurrentWebhook;

use apply::{GroupError, Job, Outcome};

/// Most deliveries committed in one transaction when several jobs are queued; a single job
/// (one `record_batch` call) is never split, whatever its size.
const MAX_GROUP: usize = 4096;

/// How often a group is tried when PostgreSQL aborts it for a serialization failure or a
/// deadlock (neither is expected: locks are taken in id order).
const GROUP_ATTEMPTS: u32 = 3;

/// The PostgreSQL store; see the [crate documentation](crate).
///
/// Cheap to clone (clones share the pool and the writers). The writers stop when the last
/// clone is dropped, after committing what was queued; [`PgStore::close`] stops them and
/// waits.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: PgStoreConfig,
    pool: Pool,
    /// `None` once [`PgStore::close`] ran.
    jobs: RwLock<Option<mpsc::Sender<Job>>>,
    writers: Mutex<Vec<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.inner.config.target())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// What this process's writers did since the store was opened.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    largest_batch: AtomicU64,
}

/// Opens one session with the store's settings; an unreachable server or a refused login
/// is one [`StoreError::Connect`] naming the target (never the password), within the
/// connect timeout.
pub(crate) async fn connect(
    config: &PgStoreConfig,
    tls: NoTls,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    StoreError,
> {
    let session = config.session();
    // The driver bounds the TCP connect; this bounds the handshake and the login as well.
    let limit = session
        .get_connect_timeout()
        .copied()
        .unwrap_or(Duration::from_secs(10))
        + Duration::from_secs(5);
    match tokio::time::timeout(limit, session.connect(tls)).await {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(error)) => Err(StoreError::Connect {
            target: config.target(),
            reason: error::describe(&error),
        }),
        Err(_) => Err(StoreError::Connect {
            target: config.target(),
            reason: format!("no answer within {limit:?}"),
        }),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single push/take: poisoning cannot leave a half-done
    // update behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PgStore {
    /// Connects to the database named by `url` (see [`PgStoreConfig::from_url`] for the
    /// forms and the `PG*` variables), applies the schema migrations, and starts the
    /// writers.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PgStoreConfig::from_url(url)?).await
    }

    /// [`Self::connect`] with chosen settings (a schema, writers, limits).
    ///
    /// ```no_run
    /// use protime_store_postgres::{PgStore, PgStoreConfig};
    /// # async fn run() -> Result<(), protime_store_postgres::StoreError> {
    /// let config = PgStoreConfig::from_env()?.with_schema("tenant_acme")?;
    /// let store = PgStore::connect_with(config).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_with(config: PgStoreConfig) -> Result<Self, StoreError> {
        schema::migrate(&config).await?;
        let manager = Manager::from_config(
            config.session(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let max = config.max_connections.max(config.writers + 1);
        let pool = Pool::builder(manager)
            .max_size(max)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.wait_timeout))
            .recycle_timeout(Some(config.wait_timeout))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        // Fail now, not on the first delivery, if the pool cannot connect.
        drop(pool.get().await?);

        let (sender, receiver) = mpsc::channel(config.queue_bound);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let counters = Arc::new(Counters::default());
        let writers = (0..config.writers)
            .map(|_| {
                tokio::spawn(run_writer(
                    pool.clone(),
                    Arc::clone(&receiver),
                    Arc::clone(&counters),
                    config.channel(),
                    config.statement_timeout,
                ))
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                pool,
                jobs: RwLock::new(Some(sender)),
                writers: Mutex::new(writers),
                counters,
            }),
        })
    }

    /// Where the store is (`user@host:port/database (schema s)`; never the password).
    pub fn target(&self) -> String {
        self.inner.config.target()
    }

    /// Whether [`Self::close`] was called (on any clone).
    pub fn is_closed(&self) -> bool {
        self.inner
            .jobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Stores one delivery; resolves once the transaction holding it has committed.
    pub fn record(
        &self,
        delivery: Delivery,
    ) -> impl Future<Output = Result<Receipt, StoreError>> + Send + 'static {
        let batch = self.record_batch(vec![delivery]);
        async move { batch.await.pop().unwrap_or(Err(StoreError::Closed)) }
    }

    /// Stores a batch in one transaction (never split); resolves with one outcome per
    /// delivery, in order, once it has committed.
    ///
    /// The batch is queued when `record_batch` is called, not when the future is first
    /// polled (unless the queue is full: then it waits for room when polled, up to the wait
    /// timeout). Calls queued by one caller are applied in the order of its calls: writers
    /// lock their groups' rows in queue order. Dropping the future does not withdraw the
    /// batch.
    pub fn record_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl Future<Output = Vec<Result<Receipt, StoreError>>> + Send + 'static {
        let count = deliveries.len();
        let sender = self
            .inner
            .jobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let wait = self.inner.config.wait_timeout;
        let (reply, answer) = oneshot::channel();
        let job = Job { deliveries, reply };
        // Queued now, at the call, when there is room: calls are then applied in call order
        // (what a caller that does not await each call before the next expects), whenever
        // the future is polled. A full queue is waited on (bounded) when polled.
        let queued = match &sender {
            None => Err(None),
            Some(sender) => match sender.try_send(job) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(job)) => Err(Some(job)),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(None),
            },
        };
        async move {
            match (queued, sender) {
                (Ok(()), _) => {}
                (Err(Some(job)), Some(sender)) => {
                    match tokio::time::timeout(wait, sender.send(job)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return errors(count, || StoreError::Closed),
                        Err(_) => {
                            return errors(count, || StoreError::Timeout {
                                what: "waiting for room in the store's queue",
                                after: wait,
                            });
                        }
                    }
                }
                _ => return errors(count, || StoreError::Closed),
            }
            answer
                .await
                .unwrap_or_else(|_| errors(count, || StoreError::Closed))
        }
    }

    /// Closes the store for every clone: later `record` calls fail with
    /// [`StoreError::Closed`]; deliveries queued before are committed and answered. Waits
    /// until the writers have finished.
    pub async fn close(self) {
        let sender = self
            .inner
            .jobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(sender);
        let writers = std::mem::take(&mut *lock(&self.inner.writers));
        for writer in writers {
            let _ = writer.await;
        }
    }

    /// Notifications of new commits (from any replica), for following the feed.
    pub async fn notifications(&self) -> Result<ChangeNotifications, StoreError> {
        ChangeNotifications::listen(&self.inner.config).await
    }

    /// `synchronous_commit` as the store's sessions see it (`on`: a receipt means the
    /// commit is on the server's disk).
    pub async fn synchronous_commit(&self) -> Result<String, StoreError> {
        let client = self.inner.pool.get().await?;
        let row = client.query_one("SHOW synchronous_commit", &[]).await?;
        Ok(row.try_get(0)?)
    }

    /// The store's schema version in the database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let client = self.inner.pool.get().await?;
        schema::applied_version(&client).await
    }

    /// Every clocking that currently exists, by id (loads them all: prefer
    /// [`SinkRead::list`] for large stores).
    pub async fn clockings(&self) -> Result<Vec<Clocking>, StoreError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_page(after, 10_000).await?;
            let Some(last) = page.last() else {
                return Ok(all);
            };
            after = Some(last.id);
            all.extend(page);
        }
    }

    /// Every tracked id with the version of its last applied change and whether that change
    /// removed the clocking, by id.
    pub async fn tracked_versions(
        &self,
    ) -> Result<Vec<(ClockingId, ChangeVersion, bool)>, StoreError> {
        self.query(read::TRACKED, &[], read::tracked_of).await
    }

    /// Number of change-log entries.
    pub async fn change_log_len(&self) -> Result<u64, StoreError> {
        self.query(read::LOG_LEN, &[], |rows| match rows.first() {
            Some(row) => read::to_count(row.try_get(0)?),
            None => Ok(0),
        })
        .await
    }

    /// The last feed position handed out (every entry up to it is committed or being
    /// committed).
    pub async fn last_feed_position(&self) -> Result<FeedCursor, StoreError> {
        self.query(read::LAST_POSITION, &[], |rows| match rows.first() {
            Some(row) => Ok(FeedCursor(read::to_count(row.try_get(0)?)?)),
            None => Err(StoreError::corrupt("feed_counter has no row")),
        })
        .await
    }

    /// Every dead letter, in arrival order.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.query(read::DEAD_LETTERS, &[], read::dead_letters_of)
            .await
    }

    /// The dead letter with this id, if there is one.
    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        self.query(read::DEAD_LETTER, &[&id], |rows| {
            Ok(read::dead_letters_of(rows)?.into_iter().next())
        })
        .await
    }

    /// Records that the dead letter `id` was replayed: its body passed validation again and
    /// was recorded (through [`DeliverySink::record`]) with the receipt `outcome`.
    /// `Ok(false)` when there is no dead letter `id`. The row itself is kept as evidence.
    ///
    /// Replaying records first and marks afterwards, so a crash in between leaves the dead
    /// letter unmarked; replaying it again records a duplicate, which changes nothing.
    ///
    /// ```no_run
    /// # async fn example(store: protime_store_postgres::PgStore) -> Result<(), protime_store_postgres::StoreError> {
    /// use protime_model::ApplyOutcome;
    /// use protime_webhooks::sink::Receipt;
    /// store.mark_dead_letter_replayed(1, Receipt::Applied(ApplyOutcome::Applied)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn mark_dead_letter_replayed(
        &self,
        id: i64,
        outcome: Receipt,
    ) -> Result<bool, StoreError> {
        let Receipt::Applied(_) = outcome else {
            return Err(StoreError::unsupported(format!(
                "a replay is marked with the receipt of a state-keeping store, not {:?}",
                outcome.name()
            )));
        };
        let name = outcome.name();
        self.query(read::MARK_REPLAYED, &[&id, &name], |rows| {
            Ok(!rows.is_empty())
        })
        .await
    }

    /// Applies retention: removes what was received before each cutoff of `purge` —
    /// webhook bodies (the entries stay), change-log entries, dead letters — in transactions
    /// of at most [`RETENTION_BATCH`] rows each. Never removed: the state rows (the per-id
    /// version watermark, so a late older delivery is still stale) and the applied entry of
    /// each state row's version (the current clocking). With `dry_run`, counts what would go
    /// and removes nothing.
    pub async fn purge(&self, purge: &Purge) -> Result<PurgeCounts, StoreError> {
        retention::purge(&self.inner.pool, purge, chrono::Utc::now()).await
    }

    /// Erases a person: every change-log entry of every clocking whose stored body names
    /// `person` as `data.person.id` (current state and history), and every dead letter that
    /// does. Each such clocking keeps its state row as an erased tombstone (id and version,
    /// for ordering) whose applied entry becomes a feed entry of origin `erasure` (a Delete
    /// at that version), so followers of the feed delete it too; followers are notified.
    /// The erasure is recorded in `erasures` (time and counts, not the person). State rows
    /// are locked in ascending id order and the feed counter last, as every writer does.
    /// With `dry_run`, counts only.
    pub async fn forget_person(
        &self,
        person: i64,
        dry_run: bool,
    ) -> Result<ErasureCounts, StoreError> {
        let channel = self.inner.config.channel();
        retention::forget(
            &self.inner.pool,
            &channel,
            person,
            dry_run,
            chrono::Utc::now(),
        )
        .await
    }

    /// The recorded erasures, oldest first.
    pub async fn erasures(&self) -> Result<Vec<ErasureRecord>, StoreError> {
        retention::erasures(&self.inner.pool).await
    }

    /// Counts of what the store holds (one statement, one snapshot; counting scans the
    /// tables).
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut stats = self
            .query(read::STATS, &[], |rows| match rows.first() {
                Some(row) => read::stats_of(row),
                None => Err(StoreError::corrupt("no counts")),
            })
            .await?;
        stats.batches = self.inner.counters.batches.load(Ordering::Relaxed);
        stats.largest_batch = self.inner.counters.largest_batch.load(Ordering::Relaxed);
        Ok(stats)
    }

    async fn list_page(
        &self,
        after: Option<ClockingId>,
        limit: usize,
    ) -> Result<Vec<Clocking>, StoreError> {
        let after = after.map_or(0, ClockingId::get);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(read::LIST, &[&after, &limit], read::clockings_of)
            .await
    }

    async fn state(&self, id: ClockingId) -> Result<Option<ClockingState>, StoreError> {
        self.query(read::STATE, &[&id.get()], |rows| {
            rows.first()
                .map(|row| read::state_of(row).map(|(_, state)| state))
                .transpose()
        })
        .await
    }

    async fn feed(&self, after: FeedCursor, limit: usize) -> Result<FeedPage, StoreError> {
        let from = i64::try_from(after.0).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(read::CHANGES, &[&from, &limit], |rows| {
            read::feed_page(rows, after)
        })
        .await
    }

    /// Runs one read statement on a pooled connection, bounded by the statement timeout
    /// (on the server) and a client-side timeout a little longer (a vanished server).
    async fn query<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        decode: impl FnOnce(&[tokio_postgres::Row]) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let limit = self.inner.config.statement_timeout + Duration::from_secs(5);
        let read = async {
            let client = self.inner.pool.get().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok::<_, StoreError>(client.query(&statement, params).await?)
        };
        let rows = tokio::time::timeout(limit, read)
            .await
            .map_err(|_| StoreError::Timeout {
                what: "a read",
                after: limit,
            })??;
        decode(&rows)
    }
}

fn errors(count: usize, error: impl Fn() -> StoreError) -> Vec<Outcome> {
    (0..count).map(|_| Err(error())).collect()
}

/// Takes queued jobs (the first one, plus whatever else is queued, up to [`MAX_GROUP`]
/// deliveries), commits them as one group, answers their waiters; until the queue closes.
async fn run_writer(
    pool: Pool,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    counters: Arc<Counters>,
    channel: String,
    statement_timeout: Duration,
) {
    loop {
        let mut turn: apply::CollectTurn<'_> = Some(jobs.lock().await);
        let group = {
            let Some(queue) = turn.as_mut() else { break };
            let Some(first) = queue.recv().await else {
                break;
            };
            let mut count = first.deliveries.len();
            let mut group = vec![first];
            while count < MAX_GROUP {
                match queue.try_recv() {
                    Ok(job) => {
                        count += job.deliveries.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        let count: usize = group.iter().map(|job| job.deliveries.len()).sum();
        let started = std::time::Instant::now();
        let outcomes = commit_group(&pool, &group, &channel, statement_timeout, &mut turn).await;
        drop(turn);
        tracing::debug!(
            count,
            duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "group committed"
        );
        if outcomes.iter().flatten().any(Result::is_ok) {
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters
                .largest_batch
                .fetch_max(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        for (job, outcomes) in group.into_iter().zip(outcomes) {
            // A waiter that stopped waiting is not an error: what was committed stays
            // committed, and Protime redelivers what it saw unacknowledged.
            let _ = job.reply.send(outcomes);
        }
    }
    tracing::debug!("writer stopped: the store was closed or dropped");
}

fn retryable(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// One group, tried up to [`GROUP_ATTEMPTS`] times; every outcome an error when it cannot be
/// committed.
async fn commit_group(
    pool: &Pool,
    group: &[Job],
    channel: &str,
    statement_timeout: Duration,
    turn: &mut apply::CollectTurn<'_>,
) -> Vec<Vec<Outcome>> {
    let all = |error: &dyn Fn() -> StoreError| -> Vec<Vec<Outcome>> {
        group
            .iter()
            .map(|job| errors(job.deliveries.len(), error))
            .collect()
    };
    // Each statement is bounded on the server; the whole group, a little above the sum.
    let limit = statement_timeout * 3 + Duration::from_secs(5);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let client = match pool.get().await {
            Ok(client) => client,
            Err(error) => {
                turn.take();
                let message = error.to_string();
                tracing::warn!(%message, "no connection for a group; nothing of it is acknowledged");
                return all(&|| StoreError::Pool(message.clone()));
            }
        };
        match tokio::time::timeout(limit, apply::write_group(&client, group, channel, turn)).await {
            Ok(Ok(outcomes)) => return outcomes,
            Ok(Err(GroupError::Postgres(error))) => {
                discard_transaction(client).await;
                if retryable(&error) && attempt < GROUP_ATTEMPTS {
                    tracing::info!(attempt, error = %error::describe(&error), "group retried");
                    continue;
                }
                tracing::warn!(error = %error::describe(&error), "group not committed; nothing of it is acknowledged");
                let error = Arc::new(error);
                return all(&|| StoreError::Batch(Arc::clone(&error)));
            }
            Ok(Err(GroupError::Inconsistent(error))) => {
                discard_transaction(client).await;
                let message = error.to_string();
                tracing::error!(%message, "group not committed; nothing of it is acknowledged");
                return all(&|| StoreError::corrupt(message.clone()));
            }
            Err(_) => {
                // The connection may be mid-statement: never reuse it. Closing it makes the
                // server roll back (a COMMIT already sent may still succeed: then Protime's
                // redelivery is a duplicate).
                drop(deadpool_postgres::Object::take(client));
                tracing::warn!(?limit, "group timed out; nothing of it is acknowledged");
                return all(&|| StoreError::Timeout {
                    what: "committing a group",
                    after: limit,
                });
            }
        }
    }
}

/// Ends a failed transaction, or closes the connection when that does not work quickly.
async fn discard_transaction(client: deadpool_postgres::Object) {
    let rolled_back =
        tokio::time::timeout(Duration::from_secs(5), client.batch_execute("ROLLBACK")).await;
    if !matches!(rolled_back, Ok(Ok(()))) {
        drop(deadpool_postgres::Object::take(client));
    }
}

impl DeliverySink for PgStore {
    fn record(&self, delivery: Delivery) -> SinkFuture<'_, Result<Receipt, SinkError>> {
        let stored = PgStore::record(self, delivery);
        Box::pin(async move { stored.await.map_err(SinkError::from) })
    }

    fn record_batch(&self, deliveries: Vec<Delivery>) -> BatchFuture<'_> {
        let stored = PgStore::record_batch(self, deliveries);
        Box::pin(async move {
            stored
                .await
                .into_iter()
                .map(|outcome| outcome.map_err(SinkError::from))
                .collect()
        })
    }
}

impl SinkRead for PgStore {
    fn clocking(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<Clocking>, SinkError>> {
        Box::pin(async move {
            let state = self.state(id).await.map_err(SinkError::from)?;
            Ok(state.and_then(|state| state.clocking))
        })
    }

    fn state(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<ClockingState>, SinkError>> {
        Box::pin(async move { PgStore::state(self, id).await.map_err(SinkError::from) })
    }

    fn list(
        &self,
        after: Option<ClockingId>,
        limit: usize,
    ) -> SinkFuture<'_, Result<Vec<Clocking>, SinkError>> {
        Box::pin(async move { self.list_page(after, limit).await.map_err(SinkError::from) })
    }

    fn changes(
        &self,
        after: FeedCursor,
        limit: usize,
    ) -> SinkFuture<'_, Result<FeedPage, SinkError>> {
        Box::pin(async move { self.feed(after, limit).await.map_err(SinkError::from) })
    }
}

// The receiver shares one store between tasks.
const _: () = {
    const fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<PgStore>();
};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
