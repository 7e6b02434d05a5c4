//! One group of queued deliveries as one transaction: lock the state rows of the group's
//! ids in id order, decide every change against the locked versions (byte order, in Rust),
//! write the state, the change log and the dead letters in set-based statements, take the
//! feed positions last, commit.
//!
//! # Why no deadlock and no lost update across replicas
//! New ids are inserted first, in id order, with the state the group gives them when
//! nothing is stored (`ON CONFLICT DO NOTHING`: an id another writer has inserted waits for
//! that writer, then counts as existing); then every id of the group is locked with
//! `SELECT … ORDER BY id FOR UPDATE`. Every writer takes its row locks in ascending id
//! order, and the feed counter only after all of them, so lock waits cannot form a cycle;
//! and the versions a writer decides against are the locked, latest committed ones.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures_util::future::join5;
use protime_model::ordering::{ApplyOutcome, decide};
use protime_model::{ChangeVersion, ClockingChange};
use protime_webhooks::sink::{Delivery, Origin, Receipt};
use tokio::sync::oneshot;
use tokio_postgres::types::ToSql;

use crate::StoreError;

pub(crate) type Outcome = Result<Receipt, StoreError>;

/// The right to collect the next group: held by one writer from taking jobs off the queue
/// until its group's rows are locked, then handed on (dropped), so the next writer collects
/// what arrived meanwhile and its transaction overlaps this one's commit. Groups are locked
/// in the order they were collected, so deliveries of one id are applied in queue order.
pub(crate) type CollectTurn<'q> =
    Option<tokio::sync::MutexGuard<'q, tokio::sync::mpsc::Receiver<Job>>>;

/// One `record` or `record_batch` call and who waits for it.
pub(crate) struct Job {
    pub(crate) deliveries: Vec<Delivery>,
    pub(crate) reply: oneshot::Sender<Vec<Outcome>>,
}

const INSERT_NEW_STATES: &str = "INSERT INTO clocking_state (id, change_version, deleted)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[]) ORDER BY 1
     ON CONFLICT (id) DO NOTHING RETURNING id";
const LOCK_STATES: &str = "SELECT id, change_version FROM clocking_state
     WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE";
const UPDATE_STATES: &str = "UPDATE clocking_state s SET change_version = u.v, deleted = u.d
     FROM unnest($1::bigint[], $2::text[], $3::boolean[]) AS u(id, v, d) WHERE s.id = u.id";
const INSERT_DEAD_LETTERS: &str =
    "INSERT INTO dead_letters (received_at, raw_body, errors_json, key_fingerprint)
     SELECT * FROM unnest($1::timestamptz[], $2::bytea[], $3::text[], $4::text[])";
/// The log entries; applied ones get `base + rank`, where `base` is the counter before this
/// transaction's positions were added. Updating the counter row is the transaction's last
/// write: its lock is held only for this statement and the commit.
const INSERT_LOG_WITH_POSITIONS: &str = "WITH counter AS (
         UPDATE feed_counter SET last_position = last_position + $1
         RETURNING last_position - $1 AS base)
     INSERT INTO change_log (feed_position, received_at, clocking_id, change_version,
         change_type, outcome, origin, raw_body, key_fingerprint, change_json, sync_run, sync_page)
     SELECT counter.base + u.rank, u.received_at, u.clocking_id, u.change_version,
         u.change_type, u.outcome, u.origin, u.raw_body, u.key_fingerprint, u.change_json,
         u.sync_run, u.sync_page
     FROM counter, unnest($2::bigint[], $3::timestamptz[], $4::bigint[], $5::text[], $6::text[],
         $7::text[], $8::text[], $9::bytea[], $10::text[], $11::text[], $12::text[], $13::bigint[])
         AS u(rank, received_at, clocking_id, change_version, change_type, outcome, origin,
              raw_body, key_fingerprint, change_json, sync_run, sync_page)";
/// The log entries of a group where nothing was applied (redeliveries, stale changes): no
/// feed positions, so the counter is not locked.
const INSERT_LOG_WITHOUT_POSITIONS: &str = "INSERT INTO change_log (feed_position, received_at,
         clocking_id, change_version, change_type, outcome, origin, raw_body, key_fingerprint,
         change_json, sync_run, sync_page)
     SELECT NULL, u.received_at, u.clocking_id, u.change_version, u.change_type, u.outcome,
         u.origin, u.raw_body, u.key_fingerprint, u.change_json, u.sync_run, u.sync_page
     FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::text[], $5::text[],
         $6::text[], $7::text[], $8::bytea[], $9::text[], $10::text[], $11::text[], $12::bigint[])
         AS u(rank, received_at, clocking_id, change_version, change_type, outcome, origin,
              raw_body, key_fingerprint, change_json, sync_run, sync_page)";
const NOTIFY: &str = "SELECT pg_notify($1, '')";

/// What PostgreSQL cannot store: `TEXT` holds no NUL character. Refused before the
/// transaction, so that one such delivery does not fail its whole group.
pub(crate) fn storable(delivery: &Delivery) -> Result<(), StoreError> {
    let nul = |what: &str, text: &str| {
        if text.contains('\0') {
            Err(StoreError::unsupported(format!(
                "{what} contains a NUL character, which PostgreSQL text cannot hold"
            )))
        } else {
            Ok(())
        }
    };
    match delivery {
        Delivery::Change { change, origin } => {
            nul("the changeVersion", change.change_version().as_str())?;
            match origin {
                Origin::Webhook(webhook) => nul("the key fingerprint", &webhook.key_fingerprint),
                Origin::Sync(sync) => nul("the sync run name", &sync.run),
                _ => Err(StoreError::unsupported(
                    "an origin this version of protime-store-postgres does not know",
                )),
            }
        }
        Delivery::DeadLetter { webhook, .. } => {
            nul("the key fingerprint", &webhook.key_fingerprint)
        }
        _ => Err(StoreError::unsupported(
            "a delivery kind this version of protime-store-postgres does not know",
        )),
    }
}

fn deleted_by(change: &ClockingChange) -> bool {
    match change {
        ClockingChange::InsertOrUpdate(clocking) => clocking.is_deleted(),
        ClockingChange::Delete { .. } => true,
    }
}

fn outcome_name(outcome: ApplyOutcome) -> &'static str {
    match outcome {
        ApplyOutcome::Applied => "applied",
        ApplyOutcome::Duplicate => "duplicate",
        ApplyOutcome::Stale => "stale",
    }
}

/// The final state of each id when the group is applied to `start` (`None`: nothing
/// stored), and the outcome of every change.
fn simulate<'a>(
    changes: &[&'a ClockingChange],
    start: Option<&ChangeVersion>,
) -> (Vec<ApplyOutcome>, Option<(&'a ChangeVersion, bool)>) {
    let mut changed: Option<(&'a ChangeVersion, bool)> = None;
    let outcomes = changes
        .iter()
        .map(|change| {
            let current = changed.map(|(v, _)| v).or(start);
            let outcome = decide(current, change.change_version());
            if outcome == ApplyOutcome::Applied {
                changed = Some((change.change_version(), deleted_by(change)));
            }
            outcome
        })
        .collect();
    (outcomes, changed)
}

/// The change-log columns, one vector per column (sent as arrays).
#[derive(Default)]
struct LogColumns {
    rank: Vec<Option<i64>>,
    received_at: Vec<DateTime<Utc>>,
    clocking_id: Vec<i64>,
    change_version: Vec<String>,
    change_type: Vec<&'static str>,
    outcome: Vec<&'static str>,
    origin: Vec<&'static str>,
    raw_body: Vec<Option<Vec<u8>>>,
    key_fingerprint: Vec<Option<String>>,
    change_json: Vec<Option<String>>,
    sync_run: Vec<Option<String>>,
    sync_page: Vec<Option<i64>>,
    applied: i64,
}

impl LogColumns {
    fn push(
        &mut self,
        change: &ClockingChange,
        origin: &Origin,
        outcome: ApplyOutcome,
    ) -> Result<(), StoreError> {
        let (raw_body, key_fingerprint, change_json, sync_run, sync_page) = match origin {
            Origin::Webhook(webhook) => (
                Some(webhook.raw_body.to_vec()),
                Some(webhook.key_fingerprint.clone()),
                None,
                None,
                None,
            ),
            // A synced item that changed nothing carries no information: only applied ones
            // are logged (as in the SQLite store).
            Origin::Sync(_) if outcome != ApplyOutcome::Applied => return Ok(()),
            Origin::Sync(sync) => (
                None,
                None,
                Some(serde_json::to_string(change)?),
                Some(sync.run.to_string()),
                Some(i64::try_from(sync.page).unwrap_or(i64::MAX)),
            ),
            _ => {
                return Err(StoreError::unsupported(
                    "an origin this version of protime-store-postgres does not know",
                ));
            }
        };
        let rank = if outcome == ApplyOutcome::Applied {
            self.applied += 1;
            Some(self.applied)
        } else {
            None
        };
        self.rank.push(rank);
        self.received_at.push(origin.received_at());
        self.clocking_id.push(change.id().get());
        self.change_version
            .push(change.change_version().as_str().to_owned());
        self.change_type.push(change.change_type().name());
        self.outcome.push(outcome_name(outcome));
        self.origin.push(origin.kind());
        self.raw_body.push(raw_body);
        self.key_fingerprint.push(key_fingerprint);
        self.change_json.push(change_json);
        self.sync_run.push(sync_run);
        self.sync_page.push(sync_page);
        Ok(())
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.rank,
            &self.received_at,
            &self.clocking_id,
            &self.change_version,
            &self.change_type,
            &self.outcome,
            &self.origin,
            &self.raw_body,
            &self.key_fingerprint,
            &self.change_json,
            &self.sync_run,
            &self.sync_page,
        ]
    }
}

/// Why a group was not committed: nothing of it is acknowledged, and the caller rolls back
/// (or drops the connection).
#[derive(Debug)]
pub(crate) enum GroupError {
    /// The database failed.
    Postgres(tokio_postgres::Error),
    /// The stored data or a delivery could not be handled consistently.
    Inconsistent(StoreError),
}

impl From<tokio_postgres::Error> for GroupError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Postgres(error)
    }
}

/// Applies a group of jobs in one transaction on `client`. The outer error means nothing
/// of the group was committed; inner errors are deliveries refused before the transaction.
pub(crate) async fn write_group(
    client: &deadpool_postgres::Client,
    jobs: &[Job],
    channel: &str,
    turn: &mut CollectTurn<'_>,
) -> Result<Vec<Vec<Outcome>>, GroupError> {
    // Every delivery of the group, in order, gets a slot: refused now (`storable`), or a
    // receipt decided below.
    let deliveries: Vec<&Delivery> = jobs.iter().flat_map(|job| &job.deliveries).collect();
    let mut results: Vec<Option<Outcome>> = deliveries
        .iter()
        .map(|delivery| storable(delivery).err().map(Err))
        .collect();

    // The group's changes in order, each id's changes in order, and the dead letters.
    let mut changes: Vec<(usize, &ClockingChange, &Origin)> = Vec::new();
    let mut dead_letters = Vec::new();
    for ((slot, delivery), refused) in deliveries.iter().enumerate().zip(&results) {
        match delivery {
            _ if refused.is_some() => {}
            Delivery::Change { change, origin } => changes.push((slot, change, origin)),
            Delivery::DeadLetter { errors, webhook } => dead_letters.push((slot, errors, webhook)),
            _ => {}
        }
    }
    let mut by_id: BTreeMap<i64, Vec<(usize, &ClockingChange)>> = BTreeMap::new();
    for (slot, change, _) in &changes {
        by_id
            .entry(change.id().get())
            .or_default()
            .push((*slot, *change));
    }
    let ids: Vec<i64> = by_id.keys().copied().collect();

    // The state of each id if nothing is stored yet.
    let mut new_ids = Vec::with_capacity(ids.len());
    let mut new_versions = Vec::with_capacity(ids.len());
    let mut new_deleted = Vec::with_capacity(ids.len());
    for (id, of_id) in &by_id {
        let of_id: Vec<&ClockingChange> = of_id.iter().map(|(_, change)| *change).collect();
        if let (_, Some((version, deleted))) = simulate(&of_id, None) {
            new_ids.push(*id);
            new_versions.push(version.as_str());
            new_deleted.push(deleted);
        }
    }

    let mut outcomes: HashMap<usize, ApplyOutcome> = HashMap::with_capacity(changes.len());
    let mut updates: (Vec<i64>, Vec<&str>, Vec<bool>) = Default::default();
    if ids.is_empty() {
        client.batch_execute("BEGIN").await?;
        turn.take();
    } else {
        let insert = client.prepare_cached(INSERT_NEW_STATES).await?;
        let lock = client.prepare_cached(LOCK_STATES).await?;
        // BEGIN, the inserts and the locks in one round trip (pipelined, run in order).
        let (begun, inserted, locked) = futures_util::future::join3(
            client.batch_execute("BEGIN"),
            client.query(&insert, &[&new_ids, &new_versions, &new_deleted]),
            client.query(&lock, &[&ids]),
        )
        .await;
        // This group's rows are locked (or the attempt failed): the next writer may collect.
        turn.take();
        begun?;
        let inserted: HashSet<i64> = inserted?.iter().map(|row| row.get(0)).collect();
        let mut stored: HashMap<i64, String> = HashMap::with_capacity(ids.len());
        for row in locked? {
            stored.insert(row.try_get(0)?, row.try_get(1)?);
        }
        for (id, of_id) in &by_id {
            let fresh = inserted.contains(id);
            let start = if fresh {
                None
            } else {
                // An empty stored version is the absent one (a clocking synced without a
                // changeVersion), which orders first.
                let Some(version) = stored
                    .get(id)
                    .map(|v| ChangeVersion::from_stored(v.clone()))
                else {
                    return Err(GroupError::Inconsistent(StoreError::corrupt(format!(
                        "clocking_state, id {id}: neither inserted nor found"
                    ))));
                };
                Some(version)
            };
            let changes_of_id: Vec<&ClockingChange> =
                of_id.iter().map(|(_, change)| *change).collect();
            let (id_outcomes, changed) = simulate(&changes_of_id, start.as_ref());
            for ((slot, _), outcome) in of_id.iter().zip(id_outcomes) {
                outcomes.insert(*slot, outcome);
            }
            if let Some((version, deleted)) = changed.filter(|_| !fresh) {
                updates.0.push(*id);
                updates.1.push(version.as_str());
                updates.2.push(deleted);
            }
        }
    }

    let mut log = LogColumns::default();
    for (slot, change, origin) in &changes {
        let outcome = outcomes.get(slot).copied().ok_or_else(|| {
            GroupError::Inconsistent(StoreError::corrupt(format!(
                "clocking {}: no outcome decided",
                change.id()
            )))
        })?;
        // A log entry that cannot be written after its state was decided would leave the
        // state without its entry: the whole group fails instead (no valid input does this).
        log.push(change, origin, outcome)
            .map_err(GroupError::Inconsistent)?;
        if let Some(result) = results.get_mut(*slot) {
            *result = Some(Ok(Receipt::Applied(outcome)));
        }
    }

    let mut dead = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (slot, errors, webhook) in &dead_letters {
        match serde_json::to_string(errors) {
            Ok(json) => {
                dead.0.push(webhook.received_at);
                dead.1.push(webhook.raw_body.to_vec());
                dead.2.push(json);
                dead.3.push(webhook.key_fingerprint.clone());
                if let Some(result) = results.get_mut(*slot) {
                    *result = Some(Ok(Receipt::DeadLettered));
                }
            }
            Err(error) => return Err(GroupError::Inconsistent(StoreError::Json(error))),
        }
    }

    let update = client.prepare_cached(UPDATE_STATES).await?;
    let insert_dead = client.prepare_cached(INSERT_DEAD_LETTERS).await?;
    let notify = client.prepare_cached(NOTIFY).await?;
    let log_params = log.params();
    let with_positions = log.applied > 0;
    let insert_log = client
        .prepare_cached(if with_positions {
            INSERT_LOG_WITH_POSITIONS
        } else {
            INSERT_LOG_WITHOUT_POSITIONS
        })
        .await?;
    let mut log_args: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(13);
    if with_positions {
        log_args.push(&log.applied);
    }
    log_args.extend_from_slice(&log_params);

    // One round trip: the statements are pipelined, and every one is awaited, so a failure
    // anywhere is seen (after a failure PostgreSQL answers COMMIT with a rollback).
    let skip = || async { Ok::<u64, tokio_postgres::Error>(0) };
    let (updated, dead_inserted, logged, notified, committed) = join5(
        async {
            if updates.0.is_empty() {
                skip().await
            } else {
                client
                    .execute(&update, &[&updates.0, &updates.1, &updates.2])
                    .await
            }
        },
        async {
            if dead.0.is_empty() {
                skip().await
            } else {
                client
                    .execute(&insert_dead, &[&dead.0, &dead.1, &dead.2, &dead.3])
                    .await
            }
        },
        async {
            if log.clocking_id.is_empty() {
                skip().await
            } else {
                client.execute(&insert_log, &log_args).await
            }
        },
        async {
            if with_positions || !dead.0.is_empty() {
                client.execute(&notify, &[&channel]).await
            } else {
                skip().await
            }
        },
        client.batch_execute("COMMIT"),
    )
    .await;
    updated?;
    dead_inserted?;
    logged?;
    notified?;
    committed?;
    // Back to one list per job.
    let mut results = results.into_iter().map(|slot| {
        slot.unwrap_or_else(|| {
            Err(StoreError::corrupt(
                "a delivery was left without an outcome",
            ))
        })
    });
    Ok(jobs
        .iter()
        .map(|job| results.by_ref().take(job.deliveries.len()).collect())
        .collect())
}
