//! The durable SQLite store: the default [`DeliverySink`].
//!
//! [`SqliteStore`] keeps, in one SQLite file:
//!
//! - `clocking_state`: the current state, one row per clocking id, last writer wins by
//!   `changeVersion` (the same decision as [`crate::tracker::decide`]); deletions leave a
//!   tombstone so an older update that arrives late cannot resurrect the clocking;
//! - `change_log`: every authentic valid delivery, redeliveries and stale ones included,
//!   append-only, with the body exactly as received — nothing acknowledged is ever lost, and
//!   replaying the log in `seq` order through [`crate::parse_delivery`] rebuilds the state;
//! - `dead_letters`: every authentic delivery that failed validation, with its errors.
//!
//! # Durability
//!
//! The receiver acknowledges a delivery (2xx) once [`SqliteStore::record`] resolves, and
//! Protime does not send it again. So `record` resolves only after the transaction holding
//! the record has committed with `journal_mode=WAL` and `synchronous=FULL`: SQLite syncs the
//! write-ahead log to disk on every commit, so an acknowledged delivery survives a power loss
//! or an OS crash, not only a process kill (`synchronous=NORMAL` would survive a process
//! kill but may lose the last commits on power loss, i.e. acknowledged deliveries).
//!
//! # Group commit
//!
//! One writer thread owns the write connection. [`SqliteStore::record`] queues the record on
//! a channel; the writer takes the first queued record, drains whatever else is queued (up to
//! 256), applies them all in one transaction (each in its own savepoint), commits — one
//! `fsync` for the whole batch — and only then answers every waiter. If the batch cannot be
//! committed, every waiter of the batch gets the error and nothing of it is acknowledged.
//! Reads use their own connections (WAL readers do not block the writer, nor it them).
//!
//! ```no_run
//! use protime_webhooks::{parse_delivery, Record, RecordOutcome, ApplyOutcome};
//! use protime_webhooks::store::SqliteStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteStore::open("clockings.sqlite3")?;
//! let body = br#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000C","id":7}}"#;
//! let change = parse_delivery(body)?;
//! let outcome = store.record_blocking(Record::Change { change, raw_body: body.to_vec() })?;
//! assert_eq!(outcome, RecordOutcome::Change(ApplyOutcome::Applied));
//! assert!(store.clocking(protime_webhooks::ClockingId::new(7)?)?.is_none());
//! store.close()?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, TransactionBehavior, params};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::model::{ChangeVersion, Clocking, ClockingChange, ClockingId};
use crate::sink::{DeliverySink, Record, RecordOutcome, SinkError, SinkFuture};
use crate::tracker::{ApplyOutcome, decide};

/// Version of the schema below, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

/// Most records applied in one transaction.
const MAX_BATCH: usize = 256;

/// How long a connection waits for a lock held by another connection (another process
/// writing the same file, or a checkpoint) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections kept open between reads.
const MAX_IDLE_READERS: usize = 4;

/// The schema, version 1. Every statement is idempotent.
const SCHEMA_V1: &str = "
-- The current state: the last applied change per clocking id. `deleted = 1` is a tombstone
-- (a `Delete`, or an `InsertOrUpdate` with `status: Deleted`): its version keeps blocking
-- older updates, so a late update cannot resurrect the clocking. `clocking_json` is the
-- clocking in Protime's wire format (the `data` of an `InsertOrUpdate`), NULL for tombstones.
CREATE TABLE IF NOT EXISTS clocking_state (
    id             INTEGER PRIMARY KEY,
    change_version TEXT    NOT NULL,
    deleted        INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    clocking_json  TEXT,
    CHECK ((deleted = 1) = (clocking_json IS NULL))
) STRICT;

-- Every authentic, valid delivery in arrival (commit) order, redeliveries and stale ones
-- included, with the body exactly as received and what applying it did. Append-only: rows
-- are never updated or deleted, so nothing acknowledged is lost and replaying `raw_body` in
-- `seq` order rebuilds `clocking_state`.
CREATE TABLE IF NOT EXISTS change_log (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at    TEXT    NOT NULL,
    clocking_id    INTEGER NOT NULL,
    change_version TEXT    NOT NULL,
    change_type    TEXT    NOT NULL CHECK (change_type IN ('InsertOrUpdate', 'Delete')),
    outcome        TEXT    NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'stale')),
    raw_body       BLOB    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS change_log_by_clocking ON change_log (clocking_id, change_version);

-- Every authentic delivery that failed validation: the body exactly as received and the
-- violations (`ValidationErrors` as a JSON array), kept for inspection and replay.
CREATE TABLE IF NOT EXISTS dead_letters (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at    TEXT    NOT NULL,
    raw_body       BLOB    NOT NULL,
    errors_json    TEXT    NOT NULL
) STRICT;
";

const SELECT_VERSION: &str = "SELECT change_version FROM clocking_state WHERE id = ?1";
const UPSERT_STATE: &str = "INSERT INTO clocking_state (id, change_version, deleted, clocking_json)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (id) DO UPDATE SET change_version = excluded.change_version,
         deleted = excluded.deleted, clocking_json = excluded.clocking_json";
const INSERT_CHANGE: &str = "INSERT INTO change_log
     (received_at, clocking_id, change_version, change_type, outcome, raw_body)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_DEAD_LETTER: &str =
    "INSERT INTO dead_letters (received_at, raw_body, errors_json) VALUES (?1, ?2, ?3)";

/// Error of the store. A record whose `record` call returned an error was not acknowledged
/// as stored; the receiver answers 5xx and Protime retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction of the batch this record belonged to failed (to begin or to commit):
    /// nothing of the batch was stored.
    #[error("the batch was not committed: {0}")]
    Batch(#[source] Arc<rusqlite::Error>),
    /// The store was closed ([`SqliteStore::close`]), or its writer thread is gone.
    #[error("the store is closed")]
    Closed,
    /// The file holds data this store cannot have written.
    #[error("the store is corrupt: {what}")]
    Corrupt {
        /// What is wrong.
        what: String,
    },
    /// The file cannot be used as a store: a newer schema version, or WAL mode unavailable.
    #[error("the database cannot be used as a store: {what}")]
    Unsupported {
        /// Why.
        what: String,
    },
    /// The operating system failed (e.g. the writer thread could not be started).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A value could not be serialized to JSON.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
    /// The writer thread panicked (reported by [`SqliteStore::close`]).
    #[error("the writer thread panicked")]
    WriterPanicked,
}

impl StoreError {
    fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt { what: what.into() }
    }
}

impl From<StoreError> for SinkError {
    fn from(error: StoreError) -> Self {
        SinkError::new(error.to_string())
    }
}

/// A dead letter as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Position in the `dead_letters` table (increasing in arrival order).
    pub seq: i64,
    /// When the delivery was handed to the store, RFC 3339 in UTC.
    pub received_at: String,
    /// The body exactly as received.
    pub raw_body: Vec<u8>,
    /// The violations, [`crate::ValidationErrors`] serialized as a JSON array.
    pub errors_json: String,
}

/// Counts of what the store holds, and of the writer's work since this store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Change-log entries that were applied.
    pub applied: u64,
    /// Change-log entries that were redeliveries of an applied version.
    pub duplicates: u64,
    /// Change-log entries older than the version already applied.
    pub stale: u64,
    /// Dead letters stored.
    pub dead_letters: u64,
    /// Clockings that currently exist.
    pub clockings: u64,
    /// Ids whose last applied change removed the clocking.
    pub tombstones: u64,
    /// Transactions committed by the writer since [`SqliteStore::open`] (not persisted).
    pub batches: u64,
    /// Most records committed in one transaction since [`SqliteStore::open`] (not persisted).
    pub largest_batch: u64,
}

/// The durable SQLite store; see the [module documentation](self).
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
    jobs: RwLock<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    largest_batch: AtomicU64,
}

type Outcome = Result<RecordOutcome, StoreError>;

/// One queued record and who waits for it.
struct Job {
    pending: Pending,
    reply: Reply,
}

/// What the writer applies.
struct Pending {
    record: Record,
    received_at: String,
}

/// Where the writer sends the outcome: an async waiter ([`SqliteStore::record`]) or a
/// blocked thread ([`SqliteStore::record_blocking`]).
enum Reply {
    Async(oneshot::Sender<Outcome>),
    Blocking(mpsc::SyncSender<Outcome>),
}

impl Reply {
    fn send(self, outcome: Outcome) {
        // A waiter that stopped waiting (a dropped future) is not an error: the record is
        // committed all the same, and Protime redelivers what it saw unacknowledged.
        match self {
            Self::Async(sender) => {
                let _ = sender.send(outcome);
            }
            Self::Blocking(sender) => {
                let _ = sender.send(outcome);
            }
        }
    }
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

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`: WAL journal, `synchronous=FULL`, a
    /// busy timeout, foreign keys on; creates or checks the schema (`PRAGMA user_version`)
    /// and starts the writer thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::default())
    }

    /// [`Self::open`] with a chosen [`Durability`].
    ///
    /// ```no_run
    /// use protime_webhooks::store::{Durability, SqliteStore};
    /// let store = SqliteStore::open_with("clockings.sqlite", Durability::ProcessCrash)?;
    /// # Ok::<(), protime_webhooks::StoreError>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut writer = Connection::open(&path)?;
        configure_writer(&writer, durability)?;
        migrate(&mut writer)?;
        // Fail now, not on the first read, if a read connection cannot be opened.
        let reader = open_reader(&path)?;

        let (sender, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let writer_counters = Arc::clone(&counters);
        let handle = std::thread::Builder::new()
            .name("protime-sqlite-writer".into())
            .spawn(move || run_writer(writer, &receiver, &writer_counters))?;

        Ok(Self {
            inner: Arc::new(Inner {
                path,
                jobs: RwLock::new(Some(sender)),
                writer: Mutex::new(Some(handle)),
                readers: Mutex::new(vec![reader]),
                counters,
            }),
        })
    }

    /// The file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether [`Self::close`] was called (on any clone).
    pub fn is_closed(&self) -> bool {
        read_lock(&self.inner.jobs).is_none()
    }

    /// Stores one record; resolves once the transaction holding it has committed.
    ///
    /// The record is queued when `record` is called, not when the future is first polled:
    /// records queued by one caller are applied in the order of its calls, and dropping
    /// the future does not withdraw the record (it is committed all the same). The
    /// [`DeliverySink`] implementation is this method with the error turned into a
    /// [`SinkError`].
    pub fn record(
        &self,
        record: Record,
    ) -> impl Future<Output = Result<RecordOutcome, StoreError>> + Send + 'static {
        let (sender, receiver) = oneshot::channel();
        let queued = self.submit(record, Reply::Async(sender));
        async move {
            queued?;
            receiver.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// [`Self::record`] for callers that are not async: blocks the calling thread until the
    /// record is committed. Do not call it from an async task (it would block the
    /// executor's thread); use [`Self::record`] there.
    pub fn record_blocking(&self, record: Record) -> Result<RecordOutcome, StoreError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.submit(record, Reply::Blocking(sender))?;
        receiver.recv().map_err(|_| StoreError::Closed)?
    }

    fn submit(&self, record: Record, reply: Reply) -> Result<(), StoreError> {
        let job = Job {
            pending: Pending {
                record,
                received_at: now_rfc3339(),
            },
            reply,
        };
        let jobs = read_lock(&self.inner.jobs);
        let sender = jobs.as_ref().ok_or(StoreError::Closed)?;
        sender.send(job).map_err(|_| StoreError::Closed)
    }

    /// Closes the store for every clone: later `record` calls fail with
    /// [`StoreError::Closed`]; records queued before are committed and answered. Waits
    /// until the writer thread has finished (blocking: call it from a blocking context).
    /// Reads keep working.
    pub fn close(self) -> Result<(), StoreError> {
        let sender = write_lock(&self.inner.jobs).take();
        drop(sender);
        let handle = lock(&self.inner.writer).take();
        match handle {
            Some(handle) => handle.join().map_err(|_| StoreError::WriterPanicked),
            None => Ok(()),
        }
    }

    /// Every clocking that currently exists, by id.
    pub fn clockings(&self) -> Result<Vec<Clocking>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, clocking_json FROM clocking_state WHERE deleted = 0 ORDER BY id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?))
            })?;
            let mut clockings = Vec::new();
            for row in rows {
                let (id, json) = row?;
                clockings.push(stored_clocking(id, json.as_deref())?);
            }
            Ok(clockings)
        })
    }

    /// The clocking with this id, if it currently exists.
    pub fn clocking(&self, id: ClockingId) -> Result<Option<Clocking>, StoreError> {
        self.read(|conn| {
            let json = conn
                .prepare_cached(
                    "SELECT clocking_json FROM clocking_state WHERE id = ?1 AND deleted = 0",
                )?
                .query_row([id.get()], |row| row.get::<_, Option<String>>(0))
                .optional()?;
            json.map(|json| stored_clocking(id.get(), json.as_deref()))
                .transpose()
        })
    }

    /// Every tracked id with the version of its last applied change and whether that change
    /// removed the clocking (a tombstone), by id.
    pub fn tracked_versions(&self) -> Result<Vec<(ClockingId, ChangeVersion, bool)>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, change_version, deleted FROM clocking_state ORDER BY id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, bool>(2)?,
                ))
            })?;
            let mut versions = Vec::new();
            for row in rows {
                let (id, version, deleted) = row?;
                let id = ClockingId::new(id)
                    .map_err(|e| StoreError::corrupt(format!("clocking_state: {e}")))?;
                versions.push((id, stored_version(id.get(), version)?, deleted));
            }
            Ok(versions)
        })
    }

    /// Number of change-log entries (every valid delivery stored, redeliveries included).
    pub fn change_log_len(&self) -> Result<u64, StoreError> {
        self.read(|conn| count(conn, "SELECT COUNT(*) FROM change_log"))
    }

    /// Every dead letter, in arrival order.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT seq, received_at, raw_body, errors_json FROM dead_letters ORDER BY seq",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(DeadLetter {
                    seq: row.get(0)?,
                    received_at: row.get(1)?,
                    raw_body: row.get(2)?,
                    errors_json: row.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Counts of what the store holds (one consistent snapshot; counting scans the tables).
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut stats = self.read(|conn| {
            let tx = conn.transaction()?;
            let mut stats = StoreStats::default();
            {
                let mut statement =
                    tx.prepare_cached("SELECT outcome, COUNT(*) FROM change_log GROUP BY outcome")?;
                let rows = statement.query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })?;
                for row in rows {
                    let (outcome, n) = row?;
                    let n = to_count(n)?;
                    match outcome.as_str() {
                        "applied" => stats.applied = n,
                        "duplicate" => stats.duplicates = n,
                        "stale" => stats.stale = n,
                        other => {
                            return Err(StoreError::corrupt(format!(
                                "change_log: unknown outcome {other:?}"
                            )));
                        }
                    }
                }
            }
            stats.dead_letters = count(&tx, "SELECT COUNT(*) FROM dead_letters")?;
            stats.clockings = count(&tx, "SELECT COUNT(*) FROM clocking_state WHERE deleted = 0")?;
            stats.tombstones = count(&tx, "SELECT COUNT(*) FROM clocking_state WHERE deleted = 1")?;
            tx.commit()?;
            Ok(stats)
        })?;
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
            None => open_reader(&self.inner.path)?,
        };
        let result = f(&mut conn);
        let mut readers = lock(&self.inner.readers);
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
        result
    }
}

impl DeliverySink for SqliteStore {
    fn record(&self, record: Record) -> SinkFuture<'_> {
        let stored = SqliteStore::record(self, record);
        Box::pin(async move { stored.await.map_err(SinkError::from) })
    }
}

// The receiver shares one store between tasks.
const _: () = {
    const fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<SqliteStore>();
};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single push/pop/take: poisoning cannot leave a half-done
    // update behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_lock<T>(rw: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    rw.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(rw: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    rw.write().unwrap_or_else(PoisonError::into_inner)
}

fn now_rfc3339() -> String {
    chrono::DateTime::<chrono::Utc>::from(SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn configure_writer(conn: &Connection, durability: Durability) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unsupported {
            what: format!("journal_mode is {mode}, WAL is required (is this an on-disk file?)"),
        });
    }
    // FULL: the WAL is synced on every commit, so a commit survives power loss (see the
    // module documentation); NORMAL only when the caller chose that trade-off.
    let synchronous = match durability {
        Durability::PowerLoss => "FULL",
        Durability::ProcessCrash => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Reads only: a read-write handle (so it works whatever the state of the -shm file),
    // made unable to write.
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Creates the schema on a new file, checks it on an existing one.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_V1)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => {
            for table in ["clocking_state", "change_log", "dead_letters"] {
                let exists: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
                    [table],
                    |row| row.get(0),
                )?;
                if !exists {
                    return Err(StoreError::corrupt(format!(
                        "schema version {SCHEMA_VERSION} without table {table}"
                    )));
                }
            }
        }
        found => {
            return Err(StoreError::Unsupported {
                what: format!(
                    "schema version {found}, this version of protime-webhooks knows up to {SCHEMA_VERSION}"
                ),
            });
        }
    }
    tx.commit()?;
    Ok(())
}

/// The writer thread: group commit until every sender is gone, then return (closing the
/// write connection, which checkpoints the WAL).
fn run_writer(mut conn: Connection, jobs: &mpsc::Receiver<Job>, counters: &Counters) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let count = batch.len();
        let (pending, replies): (Vec<Pending>, Vec<Reply>) = batch
            .into_iter()
            .map(|job| (job.pending, job.reply))
            .unzip();
        let started = Instant::now();
        match write_batch(&mut conn, &pending) {
            Ok(outcomes) => {
                counters.batches.fetch_add(1, Ordering::Relaxed);
                counters
                    .largest_batch
                    .fetch_max(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
                tracing::debug!(
                    count,
                    duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "batch committed"
                );
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::warn!(count, %error, "batch not committed; nothing of it is acknowledged");
                let error = Arc::new(error);
                for reply in replies {
                    reply.send(Err(StoreError::Batch(Arc::clone(&error))));
                }
            }
        }
    }
    tracing::debug!("writer stopped: the store was closed or dropped");
}

/// Applies a batch in one transaction, each record in its own savepoint (a record that
/// fails gets its own error without taking the others down). The outer error means the
/// transaction itself failed: nothing was stored.
fn write_batch(conn: &mut Connection, batch: &[Pending]) -> Result<Vec<Outcome>, rusqlite::Error> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for pending in batch {
        let savepoint = tx.savepoint()?;
        match apply(&savepoint, pending) {
            Ok(outcome) => {
                savepoint.commit()?;
                outcomes.push(Ok(outcome));
            }
            Err(error) => {
                // The default drop behavior: roll back to the savepoint, then release it.
                savepoint.finish()?;
                outcomes.push(Err(error));
            }
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Applies one record on the writer's transaction.
fn apply(conn: &Connection, pending: &Pending) -> Outcome {
    match &pending.record {
        Record::Change { change, raw_body } => {
            let id = change.id().get();
            let known = conn
                .prepare_cached(SELECT_VERSION)?
                .query_row([id], |row| row.get::<_, String>(0))
                .optional()?
                .map(|version| stored_version(id, version))
                .transpose()?;
            let outcome = decide(known.as_ref(), change.change_version());
            if outcome == ApplyOutcome::Applied {
                let clocking_json = match change {
                    ClockingChange::InsertOrUpdate(clocking) if !clocking.is_deleted() => {
                        Some(serde_json::to_string(clocking)?)
                    }
                    _ => None,
                };
                conn.prepare_cached(UPSERT_STATE)?.execute(params![
                    id,
                    change.change_version().as_str(),
                    clocking_json.is_none(),
                    clocking_json,
                ])?;
            }
            conn.prepare_cached(INSERT_CHANGE)?.execute(params![
                pending.received_at,
                id,
                change.change_version().as_str(),
                change.change_type().name(),
                outcome_name(outcome),
                raw_body,
            ])?;
            Ok(RecordOutcome::Change(outcome))
        }
        Record::DeadLetter { raw_body, errors } => {
            let errors_json = serde_json::to_string(errors)?;
            conn.prepare_cached(INSERT_DEAD_LETTER)?.execute(params![
                pending.received_at,
                raw_body,
                errors_json,
            ])?;
            Ok(RecordOutcome::DeadLettered)
        }
    }
}

fn outcome_name(outcome: ApplyOutcome) -> &'static str {
    match outcome {
        ApplyOutcome::Applied => "applied",
        ApplyOutcome::Duplicate => "duplicate",
        ApplyOutcome::Stale => "stale",
    }
}

fn stored_version(id: i64, version: String) -> Result<ChangeVersion, StoreError> {
    ChangeVersion::new(version)
        .map_err(|e| StoreError::corrupt(format!("clocking_state, id {id}: {e}")))
}

/// Parses `clocking_json` back through the validator, as the `data` of an `InsertOrUpdate`.
fn stored_clocking(id: i64, json: Option<&str>) -> Result<Clocking, StoreError> {
    let json = json.ok_or_else(|| {
        StoreError::corrupt(format!(
            "clocking_state, id {id}: live row without clocking_json"
        ))
    })?;
    let data: Value = serde_json::from_str(json).map_err(|e| {
        StoreError::corrupt(format!(
            "clocking_state, id {id}: clocking_json is not JSON: {e}"
        ))
    })?;
    let envelope = serde_json::json!({ "changeType": "InsertOrUpdate", "data": data });
    match crate::parse_change_value(&envelope) {
        Ok(ClockingChange::InsertOrUpdate(clocking)) if clocking.id.get() == id => Ok(clocking),
        Ok(change) => Err(StoreError::corrupt(format!(
            "clocking_state, id {id}: clocking_json holds clocking {}",
            change.id()
        ))),
        Err(errors) => Err(StoreError::corrupt(format!(
            "clocking_state, id {id}: clocking_json is not a valid clocking: {errors}"
        ))),
    }
}

fn count(conn: &Connection, sql: &str) -> Result<u64, StoreError> {
    let n: i64 = conn.prepare_cached(sql)?.query_row([], |row| row.get(0))?;
    to_count(n)
}

fn to_count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::corrupt(format!("negative count {n}")))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use std::sync::Barrier;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll, Wake, Waker};

    use super::*;
    use crate::{ErrorCode, InMemoryTracker, parse_delivery};

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "protime-store-{name}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn db(&self) -> PathBuf {
            self.0.join("store.sqlite3")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Polls a future to completion on this thread (the crate has no tokio runtime).
    fn block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::park();
        }
    }

    fn version(n: u32) -> String {
        format!("0000090200{n:010X}")
    }

    fn upsert_body(id: i64, n: u32, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":"{}","id":{id},
            "person":{{"id":4}},"date":"2026-01-15","timeOfDayInMinutes":{},"kind":"InOut"{extra}}}}}"#,
            version(n),
            400 + n
        )
        .into_bytes()
    }

    fn delete_body(id: i64, n: u32) -> Vec<u8> {
        format!(
            r#"{{"changeType":"Delete","data":{{"changeVersion":"{}","id":{id}}}}}"#,
            version(n)
        )
        .into_bytes()
    }

    fn change(body: Vec<u8>) -> Record {
        let change = parse_delivery(&body).unwrap();
        Record::Change {
            change,
            raw_body: body,
        }
    }

    fn outcome(store: &SqliteStore, body: Vec<u8>) -> ApplyOutcome {
        match store.record_blocking(change(body)).unwrap() {
            RecordOutcome::Change(outcome) => outcome,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn id(n: i64) -> ClockingId {
        ClockingId::new(n).unwrap()
    }

    #[test]
    fn opening_twice_keeps_one_schema() {
        let dir = TempDir::new("twice");
        let first = SqliteStore::open(dir.db()).unwrap();
        // A second store on the same file while the first is open, then a third after both.
        let second = SqliteStore::open(dir.db()).unwrap();
        assert_eq!(
            outcome(&first, upsert_body(1, 1, "")),
            ApplyOutcome::Applied
        );
        assert_eq!(
            outcome(&second, upsert_body(1, 1, "")),
            ApplyOutcome::Duplicate
        );
        first.close().unwrap();
        second.close().unwrap();
        let third = SqliteStore::open(dir.db()).unwrap();
        assert_eq!(third.change_log_len().unwrap(), 2);
        third.close().unwrap();

        let conn = Connection::open(dir.db()).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = TempDir::new("newer");
        SqliteStore::open(dir.db()).unwrap().close().unwrap();
        let conn = Connection::open(dir.db()).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        drop(conn);
        let error = SqliteStore::open(dir.db()).unwrap_err();
        assert!(matches!(error, StoreError::Unsupported { .. }), "{error}");
    }

    #[test]
    fn newer_applies_equal_is_duplicate_older_is_stale_and_tombstones_block() {
        let dir = TempDir::new("semantics");
        let store = SqliteStore::open(dir.db()).unwrap();
        assert_eq!(
            outcome(&store, upsert_body(7, 5, "")),
            ApplyOutcome::Applied
        );
        assert_eq!(
            outcome(&store, upsert_body(7, 5, "")),
            ApplyOutcome::Duplicate
        );
        assert_eq!(outcome(&store, upsert_body(7, 3, "")), ApplyOutcome::Stale);
        let current = store.clocking(id(7)).unwrap().unwrap();
        assert_eq!(current.change_version.as_str(), version(5));
        assert_eq!(current.time_of_day.get(), 405);

        // A Delete leaves a tombstone that an older update cannot get past.
        assert_eq!(outcome(&store, delete_body(7, 8)), ApplyOutcome::Applied);
        assert_eq!(outcome(&store, upsert_body(7, 6, "")), ApplyOutcome::Stale);
        assert_eq!(outcome(&store, delete_body(7, 8)), ApplyOutcome::Duplicate);
        assert!(store.clocking(id(7)).unwrap().is_none());
        assert_eq!(
            store.tracked_versions().unwrap(),
            vec![(id(7), ChangeVersion::new(version(8)).unwrap(), true)]
        );

        // A newer update brings it back; a soft delete (status Deleted) is a tombstone too.
        assert_eq!(
            outcome(&store, upsert_body(7, 9, "")),
            ApplyOutcome::Applied
        );
        assert!(store.clocking(id(7)).unwrap().is_some());
        let soft = upsert_body(7, 10, r#","status":"Deleted""#);
        assert_eq!(outcome(&store, soft), ApplyOutcome::Applied);
        assert!(store.clocking(id(7)).unwrap().is_none());
        assert!(store.clockings().unwrap().is_empty());
        assert_eq!(outcome(&store, upsert_body(7, 9, "")), ApplyOutcome::Stale);
        assert_eq!(
            store.tracked_versions().unwrap(),
            vec![(id(7), ChangeVersion::new(version(10)).unwrap(), true)]
        );

        // Another id is independent.
        assert_eq!(
            outcome(&store, upsert_body(3, 1, "")),
            ApplyOutcome::Applied
        );
        let ids: Vec<_> = store.clockings().unwrap().iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![id(3)]);

        assert_eq!(store.change_log_len().unwrap(), 10);
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.applied, stats.duplicates, stats.stale),
            (5, 2, 3),
            "{stats:?}"
        );
        assert_eq!(
            (stats.clockings, stats.tombstones, stats.dead_letters),
            (1, 1, 0)
        );
        store.close().unwrap();
    }

    #[test]
    fn every_field_survives_the_round_trip_through_clocking_json() {
        let dir = TempDir::new("fields");
        let store = SqliteStore::open(dir.db()).unwrap();
        let body =
            br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000A",
            "id":19250,"person":{"id":1,"externalReferences":{"@badge-number":"B-7","HRMID":"x"}},
            "date":"2026-01-15","timeOfDayInMinutes":-1440,"originalTimeOfDayInMinutes":2880,
            "calculatedTimeOfDayInMinutes":0,"isGenerated":true,
            "terminal":{"id":3,"externalReferences":{}},
            "geolocation":{"latitude":50.8503396,"longitude":-4.3517103},
            "kind":"Activity","activityLevels":[{"level":1,"activityDefinition":{"id":"a-1"}},
            {"level":2,"activityDefinition":{"id":"b-2","externalReferences":{"@code":"Z"}}}],
            "status":"Active"}}"#;
        let Ok(ClockingChange::InsertOrUpdate(expected)) = parse_delivery(body) else {
            panic!("fixture must be valid")
        };
        store.record_blocking(change(body.to_vec())).unwrap();
        assert_eq!(store.clocking(id(19250)).unwrap(), Some(expected.clone()));
        assert_eq!(store.clockings().unwrap(), vec![expected]);
        store.close().unwrap();
    }

    #[test]
    fn dead_letters_are_stored_with_their_errors() {
        let dir = TempDir::new("dead");
        let store = SqliteStore::open(dir.db()).unwrap();
        let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":0}}"#;
        let errors = parse_delivery(body).unwrap_err();
        assert!(errors.has_code(ErrorCode::NumberRange));
        let outcome = store
            .record_blocking(Record::DeadLetter {
                raw_body: body.to_vec(),
                errors: errors.clone(),
            })
            .unwrap();
        assert_eq!(outcome, RecordOutcome::DeadLettered);

        let letters = store.dead_letters().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].raw_body, body.to_vec());
        let stored: Value = serde_json::from_str(&letters[0].errors_json).unwrap();
        assert_eq!(stored, serde_json::to_value(&errors).unwrap());
        assert!(letters[0].received_at.ends_with('Z'));
        assert_eq!(store.change_log_len().unwrap(), 0);
        assert_eq!(store.stats().unwrap().dead_letters, 1);
        store.close().unwrap();
    }

    #[test]
    fn data_survives_drop_and_reopen() {
        let dir = TempDir::new("reopen");
        let store = SqliteStore::open(dir.db()).unwrap();
        let clone = store.clone();
        block_on(store.record(change(upsert_body(1, 1, "")))).unwrap();
        block_on(clone.record(change(delete_body(2, 2)))).unwrap();
        let before = (
            store.clockings().unwrap(),
            store.tracked_versions().unwrap(),
        );
        drop(store);
        drop(clone);

        // The writer thread ends with the last clone; the file can be reopened at once.
        let reopened = SqliteStore::open(dir.db()).unwrap();
        let after = (
            reopened.clockings().unwrap(),
            reopened.tracked_versions().unwrap(),
        );
        assert_eq!(before, after);
        assert_eq!(after.0.len(), 1);
        assert_eq!(after.1.len(), 2);
        assert_eq!(
            outcome(&reopened, upsert_body(2, 1, "")),
            ApplyOutcome::Stale
        );
        reopened.close().unwrap();
    }

    #[test]
    fn process_crash_durability_stores_and_reopens_the_same() {
        let dir = TempDir::new("normal");
        let store = SqliteStore::open_with(dir.db(), Durability::ProcessCrash).unwrap();
        block_on(store.record(change(upsert_body(1, 1, "")))).unwrap();
        drop(store);
        // Reopened with the default durability: the file format is the same.
        let reopened = SqliteStore::open(dir.db()).unwrap();
        assert_eq!(reopened.clockings().unwrap().len(), 1);
        reopened.close().unwrap();
    }

    #[test]
    fn concurrent_records_are_all_answered_and_group_committed() {
        const TASKS: usize = 64;
        let dir = TempDir::new("concurrent");
        let store = SqliteStore::open(dir.db()).unwrap();

        // 64 async callers: every future is queued before any is awaited.
        let futures: Vec<_> = (0..TASKS)
            .map(|i| {
                let n = u32::try_from(i).unwrap();
                store.record(change(upsert_body(i64::from(n % 8) + 1, n + 1, "")))
            })
            .collect();
        for future in futures {
            assert!(matches!(block_on(future), Ok(RecordOutcome::Change(_))));
        }

        // 64 threads calling at once.
        let barrier = Arc::new(Barrier::new(TASKS));
        let threads: Vec<_> = (0..TASKS)
            .map(|i| {
                let store = store.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let n = u32::try_from(i).unwrap();
                    barrier.wait();
                    store.record_blocking(change(delete_body(i64::from(n % 8) + 1, 100 + n)))
                })
            })
            .collect();
        for thread in threads {
            assert!(matches!(
                thread.join().unwrap(),
                Ok(RecordOutcome::Change(_))
            ));
        }

        let stats = store.stats().unwrap();
        assert_eq!(store.change_log_len().unwrap(), 2 * TASKS as u64);
        assert!(stats.largest_batch > 1, "never batched: {stats:?}");
        assert!(stats.batches < 2 * TASKS as u64, "{stats:?}");
        // Last writer wins per id whatever the interleaving: every id ends deleted at its
        // highest delete version.
        let versions = store.tracked_versions().unwrap();
        assert_eq!(versions.len(), 8);
        for (id, version, deleted) in versions {
            assert!(deleted);
            assert_eq!(version.as_str(), version_of_last_delete(id.get()));
        }
        store.close().unwrap();

        fn version_of_last_delete(id: i64) -> String {
            let n = (0..TASKS as u32)
                .filter(|n| i64::from(n % 8) + 1 == id)
                .max()
                .unwrap();
            version(100 + n)
        }
    }

    #[test]
    fn replaying_the_change_log_rebuilds_the_state() {
        let dir = TempDir::new("replay");
        let store = SqliteStore::open(dir.db()).unwrap();
        for body in [
            upsert_body(1, 4, ""),
            upsert_body(1, 2, ""),
            delete_body(2, 9),
            upsert_body(2, 7, ""),
            upsert_body(3, 1, r#","status":"Deleted""#),
            upsert_body(1, 4, ""),
        ] {
            store.record_blocking(change(body)).unwrap();
        }
        let conn = Connection::open(dir.db()).unwrap();
        let mut statement = conn
            .prepare("SELECT raw_body FROM change_log ORDER BY seq")
            .unwrap();
        let bodies: Vec<Vec<u8>> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut tracker = InMemoryTracker::default();
        for body in &bodies {
            tracker.apply(&parse_delivery(body).unwrap());
        }
        let replayed: Vec<_> = tracker
            .entries()
            .map(|(id, e)| (id, e.change_version.clone(), e.clocking.is_none()))
            .collect();
        assert_eq!(replayed, store.tracked_versions().unwrap());
        let current: Vec<_> = tracker.current().cloned().collect();
        assert_eq!(current, store.clockings().unwrap());
        store.close().unwrap();
    }

    #[test]
    fn a_failing_record_gets_its_own_error_and_close_refuses_later_records() {
        let dir = TempDir::new("failing");
        let store = SqliteStore::open(dir.db()).unwrap();
        // Corrupt the state of id 5 behind the store's back (an empty version).
        let conn = Connection::open(dir.db()).unwrap();
        conn.execute(
            "INSERT INTO clocking_state (id, change_version, deleted, clocking_json) VALUES (5, '', 1, NULL)",
            [],
        )
        .unwrap();
        drop(conn);

        let bad = store.record(change(upsert_body(5, 1, "")));
        let good = store.record(change(upsert_body(6, 1, "")));
        let bad = block_on(bad).unwrap_err();
        assert!(matches!(bad, StoreError::Corrupt { .. }), "{bad}");
        assert_eq!(
            block_on(good).unwrap(),
            RecordOutcome::Change(ApplyOutcome::Applied)
        );
        assert_eq!(store.change_log_len().unwrap(), 1);

        let sink_error = SinkError::from(bad);
        assert!(sink_error.message.contains("corrupt"), "{sink_error}");

        let clone = store.clone();
        let queued = clone.record(change(upsert_body(6, 2, "")));
        store.close().unwrap();
        // Queued before close: committed and answered.
        assert_eq!(
            block_on(queued).unwrap(),
            RecordOutcome::Change(ApplyOutcome::Applied)
        );
        assert!(clone.is_closed());
        assert!(matches!(
            clone.record_blocking(change(upsert_body(6, 3, ""))),
            Err(StoreError::Closed)
        ));
        let via_sink = block_on(DeliverySink::record(&clone, change(upsert_body(6, 3, ""))));
        assert!(via_sink.is_err());
        // Reads keep working after close.
        assert_eq!(clone.change_log_len().unwrap(), 2);
    }
}
