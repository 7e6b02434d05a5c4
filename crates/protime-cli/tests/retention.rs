//! `protime purge` and `protime forget` on an SQLite store (and `forget` on PostgreSQL, with
//! the feed): the refusal without limits (exit 2), a dry run that removes nothing and counts
//! what the real run removes, and an erasure that `protime changes` shows as Deletes of
//! origin `erasure`. The PostgreSQL case needs a server (DATABASE_URL or PG*); it is skipped
//! loudly without one, unless PROTIME_REQUIRE_POSTGRES=1 (as in CI). And `serve`'s
//! background retention job: it runs every `--retention-interval`, purges, logs its counts,
//! and stops with the process (SIGTERM, exit 0).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::Path;
use std::process::Output;

use chrono::{DateTime, Duration, Utc};
use protime_model::parse_delivery;
use protime_store_postgres::PgStore;
use protime_store_postgres::testing::TestDatabase;
use protime_store_sqlite::SqliteStore;
use protime_webhooks::sink::{Delivery, WebhookOrigin};
use serde_json::Value;

mod common;
use common::{Running, free_port, json_lines, protime, temp_dir, terminate};

fn upsert(id: i64, version: &str, person: i64) -> Vec<u8> {
    format!(
        r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":"{version}","id":{id},"person":{{"id":{person}}},"date":"2026-01-15","timeOfDayInMinutes":480,"kind":"InOut"}}}}"#
    )
    .into_bytes()
}

fn webhook(body: &[u8], received_at: DateTime<Utc>) -> Delivery {
    let mut origin = WebhookOrigin::new(body.to_vec().into(), "k1");
    origin.received_at = received_at;
    Delivery::webhook(parse_delivery(body).unwrap(), origin)
}

fn dead_letter(body: &[u8], received_at: DateTime<Utc>) -> Delivery {
    let errors = parse_delivery(br#"{"changeType":"InsertOrUpdate","data":{"id":0}}"#).unwrap_err();
    let mut webhook = WebhookOrigin::new(body.to_vec().into(), "k1");
    webhook.received_at = received_at;
    Delivery::DeadLetter { errors, webhook }
}

/// Persons 7 (ids 1 and 2, id 1 with an old first version) and 8 (id 3); two dead letters,
/// one old naming person 7.
fn deliveries() -> Vec<Delivery> {
    let old = Utc::now() - Duration::days(40);
    let now = Utc::now();
    vec![
        webhook(&upsert(1, "01", 7), old),
        webhook(&upsert(1, "02", 7), old),
        webhook(&upsert(2, "01", 7), now),
        webhook(&upsert(3, "01", 8), old),
        dead_letter(br#"{"data":{"id":5,"person":{"id":7}}}"#, old),
        dead_letter(b"\x00 not json", now),
    ]
}

fn sqlite_store(dir: &Path) -> String {
    let path = dir.join("store.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    for delivery in deliveries() {
        store.record_blocking(delivery).unwrap();
    }
    store.close().unwrap();
    path.to_str().unwrap().to_owned()
}

fn run(args: &[&str]) -> Output {
    protime(args).output().unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let output = run(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_lines(&output.stdout).pop().unwrap()
}

fn changes(store: &str) -> Vec<Value> {
    let output = run(&["changes", "--store", store]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_lines(&output.stdout)
}

fn names_person(line: &Value, person: i64) -> bool {
    line["change"]["data"]["person"]["id"].as_i64() == Some(person)
}

#[test]
fn purge_without_a_limit_is_refused() {
    let dir = temp_dir("purge-refused");
    let store = sqlite_store(&dir);
    let output = run(&["purge", "--store", &store]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no limit"), "{stderr}");
    // A bad age is a usage error too.
    let output = run(&["purge", "--store", &store, "--change-log-older-than", "30"]);
    assert_eq!(output.status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn purge_dry_run_counts_what_the_purge_then_removes() {
    let dir = temp_dir("purge-sqlite");
    let store = sqlite_store(&dir);
    let captures = dir.join("captures");
    std::fs::create_dir_all(&captures).unwrap();
    let capture = captures.join("request-1-000001.json");
    std::fs::write(&capture, "{}").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&capture)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400))
        .unwrap();
    let captures = captures.to_str().unwrap();
    let args = [
        "purge",
        "--store",
        &store,
        "--raw-bodies-older-than",
        "30d",
        "--change-log-older-than",
        "35d",
        "--dead-letters-older-than",
        "30d",
        "--capture-dir",
        captures,
        "--captures-older-than",
        "7d",
        "--json",
    ];
    let before = changes(&store);
    assert_eq!(before.len(), 4);

    let mut dry_args = args.to_vec();
    dry_args.push("--dry-run");
    let dry = ok_json(&dry_args);
    assert_eq!(dry["dry_run"], true);
    // Id 1's v1 goes (change log); ids 1 v2 and 3 are current and stay with their bodies.
    assert_eq!(dry["change_log_entries"], 1);
    assert_eq!(dry["raw_bodies"], 0);
    assert_eq!(dry["dead_letters"], 1);
    assert_eq!(dry["captures"], 1);
    assert_eq!(changes(&store), before, "a dry run removes nothing");
    assert!(Path::new(&capture).exists());

    let done = ok_json(&args);
    assert_eq!(done["dry_run"], false);
    for kind in [
        "change_log_entries",
        "raw_bodies",
        "dead_letters",
        "captures",
    ] {
        assert_eq!(done[kind], dry[kind], "{kind}");
    }
    assert!(!Path::new(&capture).exists());
    let after = changes(&store);
    assert_eq!(after.len(), 3);
    let listed = run(&["clockings", "list", "--store", &store]);
    assert!(listed.status.success());

    // The text form: one line.
    let output = run(&["purge", "--store", &store, "--change-log-older-than", "1d"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("removed: "), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn check_forget(store: &str) {
    let dry = ok_json(&[
        "forget",
        "--store",
        store,
        "--person",
        "7",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(
        (
            &dry["clockings"],
            &dry["change_log_entries"],
            &dry["dead_letters"]
        ),
        (&Value::from(2), &Value::from(3), &Value::from(1))
    );
    let before = changes(store);
    assert!(before.iter().any(|line| names_person(line, 7)));

    let done = ok_json(&["forget", "--store", store, "--person", "7", "--json"]);
    for kind in ["clockings", "change_log_entries", "dead_letters"] {
        assert_eq!(done[kind], dry[kind], "{kind}");
    }
    let after = changes(store);
    assert!(
        !after.iter().any(|line| names_person(line, 7)),
        "{after:#?}"
    );
    assert!(after.iter().any(|line| names_person(line, 8)));
    let erased: Vec<(i64, String)> = after
        .iter()
        .filter(|line| line["origin"] == "erasure")
        .map(|line| {
            assert_eq!(line["change"]["changeType"], "Delete");
            (
                line["change"]["data"]["id"].as_i64().unwrap(),
                line["change"]["data"]["changeVersion"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(erased, vec![(1, "02".to_owned()), (2, "01".to_owned())]);
    // The erasure entries follow everything a follower had read before.
    let last_before = before
        .iter()
        .map(|l| l["cursor"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        after
            .iter()
            .filter(|line| line["origin"] == "erasure")
            .all(|line| line["cursor"].as_u64().unwrap() > last_before)
    );
}

#[test]
fn forget_erases_a_person_on_sqlite_and_the_feed_shows_it() {
    let dir = temp_dir("forget-sqlite");
    let store = sqlite_store(&dir);
    check_forget(&store);
    // Refused: no such store, a person id that is not one.
    let missing = dir.join("missing.sqlite");
    let output = run(&[
        "forget",
        "--store",
        missing.to_str().unwrap(),
        "--person",
        "7",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!missing.exists());
    let output = run(&["forget", "--store", &store, "--person", "0"]);
    assert_eq!(output.status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_erases_a_person_on_postgres_and_the_feed_shows_it() {
    let Some(database) = TestDatabase::create("cli_forget").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    for delivery in deliveries() {
        store.record(delivery).await.unwrap();
    }
    store.close().await;
    let url = database.url();
    tokio::task::spawn_blocking(move || check_forget(&url))
        .await
        .unwrap();
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_retention_in_the_background_and_stops_with_it() {
    use protime_sandbox::{Sandbox, SandboxConfig};
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 2,
        days: 2,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = temp_dir("serve-retention");
    let store = dir.join("store.sqlite");
    // Two old versions of a clocking the sandbox does not have: v1 is history, v2 current.
    let id = 900_000_001;
    {
        let sqlite = SqliteStore::open(&store).unwrap();
        let old = Utc::now() - Duration::days(40);
        sqlite
            .record_blocking(webhook(&upsert(id, "01", 7), old))
            .unwrap();
        sqlite
            .record_blocking(webhook(&upsert(id, "02", 7), old))
            .unwrap();
        sqlite.close().unwrap();
    }
    let port = free_port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_protime"));
    let mut child = common::with_sandbox_env(&mut command, &sandbox, "RetentionTest/1.0 (protime)")
        .args(["serve", "--quiet", "--port", &port.to_string()])
        .args(["--destination", &format!("http://127.0.0.1:{port}/")])
        .args(["--allow-insecure-destinations", "--state-dir"])
        .arg(dir.join("state"))
        .arg("--store")
        .arg(&store)
        .args(["--from", "2026-01-01", "--to", "2026-12-31"])
        .args([
            "--retention-change-log",
            "30d",
            "--retention-interval",
            "1s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::stderr_lines(&mut child);
    let mut child = Running(child);
    let seen = common::wait_for_line(
        &lines,
        "retention every 1s",
        std::time::Duration::from_secs(10),
    );
    assert!(
        seen.last().unwrap().contains("change log 2592000s"),
        "{seen:?}"
    );
    // The first run removes v1; the next ones find nothing more.
    let seen = common::wait_for_line(
        &lines,
        "retention: removed 0 raw bodies, 1 change-log entries",
        std::time::Duration::from_secs(20),
    );
    assert!(
        seen.iter().all(|line| !line.contains("retention failed")),
        "{seen:?}"
    );
    common::wait_for_line(
        &lines,
        "retention: removed 0 raw bodies, 0 change-log entries",
        std::time::Duration::from_secs(10),
    );
    let status = terminate(&mut child, std::time::Duration::from_secs(30));
    assert!(status.success(), "{status:?}");

    let sqlite = SqliteStore::open(&store).unwrap();
    let current = sqlite
        .clocking_blocking(protime_model::ClockingId::new(id).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(current.change_version.as_str(), "02");
    sqlite.close().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn serve_check_config_shows_each_subscriptions_retention() {
    let dir = temp_dir("serve-retention-config");
    let config = dir.join("protime.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[subscription]]
name = "acme"
base_url = "http://127.0.0.1:9"
token_url = "http://127.0.0.1:9/token"
client_id = "c"
client_secret_env = "RETENTION_TEST_SECRET"
user_agent = "RetentionTest/1.0 (protime)"
destination = "http://127.0.0.1:9/acme"
path = "/acme"
store = "sqlite:{store}"
state_dir = "{state}"
from = 2026-01-01
to = 2026-12-31
allow_insecure_destinations = true
[subscription.retention]
raw_bodies = "30d"
change_log = "180d"
"#,
            store = dir.join("acme.sqlite").display(),
            state = dir.join("state").display(),
        ),
    )
    .unwrap();
    let check = |overrides: &[(&str, &str)]| {
        let mut command = protime(&[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--check-config",
        ]);
        command.env("RETENTION_TEST_SECRET", "s");
        for (name, value) in overrides {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let output = check(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(
            "  retention every 3600s: raw bodies 2592000s, change log 15552000s, dead letters kept"
        ),
        "{stdout}"
    );
    let output = check(&[
        ("PROTIME_SUBSCRIPTION_ACME_RETENTION_RAW_BODIES", "14d"),
        ("PROTIME_SUBSCRIPTION_ACME_RETENTION_INTERVAL", "15m"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("retention every 900s: raw bodies 1209600s"),
        "{stdout}"
    );
    let output = check(&[("PROTIME_SUBSCRIPTION_ACME_RETENTION_DEAD_LETTERS", "90")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("retention.dead_letters"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
