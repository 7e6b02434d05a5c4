//! `protime receive`: the production webhook receiver with the SQLite store.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use protime_store_sqlite::Durability;
use protime_webhooks::receiver::{ReceiverConfig, router};
use protime_webhooks::signature::{Verifier, WebhookKey};
use protime_webhooks::{DeliverySink, InMemorySink};

use crate::Outcome;
use crate::signals::shutdown_signal;
use crate::store::StoreLocation;

/// Arguments of `protime receive`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReceiveArgs {
    /// Webhook key from the create call, used exactly as given (no splitting, no trimming);
    /// repeat `--key` for a rotation (old and new both accepted). The environment variable
    /// holds one key. Prefer it, or `--key-file`: command lines are visible to other users.
    #[arg(
        long = "key",
        env = "PROTIME_WEBHOOK_KEY",
        required_unless_present = "key_file",
        hide_env_values = true
    )]
    keys: Vec<String>,
    /// File of webhook keys, one per line (as `protime webhooks create --key-file` and
    /// `protime sync` write it); read again on SIGHUP, so a rotation needs no restart.
    #[arg(long, value_name = "FILE")]
    key_file: Option<std::path::PathBuf>,
    /// The store: an SQLite file (a path or `sqlite:PATH`, created if missing) or a
    /// PostgreSQL database (`postgres://user:password@host:port/db[?schema=NAME]`, missing
    /// parts from the PG* variables). Prefer PGPASSWORD to a password in the URL: command
    /// lines are visible to other users.
    #[arg(
        long,
        env = "PROTIME_STORE",
        default_value = "protime.sqlite",
        value_name = "STORE"
    )]
    store: StoreLocation,
    /// Keep the state in memory instead of a store file: nothing survives a restart (for
    /// trials and benchmarks, never for production).
    #[arg(long, conflicts_with_all = ["store", "durability"])]
    in_memory: bool,
    /// Serve `GET /healthz`, `/readyz` and `/metrics` (Prometheus) on this address, e.g.
    /// `127.0.0.1:9090`; off when not given. Keep it off the public webhook address.
    #[arg(long, value_name = "ADDR:PORT")]
    admin: Option<SocketAddr>,
    /// No line per delivery (only warnings and errors), for production logs.
    #[arg(long)]
    quiet: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Longest wait, after SIGTERM or SIGINT, for deliveries in flight to be answered
    /// before the store is closed and the process exits.
    #[arg(long, default_value_t = 20, value_name = "SECONDS")]
    drain_seconds: u64,
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
    capture: Option<std::path::PathBuf>,
    /// What an acknowledged delivery survives, SQLite only: `power-loss` (the default) syncs
    /// every commit to disk (`synchronous=FULL`), `process-crash` is faster but may lose the
    /// last commits on power loss (`synchronous=NORMAL`). PostgreSQL always commits with
    /// `synchronous_commit=on`.
    #[arg(long, value_enum)]
    durability: Option<DurabilityArg>,
    /// Validate with the strict profile: an `InsertOrUpdate` without `person`, `date`,
    /// `timeOfDayInMinutes` or `kind` is dead-lettered. By default only what the Protime
    /// docs require (`changeType`, `data.id`, `data.changeVersion`) is mandatory.
    #[arg(long)]
    strict: bool,
}

/// Durability levels selectable on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum DurabilityArg {
    /// Commits survive power loss.
    PowerLoss,
    /// Commits survive a process crash.
    ProcessCrash,
}

impl ReceiveArgs {
    /// Whether `--quiet` was given.
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }
}

pub(crate) async fn run(args: ReceiveArgs) -> anyhow::Result<Outcome> {
    let scheme = args.signature.scheme()?;
    let keys = args
        .keys
        .iter()
        .map(|k| WebhookKey::new(k.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .context("invalid --key")?;
    let mut keys = keys;
    let from_file = match &args.key_file {
        Some(path) => crate::keyfile::read_keys(path)?,
        None => Vec::new(),
    };
    keys.extend(from_file.iter().cloned());
    let verifier = Verifier::new(scheme, keys).context("invalid --key")?;
    if let Some(path) = args.key_file.clone() {
        let pinned = verifier
            .key_fingerprints()
            .into_iter()
            .filter(|f| !from_file.iter().any(|k| k.fingerprint() == *f))
            .collect();
        reload_on_hangup(path, verifier.clone(), &from_file, pinned);
    }
    // Handlers installed before anything else, so that a signal during start-up is not
    // lost to the default action (which would skip closing the store).
    let stop = shutdown_signal();
    let mut store = None;
    let (sink, stored_in): (Arc<dyn DeliverySink>, String) = if args.in_memory {
        (
            Arc::new(InMemorySink::default()),
            "memory (nothing survives a restart)".into(),
        )
    } else {
        let durability = args.durability.map(|durability| match durability {
            DurabilityArg::PowerLoss => Durability::PowerLoss,
            DurabilityArg::ProcessCrash => Durability::ProcessCrash,
        });
        let opened = args.store.open(durability).await?;
        let sink = opened.sink();
        store = Some(opened);
        (sink, args.store.to_string())
    };
    let admin = match args.admin {
        Some(address) => {
            let readiness = crate::admin::Readiness {
                stores: store
                    .iter()
                    .map(|store| (args.store.to_string(), store.clone()))
                    .collect(),
                subscriptions: None,
            };
            Some(crate::admin::serve(address, readiness).await?)
        }
        None => None,
    };
    let mut config = args
        .limits
        .receiver()
        .with_profile(crate::api::profile_of(args.strict));
    if let Some(dir) = &args.capture {
        config = config.with_observer(crate::capture::observer(dir)?);
        eprintln!("capturing every request into {}", dir.display());
    }
    let app = receiver_app(&args.path, verifier.clone(), config, sink)?;
    let address = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (is the port in use?)"))?;
    eprintln!(
        "receiving Protime clockings webhooks on http://{}{} (keys {}), store {}",
        listener.local_addr()?,
        args.path,
        verifier.key_fingerprints().join(", "),
        stored_in
    );
    if let Some(bound) = admin {
        eprintln!("admin endpoints on http://{bound}/healthz, /readyz and /metrics");
    }
    // On SIGTERM or SIGINT: stop accepting, let the deliveries in flight finish (each is
    // answered only after its commit), at most `--drain-seconds`; then close the store, which
    // commits anything still queued, and exit 0.
    crate::signals::serve_until_stopped(
        listener,
        app,
        args.limits.server(),
        stop,
        std::time::Duration::from_secs(args.drain_seconds),
    )
    .await?;
    if let Some(store) = store {
        store.close().await.context("closing the store")?;
    }
    eprintln!("receiver stopped; store closed");
    Ok(Outcome::Success)
}

/// On SIGHUP, reads the key file again: keys added to it are accepted from then on, keys
/// removed from it are dropped (those given with `--key` stay). A file that cannot be read
/// changes nothing.
fn reload_on_hangup(
    path: std::path::PathBuf,
    verifier: Verifier,
    loaded: &[WebhookKey],
    pinned: Vec<String>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("SIGHUP cannot be handled here: the key file is read once");
            return;
        };
        let mut from_file: Vec<String> = loaded.iter().map(WebhookKey::fingerprint).collect();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let keys = match crate::keyfile::read_keys(&path) {
                    Ok(keys) => keys,
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "SIGHUP: the key file was not reloaded; the keys stay as they were");
                        continue;
                    }
                };
                let now: Vec<String> = keys.iter().map(WebhookKey::fingerprint).collect();
                for key in keys {
                    if let Err(error) = verifier.add_key(key) {
                        tracing::warn!(%error, "SIGHUP: a key was not added");
                    }
                }
                for gone in from_file
                    .iter()
                    .filter(|f| !now.contains(f) && !pinned.contains(f))
                {
                    verifier.remove_key(gone);
                }
                from_file = now;
                eprintln!(
                    "keys reloaded from {}: {}",
                    path.display(),
                    verifier.key_fingerprints().join(", ")
                );
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = (path, verifier, loaded, pinned);
    }
}

/// The receiver router mounted at `path`.
pub(crate) fn receiver_app(
    path: &str,
    verifier: Verifier,
    config: ReceiverConfig,
    sink: Arc<dyn DeliverySink>,
) -> anyhow::Result<axum::Router> {
    let receiver = router(verifier, config, sink);
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        Ok(receiver)
    } else if path.starts_with('/') {
        Ok(axum::Router::new().nest(path, receiver))
    } else {
        anyhow::bail!("--path must start with '/', got {path:?}")
    }
}
