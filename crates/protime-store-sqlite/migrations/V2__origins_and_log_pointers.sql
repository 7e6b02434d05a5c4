-- Version 1 → 2.
--
-- - The change log records each entry's origin. Webhook entries keep the body exactly as
--   received (and the fingerprint of the key that verified it); sync entries have no body —
--   the validated change is kept as `change_json` (our serialization of it, named as such)
--   with the sync run and page, and only when it was applied (a synced item that changed
--   nothing carries no information). SQLite cannot relax `NOT NULL` in place, so the table
--   is rebuilt; `seq` values are kept.
-- - The state keeps no copy of the clocking: `log_seq` points at the change-log entry that
--   made it (its body is the clocking), so each change is written once. The log is
--   therefore append-only *and* the home of the current state: an entry that a state row
--   points at must never be pruned.
-- - Dead letters gain the key fingerprint.
--
-- The checks are written with `=` and `OR`, not `IN (…)`: SQLite evaluates a `CHECK … IN`
-- list through an ephemeral table on every insert, about a tenth of the writer's time in a
-- sync (seen in a `perf` profile).
--
-- Applied only after the store has checked that every version-1 state row has an applied
-- change-log entry (the INSERT below would drop a row that has none).
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
