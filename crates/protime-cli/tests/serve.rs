//! `protime serve` keeps a subscription alive: with webhooks valid for a few seconds it
//! renews again and again while the sandbox makes changes, survives a SIGKILL during a
//! renewal and a restart, and ends — on SIGTERM, exit 0 — with the store equal to the
//! sandbox, exactly one enabled webhook, and its key in the key file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use protime_raw::types::WebhookStatus;
use protime_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use protime_store_sqlite::SqliteStore;

mod common;
use common::{Running, free_port, terminate};

struct Serve {
    child: Running,
    lines: mpsc::Receiver<String>,
}

fn start_serve(
    sandbox: &RunningSandbox,
    port: u16,
    state: &Path,
    store: &Path,
    extra: &[&str],
) -> Serve {
    let mut command = Command::new(env!("CARGO_BIN_EXE_protime"));
    let mut child = common::with_sandbox_env(&mut command, sandbox, "ServeTest/1.0 (protime)")
        .args(["serve", "--quiet", "--port", &port.to_string()])
        .args(["--destination", &format!("http://127.0.0.1:{port}/")])
        .args(["--allow-insecure-destinations", "--state-dir"])
        .arg(state)
        .arg("--store")
        .arg(store)
        .args(["--from", "2026-01-01", "--to", "2026-12-31"])
        .args(["--lead-time-seconds", "3", "--check-seconds", "1"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::stderr_lines(&mut child);
    Serve {
        child: Running(child),
        lines,
    }
}

impl Serve {
    /// Waits for a line containing `text`; returns every line seen until then.
    fn wait_for(&self, text: &str, limit: Duration) -> Vec<String> {
        common::wait_for_line(&self.lines, text, limit)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_renews_survives_a_kill_during_a_renewal_and_converges() {
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 120,
        days: 30,
        webhook_validity: Duration::from_secs(6),
        retry_schedule: vec![
            Duration::from_millis(100),
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(2),
        ],
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = common::temp_dir("renewals");
    let (state, store) = (dir.join("state"), dir.join("store.sqlite"));
    let port = free_port();

    // Changes all along.
    let (stop_generating, generator) = common::changes_all_along(sandbox.sandbox());

    // First subscription and three renewals.
    let serve = start_serve(&sandbox, port, &state, &store, &[]);
    for _ in 0..4 {
        serve.wait_for("subscribed:", Duration::from_secs(30));
    }
    // Killed during the next renewal (after "renewing", before "subscribed").
    serve.wait_for("renewing the subscription", Duration::from_secs(30));
    let mut killed = serve.child;
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    let keys_after_kill = std::fs::read_to_string(state.join("webhook.keys")).unwrap();

    // Restarted on the same state: it resumes, cleans up and renews again.
    let serve = start_serve(&sandbox, port, &state, &store, &[]);
    serve.wait_for(
        "serving Protime clockings webhooks",
        Duration::from_secs(10),
    );
    serve.wait_for("subscribed:", Duration::from_secs(30));
    serve.wait_for("subscribed:", Duration::from_secs(30));

    // Quiet down: no more changes, every delivery answered.
    stop_generating.send(true).unwrap();
    let made = generator.await.unwrap();
    assert!(made > 100, "only {made} changes generated");
    assert!(
        sandbox.wait_idle(Duration::from_secs(20)).await,
        "deliveries still pending"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // SIGTERM: exit 0.
    let mut serve = serve;
    let status = terminate(&mut serve.child, Duration::from_secs(25));
    assert!(status.success(), "{status}");

    // Exactly one enabled webhook, the one in the state, whose key is in the key file.
    let current: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("subscription.json")).unwrap())
            .unwrap();
    let enabled: Vec<String> = sandbox
        .webhooks()
        .into_iter()
        .filter(|w| w.status == WebhookStatus::Enabled)
        .map(|w| w.id.to_string())
        .collect();
    assert_eq!(
        enabled,
        [current["webhook_id"].as_str().unwrap().to_owned()]
    );
    let keys = std::fs::read_to_string(state.join("webhook.keys")).unwrap();
    let fingerprints: Vec<String> = keys
        .lines()
        .map(|k| {
            protime_webhooks::signature::WebhookKey::new(k)
                .unwrap()
                .fingerprint()
        })
        .collect();
    assert!(
        fingerprints.contains(&current["key_fingerprint"].as_str().unwrap().to_owned()),
        "the current key is not in the key file"
    );
    assert!(
        !keys_after_kill.trim().is_empty(),
        "the key file was empty after the kill"
    );

    // The store equals the sandbox.
    let (differences, stored, expected) = common::store_differences(sandbox.sandbox(), &store);
    assert_eq!(
        differences, 0,
        "store != sandbox ({stored} vs {expected} clockings)"
    );
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn config_file(dir: &Path, sandbox: &RunningSandbox, port: u16, admin: u16) -> PathBuf {
    let mut text = format!("port = {port}\nadmin = \"127.0.0.1:{admin}\"\n");
    for name in ["good", "bad"] {
        // "good" validates strictly; "bad" by the docs (the default).
        let strict = if name == "good" {
            "strict = true\n"
        } else {
            ""
        };
        text.push_str(&format!(
            r#"
[[subscription]]
name = "{name}"
base_url = "{base}"
token_url = "{token}"
client_id = "{client}"
client_secret_env = "SERVE_TEST_{upper}_SECRET"
user_agent = "ServeTest/1.0 (protime)"
destination = "http://127.0.0.1:{port}/{name}"
path = "/{name}"
store = "sqlite:{store}"
state_dir = "{state}"
from = 2026-01-01
to = 2026-12-31
check_seconds = 1
allow_insecure_destinations = true
{strict}"#,
            base = sandbox.base_url(),
            token = sandbox.token_url(),
            client = sandbox.client_credentials().client_id,
            upper = name.to_uppercase(),
            store = dir.join(format!("{name}.sqlite")).display(),
            state = dir.join(format!("state-{name}")).display(),
        ));
    }
    let path = dir.join("protime.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_subscription_does_not_stop_the_others() {
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 10,
        days: 10,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = common::temp_dir("tenants");
    let (port, admin) = (free_port(), free_port());
    let config = config_file(&dir, &sandbox, port, admin);
    let secret = sandbox.client_credentials().client_secret.clone();
    let protime = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_protime"));
        command
            .args(["serve", "--config"])
            .arg(&config)
            .args(args)
            .env("SERVE_TEST_GOOD_SECRET", &secret)
            .env("SERVE_TEST_BAD_SECRET", "not-the-secret");
        command
    };

    // --check-config: usable as written; a secret that is not set is named.
    let checked = protime(&["--check-config"]).output().unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(stdout.contains("configuration OK: 2"), "{stdout}");
    for (name, profile) in [("good", "strict"), ("bad", "documented")] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("subscription {name}:"))
                    && l.ends_with(&format!("validation {profile}"))),
            "{stdout}"
        );
    }
    let missing = protime(&["--check-config"])
        .env_remove("SERVE_TEST_BAD_SECRET")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("SERVE_TEST_BAD_SECRET") && !stderr.contains(&secret),
        "{stderr}"
    );

    // Running: "good" subscribes and receives while "bad" keeps failing.
    let mut child = protime(&["--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::stderr_lines(&mut child);
    let serve = Serve {
        child: Running(child),
        lines,
    };
    serve.wait_for("[good] subscribed:", Duration::from_secs(30));
    sandbox.generate(20);
    assert!(sandbox.wait_idle(Duration::from_secs(20)).await);

    let http = reqwest::Client::new();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("http://127.0.0.1:{admin}{path}");
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, ready) = get("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert!(ready.contains("subscription good: active"), "{ready}");
    assert!(ready.contains("subscription bad: failing"), "{ready}");
    let (_, metrics) = get("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("protime_reinitializations_total")
                && l.contains(r#"subscription="bad""#)
                && l.contains(r#"result="failed""#)),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"protime_deliveries_total{outcome="applied"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"protime_sync_clockings{subscription="good"}"#),
        "{metrics}"
    );
    let enabled = sandbox
        .webhooks()
        .into_iter()
        .filter(|w| w.status == WebhookStatus::Enabled)
        .count();
    assert_eq!(enabled, 1, "only the good subscription has a webhook");

    // "good" is strict: a delivery with only what the docs require is dead-lettered.
    let keys = std::fs::read_to_string(dir.join("state-good").join("webhook.keys")).unwrap();
    let key = protime_webhooks::signature::WebhookKey::new(
        keys.lines().find(|l| !l.trim().is_empty()).unwrap(),
    )
    .unwrap();
    let partial = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"FFFFFFFFFFFFFFFFFFFF","id":1050,"date":"2026-01-02"}}"#;
    let mut headers = protime_webhooks::signature::sign(
        &protime_webhooks::signature::SignatureScheme::default(),
        &key,
        partial,
        None,
    )
    .unwrap();
    headers.insert("content-type", "application/json".parse().unwrap());
    let answer = http
        .post(format!("http://127.0.0.1:{port}/good"))
        .headers(headers)
        .body(partial.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer.text().await.unwrap(),
        r#"{"outcome":"dead_lettered"}"#
    );

    // A one-shot sync into a store that a running serve owns is refused (it would create a
    // webhook whose key the serve does not have).
    let refused = Command::new(env!("CARGO_BIN_EXE_protime"))
        .args(["sync", "--from", "2026-01-01", "--to", "2026-12-31"])
        .args([
            "--destination",
            "http://127.0.0.1:9/hook",
            "--allow-insecure-destinations",
        ])
        .arg("--store")
        .arg(dir.join("good.sqlite"))
        .arg("--key-file")
        .arg(dir.join("sync.key"))
        .env("PROTIME_BASE_URL", sandbox.base_url())
        .env("PROTIME_TOKEN_URL", sandbox.token_url())
        .env("PROTIME_CLIENT_ID", &sandbox.client_credentials().client_id)
        .env("PROTIME_CLIENT_SECRET", &secret)
        .env("PROTIME_USER_AGENT", "ServeTest/1.0 (protime)")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("owns the subscription"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!dir.join("sync.key").exists(), "no webhook was created");

    let mut serve = serve;
    let status = terminate(&mut serve.child, Duration::from_secs(25));
    assert!(status.success(), "{status}");
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_that_stop_verifying_renew_at_once() {
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 10,
        days: 10,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = common::temp_dir("refused");
    let port = free_port();
    let serve = start_serve(
        &sandbox,
        port,
        &dir.join("state"),
        &dir.join("store.sqlite"),
        &["--forced-renewal-interval-seconds", "0"],
    );
    serve.wait_for("subscribed:", Duration::from_secs(30));
    let first: Vec<String> = sandbox
        .webhooks()
        .into_iter()
        .map(|w| w.id.to_string())
        .collect();
    assert_eq!(first.len(), 1);

    // Deliveries signed with a key this process does not have.
    let http = reqwest::Client::new();
    for id in 1..=5 {
        let status = http
            .post(format!("http://127.0.0.1:{port}/"))
            .header("content-type", "application/json")
            .header("x-protime-signature", "00")
            .body(format!(
                r#"{{"changeType":"Delete","data":{{"changeVersion":"01","id":{id}}}}}"#
            ))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    serve.wait_for(
        "failed the signature check: renewing at once",
        Duration::from_secs(10),
    );
    serve.wait_for("subscribed:", Duration::from_secs(30));
    let enabled: Vec<String> = sandbox
        .webhooks()
        .into_iter()
        .filter(|w| w.status == WebhookStatus::Enabled)
        .map(|w| w.id.to_string())
        .collect();
    assert_eq!(enabled.len(), 1);
    assert_ne!(enabled, first, "a new webhook replaced the old one");
    drop(serve);
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_0_with_every_acknowledged_delivery_stored() {
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 10,
        days: 10,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = common::temp_dir("sigterm");
    let (state, store) = (dir.join("state"), dir.join("store.sqlite"));
    let port = free_port();
    let serve = start_serve(&sandbox, port, &state, &store, &[]);
    serve.wait_for("subscribed:", Duration::from_secs(30));

    // Signed with the webhook's key, as Protime would; ids far above the sandbox's.
    let key = protime_webhooks::signature::WebhookKey::new(
        std::fs::read_to_string(state.join("webhook.keys"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let load =
        common::load::Load::start(&format!("http://127.0.0.1:{port}/"), &key, 10_000_000, true);
    load.wait_for(400).await;
    let mut serve = serve;
    let status = terminate(&mut serve.child, Duration::from_secs(25));
    let acknowledged = load.finish().await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        acknowledged.len() >= 400,
        "only {} acknowledged",
        acknowledged.len()
    );

    let stored: std::collections::HashSet<i64> = SqliteStore::open(&store)
        .unwrap()
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
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
