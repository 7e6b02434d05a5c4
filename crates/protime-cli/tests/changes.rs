//! `protime changes` on both stores: the feed as JSON lines, resumed from a cursor without
//! gaps or repeats, and `--follow` showing a new delivery within 1 s and ending cleanly on
//! SIGTERM. The PostgreSQL case needs a server (DATABASE_URL or PG*); it is skipped loudly
//! without one, unless PROTIME_REQUIRE_POSTGRES=1 (as in CI).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use protime_store_postgres::testing::TestDatabase;
use protime_webhooks::signature::{SignatureScheme, WebhookKey, sign};
use serde_json::{Value, json};

const KEY: &str = "changes-test-key";

mod common;
use common::{Running, protime, start};

fn start_receiver(store: &str) -> (Running, String) {
    let mut command = protime(&["receive", "--port", "0", "--store", store]);
    command.env("PROTIME_WEBHOOK_KEY", KEY);
    let started = start(command);
    (started.child, started.url)
}

async fn deliver(http: &reqwest::Client, url: &str, id: i64, version: u32) {
    let body = serde_json::to_vec(&json!({
        "changeType": "InsertOrUpdate",
        "data": {"changeVersion": format!("{version:010X}"), "id": id, "person": {"id": 3},
                 "date": "2026-01-15", "timeOfDayInMinutes": 480, "kind": "InOut"}
    }))
    .unwrap();
    let key = WebhookKey::new(KEY).unwrap();
    let mut headers = sign(&SignatureScheme::default(), &key, &body, None).unwrap();
    headers.insert("content-type", "application/json".parse().unwrap());
    let status = http
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
}

/// `protime changes` run to the end: its lines.
fn changes(store: &str, since: u64) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_protime"))
        .args(["changes", "--store", store, "--since", &since.to_string()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    common::json_lines(&output.stdout)
}

fn cursor(line: &Value) -> u64 {
    line["cursor"].as_u64().unwrap()
}

fn id_and_version(line: &Value) -> (i64, String) {
    (
        line["change"]["data"]["id"].as_i64().unwrap(),
        line["change"]["data"]["changeVersion"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

async fn follow_and_resume(store: &str) {
    let (_receiver, url) = start_receiver(store);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Six changes: ids 1..=5, id 2 updated again, id 3 redelivered (not a new feed entry).
    for id in 1..=5 {
        deliver(&http, &url, id, 1).await;
    }
    deliver(&http, &url, 2, 2).await;
    deliver(&http, &url, 3, 1).await;

    let all = changes(store, 0);
    assert_eq!(all.len(), 6, "{all:?}");
    assert!(all.windows(2).all(|w| cursor(&w[0]) < cursor(&w[1])));
    assert_eq!(id_and_version(&all[5]), (2, format!("{:010X}", 2)));
    assert!(all.iter().all(|line| line["origin"] == "webhook"));

    // Resume after the third line: exactly the last three, once each.
    let resumed = changes(store, cursor(&all[2]));
    assert_eq!(resumed, all[3..].to_vec());

    // Follow from the end: a new delivery shows up within a second.
    let mut follower = Command::new(env!("CARGO_BIN_EXE_protime"))
        .args([
            "changes",
            "--store",
            store,
            "--follow",
            "--since",
            &cursor(&all[5]).to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let mut follower = Running(follower);
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    // Give the follower time to start listening; nothing may come meanwhile.
    assert!(received.recv_timeout(Duration::from_millis(1500)).is_err());
    for version in 2..=4 {
        deliver(&http, &url, 7, version).await;
        let acknowledged = Instant::now();
        let (seen, line) = received
            .recv_timeout(Duration::from_secs(3))
            .unwrap_or_else(|_| panic!("the follower did not show version {version}"));
        let latency = seen.saturating_duration_since(acknowledged);
        assert!(
            latency < Duration::from_secs(1),
            "version {version} shown after {latency:?}"
        );
        let line: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(id_and_version(&line), (7, format!("{version:010X}")));
    }

    // SIGTERM ends it cleanly.
    let status = common::terminate(&mut follower, Duration::from_secs(5));
    assert!(status.success(), "{status}");

    // Everything, once, in order.
    let everything = changes(store, 0);
    assert_eq!(everything.len(), 9);
    assert_eq!(everything[..6].to_vec(), all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_feed_follows_and_resumes() {
    let dir = std::env::temp_dir().join(format!("protime-changes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite");
    let _ = std::fs::remove_file(&db);
    follow_and_resume(&format!("sqlite:{}", db.display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_feed_follows_and_resumes() {
    let Some(database) = TestDatabase::create("changes_cli").await else {
        return;
    };
    follow_and_resume(&database.url()).await;
    database.cleanup().await;
}

/// Starts `protime receive` with `extra` global arguments; returns it, its URL, and its
/// stderr lines as they come.
fn start_receiver_with_log(
    extra: &[&str],
    store: &str,
) -> (Running, String, mpsc::Receiver<String>) {
    let mut command = protime(extra);
    command
        .args(["receive", "--port", "0", "--store", store])
        .env("PROTIME_WEBHOOK_KEY", KEY);
    let started = start(command);
    (started.child, started.url, started.lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_shows_each_delivery_as_text_or_json_and_quiet_hides_it() {
    let dir = std::env::temp_dir().join(format!("protime-liveview-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let http = reqwest::Client::new();

    // Text, not a terminal: one plain line per delivery, no colour codes.
    let store = format!("sqlite:{}", dir.join("text.sqlite").display());
    let (_text, url, lines) = start_receiver_with_log(&[], &store);
    deliver(&http, &url, 41, 1).await;
    let line = lines.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(line.contains("protime::delivery"), "{line}");
    assert!(
        line.contains("id=41") && line.contains("outcome=\"applied\""),
        "{line}"
    );
    assert!(
        line.contains("kind=\"InOut\"") && line.contains("latency_ms="),
        "{line}"
    );
    assert!(!line.contains('\u{1b}'), "colour codes in a pipe: {line:?}");

    // JSON: one object per line with the same fields.
    let store = format!("sqlite:{}", dir.join("json.sqlite").display());
    let (_json, url, lines) = start_receiver_with_log(&["--log-format", "json"], &store);
    deliver(&http, &url, 42, 1).await;
    deliver(&http, &url, 42, 1).await;
    for expected in ["applied", "duplicate"] {
        let line = lines.recv_timeout(Duration::from_secs(5)).unwrap();
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(value["fields"]["outcome"], expected, "{line}");
        assert_eq!(value["fields"]["id"], 42, "{line}");
        assert_eq!(value["target"], "protime::delivery", "{line}");
    }

    // --quiet: nothing per delivery.
    let quiet_store = format!("sqlite:{}", dir.join("quiet.sqlite").display());
    let mut command = protime(&["receive", "--quiet", "--port", "0", "--store", &quiet_store]);
    command.env("PROTIME_WEBHOOK_KEY", KEY);
    let quiet = start(command);
    deliver(&http, &quiet.url, 43, 1).await;
    let common::Started { child, lines, .. } = quiet;
    drop(child);
    // Everything it wrote after its URL line, to the end.
    let rest: String = lines.iter().collect::<Vec<_>>().join("\n");
    assert!(!rest.contains("protime::delivery"), "{rest}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoints_report_health_readiness_and_metrics() {
    let dir = std::env::temp_dir().join(format!("protime-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.sqlite");
    let store = format!("sqlite:{}", db.display());
    let admin_port = common::free_port();
    let admin = format!("127.0.0.1:{admin_port}");
    let mut command = protime(&[
        "receive", "--quiet", "--port", "0", "--admin", &admin, "--store", &store,
    ]);
    command.env("PROTIME_WEBHOOK_KEY", KEY);
    let common::Started {
        child: _running,
        url,
        ..
    } = start(command);
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("http://{admin}{path}");
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    // The admin listener is up before the receiver's line is printed.
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);

    deliver(&http, &url, 51, 1).await;
    deliver(&http, &url, 51, 1).await;
    let forged = http
        .post(&url)
        .header("content-type", "application/json")
        .header("x-protime-signature", "00")
        .body(r#"{"changeType":"Delete","data":{"changeVersion":"01","id":9}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        r#"protime_deliveries_total{outcome="applied"} 1"#,
        r#"protime_deliveries_total{outcome="duplicate"} 1"#,
        r#"protime_deliveries_refused_total{reason="signature"} 1"#,
        "protime_delivery_duration_seconds_count 2",
    ] {
        assert!(metrics.contains(expected), "{expected} not in:\n{metrics}");
    }

    // A store file that vanished is not ready for writes.
    std::fs::remove_file(&db).unwrap();
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("it was deleted"), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn post_signed(http: &reqwest::Client, url: &str, key: &str, id: i64) -> u16 {
    let body = serde_json::to_vec(&json!({
        "changeType": "Delete", "data": {"changeVersion": "01", "id": id}
    }))
    .unwrap();
    let key = WebhookKey::new(key).unwrap();
    let mut headers = sign(&SignatureScheme::default(), &key, &body, None).unwrap();
    headers.insert("content-type", "application/json".parse().unwrap());
    http.post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_the_key_file() {
    let dir = std::env::temp_dir().join(format!("protime-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("webhook.key");
    std::fs::write(&key_file, "old-key\n").unwrap();
    let store = format!("sqlite:{}", dir.join("store.sqlite").display());
    let mut command = protime(&["receive", "--quiet", "--port", "0", "--store", &store]);
    command
        .arg("--key-file")
        .arg(&key_file)
        .env_remove("PROTIME_WEBHOOK_KEY");
    let common::Started {
        child: running,
        url,
        lines: received,
    } = start(command);
    let http = reqwest::Client::new();
    let pid = running.0.id().to_string();
    let hangup = |expect: &str| {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
        // Skip the warnings of refused deliveries.
        let line = loop {
            let line = received.recv_timeout(Duration::from_secs(5)).unwrap();
            if line.contains("keys reloaded") {
                break line;
            }
        };
        assert!(line.contains(expect), "{line}");
    };

    assert_eq!(post_signed(&http, &url, "old-key", 1).await, 200);
    assert_eq!(post_signed(&http, &url, "new-key", 2).await, 401);
    // A rotation: the new key is added to the file, the old one stays for a while.
    std::fs::write(&key_file, "old-key\nnew-key\n").unwrap();
    hangup(",");
    assert_eq!(post_signed(&http, &url, "new-key", 3).await, 200);
    assert_eq!(post_signed(&http, &url, "old-key", 4).await, 200);
    // The old webhook is gone: its key leaves the file, and the receiver refuses it.
    std::fs::write(&key_file, "new-key\n").unwrap();
    hangup("");
    assert_eq!(post_signed(&http, &url, "old-key", 5).await, 401);
    assert_eq!(post_signed(&http, &url, "new-key", 6).await, 200);
    // An unreadable file changes nothing.
    std::fs::remove_file(&key_file).unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post_signed(&http, &url, "new-key", 7).await, 200);
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_used_exactly_as_given() {
    let dir = std::env::temp_dir().join(format!("protime-exact-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite:{}", dir.join("store.sqlite").display());
    let mut command = protime(&["receive", "--quiet", "--port", "0", "--store", &store]);
    command
        .args(["--key", " a b,c ", "--key", "second"])
        .env_remove("PROTIME_WEBHOOK_KEY");
    let common::Started {
        child: _running,
        url,
        ..
    } = start(command);
    let http = reqwest::Client::new();
    assert_eq!(post_signed(&http, &url, " a b,c ", 1).await, 200);
    assert_eq!(post_signed(&http, &url, "second", 2).await, 200);
    for piece in [" a b", "c ", "a b,c"] {
        assert_eq!(post_signed(&http, &url, piece, 3).await, 401, "{piece:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
