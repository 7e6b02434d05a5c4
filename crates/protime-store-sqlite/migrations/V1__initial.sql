-- Version 1 (protime 0.1). Every statement is idempotent.
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
