//! Retention (`purge`) and erasure (`forget_person`).
//!
//! Both work in short transactions of at most
//! [`RETENTION_BATCH`](protime_webhooks::sink::RETENTION_BATCH) rows (a window of change-log
//! or dead-letter ids, [`retention_windows`]), so no transaction holds locks for long. An erasure locks the state rows
//! of the ids it erases in ascending id order and takes the feed counter last, like every
//! writer (see `apply.rs`): lock waits cannot form a cycle.
//!
//! What is never removed: the state rows (the per-id version watermark: a late, older
//! delivery stays stale) and the applied entry of each state row's version (its body is the
//! current clocking). Retention covers history, not the current state.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::StoreError;
use protime_webhooks::sink::{erasure_change, names_person, retention_windows};

/// Clocking ids erased per transaction.
const ID_BATCH: usize = 1_000;

/// The entry `l` is not the applied entry of its id's current version.
macro_rules! not_current {
    () => {
        "NOT (l.feed_position IS NOT NULL AND EXISTS (SELECT 1 FROM clocking_state s
             WHERE s.id = l.clocking_id AND s.change_version = l.change_version))"
    };
}

const LOG_CONDITION: &str = concat!(
    "l.id > $1 AND l.id <= $2 AND l.received_at < $3 AND ",
    not_current!()
);
const BODY_CONDITION: &str = concat!(
    "l.id > $1 AND l.id <= $2 AND l.received_at < $3 AND l.raw_body IS NOT NULL
     AND ($4::timestamptz IS NULL OR l.received_at >= $4) AND ",
    not_current!()
);
const LETTER_CONDITION: &str = "id > $1 AND id <= $2 AND received_at < $3";

pub use protime_webhooks::sink::{ErasureCounts, Purge, PurgeCounts};

/// A recorded erasure: when, and how many rows; never whose.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErasureRecord {
    /// Position in the `erasures` table.
    pub id: i64,
    /// When it started.
    pub erased_at: DateTime<Utc>,
    /// When it finished (`None`: interrupted; run it again).
    pub completed_at: Option<DateTime<Utc>>,
    /// What it removed.
    pub counts: ErasureCounts,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

async fn max_id(client: &deadpool_postgres::Client, table: &str) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            &format!("SELECT COALESCE(max(id), 0)::bigint FROM {table}"),
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
}

pub(crate) async fn purge(
    pool: &Pool,
    purge: &Purge,
    now: DateTime<Utc>,
) -> Result<PurgeCounts, StoreError> {
    let mut client = pool.get().await?;
    let mut counts = PurgeCounts::default();
    let log_cutoff = purge.change_log_before;
    let body_cutoff = purge.raw_bodies_before;
    if log_cutoff.is_some() || body_cutoff.is_some() {
        let last = max_id(&client, "change_log").await?;
        for (low, high) in retention_windows(last) {
            let tx = client.transaction().await?;
            if let Some(cutoff) = log_cutoff {
                let n = if purge.dry_run {
                    let sql = format!("SELECT count(*) FROM change_log l WHERE {LOG_CONDITION}");
                    count(
                        tx.query_one(&sql, &[&low, &high, &cutoff])
                            .await?
                            .try_get(0)?,
                    )
                } else {
                    let sql = format!("DELETE FROM change_log l WHERE {LOG_CONDITION}");
                    tx.execute(&sql, &[&low, &high, &cutoff]).await?
                };
                counts.change_log_entries += n;
            }
            if let Some(cutoff) = body_cutoff {
                let n = if purge.dry_run {
                    let sql = format!("SELECT count(*) FROM change_log l WHERE {BODY_CONDITION}");
                    count(
                        tx.query_one(&sql, &[&low, &high, &cutoff, &log_cutoff])
                            .await?
                            .try_get(0)?,
                    )
                } else {
                    let sql = format!(
                        "UPDATE change_log l SET raw_body = NULL, body_purged_at = $5
                         WHERE {BODY_CONDITION}"
                    );
                    tx.execute(&sql, &[&low, &high, &cutoff, &log_cutoff, &now])
                        .await?
                };
                counts.raw_bodies += n;
            }
            tx.commit().await?;
        }
    }
    if let Some(cutoff) = purge.dead_letters_before {
        let last = max_id(&client, "dead_letters").await?;
        for (low, high) in retention_windows(last) {
            let n = if purge.dry_run {
                let sql = format!("SELECT count(*) FROM dead_letters WHERE {LETTER_CONDITION}");
                count(
                    client
                        .query_one(&sql, &[&low, &high, &cutoff])
                        .await?
                        .try_get(0)?,
                )
            } else {
                let sql = format!("DELETE FROM dead_letters WHERE {LETTER_CONDITION}");
                client.execute(&sql, &[&low, &high, &cutoff]).await?
            };
            counts.dead_letters += n;
        }
    }
    Ok(counts)
}

/// The ids whose change-log entries (the current state's included) name `person`, and the
/// dead letters that do.
async fn find_person(
    client: &deadpool_postgres::Client,
    person: i64,
) -> Result<(BTreeSet<i64>, Vec<i64>), StoreError> {
    let mut ids = BTreeSet::new();
    let last = max_id(client, "change_log").await?;
    for (low, high) in retention_windows(last) {
        let rows = client
            .query(
                "SELECT clocking_id, raw_body, change_json FROM change_log
                 WHERE id > $1 AND id <= $2",
                &[&low, &high],
            )
            .await?;
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let body: Option<&[u8]> = row.try_get(1)?;
            let json: Option<&str> = row.try_get(2)?;
            if body.is_some_and(|b| names_person(b, person))
                || json.is_some_and(|j| names_person(j.as_bytes(), person))
            {
                ids.insert(id);
            }
        }
    }
    let mut letters = Vec::new();
    let last = max_id(client, "dead_letters").await?;
    for (low, high) in retention_windows(last) {
        let rows = client
            .query(
                "SELECT id, raw_body FROM dead_letters WHERE id > $1 AND id <= $2",
                &[&low, &high],
            )
            .await?;
        for row in rows {
            let body: &[u8] = row.try_get(1)?;
            if names_person(body, person) {
                letters.push(row.try_get(0)?);
            }
        }
    }
    Ok((ids, letters))
}

pub(crate) async fn forget(
    pool: &Pool,
    channel: &str,
    person: i64,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<ErasureCounts, StoreError> {
    let mut client = pool.get().await?;
    let (ids, letters) = find_person(&client, person).await?;
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut counts = ErasureCounts::default();
    if ids.is_empty() && letters.is_empty() {
        // Nothing names the person: nothing to erase, nothing to record.
        return Ok(counts);
    }
    if dry_run {
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM clocking_state WHERE id = ANY($1)),
                        (SELECT count(*) FROM change_log WHERE clocking_id = ANY($1))",
                &[&ids],
            )
            .await?;
        counts.clockings = count(row.try_get(0)?);
        counts.change_log_entries = count(row.try_get(1)?);
        counts.dead_letters = u64::try_from(letters.len()).unwrap_or(u64::MAX);
        return Ok(counts);
    }
    let erasure: i64 = client
        .query_one(
            "INSERT INTO erasures (erased_at, clockings, change_log_entries, dead_letters)
             VALUES ($1, 0, 0, 0) RETURNING id",
            &[&now],
        )
        .await?
        .try_get(0)?;

    // 1. Per batch of ids: lock their state rows (ascending), remove the entries that make
    //    their current state, add an erasure feed entry per id at its version (the feed
    //    counter last), make the state an erased tombstone.
    for chunk in ids.chunks(ID_BATCH) {
        let chunk: Vec<i64> = chunk.to_vec();
        let tx = client.transaction().await?;
        let locked = tx
            .query(
                "SELECT id, change_version FROM clocking_state WHERE id = ANY($1)
                 ORDER BY id FOR UPDATE",
                &[&chunk],
            )
            .await?;
        let mut erased_ids = Vec::with_capacity(locked.len());
        let mut versions = Vec::with_capacity(locked.len());
        let mut changes = Vec::with_capacity(locked.len());
        let mut ranks = Vec::with_capacity(locked.len());
        for (rank, row) in locked.iter().enumerate() {
            let id: i64 = row.try_get(0)?;
            let version: String = row.try_get(1)?;
            changes.push(erasure_change(id, &version));
            erased_ids.push(id);
            versions.push(version);
            ranks.push(i64::try_from(rank).unwrap_or(i64::MAX) + 1);
        }
        let removed = tx
            .execute(
                "DELETE FROM change_log l USING clocking_state s
                 WHERE s.id = ANY($1) AND l.clocking_id = s.id
                   AND l.change_version = s.change_version AND l.feed_position IS NOT NULL",
                &[&erased_ids],
            )
            .await?;
        tx.execute(
            "UPDATE clocking_state SET deleted = true WHERE id = ANY($1)",
            &[&erased_ids],
        )
        .await?;
        let erased = u64::try_from(erased_ids.len()).unwrap_or(u64::MAX);
        tx.execute(
            "UPDATE erasures SET clockings = clockings + $2,
                 change_log_entries = change_log_entries + $3 WHERE id = $1",
            &[
                &erasure,
                &i64::try_from(erased).unwrap_or(i64::MAX),
                &i64::try_from(removed).unwrap_or(i64::MAX),
            ],
        )
        .await?;
        if !erased_ids.is_empty() {
            let added = i64::try_from(erased_ids.len()).unwrap_or(i64::MAX);
            tx.execute(
                "WITH counter AS (
                     UPDATE feed_counter SET last_position = last_position + $1
                     RETURNING last_position - $1 AS base)
                 INSERT INTO change_log (feed_position, received_at, clocking_id, change_version,
                     change_type, outcome, origin, change_json)
                 SELECT counter.base + u.rank, $2, u.id, u.version, 'Delete', 'applied',
                     'erasure', u.change
                 FROM counter, unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[])
                     AS u(rank, id, version, change)",
                &[&added, &now, &ranks, &erased_ids, &versions, &changes],
            )
            .await?;
            tx.execute("SELECT pg_notify($1, '')", &[&channel]).await?;
        }
        tx.commit().await?;
        counts.clockings += erased;
        counts.change_log_entries += removed;
    }

    // 2. Every other entry of those ids goes (not the erasure entries: they are current).
    let last = max_id(&client, "change_log").await?;
    for (low, high) in retention_windows(last) {
        let tx = client.transaction().await?;
        let sql = concat!(
            "DELETE FROM change_log l WHERE l.id > $1 AND l.id <= $2
             AND l.clocking_id = ANY($3) AND ",
            not_current!()
        );
        let removed = tx.execute(sql, &[&low, &high, &ids]).await?;
        tx.execute(
            "UPDATE erasures SET change_log_entries = change_log_entries + $2 WHERE id = $1",
            &[&erasure, &i64::try_from(removed).unwrap_or(i64::MAX)],
        )
        .await?;
        tx.commit().await?;
        counts.change_log_entries += removed;
    }

    // 3. The dead letters that name the person.
    for chunk in letters.chunks(ID_BATCH) {
        let chunk: Vec<i64> = chunk.to_vec();
        let tx = client.transaction().await?;
        let removed = tx
            .execute("DELETE FROM dead_letters WHERE id = ANY($1)", &[&chunk])
            .await?;
        tx.execute(
            "UPDATE erasures SET dead_letters = dead_letters + $2 WHERE id = $1",
            &[&erasure, &i64::try_from(removed).unwrap_or(i64::MAX)],
        )
        .await?;
        tx.commit().await?;
        counts.dead_letters += removed;
    }
    client
        .execute(
            "UPDATE erasures SET completed_at = $2 WHERE id = $1",
            &[&erasure, &Utc::now()],
        )
        .await?;
    Ok(counts)
}

pub(crate) async fn erasures(pool: &Pool) -> Result<Vec<ErasureRecord>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, erased_at, completed_at, clockings, change_log_entries, dead_letters
             FROM erasures ORDER BY id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ErasureRecord {
                id: row.try_get(0)?,
                erased_at: row.try_get(1)?,
                completed_at: row.try_get(2)?,
                counts: ErasureCounts::new(
                    count(row.try_get(3)?),
                    count(row.try_get(4)?),
                    count(row.try_get(5)?),
                ),
            })
        })
        .collect()
}
