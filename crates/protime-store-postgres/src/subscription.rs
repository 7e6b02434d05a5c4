//! What the replicas of one subscription share besides the clockings: the webhook keys, so
//! that every replica verifies deliveries signed with a key another replica just received,
//! and the current webhook, so that whichever replica renews next resumes from it.

use chrono::{DateTime, Utc};
use protime_webhooks::signature::WebhookKey;

use crate::{PgStore, StoreError};

/// The webhook a subscription currently uses (see [`PgStore::current_webhook`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentWebhook {
    /// Protime's id of the webhook.
    pub webhook_id: String,
    /// When it expires.
    pub valid_until: DateTime<Utc>,
    /// Fingerprint of its key (see [`WebhookKey::fingerprint`]).
    pub key_fingerprint: String,
}

impl PgStore {
    /// Every webhook key kept in the store, oldest first.
    pub async fn webhook_keys(&self) -> Result<Vec<WebhookKey>, StoreError> {
        self.query(
            "SELECT secret FROM webhook_keys ORDER BY added_at, fingerprint",
            &[],
            |rows| {
                rows.iter()
                    .map(|row| {
                        let secret: String = row.try_get(0)?;
                        WebhookKey::new(secret).map_err(|error| {
                            StoreError::corrupt(format!("a kept webhook key is unusable: {error}"))
                        })
                    })
                    .collect()
            },
        )
        .await
    }

    /// Keeps `key`, the key of webhook `webhook_id`, durably (committed with
    /// `synchronous_commit=on`) before returning; keeping a key that is there already does
    /// nothing. The key is stored as given: whoever can read the table can verify — and
    /// forge — deliveries, as with a key file.
    ///
    /// ```no_run
    /// # async fn run(store: protime_store_postgres::PgStore) -> Result<(), Box<dyn std::error::Error>> {
    /// use protime_webhooks::WebhookKey;
    /// let key = WebhookKey::new("returned once by POST /webhooks")?;
    /// store.keep_webhook_key(&key, "3fa85f64-5717-4562-b3fc-2c963f66afa6").await?;
    /// assert!(store.webhook_keys().await?.iter().any(|k| k.fingerprint() == key.fingerprint()));
    /// # Ok(()) }
    /// ```
    pub async fn keep_webhook_key(
        &self,
        key: &WebhookKey,
        webhook_id: &str,
    ) -> Result<(), StoreError> {
        let fingerprint = key.fingerprint();
        let secret = key.expose_secret();
        if secret.contains('\0') {
            return Err(StoreError::unsupported(
                "a webhook key with a NUL character cannot be kept in PostgreSQL",
            ));
        }
        self.query(
            "INSERT INTO webhook_keys (fingerprint, secret, webhook_id) VALUES ($1, $2, $3)
             ON CONFLICT (fingerprint) DO NOTHING",
            &[&fingerprint, &secret, &webhook_id],
            |_| Ok(()),
        )
        .await
    }

    /// Removes every kept key whose fingerprint is not in `keep` — unless that would remove
    /// them all (a store is never left without a key by mistake). Returns how many were
    /// removed.
    pub async fn retain_webhook_keys(&self, keep: &[String]) -> Result<u64, StoreError> {
        self.query(
            "WITH gone AS (
                 DELETE FROM webhook_keys
                 WHERE NOT (fingerprint = ANY($1))
                   AND EXISTS (SELECT 1 FROM webhook_keys WHERE fingerprint = ANY($1))
                 RETURNING 1)
             SELECT count(*) FROM gone",
            &[&keep],
            |rows| match rows.first() {
                Some(row) => crate::read::to_count(row.try_get(0)?),
                None => Ok(0),
            },
        )
        .await
    }

    /// The current webhook, as last saved by [`Self::save_current_webhook`].
    pub async fn current_webhook(&self) -> Result<Option<CurrentWebhook>, StoreError> {
        self.query(
            "SELECT webhook_id, valid_until, key_fingerprint FROM current_webhook",
            &[],
            |rows| match rows.first() {
                Some(row) => Ok(Some(CurrentWebhook {
                    webhook_id: row.try_get(0)?,
                    valid_until: row.try_get(1)?,
                    key_fingerprint: row.try_get(2)?,
                })),
                None => Ok(None),
            },
        )
        .await
    }

    /// Saves the current webhook (replacing the previous one), durably.
    pub async fn save_current_webhook(&self, webhook: &CurrentWebhook) -> Result<(), StoreError> {
        self.query(
            "INSERT INTO current_webhook (webhook_id, valid_until, key_fingerprint) VALUES ($1, $2, $3)
             ON CONFLICT (singleton) DO UPDATE SET webhook_id = excluded.webhook_id,
                 valid_until = excluded.valid_until, key_fingerprint = excluded.key_fingerprint,
                 saved_at = now()",
            &[&webhook.webhook_id, &webhook.valid_until, &webhook.key_fingerprint],
            |_| Ok(()),
        )
        .await
    }
}
