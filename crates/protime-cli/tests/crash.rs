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

use std::time::Duration;

use protime_store_sqlite::SqliteStore;
use protime_webhooks::signature::{SignatureScheme, WebhookKey, sign};

const KEY: &str = "crash-test-key";

mod common;
use common::load::{Load, delivery};

/// Starts `protime receive` on a free port; returns it with its delivery URL, read from the
/// line it prints once listening.
fn start_receiver(db: &std::path::Path) -> (common::Running, String) {
    let mut command = common::protime(&["receive", "--port", "0", "--store"]);
    command.arg(db).env("PROTIME_WEBHOOK_KEY", KEY);
    let started = common::start(command);
    (started.child, started.url)
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

/// Posts `body`, signed with `KEY`, to `url`; returns the status and the answer.
async fn post_signed(url: &str, body: &[u8]) -> (u16, String) {
    let key = WebhookKey::new(KEY).unwrap();
    let mut headers = sign(&SignatureScheme::default(), &key, body, None).unwrap();
    headers.insert("content-type", "application/json".parse().unwrap());
    let response = reqwest::Client::new()
        .post(url)
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `protime receive` stores a delivery with only what the docs require by default, and
/// dead-letters it with `--strict` (docs/validation-rules.md, profiles).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_stores_a_partial_delivery_by_default_and_dead_letters_it_with_strict() {
    let dir = std::env::temp_dir().join(format!("protime-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The docs' delta example (track-changes-with-delta).
    let partial = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000B","id":1050,"date":"2024-12-02"}}"#;
    for strict in [false, true] {
        let db = dir.join(format!("store-{strict}.sqlite"));
        let _ = std::fs::remove_file(&db);
        let mut command = common::protime(&["receive", "--port", "0", "--store"]);
        command.arg(&db).env("PROTIME_WEBHOOK_KEY", KEY);
        if strict {
            command.arg("--strict");
        }
        let started = common::start(command);
        let (status, answer) = post_signed(&started.url, partial).await;
        assert_eq!(status, 200, "{answer}");
        drop(started);
        let store = SqliteStore::open(&db).unwrap();
        let dead = store.dead_letters().unwrap();
        if strict {
            assert_eq!(answer, r#"{"outcome":"dead_lettered"}"#);
            assert_eq!(dead.len(), 1);
            assert!(stored_ids(&db).is_empty());
        } else {
            assert_eq!(answer, r#"{"outcome":"applied"}"#);
            assert!(dead.is_empty());
            assert_eq!(stored_ids(&db), [1050].into_iter().collect());
            let clocking = store
                .clocking_blocking(protime_model::ClockingId::new(1050).unwrap())
                .unwrap()
                .unwrap();
            assert_eq!(clocking.date.unwrap().to_string(), "2024-12-02");
            assert!(clocking.person.is_none() && clocking.kind.is_none());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_acknowledged_before_sigkill_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("protime-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite");
    let _ = std::fs::remove_file(&db);

    let (mut child, url) = start_receiver(&db);
    let load = Load::start(&url, &WebhookKey::new(KEY).unwrap(), 1, false);

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
    let load = Load::start(&url, &WebhookKey::new(KEY).unwrap(), 1, true);
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
