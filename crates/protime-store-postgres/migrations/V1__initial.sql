-- protime-store-postgres, schema version 1.
--
-- Version order is byte order: every change_version column uses the "C" collation, so that
-- an index or a comparison never orders versions by the database's linguistic collation
-- (the store itself compares versions in Rust, byte by byte, after locking the state row).

-- The current state, one row per clocking id: the version of its last applied change and
-- whether that change removed the clocking (a tombstone). The clocking itself is the body
-- of that change's entry in change_log (joined by id and version), written once.
CREATE TABLE clocking_state (
    id             BIGINT  PRIMARY KEY,
    change_version TEXT    COLLATE "C" NOT NULL,
    deleted        BOOLEAN NOT NULL
);

-- Every authentic valid webhook delivery (redeliveries and stale ones included, body exactly
-- as received) and every applied synced clocking (as change_json, with its sync run and
-- page; no body is made up for it). Append-only. Applied entries carry a feed_position:
-- dense, assigned in commit order under the feed_counter row lock (see below).
CREATE TABLE change_log (
    id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed_position   BIGINT,
    received_at     TIMESTAMPTZ NOT NULL,
    clocking_id     BIGINT      NOT NULL,
    change_version  TEXT        COLLATE "C" NOT NULL,
    change_type     TEXT        NOT NULL CHECK (change_type IN ('InsertOrUpdate', 'Delete')),
    outcome         TEXT        NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'stale')),
    origin          TEXT        NOT NULL CHECK (origin IN ('webhook', 'sync')),
    raw_body        BYTEA,
    key_fingerprint TEXT,
    change_json     TEXT,
    sync_run        TEXT,
    sync_page       BIGINT,
    CHECK ((outcome = 'applied') = (feed_position IS NOT NULL)),
    CHECK ((origin = 'webhook') = (raw_body IS NOT NULL)),
    CHECK ((origin = 'sync') = (change_json IS NOT NULL))
);
-- The feed: applied entries by position (partial: redeliveries and stale entries, which
-- have none, add nothing to it).
CREATE UNIQUE INDEX change_log_feed ON change_log (feed_position) WHERE feed_position IS NOT NULL;
-- The entry a state row stands for; at most one applied entry per id and version.
CREATE UNIQUE INDEX change_log_applied ON change_log (clocking_id, change_version)
    WHERE feed_position IS NOT NULL;

-- The last feed position handed out. A writing transaction takes its positions by updating
-- this single row as its last statement before COMMIT and holds the row lock until the
-- commit is visible, so positions are handed out in commit order and a reader can never
-- pass a position that commits later.
CREATE TABLE feed_counter (
    singleton     BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    last_position BIGINT  NOT NULL
);
INSERT INTO feed_counter (singleton, last_position) VALUES (true, 0);

-- Every authentic delivery that failed validation, with its errors.
CREATE TABLE dead_letters (
    id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     TIMESTAMPTZ NOT NULL,
    raw_body        BYTEA       NOT NULL,
    errors_json     TEXT        NOT NULL,
    key_fingerprint TEXT
);
