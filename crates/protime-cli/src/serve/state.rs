//! Where a subscription's webhook keys and current webhook are kept: beside an SQLite
//! store, in a state directory (`webhook.keys`, one key per line, and `subscription.json`,
//! both written atomically with mode 600); in a PostgreSQL store, in the store itself, so
//! that every replica sharing it verifies with a new key within seconds and any of them can
//! take over the renewal.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use protime_store_postgres::{CurrentWebhook, PgStore};
use protime_webhooks::signature::WebhookKey;
use protime_webhooks::subscription::SubscriptionState;

/// Where one subscription's keys and state live.
#[derive(Clone)]
pub(super) enum StateHome {
    /// A state directory (SQLite stores).
    Directory(StatePaths),
    /// The PostgreSQL store.
    Database(PgStore),
}

/// The files of a state directory.
#[derive(Clone)]
pub(super) struct StatePaths {
    pub(super) keys: PathBuf,
    subscription: PathBuf,
}

impl StatePaths {
    /// The directory's files; creates it (mode 700) if needed.
    pub(super) fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict {}", dir.display()))?;
        }
        Ok(Self {
            keys: dir.join("webhook.keys"),
            subscription: dir.join("subscription.json"),
        })
    }

    fn load_state(&self) -> anyhow::Result<Option<SubscriptionState>> {
        let text = match std::fs::read_to_string(&self.subscription) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot read {}", self.subscription.display()));
            }
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", self.subscription.display()))?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("{}: no {name}", self.subscription.display()))
        };
        let valid_until: DateTime<Utc> = field("valid_until")?
            .parse()
            .with_context(|| format!("{}: valid_until", self.subscription.display()))?;
        Ok(Some(SubscriptionState {
            webhook_id: field("webhook_id")?,
            valid_until,
            key_fingerprint: field("key_fingerprint")?,
        }))
    }

    fn save_state(&self, state: &SubscriptionState) -> anyhow::Result<()> {
        let value = serde_json::json!({
            "webhook_id": state.webhook_id,
            "valid_until": state.valid_until.to_rfc3339(),
            "key_fingerprint": state.key_fingerprint,
        });
        crate::keyfile::write_private(&self.subscription, value.to_string().as_bytes())
    }

    fn keys(&self) -> anyhow::Result<Vec<WebhookKey>> {
        if self.keys.exists() {
            crate::keyfile::read_keys(&self.keys)
        } else {
            Ok(Vec::new())
        }
    }
}

impl StateHome {
    /// The current webhook, if one was saved.
    pub(super) async fn load_state(&self) -> anyhow::Result<Option<SubscriptionState>> {
        match self {
            Self::Directory(paths) => paths.load_state(),
            Self::Database(store) => {
                Ok(store
                    .current_webhook()
                    .await?
                    .map(|current| SubscriptionState {
                        webhook_id: current.webhook_id,
                        valid_until: current.valid_until,
                        key_fingerprint: current.key_fingerprint,
                    }))
            }
        }
    }

    /// Saves the current webhook, durably.
    pub(super) async fn save_state(&self, state: &SubscriptionState) -> anyhow::Result<()> {
        match self {
            Self::Directory(paths) => paths.save_state(state),
            Self::Database(store) => Ok(store
                .save_current_webhook(&CurrentWebhook {
                    webhook_id: state.webhook_id.clone(),
                    valid_until: state.valid_until,
                    key_fingerprint: state.key_fingerprint.clone(),
                })
                .await?),
        }
    }

    /// Every kept key.
    pub(super) async fn keys(&self) -> anyhow::Result<Vec<WebhookKey>> {
        match self {
            Self::Directory(paths) => paths.keys(),
            Self::Database(store) => Ok(store.webhook_keys().await?),
        }
    }

    /// Keeps the key of webhook `webhook_id`, durably, beside the keys already kept.
    pub(super) async fn add_key(&self, key: &WebhookKey, webhook_id: &str) -> anyhow::Result<()> {
        match self {
            Self::Directory(paths) => crate::keyfile::add_key(&paths.keys, key),
            Self::Database(store) => Ok(store.keep_webhook_key(key, webhook_id).await?),
        }
    }

    /// Keeps only the keys whose fingerprint is in `keep` (never none).
    pub(super) async fn retain_keys(&self, keep: &[String]) -> anyhow::Result<()> {
        match self {
            Self::Directory(paths) => crate::keyfile::retain_keys(&paths.keys, keep),
            Self::Database(store) => store
                .retain_webhook_keys(keep)
                .await
                .map(drop)
                .map_err(Into::into),
        }
    }

    /// Brings the keys and the state of a state directory into the store (a serve that kept
    /// them in files before its store was PostgreSQL); a state already in the store wins.
    pub(super) async fn import(&self, directory: &Path) -> anyhow::Result<usize> {
        let Self::Database(store) = self else {
            return Ok(0);
        };
        let paths = StatePaths::new(directory)?;
        let keys = paths.keys()?;
        let state = paths.load_state()?;
        for key in &keys {
            let webhook = state
                .as_ref()
                .filter(|s| s.key_fingerprint == key.fingerprint())
                .map_or("imported", |s| s.webhook_id.as_str());
            store.keep_webhook_key(key, webhook).await?;
        }
        if let Some(state) = state
            && store.current_webhook().await?.is_none()
        {
            self.save_state(&state).await?;
        }
        Ok(keys.len())
    }
}
