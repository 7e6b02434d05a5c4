//! The `protime` binary, bad input included: every failure is a clear message and a non-zero
//! exit, never a panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

fn protime() -> Command {
    let mut command = Command::cargo_bin("protime").unwrap();
    // Never pick up a developer's real configuration.
    for var in [
        "PROTIME_TENANT",
        "PROTIME_BASE_URL",
        "PROTIME_TOKEN_URL",
        "PROTIME_CLIENT_ID",
        "PROTIME_CLIENT_SECRET",
        "PROTIME_USER_AGENT",
        "PROTIME_WEBHOOK_KEY",
        "PROTIME_LOG",
    ] {
        command.env_remove(var);
    }
    command
}

fn corpus(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/clocking-changes")
        .join(path)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("protime-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// No panic message may ever reach the user.
fn no_panic() -> impl Predicate<str> {
    predicate::str::contains("panicked").not()
}

#[test]
fn help_lists_every_command() {
    protime().arg("--help").assert().success().stdout(
        predicate::str::contains("demo")
            .and(predicate::str::contains("sandbox"))
            .and(predicate::str::contains("receive"))
            .and(predicate::str::contains("webhooks"))
            .and(predicate::str::contains("sync"))
            .and(predicate::str::contains("validate"))
            .and(predicate::str::contains("schema")),
    );
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    protime()
        .args(["validate", "--frobnicate", "x.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unexpected argument '--frobnicate'").and(no_panic()));
}

#[test]
fn validate_accepts_a_valid_delivery() {
    protime()
        .arg("validate")
        .arg(corpus("valid/inout-all-fields.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains("ok").and(predicate::str::contains("clocking 19250")));
}

#[test]
fn validate_reports_violations_with_pointers_and_exits_1() {
    protime()
        .arg("validate")
        .arg(corpus("valid/inout-minimal.json"))
        .arg(corpus("invalid/R9-time-of-day-2881.json"))
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("INVALID")
                .and(predicate::str::contains("/data/timeOfDayInMinutes"))
                .and(predicate::str::contains("number.range")),
        )
        .stderr(no_panic());
}

#[test]
fn validate_json_is_machine_readable() {
    let output = protime()
        .args(["validate", "--json"])
        .arg(corpus("invalid/R15-reason-on-inout.json"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(report[0]["valid"], false);
    assert_eq!(report[0]["errors"][0]["code"], "kind.forbidden_field");
    assert_eq!(report[0]["errors"][0]["pointer"], "/data/reason");
}

#[test]
fn validate_reads_standard_input_and_reports_invalid_json() {
    protime()
        .args(["validate", "-"])
        .write_stdin("{\"changeType\": \"Delete\", \"data\": ")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("json.syntax"))
        .stderr(no_panic());
    protime()
        .args(["validate", "-"])
        .write_stdin(
            r#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000C","id":1001}}"#,
        )
        .assert()
        .success()
        .stdout(predicate::str::contains("Delete clocking 1001"));
}

#[test]
fn an_unreadable_file_is_a_clear_error() {
    protime()
        .args(["validate", "/nonexistent/delivery.json"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("error: cannot read /nonexistent/delivery.json")
                .and(no_panic()),
        );
}

#[test]
fn missing_credentials_are_named() {
    protime()
        .args(["webhooks", "list", "--tenant", "acme"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("missing credentials")
                .and(predicate::str::contains("PROTIME_CLIENT_ID"))
                .and(no_panic()),
        );
    protime()
        .args([
            "webhooks",
            "list",
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--tenant",
            "acme",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("missing User-Agent").and(no_panic()));
    protime()
        .args([
            "webhooks",
            "list",
            "--client-id",
            "c",
            "--client-secret",
            "s",
            "--tenant",
            "acme",
            "--user-agent",
            "curl/8",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("ServiceName/Version (Company Name)").and(no_panic()));
}

#[test]
fn receive_needs_a_key() {
    protime()
        .args(["receive", "--port", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--key").and(no_panic()));
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = temp_dir("port");
    protime()
        .args(["receive", "--key", "k", "--port", &port, "--store"])
        .arg(dir.join("store.sqlite"))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("cannot listen on 127.0.0.1:")
                .and(predicate::str::contains("in use"))
                .and(no_panic()),
        );
}

#[test]
fn schema_writes_both_files() {
    let dir = temp_dir("schema");
    protime()
        .args(["schema", "--out"])
        .arg(&dir)
        .assert()
        .success();
    for name in [
        "clocking-change.schema.json",
        "clocking.schema.json",
        "clocking-change.strict.schema.json",
        "clocking.strict.schema.json",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let committed = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../schemas")
                .join(name),
        )
        .unwrap();
        assert_eq!(text, committed, "{name} differs from the committed schema");
    }
}

#[test]
fn the_demo_ends_with_the_store_equal_to_the_sandbox() {
    let dir = temp_dir("demo");
    protime()
        .args(["demo", "--changes", "200", "--store"])
        .arg(dir.join("demo.sqlite"))
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("store == sandbox")
                .and(predicate::str::contains("dead letters                 0"))
                .and(predicate::str::contains("p50")),
        );
}

#[test]
fn a_sandbox_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    protime()
        .args(["sandbox", "--port", &port])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot start the sandbox").and(no_panic()));
}

/// `protime sandbox` in the background, killed on drop.
struct BackgroundSandbox {
    child: std::process::Child,
    env: Vec<(String, String)>,
}

impl BackgroundSandbox {
    fn start() -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("protime"))
            .args(["sandbox", "--port", "0", "--rate", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut env = Vec::new();
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some((name, value)) = line.trim().split_once('=')
                && name.starts_with("PROTIME_")
            {
                env.push((name.to_string(), value.to_string()));
            }
            if line.starts_with("Ctrl-C") {
                break;
            }
        }
        assert_eq!(env.len(), 5, "the sandbox prints its connection settings");
        assert!(
            env.iter().any(|(name, _)| name == "PROTIME_USER_AGENT"),
            "and a User-Agent the client accepts"
        );
        Self { child, env }
    }

    fn protime(&self) -> Command {
        let mut command = protime();
        command
            .envs(self.env.clone())
            .env("PROTIME_USER_AGENT", "CliTests/1.0 (protime)");
        command
    }
}

impl Drop for BackgroundSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn webhooks_are_managed_against_the_sandbox() {
    let sandbox = BackgroundSandbox::start();
    let dir = temp_dir("webhooks");
    let key_file = dir.join("webhook.key");
    let output = sandbox
        .protime()
        .args([
            "webhooks",
            "create",
            "--destination",
            "http://127.0.0.1:9/hook",
            "--allow-insecure-destinations",
            "--key-file",
        ])
        .arg(&key_file)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(output).unwrap();
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("id"))
        .map(|id| id.trim().to_string())
        .unwrap();
    assert!(
        !std::fs::read_to_string(&key_file).unwrap().is_empty(),
        "the key is written once"
    );
    assert!(
        !stdout.contains(&std::fs::read_to_string(&key_file).unwrap()),
        "and not printed"
    );
    // A second webhook for the same destination would strand its receiver: refused, and
    // nothing is created or written.
    let before = std::fs::read_to_string(&key_file).unwrap();
    sandbox
        .protime()
        .args([
            "webhooks",
            "create",
            "--destination",
            "http://127.0.0.1:9/hook",
            "--allow-insecure-destinations",
            "--key-file",
        ])
        .arg(&key_file)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(id.as_str()).and(predicate::str::contains("--allow-second")),
        );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), before);
    // Asked for explicitly, a second webhook's key is added to the file; the first one's
    // stays (a receiver may still get deliveries for it), and the file stays private.
    sandbox
        .protime()
        .args([
            "webhooks",
            "create",
            "--destination",
            "http://127.0.0.1:9/hook",
            "--allow-insecure-destinations",
            "--allow-second",
            "--key-file",
        ])
        .arg(&key_file)
        .assert()
        .success();
    let keys = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(
        keys.lines().filter(|l| !l.trim().is_empty()).count(),
        2,
        "both keys kept"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    sandbox
        .protime()
        .args(["webhooks", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(id.as_str()));
    sandbox
        .protime()
        .args(["webhooks", "get", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains("Enabled"));
    sandbox
        .protime()
        .args(["webhooks", "delete", &id])
        .assert()
        .success();
    sandbox
        .protime()
        .args(["webhooks", "list", "--status", "disabled"])
        .assert()
        .success()
        .stdout(predicate::str::contains(id.as_str()));
    // A non-HTTPS destination is refused unless explicitly allowed.
    sandbox
        .protime()
        .args([
            "webhooks",
            "create",
            "--destination",
            "http://127.0.0.1:9/hook",
        ])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("--allow-insecure-destinations")
                .and(predicate::str::contains("https://"))
                .and(no_panic()),
        );
}

#[test]
fn wrong_arguments_are_one_line_naming_the_flag_and_create_nothing() {
    let sandbox = BackgroundSandbox::start();
    let dir = temp_dir("arguments");
    let store = dir.join("never.sqlite");
    // A plain-HTTP destination: refused before the store file is created.
    let output = sandbox
        .protime()
        .args(["sync", "--from", "2026-01-05", "--to", "2026-01-18"])
        .args(["--destination", "http://127.0.0.1:9/hook"])
        .arg("--store")
        .arg(&store)
        .arg("--key-file")
        .arg(dir.join("k"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--destination"), "{stderr}");
    assert!(
        !store.exists(),
        "the store was created before the arguments were checked"
    );
    // Not a URL at all: said so, with an example, and nothing created either.
    let output = sandbox
        .protime()
        .args(["sync", "--from", "2026-01-05", "--to", "2026-01-18"])
        .args(["--destination", "notaurl", "--allow-insecure-destinations"])
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--destination") && stderr.contains("not a URL"),
        "{stderr}"
    );
    assert!(!store.exists());
    // --tenant and --base-url contradict each other: clap says so.
    protime()
        .args([
            "webhooks",
            "list",
            "--tenant",
            "acme",
            "--base-url",
            "http://127.0.0.1:9",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--tenant").and(predicate::str::contains("--base-url")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sync_loads_the_baseline_into_the_store_and_subscribes() {
    let sandbox = BackgroundSandbox::start();
    let dir = temp_dir("sync");
    let key_file = dir.join("webhook.key");
    sandbox
        .protime()
        .args([
            "sync",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--destination",
            "http://127.0.0.1:9/hook",
            "--allow-insecure-destinations",
            "--store",
        ])
        .arg(dir.join("store.sqlite"))
        .arg("--key-file")
        .arg(&key_file)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("clockings loaded").and(predicate::str::contains("0 invalid")),
        );
    // With --strict too: every sandbox clocking carries what the strict profile requires.
    sandbox
        .protime()
        .args([
            "sync",
            "--strict",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--destination",
            "http://127.0.0.1:9/hook",
            "--allow-insecure-destinations",
            "--store",
        ])
        .arg(dir.join("strict.sqlite"))
        .arg("--key-file")
        .arg(dir.join("strict.key"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("clockings loaded").and(predicate::str::contains("0 invalid")),
        );
    assert!(
        !std::fs::read_to_string(&key_file)
            .unwrap()
            .trim()
            .is_empty()
    );
    sandbox
        .protime()
        .args(["webhooks", "list", "--status", "enabled"])
        .assert()
        .success()
        .stdout(predicate::str::contains("http://127.0.0.1:9/hook"));
    // A range over one year is refused before anything is sent.
    sandbox
        .protime()
        .args([
            "sync",
            "--from",
            "2026-01-01",
            "--to",
            "2027-01-01",
            "--destination",
            "https://x.example/hook",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("longer than one year").and(no_panic()));
}

#[test]
fn api_errors_are_one_line_in_the_clis_words_with_the_fix() {
    let sandbox = BackgroundSandbox::start();
    let one_line = |output: &std::process::Output| {
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        // No operation ids, no Rust Debug output.
        for leak in ["get_webhook", "list_webhooks", "Some(", "None"] {
            assert!(!stderr.contains(leak), "{leak} in {stderr}");
        }
        stderr
    };
    let output = sandbox
        .protime()
        .args(["webhooks", "get", "no-such-webhook"])
        .output()
        .unwrap();
    let stderr = one_line(&output);
    assert!(
        stderr.contains("HTTP 404") && stderr.contains("protime webhooks list"),
        "{stderr}"
    );
    let output = sandbox
        .protime()
        .args(["webhooks", "list", "--client-secret", "wrong"])
        .output()
        .unwrap();
    let stderr = one_line(&output);
    assert!(stderr.contains("--client-secret"), "{stderr}");
    let output = protime()
        .args(["webhooks", "list", "--base-url", "http://127.0.0.1:9"])
        .args([
            "--token-url",
            "http://127.0.0.1:9/token",
            "--client-id",
            "a",
        ])
        .args(["--client-secret", "b", "--user-agent", "T/1 (t)"])
        .output()
        .unwrap();
    let stderr = one_line(&output);
    assert!(
        stderr.contains("--token-url") && stderr.contains("network"),
        "{stderr}"
    );
}

#[test]
fn webhooks_and_sync_speak_json_and_an_empty_sync_warns() {
    let sandbox = BackgroundSandbox::start();
    let dir = temp_dir("json");
    let json = |output: std::process::Output| -> Vec<serde_json::Value> {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    // A range the sandbox holds no data in: loaded nothing, and says so.
    let output = sandbox
        .protime()
        .args([
            "sync",
            "--from",
            "2025-03-01",
            "--to",
            "2025-03-31",
            "--json",
        ])
        .args([
            "--destination",
            "http://127.0.0.1:9/json",
            "--allow-insecure-destinations",
        ])
        .arg("--store")
        .arg(dir.join("store.sqlite"))
        .arg("--key-file")
        .arg(dir.join("k"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.contains("warning") && stderr.contains("--from"),
        "{stderr}"
    );
    let synced = json(output);
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0]["synced"], 0);
    let id = synced[0]["webhookId"].as_str().unwrap().to_owned();
    assert!(synced[0]["keyFingerprint"].is_string());

    let listed = json(
        sandbox
            .protime()
            .args(["webhooks", "list", "--json"])
            .output()
            .unwrap(),
    );
    assert!(listed.iter().any(|w| w["id"] == id.as_str()), "{listed:?}");
    let got = json(
        sandbox
            .protime()
            .args(["webhooks", "get", &id, "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(got[0]["destinationUrl"], "http://127.0.0.1:9/json");
    let created = json(
        sandbox
            .protime()
            .args(["webhooks", "create", "--json", "--allow-second"])
            .args([
                "--destination",
                "http://127.0.0.1:9/json",
                "--allow-insecure-destinations",
            ])
            .output()
            .unwrap(),
    );
    assert!(created[0]["key"].is_string() && created[0]["validUntil"].is_string());
    let deleted = json(
        sandbox
            .protime()
            .args(["webhooks", "delete", &id, "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(deleted[0]["deleted"], id.as_str());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_or_malformed_postgres_store_is_one_clear_line() {
    for command in [
        vec!["changes"],
        vec!["receive", "--key", "k", "--port", "0"],
    ] {
        let started = std::time::Instant::now();
        protime()
            .args(&command)
            .args([
                "--store",
                "postgres://app:s3cret@127.0.0.1:1/payroll?connect_timeout=2",
            ])
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains("cannot connect to PostgreSQL at app@127.0.0.1:1/payroll")
                    .and(predicate::str::contains("s3cret").not())
                    .and(no_panic()),
            );
        assert!(started.elapsed() < std::time::Duration::from_secs(15));
    }
    protime()
        .args(["changes", "--store", "postgres://app@127.0.0.1:notaport/x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value").and(no_panic()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_against_postgres_and_refuses_a_used_store() {
    let Some(database) = protime_store_postgres::testing::TestDatabase::create("demo").await else {
        return;
    };
    let url = database.url();
    let run = |url: String| {
        std::thread::spawn(move || {
            protime()
                .args(["demo", "--changes", "200", "--store", &url])
                .timeout(std::time::Duration::from_secs(120))
                .assert()
        })
        .join()
        .unwrap()
    };
    run(url.clone()).success().stdout(
        predicate::str::contains("store == sandbox")
            .and(predicate::str::contains("postgres"))
            .and(predicate::str::contains("dead letters                 0")),
    );
    run(url)
        .code(1)
        .stderr(predicate::str::contains("is not empty").and(no_panic()));
    database.cleanup().await;
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        protime()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("protime").and(predicate::str::contains("serve")));
    }
}
