-- Version 2 → 3.
--
-- A dead letter can be replayed (`protime dead-letters replay`): its body is validated again
-- (e.g. under a more tolerant profile, or by a newer protime) and, when it passes, recorded
-- like a delivery. The row is kept as evidence and says when it was replayed and what the
-- store answered (`applied`, `duplicate` or `stale`, as in the change log).
ALTER TABLE dead_letters
    ADD COLUMN replayed_at    TIMESTAMPTZ,
    ADD COLUMN replay_outcome TEXT CHECK (replay_outcome IN ('applied', 'duplicate', 'stale')),
    ADD CONSTRAINT dead_letters_replay_complete CHECK ((replayed_at IS NULL) = (replay_outcome IS NULL));
