//! Applying deliveries inside the writer's transaction: the ordering decision, the state
//! row, the change-log row, or the dead letter — with statements prepared once per
//! transaction.

use chrono::{DateTime, Utc};
use protime_model::ordering::ApplyOutcome;
use protime_model::{ChangeVersion, ClockingChange};
use protime_webhooks::sink::{Delivery, Origin, Receipt};
use rusqlite::{CachedStatement, Connection, OptionalExtension as _, params};

use crate::StoreError;

/// Inserts the state row, or replaces it only when the incoming version is greater. SQLite
/// compares `TEXT` with the `BINARY` collation — byte order, as `protime_model::decide` does.
const UPSERT_IF_NEWER: &str = "INSERT INTO clocking_state (id, change_version, deleted, log_seq)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (id) DO UPDATE SET change_version = excluded.change_version,
         deleted = excluded.deleted, log_seq = excluded.log_seq
     WHERE excluded.change_version > clocking_state.change_version";
const SELECT_VERSION: &str = "SELECT change_version FROM clocking_state WHERE id = ?1";
const INSERT_WEBHOOK_CHANGE: &str = "INSERT INTO change_log
     (seq, received_at, clocking_id, change_version, change_type, outcome, origin, raw_body, key_fingerprint)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'webhook', ?7, ?8)";
const INSERT_SYNC_CHANGE: &str = "INSERT INTO change_log
     (seq, received_at, clocking_id, change_version, change_type, outcome, origin, change_json, sync_run, sync_page)
     VALUES (?1, ?2, ?3, ?4, ?5, 'applied', 'sync', ?6, ?7, ?8)";
const LAST_SEQ: &str = "SELECT seq FROM sqlite_sequence WHERE name = 'change_log'";
const INSERT_DEAD_LETTER: &str =
    "INSERT INTO dead_letters (received_at, raw_body, errors_json, key_fingerprint)
     VALUES (?1, ?2, ?3, ?4)";

pub(crate) fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn outcome_name(outcome: ApplyOutcome) -> &'static str {
    match outcome {
        ApplyOutcome::Applied => "applied",
        ApplyOutcome::Duplicate => "duplicate",
        ApplyOutcome::Stale => "stale",
    }
}

/// A stored version: the empty string is the absent version of a clocking that a sync
/// listed without a `changeVersion` (`ChangeVersion::absent`); a real version is never empty.
pub(crate) fn stored_version(version: String) -> ChangeVersion {
    ChangeVersion::from_stored(version)
}

/// A delivery with what can be computed before the writer takes it: the serialized change of
/// a synced item (its log entry's `change_json`), made on the caller's thread so that the
/// single writer thread only writes.
pub(crate) struct Prepared {
    pub(crate) delivery: Delivery,
    change_json: Option<String>,
}

impl Prepared {
    pub(crate) fn new(delivery: Delivery) -> Self {
        let change_json = match &delivery {
            Delivery::Change {
                change,
                origin: Origin::Sync(_),
            } => serde_json::to_string(change).ok(),
            _ => None,
        };
        Self {
            delivery,
            change_json,
        }
    }
}

/// `time` formatted, reusing the last formatting when the time is the same.
fn formatted(cache: &mut Option<(DateTime<Utc>, String)>, time: DateTime<Utc>) -> &str {
    if cache.as_ref().is_none_or(|(cached, _)| *cached != time) {
        *cache = Some((time, rfc3339(time)));
    }
    cache.as_ref().map_or("", |(_, text)| text.as_str())
}

/// The writer's statements for one transaction.
pub(crate) struct Applier<'c> {
    upsert_if_newer: CachedStatement<'c>,
    select_version: CachedStatement<'c>,
    insert_webhook_change: CachedStatement<'c>,
    insert_sync_change: CachedStatement<'c>,
    insert_dead_letter: CachedStatement<'c>,
    /// The last `received_at` formatted: a sync page's items share it.
    received_at: Option<(DateTime<Utc>, String)>,
    /// The `seq` the next change-log entry gets. The state row of an applied change points
    /// at its entry, so the number is known before the row is written; the writer holds the
    /// database's write lock for the whole transaction, so nobody else takes numbers
    /// meanwhile. (After a rolled-back savepoint numbers are skipped, never reused.)
    next_seq: i64,
}

impl<'c> Applier<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Result<Self, rusqlite::Error> {
        let last_seq: i64 = conn
            .query_row(LAST_SEQ, [], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        Ok(Self {
            next_seq: last_seq + 1,
            upsert_if_newer: conn.prepare_cached(UPSERT_IF_NEWER)?,
            select_version: conn.prepare_cached(SELECT_VERSION)?,
            insert_webhook_change: conn.prepare_cached(INSERT_WEBHOOK_CHANGE)?,
            insert_sync_change: conn.prepare_cached(INSERT_SYNC_CHANGE)?,
            insert_dead_letter: conn.prepare_cached(INSERT_DEAD_LETTER)?,
            received_at: None,
        })
    }

    /// Applies one delivery.
    pub(crate) fn apply(&mut self, prepared: &Prepared) -> Result<Receipt, StoreError> {
        match &prepared.delivery {
            Delivery::Change { change, origin } => {
                self.apply_change(change, origin, prepared.change_json.as_deref())
            }
            Delivery::DeadLetter { errors, webhook } => {
                let errors_json = serde_json::to_string(errors)?;
                let received_at = formatted(&mut self.received_at, webhook.received_at);
                self.insert_dead_letter.execute(params![
                    received_at,
                    webhook.raw_body.as_ref(),
                    errors_json,
                    webhook.key_fingerprint,
                ])?;
                Ok(Receipt::DeadLettered)
            }
            // `Delivery` is non-exhaustive: a kind this store does not know is refused, not
            // acknowledged.
            _ => Err(StoreError::Unsupported {
                what: "a delivery kind this version of protime-store-sqlite does not know".into(),
            }),
        }
    }

    fn apply_change(
        &mut self,
        change: &ClockingChange,
        origin: &Origin,
        change_json: Option<&str>,
    ) -> Result<Receipt, StoreError> {
        let id = change.id().get();
        let version = change.change_version().as_str();
        let deleted = match change {
            ClockingChange::InsertOrUpdate(clocking) => clocking.is_deleted(),
            ClockingChange::Delete { .. } => true,
        };
        let seq = self.next_seq;
        let written = self
            .upsert_if_newer
            .execute(params![id, version, deleted, seq])?;
        let outcome = if written > 0 {
            ApplyOutcome::Applied
        } else {
            // Not newer: a redelivery of the stored version, or an older one.
            let known = self
                .select_version
                .query_row([id], |row| row.get::<_, String>(0))
                .optional()?
                .map(stored_version);
            match known {
                Some(known) if known == *change.change_version() => ApplyOutcome::Duplicate,
                Some(_) => ApplyOutcome::Stale,
                None => {
                    return Err(StoreError::corrupt(format!(
                        "clocking_state, id {id}: neither written nor present"
                    )));
                }
            }
        };
        let change_type = change.change_type().name();
        match origin {
            Origin::Webhook(webhook) => {
                let received_at = formatted(&mut self.received_at, webhook.received_at);
                self.insert_webhook_change.execute(params![
                    seq,
                    received_at,
                    id,
                    version,
                    change_type,
                    outcome_name(outcome),
                    webhook.raw_body.as_ref(),
                    webhook.key_fingerprint,
                ])?;
                self.next_seq += 1;
            }
            // A synced item that changed nothing carries no information (no body to keep,
            // and the state already has its version): only applied ones are logged, so
            // monthly re-syncs do not grow the log by the whole tenant.
            Origin::Sync(sync) if outcome == ApplyOutcome::Applied => {
                let change_json = match change_json {
                    Some(json) => std::borrow::Cow::Borrowed(json),
                    None => std::borrow::Cow::Owned(serde_json::to_string(change)?),
                };
                let page = i64::try_from(sync.page).unwrap_or(i64::MAX);
                let received_at = formatted(&mut self.received_at, sync.received_at);
                self.insert_sync_change.execute(params![
                    seq,
                    received_at,
                    id,
                    version,
                    change_type,
                    change_json.as_ref(),
                    &*sync.run,
                    page,
                ])?;
                self.next_seq += 1;
            }
            Origin::Sync(_) => {}
            _ => {
                return Err(StoreError::Unsupported {
                    what: "an origin this version of protime-store-sqlite does not know".into(),
                });
            }
        }
        Ok(Receipt::Applied(outcome))
    }
}
