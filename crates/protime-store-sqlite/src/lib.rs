//! The embedded SQLite backend of the `protime-webhooks` sink contract: a
//! [`DeliverySink`] and [`SinkRead`] in one file, no server.
//!
//! [`SqliteStore`] keeps, in one SQLite file:
//!
//! - `clocking_state`: the current state, one row per clocking id, last writer wins by
//!   `changeVersion` (`protime_model::decide`, byte order — SQLite's `BINARY` collation and
//!   Rust's `str` order agree); deletions leave a tombstone so an older update that arrives
//!   late cannot resurrect the clocking;
//! - `change_log`: every authentic valid webhook delivery, redeliveries and stale ones
//!   included, with the body exactly as received; and every synced clocking that was
//!   applied, with the sync run and page (no body is made up for it). Append-only, but for
//!   retention and erasure. Its applied entries, in `seq` order, are the change feed
//!   ([`SinkRead::changes`]);
//! - `dead_letters`: every authentic delivery that failed validation, with its errors;
//! - `erasures`: when a person was erased and how many rows went, never whose.
//!
//! # Retention and erasure
//!
//! Nothing is removed unless asked. [`SqliteStore::purge`] removes history by age (webhook
//! bodies, change-log entries, dead letters) but never a state row — the per-id watermark
//! that keeps a late, older delivery stale — nor the entry a state row points at (the
//! current clocking). [`SqliteStore::forget_person`] erases a person's clockings, leaving
//! erased tombstones (id and version) and one feed entry of origin `erasure` (a Delete) per
//! clocking. Both read on a connection of their own and write in short steps that the writer
//! thread runs between two groups, so they never contend with deliveries for the lock.
//!
//! # Schema
//!
//! The tables are made by the SQL migrations in `migrations/`, embedded at compile time and
//! applied by [refinery](https://docs.rs/refinery) when a store is opened. The table
//! `protime_schema_history` records the applied ones (version, name, checksum): it is the
//! schema version. `PRAGMA user_version` is set to the same version, so protime 0.1, which
//! checks only that, refuses the file. A file made before the history existed
//! (`user_version` 1 or 2) has its migrations recorded without running them, then gets the
//! later ones. A file of a newer version, or whose recorded migrations differ from the
//! embedded ones (migrated by other code), is refused ([`StoreError::Unsupported`]). Stores
//! may open one file at the same time (threads or processes): one migrates, the others
//! find it done.
//!
//! # Durability
//!
//! The receiver acknowledges a delivery (2xx) once [`SqliteStore::record`] resolves, and
//! Protime does not send it again. So `record` resolves only after the transaction holding
//! the delivery has committed with `journal_mode=WAL` and `synchronous=FULL`: SQLite syncs
//! the write-ahead log to disk on every commit, so an acknowledged delivery survives a power
//! loss or an OS crash, not only a process kill ([`Durability::ProcessCrash`] trades that
//! for speed).
//!
//! # Group commit
//!
//! One writer thread owns the write connection. `record` and `record_batch` queue a job on
//! a channel; the writer takes the first queued job, adds whatever else is queued (up to
//! 4,096 deliveries; one `record_batch` is never split), applies them all in one
//! transaction, commits — one `fsync` for the whole group — and only then answers every
//! waiter. If the group cannot be committed, every waiter gets the error and nothing of it
//! is acknowledged. A sync writes its pages with `record_batch`, several pages per batch.
//!
//! ```no_run
//! use protime_model::{parse_delivery, ApplyOutcome};
//! use protime_webhooks::sink::{Delivery, Receipt, WebhookOrigin};
//! use protime_store_sqlite::SqliteStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteStore::open("clockings.sqlite3")?;
//! let body = br#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000C","id":7}}"#;
//! let change = parse_delivery(body)?;
//! let origin = WebhookOrigin::new(bytes::Bytes::from_static(body), "eaa2ba0c");
//! let receipt = store.record_blocking(Delivery::webhook(change, origin))?;
//! assert_eq!(receipt, Receipt::Applied(ApplyOutcome::Applied));
//! assert!(store.clocking_blocking(protime_model::ClockingId::new(7)?)?.is_none());
//! store.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! None. SQLite is compiled in (`rusqlite`'s `bundled` feature): no system library needed.
//!
//! # Public dependencies
//!
//! - `protime-webhooks` 0.1 and `protime-model` 0.1: the sink contract this store implements
//!   ([`DeliverySink`], [`SinkRead`]) and the model it stores;
//! - `rusqlite` 0.37: the source of [`StoreError::Sqlite`] and [`StoreError::Batch`];
//!   `refinery` 0.10: the source of a migration error.

mod apply;
mod error;
mod file_watch;
mod read;
mod retention;
mod schema;
mod writer;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use protime_model::{ChangeVersion, Clocking, ClockingId};
use protime_webhooks::sink::{
    BatchFuture, ClockingState, Delivery, DeliverySink, FeedCursor, FeedPage, Receipt, SinkError,
    SinkFuture, SinkRead,
};
use rusqlite::Connection;
use tokio::sync::oneshot;

pub use error::StoreError;
pub use protime_webhooks::sink::RETENTION_BATCH;
pub use read::{DeadLetter, StoreStats};
pub use retention::{ErasureCounts, ErasureRecord, Purge, PurgeCounts};

use apply::Prepared;
use file_watch::FileWatch;
use writer::{Counters, Job, Outcome, Reply, Work};

/// Read connections kept open between reads.
const MAX_IDLE_READERS: usize = 4;

/// The durable SQLite store; see the [crate documentation](crate).
///
/// Cheap to clone (clones share the writer thread and the read connections). The writer
/// thread stops when the last clone is dropped, after committing what was queued;
/// [`SqliteStore::close`] stops it and waits.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` once [`SqliteStore::close`] ran.
    jobs: RwLock<Option<mpsc::Sender<Work>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    counters: Arc<Counters>,
    /// The file the writer commits to (see `file_watch.rs`).
    file: Arc<FileWatch>,
    /// `PRAGMA synchronous` as the writer's connection reported it after configuration.
    synchronous: &'static str,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// What an acknowledged (committed) delivery survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is synced on every commit, so a commit survives a power
    /// loss or an OS crash. The default.
    #[default]
    PowerLoss,
    /// `synchronous=NORMAL`: a commit survives a crash or kill of the process, but the last
    /// commits before a power loss or OS crash may be lost (and Protime would not redeliver
    /// them: they were acknowledged). Faster, because commits do not wait for the disk.
    ProcessCrash,
}

/// The name of a `PRAGMA synchronous` value.
fn synchronous_name(value: i64) -> &'static str {
    match value {
        0 => "OFF",
        1 => "NORMAL",
        2 => "FULL",
        3 => "EXTRA",
        _ => "unknown",
    }
}

fn configure_writer(conn: &Connection, durability: Durability) -> Result<(), StoreError> {
    conn.busy_timeout(read::BUSY_TIMEOUT)?;
    let mode = enable_wal(conn)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unsupported {
            what: format!("journal_mode is {mode}, WAL is required (is this an on-disk file?)"),
        });
    }
    // FULL: the WAL is synced on every commit, so a commit survives power loss (see the
    // crate documentation); NORMAL only when the caller chose that trade-off.
    let synchronous = match durability {
        Durability::PowerLoss => "FULL",
        Durability::ProcessCrash => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    // Read back: a build or a VFS that ignores the setting must not pass for durable.
    let applied: i64 = conn.pragma_query_value(None, "synchronous", |row| row.get(0))?;
    if synchronous_name(applied) != synchronous {
        return Err(StoreError::Unsupported {
            what: format!(
                "synchronous is {} after setting {synchronous}",
                synchronous_name(applied)
            ),
        });
    }
    // A sync writes whole pages of clockings per transaction: a 16 MiB page cache (instead
    // of 2 MiB) keeps the B-tree pages being filled in memory rather than spilling them to
    // the WAL mid-transaction, and checkpointing every 4,000 WAL pages (instead of 1,000)
    // copies each database page back fewer times. Checkpoints stay on the writer thread,
    // between transactions: a checkpointer beside a busy writer never catches up with the
    // WAL's end, so the WAL is never restarted and grows (tried: 270 MB in one sync).
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.pragma_update(None, "wal_autocheckpoint", 4_000)?;
    Ok(())
}

/// Switches the file to WAL and returns the journal mode it then has. The first switch of a
/// file needs an exclusive lock, and when several connections switch at once SQLite answers
/// some of them `SQLITE_BUSY` at once instead of calling the busy handler (waiting could
/// deadlock: each holds the shared lock the other needs gone). So a busy switch is retried
/// until the busy timeout.
fn enable_wal(conn: &Connection) -> Result<String, StoreError> {
    let start = Instant::now();
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == rusqlite::ErrorCode::DatabaseBusy
                    && start.elapsed() < read::BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            result => return Ok(result?),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single push/pop/take: poisoning cannot leave a half-done
    // update behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn single(mut outcomes: Vec<Outcome>) -> Outcome {
    outcomes.pop().unwrap_or(Err(StoreError::Closed))
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`: WAL journal, `synchronous=FULL`, a
    /// busy timeout; creates, migrates or checks the schema (see [Schema](crate#schema); a
    /// newer version is refused) and starts the writer thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::default())
    }

    /// [`Self::open`] with a chosen [`Durability`].
    ///
    /// ```no_run
    /// use protime_store_sqlite::{Durability, SqliteStore};
    /// let store = SqliteStore::open_with("clockings.sqlite", Durability::ProcessCrash)?;
    /// # Ok::<(), protime_store_sqlite::StoreError>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut writer = Connection::open(&path)?;
        // SQLite falls back to reading only when the file cannot be written; every
        // delivery would then fail. Say so once, at start.
        if writer.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StoreError::ReadOnly { path });
        }
        configure_writer(&writer, durability)?;
        schema::migrate(&mut writer)?;
        // Fail now, not on the first read, if a read connection cannot be opened.
        let reader = read::open_reader(&path)?;

        let (sender, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let writer_counters = Arc::clone(&counters);
        let synchronous =
            synchronous_name(writer.pragma_query_value(None, "synchronous", |row| row.get(0))?);
        let file = Arc::new(FileWatch::new(&path)?);
        let writer_file = Arc::clone(&file);
        let handle = std::thread::Builder::new()
            .name("protime-sqlite-writer".into())
            .spawn(move || writer::run_writer(writer, &receiver, &writer_counters, &writer_file))?;

        Ok(Self {
            inner: Arc::new(Inner {
                path,
                jobs: RwLock::new(Some(sender)),
                writer: Mutex::new(Some(handle)),
                readers: Mutex::new(vec![reader]),
                counters,
                file,
                synchronous,
            }),
        })
    }

    /// The file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// `Ok` while the store's path still names the file it writes to and that file can be
    /// written; [`StoreError::FileGone`] once it was deleted, replaced or made read-only
    /// (every delivery is then refused, never acknowledged). For readiness checks.
    ///
    /// ```no_run
    /// let store = protime_store_sqlite::SqliteStore::open("clockings.sqlite")?;
    /// std::fs::remove_file("clockings.sqlite")?;
    /// assert!(store.check_file().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_file(&self) -> Result<(), StoreError> {
        self.inner.file.check()
    }

    /// `PRAGMA synchronous` as SQLite reports it on the writer's connection: `FULL` for
    /// [`Durability::PowerLoss`], `NORMAL` for [`Durability::ProcessCrash`].
    ///
    /// ```no_run
    /// let store = protime_store_sqlite::SqliteStore::open("clockings.sqlite")?;
    /// assert_eq!(store.synchronous(), "FULL");
    /// # Ok::<(), protime_store_sqlite::StoreError>(())
    /// ```
    pub fn synchronous(&self) -> &'static str {
        self.inner.synchronous
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
    ///
    /// The delivery is queued when `record` is called, not when the future is first polled:
    /// deliveries queued by one caller are applied in the order of its calls, and dropping
    /// the future does not withdraw the delivery (it is committed all the same).
    pub fn record(
        &self,
        delivery: Delivery,
    ) -> impl Future<Output = Result<Receipt, StoreError>> + Send + 'static {
        let batch = self.record_batch(vec![delivery]);
        async move { single(batch.await) }
    }

    /// Stores a batch in one transaction (never split, never mixed with another job's
    /// failure); resolves with one outcome per delivery, in order, once it has committed.
    pub fn record_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl Future<Output = Vec<Result<Receipt, StoreError>>> + Send + 'static {
        let count = deliveries.len();
        let (sender, receiver) = oneshot::channel();
        let queued = self.submit(deliveries, Reply::Async(sender));
        async move {
            if queued.is_err() {
                return closed_outcomes(count);
            }
            receiver.await.unwrap_or_else(|_| closed_outcomes(count))
        }
    }

    /// [`Self::record`] for callers that are not async: blocks the calling thread until the
    /// delivery is committed. Do not call it from an async task (it would block the
    /// executor's thread); use [`Self::record`] there.
    pub fn record_blocking(&self, delivery: Delivery) -> Result<Receipt, StoreError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.submit(vec![delivery], Reply::Blocking(sender))?;
        single(receiver.recv().map_err(|_| StoreError::Closed)?)
    }

    /// Queues a job; the only failure is a closed store.
    fn submit(&self, deliveries: Vec<Delivery>, reply: Reply) -> Result<(), StoreError> {
        let jobs = self
            .inner
            .jobs
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let sender = jobs.as_ref().ok_or(StoreError::Closed)?;
        sender
            .send(Work::Deliver(Job {
                deliveries: deliveries.into_iter().map(Prepared::new).collect(),
                reply,
            }))
            .map_err(|_| StoreError::Closed)
    }

    /// Closes the store for every clone: later `record` calls fail with
    /// [`StoreError::Closed`]; deliveries queued before are committed and answered. Waits
    /// until the writer thread has finished (blocking: call it from a blocking context).
    /// Reads keep working.
    pub fn close(self) -> Result<(), StoreError> {
        let sender = self
            .inner
            .jobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(sender);
        let handle = lock(&self.inner.writer).take();
        match handle {
            Some(handle) => handle.join().map_err(|_| StoreError::WriterPanicked),
            None => Ok(()),
        }
    }

    /// Every clocking that currently exists, by id (loads them all: prefer
    /// [`SinkRead::list`] for large stores).
    pub fn clockings(&self) -> Result<Vec<Clocking>, StoreError> {
        self.read(|conn| read::list(conn, None, usize::MAX))
    }

    /// The clocking with this id, if it currently exists (blocking read).
    pub fn clocking_blocking(&self, id: ClockingId) -> Result<Option<Clocking>, StoreError> {
        self.read(|conn| read::clocking(conn, id))
    }

    /// Every tracked id with the version of its last applied change and whether that change
    /// removed the clocking (a tombstone), by id.
    pub fn tracked_versions(&self) -> Result<Vec<(ClockingId, ChangeVersion, bool)>, StoreError> {
        self.read(|conn| read::tracked_versions(conn))
    }

    /// Number of change-log entries (every webhook delivery stored, redeliveries included,
    /// and every applied synced clocking).
    pub fn change_log_len(&self) -> Result<u64, StoreError> {
        self.read(|conn| read::change_log_len(conn))
    }

    /// Every dead letter, in arrival order.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.read(|conn| read::dead_letters(conn))
    }

    /// The dead letter at `seq`, if there is one.
    pub fn dead_letter(&self, seq: i64) -> Result<Option<DeadLetter>, StoreError> {
        self.read(|conn| read::dead_letter(conn, seq))
    }

    /// Records that the dead letter at `seq` was replayed: its body passed validation again
    /// and was recorded (through [`DeliverySink::record`]) with the receipt `outcome`.
    /// `Ok(false)` when there is no dead letter at `seq`. The row itself is kept as evidence.
    ///
    /// Replaying records first and marks afterwards, so a crash in between leaves the dead
    /// letter unmarked; replaying it again records a duplicate, which changes nothing.
    ///
    /// ```no_run
    /// use protime_model::ApplyOutcome;
    /// use protime_store_sqlite::SqliteStore;
    /// use protime_webhooks::sink::Receipt;
    /// let store = SqliteStore::open("clockings.sqlite")?;
    /// store.mark_dead_letter_replayed(1, Receipt::Applied(ApplyOutcome::Applied))?;
    /// # Ok::<(), protime_store_sqlite::StoreError>(())
    /// ```
    pub fn mark_dead_letter_replayed(
        &self,
        seq: i64,
        outcome: Receipt,
    ) -> Result<bool, StoreError> {
        let Receipt::Applied(applied) = outcome else {
            return Err(StoreError::Unsupported {
                what: format!(
                    "a replay is marked with the receipt of a state-keeping store, not {:?}",
                    outcome.name()
                ),
            });
        };
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        // A connection of its own: the writer thread takes deliveries only. SQLite
        // coordinates it with the writer (and other processes) through its locks.
        let conn = Connection::open(&self.inner.path)?;
        conn.busy_timeout(read::BUSY_TIMEOUT)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let now = apply::rfc3339(chrono::Utc::now());
        let changed = conn.execute(
            "UPDATE dead_letters SET replayed_at = ?2, replay_outcome = ?3 WHERE seq = ?1",
            rusqlite::params![seq, now, Receipt::Applied(applied).name()],
        )?;
        Ok(changed == 1)
    }

    /// Applies retention (blocking): removes what was received before each cutoff of
    /// `purge` — webhook bodies (the entries stay), change-log entries, dead letters — in
    /// transactions of at most [`RETENTION_BATCH`] rows each, so deliveries are never held up
    /// for long. Never removed: the state rows (the per-id version watermark, so a late older
    /// delivery is still stale) and the entries they point at (the current clockings). With
    /// `dry_run`, counts what would go and removes nothing.
    ///
    /// ```no_run
    /// use protime_store_sqlite::{Purge, SqliteStore};
    /// let store = SqliteStore::open("clockings.sqlite")?;
    /// let month_ago = chrono::Utc::now() - chrono::Duration::days(30);
    /// let counts = store.purge(&Purge::new().raw_bodies_before(month_ago))?;
    /// println!("{} bodies purged", counts.raw_bodies);
    /// # Ok::<(), protime_store_sqlite::StoreError>(())
    /// ```
    pub fn purge(&self, purge: &Purge) -> Result<PurgeCounts, StoreError> {
        let mut conn = self.own_reader()?;
        retention::purge(
            &mut conn,
            &|step| self.on_writer(step),
            purge,
            chrono::Utc::now(),
        )
    }

    /// Erases a person (blocking): every change-log entry of every clocking whose stored
    /// body names `person` as `data.person.id` (current state and history), and every dead
    /// letter that does. Each such clocking keeps its state row as an erased tombstone (id
    /// and version, for ordering) pointing at a new feed entry of origin `erasure` (a Delete
    /// at that version), so followers of the feed delete it too. The erasure is recorded in
    /// `erasures` (time and counts, not the person). With `dry_run`, counts only.
    pub fn forget_person(&self, person: i64, dry_run: bool) -> Result<ErasureCounts, StoreError> {
        let mut conn = self.own_reader()?;
        retention::forget(
            &mut conn,
            &|step| self.on_writer(step),
            person,
            dry_run,
            chrono::Utc::now(),
        )
    }

    /// The recorded erasures, oldest first.
    pub fn erasures(&self) -> Result<Vec<ErasureRecord>, StoreError> {
        self.read(|conn| retention::erasures(conn))
    }

    /// A read connection for a purge or an erasure (its writes go to the writer thread).
    fn own_reader(&self) -> Result<Connection, StoreError> {
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        read::open_reader(&self.inner.path)
    }

    /// Runs a retention or erasure step on the writer thread, between two groups of
    /// deliveries, and waits for its answer.
    fn on_writer(&self, step: retention::Step) -> Result<(u64, u64), StoreError> {
        let (sender, answer) = mpsc::sync_channel(1);
        let task: writer::Task = Box::new(move |conn| {
            // A caller that stopped waiting is not an error: the step is committed or not.
            let _ = sender.send(step(conn));
        });
        {
            let jobs = self
                .inner
                .jobs
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let jobs = jobs.as_ref().ok_or(StoreError::Closed)?;
            jobs.send(Work::Task(task))
                .map_err(|_| StoreError::Closed)?;
        }
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    /// Counts of what the store holds (one consistent snapshot; counting scans the tables).
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut stats = self.read(read::stats)?;
        stats.batches = self.inner.counters.batches.load(Ordering::Relaxed);
        stats.largest_batch = self.inner.counters.largest_batch.load(Ordering::Relaxed);
        Ok(stats)
    }

    /// Runs `f` on an idle read connection (or a new one), then keeps it for later reads.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = lock(&self.inner.readers).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => read::open_reader(&self.inner.path)?,
        };
        let result = f(&mut conn);
        let mut readers = lock(&self.inner.readers);
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
        result
    }

    /// A read for the async read side: on tokio's blocking pool when a runtime is there
    /// (a read is short but synchronous), inline otherwise.
    fn read_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> SinkFuture<'_, Result<T, SinkError>> {
        let store = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Box::pin(async move {
                match runtime.spawn_blocking(move || store.read(f)).await {
                    Ok(result) => result.map_err(SinkError::from),
                    Err(join) => {
                        Err(SinkError::unavailable("the read task failed").with_source(join))
                    }
                }
            }),
            Err(_) => Box::pin(std::future::ready(store.read(f).map_err(SinkError::from))),
        }
    }
}

fn closed_outcomes(count: usize) -> Vec<Outcome> {
    (0..count).map(|_| Err(StoreError::Closed)).collect()
}

impl DeliverySink for SqliteStore {
    fn record(&self, delivery: Delivery) -> SinkFuture<'_, Result<Receipt, SinkError>> {
        let stored = SqliteStore::record(self, delivery);
        Box::pin(async move { stored.await.map_err(SinkError::from) })
    }

    fn record_batch(&self, deliveries: Vec<Delivery>) -> BatchFuture<'_> {
        let stored = SqliteStore::record_batch(self, deliveries);
        Box::pin(async move {
            stored
                .await
                .into_iter()
                .map(|outcome| outcome.map_err(SinkError::from))
                .collect()
        })
    }
}

impl SinkRead for SqliteStore {
    fn clocking(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<Clocking>, SinkError>> {
        self.read_async(move |conn| read::clocking(conn, id))
    }

    fn state(&self, id: ClockingId) -> SinkFuture<'_, Result<Option<ClockingState>, SinkError>> {
        self.read_async(move |conn| read::state(conn, id))
    }

    fn list(
        &self,
        after: Option<ClockingId>,
        limit: usize,
    ) -> SinkFuture<'_, Result<Vec<Clocking>, SinkError>> {
        self.read_async(move |conn| read::list(conn, after, limit))
    }

    fn changes(
        &self,
        after: FeedCursor,
        limit: usize,
    ) -> SinkFuture<'_, Result<FeedPage, SinkError>> {
        self.read_async(move |conn| read::changes(conn, after, limit))
    }
}

// The receiver shares one store between tasks.
const _: () = {
    const fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<SqliteStore>();
};

#[cfg(test)]
mod tests;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
