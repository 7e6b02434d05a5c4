//! `protime serve`: the receiver and the subscription in one long-running process.
//!
//! On start it reads its state directory — the key file (`webhook.keys`, one key per line)
//! and the current webhook (`subscription.json`) — and resumes; without them it subscribes
//! (webhook first, then the full sync). Every `--check-seconds` it asks whether the webhook
//! must be renewed (it expires within `--lead-time-seconds`, is disabled, or is gone) and
//! renews it the same way, accepting the old and the new key during the overlap. A new key
//! is added to the key file — atomically, mode 600 — before the sync starts, that is before
//! anything can be delivered with it; the old key leaves the file once its webhook is
//! deleted. Enabled webhooks for the same destination that are not the current one
//! (orphans of a renewal interrupted by a crash) are deleted at start and after each
//! renewal, so a kill at any moment converges on restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use protime_client::{ClockingsFilter, ProtimeClient, WebhookFilter};
use protime_raw::types::{CollectionName, WebhookStatus};
use protime_webhooks::signature::{SignatureScheme, Verifier};
use protime_webhooks::subscription::{Subscription, SubscriptionState};

use crate::Outcome;
use crate::api::Connection;
use crate::signals::shutdown_signal;
use crate::store::{Store, StoreLocation};

/// Arguments of `protime serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    connection: Connection,
    /// The store (an SQLite file, `sqlite:PATH` or `postgres://…`).
    #[arg(
        long,
        env = "PROTIME_STORE",
        default_value = "protime.sqlite",
        value_name = "STORE"
    )]
    store: StoreLocation,
    /// The public HTTPS URL Protime delivers to (this process's `--path` behind your proxy).
    #[arg(long, env = "PROTIME_DESTINATION")]
    destination: String,
    /// Directory of the state: `webhook.keys` and `subscription.json` (created, mode 700).
    #[arg(long, env = "PROTIME_STATE_DIR", value_name = "DIR")]
    state_dir: PathBuf,
    /// First day of the full sync (YYYY-MM-DD).
    #[arg(long)]
    from: NaiveDate,
    /// Last day of the full sync (YYYY-MM-DD); at most one year after `--from`.
    #[arg(long)]
    to: NaiveDate,
    /// Renew the webhook this long before its `validUntil`.
    #[arg(long, default_value_t = 24 * 3600, value_name = "SECONDS")]
    lead_time_seconds: u64,
    /// How often to check the webhook (its status at Protime, and the time left).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    check_seconds: u64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Path the deliveries are POSTed to.
    #[arg(long, default_value = "/")]
    path: String,
    /// Serve `/healthz`, `/readyz` and `/metrics` on this address (keep it private).
    #[arg(long, value_name = "ADDR:PORT")]
    admin: Option<SocketAddr>,
    /// Longest wait, after SIGTERM or SIGINT, for deliveries in flight.
    #[arg(long, default_value_t = 20, value_name = "SECONDS")]
    drain_seconds: u64,
    /// No line per delivery (only warnings, errors and subscription events).
    #[arg(long)]
    quiet: bool,
}

impl ServeArgs {
    /// Whether `--quiet` was given.
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }
}

/// Where the state lives.
struct StatePaths {
    keys: PathBuf,
    subscription: PathBuf,
}

impl StatePaths {
    fn new(dir: &Path) -> anyhow::Result<Self> {
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
}

/// Deletes the enabled webhooks for `destination` other than `current`: what a renewal
/// interrupted by a crash leaves behind.
async fn delete_orphans(client: &ProtimeClient, destination: &str, current: Option<&str>) {
    let filter = WebhookFilter::default()
        .collection(CollectionName::Clockings)
        .status(WebhookStatus::Enabled);
    let webhooks = match client.list_webhooks(&filter).await {
        Ok(webhooks) => webhooks,
        Err(error) => {
            tracing::warn!(%error, "could not list the webhooks to find orphans");
            return;
        }
    };
    for webhook in webhooks {
        let id = webhook.id.to_string();
        if webhook.destination_url != destination || Some(id.as_str()) == current {
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

/// Keeps the subscription alive until the process stops.
async fn keep_alive(
    subscription: Arc<Subscription>,
    client: ProtimeClient,
    store: Store,
    destination: String,
    paths: Arc<StatePaths>,
    filter: ClockingsFilter,
    check: Duration,
) {
    let current = subscription.state().map(|s| s.webhook_id);
    delete_orphans(&client, &destination, current.as_deref()).await;
    let mut backoff = Duration::from_secs(1);
    loop {
        let due = match subscription.needs_reinitialization().await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "could not check the webhook; checking again later");
                false
            }
        };
        if due {
            eprintln!("renewing the subscription: new webhook first, then the full sync");
            let started = Instant::now();
            match subscription.reinitialize(&filter, &store).await {
                Ok(report) => {
                    backoff = Duration::from_secs(1);
                    let seconds = started.elapsed().as_secs_f64();
                    metrics::counter!("protime_reinitializations_total", "result" => "ok")
                        .increment(1);
                    metrics::histogram!("protime_reinitialization_duration_seconds")
                        .record(seconds);
                    if let Err(error) = paths.save_state(&report.state) {
                        tracing::error!(error = %format!("{error:#}"), "the new subscription state was not saved; a restart will renew again");
                    }
                    let mut keep = vec![report.state.key_fingerprint.clone()];
                    if !report.previous_deleted {
                        keep.extend(subscription_fingerprints(&paths.keys));
                    }
                    if let Err(error) = crate::keyfile::retain_keys(&paths.keys, &keep) {
                        tracing::warn!(error = %format!("{error:#}"), "old keys were not removed from the key file");
                    }
                    delete_orphans(&client, &destination, Some(&report.state.webhook_id)).await;
                    eprintln!(
                        "subscribed: webhook {} (key {}) valid until {}; {} clockings synced, {} applied, in {seconds:.1} s",
                        report.state.webhook_id,
                        report.state.key_fingerprint,
                        report.state.valid_until,
                        report.synced,
                        report.applied
                    );
                }
                Err(error) => {
                    metrics::counter!("protime_reinitializations_total", "result" => "failed")
                        .increment(1);
                    tracing::error!(%error, ?backoff, "the subscription could not be renewed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    continue;
                }
            }
        }
        if let Some(left) = subscription.time_left(Utc::now()) {
            metrics::gauge!("protime_subscription_seconds_left").set(left.num_seconds() as f64);
        }
        tokio::time::sleep(check).await;
    }
}

/// Every fingerprint in the key file (to keep them all when the previous webhook could not
/// be deleted).
fn subscription_fingerprints(path: &Path) -> Vec<String> {
    crate::keyfile::read_keys(path)
        .map(|keys| keys.iter().map(|k| k.fingerprint()).collect())
        .unwrap_or_default()
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<Outcome> {
    let stop = shutdown_signal();
    let paths = Arc::new(StatePaths::new(&args.state_dir)?);
    let filter = ClockingsFilter::between(args.from, args.to)?;
    let client = args.connection.client()?;
    let verifier = Verifier::without_keys(SignatureScheme::default())?;
    if paths.keys.exists() {
        for key in crate::keyfile::read_keys(&paths.keys)? {
            verifier.add_key(key)?;
        }
    }
    let store = args.store.open(None).await?;

    let keeper_paths = Arc::clone(&paths);
    let mut subscription = Subscription::new(client.clone(), &args.destination, verifier.clone())
        .with_lead_time(Duration::from_secs(args.lead_time_seconds))
        .with_key_keeper(Arc::new(move |key, state| {
            crate::keyfile::add_key(&keeper_paths.keys, key)
                .map_err(|error| format!("{error:#}"))?;
            tracing::info!(webhook = %state.webhook_id, key = %key.fingerprint(), "new key kept");
            Ok(())
        }));
    if let Some(state) = paths.load_state()? {
        eprintln!(
            "resuming webhook {} (valid until {})",
            state.webhook_id, state.valid_until
        );
        subscription = subscription.resume(state);
    }

    let admin = match args.admin {
        Some(address) => Some(crate::admin::serve(address, Some(store.clone())).await?),
        None => None,
    };
    let app = crate::receive::receiver_app(&args.path, verifier.clone(), store.sink())?;
    let address = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (is the port in use?)"))?;
    eprintln!(
        "serving Protime clockings webhooks on http://{}{} for {}, store {}",
        listener.local_addr()?,
        args.path,
        args.destination,
        args.store
    );
    if let Some(bound) = admin {
        eprintln!("admin endpoints on http://{bound}/healthz, /readyz and /metrics");
    }

    let lifecycle = tokio::spawn(keep_alive(
        Arc::new(subscription),
        client,
        store.clone(),
        args.destination.clone(),
        Arc::clone(&paths),
        filter,
        Duration::from_secs(args.check_seconds.max(1)),
    ));

    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop.await;
        let _ = stopping.send(());
    });
    let drain = Duration::from_secs(args.drain_seconds);
    let drain_deadline = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(drain).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served.context("the receiver stopped")?,
        () = drain_deadline => {
            tracing::warn!(?drain, "deliveries still in flight after the drain time: they were not answered, and Protime will retry them");
        }
    }
    // A renewal cut short here is like a crash: the key is kept already, and the next start
    // deletes the unfinished webhook and renews again.
    lifecycle.abort();
    let _ = lifecycle.await;
    store.close().await.context("closing the store")?;
    eprintln!("stopped; store closed");
    Ok(Outcome::Success)
}
