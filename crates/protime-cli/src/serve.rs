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
//!
//! With `--config FILE` (TOML) one process runs several subscriptions — e.g. one per
//! Protime tenant — each with its own client, store, state directory and receive path on one
//! listener; one subscription failing (bad credentials, Protime down) does not stop the
//! others, and `/readyz` and `/metrics` name it. Secrets are never in the file: each
//! subscription names the environment variable (`client_secret_env`) or the file
//! (`client_secret_file`) that holds its client secret.

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
    /// Configuration file (TOML) of several subscriptions; see the README's "Run it in
    /// production". Without it, one subscription from the flags below.
    #[arg(long, env = "PROTIME_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration (and that every secret is readable), print a summary, and
    /// exit: 0 when it is usable, 1 otherwise.
    #[arg(long)]
    check_config: bool,
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
    #[arg(long, env = "PROTIME_DESTINATION", required_unless_present = "config")]
    destination: Option<String>,
    /// Directory of the state: `webhook.keys` and `subscription.json` (created, mode 700).
    #[arg(
        long,
        env = "PROTIME_STATE_DIR",
        value_name = "DIR",
        required_unless_present = "config"
    )]
    state_dir: Option<PathBuf>,
    /// First day of the full sync (YYYY-MM-DD).
    #[arg(long, required_unless_present = "config")]
    from: Option<NaiveDate>,
    /// Last day of the full sync (YYYY-MM-DD); at most one year after `--from`.
    #[arg(long, required_unless_present = "config")]
    to: Option<NaiveDate>,
    /// Renew the webhook this long before its `validUntil`.
    #[arg(long, default_value_t = 24 * 3600, value_name = "SECONDS")]
    lead_time_seconds: u64,
    /// How often to check the webhook (its status at Protime, and the time left).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    check_seconds: u64,
    /// Address to listen on (default 127.0.0.1, or the configuration's `bind`; this flag or
    /// its variable wins over the file).
    #[arg(long, env = "PROTIME_BIND")]
    bind: Option<std::net::IpAddr>,
    /// Port to listen on (default 8080, or the configuration's `port`; this flag or its
    /// variable wins over the file).
    #[arg(long, env = "PROTIME_PORT")]
    port: Option<u16>,
    /// Path the deliveries are POSTed to.
    #[arg(long, default_value = "/")]
    path: String,
    /// Serve `/healthz`, `/readyz` and `/metrics` on this address (keep it private); wins
    /// over the configuration's `admin`.
    #[arg(long, env = "PROTIME_ADMIN", value_name = "ADDR:PORT")]
    admin: Option<SocketAddr>,
    /// When 5 deliveries in a row fail the signature check, renew at once — but at most once
    /// per this many seconds (anyone can send unsigned requests; this bounds what they can
    /// cause to one webhook and one full sync per interval).
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    forced_renewal_interval_seconds: u64,
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

/// The configuration file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// Address to listen on (the `--bind` flag wins).
    bind: Option<std::net::IpAddr>,
    /// Port to listen on (the `--port` flag, when given, wins).
    port: Option<u16>,
    /// Admin address (the `--admin` flag wins).
    admin: Option<SocketAddr>,
    #[serde(rename = "subscription")]
    subscriptions: Vec<SubscriptionConfig>,
}

/// One subscription of the configuration file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionConfig {
    name: String,
    tenant: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    base_url: Option<String>,
    token_url: Option<String>,
    client_id: String,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    user_agent: String,
    destination: String,
    path: String,
    store: String,
    state_dir: PathBuf,
    from: DateField,
    to: DateField,
    lead_time_seconds: Option<u64>,
    check_seconds: Option<u64>,
    #[serde(default)]
    allow_insecure_destinations: bool,
}

/// A day in the configuration: a TOML date (`from = 2026-01-01`) or a string
/// (`from = "2026-01-01"`).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum DateField {
    Toml(toml::value::Datetime),
    Text(NaiveDate),
}

impl DateField {
    fn day(&self, subscription: &str, field: &str) -> anyhow::Result<NaiveDate> {
        match self {
            Self::Text(day) => Ok(*day),
            Self::Toml(datetime) => datetime
                .date
                .filter(|_| datetime.time.is_none())
                .and_then(|d| {
                    NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                })
                .with_context(|| {
                    format!("subscription {subscription}: {field} must be a date (YYYY-MM-DD)")
                }),
        }
    }
}

/// One subscription, ready to run.
struct Plan {
    name: String,
    client: ProtimeClient,
    destination: String,
    path: String,
    store: StoreLocation,
    state_dir: PathBuf,
    filter: ClockingsFilter,
    lead_time: Duration,
    check: Duration,
    forced_interval: Duration,
}

fn secret_of(config: &SubscriptionConfig) -> anyhow::Result<String> {
    match (&config.client_secret_env, &config.client_secret_file) {
        (Some(variable), None) => std::env::var(variable).with_context(|| {
            format!("subscription {}: the environment variable {variable} (client_secret_env) is not set", config.name)
        }),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|secret| secret.trim().to_owned())
            .with_context(|| {
                format!("subscription {}: cannot read client_secret_file {}", config.name, path.display())
            }),
        _ => anyhow::bail!(
            "subscription {}: give exactly one of client_secret_env and client_secret_file (never the secret itself)",
            config.name
        ),
    }
}

fn plan_of(config: &SubscriptionConfig, defaults: &ServeArgs) -> anyhow::Result<Plan> {
    let secret = secret_of(config)?;
    let sandbox_environment = match config.environment.as_deref() {
        None | Some("production") => false,
        Some("sandbox") => true,
        Some(other) => anyhow::bail!(
            "subscription {}: environment {other:?} is not production or sandbox",
            config.name
        ),
    };
    let client = crate::api::build_client(&crate::api::ClientSettings {
        tenant: config.tenant.as_deref(),
        sandbox_environment,
        base_url: config.base_url.as_deref(),
        token_url: config.token_url.as_deref(),
        client_id: Some(&config.client_id),
        client_secret: Some(&secret),
        user_agent: Some(&config.user_agent),
        allow_insecure_destinations: config.allow_insecure_destinations,
    })
    .with_context(|| format!("subscription {}", config.name))?;
    let store = config
        .store
        .parse::<StoreLocation>()
        .map_err(|e| anyhow::anyhow!("subscription {}: store: {e}", config.name))?;
    anyhow::ensure!(
        config.path.starts_with('/'),
        "subscription {}: path must start with '/'",
        config.name
    );
    Ok(Plan {
        name: config.name.clone(),
        client,
        destination: config.destination.clone(),
        path: config.path.clone(),
        store,
        state_dir: config.state_dir.clone(),
        filter: ClockingsFilter::between(
            config.from.day(&config.name, "from")?,
            config.to.day(&config.name, "to")?,
        )
        .with_context(|| format!("subscription {}: from/to", config.name))?,
        lead_time: Duration::from_secs(
            config
                .lead_time_seconds
                .unwrap_or(defaults.lead_time_seconds),
        ),
        check: Duration::from_secs(
            config
                .check_seconds
                .unwrap_or(defaults.check_seconds)
                .max(1),
        ),
        forced_interval: Duration::from_secs(defaults.forced_renewal_interval_seconds),
    })
}

/// The subscriptions to run, from the configuration file or the flags, checked.
fn plans(args: &ServeArgs) -> anyhow::Result<(Vec<Plan>, Option<ConfigFile>)> {
    let Some(path) = &args.config else {
        let (Some(destination), Some(state_dir), Some(from), Some(to)) =
            (&args.destination, &args.state_dir, args.from, args.to)
        else {
            anyhow::bail!(
                "--destination, --state-dir, --from and --to are needed without --config"
            );
        };
        return Ok((
            vec![Plan {
                name: "default".into(),
                client: args.connection.client()?,
                destination: destination.clone(),
                path: args.path.clone(),
                store: args.store.clone(),
                state_dir: state_dir.clone(),
                filter: ClockingsFilter::between(from, to)?,
                lead_time: Duration::from_secs(args.lead_time_seconds),
                check: Duration::from_secs(args.check_seconds.max(1)),
                forced_interval: Duration::from_secs(args.forced_renewal_interval_seconds),
            }],
            None,
        ));
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration {}", path.display()))?;
    let file: ConfigFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    anyhow::ensure!(
        !file.subscriptions.is_empty(),
        "{}: no [[subscription]]",
        path.display()
    );
    let mut problems = Vec::new();
    let mut plans = Vec::new();
    for config in &file.subscriptions {
        match plan_of(config, args) {
            Ok(plan) => plans.push(plan),
            Err(error) => problems.push(format!("{error:#}")),
        }
    }
    let mut names = std::collections::BTreeSet::new();
    let mut paths = std::collections::BTreeSet::new();
    let mut states = std::collections::BTreeSet::new();
    for config in &file.subscriptions {
        if !names.insert(config.name.clone()) {
            problems.push(format!("subscription name {:?} is used twice", config.name));
        }
        if !paths.insert(config.path.clone()) {
            problems.push(format!("path {:?} is used twice", config.path));
        }
        if !states.insert(config.state_dir.clone()) {
            problems.push(format!(
                "state_dir {} is used twice",
                config.state_dir.display()
            ));
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("{}:\n  {}", path.display(), problems.join("\n  "));
    }
    Ok((plans, Some(file)))
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

/// Deliveries refused for their signature since the last one that verified: when Protime
/// signs with a key this process does not have (a key lost, or a webhook created
/// elsewhere), every delivery fails, and waiting for the webhook to be disabled would lose
/// time. Fed by the receiver's answers (401 counts, 2xx resets).
#[derive(Debug, Default)]
struct SignatureWatch {
    refused_since_verified: std::sync::atomic::AtomicU64,
}

/// Refused deliveries in a row after which the subscription is renewed at once.
const REFUSED_IN_A_ROW: u64 = 5;

/// What `keep_alive` needs for one subscription.
struct Lifecycle {
    name: String,
    subscription: Arc<Subscription>,
    client: ProtimeClient,
    store: Store,
    destination: String,
    paths: Arc<StatePaths>,
    filter: ClockingsFilter,
    check: Duration,
    health: crate::admin::SubscriptionHealth,
    watch: Arc<SignatureWatch>,
    forced_interval: Duration,
}

impl Lifecycle {
    fn set_health(&self, health: Result<String, String>) {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(self.name.clone(), health);
    }
}

/// Keeps one subscription alive until the process stops.
async fn keep_alive(life: Lifecycle) {
    let name = life.name.clone();
    let current = life.subscription.state().map(|s| s.webhook_id);
    delete_orphans(&life.client, &life.destination, current.as_deref()).await;
    let mut backoff = Duration::from_secs(1);
    let mut last_forced: Option<Instant> = None;
    loop {
        let refused = life
            .watch
            .refused_since_verified
            .load(std::sync::atomic::Ordering::Relaxed);
        let may_force = last_forced.is_none_or(|at| at.elapsed() >= life.forced_interval);
        let due = if refused >= REFUSED_IN_A_ROW && may_force {
            last_forced = Some(Instant::now());
            eprintln!(
                "[{name}] {refused} deliveries in a row failed the signature check: renewing at once"
            );
            true
        } else {
            match life.subscription.needs_reinitialization().await {
                Ok(due) => due,
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
            match life
                .subscription
                .reinitialize(&life.filter, &life.store)
                .await
            {
                Ok(report) => {
                    backoff = Duration::from_secs(1);
                    life.watch
                        .refused_since_verified
                        .store(0, std::sync::atomic::Ordering::Relaxed);
                    let seconds = started.elapsed().as_secs_f64();
                    metrics::counter!("protime_reinitializations_total", "subscription" => name.clone(), "result" => "ok")
                        .increment(1);
                    metrics::histogram!("protime_reinitialization_duration_seconds", "subscription" => name.clone())
                        .record(seconds);
                    if let Err(error) = life.paths.save_state(&report.state) {
                        tracing::error!(subscription = %name, error = %format!("{error:#}"), "the new subscription state was not saved; a restart will renew again");
                    }
                    let mut keep = vec![report.state.key_fingerprint.clone()];
                    if !report.previous_deleted {
                        keep.extend(subscription_fingerprints(&life.paths.keys));
                    }
                    if let Err(error) = crate::keyfile::retain_keys(&life.paths.keys, &keep) {
                        tracing::warn!(subscription = %name, error = %format!("{error:#}"), "old keys were not removed from the key file");
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
                }
                Err(error) => {
                    metrics::counter!("protime_reinitializations_total", "subscription" => name.clone(), "result" => "failed")
                        .increment(1);
                    tracing::error!(subscription = %name, %error, ?backoff, "the subscription could not be renewed; trying again");
                    life.set_health(Err(format!("renewal failed: {error}")));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    continue;
                }
            }
        }
        if let Some(state) = life.subscription.state() {
            let left = state.valid_until - Utc::now();
            metrics::gauge!("protime_subscription_seconds_left", "subscription" => name.clone())
                .set(left.num_seconds() as f64);
            if left > chrono::TimeDelta::zero() {
                life.set_health(Ok(format!(
                    "active, webhook {} valid until {}",
                    state.webhook_id, state.valid_until
                )));
            }
        }
        tokio::time::sleep(life.check).await;
    }
}

/// Every fingerprint in the key file (to keep them all when the previous webhook could not
/// be deleted).
fn subscription_fingerprints(path: &Path) -> Vec<String> {
    crate::keyfile::read_keys(path)
        .map(|keys| keys.iter().map(|k| k.fingerprint()).collect())
        .unwrap_or_default()
}

/// One subscription's running parts.
struct Running {
    /// Held for as long as the process runs: `protime sync` refuses this store meanwhile.
    owner: crate::store::Owner,
    /// Where the store is, for messages (never a password).
    location: StoreLocation,
    verifier: Verifier,
    /// Name, store and destination live here.
    lifecycle: Lifecycle,
    path: String,
    watch: Arc<SignatureWatch>,
}

async fn start(plan: Plan, health: crate::admin::SubscriptionHealth) -> anyhow::Result<Running> {
    let name = plan.name.clone();
    let paths =
        Arc::new(StatePaths::new(&plan.state_dir).with_context(|| format!("subscription {name}"))?);
    let verifier = Verifier::without_keys(SignatureScheme::default())?;
    if paths.keys.exists() {
        for key in crate::keyfile::read_keys(&paths.keys)? {
            verifier.add_key(key)?;
        }
    }
    let store = plan
        .store
        .open(None)
        .await
        .with_context(|| format!("subscription {name}"))?;
    let Some(owner) = store.try_claim_owner().await? else {
        anyhow::bail!(
            "subscription {name}: another `protime serve` owns the subscription in the store {}",
            plan.store
        );
    };
    let keeper_paths = Arc::clone(&paths);
    let progress_name = name.clone();
    let mut subscription = Subscription::new(
        plan.client.clone(),
        &plan.destination,
        verifier.clone(),
    )
    .with_lead_time(plan.lead_time)
    .with_progress(Arc::new(move |totals| {
        // The running sync, for dashboards (each renewal's sync starts again from 0).
        metrics::gauge!("protime_sync_clockings", "subscription" => progress_name.clone())
            .set(totals.synced as f64);
    }))
    .with_key_keeper(Arc::new(move |key, state| {
        crate::keyfile::add_key(&keeper_paths.keys, key).map_err(|error| format!("{error:#}"))?;
        tracing::info!(webhook = %state.webhook_id, key = %key.fingerprint(), "new key kept");
        Ok(())
    }));
    if let Some(state) = paths.load_state()? {
        eprintln!(
            "[{name}] resuming webhook {} (valid until {})",
            state.webhook_id, state.valid_until
        );
        subscription = subscription.resume(state);
    }
    health
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(name.clone(), Ok("starting".into()));
    let watch = Arc::new(SignatureWatch::default());
    Ok(Running {
        watch: Arc::clone(&watch),
        owner,
        location: plan.store,
        verifier,
        path: plan.path,
        lifecycle: Lifecycle {
            name,
            subscription: Arc::new(subscription),
            client: plan.client,
            store,
            destination: plan.destination,
            paths,
            filter: plan.filter,
            check: plan.check,
            health,
            watch,
            forced_interval: plan.forced_interval,
        },
    })
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<Outcome> {
    let stop = shutdown_signal();
    let (plans, file) = plans(&args)?;
    if args.check_config {
        for plan in &plans {
            println!(
                "subscription {}: {} -> {} (path {}), store {}, state {}",
                plan.name,
                plan.client.base_url(),
                plan.destination,
                plan.path,
                plan.store,
                plan.state_dir.display()
            );
        }
        println!("configuration OK: {} subscription(s)", plans.len());
        return Ok(Outcome::Success);
    }
    let bind = args
        .bind
        .or(file.as_ref().and_then(|f| f.bind))
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let port = args
        .port
        .or(file.as_ref().and_then(|f| f.port))
        .unwrap_or(8080);
    let admin_address = args.admin.or(file.as_ref().and_then(|f| f.admin));

    let health: crate::admin::SubscriptionHealth = Arc::default();
    let mut running = Vec::new();
    for plan in plans {
        running.push(start(plan, Arc::clone(&health)).await?);
    }

    let admin = match admin_address {
        Some(address) => {
            let readiness = crate::admin::Readiness {
                stores: running
                    .iter()
                    .map(|r| (r.lifecycle.name.clone(), r.lifecycle.store.clone()))
                    .collect(),
                subscriptions: Some(Arc::clone(&health)),
            };
            Some(crate::admin::serve(address, readiness).await?)
        }
        None => None,
    };
    let mut app = axum::Router::new();
    for part in &running {
        let watch = Arc::clone(&part.watch);
        let receiver = crate::receive::receiver_app(
            &part.path,
            part.verifier.clone(),
            part.lifecycle.store.sink(),
        )?
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let watch = Arc::clone(&watch);
                async move {
                    let response = next.run(request).await;
                    let counter = &watch.refused_since_verified;
                    if response.status() == axum::http::StatusCode::UNAUTHORIZED {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else if response.status().is_success() {
                        counter.store(0, std::sync::atomic::Ordering::Relaxed);
                    }
                    response
                }
            },
        ));
        app = app.merge(receiver);
    }
    let address = SocketAddr::new(bind, port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (is the port in use?)"))?;
    let local = listener.local_addr()?;
    for part in &running {
        eprintln!(
            "serving Protime clockings webhooks on http://{local}{} for {} ({}), store {}",
            part.path, part.lifecycle.destination, part.lifecycle.name, part.location
        );
    }
    if let Some(bound) = admin {
        eprintln!("admin endpoints on http://{bound}/healthz, /readyz and /metrics");
    }

    let mut stores = Vec::new();
    let mut lifecycles = Vec::new();
    // The ownership claims live until the stores are closed.
    let mut owners = Vec::new();
    for part in running {
        stores.push(part.lifecycle.store.clone());
        owners.push(part.owner);
        lifecycles.push(tokio::spawn(keep_alive(part.lifecycle)));
    }

    crate::signals::serve_until_stopped(
        listener,
        app,
        stop,
        Duration::from_secs(args.drain_seconds),
    )
    .await?;
    // A renewal cut short here is like a crash: the key is kept already, and the next start
    // deletes the unfinished webhook and renews again.
    for lifecycle in &lifecycles {
        lifecycle.abort();
    }
    for lifecycle in lifecycles {
        let _ = lifecycle.await;
    }
    for store in stores {
        store.close().await.context("closing a store")?;
    }
    drop(owners);
    eprintln!("stopped; store(s) closed");
    Ok(Outcome::Success)
}
