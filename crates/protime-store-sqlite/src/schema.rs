//! The schema, its version (`PRAGMA user_version`) and the migrations between versions.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// Version of the schema this code writes.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// Version 1 (protime 0.1). Every statement is idempotent.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS clocking_state (
    id             INTEGER PRIMARY KEY,
    change_version TEXT    NOT NULL,
    deleted        INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    clocking_json  TEXT,
    CHECK ((deleted = 1) = (clocking_json IS NULL))
) STRICT;
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
CREATE TABLE IF NOT EXISTS dead_letters (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at    TEXT    NOT NULL,
    raw_body       BLOB    NOT NULL,
    errors_json    TEXT    NOT NULL
) STRICT;
";

/// Version 1 → 2: the change log records each entry's origin. Webhook entries keep the body
/// exactly as received (and the fingerprint of the key that verified it); sync entries have
/// no body — the validated change is kept as `change_json` (our serialization of it, named
/// as such) with the sync run and page, and only when it was applied (a synced item that
/// changed nothing carries no information). SQLite cannot relax `NOT NULL` in place, so the
/// table is rebuilt; `seq` values are kept. Dead letters gain the key fingerprint.
const MIGRATE_V1_TO_V2: &str = "
CREATE TABLE change_log_v2 (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at     TEXT    NOT NULL,
    clocking_id     INTEGER NOT NULL,
    change_version  TEXT    NOT NULL,
    change_type     TEXT    NOT NULL CHECK (change_type IN ('InsertOrUpdate', 'Delete')),
    outcome         TEXT    NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'stale')),
    origin          TEXT    NOT NULL CHECK (origin IN ('webhook', 'sync')),
    raw_body        BLOB,
    key_fingerprint TEXT,
    change_json     TEXT,
    sync_run        TEXT,
    sync_page       INTEGER,
    CHECK ((origin = 'webhook') = (raw_body IS NOT NULL)),
    CHECK ((origin = 'sync') = (change_json IS NOT NULL))
) STRICT;
INSERT INTO change_log_v2 (seq, received_at, clocking_id, change_version, change_type, outcome,
                           origin, raw_body)
    SELECT seq, received_at, clocking_id, change_version, change_type, outcome, 'webhook', raw_body
    FROM change_log;
DROP TABLE change_log;
ALTER TABLE change_log_v2 RENAME TO change_log;
CREATE INDEX change_log_by_clocking ON change_log (clocking_id, change_version);
-- The change feed reads applied entries in commit (seq) order.
CREATE INDEX change_log_applied ON change_log (seq) WHERE outcome = 'applied';
ALTER TABLE dead_letters ADD COLUMN key_fingerprint TEXT;
";

/// Creates the schema on a new file, migrates an older one, checks the current one, and
/// refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        0 | 1 => {
            if version == 0 {
                tx.execute_batch(SCHEMA_V1)?;
            }
            tx.execute_batch(MIGRATE_V1_TO_V2)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            if version == 1 {
                tracing::info!("store migrated from schema version 1 to 2");
            }
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
                    "schema version {found}, this version of protime-store-sqlite knows up to {SCHEMA_VERSION}"
                ),
            });
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_file_is_migrated_keeping_its_log() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO change_log (received_at, clocking_id, change_version, change_type, outcome, raw_body)
             VALUES ('2026-01-01T00:00:00Z', 7, '0A', 'Delete', 'applied', X'7B7D')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (origin, body): (String, Vec<u8>) = conn
            .query_row(
                "SELECT origin, raw_body FROM change_log WHERE seq = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (origin.as_str(), body.as_slice()),
            ("webhook", b"{}".as_slice())
        );
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
