//! `protime serve` alerts a local endpoint once per incident, each alert signed: dead
//! letters above the threshold, a spike of signature failures, a webhook Protime reports
//! disabled, a webhook about to lapse, a renewal that keeps failing (a subscription with a
//! wrong secret), and changes that only reconciliation brought. Each alert is also counted
//! in `/metrics`. Once with SQLite stores, once with the alerting subscription on PostgreSQL
//! (which needs a server: DATABASE_URL or PG*, skipped loudly without one unless
//! PROTIME_REQUIRE_POSTGRES=1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac as _};
use protime_raw::types::WebhookStatus;
use protime_sandbox::{RunningSandbox, Sandbox, SandboxConfig, TriggerAction, TriggerRequest};
use protime_store_postgres::testing::TestDatabase;
use sha2::Sha256;

mod common;
use common::{Running, free_port, terminate};

const SECRET: &str = "alert-secret";

/// One alert as received: the timestamp and signature headers, and the body.
type Alert = (Option<String>, Option<String>, String);

/// The alerts received so far.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Alert>>>);

impl Received {
    fn of_kind(&self, subscription: &str, kind: &str) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, body)| serde_json::from_str::<serde_json::Value>(body).unwrap())
            .filter(|alert| alert["kind"] == kind && alert["subscription"] == subscription)
            .collect()
    }

    async fn wait_for(&self, subscription: &str, kind: &str, limit: Duration) {
        let started = Instant::now();
        while self.of_kind(subscription, kind).is_empty() {
            assert!(
                started.elapsed() < limit,
                "no {kind} alert for {subscription} within {limit:?}; received: {:?}",
                self.0.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A local endpoint that keeps every alert POSTed to `/alerts`.
async fn endpoint() -> (String, Received) {
    let received = Received::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                kept.0.lock().unwrap().push((
                    header("x-protime-alert-timestamp"),
                    header("x-protime-alert-signature"),
                    body,
                ));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/alerts"), received)
}

/// The configuration: two subscriptions, "good" with its store at `good_store` (an SQLite
/// file, or a PostgreSQL URL, which keeps its state itself) and "bad" on SQLite.
fn config_file(
    dir: &Path,
    sandbox: &RunningSandbox,
    port: u16,
    alerts: &str,
    good_store: Option<&str>,
) -> PathBuf {
    let mut text = format!(
        r#"port = {port}

[alerts]
url = "{alerts}"
secret_env = "ALERT_TEST_SECRET"
dead_letters_above = 1
signature_failures_above = 5
signature_window_seconds = 60
# Longer than the sandbox's 30-day validity: every webhook counts as about to lapse.
expiring_seconds = 2700000
"#
    );
    for name in ["good", "bad"] {
        let store = match (name, good_store) {
            ("good", Some(url)) => format!("store = \"{url}\"\n"),
            _ => format!(
                "store = \"sqlite:{}\"\nstate_dir = \"{}\"\n",
                dir.join(format!("{name}.sqlite")).display(),
                dir.join(format!("state-{name}")).display()
            ),
        };
        let reconcile = if name == "good" {
            "reconcile = true\nreconcile_interval_seconds = 2\nreconcile_grace_seconds = 0\n"
        } else {
            ""
        };
        text.push_str(&format!(
            r#"
[[subscription]]
name = "{name}"
base_url = "{base}"
token_url = "{token}"
client_id = "{client}"
client_secret_env = "ALERT_TEST_{upper}_SECRET"
user_agent = "AlertTest/1.0 (protime)"
destination = "http://127.0.0.1:{port}/{name}"
path = "/{name}"
{store}from = 2026-01-01
to = 2026-12-31
check_seconds = 1
lead_time_seconds = 3
allow_insecure_destinations = true
{reconcile}"#,
            base = sandbox.base_url(),
            token = sandbox.token_url(),
            client = sandbox.client_credentials().client_id,
            upper = name.to_uppercase(),
        ));
    }
    let path = dir.join("protime.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_incident_alerts_once_signed() {
    let dir = common::temp_dir("alerts");
    every_incident_alerts_once(&dir, None).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_incident_alerts_once_signed_on_postgres() {
    let Some(database) = TestDatabase::create("alertspg").await else {
        return;
    };
    let dir = common::temp_dir("alerts-pg");
    every_incident_alerts_once(&dir, Some(&database.url())).await;
    let _ = std::fs::remove_dir_all(&dir);
    database.cleanup().await;
}

async fn every_incident_alerts_once(dir: &Path, good_store: Option<&str>) {
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 20,
        lose_probability: 0.3,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let (url, received) = endpoint().await;
    let (port, admin) = (free_port(), free_port());
    let config = config_file(dir, &sandbox, port, &url, good_store);
    let mut command = Command::new(env!("CARGO_BIN_EXE_protime"));
    let mut child = command
        .args(["serve", "--quiet", "--config"])
        .arg(&config)
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .env(
            "ALERT_TEST_GOOD_SECRET",
            &sandbox.client_credentials().client_secret,
        )
        .env("ALERT_TEST_BAD_SECRET", "not-the-secret")
        .env("ALERT_TEST_SECRET", SECRET)
        .env_remove("PROTIME_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::stderr_lines(&mut child);
    let mut serve = Running(child);
    common::wait_for_line(&lines, "[good] subscribed:", Duration::from_secs(30));
    let limit = Duration::from_secs(15);

    // A renewal that keeps failing (a wrong secret): one alert, however many attempts.
    received.wait_for("bad", "renewal_failed", limit).await;

    // Dead letters above 1: one alert, and no second one while more arrive (10 sent, since
    // 30 % of the deliveries are lost).
    let invalid = TriggerRequest::new(TriggerAction::Invalid);
    for _ in 0..10 {
        sandbox.sandbox().trigger(&invalid).unwrap();
    }
    received.wait_for("good", "dead_letters", limit).await;
    for _ in 0..2 {
        sandbox.sandbox().trigger(&invalid).unwrap();
    }

    // More than 5 deliveries failing the signature check within a minute: one alert.
    let http = reqwest::Client::new();
    let unsigned = || async {
        for _ in 0..8 {
            let answer = http
                .post(format!("http://127.0.0.1:{port}/good"))
                .header("content-type", "application/json")
                .body(r#"{"changeType":"Delete","data":{"changeVersion":"0A","id":1}}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 401);
        }
    };
    unsigned().await;
    received.wait_for("good", "signature_failures", limit).await;
    unsigned().await;

    // Changes whose deliveries were lost and that reconciliation brought.
    sandbox.generate(40);
    assert!(sandbox.wait_idle(Duration::from_secs(20)).await);
    assert!(sandbox.stats().lost > 0);
    received.wait_for("good", "missed_changes", limit).await;

    // Protime reports the webhook disabled: one alert, then a renewal.
    let enabled = |sandbox: &RunningSandbox| {
        sandbox
            .sandbox()
            .webhooks()
            .into_iter()
            .filter(|w| w.status == WebhookStatus::Enabled)
            .map(|w| w.id.to_string())
            .collect::<Vec<_>>()
    };
    let current = enabled(&sandbox);
    assert_eq!(current.len(), 1, "{current:?}");
    sandbox.sandbox().expire_webhook(&current[0]);
    received.wait_for("good", "webhook_disabled", limit).await;
    common::wait_for_line(&lines, "[good] subscribed:", Duration::from_secs(30));

    // A few more checks: still one alert per incident.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(received.of_kind("bad", "renewal_failed").len(), 1);
    for kind in ["dead_letters", "signature_failures", "webhook_disabled"] {
        assert_eq!(received.of_kind("good", kind).len(), 1, "{kind}");
    }
    // At most one expiry warning per webhook (a renewal ends the incident; the signature
    // failures above also forced one).
    let expiring = received.of_kind("good", "webhook_expiring");
    let webhooks = sandbox
        .sandbox()
        .webhooks()
        .into_iter()
        .filter(|w| w.destination_url.ends_with("/good"))
        .count();
    assert!(
        (1..=webhooks).contains(&expiring.len()),
        "{webhooks} webhooks: {expiring:?}"
    );
    assert!(expiring[0]["details"]["seconds_left"].as_u64().unwrap() > 2_000_000);
    let missed = received.of_kind("good", "missed_changes");
    assert!(!missed.is_empty());
    assert!(
        missed[0]["details"]["recovered"].as_u64().unwrap() >= 1,
        "{missed:?}"
    );
    assert!(
        missed[0]["text"]
            .as_str()
            .unwrap()
            .contains("had not delivered")
    );

    // Every alert is signed: v1=HMAC-SHA256(secret, "<timestamp>.<body>").
    for (timestamp, signature, body) in received.0.lock().unwrap().iter() {
        let timestamp = timestamp.as_deref().expect("no timestamp header");
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.{body}").as_bytes());
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            signature.as_deref(),
            Some(format!("v1={expected}").as_str())
        );
    }

    // Each alert is a metric too.
    let metrics = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"protime_alerts_total{subscription="good",kind="dead_letters"} 1"#),
        "{metrics}"
    );

    let status = terminate(&mut serve, Duration::from_secs(25));
    assert!(status.success(), "{status}");
    sandbox.shutdown().await;
}
