//! Crash test: the receiver process is killed with SIGKILL during a stream of deliveries and
//! restarted on the same database; every delivery acknowledged before the kill must be in
//! the store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protime_store_sqlite::SqliteStore;
use protime_webhooks::signature::{SignatureScheme, WebhookKey, sign};
use serde_json::json;

const KEY: &str = "crash-test-key";

/// Starts `protime receive` on a free port; returns it with its delivery URL, read from the
/// line it prints once listening.
fn start_receiver(db: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_protime"))
        .args(["receive", "--port", "0", "--store"])
        .arg(db)
        .env("PROTIME_WEBHOOK_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    // Keep draining, so the receiver's later log lines never hit a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("the receiver did not start: {line}"))
        .to_string();
    (child, url)
}

fn delivery(id: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "changeType": "InsertOrUpdate",
        "data": {"changeVersion": format!("{id:020X}"), "id": id, "person": {"id": 1 + id % 17},
                 "date": "2026-01-15", "timeOfDayInMinutes": id % 1440, "kind": "InOut"}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_acknowledged_before_sigkill_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("protime-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite");
    let _ = std::fs::remove_file(&db);

    let (mut child, url) = start_receiver(&db);
    let acknowledged = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let scheme = SignatureScheme::default();
    let key = WebhookKey::new(KEY).unwrap();

    let mut senders = Vec::new();
    for worker in 0..8_i64 {
        let (http, url, scheme, key) = (http.clone(), url.clone(), scheme.clone(), key.clone());
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut id = 1 + worker;
            while !stop.load(Ordering::Relaxed) {
                let body = delivery(id);
                let mut headers = sign(&scheme, &key, &body, None).unwrap();
                headers.insert("content-type", "application/json".parse().unwrap());
                match http.post(&url).headers(headers).body(body).send().await {
                    Ok(response) if response.status().is_success() => {
                        acknowledged.lock().unwrap().push(id);
                    }
                    Ok(response) => panic!("unexpected status {}", response.status()),
                    Err(_) => break, // the receiver is gone
                }
                id += 8;
            }
        }));
    }

    // Let a stream build up, then kill the process mid-flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 400 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL on Unix: no shutdown hook runs
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 400,
        "only {} deliveries acknowledged before the kill",
        acknowledged.len()
    );

    // Restart on the same database: it must open and keep serving.
    let (mut child, url) = start_receiver(&db);
    let body = delivery(1_000_000);
    let mut headers = sign(&scheme, &key, &body, None).unwrap();
    headers.insert("content-type", "application/json".parse().unwrap());
    let status = http
        .post(&url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    child.kill().unwrap();
    child.wait().unwrap();

    let store = SqliteStore::open(&db).unwrap();
    let stored: std::collections::HashSet<i64> = store
        .tracked_versions()
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id.get())
        .collect();
    let lost: Vec<i64> = acknowledged
        .iter()
        .copied()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged deliveries lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    assert!(stored.contains(&1_000_000));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_closes_the_store_and_exits_0() {
    let dir = std::env::temp_dir().join(format!("protime-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite");
    let _ = std::fs::remove_file(&db);

    let (mut child, url) = start_receiver(&db);
    let acknowledged = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let scheme = SignatureScheme::default();
    let key = WebhookKey::new(KEY).unwrap();
    let mut senders = Vec::new();
    for worker in 0..8_i64 {
        let (http, url, scheme, key) = (http.clone(), url.clone(), scheme.clone(), key.clone());
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut id = 1 + worker;
            while !stop.load(Ordering::Relaxed) {
                let body = delivery(id);
                let mut headers = sign(&scheme, &key, &body, None).unwrap();
                headers.insert("content-type", "application/json".parse().unwrap());
                match http.post(&url).headers(headers).body(body).send().await {
                    Ok(response) if response.status().is_success() => {
                        acknowledged.lock().unwrap().push(id);
                    }
                    // Refused or cut off while stopping: not acknowledged, Protime retries.
                    Ok(_) | Err(_) => break,
                }
                id += 8;
            }
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 400 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopping = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(25),
            "the receiver did not stop within 25 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    assert!(status.success(), "exit status after SIGTERM: {status}");

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 400,
        "only {} acknowledged",
        acknowledged.len()
    );
    let store = SqliteStore::open(&db).unwrap();
    let stored: std::collections::HashSet<i64> = store
        .tracked_versions()
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id.get())
        .collect();
    let lost = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .count();
    assert_eq!(lost, 0, "{lost} acknowledged deliveries lost");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
