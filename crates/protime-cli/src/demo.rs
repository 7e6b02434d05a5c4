//! `protime demo`: the whole flow in one process, without a Protime tenant.
//!
//! A local sandbox plays Protime; a receiver with the SQLite store plays your service. The
//! demo subscribes (webhook first, then the initial sync), lets the sandbox make a stream of
//! changes delivered as signed POSTs with duplicates and reordering, waits until every
//! delivery is acknowledged, and compares the store with the sandbox's own state.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use protime_client::{ClientSecret, ClockingsFilter, ProtimeClient, RetryPolicy};
use protime_model::Clocking;
use protime_sandbox::{ReorderConfig, Sandbox, SandboxConfig};
use protime_webhooks::signature::{SignatureScheme, Verifier};
use protime_webhooks::subscription::Subscription;

use crate::Outcome;
use crate::store::StoreLocation;

/// Arguments of `protime demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Changes the sandbox makes after the initial sync.
    #[arg(long, default_value_t = 2000)]
    changes: usize,
    /// Probability (0..=1) that a delivery is sent twice.
    #[arg(long, default_value_t = 0.1)]
    duplicates: f64,
    /// Deliver in order instead of in shuffled batches.
    #[arg(long)]
    no_reorder: bool,
    /// The receiver's store: an SQLite file (a path or `sqlite:PATH`) or a PostgreSQL
    /// database (`postgres://…`, see `protime receive --help`). Default: a fresh SQLite file
    /// in a temporary directory. Use an empty store: the demo compares it with the sandbox.
    #[arg(long, value_name = "STORE")]
    store: Option<StoreLocation>,
    /// Seed of the sandbox's data and changes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Longest time to wait for the deliveries to be acknowledged.
    #[arg(long, default_value_t = 90)]
    timeout_seconds: u64,
}

/// Handling time of each delivery, request in to durable answer out.
#[derive(Clone, Default)]
struct Latencies(Arc<Mutex<Vec<Duration>>>);

impl Latencies {
    fn record(&self, latency: Duration) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(latency);
    }

    fn percentiles(&self) -> (usize, Option<Duration>, Option<Duration>) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        all.sort();
        let at = |p: f64| -> Option<Duration> {
            let index = ((all.len() as f64 - 1.0) * p).round() as usize;
            all.get(index).copied()
        };
        (all.len(), at(0.50), at(0.99))
    }
}

fn temp_store() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "protime-demo-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join("demo.sqlite"))
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".into(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1000.0),
    )
}

/// Compares the store with the sandbox; returns a list of differences (empty when equal).
fn differences(stored: &[Clocking], expected: &[Clocking]) -> Vec<String> {
    let stored: BTreeMap<i64, &Clocking> = stored.iter().map(|c| (c.id.get(), c)).collect();
    let expected: BTreeMap<i64, &Clocking> = expected.iter().map(|c| (c.id.get(), c)).collect();
    let mut out = Vec::new();
    for (id, clocking) in &expected {
        match stored.get(id) {
            None => out.push(format!("clocking {id} missing from the store")),
            Some(have) if have != clocking => out.push(format!(
                "clocking {id} differs: store has version {}, sandbox {}",
                have.change_version, clocking.change_version
            )),
            Some(_) => {}
        }
    }
    out.extend(
        stored
            .keys()
            .filter(|id| !expected.contains_key(id))
            .map(|id| format!("clocking {id} is in the store but not in the sandbox")),
    );
    out
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<Outcome> {
    if !(0.0..=1.0).contains(&args.duplicates) {
        anyhow::bail!(
            "--duplicates must be between 0 and 1, got {}",
            args.duplicates
        );
    }
    let started = Instant::now();
    let sandbox_config = SandboxConfig {
        seed: args.seed,
        people: 25,
        days: 14,
        duplicate_probability: args.duplicates,
        reorder: (!args.no_reorder).then_some(ReorderConfig {
            batch: 8,
            max_hold: Duration::from_millis(20),
        }),
        retry_schedule: vec![
            Duration::from_millis(50),
            Duration::from_millis(200),
            Duration::from_secs(1),
        ],
        max_concurrent_deliveries: 16,
        ..SandboxConfig::default()
    };
    let (first_day, days) = (sandbox_config.start_date, sandbox_config.days);
    let sandbox = Sandbox::start(sandbox_config)
        .await
        .context("cannot start the sandbox")?;

    // The receiver: verifier without keys (the subscription adds the webhook's key), store.
    let location = match &args.store {
        Some(location) => location.clone(),
        None => StoreLocation::Sqlite(temp_store()?),
    };
    let store = location.open(None).await?;
    if store.summary().await?.change_log > 0 {
        anyhow::bail!(
            "the store {location} is not empty, and the demo compares it with a fresh sandbox: give a new file, or a new database or schema (postgres://…?schema=demo2)"
        );
    }
    let verifier = Verifier::without_keys(SignatureScheme::default())?;
    let latencies = Latencies::default();
    let timing = latencies.clone();
    let app = crate::receive::receiver_app(
        "/protime/clockings",
        verifier.clone(),
        protime_webhooks::receiver::ReceiverConfig::default(),
        store.sink(),
    )?
    .layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let timing = timing.clone();
            async move {
                let began = Instant::now();
                let response = next.run(request).await;
                if response.status().is_success() {
                    timing.record(began.elapsed());
                }
                response
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1")?;
    let receiver_url = format!("http://{}/protime/clockings", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // Subscribe like a real integration: webhook first, then the full initial sync.
    let credentials = sandbox.client_credentials();
    let client = ProtimeClient::builder()
        .base_url(sandbox.base_url())
        .token_url(sandbox.token_url())
        .client_credentials(
            credentials.client_id.clone(),
            ClientSecret::new(credentials.client_secret.clone()),
            ProtimeClient::WEBHOOK_SCOPES,
        )
        .user_agent("ProtimeDemo/0.1 (protime)")
        .retry_policy(
            RetryPolicy::default()
                .with_backoff(Duration::from_millis(20), Duration::from_millis(500)),
        )
        .allow_insecure_destinations(true) // loopback only
        .build()?;
    let subscription = Subscription::new(client, &receiver_url, verifier);
    let last_day = first_day + chrono::Days::new(u64::from(days) + 1);
    let filter = ClockingsFilter::between(first_day - chrono::Days::new(1), last_day)?;
    let report = subscription.reinitialize(&filter, &store).await?;
    println!(
        "subscribed: webhook {} (key {}), initial sync loaded {} clockings",
        report.state.webhook_id, report.state.key_fingerprint, report.synced
    );

    // A stream of changes, delivered signed, with duplicates and reordering.
    let progress = indicatif::ProgressBar::new(args.changes as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg:<12} [{bar:40}] {pos}/{len} deliveries acknowledged",
        )
        .map_err(|e| anyhow::anyhow!("progress template: {e}"))?
        .progress_chars("=> "),
    );
    progress.set_message("delivering");
    let mut generated = 0;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    while generated < args.changes {
        let chunk = (args.changes - generated).min(50);
        generated += sandbox.generate(chunk).len();
        progress.set_position(sandbox.stats().delivered.min(args.changes as u64));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    loop {
        let stats = sandbox.stats();
        progress.set_position(stats.delivered.min(args.changes as u64));
        if stats.pending_deliveries == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let idle = sandbox.wait_idle(Duration::from_millis(200)).await;
    progress.finish_and_clear();

    // Compare the receiver's store with the sandbox's own state.
    let sandbox_clockings = sandbox
        .current_clockings()
        .into_iter()
        .map(protime_client::convert::clocking_from_raw)
        .collect::<Result<Vec<_>, _>>()
        .context("the sandbox produced a clocking that fails validation")?;
    let stored = store.clockings().await?;
    let differences = differences(&stored, &sandbox_clockings);
    let stats = sandbox.stats();
    let store_stats = store.summary().await?;
    let (measured, p50, p99) = latencies.percentiles();
    server.abort();
    sandbox.shutdown().await;

    println!();
    println!(
        "protime demo summary ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("  changes generated            {generated}");
    println!(
        "  deliveries acknowledged      {} (+{} duplicate deliveries)",
        stats.delivered, stats.duplicates_sent
    );
    println!(
        "  deliveries retried / failed  {} / {}",
        stats.retried, stats.failed
    );
    println!("  change log entries           {}", store_stats.change_log);
    println!(
        "  applied / duplicates / stale {} / {} / {}",
        store_stats.applied, store_stats.duplicates, store_stats.stale
    );
    println!(
        "  dead letters                 {}",
        store_stats.dead_letters
    );
    println!(
        "  receiver latency p50 / p99   {} / {} over {measured} deliveries (request in → committed → 2xx)",
        millis(p50),
        millis(p99)
    );
    println!("  clockings in store           {}", stored.len());
    println!("  clockings in sandbox         {}", sandbox_clockings.len());
    println!("  store                        {location}");
    if !idle {
        println!(
            "  NOT ALL DELIVERIES FINISHED within {} s",
            args.timeout_seconds
        );
    }
    if differences.is_empty() && idle && stats.failed == 0 {
        println!("  result                       store == sandbox ✔");
        Ok(Outcome::Success)
    } else {
        println!(
            "  result                       store != sandbox ✘ ({} differences)",
            differences.len()
        );
        for difference in differences.iter().take(20) {
            println!("    {difference}");
        }
        Ok(Outcome::Negative)
    }
}
