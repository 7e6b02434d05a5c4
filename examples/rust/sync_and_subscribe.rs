//! A subscription in code: the webhook first, then the initial sync, then live deliveries —
//! against the Protime sandbox started in this process (the same calls work against a real
//! tenant: build the client with `.tenant("acme", Environment::Production)` instead of the
//! two URLs, and give an HTTPS destination).
//!
//! ```sh
//! cargo run -p protime-examples --example sync_and_subscribe
//! ```
//!
//! Everything listens on 127.0.0.1; the store is a fresh SQLite file in the temporary
//! directory, removed at the end. It exits non-zero if the store and the sandbox disagree.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use protime_client::{ClientSecret, ClockingsFilter, ProtimeClient, RetryPolicy};
use protime_sandbox::{Sandbox, SandboxConfig};
use protime_store_sqlite::SqliteStore;
use protime_webhooks::receiver::{ReceiverConfig, router};
use protime_webhooks::subscription::Subscription;
use protime_webhooks::{SignatureScheme, Verifier};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Protime: a small seeded tenant on a free loopback port.
    let sandbox = Sandbox::start(SandboxConfig {
        people: 5,
        days: 7,
        ..SandboxConfig::default()
    })
    .await?;
    let (first_day, days) = (sandbox.config().start_date, sandbox.config().days);

    // Your service: a receiver with an SQLite store. The verifier starts without keys; the
    // subscription adds each new webhook's key.
    let directory = std::env::temp_dir().join(format!("protime-example-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let store = SqliteStore::open(directory.join("clockings.sqlite"))?;
    let verifier = Verifier::without_keys(SignatureScheme::default())?;
    let app = axum::Router::new().nest(
        "/protime/clockings",
        router(
            verifier.clone(),
            ReceiverConfig::default(),
            Arc::new(store.clone()),
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let destination = format!("http://{}/protime/clockings", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // The client, with the sandbox's credentials.
    let credentials = sandbox.client_credentials();
    let client = ProtimeClient::builder()
        .base_url(sandbox.base_url())
        .token_url(sandbox.token_url())
        .client_credentials(
            credentials.client_id.clone(),
            ClientSecret::new(credentials.client_secret.clone()),
            ProtimeClient::WEBHOOK_SCOPES,
        )
        .user_agent("ProtimeExample/0.1 (protime)") // mandatory: Service/Version (Company)
        .retry_policy(
            RetryPolicy::default()
                .with_backoff(Duration::from_millis(20), Duration::from_millis(500)),
        )
        .allow_insecure_destinations(true) // an http:// destination: loopback only
        .build()?;

    // Subscribe: webhook first (its key joins the verifier), then the full sync, so nothing
    // that changes during the sync is lost.
    let subscription = Subscription::new(client, &destination, verifier);
    let filter = ClockingsFilter::between(
        first_day - chrono::Days::new(1),
        first_day + chrono::Days::new(u64::from(days) + 1),
    )?;
    let report = subscription.reinitialize(&filter, &store).await?;
    println!(
        "subscribed: webhook {} valid until {}; initial sync: {} clockings read, {} applied",
        report.state.webhook_id, report.state.valid_until, report.synced, report.applied
    );
    println!(
        "needs reinitialization now: {}",
        subscription.needs_reinitialization().await?
    );

    // Protime changes clockings; each change arrives as a signed POST.
    let changes = sandbox.generate(50);
    let idle = sandbox.wait_idle(Duration::from_secs(20)).await;
    let stats = store.stats()?;
    println!(
        "{} changes made, {} deliveries acknowledged; store: {} clockings, {} applied, {} duplicates, {} stale",
        changes.len(),
        sandbox.stats().delivered,
        stats.clockings,
        stats.applied,
        stats.duplicates,
        stats.stale
    );

    // The store now holds what the sandbox holds: the same ids at the same versions.
    let expected: BTreeMap<String, String> = sandbox
        .current_clockings()
        .into_iter()
        .map(|c| (c.id.to_string(), c.change_version.unwrap_or_default()))
        .collect();
    let stored: BTreeMap<String, String> = store
        .clockings()?
        .into_iter()
        .map(|c| (c.id.to_string(), c.change_version.to_string()))
        .collect();
    server.abort();
    sandbox.shutdown().await;
    tokio::task::spawn_blocking(move || store.close()).await??;
    std::fs::remove_dir_all(&directory)?;
    if idle && stored == expected {
        println!("store == sandbox: {} clockings", stored.len());
        Ok(())
    } else {
        Err(format!(
            "store has {} clockings, sandbox {} (same: {}; deliveries settled: {idle})",
            stored.len(),
            expected.len(),
            stored == expected
        )
        .into())
    }
}
