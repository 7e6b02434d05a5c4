//! Receiving Protime webhooks inside an existing axum app, into your own [`DeliverySink`].
//!
//! The app has its own routes (`/health` here); the receiver is one more router nested at
//! `/protime/clockings`. It checks the body size, reads the body within a deadline, verifies
//! the signature, validates the delivery and hands it to the sink, and answers 200 only once
//! the sink says the delivery is durable (503 otherwise, so that Protime retries).
//!
//! ```sh
//! PROTIME_WEBHOOK_KEY=… cargo run -p protime-examples --example receive_in_axum            # serves 127.0.0.1:8080
//! cargo run -p protime-examples --example receive_in_axum -- --self-test                    # one signed POST to itself, then exits
//! ```

use std::sync::{Arc, Mutex};

use protime_model::InMemoryTracker;
use protime_webhooks::receiver::{ReceiverConfig, router};
use protime_webhooks::sink::{Delivery, DeliverySink, Receipt, SinkError, SinkFuture};
use protime_webhooks::{SignatureScheme, Verifier, WebhookKey};

/// Your own sink: here the ordering rule in memory, and a line per delivery on stdout. A real
/// one writes to your database and returns only once the write is durable.
#[derive(Default)]
struct PrintingSink {
    tracker: Mutex<InMemoryTracker>,
}

impl DeliverySink for PrintingSink {
    fn record(&self, delivery: Delivery) -> SinkFuture<'_, Result<Receipt, SinkError>> {
        Box::pin(async move {
            match delivery {
                Delivery::Change { change, origin } => {
                    let outcome = self
                        .tracker
                        .lock()
                        .map_err(|_| SinkError::unavailable("the tracker's lock is poisoned"))?
                        .apply(&change);
                    let receipt = Receipt::Applied(outcome);
                    println!(
                        "{} clocking {} version {}: {}",
                        origin.kind(),
                        change.id(),
                        change.change_version(),
                        receipt.name()
                    );
                    Ok(receipt)
                }
                Delivery::DeadLetter { errors, .. } => {
                    // Authentic but invalid: keep it somewhere for inspection, then acknowledge.
                    eprintln!("invalid delivery: {errors}");
                    Ok(Receipt::DeadLettered)
                }
                // `Delivery` is non-exhaustive: refuse what this sink does not know.
                _ => Err(SinkError::rejected("unknown kind of delivery")),
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let self_test = std::env::args().any(|arg| arg == "--self-test");
    // The key Protime returned when the webhook was created (only once: persist it).
    let secret = std::env::var("PROTIME_WEBHOOK_KEY").unwrap_or_else(|_| "example-key".into());
    let key = WebhookKey::new(secret.clone())?;
    let verifier = Verifier::new(SignatureScheme::default(), [key])?;
    let sink = Arc::new(PrintingSink::default());

    // Your existing app, with the receiver nested in it.
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .nest(
            "/protime/clockings",
            router(verifier, ReceiverConfig::default(), sink),
        );

    let address = if self_test {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:8080"
    };
    let listener = tokio::net::TcpListener::bind(address).await?;
    let url = format!("http://{}/protime/clockings", listener.local_addr()?);
    println!("receiving on {url}");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    if !self_test {
        server.await??;
        return Ok(());
    }

    // What Protime does: POST the change as JSON, signed with the webhook's key.
    let body = br#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000C","id":7}}"#;
    let headers = protime_webhooks::signature::sign(
        &SignatureScheme::default(),
        &WebhookKey::new(secret)?,
        body,
        None,
    )?;
    let http = reqwest::Client::new();
    let mut accepted = true;
    for attempt in ["first delivery", "redelivery"] {
        let response = http
            .post(&url)
            .headers(headers.clone())
            .header("content-type", "application/json")
            .body(body.as_slice())
            .send()
            .await?;
        let status = response.status();
        println!("{attempt}: {status} {}", response.text().await?);
        accepted &= status.is_success();
    }
    let unsigned = http
        .post(&url)
        .header("content-type", "application/json")
        .body(body.as_slice())
        .send()
        .await?;
    println!("unsigned: {}", unsigned.status());
    server.abort();
    if accepted && unsigned.status() == reqwest::StatusCode::UNAUTHORIZED {
        println!("self-test passed");
        Ok(())
    } else {
        Err("self-test failed".into())
    }
}
