//! End to end over loopback HTTP: signed deliveries posted to the axum receiver end up in
//! SQLite; forged, replayed, truncated, oversized, wrong-content-type and very slow requests
//! each get their documented status, and nothing is written for them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use protime_store_sqlite::SqliteStore;
use protime_webhooks::receiver::{InvalidDeliveryPolicy, ReceiverConfig, router};
use protime_webhooks::signature::{
    FixedClock, SignatureScheme, SignedContent, Verifier, WebhookKey, sign,
};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const KEY: &str = "e2e-webhook-key-0123456789";

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "protime-e2e-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.sqlite")
}

fn body(id: i64, version: &str, minute: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "changeType": "InsertOrUpdate",
        "data": {"changeVersion": version, "id": id, "person": {"id": 1}, "date": "2026-01-15",
                 "timeOfDayInMinutes": minute, "kind": "InOut", "status": "Active"}
    }))
    .unwrap()
}

struct Harness {
    url: String,
    address: std::net::SocketAddr,
    store: SqliteStore,
    scheme: SignatureScheme,
    key: WebhookKey,
    http: reqwest::Client,
}

impl Harness {
    async fn start(
        name: &str,
        scheme: SignatureScheme,
        config: ReceiverConfig,
        clock: Option<i64>,
    ) -> Self {
        let key = WebhookKey::new(KEY).unwrap();
        let mut verifier = Verifier::new(scheme.clone(), [key.clone()]).unwrap();
        if let Some(now) = clock {
            verifier = verifier.with_clock(Arc::new(FixedClock(now)));
        }
        let store = SqliteStore::open(temp_db(name)).unwrap();
        let app = router(verifier, config, Arc::new(store.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{address}/"),
            address,
            store,
            scheme,
            key,
            http: reqwest::Client::new(),
        }
    }

    fn signed(&self, body: &[u8], timestamp: Option<i64>) -> reqwest::header::HeaderMap {
        let mut headers = sign(&self.scheme, &self.key, body, timestamp).unwrap();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers
    }

    async fn post(&self, headers: reqwest::header::HeaderMap, body: Vec<u8>) -> (u16, String) {
        let response = self
            .http
            .post(&self.url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    fn written(&self) -> (u64, usize) {
        (
            self.store.change_log_len().unwrap(),
            self.store.dead_letters().unwrap().len(),
        )
    }
}

#[tokio::test]
async fn signed_deliveries_end_up_in_sqlite_in_change_version_order() {
    let h = Harness::start(
        "ok",
        SignatureScheme::default(),
        ReceiverConfig::default(),
        None,
    )
    .await;
    // Arrive out of order and duplicated: version B is newest for id 7.
    for (version, minute) in [
        ("0000090200004BD0000B", 540),
        ("0000090200004BD0000A", 480),
        ("0000090200004BD0000B", 540),
    ] {
        let b = body(7, version, minute);
        let (status, text) = h.post(h.signed(&b, None), b).await;
        assert_eq!(status, 200, "{text}");
    }
    let b = body(8, "0000090200004BD0000C", 1800);
    assert_eq!(h.post(h.signed(&b, None), b).await.0, 200);

    let clockings = h.store.clockings().unwrap();
    assert_eq!(clockings.len(), 2);
    assert_eq!(clockings[0].id.get(), 7);
    assert_eq!(clockings[0].time_of_day.map(|t| t.get()), Some(540));
    assert_eq!(clockings[0].change_version.as_str(), "0000090200004BD0000B");
    assert_eq!(
        h.written(),
        (4, 0),
        "every authentic delivery is in the change log"
    );
    let stats = h.store.stats().unwrap();
    assert_eq!((stats.applied, stats.duplicates, stats.stale), (2, 1, 1));
}

#[tokio::test]
async fn forged_truncated_oversized_and_wrong_content_type_are_refused_and_not_written() {
    let h = Harness::start(
        "refused",
        SignatureScheme::default(),
        ReceiverConfig::default(),
        None,
    )
    .await;
    let good = body(1, "0000090200004BD0000A", 480);

    // Forged: signed with another key.
    let other = WebhookKey::new("attacker-key").unwrap();
    let mut forged = sign(&h.scheme, &other, &good, None).unwrap();
    forged.insert("content-type", "application/json".parse().unwrap());
    let (status, text) = h.post(forged, good.clone()).await;
    assert_eq!(status, 401);
    assert!(
        !text.contains("signature") && !text.contains(KEY),
        "no detail for a forger: {text}"
    );

    // No signature at all.
    let mut unsigned = reqwest::header::HeaderMap::new();
    unsigned.insert("content-type", "application/json".parse().unwrap());
    assert_eq!(h.post(unsigned, good.clone()).await.0, 401);

    // Truncated: the signature of the full body, half the body.
    let truncated = good[..good.len() / 2].to_vec();
    assert_eq!(h.post(h.signed(&good, None), truncated).await.0, 401);

    // Oversized: over 1 MiB (signed correctly, still refused before anything else).
    let mut huge = good.clone();
    huge.truncate(huge.len() - 1);
    huge.extend(std::iter::repeat_n(b' ', 1024 * 1024));
    huge.push(b'}');
    assert_eq!(h.post(h.signed(&huge, None), huge).await.0, 413);

    // Wrong content type.
    let mut text_plain = h.signed(&good, None);
    text_plain.insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(h.post(text_plain, good.clone()).await.0, 415);

    assert_eq!(
        h.written(),
        (0, 0),
        "nothing may be written for refused requests"
    );
    assert!(h.store.clockings().unwrap().is_empty());

    // The same body, properly signed, is accepted.
    assert_eq!(h.post(h.signed(&good, None), good).await.0, 200);
    assert_eq!(h.written(), (1, 0));
}

#[tokio::test]
async fn replayed_deliveries_are_refused_under_a_timestamp_scheme() {
    let now = 1_764_230_400;
    let scheme = SignatureScheme {
        content: SignedContent::TimestampAndBody {
            timestamp_header: http::HeaderName::from_static("x-protime-timestamp"),
            tolerance: Duration::from_secs(300),
        },
        ..SignatureScheme::default()
    };
    let h = Harness::start("replay", scheme, ReceiverConfig::default(), Some(now)).await;
    let b = body(3, "0000090200004BD0000A", 600);

    // Captured ten minutes ago and replayed now.
    assert_eq!(
        h.post(h.signed(&b, Some(now - 600)), b.clone()).await.0,
        401
    );
    // Claims to come from the future.
    assert_eq!(
        h.post(h.signed(&b, Some(now + 600)), b.clone()).await.0,
        401
    );
    assert_eq!(h.written(), (0, 0));
    // Fresh.
    assert_eq!(h.post(h.signed(&b, Some(now - 10)), b).await.0, 200);
    assert_eq!(h.written(), (1, 0));
}

#[tokio::test]
async fn very_slow_requests_get_408_and_nothing_is_written() {
    let config = ReceiverConfig::default().with_read_timeout(Duration::from_millis(300));
    let h = Harness::start("slow", SignatureScheme::default(), config, None).await;
    let b = body(4, "0000090200004BD0000A", 600);
    let signature = h.signed(&b, None);
    let mut request = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        h.address,
        b.len()
    );
    for (name, value) in &signature {
        if name != "content-type" {
            request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(h.address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(&b[..10]).await.unwrap(); // then stall
    let mut response = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(read.is_ok(), "the receiver must not wait forever");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(h.written(), (0, 0));
}

#[tokio::test]
async fn authentic_invalid_deliveries_are_dead_lettered_or_rejected_by_policy() {
    let h = Harness::start(
        "dead",
        SignatureScheme::default(),
        ReceiverConfig::default(),
        None,
    )
    .await;
    let invalid = body(5, "0000090200004BD0000A", 2881);
    let (status, text) = h.post(h.signed(&invalid, None), invalid.clone()).await;
    assert_eq!(status, 200, "dead-lettered and acknowledged: {text}");
    assert!(text.contains("dead_lettered"));
    let dead = h.store.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].raw_body, invalid);
    assert!(dead[0].errors_json.contains("/data/timeOfDayInMinutes"));
    assert!(h.store.clockings().unwrap().is_empty());

    let config = ReceiverConfig::default().with_invalid_delivery(InvalidDeliveryPolicy::Reject);
    let h = Harness::start("reject", SignatureScheme::default(), config, None).await;
    let (status, text) = h.post(h.signed(&invalid, None), invalid).await;
    assert_eq!(status, 400);
    assert!(text.contains("number.range"), "{text}");
    assert_eq!(h.written(), (0, 0));
}

/// A sink whose storage is down.
struct BrokenSink;

impl protime_webhooks::DeliverySink for BrokenSink {
    fn record(
        &self,
        _delivery: protime_webhooks::Delivery,
    ) -> protime_webhooks::sink::SinkFuture<
        '_,
        Result<protime_webhooks::Receipt, protime_webhooks::SinkError>,
    > {
        Box::pin(std::future::ready(Err(
            protime_webhooks::SinkError::unavailable("disk full"),
        )))
    }
}

#[tokio::test]
async fn a_sink_failure_answers_503_so_that_protime_retries() {
    let key = WebhookKey::new(KEY).unwrap();
    let verifier = Verifier::new(SignatureScheme::default(), [key.clone()]).unwrap();
    let app = router(verifier, ReceiverConfig::default(), Arc::new(BrokenSink));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let b = body(9, "0000090200004BD0000A", 600);
    let headers = sign(&SignatureScheme::default(), &key, &b, None).unwrap();
    let response = reqwest::Client::new()
        .post(format!("http://{address}/"))
        .headers(headers)
        .body(b)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(
        !response.text().await.unwrap().contains("disk full"),
        "no internals in the answer"
    );
}

#[tokio::test]
async fn a_delivery_without_content_type_is_accepted_by_default() {
    let h = Harness::start(
        "no-ct",
        SignatureScheme::default(),
        ReceiverConfig::default(),
        None,
    )
    .await;
    let b = body(10, "0000090200004BD0000A", 600);
    let headers = sign(&h.scheme, &h.key, &b, None).unwrap(); // no content-type header
    assert_eq!(h.post(headers, b).await.0, 200);
    assert_eq!(h.written(), (1, 0));
}
