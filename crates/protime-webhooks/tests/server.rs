//! Hostile connections against `server::serve` and the receiver's body budget, on loopback:
//! headers sent one byte at a time, idle keep-alive connections, a flood of idle
//! connections over the cap, stalled bodies over the read and byte budgets — and, each time,
//! a genuine signed delivery that must still be answered promptly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protime_webhooks::receiver::{ReceiverConfig, router};
use protime_webhooks::server::{ServerLimits, serve};
use protime_webhooks::signature::sign;
use protime_webhooks::{InMemorySink, SignatureScheme, Verifier, WebhookKey};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const KEY: &str = "server-test-key";

async fn start(limits: ServerLimits, config: ReceiverConfig) -> SocketAddr {
    let verifier =
        Verifier::new(SignatureScheme::default(), [WebhookKey::new(KEY).unwrap()]).unwrap();
    let app = router(verifier, config, Arc::new(InMemorySink::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    address
}

fn delivery(id: i64) -> Vec<u8> {
    format!(r#"{{"changeType":"Delete","data":{{"changeVersion":"{id:020X}","id":{id}}}}}"#)
        .into_bytes()
}

/// A signed POST of a valid delivery as raw HTTP/1.1 (connection closed after).
fn signed_request(id: i64) -> Vec<u8> {
    let body = delivery(id);
    let headers = sign(
        &SignatureScheme::default(),
        &WebhookKey::new(KEY).unwrap(),
        &body,
        None,
    )
    .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// Sends `request` on a new connection; returns the response head (status line and
/// headers) and how long the answer took.
async fn exchange(address: SocketAddr, request: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("no answer within 10 s");
    let text = String::from_utf8_lossy(&response).into_owned();
    (text, started.elapsed())
}

/// Waits until the server closes `stream` (read returns 0 or an error); returns when.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0_u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn headers_trickled_one_byte_at_a_time_are_cut_off_at_the_header_timeout() {
    let limits = ServerLimits::default().with_header_read_timeout(Duration::from_secs(1));
    let address = start(limits, ReceiverConfig::default()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    let trickle = b"POST / HTTP/1.1\r\nhost: test\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for byte in trickle {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    if !closed {
        closed_after(&mut stream, Duration::from_secs(3)).await;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "a trickled header kept the connection for {elapsed:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_header_timeout() {
    let limits = ServerLimits::default().with_header_read_timeout(Duration::from_secs(1));
    let address = start(limits, ReceiverConfig::default()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    // One complete request (405: the receiver takes POST only), then nothing.
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0_u8; 1024];
    let read = stream.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 405"));
    let idle = closed_after(&mut stream, Duration::from_secs(5)).await;
    assert!(idle < Duration::from_secs(3), "idle for {idle:?}");
}

#[tokio::test]
async fn a_flood_of_idle_connections_over_the_cap_does_not_delay_a_genuine_delivery() {
    let limits = ServerLimits::default().with_max_connections(16);
    let address = start(limits, ReceiverConfig::default()).await;
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(TcpStream::connect(address).await.unwrap());
    }
    // Half of them start a request head and stall.
    for stream in flood.iter_mut().step_by(2) {
        let _ = stream.write_all(b"POST / HTTP/1.1\r\nhost: x\r\n").await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in 1..=3 {
        let (response, took) = exchange(address, &signed_request(id)).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(took < Duration::from_secs(1), "answered after {took:?}");
    }
    drop(flood);
}

#[tokio::test]
async fn stalled_bodies_over_the_read_cap_get_503_with_retry_after_and_then_room_returns() {
    let config = ReceiverConfig::default().with_max_concurrent_body_reads(4);
    let address = start(ServerLimits::default(), config).await;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"a\":")
            .await
            .unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (response, took) = exchange(address, &signed_request(1)).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    assert!(took < Duration::from_secs(1));

    drop(stalled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (response, _) = exchange(address, &signed_request(2)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn bodies_over_the_byte_budget_get_503_and_a_declared_length_over_the_limit_413() {
    let config = ReceiverConfig::default()
        .with_body_limit(16 * 1024)
        .with_max_buffered_bytes(32 * 1024);
    let address = start(ServerLimits::default(), config).await;
    // Two bodies of 16 KiB − 1 sent but not finished hold 32 KiB − 2 of the budget.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let mut request = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 16384\r\n\r\n".to_vec();
        request.extend(std::iter::repeat_n(b' ', 16 * 1024 - 1));
        stream.write_all(&request).await.unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (response, _) = exchange(address, &signed_request(1)).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");

    // Refused before reading when the declared length is over the limit.
    let (response, _) = exchange(
        address,
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 999999\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");

    drop(stalled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (response, _) = exchange(address, &signed_request(2)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn shutdown_answers_requests_in_progress_and_closes_idle_connections() {
    let verifier =
        Verifier::new(SignatureScheme::default(), [WebhookKey::new(KEY).unwrap()]).unwrap();
    let app = router(
        verifier,
        ReceiverConfig::default(),
        Arc::new(InMemorySink::default()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, ServerLimits::default(), async {
        let _ = stopped.await;
    }));
    let mut idle = TcpStream::connect(address).await.unwrap();
    // A request whose body is still coming when the shutdown starts.
    let request = signed_request(7);
    let (head, tail) = request.split_at(request.len() - 5);
    let mut in_progress = TcpStream::connect(address).await.unwrap();
    in_progress.write_all(head).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    in_progress.write_all(tail).await.unwrap();
    let mut response = Vec::new();
    in_progress.read_to_end(&mut response).await.unwrap();
    assert!(
        String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    closed_after(&mut idle, Duration::from_secs(2)).await;
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve did not return")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(address).await.is_err(),
        "still accepting"
    );
}
