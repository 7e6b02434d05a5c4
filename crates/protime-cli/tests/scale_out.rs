//! Scale-out test: three `protime receive` replicas share one PostgreSQL database while one
//! sender spreads signed deliveries over them (redeliveries, reordering, deletions), one
//! replica is killed with SIGKILL mid-load and restarted, and `protime sync` loads a sandbox
//! into the same database at the same time. Afterwards every acknowledged delivery is in the
//! store, every id is at its greatest version, the sync's clockings are all there, and
//! `protime changes` prints a dense, ordered feed and follows new commits.
//!
//! Needs a server (DATABASE_URL or PG*); skipped loudly without one, unless
//! PROTIME_REQUIRE_POSTGRES=1, which makes a missing server a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead as _, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, mpsc};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use protime_client::{ClientSecret, ClockingsFilter, ProtimeClient};
use protime_store_postgres::PgStore;
use protime_store_postgres::testing::TestDatabase;
use protime_webhooks::signature::{SignatureScheme, WebhookKey, sign};
use protime_webhooks::sink::SinkRead as _;
use serde_json::{Value, json};

const KEY: &str = "scale-out-test-key";
/// The shared ids are `SHARED_BASE + 1 ..= SHARED_BASE + SHARED_IDS`. The sandbox numbers
/// its clockings from 19,250 up, 1 to 3 apart (protime-sandbox, `State::seeded`): with 50
/// people × 30 days that stays far below 10⁹, and the test checks that no sandbox id falls
/// into this range.
const SHARED_BASE: i64 = 9_000_000_000;
const SHARED_IDS: i64 = 200;
/// Versions 1..=VERSIONS of every shared id.
const VERSIONS: u32 = 8;
/// Deliveries acknowledged before a replica is killed.
const BEFORE_KILL: usize = 400;
const SENDERS: usize = 8;
const REPLICAS: usize = 3;
const USER_AGENT: &str = "ScaleOutTest/1.0 (protime)";
const SYNC_FROM: &str = "2026-01-01";
const SYNC_TO: &str = "2026-03-31";

// -- processes -------------------------------------------------------------------------------

/// Every child process of the test, killed (SIGKILL) and reaped when the test ends, however
/// it ends; then the test's schema and its scratch directory are removed.
struct Harness {
    children: Mutex<Vec<(String, Child)>>,
    database: Option<TestDatabase>,
    /// Scratch files (the sync's webhook key).
    work: std::path::PathBuf,
}

impl Harness {
    fn new(database: TestDatabase) -> Self {
        let work = std::env::temp_dir().join(format!("protime-scale-out-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        Self {
            children: Mutex::new(Vec::new()),
            database: Some(database),
            work,
        }
    }

    fn children(&self) -> std::sync::MutexGuard<'_, Vec<(String, Child)>> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `command` with piped standard output and error; returns its pid and the pipes.
    fn spawn(&self, label: &str, command: &mut Command) -> (u32, Pipes) {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        let pipes = Pipes {
            stdout: child.stdout.take().unwrap(),
            stderr: child.stderr.take().unwrap(),
        };
        let pid = child.id();
        self.children().push((label.to_owned(), child));
        (pid, pipes)
    }

    /// SIGKILL: no shutdown hook runs.
    fn kill(&self, pid: u32) {
        let mut children = self.children();
        let index = children.iter().position(|(_, c)| c.id() == pid).unwrap();
        let (_, mut child) = children.remove(index);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM (what a service manager sends).
    fn terminate(&self, pid: u32) {
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits for `pid` to exit, at most `limit`; `None` if it is still running.
    async fn wait(&self, pid: u32, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            {
                let mut children = self.children();
                let index = children.iter().position(|(_, c)| c.id() == pid).unwrap();
                if let Some(status) = children[index].1.try_wait().unwrap() {
                    children.remove(index);
                    return Some(status);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut *self.children()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(database) = self.database.take() {
            // Drop may run inside the test's runtime (or while it unwinds): use a thread of
            // its own with a runtime of its own.
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(database.cleanup());
                }
            })
            .join();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

struct Pipes {
    stdout: std::process::ChildStdout,
    stderr: std::process::ChildStderr,
}

/// Reads `pipe` to its end on a thread of its own; the text once it closes.
fn collect(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Sends each line of `pipe` on a channel, on a thread of its own.
fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn protime() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_protime"));
    command.env_remove("PROTIME_STORE");
    command
}

/// Starts `protime receive` on a free port on the store; returns its pid and delivery URL,
/// read from the line it prints once listening.
fn start_receiver(harness: &Harness, store: &str, label: &str) -> (u32, String) {
    let (pid, pipes) = harness.spawn(
        label,
        protime()
            .args(["receive", "--port", "0", "--store", store])
            .env("PROTIME_WEBHOOK_KEY", KEY),
    );
    drop(collect(pipes.stdout));
    let stderr = lines(pipes.stderr);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stderr.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line
                    .split_whitespace()
                    .find(|word| word.starts_with("http://"))
                {
                    let url = url.trim_end_matches([',', '.', ')']).to_owned();
                    // Keep draining, so the receiver's later log lines never hit a closed
                    // pipe.
                    std::thread::spawn(move || for _ in stderr {});
                    return (pid, url);
                }
                seen.push(line);
            }
            Err(_) => panic!("{label} did not start listening: {seen:#?}"),
        }
    }
}

/// Starts `protime sandbox` on a free port; returns the environment naming it.
fn start_sandbox(harness: &Harness) -> Vec<(String, String)> {
    let (_, pipes) = harness.spawn(
        "sandbox",
        protime().args([
            "sandbox", "--port", "0", "--rate", "0", "--people", "50", "--days", "30",
        ]),
    );
    drop(collect(pipes.stderr));
    let stdout = lines(pipes.stdout);
    let mut env = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stdout
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the sandbox did not start; it printed {env:?}"));
        if let Some((name, value)) = line.trim().split_once('=')
            && name.starts_with("PROTIME_")
        {
            env.push((name.to_owned(), value.to_owned()));
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in stdout {});
    assert!(
        env.iter().any(|(name, _)| name == "PROTIME_BASE_URL")
            && env.iter().any(|(name, _)| name == "PROTIME_TOKEN_URL"),
        "the sandbox prints its connection settings: {env:?}"
    );
    env.push(("PROTIME_USER_AGENT".into(), USER_AGENT.into()));
    env
}

fn setting<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    env.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{name} is not set"))
}

// -- deliveries ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Update,
    /// `InsertOrUpdate` with `status: Deleted`.
    SoftDelete,
    Delete,
}

impl Kind {
    fn removes(self) -> bool {
        self != Self::Update
    }
}

#[derive(Debug, Clone, Copy)]
struct Planned {
    id: i64,
    version: u32,
    kind: Kind,
}

/// Fixed-width hex, so that byte order is numeric order.
fn version_text(version: u32) -> String {
    format!("{version:020X}")
}

fn body(id: i64, version: u32, kind: Kind) -> Vec<u8> {
    let change_version = version_text(version);
    let value = match kind {
        Kind::Delete => json!({
            "changeType": "Delete",
            "data": {"changeVersion": change_version, "id": id}
        }),
        Kind::Update | Kind::SoftDelete => json!({
            "changeType": "InsertOrUpdate",
            "data": {
                "changeVersion": change_version, "id": id, "person": {"id": 1 + id % 17},
                "date": "2026-01-15", "timeOfDayInMinutes": (id + i64::from(version)) % 1440,
                "kind": "InOut",
                "status": if kind == Kind::SoftDelete { "Deleted" } else { "Active" }
            }
        }),
    };
    serde_json::to_vec(&value).unwrap()
}

/// The kind of version `version` of `id`: some ids end deleted or soft-deleted, some are
/// deleted or soft-deleted on the way and brought back by a later update.
fn kind_of(id: i64, version: u32) -> Kind {
    match (version, id % 6, id % 5) {
        (VERSIONS, 0 | 3, _) => Kind::Delete,
        (VERSIONS, 1, _) => Kind::SoftDelete,
        (5, _, 0) => Kind::Delete,
        (3, _, 1) => Kind::SoftDelete,
        _ => Kind::Update,
    }
}

/// A small deterministic generator (same sequence on every run).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
}

/// A replica as the sender sees it: its URL and which start of it this is.
#[derive(Debug, Clone)]
struct Replica {
    url: String,
    generation: usize,
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    planned: Planned,
    replica: usize,
    generation: usize,
}

/// Signs and posts one delivery; `Ok(true)` on 2xx, `Ok(false)` on a 5xx, 408 or 429 (try
/// elsewhere), `Err` when the connection failed (try elsewhere); any other status fails the
/// test.
async fn post(
    http: &reqwest::Client,
    url: &str,
    key: &WebhookKey,
    body: Vec<u8>,
) -> Result<bool, reqwest::Error> {
    let mut headers = sign(&SignatureScheme::default(), key, &body, None).unwrap();
    headers.insert("content-type", "application/json".parse().unwrap());
    let response = http.post(url).headers(headers).body(body).send().await?;
    let status = response.status();
    if status.is_success() {
        Ok(true)
    } else if status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        Ok(false)
    } else {
        let text = response.text().await.unwrap_or_default();
        panic!("{url} answered {status}: {text}");
    }
}

struct Load {
    queue: Mutex<VecDeque<Planned>>,
    replicas: RwLock<Vec<Replica>>,
    acks: Mutex<Vec<Ack>>,
    acknowledged: AtomicUsize,
    failed_attempts: AtomicUsize,
}

/// One sender task: takes deliveries off the queue until it is empty, each to the next
/// replica in its rotation; a delivery that fails goes to another replica, as Protime would
/// retry it.
async fn sender(load: Arc<Load>, http: reqwest::Client, key: WebhookKey, worker: usize) {
    let mut turn = worker;
    loop {
        let Some(planned) = load
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
        else {
            return;
        };
        let payload = body(planned.id, planned.version, planned.kind);
        let mut attempt = 0_u32;
        loop {
            turn += 1;
            let slot = turn % REPLICAS;
            let replica =
                load.replicas.read().unwrap_or_else(PoisonError::into_inner)[slot].clone();
            if let Ok(true) = post(&http, &replica.url, &key, payload.clone()).await {
                load.acks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Ack {
                        planned,
                        replica: slot,
                        generation: replica.generation,
                    });
                load.acknowledged.fetch_add(1, Ordering::Relaxed);
                break;
            }
            load.failed_attempts.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
            assert!(
                attempt < 100,
                "{planned:?} was refused {attempt} times by every replica"
            );
            tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt.min(10)))).await;
        }
    }
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `N` of "…; N clockings loaded (A applied, …" in the sync's output.
fn number_before(text: &str, marker: &str) -> u64 {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in {text:?}"));
    text[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no number before {marker:?} in {text:?}"))
}

// -- the test --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_killed_mid_load_lose_nothing_and_the_feed_stays_dense() {
    let started = Instant::now();
    let Some(database) = TestDatabase::create("scaleout").await else {
        return;
    };
    let store_url = database.url();
    let schema = database.schema().to_owned();
    // A plain session, to see when the follower below is listening.
    let session = database.session().await.unwrap();
    let harness = Harness::new(database);

    // Three replicas on the one database (each migrates under the advisory lock).
    let mut pids = Vec::new();
    let mut replicas = Vec::new();
    for n in 0..REPLICAS {
        let (pid, url) = start_receiver(&harness, &store_url, &format!("replica {n}"));
        pids.push(pid);
        replicas.push(Replica { url, generation: 0 });
    }
    let sandbox = start_sandbox(&harness);
    eprintln!(
        "[{:.1} s] 3 replicas and the sandbox are up",
        started.elapsed().as_secs_f64()
    );

    // ~200 shared ids × 8 versions, each sent 1–3 times, all shuffled.
    let mut random = XorShift(0x5CA1_E007_0000_0001);
    let mut plan = Vec::new();
    let mut distinct = 0_usize;
    for id in SHARED_BASE + 1..=SHARED_BASE + SHARED_IDS {
        for version in 1..=VERSIONS {
            let planned = Planned {
                id,
                version,
                kind: kind_of(id, version),
            };
            distinct += 1;
            for _ in 0..=random.below(3) {
                plan.push(planned);
            }
        }
    }
    for i in (1..plan.len()).rev() {
        plan.swap(i, random.below(i + 1));
    }
    let planned_requests = plan.len();
    let load = Arc::new(Load {
        queue: Mutex::new(plan.into()),
        replicas: RwLock::new(replicas),
        acks: Mutex::new(Vec::new()),
        acknowledged: AtomicUsize::new(0),
        failed_attempts: AtomicUsize::new(0),
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let key = WebhookKey::new(KEY).unwrap();
    let senders: Vec<_> = (0..SENDERS)
        .map(|worker| tokio::spawn(sender(Arc::clone(&load), http.clone(), key.clone(), worker)))
        .collect();
    let load_started = Instant::now();

    // The sync runs while the load goes on.
    wait_for(
        "100 acknowledged deliveries",
        Duration::from_secs(20),
        || load.acknowledged.load(Ordering::Relaxed) >= 100,
    )
    .await;
    let waiting = load
        .queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    assert!(waiting > 0, "the load ended before the sync started");
    let key_file = harness.work.join("webhook.key");
    let (sync_pid, sync_pipes) = harness.spawn(
        "sync",
        protime()
            .args([
                "sync",
                "--from",
                SYNC_FROM,
                "--to",
                SYNC_TO,
                "--destination",
                "http://127.0.0.1:9/hook",
                "--allow-insecure-destinations",
                "--store",
                &store_url,
                "--key-file",
            ])
            .arg(&key_file)
            .envs(sandbox.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
    );
    let sync_stdout = collect(sync_pipes.stdout);
    let sync_stderr = collect(sync_pipes.stderr);

    // Mid-load: SIGKILL replica 1, restart it on the same database, back into the rotation.
    wait_for(
        "the acknowledged deliveries before the kill",
        Duration::from_secs(30),
        || load.acknowledged.load(Ordering::Relaxed) >= BEFORE_KILL,
    )
    .await;
    let acknowledged_before_kill = load.acknowledged.load(Ordering::Relaxed);
    harness.kill(pids[1]);
    assert!(acknowledged_before_kill >= BEFORE_KILL);
    let killed_at = Instant::now();
    let (pid, url) = tokio::task::block_in_place(|| {
        start_receiver(&harness, &store_url, "replica 1 (restarted)")
    });
    pids[1] = pid;
    load.replicas
        .write()
        .unwrap_or_else(PoisonError::into_inner)[1] = Replica { url, generation: 1 };
    let restart_took = killed_at.elapsed();
    eprintln!(
        "[{:.1} s] replica 1 killed after {acknowledged_before_kill} acknowledged deliveries; back after {:.2} s",
        started.elapsed().as_secs_f64(),
        restart_took.as_secs_f64()
    );

    for sender in senders {
        tokio::time::timeout(Duration::from_secs(40), sender)
            .await
            .expect("the load did not finish in time")
            .unwrap();
    }
    let load_took = load_started.elapsed();
    let sync_status = harness
        .wait(sync_pid, Duration::from_secs(40))
        .await
        .expect("the sync did not finish in time");
    let sync_out = sync_stdout.join().unwrap();
    let sync_err = sync_stderr.join().unwrap();
    assert!(
        sync_status.success(),
        "the sync failed ({sync_status}): {sync_out}\n{sync_err}"
    );
    let acks = load
        .acks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    eprintln!(
        "[{:.1} s] load: {} deliveries acknowledged in {:.2} s ({} failed attempts retried elsewhere); sync: {}",
        started.elapsed().as_secs_f64(),
        acks.len(),
        load_took.as_secs_f64(),
        load.failed_attempts.load(Ordering::Relaxed),
        sync_out.trim()
    );
    // Every delivery was eventually acknowledged, and the restarted replica took part.
    assert_eq!(acks.len(), planned_requests);
    let after_restart = acks
        .iter()
        .filter(|a| a.replica == 1 && a.generation == 1)
        .count();
    assert!(
        after_restart > 0,
        "the restarted replica acknowledged nothing: the load ended before it was back"
    );

    let store = PgStore::connect(&store_url).await.unwrap();

    // (a) and (b): every acknowledged version is stored or superseded; every shared id is at
    // its greatest version, a tombstone iff that version removed it.
    let tracked: HashMap<i64, (String, bool)> = store
        .tracked_versions()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, version, deleted)| (id.get(), (version.as_str().to_owned(), deleted)))
        .collect();
    let mut greatest: BTreeMap<i64, Planned> = BTreeMap::new();
    for ack in &acks {
        let planned = ack.planned;
        let (stored, _) = tracked
            .get(&planned.id)
            .unwrap_or_else(|| panic!("acknowledged id {} is not in the store", planned.id));
        assert!(
            *stored >= version_text(planned.version),
            "id {}: acknowledged version {} but the store holds {stored}",
            planned.id,
            planned.version
        );
        let entry = greatest.entry(planned.id).or_insert(planned);
        if planned.version > entry.version {
            *entry = planned;
        }
    }
    assert_eq!(greatest.len(), usize::try_from(SHARED_IDS).unwrap());
    let mut tombstones = 0;
    for (id, planned) in &greatest {
        assert_eq!(planned.version, VERSIONS);
        let (stored, deleted) = &tracked[id];
        assert_eq!(*stored, version_text(planned.version), "id {id}");
        assert_eq!(*deleted, planned.kind.removes(), "id {id}: {planned:?}");
        tombstones += usize::from(*deleted);
    }
    assert!(tombstones > 0 && tombstones < greatest.len());

    // (c): every clocking the sandbox lists for the synced range is in the store, at the
    // sandbox's version; and their number is what the sync reported.
    let loaded = number_before(&sync_out, " clockings loaded");
    let sync_applied = number_before(&sync_out, " applied");
    assert!(loaded > 0, "the sync loaded nothing: {sync_out}");
    assert!(sync_out.contains(" 0 invalid"), "{sync_out}");
    let client = ProtimeClient::builder()
        .base_url(setting(&sandbox, "PROTIME_BASE_URL"))
        .token_url(setting(&sandbox, "PROTIME_TOKEN_URL"))
        .client_credentials(
            "sandbox-client",
            ClientSecret::new("sandbox-secret"),
            ProtimeClient::WEBHOOK_SCOPES,
        )
        .user_agent(USER_AGENT)
        .build()
        .unwrap();
    let filter =
        ClockingsFilter::between(SYNC_FROM.parse().unwrap(), SYNC_TO.parse().unwrap()).unwrap();
    let upstream: Vec<_> = client
        .clockings(&filter)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        upstream.len() as u64,
        loaded,
        "the sandbox lists {} clockings",
        upstream.len()
    );
    for clocking in &upstream {
        let id = clocking.id.get();
        assert!(
            !(SHARED_BASE..=SHARED_BASE + 2 * SHARED_IDS).contains(&id),
            "sandbox id {id} collides with the shared ids"
        );
        let state = store
            .state(clocking.id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("synced clocking {id} is not in the store"));
        assert_eq!(state.change_version, clocking.change_version, "id {id}");
        assert_eq!(state.clocking.is_none(), clocking.is_deleted(), "id {id}");
    }

    // (d): the whole feed, as `protime changes` prints it: positions 1..N, N = applied.
    let stats = store.stats().await.unwrap();
    let (changes_pid, changes_pipes) = harness.spawn(
        "changes",
        protime().args(["changes", "--store", &store_url]),
    );
    let feed_stdout = collect(changes_pipes.stdout);
    let feed_stderr = collect(changes_pipes.stderr);
    let status = harness
        .wait(changes_pid, Duration::from_secs(30))
        .await
        .expect("protime changes did not finish");
    let feed_text = feed_stdout.join().unwrap();
    assert!(
        status.success(),
        "protime changes failed ({status}): {}",
        feed_stderr.join().unwrap()
    );
    let feed: Vec<Value> = feed_text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(!feed.is_empty());
    assert_eq!(feed.len() as u64, stats.applied, "feed length vs applied");
    let mut last: HashMap<i64, String> = HashMap::new();
    let mut by_origin: HashMap<String, u64> = HashMap::new();
    for (index, entry) in feed.iter().enumerate() {
        assert_eq!(entry["cursor"].as_u64(), Some(index as u64 + 1), "{entry}");
        assert!(entry["received_at"].is_string(), "{entry}");
        let origin = entry["origin"].as_str().unwrap().to_owned();
        assert!(origin == "webhook" || origin == "sync", "{entry}");
        *by_origin.entry(origin).or_default() += 1;
        let change = &entry["change"];
        assert!(change["changeType"].is_string(), "{entry}");
        let id = change["data"]["id"].as_i64().unwrap();
        let version = change["data"]["changeVersion"].as_str().unwrap().to_owned();
        if let Some(before) = last.insert(id, version.clone()) {
            assert!(
                before < version,
                "cursor {}: id {id} went from {before} to {version}",
                index + 1
            );
        }
    }
    // The feed ends where the state is, for every id; the sync's applied clockings are its
    // `sync` entries.
    assert_eq!(last.len(), tracked.len());
    for (id, (version, _)) in &tracked {
        assert_eq!(last.get(id), Some(version), "id {id}");
    }
    assert_eq!(by_origin.get("sync").copied().unwrap_or(0), sync_applied);
    let webhook_entries = by_origin.get("webhook").copied().unwrap_or(0);
    assert!(webhook_entries >= u64::try_from(SHARED_IDS).unwrap());
    assert!(webhook_entries <= distinct as u64);
    assert!(stats.applied + stats.duplicates + stats.stale >= acks.len() as u64 + sync_applied);

    // (e): a follower started at the end of the feed prints a new delivery within 1 s, and
    // SIGTERM ends it with exit 0 (documented in `protime changes --help`).
    let end = feed.len() as u64;
    let (follow_pid, follow_pipes) = harness.spawn(
        "changes --follow",
        protime().args([
            "changes",
            "--store",
            &store_url,
            "--since",
            &end.to_string(),
            "--follow",
        ]),
    );
    let follow_stderr = collect(follow_pipes.stderr);
    let followed = lines(follow_pipes.stdout);
    let replica_url = load.replicas.read().unwrap_or_else(PoisonError::into_inner)[0]
        .url
        .clone();
    let probe = SHARED_BASE + 2 * SHARED_IDS;
    let next_line = |limit: Duration| {
        tokio::task::block_in_place(|| {
            let line = followed
                .recv_timeout(limit)
                .unwrap_or_else(|_| panic!("the follower printed nothing within {limit:?}"));
            serde_json::from_str::<Value>(&line).unwrap()
        })
    };
    // The first one only shows that the follower is up and reading from the right cursor.
    assert!(
        post(&http, &replica_url, &key, body(probe, 1, Kind::Update))
            .await
            .unwrap()
    );
    let first = next_line(Duration::from_secs(15));
    assert_eq!(first["cursor"].as_u64(), Some(end + 1), "{first}");
    assert_eq!(first["change"]["data"]["id"].as_i64(), Some(probe));
    // The follower may print what is there before it listens (see the report of this
    // test): wait until its LISTEN session on this schema's channel is idle, i.e. listening.
    // (tokio-postgres is not a dependency of this crate: the session's type goes unnamed.)
    let listening_since = Instant::now();
    loop {
        let row = session
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND state = 'idle'
                   AND query LIKE 'LISTEN %' AND position($1 in query) > 0",
                &[&schema],
            )
            .await
            .unwrap();
        let listeners: i64 = row.get(0);
        if listeners > 0 {
            break;
        }
        assert!(
            listening_since.elapsed() < Duration::from_secs(15),
            "no session is listening for the schema {schema}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The measured one: from its acknowledgement to its line.
    assert!(
        post(&http, &replica_url, &key, body(probe, 2, Kind::Update))
            .await
            .unwrap()
    );
    let acknowledged = Instant::now();
    let second = next_line(Duration::from_secs(1));
    let latency = acknowledged.elapsed();
    assert_eq!(second["cursor"].as_u64(), Some(end + 2), "{second}");
    assert_eq!(
        second["change"]["data"]["changeVersion"].as_str(),
        Some(version_text(2).as_str())
    );
    harness.terminate(follow_pid);
    let status = harness
        .wait(follow_pid, Duration::from_secs(10))
        .await
        .expect("the follower did not stop on SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "the follower ended with {status}: {}",
        follow_stderr.join().unwrap()
    );

    eprintln!(
        "[{:.1} s] checked: {} shared ids ({tombstones} tombstones), {loaded} synced clockings, feed of {} ({} webhook, {} sync), follow latency {:.0} ms",
        started.elapsed().as_secs_f64(),
        greatest.len(),
        feed.len(),
        webhook_entries,
        sync_applied,
        latency.as_secs_f64() * 1000.0
    );
    store.close().await;
    drop(harness);
}
