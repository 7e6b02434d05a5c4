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

/// Version 1 → 2.
///
/// - The change log records each entry's origin. Webhook entries keep the body exactly as
///   received (and the fingerprint of the key that verified it); sync entries have no body —
///   the validated change is kept as `change_json` (our serialization of it, named as such)
///   with the sync run and page, and only when it was applied (a synced item that changed
///   nothing carries no information). SQLite cannot relax `NOT NULL` in place, so the table
///   is rebuilt; `seq` values are kept.
/// - The state keeps no copy of the clocking: `log_seq` points at the change-log entry that
///   made it (its body is the clocking), so each change is written once. The log is
///   therefore append-only *and* the home of the current state: an entry that a state row
///   points at must never be pruned.
/// - Dead letters gain the key fingerprint.
///
/// The checks are written with `=` and `OR`, not `IN (…)`: SQLite evaluates a `CHECK … IN`
/// list through an ephemeral table on every insert, about a tenth of the writer's time in a
/// sync (seen in a `perf` profile).
const MIGRATE_V1_TO_V2: &str = "
CREATE TABLE clocking_state_v2 (
    id             INTEGER PRIMARY KEY,
    change_version TEXT    NOT NULL,
    deleted        INTEGER NOT NULL CHECK (deleted = 0 OR deleted = 1),
    log_seq        INTEGER NOT NULL
) STRICT;
INSERT INTO clocking_state_v2 (id, change_version, deleted, log_seq)
    SELECT s.id, s.change_version, s.deleted,
           (SELECT MAX(l.seq) FROM change_log l
            WHERE l.clocking_id = s.id AND l.change_version = s.change_version AND l.outcome = 'applied')
    FROM clocking_state s
    WHERE EXISTS (SELECT 1 FROM change_log l
                  WHERE l.clocking_id = s.id AND l.change_version = s.change_version AND l.outcome = 'applied');
CREATE TABLE change_log_v2 (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at     TEXT    NOT NULL,
    clocking_id     INTEGER NOT NULL,
    change_version  TEXT    NOT NULL,
    change_type     TEXT    NOT NULL CHECK (change_type = 'InsertOrUpdate' OR change_type = 'Delete'),
    outcome         TEXT    NOT NULL CHECK (outcome = 'applied' OR outcome = 'duplicate' OR outcome = 'stale'),
    origin          TEXT    NOT NULL CHECK (origin = 'webhook' OR origin = 'sync'),
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
DROP TABLE clocking_state;
ALTER TABLE clocking_state_v2 RENAME TO clocking_state;
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
            // Every v1 state row was made by an applied, logged webhook delivery; one that was
            // not cannot be carried over without making up its origin.
            let orphans: i64 = tx.query_row(
                "SELECT COUNT(*) FROM clocking_state s WHERE NOT EXISTS (SELECT 1 FROM change_log l
                 WHERE l.clocking_id = s.id AND l.change_version = s.change_version AND l.outcome = 'applied')",
                [],
                |row| row.get(0),
            )?;
            if orphans > 0 {
                return Err(StoreError::corrupt(format!(
                    "{orphans} clocking_state rows of schema version 1 have no applied change-log entry"
                )));
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

    #[test]
    fn a_version_1_state_row_without_its_log_entry_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO clocking_state (id, change_version, deleted, clocking_json) VALUES (7, '0A', 1, NULL);",
        )
        .unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    }
}
