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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protime_store_sqlite::SqliteStore;
use protime_webhooks::signature::{SignatureScheme, WebhookKey, sign};
use serde_json::json;

const KEY: &str = "crash-test-key";

mod common;

/// Starts `protime receive` on a free port; returns it with its delivery URL, read from the
/// line it prints once listening.
fn start_receiver(db: &std::path::Path) -> (common::Running, String) {
    let mut command = common::protime(&["receive", "--port", "0", "--store"]);
    command.arg(db).env("PROTIME_WEBHOOK_KEY", KEY);
    let started = common::start(command);
    (started.child, started.url)
}

fn delivery(id: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "changeType": "InsertOrUpdate",
        "data": {"changeVersion": format!("{id:020X}"), "id": id, "person": {"id": 1 + id % 17},
                 "date": "2026-01-15", "timeOfDayInMinutes": id % 1440, "kind": "InOut"}
    }))
    .unwrap()
}

/// Eight senders posting signed deliveries (ids 1, 2, 3, …) until `stop`, recording the ids
/// acknowledged with a 2xx. A refusal panics unless `refusals_end_the_load`, in which case
/// it (like a lost connection) ends that sender: the delivery was not acknowledged.
struct Load {
    acknowledged: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: &str, refusals_end_the_load: bool) -> Self {
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
            let (http, url, scheme, key) =
                (http.clone(), url.to_owned(), scheme.clone(), key.clone());
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
                        Ok(response) if !refusals_end_the_load => {
                            panic!("unexpected status {}", response.status())
                        }
                        // The receiver is gone, or refused while stopping: not acknowledged.
                        Ok(_) | Err(_) => break,
                    }
                    id += 8;
                }
            }));
        }
        Self {
            acknowledged,
            stop,
            senders,
        }
    }

    /// Waits (at most 20 s) until `count` deliveries are acknowledged.
    async fn wait_for(&self, count: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.acknowledged.lock().unwrap().len() < count
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the senders; returns the ids acknowledged.
    async fn finish(self) -> Vec<i64> {
        self.stop.store(true, Ordering::Relaxed);
        for sender in self.senders {
            sender.await.unwrap();
        }
        self.acknowledged.lock().unwrap().clone()
    }
}

/// The ids the store at `db` holds.
fn stored_ids(db: &std::path::Path) -> std::collections::HashSet<i64> {
    SqliteStore::open(db)
        .unwrap()
        .tracked_versions()
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id.get())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_acknowledged_before_sigkill_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("protime-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite");
    let _ = std::fs::remove_file(&db);

    let (mut child, url) = start_receiver(&db);
    let load = Load::start(&url, false);

    // Let a stream build up, then kill the process mid-flight.
    load.wait_for(400).await;
    child.0.kill().unwrap(); // SIGKILL on Unix: no shutdown hook runs
    child.0.wait().unwrap();
    let acknowledged = load.finish().await;
    assert!(
        acknowledged.len() >= 400,
        "only {} deliveries acknowledged before the kill",
        acknowledged.len()
    );

    // Restart on the same database: it must open and keep serving.
    let (child, url) = start_receiver(&db);
    let body = delivery(1_000_000);
    let key = WebhookKey::new(KEY).unwrap();
    let mut headers = sign(&SignatureScheme::default(), &key, &body, None).unwrap();
    headers.insert("content-type", "application/json".parse().unwrap());
    let status = reqwest::Client::new()
        .post(&url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    drop(child);

    let stored = stored_ids(&db);
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
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_closes_the_store_and_exits_0() {
    let dir = std::env::temp_dir().join(format!("protime-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite");
    let _ = std::fs::remove_file(&db);

    let (mut child, url) = start_receiver(&db);
    let load = Load::start(&url, true);
    load.wait_for(400).await;
    let status = common::terminate(&mut child, Duration::from_secs(25));
    let acknowledged = load.finish().await;
    assert!(status.success(), "exit status after SIGTERM: {status}");

    assert!(
        acknowledged.len() >= 400,
        "only {} acknowledged",
        acknowledged.len()
    );
    let stored = stored_ids(&db);
    let lost = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .count();
    assert_eq!(lost, 0, "{lost} acknowledged deliveries lost");
    let _ = std::fs::remove_dir_all(&dir);
}
