//! Reads: the current state, lists by id, the change feed, dead letters and counts, each on
//! a read connection of its own (WAL readers do not block the writer, nor it them).

use std::path::Path;
use std::time::Duration;

use protime_model::{ChangeVersion, Clocking, ClockingChange, ClockingId};
use protime_webhooks::sink::{ClockingState, FeedCursor, FeedEntry, FeedPage, stored_change};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

use crate::StoreError;
use crate::apply::stored_version;

/// How long a connection waits for a lock held by another connection (another process
/// writing the same file, or a checkpoint) before failing with `SQLITE_BUSY`.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A dead letter as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Position in the `dead_letters` table (increasing in arrival order).
    pub seq: i64,
    /// When the delivery was received, RFC 3339 in UTC.
    pub received_at: String,
    /// The body exactly as received.
    pub raw_body: Vec<u8>,
    /// The violations, `protime_model::ValidationErrors` serialized as a JSON array.
    pub errors_json: String,
    /// Fingerprint of the key that verified it (absent for dead letters stored before
    /// schema version 2).
    pub key_fingerprint: Option<String>,
    /// When it was replayed (RFC 3339 in UTC), if it was: its body passed validation
    /// again and was recorded like a delivery.
    pub replayed_at: Option<String>,
    /// What the store answered to the replay: `applied`, `duplicate` or `stale`.
    pub replay_outcome: Option<String>,
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
    /// Transactions committed by the writer since the store was opened (not persisted).
    pub batches: u64,
    /// Most deliveries committed in one transaction since the store was opened (not
    /// persisted).
    pub largest_batch: u64,
}

pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Reads only: a read-write handle (so it works whatever the state of the -shm file),
    // made unable to write.
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// The change stored in a log entry (see [`stored_change`]).
fn logged_change(
    seq: i64,
    raw_body: Option<&[u8]>,
    change_json: Option<&str>,
) -> Result<ClockingChange, StoreError> {
    stored_change(raw_body, change_json)
        .map_err(|what| StoreError::corrupt(format!("change_log, seq {seq}: {what}")))
}

/// The clocking of a live state row, from the log entry it points at.
fn stored_clocking(
    id: i64,
    seq: i64,
    raw_body: Option<&[u8]>,
    change_json: Option<&str>,
) -> Result<Clocking, StoreError> {
    match logged_change(seq, raw_body, change_json)? {
        ClockingChange::InsertOrUpdate(clocking) if clocking.id.get() == id => Ok(clocking),
        change => Err(StoreError::corrupt(format!(
            "clocking_state, id {id}: points at change-log entry {seq}, a {} of clocking {}",
            change.change_type().name(),
            change.id()
        ))),
    }
}

/// One state row joined with the log entry that made it.
/// A state query: the join above with `$condition`, as one literal (no SQL built per read).
macro_rules! state_with_entry {
    ($condition:literal) => {
        concat!(
            "SELECT s.id, s.change_version, s.deleted, s.log_seq, l.raw_body, l.change_json
             FROM clocking_state s LEFT JOIN change_log l ON l.seq = s.log_seq ",
            $condition
        )
    };
}

struct StateRow {
    id: i64,
    version: String,
    deleted: bool,
    seq: i64,
    raw_body: Option<Vec<u8>>,
    change_json: Option<String>,
}

impl StateRow {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            version: row.get(1)?,
            deleted: row.get(2)?,
            seq: row.get(3)?,
            raw_body: row.get(4)?,
            change_json: row.get(5)?,
        })
    }

    fn clocking(&self) -> Result<Option<Clocking>, StoreError> {
        if self.deleted {
            return Ok(None);
        }
        stored_clocking(
            self.id,
            self.seq,
            self.raw_body.as_deref(),
            self.change_json.as_deref(),
        )
        .map(Some)
    }
}

fn to_count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::corrupt(format!("negative count {n}")))
}

fn count(conn: &Connection, sql: &str) -> Result<u64, StoreError> {
    let n: i64 = conn.prepare_cached(sql)?.query_row([], |row| row.get(0))?;
    to_count(n)
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(crate) fn clocking(conn: &Connection, id: ClockingId) -> Result<Option<Clocking>, StoreError> {
    Ok(state(conn, id)?.and_then(|state| state.clocking))
}

pub(crate) fn state(
    conn: &Connection,
    id: ClockingId,
) -> Result<Option<ClockingState>, StoreError> {
    let row = conn
        .prepare_cached(state_with_entry!("WHERE s.id = ?1"))?
        .query_row([id.get()], StateRow::from_row)
        .optional()?;
    row.map(|row| {
        let clocking = row.clocking()?;
        Ok(ClockingState::new(stored_version(row.version), clocking))
    })
    .transpose()
}

pub(crate) fn list(
    conn: &Connection,
    after: Option<ClockingId>,
    limit: usize,
) -> Result<Vec<Clocking>, StoreError> {
    let mut statement = conn.prepare_cached(state_with_entry!(
        "WHERE s.deleted = 0 AND s.id > ?1 ORDER BY s.id LIMIT ?2"
    ))?;
    let rows = statement.query_map(
        rusqlite::params![after.map_or(0, ClockingId::get), limit_param(limit)],
        StateRow::from_row,
    )?;
    let mut clockings = Vec::new();
    for row in rows {
        if let Some(clocking) = row?.clocking()? {
            clockings.push(clocking);
        }
    }
    Ok(clockings)
}

/// Applied change-log entries after `after`. One writer commits in `seq` order, so a
/// reader can never pass an entry that commits later. An entry whose body retention purged
/// is left out: it no longer makes the current state (a later entry of its id does, and
/// follows it in the feed).
pub(crate) fn changes(
    conn: &Connection,
    after: FeedCursor,
    limit: usize,
) -> Result<FeedPage, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, origin, received_at, raw_body, change_json FROM change_log
         WHERE outcome = 'applied' AND seq > ?1
             AND (raw_body IS NOT NULL OR change_json IS NOT NULL) ORDER BY seq LIMIT ?2",
    )?;
    let after_seq = i64::try_from(after.0).unwrap_or(i64::MAX);
    let rows = statement.query_map(rusqlite::params![after_seq, limit_param(limit)], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<Vec<u8>>>(3)?,
            row.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut entries = Vec::new();
    for row in rows {
        let (seq, origin, received_at, raw_body, change_json) = row?;
        let corrupt = |what: &str| StoreError::corrupt(format!("change_log, seq {seq}: {what}"));
        let change = logged_change(seq, raw_body.as_deref(), change_json.as_deref())?;
        let origin = match origin.as_str() {
            "webhook" => "webhook",
            "sync" => "sync",
            "erasure" => "erasure",
            other => return Err(corrupt(&format!("unknown origin {other:?}"))),
        };
        let received_at = chrono::DateTime::parse_from_rfc3339(&received_at)
            .map_err(|e| corrupt(&format!("received_at: {e}")))?
            .with_timezone(&chrono::Utc);
        let cursor = FeedCursor(u64::try_from(seq).map_err(|_| corrupt("negative seq"))?);
        entries.push(FeedEntry::new(cursor, change, origin, received_at));
    }
    Ok(FeedPage::new(entries, after))
}

pub(crate) fn tracked_versions(
    conn: &Connection,
) -> Result<Vec<(ClockingId, ChangeVersion, bool)>, StoreError> {
    let mut statement =
        conn.prepare_cached("SELECT id, change_version, deleted FROM clocking_state ORDER BY id")?;
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
        let id =
            ClockingId::new(id).map_err(|e| StoreError::corrupt(format!("clocking_state: {e}")))?;
        versions.push((id, stored_version(version), deleted));
    }
    Ok(versions)
}

pub(crate) fn change_log_len(conn: &Connection) -> Result<u64, StoreError> {
    count(conn, "SELECT COUNT(*) FROM change_log")
}

/// The columns of [`DeadLetter`], in its field order.
const DEAD_LETTER_COLUMNS: &str =
    "seq, received_at, raw_body, errors_json, key_fingerprint, replayed_at, replay_outcome";

fn dead_letter_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter {
        seq: row.get(0)?,
        received_at: row.get(1)?,
        raw_body: row.get(2)?,
        errors_json: row.get(3)?,
        key_fingerprint: row.get(4)?,
        replayed_at: row.get(5)?,
        replay_outcome: row.get(6)?,
    })
}

pub(crate) fn dead_letters(conn: &Connection) -> Result<Vec<DeadLetter>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters ORDER BY seq"
    ))?;
    let rows = statement.query_map([], dead_letter_of)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn dead_letter(conn: &Connection, seq: i64) -> Result<Option<DeadLetter>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE seq = ?1"
    ))?;
    Ok(statement.query_row([seq], dead_letter_of).optional()?)
}

/// Counts in one consistent snapshot (counting scans the tables).
pub(crate) fn stats(conn: &mut Connection) -> Result<StoreStats, StoreError> {
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
}
