//! No 2xx leaves before the sink's commit: a sink that holds its commit until the test lets
//! it go, behind the real server. While the commit is held, the delivery has no answer;
//! once it is let go, the answer is 200 and the commit happened first. Deterministic: the
//! order is forced by the gate, not by timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use protime_model::ApplyOutcome;
use protime_webhooks::receiver::{ReceiverConfig, router};
use protime_webhooks::server::{ServerLimits, serve};
use protime_webhooks::signature::sign;
use protime_webhooks::sink::{Delivery, DeliverySink, Receipt, SinkError, SinkFuture};
use protime_webhooks::{SignatureScheme, Verifier, WebhookKey};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{Semaphore, mpsc};

/// Holds every commit until a permit is released; records when it committed.
struct HeldCommit {
    reached: mpsc::UnboundedSender<()>,
    gate: Semaphore,
    committed: AtomicBool,
}

impl DeliverySink for HeldCommit {
    fn record(&self, _delivery: Delivery) -> SinkFuture<'_, Result<Receipt, SinkError>> {
        Box::pin(async move {
            let _ = self.reached.send(());
            self.gate.acquire().await.unwrap().forget();
            self.committed.store(true, Ordering::SeqCst);
            Ok(Receipt::Applied(ApplyOutcome::Applied))
        })
    }
}

#[tokio::test]
async fn the_answer_waits_for_the_commit() {
    const KEY: &str = "held-commit-key";
    let (reached, mut reaching) = mpsc::unbounded_channel();
    let sink = Arc::new(HeldCommit {
        reached,
        gate: Semaphore::new(0),
        committed: AtomicBool::new(false),
    });
    let verifier =
        Verifier::new(SignatureScheme::default(), [WebhookKey::new(KEY).unwrap()]).unwrap();
    let app = router(verifier, ReceiverConfig::default(), Arc::clone(&sink) as _);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        app,
        ServerLimits::default(),
        std::future::pending(),
    ));

    let body = br#"{"changeType":"Delete","data":{"changeVersion":"0000000000000001","id":1}}"#;
    let headers = sign(
        &SignatureScheme::default(),
        &WebhookKey::new(KEY).unwrap(),
        body,
        None,
    )
    .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();

    // The delivery reached the sink, whose commit is held: no byte of an answer may arrive.
    reaching.recv().await.unwrap();
    let mut first = [0_u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut first)).await;
    assert!(early.is_err(), "an answer left before the commit");
    assert!(!sink.committed.load(Ordering::SeqCst));

    // Let the commit happen: now the answer is 200, and the commit came first.
    sink.gate.add_permits(1);
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(sink.committed.load(Ordering::SeqCst));
}
