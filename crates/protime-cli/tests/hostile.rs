//! `protime receive` against hostile connections and a broken store, from outside, on
//! loopback and bounded in time: 2,000 idle connections under a soft limit of 1,024 open
//! files, 400 stalled unauthenticated 1 MiB bodies (resident memory bounded), a store file
//! deleted under the running receiver, and a read-only store at start and while running.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use protime_webhooks::signature::{SignatureScheme, WebhookKey, sign};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

mod common;

const KEY: &str = "hostile-test-key";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `protime receive` (this build's, or `PROTIME_TEST_BINARY`) on a free port with `store`, under a soft limit of `open_files` open
/// files; when this test runs as root, as the user `nobody` (so that file permissions
/// apply), with the binary copied into `dir` where that user can run it.
fn receive(dir: &Path, store: &Path, open_files: u32, extra: &[&str]) -> Command {
    // PROTIME_TEST_BINARY runs these against another build, e.g. the release binary:
    // `PROTIME_TEST_BINARY=target/release/protime cargo test -p protime-cli --test hostile`.
    let mut binary = std::env::var_os("PROTIME_TEST_BINARY").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_protime")),
        PathBuf::from,
    );
    let mut command = Command::new("sh");
    let mut script = format!("ulimit -Sn {open_files} && exec \"$@\"");
    if is_root() {
        let copy = dir.join("protime");
        if !copy.exists() {
            std::fs::copy(&binary, &copy).unwrap();
        }
        binary = copy;
        chown_to_nobody(dir);
        script = format!(
            "ulimit -Sn {open_files} && exec setpriv --reuid=65534 --regid=65534 --clear-groups -- \"$@\""
        );
    }
    command
        .args(["-c", &script, "sh"])
        .arg(binary)
        .args(["receive", "--port", "0", "--quiet", "--store"])
        .arg(store)
        .args(extra)
        .env("PROTIME_WEBHOOK_KEY", KEY)
        .env_remove("PROTIME_LOG");
    command
}

fn chown_to_nobody(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn signed(id: i64) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let body =
        format!(r#"{{"changeType":"Delete","data":{{"changeVersion":"{id:020X}","id":{id}}}}}"#)
            .into_bytes();
    let mut headers = sign(
        &SignatureScheme::default(),
        &WebhookKey::new(KEY).unwrap(),
        &body,
        None,
    )
    .unwrap();
    headers.insert("content-type", "application/json".parse().unwrap());
    (headers, body)
}

/// Posts a signed delivery of `id`; returns the status and how long the answer took.
async fn deliver(url: &str, id: i64) -> (u16, Duration) {
    let (headers, body) = signed(id);
    let started = Instant::now();
    let status = reqwest::Client::new()
        .post(url)
        .headers(headers)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_or(0, |response| response.status().as_u16());
    (status, started.elapsed())
}

/// The resident memory of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// The receiver's own process id (the shell `exec`s it, and setpriv `exec`s it in turn).
fn pid_of(started: &common::Started) -> u32 {
    started.child.0.id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_under_1024_open_files_do_not_delay_a_delivery() {
    let dir = common::temp_dir("idle");
    let started = common::start(receive(&dir, &dir.join("store.sqlite"), 1024, &[]));
    let address = common::address_of(&started.url);
    let mut idle = Vec::new();
    for _ in 0..2000 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&address)).await
        {
            idle.push(stream);
        }
    }
    assert!(idle.len() >= 1900, "only {} connections opened", idle.len());
    for id in 1..=5 {
        let (status, took) = deliver(&started.url, id).await;
        assert_eq!(status, 200, "delivery {id}");
        assert!(took < Duration::from_secs(1), "delivery {id} took {took:?}");
    }
    drop(idle);
    drop(started);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_hundred_stalled_unauthenticated_bodies_raise_memory_by_at_most_64_mb() {
    let dir = common::temp_dir("stalled");
    let started = common::start(receive(&dir, &dir.join("store.sqlite"), 4096, &[]));
    let address = common::address_of(&started.url);
    let pid = pid_of(&started);
    // Warm up (first delivery, store pages), then measure.
    assert_eq!(deliver(&started.url, 1).await.0, 200);
    let before = resident_bytes(pid);

    let mut senders = Vec::new();
    for _ in 0..400 {
        let address = address.clone();
        senders.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(&address).await else {
                return None;
            };
            let length = 1024 * 1024 - 1;
            let head = format!(
                "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
            // All of the body but its last byte, then nothing.
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent + chunk.len() < length {
                match tokio::time::timeout(Duration::from_secs(3), stream.write_all(&chunk)).await
                {
                    Ok(Ok(())) => sent += chunk.len(),
                    _ => break,
                }
            }
            Some(stream)
        }));
    }
    let mut streams = Vec::new();
    for sender in senders {
        streams.push(sender.await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = resident_bytes(pid);
    let grown = during.saturating_sub(before);
    eprintln!(
        "resident memory: {} MB before, {} MB with 400 stalled bodies (+{} MB)",
        before / 1_000_000,
        during / 1_000_000,
        grown / 1_000_000
    );
    assert!(grown <= 64 * 1024 * 1024, "grew by {grown} bytes");
    drop(streams);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        deliver(&started.url, 2).await.0,
        200,
        "room again after the flood"
    );
    drop(started);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_deleted_under_the_receiver_gets_no_2xx_and_is_not_ready() {
    let dir = common::temp_dir("deleted");
    let store = dir.join("store.sqlite");
    let admin = common::free_port();
    let started = common::start(receive(
        &dir,
        &store,
        4096,
        &["--admin", &format!("127.0.0.1:{admin}")],
    ));
    assert_eq!(deliver(&started.url, 1).await.0, 200);
    std::fs::remove_file(&store).unwrap();
    for id in 2..=4 {
        assert_eq!(deliver(&started.url, id).await.0, 503, "delivery {id}");
    }
    let ready = reqwest::get(format!("http://127.0.0.1:{admin}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let text = ready.text().await.unwrap();
    assert!(text.contains("deleted"), "{text}");
    drop(started);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_is_refused_at_start_and_while_running() {
    let dir = common::temp_dir("readonly");
    let store = dir.join("store.sqlite");
    // A store made read-only while the receiver runs: 503, never 2xx.
    let started = common::start(receive(&dir, &store, 4096, &[]));
    assert_eq!(deliver(&started.url, 1).await.0, 200);
    let read_only = |path: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
    };
    read_only(&store);
    assert_eq!(deliver(&started.url, 2).await.0, 503);
    drop(started);

    // Started on a read-only store: one clear line, exit 1.
    let output = receive(&dir, &store, 4096, &[]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("read-only"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_one_byte_per_second_are_cut_off_within_the_default_10_s() {
    let dir = common::temp_dir("slowloris");
    let started = common::start(receive(&dir, &dir.join("store.sqlite"), 4096, &[]));
    let address = common::address_of(&started.url);
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let begun = Instant::now();
    let trickle = b"POST / HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut_off = None;
    for byte in trickle {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = Some(begun.elapsed());
            break;
        }
        // A closed connection shows as a read of 0 bytes (or an error) within the second.
        let mut buffer = [0_u8; 256];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::io::AsyncReadExt::read(&mut stream, &mut buffer),
        )
        .await
        {
            cut_off = Some(begun.elapsed());
            break;
        }
    }
    let cut_off = cut_off.expect("still open after the whole trickle");
    assert!(
        cut_off <= Duration::from_secs(11),
        "cut off after {cut_off:?}"
    );
    drop(started);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Another process opening and closing the store (here `protime changes`) must not make the
/// running receiver lose what it acknowledges: a descriptor of the database file closed in
/// the receiver's process would drop SQLite's locks, and the other process, taking itself
/// for the last connection, would delete the WAL the receiver is still writing to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_reading_the_store_does_not_lose_acknowledged_deliveries() {
    let dir = common::temp_dir("second-process");
    let store = dir.join("store.sqlite");
    let started = common::start(receive(&dir, &store, 4096, &[]));
    let mut acknowledged = 0;
    for round in 0..4_i64 {
        for id in 1..=5 {
            assert_eq!(deliver(&started.url, round * 10 + id).await.0, 200);
            acknowledged += 1;
        }
        let output = common::protime(&["changes", "--store"])
            .arg(&store)
            .output()
            .unwrap();
        assert!(output.status.success());
        let lines = String::from_utf8_lossy(&output.stdout).lines().count();
        assert_eq!(
            lines, acknowledged,
            "round {round}: the feed lost deliveries"
        );
    }
    let mut receiver = started.child;
    assert!(common::terminate(&mut receiver, Duration::from_secs(20)).success());
    let output = common::protime(&["changes", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        acknowledged
    );
    let _ = std::fs::remove_dir_all(&dir);
}
