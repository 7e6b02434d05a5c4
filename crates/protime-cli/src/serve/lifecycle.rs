//! Keeping one subscription alive: renew before `validUntil`, when the webhook is disabled
//! or gone, or when deliveries stop verifying; delete orphaned webhooks; and — with a store
//! shared by several replicas — renew only while holding the store's renewal lease,
//! following the holder's keys otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use protime_client::{ClockingsFilter, ProtimeClient};
use protime_store_postgres::{OwnerLock, PgStore};
use protime_webhooks::signature::Verifier;
use protime_webhooks::subscription::{Check, Subscription, SubscriptionState};

use super::state::StateHome;
use crate::alerts::{Kind, Window};
use crate::store::Store;

/// Deliveries refused for their signature since the last one that verified: when Protime
/// signs with a key this process does not have (a key lost, or a webhook created
/// elsewhere), every delivery fails, and waiting for the webhook to be disabled would lose
/// time. Fed by the receiver's answers (401 counts, 2xx resets).
#[derive(Debug, Default)]
pub(super) struct SignatureWatch {
    pub(super) refused_since_verified: AtomicU64,
    /// Every refusal since the start, for the alert on a spike.
    pub(super) refused_total: AtomicU64,
}

/// Refused deliveries in a row after which the subscription is renewed at once.
const REFUSED_IN_A_ROW: u64 = 5;

/// Longest pause between two failed renewals.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What it takes to keep one subscription alive.
pub(super) struct Lifecycle {
    pub(super) name: String,
    pub(super) client: ProtimeClient,
    pub(super) store: Store,
    pub(super) destination: String,
    pub(super) home: StateHome,
    pub(super) verifier: Verifier,
    pub(super) filter: ClockingsFilter,
    pub(super) lead_time: Duration,
    pub(super) check: Duration,
    pub(super) health: crate::admin::SubscriptionHealth,
    pub(super) watch: Arc<SignatureWatch>,
    pub(super) forced_interval: Duration,
    /// Reconciliation through a delta, run by whoever renews.
    pub(super) reconcile: Option<super::reconcile::Settings>,
    /// Alerts, raised by whoever renews (so replicas do not repeat them).
    pub(super) alerts: crate::alerts::Alerts,
}

/// How a subscription's renewals are made exclusive.
pub(super) enum Ownership {
    /// Claimed at start for the whole run (an SQLite store: one process on one machine).
    Exclusive(crate::store::Owner),
    /// Several replicas share the PostgreSQL store: whoever holds its renewal lease renews;
    /// the others follow and take over when the holder goes away.
    Shared {
        store: PgStore,
        /// This replica's name, shown to the others as the lease's holder.
        replica: String,
        /// How often a follower tries to take the lease and reads the kept keys.
        follow_every: Duration,
    },
}

impl Lifecycle {
    fn set_health(&self, health: Result<String, String>) {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(self.name.clone(), health);
    }

    /// A subscription resumed from `state` (or a new one), whose new keys are kept in the
    /// state home before anything is synced for them.
    fn subscription(&self, state: Option<SubscriptionState>) -> Subscription {
        let progress_name = self.name.clone();
        let home = self.home.clone();
        let name = self.name.clone();
        let subscription = Subscription::new(
            self.client.clone(),
            &self.destination,
            self.verifier.clone(),
        )
        .with_lead_time(self.lead_time)
        .with_progress(Arc::new(move |totals| {
            // The running sync, for dashboards (each renewal's sync starts again from 0).
            metrics::gauge!("protime_sync_clockings", "subscription" => progress_name.clone())
                .set(totals.synced as f64);
        }))
        .with_key_keeper(Arc::new(move |key, state| {
            let home = home.clone();
            let name = name.clone();
            Box::pin(async move {
                home.add_key(&key, &state.webhook_id)
                    .await
                    .map_err(|error| format!("{error:#}"))?;
                eprintln!(
                    "[{name}] new webhook {}: its key {} is kept",
                    state.webhook_id,
                    key.fingerprint()
                );
                Ok(())
            })
        }));
        match state {
            Some(state) => subscription.resume(state),
            None => subscription,
        }
    }

    fn show_active(&self, state: &SubscriptionState, lease: Option<&str>) {
        let left = state.valid_until - Utc::now();
        metrics::gauge!("protime_subscription_seconds_left", "subscription" => self.name.clone())
            .set(left.num_seconds() as f64);
        if left > chrono::TimeDelta::zero() {
            let lease = lease
                .map(|replica| format!("; renewal lease held by this replica ({replica})"))
                .unwrap_or_default();
            self.set_health(Ok(format!(
                "active, webhook {} valid until {}{lease}",
                state.webhook_id, state.valid_until
            )));
        }
    }
}

/// Deletes the enabled webhooks for `destination` other than `current`: what a renewal
/// interrupted by a crash leaves behind.
async fn delete_orphans(client: &ProtimeClient, destination: &str, current: Option<&str>) {
    let webhooks = match crate::api::enabled_webhooks_to(client, destination).await {
        Ok(webhooks) => webhooks,
        Err(error) => {
            tracing::warn!(%error, "could not list the webhooks to find orphans");
            return;
        }
    };
    for webhook in webhooks {
        let id = webhook.id.to_string();
        if Some(id.as_str()) == current {
            continue;
        }
        match client.delete_webhook(&id).await {
            Ok(()) => {
                eprintln!("deleted orphaned webhook {id} (same destination, not the current one)")
            }
            Err(error) => {
                tracing::warn!(webhook = %id, %error, "could not delete an orphaned webhook")
            }
        }
    }
}

/// Runs one subscription until the process stops.
pub(super) async fn run(life: Lifecycle, ownership: Ownership) {
    match ownership {
        Ownership::Exclusive(_owner) => {
            let state = match life.home.load_state().await {
                Ok(state) => state,
                Err(error) => {
                    life.set_health(Err(format!("cannot read the state: {error:#}")));
                    return;
                }
            };
            let subscription = life.subscription(state);
            tokio::join!(
                keep_alive(&life, &subscription, None),
                super::reconcile::run(&life, &subscription),
                watch_for_alerts(&life, &subscription)
            );
        }
        Ownership::Shared {
            store,
            replica,
            follow_every,
        } => {
            let name = life.name.clone();
            loop {
                match store.try_claim_lease(&replica).await {
                    Ok(Some(lease)) => {
                        eprintln!("[{name}] this replica ({replica}) holds the renewal lease");
                        metrics::gauge!("protime_renewal_lease_held", "subscription" => name.clone())
                            .set(1.0);
                        hold(&life, &lease, &replica).await;
                        metrics::gauge!("protime_renewal_lease_held", "subscription" => name.clone())
                            .set(0.0);
                        eprintln!(
                            "[{name}] the renewal lease was lost (its database session ended); following again"
                        );
                    }
                    Ok(None) => {
                        metrics::gauge!("protime_renewal_lease_held", "subscription" => name.clone())
                            .set(0.0);
                        follow(&life, &store).await;
                        tokio::time::sleep(follow_every).await;
                    }
                    Err(error) => {
                        life.set_health(Err(format!("cannot reach the store's lease: {error}")));
                        tokio::time::sleep(follow_every).await;
                    }
                }
            }
        }
    }
}

/// Renews while `lease` is held; returns when it is lost.
async fn hold(life: &Lifecycle, lease: &OwnerLock, replica: &str) {
    // The previous holder may have renewed (or died while renewing): start from what the
    // store says now, with every key it kept.
    refresh_keys(life, false).await;
    let state = match life.home.load_state().await {
        Ok(state) => state,
        Err(error) => {
            life.set_health(Err(format!("cannot read the state: {error:#}")));
            return;
        }
    };
    let subscription = life.subscription(state);
    // Only the lease holder reconciles: Protime allows one active delta per collection.
    tokio::select! {
        () = lease.lost() => {}
        () = keep_alive(life, &subscription, Some(replica)) => {}
        () = super::reconcile::run(life, &subscription) => {}
        () = watch_for_alerts(life, &subscription) => {}
    }
}

/// One follower step: verify with exactly the kept keys, and report the lease's holder.
async fn follow(life: &Lifecycle, store: &PgStore) {
    refresh_keys(life, true).await;
    let state = life.home.load_state().await.ok().flatten();
    if let Some(state) = &state {
        let left = state.valid_until - Utc::now();
        metrics::gauge!("protime_subscription_seconds_left", "subscription" => life.name.clone())
            .set(left.num_seconds() as f64);
    }
    let webhook = state.map_or_else(
        || "no webhook yet".to_owned(),
        |s| format!("webhook {} valid until {}", s.webhook_id, s.valid_until),
    );
    let lease = match store.lease_holder().await {
        Ok(Some(holder)) if holder.held => format!(
            "renewal lease held by {} since {}",
            holder.holder, holder.since
        ),
        Ok(Some(holder)) => format!(
            "renewal lease free ({} is gone); taking it over",
            holder.holder
        ),
        Ok(None) => "renewal lease not taken yet".to_owned(),
        Err(error) => {
            life.set_health(Err(format!("cannot read the renewal lease: {error}")));
            return;
        }
    };
    life.set_health(Ok(format!("following: {lease}; {webhook}")));
}

/// Makes the verifier hold the kept keys: adds the new ones and — when `exact`, i.e. while
/// another replica manages them — drops those no longer kept.
async fn refresh_keys(life: &Lifecycle, exact: bool) {
    let keys = match life.home.keys().await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::warn!(subscription = %life.name, error = %format!("{error:#}"), "could not read the kept webhook keys");
            return;
        }
    };
    let present = life.verifier.key_fingerprints();
    let kept: Vec<String> = keys.iter().map(|key| key.fingerprint()).collect();
    for key in keys {
        let fingerprint = key.fingerprint();
        if present.contains(&fingerprint) {
            continue;
        }
        match life.verifier.add_key(key) {
            Ok(()) => eprintln!("[{}] verifying with key {fingerprint} too", life.name),
            Err(error) => {
                tracing::warn!(subscription = %life.name, key = %fingerprint, %error, "a kept key is unusable")
            }
        }
    }
    if exact {
        for fingerprint in present.iter().filter(|f| !kept.contains(f)) {
            life.verifier.remove_key(fingerprint);
            eprintln!("[{}] key {fingerprint} retired", life.name);
        }
    }
}

/// Keeps `subscription` alive; never returns. `lease` names this replica when it renews
/// for others.
async fn keep_alive(life: &Lifecycle, subscription: &Subscription, lease: Option<&str>) {
    let name = life.name.clone();
    let current = subscription.state().map(|s| s.webhook_id);
    delete_orphans(&life.client, &life.destination, current.as_deref()).await;
    let mut backoff = Duration::from_secs(1);
    let mut last_forced: Option<Instant> = None;
    loop {
        let refused = life.watch.refused_since_verified.load(Ordering::Relaxed);
        let may_force = last_forced.is_none_or(|at| at.elapsed() >= life.forced_interval);
        let due = if refused >= REFUSED_IN_A_ROW && may_force {
            last_forced = Some(Instant::now());
            eprintln!(
                "[{name}] {refused} deliveries in a row failed the signature check: renewing at once"
            );
            true
        } else {
            match subscription.check().await {
                Ok(check) => {
                    if let Check::NotEnabled(_) | Check::Gone = &check {
                        let webhook = subscription
                            .state()
                            .map(|s| s.webhook_id)
                            .unwrap_or_default();
                        let status = match &check {
                            Check::NotEnabled(status) => status.to_string(),
                            _ => "gone (404)".to_owned(),
                        };
                        life.alerts.raise(
                            &name,
                            Kind::WebhookDisabled,
                            format!("webhook {webhook} is {status} at Protime: renewing the subscription"),
                            serde_json::json!({"webhook_id": webhook, "status": status}),
                        );
                    }
                    check.needs_reinitialization()
                }
                Err(error) => {
                    tracing::warn!(subscription = %name, %error, "could not check the webhook; checking again later");
                    life.set_health(Err(format!("cannot check the webhook: {error}")));
                    false
                }
            }
        };
        if due {
            eprintln!("[{name}] renewing the subscription: new webhook first, then the full sync");
            life.set_health(Ok("renewing".into()));
            let started = Instant::now();
            match subscription.reinitialize(&life.filter, &life.store).await {
                Ok(report) => {
                    backoff = Duration::from_secs(1);
                    for kind in [
                        Kind::WebhookDisabled,
                        Kind::RenewalFailed,
                        Kind::WebhookExpiring,
                    ] {
                        life.alerts.resolve(&name, kind);
                    }
                    life.watch
                        .refused_since_verified
                        .store(0, Ordering::Relaxed);
                    let seconds = started.elapsed().as_secs_f64();
                    metrics::counter!("protime_reinitializations_total", "subscription" => name.clone(), "result" => "ok")
                        .increment(1);
                    metrics::histogram!("protime_reinitialization_duration_seconds", "subscription" => name.clone())
                        .record(seconds);
                    if let Err(error) = life.home.save_state(&report.state).await {
                        tracing::error!(subscription = %name, error = %format!("{error:#}"), "the new subscription state was not saved; a restart will renew again");
                    }
                    // While the previous webhook could not be deleted it may still deliver:
                    // every key stays until a renewal that deletes it.
                    if report.previous_deleted
                        && let Err(error) = life
                            .home
                            .retain_keys(std::slice::from_ref(&report.state.key_fingerprint))
                            .await
                    {
                        tracing::warn!(subscription = %name, error = %format!("{error:#}"), "old keys were not removed");
                    }
                    delete_orphans(
                        &life.client,
                        &life.destination,
                        Some(&report.state.webhook_id),
                    )
                    .await;
                    eprintln!(
                        "[{name}] subscribed: webhook {} (key {}) valid until {}; {} clockings synced, {} applied, in {seconds:.1} s",
                        report.state.webhook_id,
                        report.state.key_fingerprint,
                        report.state.valid_until,
                        report.synced,
                        report.applied
                    );
                    if report.unversioned > 0 {
                        eprintln!(
                            "[{name}] warning: {} clockings came from Protime without a changeVersion and were stored as the oldest version of their id: a later sync does not refresh them, only versioned changes do (webhook events, delta changes)",
                            report.unversioned
                        );
                    }
                }
                Err(error) => {
                    metrics::counter!("protime_reinitializations_total", "subscription" => name.clone(), "result" => "failed")
                        .increment(1);
                    tracing::error!(subscription = %name, %error, ?backoff, "the subscription could not be renewed; trying again");
                    life.alerts.raise(
                        &name,
                        Kind::RenewalFailed,
                        format!("the subscription could not be renewed: {error}"),
                        serde_json::json!({"error": error.to_string()}),
                    );
                    life.set_health(Err(format!("renewal failed: {error}")));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        if let Some(state) = subscription.state() {
            life.show_active(&state, lease);
        }
        tokio::time::sleep(life.check).await;
    }
}

/// Watches what only a timer can see and raises alerts: the webhook about to lapse without a
/// renewal, dead letters piling up, a spike of signature failures. Never returns (without
/// alerts it only waits).
async fn watch_for_alerts(life: &Lifecycle, subscription: &Subscription) {
    let Some(settings) = life.alerts.settings().cloned() else {
        return std::future::pending().await;
    };
    let name = life.name.as_str();
    let mut refusals = Window::default();
    loop {
        if let Some(left) = subscription.time_left(Utc::now()) {
            let within = chrono::TimeDelta::from_std(settings.expiring_within)
                .unwrap_or(chrono::TimeDelta::MAX);
            if left <= within {
                life.alerts.raise(
                    name,
                    Kind::WebhookExpiring,
                    format!(
                        "the webhook expires in {} s and has not been renewed",
                        left.num_seconds().max(0)
                    ),
                    serde_json::json!({"seconds_left": left.num_seconds().max(0)}),
                );
            }
        }
        match life.store.dead_letters().await {
            Ok(letters) => {
                let waiting = letters.iter().filter(|l| l.replayed_at.is_none()).count() as u64;
                if waiting > settings.dead_letters_above {
                    life.alerts.raise(
                        name,
                        Kind::DeadLetters,
                        format!(
                            "{waiting} dead letters wait for a replay (threshold {}): see `protime dead-letters list`",
                            settings.dead_letters_above
                        ),
                        serde_json::json!({"waiting": waiting, "threshold": settings.dead_letters_above}),
                    );
                } else {
                    life.alerts.resolve(name, Kind::DeadLetters);
                }
            }
            Err(error) => {
                tracing::warn!(subscription = %name, error = %format!("{error:#}"), "could not count the dead letters");
            }
        }
        let total = life.watch.refused_total.load(Ordering::Relaxed);
        let recent = refusals.growth(total, settings.signature_window);
        if recent > settings.signature_failures_above {
            life.alerts.raise(
                name,
                Kind::SignatureFailures,
                format!(
                    "{recent} deliveries failed the signature check within {} s (threshold {})",
                    settings.signature_window.as_secs(),
                    settings.signature_failures_above
                ),
                serde_json::json!({"refused": recent, "window_seconds": settings.signature_window.as_secs()}),
            );
        } else {
            life.alerts.resolve(name, Kind::SignatureFailures);
        }
        tokio::time::sleep(life.check.min(settings.signature_window)).await;
    }
}
