//! `protime doctor signature` finds the scheme of deliveries captured with `protime receive
//! --capture` from sandboxes that sign in five different ways, prints flags that then verify
//! the deliveries, and says "no match" for a wrong key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::http::HeaderName;
use protime_sandbox::{Sandbox, SandboxConfig};
use protime_webhooks::signature::{KeyEncoding, SignatureEncoding, SignatureScheme, SignedContent};

mod common;

fn receive(port: u16, extra: &[&str]) -> common::Started {
    let mut command = common::protime(&["receive", "--port", &port.to_string(), "--in-memory"]);
    command.args(extra);
    common::start(command)
}

fn captures(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

fn doctor(key_file: &Path, files: &[PathBuf]) -> (Option<i32>, String) {
    let output = common::protime(&["doctor", "signature", "--key-file"])
        .arg(key_file)
        .args(files)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The flags line the doctor recommends (the line after "as flags").
fn recommended_flags(report: &str) -> Vec<String> {
    let line = report
        .lines()
        .skip_while(|l| !l.contains("as flags"))
        .nth(1)
        .unwrap_or_else(|| panic!("no recommendation in:\n{report}"))
        .trim()
        .to_owned();
    if line.starts_with("(the defaults") {
        return Vec::new();
    }
    line.split_whitespace()
        .map(|word| word.trim_matches('\'').to_owned())
        .collect()
}

async fn diagnose_one(name: &str, scheme: SignatureScheme, expected_flags: &str) {
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 5,
        days: 5,
        signature_scheme: scheme,
        retry_schedule: vec![Duration::from_millis(200); 20],
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = common::temp_dir(name);
    let (capture_dir, key_file) = (dir.join("captures"), dir.join("webhook.keys"));
    let port = common::free_port();

    // A receiver with the default settings captures what arrives (and refuses it, unless
    // the sandbox happens to sign the default way).
    let capturing = receive(
        port,
        &[
            "--key",
            "placeholder-key",
            "--capture",
            capture_dir.to_str().unwrap(),
        ],
    );
    let mut create = common::protime(&["webhooks", "create", "--allow-insecure-destinations"]);
    create
        .args(["--destination", &format!("http://127.0.0.1:{port}/")])
        .arg("--key-file")
        .arg(&key_file);
    common::with_sandbox_env(&mut create, &sandbox, "DoctorTest/1.0 (protime)");
    let created = create.output().unwrap();
    assert!(created.status.success(), "{created:?}");
    sandbox.generate(2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while captures(&capture_dir).len() < 2 {
        assert!(Instant::now() < deadline, "{name}: nothing captured");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(capturing);

    // The doctor names the scheme.
    let files = captures(&capture_dir);
    let (code, report) = doctor(&key_file, &files);
    assert_eq!(code, Some(0), "{name}:\n{report}");
    assert!(
        report.contains(expected_flags),
        "{name}: expected {expected_flags:?} in:\n{report}"
    );

    // Its flags verify the deliveries: a receiver started with them accepts what the
    // sandbox sends (retries included).
    let flags = recommended_flags(&report);
    let admin = common::free_port();
    let mut arguments: Vec<String> = vec![
        "--key-file".into(),
        key_file.to_str().unwrap().into(),
        "--admin".into(),
        format!("127.0.0.1:{admin}"),
    ];
    arguments.extend(flags);
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let verifying = receive(port, &arguments);
    sandbox.generate(2);
    assert!(
        sandbox.wait_idle(Duration::from_secs(20)).await,
        "{name}: deliveries pending"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"protime_deliveries_total{outcome="applied"}"#),
        "{name}: nothing applied with {arguments:?}:\n{metrics}"
    );
    drop(verifying);

    // A wrong key matches nothing.
    let wrong = dir.join("wrong.keys");
    std::fs::write(&wrong, "c29tZSBvdGhlciBrZXk=\n").unwrap();
    let (code, report) = doctor(&wrong, &files);
    assert_eq!(code, Some(1), "{name}:\n{report}");
    assert!(report.contains("no match"), "{name}:\n{report}");

    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_finds_five_different_schemes_and_no_match_for_a_wrong_key() {
    let header = |name: &'static str| HeaderName::from_static(name);
    let cases = [
        (
            "default",
            SignatureScheme::default(),
            "(the defaults: no flag needed)",
        ),
        (
            "prefixed",
            SignatureScheme::default()
                .with_header(header("x-signature"))
                .with_encoding(SignatureEncoding::Base64)
                .with_prefix("sha256="),
            "--signature-header x-signature --signature-encoding base64 --signature-prefix 'sha256='",
        ),
        (
            "timestamped",
            SignatureScheme::default()
                .with_encoding(SignatureEncoding::Base64Url)
                .with_key_encoding(KeyEncoding::Base64)
                .with_timestamp(header("x-timestamp"), Duration::from_secs(300)),
            "--signature-encoding base64url --key-encoding base64 --timestamp-header x-timestamp",
        ),
        (
            "standard-webhooks",
            SignatureScheme::default()
                .with_header(header("webhook-signature"))
                .with_encoding(SignatureEncoding::Base64)
                .with_prefix("v1,")
                .with_key_encoding(KeyEncoding::Base64)
                .with_content(SignedContent::IdTimestampAndBody {
                    id_header: header("webhook-id"),
                    timestamp_header: header("webhook-timestamp"),
                    tolerance: Duration::from_secs(300),
                }),
            "--signature-header webhook-signature --signature-encoding base64 --signature-prefix 'v1,' --key-encoding base64 --timestamp-header webhook-timestamp --id-header webhook-id",
        ),
        (
            "hex-key",
            SignatureScheme::default()
                .with_header(header("x-hub-signature-256"))
                .with_prefix("sha256=")
                .with_key_encoding(KeyEncoding::Hex),
            "--signature-header x-hub-signature-256 --signature-prefix 'sha256=' --key-encoding hex",
        ),
    ];
    for (name, scheme, flags) in cases {
        diagnose_one(name, scheme, flags).await;
    }
}
