//! Keeping a subscription alive: Protime webhooks expire (`validUntil`) or get disabled
//! (retries exhausted), cannot be reused, and then require a full re-initialization.
//!
//! The docs' order — initial sync, then create the webhook — leaves a window in which
//! changes are lost. [`Subscription::reinitialize`] closes it: it creates the new webhook
//! first (its key joins the receiver's [`Verifier`] at once, so old and new webhooks are both
//! accepted during the overlap), then runs the full sync into the same sink the receiver
//! writes to. Both streams meet in the sink, which applies them by `changeVersion`, so
//! whichever arrives last cannot overwrite a newer state. Only then is the old webhook
//! deleted and its key retired.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use protime_raw::types::{CollectionName, WebhookStatus};

use protime_client::{ClockingsFilter, ExternalReference, ProtimeClient};

use crate::signature::{KeyError, Verifier, WebhookKey};
use crate::sink::{DeliverySink, SinkError};
pub use crate::sync::{MAX_SYNC_BATCH, ProgressFn, SyncProgress, sync, sync_with_references};

/// Why a subscription step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Protime (or the network) failed; see the client error for status and body.
    #[error(transparent)]
    Client(#[from] protime_client::Error),
    /// The sink could not store a synced clocking.
    #[error("the initial sync could not store a clocking: {0}")]
    Sink(#[source] SinkError),
    /// The key Protime returned for the new webhook cannot be used by the verifier.
    #[error("the new webhook's key cannot be used: {0}")]
    Key(#[source] KeyError),
    /// The key-keeping hook ([`Subscription::with_key_keeper`]) could not make the new key
    /// durable; the new webhook was deleted again.
    #[error("the new webhook's key could not be kept: {0}")]
    KeyNotKept(String),
}

/// Called with a new webhook's key and state right after the webhook is created, before
/// the sync. The future it returns must make the key durable (e.g. write it to a key file
/// or a database shared by replicas) and complete only then; an `Err` deletes the new
/// webhook again. See [`Subscription::with_key_keeper`].
pub type KeyKeeper =
    std::sync::Arc<dyn Fn(WebhookKey, SubscriptionState) -> KeeperFuture + Send + Sync>;

/// What a [`KeyKeeper`] returns: completes once the key is durable, or with why it is not.
pub type KeeperFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

impl Error {
    /// The HTTP status Protime answered with, when the error comes from a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Client(error) => error.status(),
            _ => None,
        }
    }
}

/// The webhook a subscription currently uses. Persist it (the key is persisted separately,
/// as a secret) to resume after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Id of the current webhook.
    pub webhook_id: String,
    /// When it expires.
    pub valid_until: DateTime<Utc>,
    /// Fingerprint of its key in the verifier.
    pub key_fingerprint: String,
}

/// What [`Subscription::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// Protime reports the webhook `Enabled`, and it is valid beyond the lead time.
    Enabled,
    /// There is no webhook yet.
    NoWebhook,
    /// `validUntil` is within the lead time.
    ExpiresSoon,
    /// Protime reports the webhook with another status: disabled (e.g. after deliveries
    /// failed for too long) or expired.
    NotEnabled(WebhookStatus),
    /// Protime no longer knows the webhook (`404`).
    Gone,
}

impl Check {
    /// Whether a re-initialization is due: anything but [`Check::Enabled`].
    ///
    /// ```
    /// use protime_webhooks::subscription::Check;
    /// assert!(!Check::Enabled.needs_reinitialization());
    /// assert!(Check::Gone.needs_reinitialization());
    /// ```
    pub fn needs_reinitialization(&self) -> bool {
        !matches!(self, Self::Enabled)
    }
}

/// What one re-initialization did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReinitializeReport {
    /// The new webhook.
    pub state: SubscriptionState,
    /// The new webhook's private key (redacted in `Debug`). Protime returns it only once:
    /// persist it now, so that a restarted receiver can verify the deliveries.
    pub key: WebhookKey,
    /// Clockings read by the full sync.
    pub synced: u64,
    /// Of those, how many changed the local state.
    pub applied: u64,
    /// Of those, how many were older than (or equal to) what the sink had, e.g. because a
    /// webhook delivery was newer.
    pub not_newer: u64,
    /// Items the sync could not validate (each is also logged).
    pub invalid: u64,
    /// Of the synced clockings, how many the API listed without a `changeVersion`: see
    /// [`SyncProgress::unversioned`]. Such rows are not refreshed by a later sync, only by
    /// versioned changes (webhook events, delta changes).
    pub unversioned: u64,
    /// Whether the previous webhook was deleted (false when there was none or deleting failed).
    pub previous_deleted: bool,
}

/// A clockings subscription that re-initializes itself before it lapses.
///
/// ```no_run
/// # async fn run(client: protime_client::ProtimeClient, verifier: protime_webhooks::Verifier,
/// #              store: protime_webhooks::InMemorySink, filter: protime_client::ClockingsFilter)
/// #              -> Result<(), protime_webhooks::subscription::Error> {
/// use protime_webhooks::subscription::Subscription;
/// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier.clone());
/// // Call this periodically (e.g. every few minutes):
/// if subscription.needs_reinitialization().await? {
///     let report = subscription.reinitialize(&filter, &store).await?;
///     println!("now on webhook {} until {}", report.state.webhook_id, report.state.valid_until);
/// }
/// # Ok(()) }
/// ```
pub struct Subscription {
    client: ProtimeClient,
    destination: String,
    collection: CollectionName,
    external_references: Vec<ExternalReference>,
    verifier: Verifier,
    lead_time: Duration,
    state: Mutex<Option<SubscriptionState>>,
    progress: Option<ProgressFn>,
    key_keeper: Option<KeyKeeper>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("destination", &self.destination)
            .field("lead_time", &self.lead_time)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Default time before `validUntil` at which [`Self::needs_reinitialization`] says yes.
    pub const DEFAULT_LEAD_TIME: Duration = Duration::from_secs(24 * 3600);

    /// A subscription of the `clockings` collection delivering to `destination`; new keys go
    /// into `verifier` (share it with the receiver: clones share keys).
    ///
    /// ```
    /// use protime_webhooks::subscription::Subscription;
    /// # use protime_client::{AccessToken, ProtimeClient};
    /// # use protime_webhooks::signature::{SignatureScheme, Verifier};
    /// # let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    /// #     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// # let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier.clone());
    /// assert!(subscription.state().is_none()); // no webhook yet: the first reinitialize creates it
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn new(client: ProtimeClient, destination: impl Into<String>, verifier: Verifier) -> Self {
        Self {
            client,
            destination: destination.into(),
            collection: CollectionName::Clockings,
            external_references: Vec::new(),
            verifier,
            lead_time: Self::DEFAULT_LEAD_TIME,
            state: Mutex::new(None),
            progress: None,
            key_keeper: None,
        }
    }

    /// Re-initialize this long before `validUntil` (default one day).
    ///
    /// ```
    /// use std::time::Duration;
    /// use protime_webhooks::subscription::{Error, Subscription, SubscriptionState};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # use protime_client::{AccessToken, ProtimeClient};
    /// # use protime_webhooks::signature::{SignatureScheme, Verifier};
    /// # let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    /// #     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// # let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier)
    ///     .with_lead_time(Duration::from_secs(6 * 3600))
    ///     .resume(SubscriptionState {
    ///         webhook_id: "a7d8".into(),
    ///         valid_until: chrono::Utc::now() + chrono::TimeDelta::hours(3),
    ///         key_fingerprint: "eaa2ba0c".into(),
    ///     });
    /// // Expires within the lead time: due, without asking Protime.
    /// assert!(subscription.needs_reinitialization().await?);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_lead_time(mut self, lead_time: Duration) -> Self {
        self.lead_time = lead_time;
        self
    }

    /// Reports the sync's running totals after each committed page (e.g. to a progress bar).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use protime_webhooks::subscription::Subscription;
    /// # use protime_client::{AccessToken, ProtimeClient};
    /// # use protime_webhooks::signature::{SignatureScheme, Verifier};
    /// # let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    /// #     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// # let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier)
    ///     .with_progress(Arc::new(|p| eprintln!("{} clockings in {} pages", p.synced, p.pages)));
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    #[must_use]
    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// External references to request on the webhook, and on every page of the full sync
    /// of [`Self::reinitialize`], so that the baseline rows carry the same
    /// `externalReferences` as the webhook's events.
    ///
    /// ```
    /// use protime_client::ExternalReference;
    /// use protime_webhooks::subscription::Subscription;
    /// # use protime_client::{AccessToken, ProtimeClient};
    /// # use protime_webhooks::signature::{SignatureScheme, Verifier};
    /// # let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    /// #     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// # let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier)
    ///     .with_external_references(vec![ExternalReference::new("people", "@badge-number")]);
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    #[must_use]
    pub fn with_external_references(mut self, references: Vec<ExternalReference>) -> Self {
        self.external_references = references;
        self
    }

    /// Continue with a webhook created earlier (its key must already be in the verifier).
    ///
    /// ```
    /// use protime_webhooks::subscription::{Subscription, SubscriptionState};
    /// use protime_webhooks::signature::WebhookKey;
    /// # use protime_client::{AccessToken, ProtimeClient};
    /// # use protime_webhooks::signature::{SignatureScheme, Verifier};
    /// # let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    /// #     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// # let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// // After a restart: the stored key back into the verifier, then the stored state.
    /// let key = WebhookKey::new("stored-webhook-key").unwrap();
    /// let state = SubscriptionState {
    ///     webhook_id: "a7d8".into(),
    ///     valid_until: "2026-03-31T12:00:00Z".parse().unwrap(),
    ///     key_fingerprint: key.fingerprint(),
    /// };
    /// verifier.add_key(key).unwrap();
    /// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier)
    ///     .resume(state.clone());
    /// assert_eq!(subscription.state(), Some(state));
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    #[must_use]
    pub fn resume(self, state: SubscriptionState) -> Self {
        *self.lock() = Some(state);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SubscriptionState>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes every new webhook's key durable before anything can be delivered with it: the
    /// keeper runs right after the webhook is created (and its key added to the verifier),
    /// before the sync. A process killed after that point still has the key after a restart;
    /// if the keeper fails, the new webhook is deleted again and nothing changes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use protime_webhooks::subscription::Subscription;
    /// # use protime_client::{AccessToken, ProtimeClient};
    /// # use protime_webhooks::signature::{SignatureScheme, Verifier};
    /// # let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    /// #     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// # let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier)
    ///     .with_key_keeper(Arc::new(|key, state| {
    ///         Box::pin(async move {
    ///             // e.g. append the key to a file written atomically and synced, or insert
    ///             // it into a database that the other replicas read
    ///             println!("keeping the key {} of webhook {}", key.fingerprint(), state.webhook_id);
    ///             Ok(())
    ///         })
    ///     }));
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    #[must_use]
    pub fn with_key_keeper(mut self, keeper: KeyKeeper) -> Self {
        self.key_keeper = Some(keeper);
        self
    }

    /// The current webhook, if any.
    ///
    /// ```no_run
    /// # async fn run(subscription: protime_webhooks::subscription::Subscription, filter: protime_client::ClockingsFilter,
    /// #              sink: protime_webhooks::InMemorySink) -> Result<(), protime_webhooks::subscription::Error> {
    /// subscription.reinitialize(&filter, &sink).await?;
    /// if let Some(state) = subscription.state() {
    ///     // Persist it (and the key, as a secret) to resume after a restart.
    ///     println!("webhook {} until {}", state.webhook_id, state.valid_until);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> Option<SubscriptionState> {
        self.lock().clone()
    }

    /// Time left before the current webhook's `validUntil` (negative once expired).
    ///
    /// ```
    /// use chrono::TimeDelta;
    /// use protime_webhooks::subscription::{Subscription, SubscriptionState};
    /// # use protime_client::{AccessToken, ProtimeClient};
    /// # use protime_webhooks::signature::{SignatureScheme, Verifier};
    /// # let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    /// #     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// # let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// let state = SubscriptionState {
    ///     webhook_id: "a7d8".into(),
    ///     valid_until: "2026-03-31T12:00:00Z".parse().unwrap(),
    ///     key_fingerprint: "eaa2ba0c".into(),
    /// };
    /// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier);
    /// assert_eq!(subscription.time_left(state.valid_until), None); // no webhook yet
    /// let subscription = subscription.resume(state.clone());
    /// assert_eq!(subscription.time_left(state.valid_until - TimeDelta::hours(2)), Some(TimeDelta::hours(2)));
    /// # Ok::<(), protime_client::Error>(())
    /// ```
    pub fn time_left(&self, now: DateTime<Utc>) -> Option<chrono::TimeDelta> {
        self.state().map(|s| s.valid_until - now)
    }

    /// Whether a re-initialization is due: there is no webhook yet, it is gone or not
    /// `Enabled` (disabled after failed deliveries, or expired), or it expires within the
    /// lead time.
    ///
    /// ```
    /// use protime_webhooks::subscription::{Error, Subscription};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # use protime_client::{AccessToken, ProtimeClient};
    /// # use protime_webhooks::signature::{SignatureScheme, Verifier};
    /// # let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    /// #     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// # let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier);
    /// assert!(subscription.needs_reinitialization().await?); // no webhook yet
    /// # Ok(()) }
    /// ```
    pub async fn needs_reinitialization(&self) -> Result<bool, Error> {
        Ok(self.check().await?.needs_reinitialization())
    }

    /// What [`Self::needs_reinitialization`] decides on, with the reason: no webhook yet,
    /// `validUntil` within the lead time (checked first, without a request), or what
    /// `GET /webhooks/{id}` says — `Enabled`, another status, or `404`.
    ///
    /// ```
    /// use protime_webhooks::subscription::{Check, Error, Subscription};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # use protime_client::{AccessToken, ProtimeClient};
    /// # use protime_webhooks::signature::{SignatureScheme, Verifier};
    /// # let client = ProtimeClient::builder().base_url("http://127.0.0.1:9")
    /// #     .static_token(AccessToken::new("t")).user_agent("Svc/1.0 (Acme)").build()?;
    /// # let verifier = Verifier::without_keys(SignatureScheme::default()).unwrap();
    /// let subscription = Subscription::new(client, "https://hooks.acme.example/protime", verifier);
    /// assert_eq!(subscription.check().await?, Check::NoWebhook);
    /// # Ok(()) }
    /// ```
    pub async fn check(&self) -> Result<Check, Error> {
        let Some(state) = self.state() else {
            return Ok(Check::NoWebhook);
        };
        let lead = chrono::TimeDelta::from_std(self.lead_time).unwrap_or(chrono::TimeDelta::MAX);
        if state.valid_until - Utc::now() <= lead {
            tracing::info!(webhook = %state.webhook_id, valid_until = %state.valid_until, "webhook expires within the lead time");
            return Ok(Check::ExpiresSoon);
        }
        match self.client.get_webhook(&state.webhook_id).await {
            Ok(webhook) if webhook.status == WebhookStatus::Enabled => Ok(Check::Enabled),
            Ok(webhook) => {
                tracing::warn!(webhook = %state.webhook_id, status = %webhook.status, "webhook is no longer enabled");
                Ok(Check::NotEnabled(webhook.status))
            }
            Err(error) if error.status() == Some(404) => Ok(Check::Gone),
            Err(error) => Err(error.into()),
        }
    }

    /// Creates a new webhook, adds its key to the verifier, runs the full sync of `filter`
    /// into `sink` (with the subscription's external references, see
    /// [`Self::with_external_references`]), then deletes the previous webhook and retires its key. When the sync
    /// fails, the new webhook is deleted again and its key retired; the previous webhook and
    /// key stay in place.
    ///
    /// ```no_run
    /// # async fn run(subscription: protime_webhooks::subscription::Subscription, filter: protime_client::ClockingsFilter)
    /// #              -> Result<(), protime_webhooks::subscription::Error> {
    /// let sink = protime_webhooks::InMemorySink::default(); // or the receiver's SqliteStore
    /// let report = subscription.reinitialize(&filter, &sink).await?;
    /// println!("synced {}, applied {}, previous deleted: {}", report.synced, report.applied, report.previous_deleted);
    /// # Ok(()) }
    /// ```
    pub async fn reinitialize(
        &self,
        filter: &ClockingsFilter,
        sink: &dyn DeliverySink,
    ) -> Result<ReinitializeReport, Error> {
        let previous = self.state();
        let created = self
            .client
            .create_webhook(
                &self.destination,
                self.collection,
                &self.external_references,
            )
            .await?;
        let key = match WebhookKey::from_secret(created.key)
            .and_then(|key| self.verifier.add_key(key.clone()).map(|()| key))
        {
            Ok(key) => key,
            Err(error) => {
                // A webhook whose deliveries cannot be verified must not stay enabled.
                if let Err(cleanup) = self.client.delete_webhook(&created.id).await {
                    tracing::warn!(webhook = %created.id, error = %cleanup, "could not delete the new webhook whose key cannot be used");
                }
                return Err(Error::Key(error));
            }
        };
        let fingerprint = key.fingerprint();
        let state = SubscriptionState {
            webhook_id: created.id.clone(),
            valid_until: created.valid_until,
            key_fingerprint: fingerprint,
        };

        let kept = match &self.key_keeper {
            Some(keeper) => keeper(key.clone(), state.clone()).await,
            None => Ok(()),
        };
        if let Err(error) = kept {
            if let Err(cleanup) = self.client.delete_webhook(&state.webhook_id).await {
                tracing::warn!(webhook = %state.webhook_id, error = %cleanup, "could not delete the new webhook whose key could not be kept");
            }
            self.verifier.remove_key(&state.key_fingerprint);
            return Err(Error::KeyNotKept(error));
        }

        let run = format!("webhook {}", state.webhook_id);
        let counts = match sync_with_references(
            &self.client,
            filter,
            &self.external_references,
            sink,
            &run,
            self.progress.as_ref(),
        )
        .await
        {
            Ok(counts) => counts,
            Err(error) => {
                // Without a complete sync the new webhook must not become the current one:
                // remove it again, so that the next attempt starts clean.
                if let Err(cleanup) = self.client.delete_webhook(&state.webhook_id).await {
                    tracing::warn!(webhook = %state.webhook_id, error = %cleanup, "could not delete the new webhook after a failed sync");
                }
                self.verifier.remove_key(&state.key_fingerprint);
                return Err(error);
            }
        };
        let SyncProgress {
            synced,
            applied,
            not_newer,
            invalid,
            unversioned,
            ..
        } = counts;

        let mut previous_deleted = false;
        if let Some(previous) = previous {
            match self.client.delete_webhook(&previous.webhook_id).await {
                Ok(()) => previous_deleted = true,
                Err(error) if error.status() == Some(404) => previous_deleted = true,
                Err(error) => {
                    tracing::warn!(webhook = %previous.webhook_id, %error, "previous webhook could not be deleted");
                }
            }
            // Everything after the new webhook's creation arrives through it, everything before
            // came with the sync: the old key is no longer needed.
            self.verifier.remove_key(&previous.key_fingerprint);
        }
        *self.lock() = Some(state.clone());
        tracing::info!(webhook = %state.webhook_id, synced, applied, not_newer, invalid, unversioned, "subscription re-initialized");
        if unversioned > 0 {
            tracing::warn!(
                unversioned,
                "the sync stored clockings that Protime listed without a changeVersion: a later sync does not refresh them, only versioned changes (webhook events, delta changes) do"
            );
        }
        Ok(ReinitializeReport {
            state,
            key,
            synced,
            applied,
            not_newer,
            invalid,
            unversioned,
            previous_deleted,
        })
    }
}
