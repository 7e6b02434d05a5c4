//! Two replicas of one `protime serve` share a PostgreSQL store behind one destination (a
//! load balancer in the test alternates deliveries between them). Exactly one holds the
//! renewal lease and renews; the other verifies with each new key within seconds and shows
//! the holder in `/readyz`. The holder is SIGKILLed during a renewal: the other takes the
//! lease over and renews, and at the end no acknowledged delivery is lost, exactly one
//! webhook is enabled, its key is kept, and the store equals the sandbox.
//! Needs PostgreSQL (DATABASE_URL or PG*); skipped loudly without one, unless
//! PROTIME_REQUIRE_POSTGRES=1 (as in CI).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use protime_raw::types::WebhookStatus;
use protime_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use protime_store_postgres::PgStore;
use protime_store_postgres::testing::TestDatabase;

mod common;
use common::{Running, free_port, terminate};

/// A load balancer: each delivery goes to the next replica, or to the other one when the
/// next one does not accept connections. Remembers what was acknowledged as applied.
struct Balancer {
    replicas: [u16; 2],
    next: AtomicUsize,
    http: reqwest::Client,
    /// (clocking id, change version) of every delivery a replica answered `applied`.
    applied: Mutex<Vec<(i64, String)>>,
    refused: AtomicUsize,
}

async fn balance(
    State(balancer): State<Arc<Balancer>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let first = balancer.next.fetch_add(1, Ordering::Relaxed);
    for attempt in 0..2 {
        let port = balancer.replicas[(first + attempt) % 2];
        let mut request = balancer
            .http
            .post(format!("http://127.0.0.1:{port}/"))
            .body(body.clone());
        for (name, value) in &headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        let Ok(response) = request.send().await else {
            continue;
        };
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() && text.contains(r#""applied""#) {
            let change: serde_json::Value = serde_json::from_slice(&body).unwrap();
            balancer.applied.lock().unwrap().push((
                change["data"]["id"].as_i64().unwrap(),
                change["data"]["changeVersion"].as_str().unwrap().to_owned(),
            ));
        }
        if status == StatusCode::UNAUTHORIZED {
            balancer.refused.fetch_add(1, Ordering::Relaxed);
        }
        return (status, text);
    }
    (StatusCode::BAD_GATEWAY, "no replica answers".into())
}

struct Replica {
    child: Running,
    lines: mpsc::Receiver<String>,
    admin: u16,
}

impl Replica {
    fn start(
        name: &str,
        sandbox: &RunningSandbox,
        store: &str,
        destination: &str,
        port: u16,
    ) -> Self {
        let credentials = sandbox.client_credentials();
        let admin = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_protime"))
            .args(["serve", "--quiet", "--port", &port.to_string()])
            .args([
                "--destination",
                destination,
                "--allow-insecure-destinations",
            ])
            .args(["--store", store, "--replica-name", name])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .args(["--from", "2026-01-01", "--to", "2026-12-31"])
            .args(["--lead-time-seconds", "3", "--check-seconds", "1"])
            .args(["--follow-interval-ms", "200"])
            .env("PROTIME_BASE_URL", sandbox.base_url())
            .env("PROTIME_TOKEN_URL", sandbox.token_url())
            .env("PROTIME_CLIENT_ID", &credentials.client_id)
            .env("PROTIME_CLIENT_SECRET", &credentials.client_secret)
            .env("PROTIME_USER_AGENT", "ReplicaTest/1.0 (protime)")
            .env_remove("PROTIME_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = common::stderr_lines(&mut child);
        Self {
            child: Running(child),
            lines,
            admin,
        }
    }

    /// Waits for a line containing `text`; returns it.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        common::wait_for_line(&self.lines, text, limit)
            .pop()
            .unwrap_or_default()
    }

    async fn readiness(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/readyz", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until `/readyz` contains `text`.
    async fn wait_ready_with(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let report = self.readiness().await;
            if report.contains(text) {
                return report;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz never said {text:?}; last:\n{report}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The word after `marker` in `line`.
fn word_after<'a>(line: &'a str, marker: &str) -> &'a str {
    line.split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {marker:?} in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_subscription_and_survive_the_lease_holder_killed_mid_renewal() {
    let Some(database) = TestDatabase::create("servereplicas").await else {
        return;
    };
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 80,
        days: 20,
        webhook_validity: Duration::from_secs(7),
        retry_schedule: vec![
            Duration::from_millis(100),
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(2),
        ],
        ..SandboxConfig::default()
    })
    .await
    .unwrap();

    let (port_a, port_b) = (free_port(), free_port());
    let balancer = Arc::new(Balancer {
        replicas: [port_a, port_b],
        next: AtomicUsize::new(0),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        applied: Mutex::new(Vec::new()),
        refused: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let destination = format!("http://{}/", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(balance)
        .with_state(Arc::clone(&balancer));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let store = database.url();

    // The first replica subscribes and holds the lease; the second follows it.
    let a = Replica::start("replica-a", &sandbox, &store, &destination, port_a);
    a.wait_for("holds the renewal lease", Duration::from_secs(20));
    a.wait_for("subscribed:", Duration::from_secs(30));
    let b = Replica::start("replica-b", &sandbox, &store, &destination, port_b);
    b.wait_for(
        "serving Protime clockings webhooks",
        Duration::from_secs(20),
    );
    let report = b
        .wait_ready_with("renewal lease held by replica-a", Duration::from_secs(10))
        .await;
    assert!(report.contains("following"), "{report}");
    a.wait_ready_with(
        "renewal lease held by this replica (replica-a)",
        Duration::from_secs(10),
    )
    .await;

    // Changes all along.
    let (stop_generating, generator) = common::changes_all_along(sandbox.sandbox());

    // A renewal by the holder: the follower verifies with the new key within seconds.
    let kept = a.wait_for("is kept", Duration::from_secs(30));
    let kept_at = Instant::now();
    let fingerprint = word_after(&kept, "its key ").to_owned();
    b.wait_for(
        &format!("verifying with key {fingerprint}"),
        Duration::from_secs(5),
    );
    let delay = kept_at.elapsed();
    assert!(
        delay < Duration::from_secs(3),
        "the follower took {delay:?}"
    );
    a.wait_for("subscribed:", Duration::from_secs(30));

    // The holder is killed in the middle of its next renewal.
    a.wait_for("renewing the subscription", Duration::from_secs(30));
    let mut killed = a.child;
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();

    // The follower takes the lease over, and renews (again).
    b.wait_for("holds the renewal lease", Duration::from_secs(15));
    b.wait_for("subscribed:", Duration::from_secs(30));
    b.wait_ready_with(
        "renewal lease held by this replica (replica-b)",
        Duration::from_secs(10),
    )
    .await;
    b.wait_for("subscribed:", Duration::from_secs(30));

    // Quiet down; one more renewal so that anything Protime gave up on is synced.
    stop_generating.send(true).unwrap();
    let made = generator.await.unwrap();
    assert!(made > 100, "only {made} changes generated");
    assert!(
        sandbox.wait_idle(Duration::from_secs(20)).await,
        "deliveries still pending"
    );
    b.wait_for("subscribed:", Duration::from_secs(30));
    assert!(sandbox.wait_idle(Duration::from_secs(20)).await);
    let mut b = b;
    let status = terminate(&mut b.child, Duration::from_secs(25));
    assert!(status.success(), "{status}");

    // Exactly one enabled webhook: the current one, whose key the store keeps.
    let reader = PgStore::connect(&store).await.unwrap();
    let current = reader.current_webhook().await.unwrap().unwrap();
    let enabled: Vec<String> = sandbox
        .webhooks()
        .into_iter()
        .filter(|w| w.status == WebhookStatus::Enabled)
        .map(|w| w.id.to_string())
        .collect();
    assert_eq!(enabled, std::slice::from_ref(&current.webhook_id));
    let kept: Vec<String> = reader
        .webhook_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.fingerprint())
        .collect();
    assert!(kept.contains(&current.key_fingerprint), "{kept:?}");

    // No delivery acknowledged as applied is missing from the change log.
    let session = database.session().await.unwrap();
    let logged: BTreeSet<(i64, String)> = session
        .query(
            "SELECT clocking_id, change_version FROM change_log WHERE outcome = 'applied'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let applied = balancer.applied.lock().unwrap().clone();
    assert!(
        applied.len() > 50,
        "only {} deliveries applied",
        applied.len()
    );
    let lost: Vec<&(i64, String)> = applied.iter().filter(|a| !logged.contains(a)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged deliveries lost: {lost:?}",
        lost.len()
    );

    // The store equals the sandbox.
    let expected: BTreeMap<i64, String> = sandbox
        .current_clockings()
        .into_iter()
        .map(|c| {
            let c = protime_client::convert::clocking_from_raw(c).unwrap();
            (c.id.get(), c.change_version.as_str().to_owned())
        })
        .collect();
    let stored: BTreeMap<i64, String> = reader
        .clockings()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id.get(), c.change_version.as_str().to_owned()))
        .collect();
    assert_eq!(
        stored.len(),
        expected.len(),
        "store and sandbox hold different numbers of clockings"
    );
    assert!(stored == expected, "store != sandbox");
    eprintln!(
        "{} deliveries applied through the balancer, {} refused for their signature",
        applied.len(),
        balancer.refused.load(Ordering::Relaxed)
    );
    reader.close().await;
    sandbox.shutdown().await;
    database.cleanup().await;
}
