//! Reads: the current state, lists by id, the change feed, dead letters and counts, each on
//! a pooled connection (MVCC: reads never wait for the writers, nor they for reads).

use chrono::{DateTime, Utc};
use protime_model::{ChangeVersion, Clocking, ClockingChange, ClockingId};
use protime_webhooks::sink::{ClockingState, FeedCursor, FeedEntry, FeedPage, stored_change};
use tokio_postgres::Row;

use crate::StoreError;

/// A dead letter as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Position in the `dead_letters` table (increasing in arrival order).
    pub id: i64,
    /// When the delivery was received.
    pub received_at: DateTime<Utc>,
    /// The body exactly as received.
    pub raw_body: Vec<u8>,
    /// The violations, `protime_model::ValidationErrors` serialized as a JSON array.
    pub errors_json: String,
    /// Fingerprint of the key that verified it.
    pub key_fingerprint: Option<String>,
    /// When it was replayed, if it was: its body passed validation again and was recorded
    /// like a delivery.
    pub replayed_at: Option<DateTime<Utc>>,
    /// What the store answered to the replay: `applied`, `duplicate` or `stale`.
    pub replay_outcome: Option<String>,
}

/// Counts of what the store holds, and of this process's writers since the store was
/// opened.
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
    /// Transactions committed by this process's writers since the store was opened.
    pub batches: u64,
    /// Most deliveries committed in one transaction by this process.
    pub largest_batch: u64,
}

/// A state row joined with the applied log entry it stands for (by id and version).
macro_rules! state_with_entry {
    ($condition:literal) => {
        concat!(
            "SELECT s.id, s.change_version, s.deleted, l.feed_position, l.raw_body, l.change_json
             FROM clocking_state s LEFT JOIN change_log l ON l.clocking_id = s.id
                 AND l.change_version = s.change_version AND l.feed_position IS NOT NULL ",
            $condition
        )
    };
}

pub(crate) const STATE: &str = state_with_entry!("WHERE s.id = $1");
pub(crate) const LIST: &str =
    state_with_entry!("WHERE NOT s.deleted AND s.id > $1 ORDER BY s.id LIMIT $2");
pub(crate) const CHANGES: &str =
    "SELECT feed_position, origin, received_at, raw_body, change_json FROM change_log
     WHERE feed_position > $1 AND (raw_body IS NOT NULL OR change_json IS NOT NULL)
     ORDER BY feed_position LIMIT $2";
pub(crate) const TRACKED: &str =
    "SELECT id, change_version, deleted FROM clocking_state ORDER BY id";
pub(crate) const DEAD_LETTERS: &str =
    "SELECT id, received_at, raw_body, errors_json, key_fingerprint, replayed_at, replay_outcome
     FROM dead_letters ORDER BY id";
pub(crate) const DEAD_LETTER: &str =
    "SELECT id, received_at, raw_body, errors_json, key_fingerprint, replayed_at, replay_outcome
     FROM dead_letters WHERE id = $1";
pub(crate) const MARK_REPLAYED: &str =
    "UPDATE dead_letters SET replayed_at = now(), replay_outcome = $2 WHERE id = $1 RETURNING id";
pub(crate) const STATS: &str = "SELECT
     (SELECT count(*) FROM change_log WHERE outcome = 'applied'),
     (SELECT count(*) FROM change_log WHERE outcome = 'duplicate'),
     (SELECT count(*) FROM change_log WHERE outcome = 'stale'),
     (SELECT count(*) FROM dead_letters),
     (SELECT count(*) FROM clocking_state WHERE NOT deleted),
     (SELECT count(*) FROM clocking_state WHERE deleted)";
pub(crate) const LOG_LEN: &str = "SELECT count(*) FROM change_log";
pub(crate) const LAST_POSITION: &str = "SELECT last_position FROM feed_counter";

/// The change stored in a log entry (see [`stored_change`]).
fn logged_change(
    position: i64,
    raw_body: Option<&[u8]>,
    change_json: Option<&str>,
) -> Result<ClockingChange, StoreError> {
    stored_change(raw_body, change_json).map_err(|what| {
        StoreError::corrupt(format!("change_log, feed position {position}: {what}"))
    })
}

/// A stored version: the empty string is the absent version of a clocking that a sync
/// listed without a `changeVersion` (`ChangeVersion::absent`); a real version is never empty.
pub(crate) fn stored_version(version: String) -> ChangeVersion {
    ChangeVersion::from_stored(version)
}

/// The state of one row of [`STATE`] or [`LIST`].
pub(crate) fn state_of(row: &Row) -> Result<(i64, ClockingState), StoreError> {
    let id: i64 = row.try_get(0)?;
    let version = stored_version(row.try_get(1)?);
    let deleted: bool = row.try_get(2)?;
    let clocking = if deleted {
        None
    } else {
        let position: Option<i64> = row.try_get(3)?;
        let position = position.ok_or_else(|| {
            StoreError::corrupt(format!(
                "clocking_state, id {id}: no applied change-log entry for version {version}"
            ))
        })?;
        let raw_body: Option<&[u8]> = row.try_get(4)?;
        let change_json: Option<&str> = row.try_get(5)?;
        match logged_change(position, raw_body, change_json)? {
            ClockingChange::InsertOrUpdate(clocking) if clocking.id.get() == id => Some(clocking),
            change => {
                return Err(StoreError::corrupt(format!(
                    "clocking_state, id {id}: stands for feed position {position}, a {} of clocking {}",
                    change.change_type().name(),
                    change.id()
                )));
            }
        }
    };
    Ok((id, ClockingState::new(version, clocking)))
}

pub(crate) fn clockings_of(rows: &[Row]) -> Result<Vec<Clocking>, StoreError> {
    let mut clockings = Vec::with_capacity(rows.len());
    for row in rows {
        if let (
            _,
            ClockingState {
                clocking: Some(clocking),
                ..
            },
        ) = state_of(row)?
        {
            clockings.push(clocking);
        }
    }
    Ok(clockings)
}

pub(crate) fn feed_page(rows: &[Row], after: FeedCursor) -> Result<FeedPage, StoreError> {
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let position: i64 = row.try_get(0)?;
        let corrupt = |what: &str| {
            StoreError::corrupt(format!("change_log, feed position {position}: {what}"))
        };
        let origin = match row.try_get::<_, &str>(1)? {
            "webhook" => "webhook",
            "sync" => "sync",
            "erasure" => "erasure",
            other => return Err(corrupt(&format!("unknown origin {other:?}"))),
        };
        let received_at: DateTime<Utc> = row.try_get(2)?;
        let change = logged_change(position, row.try_get(3)?, row.try_get(4)?)?;
        let cursor = FeedCursor(u64::try_from(position).map_err(|_| corrupt("negative position"))?);
        entries.push(FeedEntry::new(cursor, change, origin, received_at));
    }
    Ok(FeedPage::new(entries, after))
}

pub(crate) fn tracked_of(
    rows: &[Row],
) -> Result<Vec<(ClockingId, ChangeVersion, bool)>, StoreError> {
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get(0)?;
            let clocking_id = ClockingId::new(id)
                .map_err(|e| StoreError::corrupt(format!("clocking_state: {e}")))?;
            Ok((
                clocking_id,
                stored_version(row.try_get(1)?),
                row.try_get(2)?,
            ))
        })
        .collect()
}

pub(crate) fn dead_letters_of(rows: &[Row]) -> Result<Vec<DeadLetter>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(DeadLetter {
                id: row.try_get(0)?,
                received_at: row.try_get(1)?,
                raw_body: row.try_get(2)?,
                errors_json: row.try_get(3)?,
                key_fingerprint: row.try_get(4)?,
                replayed_at: row.try_get(5)?,
                replay_outcome: row.try_get(6)?,
            })
        })
        .collect()
}

pub(crate) fn to_count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::corrupt(format!("negative count {n}")))
}

pub(crate) fn stats_of(row: &Row) -> Result<StoreStats, StoreError> {
    Ok(StoreStats {
        applied: to_count(row.try_get(0)?)?,
        duplicates: to_count(row.try_get(1)?)?,
        stale: to_count(row.try_get(2)?)?,
        dead_letters: to_count(row.try_get(3)?)?,
        clockings: to_count(row.try_get(4)?)?,
        tombstones: to_count(row.try_get(5)?)?,
        batches: 0,
        largest_batch: 0,
    })
}
