-- Version 3 → 4: retention and erasure (`protime purge`, `protime forget`).
--
-- - A webhook entry's body can be purged by retention once the entry no longer makes the
--   current state: `raw_body` becomes NULL and `body_purged_at` says when. The entry (id,
--   version, outcome) stays until change-log retention removes it.
-- - A new origin, `erasure`: the feed entry of an erased clocking (a Delete of its id at its
--   last version, as `change_json`; no personal data). The erased id's state row points at
--   it, so the id and version are kept for ordering.
-- - `erasures` records that an erasure happened and how many rows it removed, never whose.
--
-- SQLite cannot change a CHECK constraint in place, so the change log is rebuilt; `seq`
-- values are kept, and so is the AUTOINCREMENT counter (its sqlite_sequence row follows the
-- rename): a removed entry's seq is never handed out again, so a feed cursor stays valid.
CREATE TABLE change_log_v4 (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at     TEXT    NOT NULL,
    clocking_id     INTEGER NOT NULL,
    change_version  TEXT    NOT NULL,
    change_type     TEXT    NOT NULL CHECK (change_type = 'InsertOrUpdate' OR change_type = 'Delete'),
    outcome         TEXT    NOT NULL CHECK (outcome = 'applied' OR outcome = 'duplicate' OR outcome = 'stale'),
    origin          TEXT    NOT NULL CHECK (origin = 'webhook' OR origin = 'sync' OR origin = 'erasure'),
    raw_body        BLOB,
    key_fingerprint TEXT,
    change_json     TEXT,
    sync_run        TEXT,
    sync_page       INTEGER,
    body_purged_at  TEXT,
    CHECK ((origin = 'webhook') = (raw_body IS NOT NULL OR body_purged_at IS NOT NULL)),
    CHECK (raw_body IS NULL OR body_purged_at IS NULL),
    CHECK ((origin = 'webhook') = (change_json IS NULL))
) STRICT;
INSERT INTO change_log_v4 (seq, received_at, clocking_id, change_version, change_type, outcome,
                           origin, raw_body, key_fingerprint, change_json, sync_run, sync_page)
    SELECT seq, received_at, clocking_id, change_version, change_type, outcome,
           origin, raw_body, key_fingerprint, change_json, sync_run, sync_page
    FROM change_log;
-- The copy sets the counter to the highest seq kept; a number handed out and not kept (a
-- rolled-back savepoint) must not be handed out again either.
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT s.seq FROM sqlite_sequence s WHERE s.name = 'change_log'))
    WHERE name = 'change_log_v4';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'change_log_v4', s.seq FROM sqlite_sequence s
    WHERE s.name = 'change_log'
      AND NOT EXISTS (SELECT 1 FROM sqlite_sequence v WHERE v.name = 'change_log_v4');
DROP TABLE change_log;
ALTER TABLE change_log_v4 RENAME TO change_log;
CREATE TABLE erasures (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    erased_at          TEXT    NOT NULL,
    completed_at       TEXT,
    clockings          INTEGER NOT NULL,
    change_log_entries INTEGER NOT NULL,
    dead_letters       INTEGER NOT NULL
) STRICT;
