//! Retention (`purge`) and erasure (`forget_person`).
//!
//! Reads (finding what to remove, dry-run counts) run on a read connection. Every write is
//! a [`Step`]: one transaction of at most [`RETENTION_BATCH`](protime_webhooks::sink::RETENTION_BATCH)
//! rows (a window of `seq` values, [`retention_windows`]) that the
//! writer thread runs on its own connection between two groups of deliveries — so a purge
//! never contends with deliveries for SQLite's write lock, and deliveries queued meanwhile
//! wait for one step at most.
//!
//! What is never removed: the state row of an id (its version is the watermark that makes a
//! late, older delivery stale) and the change-log entry a state row points at (its body is
//! the current clocking). Retention covers history, not the current state.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use crate::StoreError;
use crate::apply::rfc3339;

/// Ids handled per erasure transaction.
const ID_BATCH: usize = 1_000;

/// The entry does not make the current state of its id.
const NOT_CURRENT: &str = "NOT EXISTS (SELECT 1 FROM clocking_state s
     WHERE s.id = change_log.clocking_id AND s.log_seq = change_log.seq)";

pub use protime_webhooks::sink::{ErasureCounts, Purge, PurgeCounts};
use protime_webhooks::sink::{erasure_change, names_person, retention_windows};

/// A recorded erasure: when, and how many rows; never whose.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErasureRecord {
    /// Position in the `erasures` table.
    pub seq: i64,
    /// When it started.
    pub erased_at: DateTime<Utc>,
    /// When it finished (`None`: interrupted; run it again).
    pub completed_at: Option<DateTime<Utc>>,
    /// What it removed.
    pub counts: ErasureCounts,
}

fn to_count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn max_seq(conn: &Connection, table: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT COALESCE(MAX(seq), 0) FROM {table}"),
        [],
        |row| row.get(0),
    )?)
}

/// One write of a purge or an erasure, run by the writer thread (see the module
/// documentation); it answers up to two counts.
pub(crate) type Step = Box<dyn FnOnce(&mut Connection) -> Result<(u64, u64), StoreError> + Send>;

/// Runs a [`Step`] on the writer thread and waits for its answer.
pub(crate) type Writer<'w> = &'w dyn Fn(Step) -> Result<(u64, u64), StoreError>;

fn count_rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(sql, params, |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn purge(
    conn: &mut Connection,
    write: Writer<'_>,
    purge: &Purge,
    now: DateTime<Utc>,
) -> Result<PurgeCounts, StoreError> {
    let mut counts = PurgeCounts::default();
    let log_cutoff = purge.change_log_before.map(rfc3339);
    let body_cutoff = purge.raw_bodies_before.map(rfc3339);
    let log_condition = format!("seq > ?1 AND seq <= ?2 AND received_at < ?3 AND {NOT_CURRENT}");
    // Entries the change-log cutoff removes are not counted again (a dry run still sees
    // them).
    let body_condition = format!(
        "seq > ?1 AND seq <= ?2 AND received_at < ?3 AND raw_body IS NOT NULL
         AND (?4 IS NULL OR received_at >= ?4) AND {NOT_CURRENT}"
    );
    if log_cutoff.is_some() || body_cutoff.is_some() {
        let last = max_seq(conn, "change_log")?;
        for (low, high) in retention_windows(last) {
            if purge.dry_run {
                let tx = conn.transaction()?;
                if let Some(cutoff) = &log_cutoff {
                    counts.change_log_entries += count_rows(
                        &tx,
                        &format!("SELECT COUNT(*) FROM change_log WHERE {log_condition}"),
                        params![low, high, cutoff],
                    )?;
                }
                if let Some(cutoff) = &body_cutoff {
                    counts.raw_bodies += count_rows(
                        &tx,
                        &format!("SELECT COUNT(*) FROM change_log WHERE {body_condition}"),
                        params![low, high, cutoff, log_cutoff],
                    )?;
                }
                tx.commit()?;
            } else {
                let (log_cutoff, body_cutoff) = (log_cutoff.clone(), body_cutoff.clone());
                let delete = format!("DELETE FROM change_log WHERE {log_condition}");
                let update = format!(
                    "UPDATE change_log SET raw_body = NULL, body_purged_at = ?5 WHERE {body_condition}"
                );
                let purged_at = rfc3339(now);
                let (entries, bodies) = write(Box::new(move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let mut counts = (0, 0);
                    if let Some(cutoff) = &log_cutoff {
                        counts.0 = to_count(tx.execute(&delete, params![low, high, cutoff])?);
                    }
                    if let Some(cutoff) = &body_cutoff {
                        counts.1 = to_count(
                            tx.execute(&update, params![low, high, cutoff, log_cutoff, purged_at])?,
                        );
                    }
                    tx.commit()?;
                    Ok(counts)
                }))?;
                counts.change_log_entries += entries;
                counts.raw_bodies += bodies;
            }
        }
    }
    if let Some(cutoff) = purge.dead_letters_before.map(rfc3339) {
        let last = max_seq(conn, "dead_letters")?;
        let condition = "seq > ?1 AND seq <= ?2 AND received_at < ?3";
        for (low, high) in retention_windows(last) {
            counts.dead_letters += if purge.dry_run {
                count_rows(
                    conn,
                    &format!("SELECT COUNT(*) FROM dead_letters WHERE {condition}"),
                    params![low, high, cutoff],
                )?
            } else {
                let cutoff = cutoff.clone();
                write(Box::new(move |conn| {
                    let removed = conn.execute(
                        &format!("DELETE FROM dead_letters WHERE {condition}"),
                        params![low, high, cutoff],
                    )?;
                    Ok((to_count(removed), 0))
                }))?
                .0
            };
        }
    }
    Ok(counts)
}

/// The ids whose change-log entries (the current state's included) name `person`, and the
/// dead letters that do.
fn find_person(
    conn: &mut Connection,
    person: i64,
) -> Result<(BTreeSet<i64>, Vec<i64>), StoreError> {
    let mut ids = BTreeSet::new();
    let last = max_seq(conn, "change_log")?;
    for (low, high) in retention_windows(last) {
        let tx = conn.transaction()?;
        {
            let mut statement = tx.prepare(
                "SELECT clocking_id, raw_body, change_json FROM change_log
                 WHERE seq > ?1 AND seq <= ?2",
            )?;
            let mut rows = statement.query(params![low, high])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let body: Option<Vec<u8>> = row.get(1)?;
                let json: Option<String> = row.get(2)?;
                let named = body.as_deref().is_some_and(|b| names_person(b, person))
                    || json
                        .as_deref()
                        .is_some_and(|j| names_person(j.as_bytes(), person));
                if named {
                    ids.insert(id);
                }
            }
        }
        tx.commit()?;
    }
    let mut letters = Vec::new();
    let last = max_seq(conn, "dead_letters")?;
    for (low, high) in retention_windows(last) {
        let tx = conn.transaction()?;
        {
            let mut statement =
                tx.prepare("SELECT seq, raw_body FROM dead_letters WHERE seq > ?1 AND seq <= ?2")?;
            let mut rows = statement.query(params![low, high])?;
            while let Some(row) = rows.next()? {
                // Read as bytes whatever the stored type: a dead letter may hold anything.
                let body = match row.get_ref(1)? {
                    rusqlite::types::ValueRef::Blob(bytes)
                    | rusqlite::types::ValueRef::Text(bytes) => bytes,
                    _ => continue,
                };
                if names_person(body, person) {
                    letters.push(row.get(0)?);
                }
            }
        }
        tx.commit()?;
    }
    Ok((ids, letters))
}

pub(crate) fn forget(
    conn: &mut Connection,
    write: Writer<'_>,
    person: i64,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<ErasureCounts, StoreError> {
    let (ids, letters) = find_person(conn, person)?;
    let mut counts = ErasureCounts::default();
    if ids.is_empty() && letters.is_empty() {
        // Nothing names the person: nothing to erase, nothing to record.
        return Ok(counts);
    }
    let ids = std::sync::Arc::new(ids);
    if dry_run {
        for id in ids.iter() {
            counts.clockings += count_rows(
                conn,
                "SELECT COUNT(*) FROM clocking_state WHERE id = ?1",
                [id],
            )?;
        }
        let last = max_seq(conn, "change_log")?;
        for (low, high) in retention_windows(last) {
            let mut statement = conn.prepare_cached(
                "SELECT clocking_id FROM change_log WHERE seq > ?1 AND seq <= ?2",
            )?;
            let mut rows = statement.query(params![low, high])?;
            while let Some(row) = rows.next()? {
                if ids.contains(&row.get::<_, i64>(0)?) {
                    counts.change_log_entries += 1;
                }
            }
        }
        counts.dead_letters = to_count(letters.len());
        return Ok(counts);
    }
    let erased_at = rfc3339(now);
    let erasure = {
        let erased_at = erased_at.clone();
        write(Box::new(move |conn| {
            conn.execute(
                "INSERT INTO erasures (erased_at, clockings, change_log_entries, dead_letters)
                 VALUES (?1, 0, 0, 0)",
                [&erased_at],
            )?;
            Ok((u64::try_from(conn.last_insert_rowid()).unwrap_or(0), 0))
        }))?
        .0
    };
    let erasure = i64::try_from(erasure).unwrap_or(i64::MAX);

    // 1. Each id's state becomes an erased tombstone pointing at its erasure feed entry, so
    //    that the entries with the person's data stop being current.
    let all: Vec<i64> = ids.iter().copied().collect();
    for chunk in all.chunks(ID_BATCH) {
        let chunk = chunk.to_vec();
        let erased_at = erased_at.clone();
        counts.clockings += write(Box::new(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut erased = 0_u64;
            {
                let mut version_of =
                    tx.prepare("SELECT change_version FROM clocking_state WHERE id = ?1")?;
                let mut log = tx.prepare(
                    "INSERT INTO change_log (received_at, clocking_id, change_version, change_type,
                         outcome, origin, change_json)
                     VALUES (?1, ?2, ?3, 'Delete', 'applied', 'erasure', ?4)",
                )?;
                let mut state = tx
                    .prepare("UPDATE clocking_state SET deleted = 1, log_seq = ?2 WHERE id = ?1")?;
                for id in &chunk {
                    let Some(version) = version_of
                        .query_row([id], |row| row.get::<_, String>(0))
                        .optional()?
                    else {
                        continue;
                    };
                    log.execute(params![
                        erased_at,
                        id,
                        version,
                        erasure_change(*id, &version)
                    ])?;
                    state.execute(params![id, tx.last_insert_rowid()])?;
                    erased += 1;
                }
            }
            tx.execute(
                "UPDATE erasures SET clockings = clockings + ?2 WHERE seq = ?1",
                params![erasure, erased],
            )?;
            tx.commit()?;
            Ok((erased, 0))
        }))?
        .0;
    }

    // 2. Every other entry of those ids goes.
    let last = max_seq(conn, "change_log")?;
    for (low, high) in retention_windows(last) {
        let ids = std::sync::Arc::clone(&ids);
        counts.change_log_entries += write(Box::new(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut removed = 0_u64;
            {
                let mut candidates = tx.prepare(&format!(
                    "SELECT seq, clocking_id FROM change_log
                     WHERE seq > ?1 AND seq <= ?2 AND {NOT_CURRENT}"
                ))?;
                let mut delete = tx.prepare("DELETE FROM change_log WHERE seq = ?1")?;
                let mut rows = candidates.query(params![low, high])?;
                while let Some(row) = rows.next()? {
                    if ids.contains(&row.get::<_, i64>(1)?) {
                        removed += to_count(delete.execute([row.get::<_, i64>(0)?])?);
                    }
                }
            }
            tx.execute(
                "UPDATE erasures SET change_log_entries = change_log_entries + ?2 WHERE seq = ?1",
                params![erasure, removed],
            )?;
            tx.commit()?;
            Ok((removed, 0))
        }))?
        .0;
    }

    // 3. The dead letters that name the person.
    for chunk in letters.chunks(ID_BATCH) {
        let chunk = chunk.to_vec();
        counts.dead_letters += write(Box::new(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut removed = 0;
            {
                let mut delete = tx.prepare("DELETE FROM dead_letters WHERE seq = ?1")?;
                for seq in &chunk {
                    removed += delete.execute([seq])?;
                }
            }
            tx.execute(
                "UPDATE erasures SET dead_letters = dead_letters + ?2 WHERE seq = ?1",
                params![erasure, to_count(removed)],
            )?;
            tx.commit()?;
            Ok((to_count(removed), 0))
        }))?
        .0;
    }
    let completed_at = rfc3339(Utc::now());
    write(Box::new(move |conn| {
        conn.execute(
            "UPDATE erasures SET completed_at = ?2 WHERE seq = ?1",
            params![erasure, completed_at],
        )?;
        Ok((0, 0))
    }))?;
    Ok(counts)
}

fn parse_time(what: &str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|e| StoreError::corrupt(format!("erasures: {what} {text:?}: {e}")))
}

pub(crate) fn erasures(conn: &Connection) -> Result<Vec<ErasureRecord>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT seq, erased_at, completed_at, clockings, change_log_entries, dead_letters
         FROM erasures ORDER BY seq",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Option<String>>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, i64>(4)?,
            row.get::<_, i64>(5)?,
        ))
    })?;
    let mut records = Vec::new();
    for row in rows {
        let (seq, erased_at, completed_at, clockings, entries, letters) = row?;
        records.push(ErasureRecord {
            seq,
            erased_at: parse_time("erased_at", &erased_at)?,
            completed_at: completed_at
                .map(|text| parse_time("completed_at", &text))
                .transpose()?,
            counts: ErasureCounts::new(
                u64::try_from(clockings).unwrap_or(0),
                u64::try_from(entries).unwrap_or(0),
                u64::try_from(letters).unwrap_or(0),
            ),
        });
    }
    Ok(records)
}
