//! Webhook deliveries to a real receiver on loopback (`protime_webhooks::receiver::router`):
//! signatures verify, the receiver converges on the sandbox's state, retries, disabling,
//! duplicates, reordering, deletion and expiry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use common::{Api, WEBHOOKS, q};
use protime_model::parse_delivery;
use protime_sandbox::{ReorderConfig, RunningSandbox, Sandbox, SandboxConfig};
use protime_webhooks::InMemorySink;
use protime_webhooks::receiver::{ReceiverConfig, router};
use protime_webhooks::signature::{SignatureScheme, Verifier, WebhookKey};
use serde_json::{Value, json};

/// No seeded clockings: everything the receiver holds came through deliveries.
fn empty_config() -> SandboxConfig {
    SandboxConfig {
        people: 5,
        days: 0,
        retry_schedule: vec![
            Duration::from_millis(50),
            Duration::from_millis(100),
            Duration::from_millis(200),
        ],
        ..SandboxConfig::default()
    }
}

struct Receiver {
    sink: InMemorySink,
    webhook_id: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn create_webhook(api: &Api, destination: &str, query: &str) -> Value {
    let answer = api
        .post(
            &format!("{WEBHOOKS}{query}"),
            &json!({"destinationUrl": destination, "collectionName": "clockings"}),
        )
        .await;
    assert_eq!(
        answer.status,
        reqwest::StatusCode::CREATED,
        "{}",
        answer.text
    );
    answer.json()
}

/// A verifying receiver with an in-memory sink, subscribed through the API.
async fn receiver(api: &Api, query: &str, scheme: SignatureScheme) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let created = create_webhook(api, &format!("http://{address}/"), query).await;
    let key = WebhookKey::new(created["key"].as_str().unwrap()).unwrap();
    let verifier = Verifier::new(scheme, [key]).unwrap();
    let sink = InMemorySink::recording();
    let app = router(verifier, ReceiverConfig::default(), Arc::new(sink.clone()));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver {
        sink,
        webhook_id: created["id"].as_str().unwrap().to_owned(),
        server,
    }
}

/// The receiver's current state and the sandbox's, as JSON by id.
fn states(
    sandbox: &RunningSandbox,
    sink: &InMemorySink,
) -> (BTreeMap<u64, Value>, BTreeMap<u64, Value>) {
    let received = sink
        .tracker()
        .current()
        .map(|c| (c.id.get().unsigned_abs(), serde_json::to_value(c).unwrap()))
        .collect();
    let expected = sandbox
        .current_clockings()
        .into_iter()
        .map(|c| (c.id.get(), serde_json::to_value(&c).unwrap()))
        .collect();
    (received, expected)
}

#[tokio::test]
async fn deliveries_verify_and_the_receiver_converges() {
    let sandbox = Sandbox::start(empty_config()).await.unwrap();
    let api = Api::authorized(&sandbox).await;
    let receiver = receiver(&api, "", SignatureScheme::default()).await;

    let mut generated = 0;
    for _ in 0..5 {
        generated += sandbox.generate(40).len();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sandbox.wait_idle(Duration::from_secs(10)).await);
    let stats = sandbox.stats();
    assert_eq!(stats.delivered, generated as u64, "{stats:?}");
    assert_eq!(
        (stats.failed, stats.retried, stats.dropped),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(receiver.sink.dead_letters().is_empty());
    assert_eq!(receiver.sink.change_log().len(), generated);

    let (received, expected) = states(&sandbox, &receiver.sink);
    assert!(expected.len() > 20, "{}", expected.len());
    assert_eq!(received, expected);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_custom_signature_scheme_is_used() {
    let scheme = SignatureScheme::default().with_timestamp(
        SignatureScheme::DEFAULT_TIMESTAMP_HEADER,
        SignatureScheme::DEFAULT_TOLERANCE,
    );
    let sandbox = Sandbox::start(SandboxConfig {
        signature_scheme: scheme.clone(),
        ..empty_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let receiver = receiver(&api, "", scheme).await;
    let n = sandbox.generate(10).len();
    assert!(sandbox.wait_idle(Duration::from_secs(5)).await);
    assert_eq!(sandbox.stats().delivered, n as u64);
    assert_eq!(receiver.sink.change_log().len(), n);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn external_references_requested_at_creation_are_delivered() {
    let sandbox = Sandbox::start(empty_config()).await.unwrap();
    let api = Api::authorized(&sandbox).await;
    let receiver = receiver(
        &api,
        &format!(
            "?externalReferences={}",
            q("(people,@badge-number)(activity-definitions,@data-entry-code)")
        ),
        SignatureScheme::default(),
    )
    .await;
    sandbox.generate(40);
    assert!(sandbox.wait_idle(Duration::from_secs(5)).await);
    let mut with_refs = 0;
    for change in receiver.sink.change_log() {
        if let protime_model::ClockingChange::InsertOrUpdate(c) = change {
            let refs = c
                .person
                .as_ref()
                .unwrap()
                .external_references
                .as_ref()
                .unwrap();
            assert!(refs.contains_key("@badge-number"));
            if let Some(protime_model::ClockingKind::Activity { levels }) = &c.kind {
                for level in levels {
                    let refs = level
                        .activity_definition
                        .external_references
                        .as_ref()
                        .unwrap();
                    assert!(refs["@data-entry-code"].starts_with('P'));
                }
            }
            with_refs += 1;
        }
    }
    assert!(with_refs > 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn duplicates_and_reordering_do_not_break_convergence() {
    let sandbox = Sandbox::start(SandboxConfig {
        duplicate_probability: 0.5,
        reorder: Some(ReorderConfig {
            batch: 5,
            max_hold: Duration::from_millis(20),
        }),
        max_concurrent_deliveries: 1,
        ..empty_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let receiver = receiver(&api, "", SignatureScheme::default()).await;
    let generated = sandbox.generate(80).len();
    assert!(sandbox.wait_idle(Duration::from_secs(10)).await);

    let stats = sandbox.stats();
    assert_eq!(stats.delivered, generated as u64);
    assert!(stats.duplicates_sent > 10, "{stats:?}");
    let log = receiver.sink.change_log();
    assert_eq!(log.len() as u64, stats.delivered + stats.duplicates_sent);
    // Arrival order is not change-version order.
    let versions: Vec<String> = log
        .iter()
        .map(|c| c.change_version().as_str().to_owned())
        .collect();
    assert!(
        versions.windows(2).any(|w| w[0] >= w[1]),
        "arrived in order"
    );

    let (received, expected) = states(&sandbox, &receiver.sink);
    assert_eq!(received, expected);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn lost_deliveries_are_never_sent_and_leave_the_webhook_enabled() {
    let sandbox = Sandbox::start(SandboxConfig {
        lose_probability: 0.3,
        ..empty_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let receiver = receiver(&api, "", SignatureScheme::default()).await;
    let generated = sandbox.generate(100).len() as u64;
    assert!(sandbox.wait_idle(Duration::from_secs(10)).await);

    let stats = sandbox.stats();
    assert!(stats.lost > 10 && stats.lost < 60, "{stats:?}");
    assert_eq!(stats.delivered + stats.lost, generated, "{stats:?}");
    assert_eq!(stats.retried + stats.failed, 0, "{stats:?}");
    assert_eq!(receiver.sink.change_log().len() as u64, stats.delivered);
    // Nothing tells the receiver: the webhook stays enabled.
    let webhook = api
        .get(&format!("{WEBHOOKS}/{}", receiver.webhook_id))
        .await
        .json();
    assert_eq!(webhook["status"], "Enabled", "{webhook}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn reordering_alone_shuffles_batches() {
    let sandbox = Sandbox::start(SandboxConfig {
        reorder: Some(ReorderConfig::default()),
        max_concurrent_deliveries: 1,
        ..empty_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let receiver = receiver(&api, "", SignatureScheme::default()).await;
    sandbox.generate(40);
    assert!(sandbox.wait_idle(Duration::from_secs(5)).await);
    let versions: Vec<String> = receiver
        .sink
        .change_log()
        .iter()
        .map(|c| c.change_version().as_str().to_owned())
        .collect();
    assert_eq!(versions.len(), 40);
    assert!(versions.windows(2).any(|w| w[0] > w[1]), "not reordered");
    assert_eq!(sandbox.stats().duplicates_sent, 0);
    sandbox.shutdown().await;
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn retries_then_disable_when_the_destination_is_down() {
    let sandbox = Sandbox::start(empty_config()).await.unwrap();
    let api = Api::authorized(&sandbox).await;
    let down = closed_port().await;
    let webhook = create_webhook(&api, &format!("http://{down}/hooks"), "").await;
    let id = webhook["id"].as_str().unwrap();

    let started = std::time::Instant::now();
    sandbox.generate(3);
    assert!(sandbox.wait_idle(Duration::from_secs(5)).await);
    // 50 + 100 + 200 ms of retries before giving up.
    assert!(
        started.elapsed() >= Duration::from_millis(340),
        "{:?}",
        started.elapsed()
    );
    let stats = sandbox.stats();
    assert_eq!(stats.delivered, 0);
    assert_eq!(stats.webhooks_disabled, 1, "{stats:?}");
    assert!(stats.failed >= 1, "{stats:?}");
    assert!(stats.retried >= 3, "{stats:?}");
    // Each of the three deliveries either ran out of retries or was dropped once disabled.
    assert_eq!(stats.failed + stats.dropped, 3, "{stats:?}");

    let got = api.get(&format!("{WEBHOOKS}/{id}")).await.json();
    assert_eq!(got["status"], "Disabled");
    // Disabled is final: nothing more is queued.
    sandbox.generate(5);
    assert_eq!(sandbox.stats().pending_deliveries, 0);
    assert!(sandbox.wait_idle(Duration::from_millis(100)).await);
    assert_eq!(sandbox.stats().failed + sandbox.stats().dropped, 3);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn failures_within_the_schedule_are_retried_until_delivered() {
    let sandbox = Sandbox::start(empty_config()).await.unwrap();
    let api = Api::authorized(&sandbox).await;
    // A destination that answers 503 twice, then 200; it checks each body on the way.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let app = axum::Router::new().route(
        "/flaky",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                assert_eq!(headers["content-type"], "application/json");
                assert!(headers.contains_key("x-protime-signature"));
                parse_delivery(&body).unwrap();
                if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                    AxumStatus::SERVICE_UNAVAILABLE
                } else {
                    AxumStatus::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    create_webhook(&api, &format!("http://{address}/flaky"), "").await;

    sandbox.generate(1);
    assert!(sandbox.wait_idle(Duration::from_secs(5)).await);
    let stats = sandbox.stats();
    assert_eq!(
        (stats.delivered, stats.retried, stats.failed),
        (1, 2, 0),
        "{stats:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(stats.webhooks_disabled, 0);
    server.abort();
    sandbox.shutdown().await;
}

#[tokio::test]
async fn deleted_and_expired_webhooks_get_no_deliveries() {
    let sandbox = Sandbox::start(empty_config()).await.unwrap();
    let api = Api::authorized(&sandbox).await;
    let deleted = receiver(&api, "", SignatureScheme::default()).await;
    let expired = receiver(&api, "", SignatureScheme::default()).await;
    let live = receiver(&api, "", SignatureScheme::default()).await;

    let answer = api
        .delete(&format!("{WEBHOOKS}/{}", deleted.webhook_id))
        .await;
    assert_eq!(answer.status, reqwest::StatusCode::NO_CONTENT);
    assert!(sandbox.expire_webhook(&expired.webhook_id));

    let n = sandbox.generate(10).len();
    assert!(sandbox.wait_idle(Duration::from_secs(5)).await);
    assert!(deleted.sink.change_log().is_empty());
    assert!(expired.sink.change_log().is_empty());
    assert_eq!(live.sink.change_log().len(), n);
    assert_eq!(sandbox.stats().delivered, n as u64);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_background_generator_delivers() {
    let sandbox = Sandbox::start(SandboxConfig {
        generate_every: Some(Duration::from_millis(20)),
        ..empty_config()
    })
    .await
    .unwrap();
    let api = Api::authorized(&sandbox).await;
    let receiver = receiver(&api, "", SignatureScheme::default()).await;
    let before = sandbox.change_version();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while receiver.sink.change_log().len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the generator delivered nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sandbox.change_version() > before);
    sandbox.shutdown().await;
}
