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
use futures_util::StreamExt as _;
use protime_raw::types::{CollectionName, WebhookStatus};

use super::ProtimeClient;
use super::error::Error;
use super::filter::ClockingsFilter;
use super::webhooks::ExternalReference;
use crate::model::ClockingChange;
use crate::signature::Verifier;
use crate::sink::{DeliverySink, Record, RecordOutcome};
use crate::tracker::ApplyOutcome;

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

/// What one re-initialization did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReinitializeReport {
    /// The new webhook.
    pub state: SubscriptionState,
    /// Clockings read by the full sync.
    pub synced: u64,
    /// Of those, how many changed the local state.
    pub applied: u64,
    /// Of those, how many were older than (or equal to) what the sink had, e.g. because a
    /// webhook delivery was newer.
    pub not_newer: u64,
    /// Items the sync could not validate (each is also logged).
    pub invalid: u64,
    /// Whether the previous webhook was deleted (false when there was none or deleting failed).
    pub previous_deleted: bool,
}

/// A clockings subscription that re-initializes itself before it lapses.
///
/// ```no_run
/// # async fn run(client: protime_webhooks::client::ProtimeClient, verifier: protime_webhooks::Verifier,
/// #              store: protime_webhooks::SqliteStore, filter: protime_webhooks::client::ClockingsFilter)
/// #              -> Result<(), protime_webhooks::client::Error> {
/// use protime_webhooks::client::Subscription;
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
    pub fn new(client: ProtimeClient, destination: impl Into<String>, verifier: Verifier) -> Self {
        Self {
            client,
            destination: destination.into(),
            collection: CollectionName::Clockings,
            external_references: Vec::new(),
            verifier,
            lead_time: Self::DEFAULT_LEAD_TIME,
            state: Mutex::new(None),
        }
    }

    /// Re-initialize this long before `validUntil` (default one day).
    #[must_use]
    pub fn with_lead_time(mut self, lead_time: Duration) -> Self {
        self.lead_time = lead_time;
        self
    }

    /// External references to request on the webhook.
    #[must_use]
    pub fn with_external_references(mut self, references: Vec<ExternalReference>) -> Self {
        self.external_references = references;
        self
    }

    /// Continue with a webhook created earlier (its key must already be in the verifier).
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

    /// The current webhook, if any.
    pub fn state(&self) -> Option<SubscriptionState> {
        self.lock().clone()
    }

    /// Time left before the current webhook's `validUntil` (negative once expired).
    pub fn time_left(&self, now: DateTime<Utc>) -> Option<chrono::TimeDelta> {
        self.state().map(|s| s.valid_until - now)
    }

    /// Whether a re-initialization is due: there is no webhook yet, it is gone or not
    /// `Enabled` (disabled after failed deliveries, or expired), or it expires within the
    /// lead time.
    pub async fn needs_reinitialization(&self) -> Result<bool, Error> {
        let Some(state) = self.state() else {
            return Ok(true);
        };
        let lead = chrono::TimeDelta::from_std(self.lead_time).unwrap_or(chrono::TimeDelta::MAX);
        if state.valid_until - Utc::now() <= lead {
            tracing::info!(webhook = %state.webhook_id, valid_until = %state.valid_until, "webhook expires within the lead time");
            return Ok(true);
        }
        match self.client.get_webhook(&state.webhook_id).await {
            Ok(webhook) if webhook.status == WebhookStatus::Enabled => Ok(false),
            Ok(webhook) => {
                tracing::warn!(webhook = %state.webhook_id, status = %webhook.status, "webhook is no longer enabled");
                Ok(true)
            }
            Err(error) if error.status() == Some(404) => Ok(true),
            Err(error) => Err(error),
        }
    }

    /// Creates a new webhook, adds its key to the verifier, runs the full sync of `filter`
    /// into `sink`, then deletes the previous webhook and retires its key. On error the
    /// previous webhook and key are left in place.
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
        let fingerprint = created.key.fingerprint();
        self.verifier
            .add_key(created.key.clone())
            .map_err(|e| Error::Config(format!("the new webhook key cannot be used: {e}")))?;
        let state = SubscriptionState {
            webhook_id: created.id.clone(),
            valid_until: created.valid_until,
            key_fingerprint: fingerprint,
        };

        let (mut synced, mut applied, mut not_newer, mut invalid) = (0_u64, 0_u64, 0_u64, 0_u64);
        let mut clockings = std::pin::pin!(self.client.clockings(filter));
        while let Some(item) = clockings.next().await {
            let clocking = match item {
                Ok(clocking) => clocking,
                Err(Error::InvalidItem { errors, .. }) => {
                    invalid += 1;
                    tracing::warn!(%errors, "initial sync: invalid clocking skipped");
                    continue;
                }
                Err(error) => return Err(error),
            };
            synced += 1;
            let change = ClockingChange::InsertOrUpdate(clocking);
            let raw_body = serde_json::to_vec(&change).unwrap_or_default();
            match sink.record(Record::Change { change, raw_body }).await {
                Ok(RecordOutcome::Change(ApplyOutcome::Applied)) => applied += 1,
                Ok(_) => not_newer += 1,
                Err(error) => {
                    return Err(Error::Config(format!(
                        "initial sync could not store a clocking: {error}"
                    )));
                }
            }
        }

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
        tracing::info!(webhook = %state.webhook_id, synced, applied, not_newer, invalid, "subscription re-initialized");
        Ok(ReinitializeReport {
            state,
            synced,
            applied,
            not_newer,
            invalid,
            previous_deleted,
        })
    }
}
