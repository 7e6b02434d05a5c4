-- protime-store-postgres, schema version 2: what `protime serve` replicas share about the
-- subscription, so that any of them can verify every delivery and take over renewing it.

-- The webhook keys (secrets: whoever can read this table can forge deliveries, exactly as
-- whoever can read a key file). Added right after Protime returns a new webhook's key and
-- before anything is synced for it; removed once the webhook they belong to is deleted.
CREATE TABLE webhook_keys (
    fingerprint TEXT        PRIMARY KEY,
    secret      TEXT        NOT NULL,
    webhook_id  TEXT        NOT NULL,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The current webhook (one row): which one deliveries should come from, until when.
CREATE TABLE current_webhook (
    singleton       BOOLEAN     PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    webhook_id      TEXT        NOT NULL,
    valid_until     TIMESTAMPTZ NOT NULL,
    key_fingerprint TEXT        NOT NULL,
    saved_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Who took the renewal lease last (one row). The lease itself is a session advisory lock,
-- released by PostgreSQL when its holder's session ends; this row only names the holder.
CREATE TABLE renewal_lease (
    singleton BOOLEAN     PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    holder    TEXT        NOT NULL,
    since     TIMESTAMPTZ NOT NULL
);
