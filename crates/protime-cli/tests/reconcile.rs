//! `protime serve --reconcile` keeps a delta open behind the webhooks: with a share of the
//! sandbox's deliveries lost on the way (never sent, the webhook left enabled), the store
//! still ends equal to the sandbox within one interval of the last change, and serve reports
//! how many changes it recovered — on SQLite and on PostgreSQL (which needs a server:
//! DATABASE_URL or PG*, skipped loudly without one unless PROTIME_REQUIRE_POSTGRES=1); a
//! delta that expires between two calls is reloaded without a gap.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use protime_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use protime_store_postgres::testing::TestDatabase;

mod common;
use common::{Running, free_port, terminate};

/// Seconds between two delta requests in these tests.
const INTERVAL: u64 = 3;
/// Seconds a delta's changes wait for webhooks still in flight.
const GRACE: u64 = 1;

struct Serve {
    child: Running,
    lines: mpsc::Receiver<String>,
    admin: u16,
}

/// The store a test's `serve` writes to.
enum TestStore {
    Sqlite(PathBuf),
    Postgres(Box<TestDatabase>),
}

impl TestStore {
    fn argument(&self) -> OsString {
        match self {
            Self::Sqlite(path) => path.clone().into_os_string(),
            Self::Postgres(database) => database.url().into(),
        }
    }

    /// How far the store is from the sandbox, with both sizes.
    async fn differences(&self, sandbox: &Sandbox) -> (usize, usize, usize) {
        match self {
            Self::Sqlite(path) => common::store_differences(sandbox, path),
            Self::Postgres(database) => {
                let expected = common::sandbox_versions(sandbox);
                let store = protime_store_postgres::PgStore::connect_with(database.config())
                    .await
                    .unwrap();
                let stored: BTreeMap<i64, String> = store
                    .clockings()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|c| (c.id.get(), c.change_version.as_str().to_owned()))
                    .collect();
                store.close().await;
                (
                    common::differences(&expected, &stored),
                    stored.len(),
                    expected.len(),
                )
            }
        }
    }
}

fn start_serve(sandbox: &RunningSandbox, dir: &Path, store: &TestStore) -> Serve {
    let (port, admin) = (free_port(), free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_protime"));
    let mut child = common::with_sandbox_env(&mut command, sandbox, "ReconcileTest/1.0 (protime)")
        .args(["serve", "--quiet", "--port", &port.to_string()])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .args(["--destination", &format!("http://127.0.0.1:{port}/")])
        .arg("--allow-insecure-destinations")
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--store")
        .arg(store.argument())
        .args(["--from", "2026-01-01", "--to", "2026-12-31"])
        .args(["--reconcile", "--reconcile-interval-seconds"])
        .arg(INTERVAL.to_string())
        .arg("--reconcile-grace-seconds")
        .arg(GRACE.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::stderr_lines(&mut child);
    Serve {
        child: Running(child),
        lines,
        admin,
    }
}

/// The value of a counter without labels other than `subscription="default"` (0 when absent).
async fn metric(admin: u16, name: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{subscription=\"default\"}}")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the store equals the sandbox; returns how long it took, or panics after
/// `limit` with the difference.
async fn converges(sandbox: &Sandbox, store: &TestStore, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (differences, stored, expected) = store.differences(sandbox).await;
        if differences == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "store != sandbox after {limit:?}: {differences} differences ({stored} stored, {expected} in the sandbox)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_recovers_lost_deliveries_within_one_interval() {
    let dir = common::temp_dir("reconcile-lost");
    let store = TestStore::Sqlite(dir.join("store.sqlite"));
    recovers_lost_deliveries(&dir, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_recovers_lost_deliveries_on_postgres() {
    let Some(database) = TestDatabase::create("reconcilelost").await else {
        return;
    };
    let dir = common::temp_dir("reconcile-lost-pg");
    recovers_lost_deliveries(&dir, TestStore::Postgres(Box::new(database.clone()))).await;
    database.cleanup().await;
}

async fn recovers_lost_deliveries(dir: &Path, store: TestStore) {
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 40,
        lose_probability: 0.05,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let serve = start_serve(&sandbox, dir, &store);
    common::wait_for_line(&serve.lines, "subscribed:", Duration::from_secs(30));

    // Changes for a while, 5 % of their deliveries lost on the way.
    let (stop_generating, generator) = common::changes_all_along(sandbox.sandbox());
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop_generating.send(true).unwrap();
    let made = generator.await.unwrap();
    assert!(
        sandbox.wait_idle(Duration::from_secs(20)).await,
        "deliveries still pending"
    );
    let lost = sandbox.stats().lost;
    assert!(made > 100, "only {made} changes generated");
    assert!(lost > 0, "no delivery of {made} was lost");

    // Within one interval (plus the grace period and a margin for a slow machine) the
    // delta has brought what the webhooks lost.
    let took = converges(
        sandbox.sandbox(),
        &store,
        Duration::from_secs(INTERVAL + GRACE + 4),
    )
    .await;
    eprintln!("{made} changes, {lost} deliveries lost, store == sandbox {took:?} after the last");

    // Each lost delivery either was recovered or was superseded by a later delivered change
    // of the same clocking before the delta ran, so recovered ≤ lost; with none recovered the
    // store could not have converged.
    let recovered = metric(serve.admin, "protime_reconciliation_recovered_total").await;
    assert!(
        recovered >= 1.0 && recovered <= lost as f64,
        "recovered {recovered}, lost {lost}"
    );
    let seen = common::wait_for_line(
        &serve.lines,
        "reconciliation recovered changes the webhooks had not delivered",
        Duration::from_secs(INTERVAL + GRACE + 2),
    );
    assert!(seen.last().unwrap().contains("ids="), "{seen:?}");

    let mut serve = serve;
    let status = terminate(&mut serve.child, Duration::from_secs(25));
    assert!(status.success(), "{status}");
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_is_reloaded_without_a_gap() {
    // The delta expires 2 s after its last use, sooner than the 3 s between two calls: each
    // call finds it gone (410) and a new initial load takes its place.
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 20,
        lose_probability: 0.2,
        delta_token_ttl: Duration::from_secs(2),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = common::temp_dir("reconcile-expired");
    let store = TestStore::Sqlite(dir.join("store.sqlite"));
    let serve = start_serve(&sandbox, &dir, &store);
    common::wait_for_line(&serve.lines, "subscribed:", Duration::from_secs(30));
    common::wait_for_line(
        &serve.lines,
        "the delta expired (410)",
        Duration::from_secs(3 * INTERVAL + GRACE),
    );

    sandbox.generate(60);
    assert!(sandbox.wait_idle(Duration::from_secs(20)).await);
    assert!(sandbox.stats().lost > 0, "no delivery was lost");
    converges(
        sandbox.sandbox(),
        &store,
        Duration::from_secs(2 * (INTERVAL + GRACE) + 4),
    )
    .await;
    assert!(metric(serve.admin, "protime_delta_reloads_total").await >= 1.0);

    let mut serve = serve;
    let status = terminate(&mut serve.child, Duration::from_secs(25));
    assert!(status.success(), "{status}");
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
