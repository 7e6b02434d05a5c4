-- Version 3 → 4: retention and erasure (`protime purge`, `protime forget`).
--
-- - A webhook entry's body can be purged by retention once the entry no longer makes the
--   current state: `raw_body` becomes NULL and `body_purged_at` says when. The entry (id,
--   version, outcome, feed position) stays until change-log retention removes it.
-- - A new origin, `erasure`: the feed entry of an erased clocking (a Delete of its id at its
--   last version, as `change_json`; no personal data). It is the applied entry of the
--   erased id's state row, whose id and version are kept for ordering.
-- - `erasures` records that an erasure happened and how many rows it removed, never whose.
--
-- The version-1 checks on origin and bodies were unnamed: they are found by what they check.
DO $$
DECLARE
    constraint_name name;
BEGIN
    FOR constraint_name IN
        SELECT c.conname FROM pg_constraint c
        WHERE c.conrelid = 'change_log'::regclass AND c.contype = 'c'
          AND pg_get_constraintdef(c.oid) LIKE '%origin%'
    LOOP
        EXECUTE format('ALTER TABLE change_log DROP CONSTRAINT %I', constraint_name);
    END LOOP;
END $$;

ALTER TABLE change_log
    ADD COLUMN body_purged_at TIMESTAMPTZ,
    ADD CONSTRAINT change_log_origin_known CHECK (origin IN ('webhook', 'sync', 'erasure')),
    ADD CONSTRAINT change_log_webhook_body
        CHECK ((origin = 'webhook') = (raw_body IS NOT NULL OR body_purged_at IS NOT NULL)),
    ADD CONSTRAINT change_log_body_or_purged CHECK (raw_body IS NULL OR body_purged_at IS NULL),
    ADD CONSTRAINT change_log_change_json CHECK ((origin = 'webhook') = (change_json IS NULL));

CREATE TABLE erasures (
    id                 BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at          TIMESTAMPTZ NOT NULL,
    completed_at       TIMESTAMPTZ,
    clockings          BIGINT      NOT NULL,
    change_log_entries BIGINT      NOT NULL,
    dead_letters       BIGINT      NOT NULL
);
