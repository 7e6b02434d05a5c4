//! Applying one delivery inside the writer's transaction: the ordering decision, the state
//! row, the change-log row, or the dead letter.

use protime_model::ordering::{ApplyOutcome, decide};
use protime_model::{ChangeVersion, ClockingChange};
use protime_webhooks::sink::{Delivery, Origin, Receipt};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::StoreError;

const SELECT_VERSION: &str = "SELECT change_version FROM clocking_state WHERE id = ?1";
const UPSERT_STATE: &str = "INSERT INTO clocking_state (id, change_version, deleted, clocking_json)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (id) DO UPDATE SET change_version = excluded.change_version,
         deleted = excluded.deleted, clocking_json = excluded.clocking_json";
const INSERT_WEBHOOK_CHANGE: &str = "INSERT INTO change_log
     (received_at, clocking_id, change_version, change_type, outcome, origin, raw_body, key_fingerprint)
     VALUES (?1, ?2, ?3, ?4, ?5, 'webhook', ?6, ?7)";
const INSERT_SYNC_CHANGE: &str = "INSERT INTO change_log
     (received_at, clocking_id, change_version, change_type, outcome, origin, change_json, sync_run, sync_page)
     VALUES (?1, ?2, ?3, ?4, 'applied', 'sync', ?5, ?6, ?7)";
const INSERT_DEAD_LETTER: &str =
    "INSERT INTO dead_letters (received_at, raw_body, errors_json, key_fingerprint)
     VALUES (?1, ?2, ?3, ?4)";

pub(crate) fn rfc3339(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn outcome_name(outcome: ApplyOutcome) -> &'static str {
    match outcome {
        ApplyOutcome::Applied => "applied",
        ApplyOutcome::Duplicate => "duplicate",
        ApplyOutcome::Stale => "stale",
    }
}

pub(crate) fn stored_version(id: i64, version: String) -> Result<ChangeVersion, StoreError> {
    ChangeVersion::new(version)
        .map_err(|e| StoreError::corrupt(format!("clocking_state, id {id}: {e}")))
}

/// Applies one delivery on the writer's transaction.
pub(crate) fn apply(conn: &Connection, delivery: &Delivery) -> Result<Receipt, StoreError> {
    match delivery {
        Delivery::Change { change, origin } => apply_change(conn, change, origin),
        Delivery::DeadLetter { errors, webhook } => {
            let errors_json = serde_json::to_string(errors)?;
            conn.prepare_cached(INSERT_DEAD_LETTER)?.execute(params![
                rfc3339(webhook.received_at),
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
    conn: &Connection,
    change: &ClockingChange,
    origin: &Origin,
) -> Result<Receipt, StoreError> {
    let id = change.id().get();
    let known = conn
        .prepare_cached(SELECT_VERSION)?
        .query_row([id], |row| row.get::<_, String>(0))
        .optional()?
        .map(|version| stored_version(id, version))
        .transpose()?;
    let outcome = decide(known.as_ref(), change.change_version());
    let version = change.change_version().as_str();
    let mut clocking_json = None;
    if outcome == ApplyOutcome::Applied {
        clocking_json = match change {
            ClockingChange::InsertOrUpdate(clocking) => Some(serde_json::to_string(clocking)?),
            ClockingChange::Delete { .. } => None,
        };
        let deleted = match change {
            ClockingChange::InsertOrUpdate(clocking) => clocking.is_deleted(),
            ClockingChange::Delete { .. } => true,
        };
        conn.prepare_cached(UPSERT_STATE)?.execute(params![
            id,
            version,
            deleted,
            if deleted {
                None
            } else {
                clocking_json.as_deref()
            },
        ])?;
    }
    let received_at = rfc3339(origin.received_at());
    match origin {
        Origin::Webhook(webhook) => {
            conn.prepare_cached(INSERT_WEBHOOK_CHANGE)?
                .execute(params![
                    received_at,
                    id,
                    version,
                    change.change_type().name(),
                    outcome_name(outcome),
                    webhook.raw_body.as_ref(),
                    webhook.key_fingerprint,
                ])?;
        }
        // A synced item that changed nothing carries no information (no body to keep, and
        // the state already has its version): only applied ones are logged, so monthly
        // re-syncs do not grow the log by the whole tenant.
        Origin::Sync(sync) if outcome == ApplyOutcome::Applied => {
            let change_json = match (change, clocking_json) {
                (ClockingChange::InsertOrUpdate(_), Some(data)) => {
                    format!(r#"{{"changeType":"InsertOrUpdate","data":{data}}}"#)
                }
                _ => serde_json::to_string(change)?,
            };
            conn.prepare_cached(INSERT_SYNC_CHANGE)?.execute(params![
                received_at,
                id,
                version,
                change.change_type().name(),
                change_json,
                sync.run,
                i64::try_from(sync.page).unwrap_or(i64::MAX),
            ])?;
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
