//! `protime serve`: the receiver and the subscription in one long-running process.
//!
//! On start it resumes from the kept state — the webhook keys and the current webhook — and
//! without one it subscribes (webhook first, then the full sync). Every `--check-seconds` it
//! asks whether the webhook must be renewed (it expires within `--lead-time-seconds`, is
//! disabled, or is gone) and renews it the same way, accepting the old and the new key
//! during the overlap. A new key is kept durably before the sync starts; the old key goes
//! once its webhook is deleted. Enabled webhooks for the same destination that are not the
//! current one (orphans of a renewal interrupted by a crash) are deleted at start and after
//! each renewal, so a kill at any moment converges on restart.
//!
//! Where the state is kept depends on the store (see `state.rs`): beside an SQLite store in
//! `--state-dir`; in a PostgreSQL store, in the store, which lets several replicas share
//! one subscription — exactly one of them, the holder of the store's renewal lease, renews
//! (see `lifecycle.rs`); the others verify with the keys it keeps and take over when it dies.
//!
//! With `--config FILE` (TOML) one process runs several subscriptions — e.g. one per
//! Protime tenant — each with its own client, store and receive path on one listener; one
//! subscription failing (bad credentials, Protime down) does not stop the others, and
//! `/readyz` and `/metrics` name it. Secrets are never in the file: each subscription names
//! the environment variable (`client_secret_env`) or the file (`client_secret_file`) that
//! holds its client secret (`config.rs`).

mod config;
mod lifecycle;
mod reconcile;
mod retention;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use protime_webhooks::signature::Verifier;

use config::{Plan, plans};
use lifecycle::{Lifecycle, Ownership, SignatureWatch};
use state::{StateHome, StatePaths};

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
    /// Directory of the state of an SQLite store: `webhook.keys` and `subscription.json`
    /// (created, mode 700). A PostgreSQL store keeps its keys and state itself (a directory
    /// given with one is imported into it once).
    #[arg(long, env = "PROTIME_STATE_DIR", value_name = "DIR")]
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
    #[command(flatten)]
    limits: crate::limits::Limits,
    #[command(flatten)]
    signature: crate::signature_settings::SignatureFlags,
    /// Write every request (method, path, headers, raw body) into this directory, one file
    /// each (mode 600, at most 1,000), for `protime doctor signature`. For diagnosis: the
    /// files hold personal data.
    #[arg(long, value_name = "DIR")]
    capture: Option<PathBuf>,
    #[command(flatten)]
    retention: retention::RetentionFlags,
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
    /// This replica's name, shown by the others' `/readyz` while it holds the renewal lease
    /// of a PostgreSQL store (default: host name and process id).
    #[arg(long, env = "PROTIME_REPLICA_NAME")]
    replica_name: Option<String>,
    /// Validate deliveries and synced clockings with the strict profile (`person`, `date`,
    /// `timeOfDayInMinutes` and `kind` required), for the subscription of the flags; in a
    /// configuration file, `strict = true` per subscription. By default only what the
    /// Protime docs require is mandatory.
    #[arg(long, conflicts_with = "config")]
    strict: bool,
    /// With a PostgreSQL store, how often a replica that does not renew reads the kept keys
    /// and tries to take the renewal lease over (at least 100).
    #[arg(long, default_value_t = 1000, value_name = "MILLISECONDS")]
    follow_interval_ms: u64,
    /// Keep a Protime delta open behind the webhooks and apply what it returns, counting
    /// the changes the webhooks had not delivered (for the subscription of the flags; in a
    /// configuration file, `reconcile = true` per subscription). Off by default: Protime
    /// allows one active delta per collection, which you may use elsewhere.
    #[arg(long, conflicts_with = "config")]
    reconcile: bool,
    /// Seconds between two delta requests of the reconciliation (well within the delta's
    /// 72-hour life; at least 1).
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    reconcile_interval_seconds: u64,
    /// Seconds the changes a delta returned wait before they are applied, so that webhooks
    /// still in flight arrive first and are not counted as missed.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    reconcile_grace_seconds: u64,
    #[command(flatten)]
    alerts: AlertArgs,
}

/// Where and when to alert (`protime serve`); a configuration file's `[alerts]` table is
/// used when `--alert-url` is not given.
#[derive(Debug, clap::Args)]
pub(crate) struct AlertArgs {
    /// POST a small JSON alert here (`{"text": …, "kind": …, …}`, which chat tools' incoming
    /// webhooks accept) when a webhook is disabled or about to lapse, a renewal fails, dead
    /// letters pile up, signature failures spike, or reconciliation finds missed changes.
    #[arg(long, env = "PROTIME_ALERT_URL", value_name = "URL")]
    alert_url: Option<String>,
    /// Environment variable holding a secret that signs each alert (HMAC-SHA256, header
    /// `X-Protime-Alert-Signature`).
    #[arg(long, value_name = "VARIABLE", conflicts_with = "alert_secret_file")]
    alert_secret_env: Option<String>,
    /// File holding that secret (its first line).
    #[arg(long, value_name = "FILE")]
    alert_secret_file: Option<PathBuf>,
    /// Send an alert of a kind again after this many seconds if its condition persists.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    alert_repeat_seconds: u64,
    /// Alert when the webhook expires within this many seconds without a renewal.
    #[arg(long, default_value_t = 12 * 3600, value_name = "SECONDS")]
    alert_expiring_seconds: u64,
    /// Alert when more dead letters than this wait for a replay.
    #[arg(long, default_value_t = 10, value_name = "COUNT")]
    alert_dead_letters: u64,
    /// Alert when more deliveries than this fail the signature check within
    /// `--alert-signature-window-seconds`.
    #[arg(long, default_value_t = 50, value_name = "COUNT")]
    alert_signature_failures: u64,
    /// The window of `--alert-signature-failures`.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    alert_signature_window_seconds: u64,
}

impl ServeArgs {
    /// Whether `--quiet` was given.
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }
}

/// One subscription's running parts.
struct Running {
    /// Who may renew: this process for good, or whoever holds the store's lease.
    ownership: Ownership,
    /// Where the store is, for messages (never a password).
    location: StoreLocation,
    /// Name, store, verifier and destination live here.
    lifecycle: Lifecycle,
    path: String,
    /// How this subscription's deliveries are validated.
    profile: protime_model::Profile,
    /// Its retention limits and interval.
    retention: (crate::retention::Limits, Duration),
}

/// This replica's default name: the host and the process id.
fn default_replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!("{host}:{}", std::process::id())
}

async fn start(
    plan: Plan,
    args: &ServeArgs,
    health: crate::admin::SubscriptionHealth,
    alerts: &crate::alerts::Alerts,
) -> anyhow::Result<Running> {
    let name = plan.name.clone();
    let store = plan
        .store
        .open(None)
        .await
        .with_context(|| format!("subscription {name}"))?;
    let (home, ownership) = match &store {
        Store::Postgres(pg) => {
            let home = StateHome::Database(pg.clone());
            if let Some(directory) = &plan.state_dir {
                let imported = home.import(directory).await.with_context(|| {
                    format!("subscription {name}: importing {}", directory.display())
                })?;
                if imported > 0 {
                    eprintln!(
                        "[{name}] {imported} key(s) from {} are now kept in the store (the directory is no longer needed)",
                        directory.display()
                    );
                }
            }
            let ownership = Ownership::Shared {
                store: pg.clone(),
                replica: args
                    .replica_name
                    .clone()
                    .unwrap_or_else(default_replica_name),
                follow_every: Duration::from_millis(args.follow_interval_ms.max(100)),
            };
            (home, ownership)
        }
        Store::Sqlite(_) => {
            let directory = plan.state_dir.as_deref().with_context(|| {
                format!("subscription {name}: an SQLite store needs a state directory")
            })?;
            let home = StateHome::Directory(
                StatePaths::new(directory).with_context(|| format!("subscription {name}"))?,
            );
            let Some(owner) = store.try_claim_owner().await? else {
                anyhow::bail!(
                    "subscription {name}: another `protime serve` owns the subscription in the store {}",
                    plan.store
                );
            };
            (home, Ownership::Exclusive(owner))
        }
    };
    let verifier = Verifier::without_keys(plan.scheme.clone())?;
    for key in home
        .keys()
        .await
        .with_context(|| format!("subscription {name}"))?
    {
        verifier.add_key(key)?;
    }
    if let Some(state) = home.load_state().await? {
        eprintln!(
            "[{name}] resuming webhook {} (valid until {})",
            state.webhook_id, state.valid_until
        );
    }
    health
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(name.clone(), Ok("starting".into()));
    Ok(Running {
        ownership,
        location: plan.store,
        path: plan.path,
        profile: plan.profile,
        retention: plan.retention,
        lifecycle: Lifecycle {
            name,
            client: plan.client,
            store,
            destination: plan.destination,
            home,
            verifier,
            filter: plan.filter,
            lead_time: plan.lead_time,
            check: plan.check,
            health,
            watch: Arc::new(SignatureWatch::default()),
            forced_interval: plan.forced_interval,
            reconcile: plan.reconcile,
            alerts: alerts.clone(),
        },
    })
}
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<Outcome> {
    let stop = shutdown_signal();
    let (plans, file) = plans(&args)?;
    let alert_settings = config::alert_settings(&args.alerts, file.as_ref())?;
    if args.check_config {
        match &alert_settings {
            Some(settings) => println!(
                "alerts: to {} ({}), again after {} s; webhook expiring within {} s, more than {} dead letters, more than {} signature failures in {} s",
                settings.url,
                if settings.secret.is_some() {
                    "signed"
                } else {
                    "unsigned"
                },
                settings.repeat_after.as_secs(),
                settings.expiring_within.as_secs(),
                settings.dead_letters_above,
                settings.signature_failures_above,
                settings.signature_window.as_secs()
            ),
            None => println!("alerts: off"),
        }
        for plan in &plans {
            println!(
                "subscription {}: {} -> {} (path {}), store {}, state {}, reconciliation {}, validation {}",
                plan.name,
                plan.client.base_url(),
                plan.destination,
                plan.path,
                plan.store,
                match (&plan.store, &plan.state_dir) {
                    (StoreLocation::Postgres(_), _) => "in the store".to_owned(),
                    (_, Some(directory)) => directory.display().to_string(),
                    (_, None) => "none".to_owned(),
                },
                plan.reconcile
                    .as_ref()
                    .map_or_else(|| "off".to_owned(), ToString::to_string),
                plan.profile
            );
            let (limits, interval) = &plan.retention;
            if !limits.is_off() {
                println!("  {}", retention::describe(limits, *interval));
            }
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

    let alerts = match alert_settings {
        Some(settings) => {
            eprintln!("alerts go to {}", settings.url);
            crate::alerts::Alerts::start(settings)?
        }
        None => crate::alerts::Alerts::default(),
    };
    let health: crate::admin::SubscriptionHealth = Arc::default();
    let mut running = Vec::new();
    for plan in plans {
        running.push(start(plan, &args, Arc::clone(&health), &alerts).await?);
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
    let mut receiver_config = args.limits.receiver();
    if let Some(dir) = &args.capture {
        receiver_config = receiver_config.with_observer(crate::capture::observer(dir)?);
        eprintln!("capturing every request into {}", dir.display());
    }
    for part in &running {
        let watch = Arc::clone(&part.lifecycle.watch);
        let receiver = crate::receive::receiver_app(
            &part.path,
            part.lifecycle.verifier.clone(),
            // One budget of buffered bytes for every subscription on this port.
            receiver_config.clone().with_profile(part.profile),
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
                        watch
                            .refused_total
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    // Retention jobs run beside the lifecycles and stop with them.
    let capture_limits = crate::retention::Limits {
        captures: args.retention.captures(args.capture.as_ref()),
        ..Default::default()
    };
    lifecycles.extend(retention::spawn(
        "captures".into(),
        None,
        capture_limits,
        args.retention.interval(),
    ));
    for part in running {
        stores.push(part.lifecycle.store.clone());
        let (limits, interval) = part.retention;
        let store = Some(part.lifecycle.store.clone());
        lifecycles.extend(retention::spawn(
            part.lifecycle.name.clone(),
            store,
            limits,
            interval,
        ));
        lifecycles.push(tokio::spawn(lifecycle::run(part.lifecycle, part.ownership)));
    }

    crate::signals::serve_until_stopped(
        listener,
        app,
        args.limits.server(),
        stop,
        Duration::from_secs(args.drain_seconds),
    )
    .await?;
    // A renewal cut short here is like a crash: the key is kept already, and the next start
    // deletes the unfinished webhook and renews again. Ending a lifecycle releases its
    // ownership claim or lease.
    for lifecycle in &lifecycles {
        lifecycle.abort();
    }
    for lifecycle in lifecycles {
        let _ = lifecycle.await;
    }
    for store in stores {
        store.close().await.context("closing a store")?;
    }
    eprintln!("stopped; store(s) closed");
    Ok(Outcome::Success)
}
