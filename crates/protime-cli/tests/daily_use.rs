//! Daily use against a sandbox, as a person at a terminal would: trigger an insert, an
//! update, a delete, a partial and an invalid event; `clockings get` shows each state;
//! `dead-letters list` shows what the receiver refused; `dead-letters replay` applies what
//! passes the default profile now and leaves what still fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use protime_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use serde_json::Value;

mod common;
use common::{free_port, temp_dir, terminate};

/// `protime` connected to the sandbox.
fn protime(sandbox: &RunningSandbox, args: &[&str]) -> Command {
    let mut command = common::protime(args);
    common::with_sandbox_env(&mut command, sandbox, "DailyUseTest/1.0 (protime)");
    command
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    output
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    common::json_lines(&output.stdout)
}

fn trigger(sandbox: &RunningSandbox, args: &[&str]) -> Value {
    let mut all = vec!["trigger"];
    all.extend_from_slice(args);
    all.push("--json");
    let triggered = json_of(&run(&mut protime(sandbox, &all)));
    assert_eq!(triggered["subscribers"], 1, "{triggered}");
    triggered
}

/// Polls `clockings get ID --json` until `accept` holds (deliveries are asynchronous).
fn wait_for_clocking(store: &Path, id: u64, accept: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let output = run(&mut common::protime(&[
            "clockings",
            "get",
            &id.to_string(),
            "--json",
            "--store",
            store.to_str().unwrap(),
        ]));
        let seen: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        if accept(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "clocking {id} never reached the expected state; last: {seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn dead_letters(store: &Path) -> Vec<Value> {
    let output = run(&mut common::protime(&[
        "dead-letters",
        "list",
        "--json",
        "--store",
        store.to_str().unwrap(),
    ]));
    assert!(output.status.success());
    json_lines(&output)
}

fn wait_for_dead_letter(store: &Path, version: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(letter) = dead_letters(store)
            .into_iter()
            .find(|letter| letter["body"].as_str().unwrap().contains(version))
        {
            return letter;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter with version {version}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_shows_in_clockings_and_dead_letters_and_replay_applies_what_passes_now() {
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 5,
        days: 5,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = temp_dir("trigger");
    let store = dir.join("store.sqlite");
    let key_file = dir.join("webhook.key");
    let port = free_port();
    let store_arg = store.to_str().unwrap();

    // Baseline and webhook, then the receiver — strict, so that a partial event is refused.
    let synced = run(protime(
        &sandbox,
        &["sync", "--from", "2026-01-05", "--to", "2026-01-09"],
    )
    .args(["--destination", &format!("http://127.0.0.1:{port}/")])
    .args(["--allow-insecure-destinations", "--store", store_arg])
    .arg("--key-file")
    .arg(&key_file));
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    let mut receiver = common::start({
        let mut command = common::protime(&["receive", "--port", &port.to_string()]);
        command
            .args(["--store", store_arg, "--strict", "--key-file"])
            .arg(&key_file);
        command
    });
    let _ = &receiver.url;

    // Insert: the new clocking, of the kind asked for.
    let inserted = trigger(&sandbox, &["insert", "--kind", "reason"]);
    let id = inserted["id"].as_u64().unwrap();
    let version = inserted["change_version"].as_str().unwrap().to_owned();
    let stored = wait_for_clocking(&store, id, |seen| seen["changeVersion"] == version.as_str());
    assert_eq!(stored["deleted"], false);
    assert_eq!(stored["clocking"]["kind"], "Reason");
    assert_eq!(stored["clocking"], inserted["body"]["data"]);

    // Update: the new time.
    let updated = trigger(&sandbox, &["update", "--id", &id.to_string()]);
    let version = updated["change_version"].as_str().unwrap().to_owned();
    let stored = wait_for_clocking(&store, id, |seen| seen["changeVersion"] == version.as_str());
    assert_eq!(stored["clocking"], updated["body"]["data"]);

    // Delete: a tombstone.
    let deleted = trigger(&sandbox, &["delete", "--id", &id.to_string()]);
    let version = deleted["change_version"].as_str().unwrap().to_owned();
    let stored = wait_for_clocking(&store, id, |seen| seen["changeVersion"] == version.as_str());
    assert_eq!(stored["deleted"], true);
    assert_eq!(stored["clocking"], Value::Null);

    // Invalid under every profile, and partial (valid by default, refused by --strict): both
    // dead-lettered, with their violations.
    let invalid = trigger(&sandbox, &["invalid"]);
    let invalid_letter = wait_for_dead_letter(&store, invalid["change_version"].as_str().unwrap());
    assert_eq!(invalid_letter["replay_outcome"], Value::Null);
    assert!(
        invalid_letter["errors"]
            .to_string()
            .contains("/data/timeOfDayInMinutes")
    );
    let partial = trigger(&sandbox, &["partial"]);
    let partial_id = partial["id"].as_u64().unwrap();
    let partial_version = partial["change_version"].as_str().unwrap().to_owned();
    assert_eq!(partial["body"]["data"].as_object().unwrap().len(), 3);
    let partial_letter = wait_for_dead_letter(&store, &partial_version);
    let before = wait_for_clocking(&store, partial_id, |seen| !seen.is_null());
    assert_ne!(before["changeVersion"], partial_version.as_str());

    // The text listing shows both, pending.
    let listed = run(&mut common::protime(&[
        "dead-letters",
        "list",
        "--store",
        store_arg,
    ]));
    let text = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(text.matches("pending").count(), 2, "{text}");

    // Replay all under the default profile: the partial event is applied, the invalid one is
    // still invalid (exit 1) and stays pending.
    let replayed = run(&mut common::protime(&[
        "dead-letters",
        "replay",
        "--all",
        "--json",
        "--store",
        store_arg,
    ]));
    assert_eq!(
        replayed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let results = json_lines(&replayed);
    let result_of = |letter: &Value| {
        results
            .iter()
            .find(|result| result["id"] == letter["id"])
            .unwrap()["result"]
            .clone()
    };
    assert_eq!(result_of(&partial_letter), "applied", "{results:?}");
    assert_eq!(result_of(&invalid_letter), "invalid", "{results:?}");
    let after = wait_for_clocking(&store, partial_id, |seen| {
        seen["changeVersion"] == partial_version.as_str()
    });
    assert_eq!(after["clocking"]["id"], partial_id);
    let letters = dead_letters(&store);
    let status = |letter: &Value| {
        letters.iter().find(|l| l["id"] == letter["id"]).unwrap()["replay_outcome"].clone()
    };
    assert_eq!(status(&partial_letter), "applied");
    assert_eq!(status(&invalid_letter), Value::Null);

    // A second replay leaves the replayed one alone.
    let again = run(&mut common::protime(&[
        "dead-letters",
        "replay",
        "--json",
        "--store",
        store_arg,
        &partial_letter["id"].to_string(),
    ]));
    assert!(again.status.success());
    assert_eq!(json_lines(&again)[0]["result"], "already_replayed");

    assert!(terminate(&mut receiver.child, Duration::from_secs(10)).success());
    sandbox.shutdown().await;
}

#[test]
fn reading_commands_refuse_a_store_that_does_not_exist_and_create_nothing() {
    let dir = temp_dir("missing");
    let store = dir.join("typo.sqlite");
    for args in [
        vec!["clockings", "list"],
        vec!["clockings", "get", "1"],
        vec!["dead-letters", "list"],
        vec!["dead-letters", "replay", "--all"],
    ] {
        let output = run(common::protime(&args).arg("--store").arg(&store));
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--store") && stderr.lines().count() == 1,
            "{stderr}"
        );
        assert!(!store.exists(), "{args:?} created the store");
    }
}

#[test]
fn trigger_without_a_sandbox_names_the_fix() {
    let port = free_port();
    let output = run(&mut common::protime(&[
        "trigger",
        "insert",
        "--sandbox",
        &format!("http://127.0.0.1:{port}"),
    ]));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("protime sandbox") && stderr.contains("--sandbox"),
        "{stderr}"
    );
    let output = run(&mut common::protime(&["trigger", "insert", "--id", "5"]));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--id"));
}

/// A sandbox serving list and get items shaped like the docs' examples (no `changeVersion`):
/// `protime sync` stores every listed clocking, reports each as unversioned and warns that a
/// later sync does not refresh them; `--strict` still skips them as invalid; a versioned
/// webhook event of one of them supersedes it, and a second sync neither overwrites that
/// event nor refreshes the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_of_example_shaped_items_stores_them_unversioned_until_a_versioned_change() {
    let sandbox = Sandbox::start(SandboxConfig {
        port: 0,
        people: 5,
        days: 5,
        example_shaped_items: true,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = temp_dir("unversioned");
    let store = dir.join("store.sqlite");
    let key_file = dir.join("webhook.key");
    let port = free_port();
    let store_arg = store.to_str().unwrap();
    let (from, to) = ("2026-01-05", "2026-01-09");
    let in_range: Vec<u64> = sandbox
        .all_clockings()
        .iter()
        .filter(|c| {
            let date = c.date.to_string();
            date.as_str() >= from && date.as_str() <= to
        })
        .map(|c| c.id.get())
        .collect();
    assert!(in_range.len() > 5, "{in_range:?}");
    let sync = |store: &str, key_file: &Path, strict: bool| {
        let mut command = protime(&sandbox, &["sync", "--from", from, "--to", to, "--json"]);
        command
            .args(["--destination", &format!("http://127.0.0.1:{port}/")])
            .args(["--allow-insecure-destinations", "--store", store])
            .arg("--key-file")
            .arg(key_file);
        if strict {
            command.arg("--strict");
        }
        let output = run(&mut command);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (json_of(&output), stderr)
    };

    // --strict: every item lacks changeVersion, so every item is invalid and none is stored.
    let strict_store = dir.join("strict.sqlite");
    let (strict, _) = sync(
        strict_store.to_str().unwrap(),
        &dir.join("strict.key"),
        true,
    );
    assert_eq!(strict["synced"], 0, "{strict}");
    assert_eq!(strict["invalid"], in_range.len(), "{strict}");
    assert_eq!(strict["unversioned"], 0, "{strict}");
    // That webhook must not receive the events below.
    for webhook in sandbox.webhooks() {
        run(&mut protime(&sandbox, &["webhooks", "delete", &webhook.id]));
    }

    // By default: every listed clocking is stored, unversioned, with a warning.
    let (synced, stderr) = sync(store_arg, &key_file, false);
    assert_eq!(synced["synced"], in_range.len(), "{synced}");
    assert_eq!(synced["applied"], in_range.len(), "{synced}");
    assert_eq!(synced["unversioned"], in_range.len(), "{synced}");
    assert_eq!(synced["invalid"], 0, "{synced}");
    assert!(
        stderr.contains("warning")
            && stderr.contains("without a changeVersion")
            && stderr.contains("does not refresh"),
        "{stderr}"
    );
    let listed = run(&mut common::protime(&[
        "clockings",
        "list",
        "--json",
        "--store",
        store_arg,
    ]));
    let listed = json_lines(&listed);
    let mut stored_ids: Vec<u64> = listed.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    stored_ids.sort_unstable();
    let mut expected = in_range.clone();
    expected.sort_unstable();
    assert_eq!(stored_ids, expected);
    assert!(
        listed.iter().all(|c| c.get("changeVersion").is_none()),
        "{listed:?}"
    );
    let id = expected[0];
    let before = wait_for_clocking(&store, id, |seen| !seen.is_null());
    assert!(before.get("changeVersion").is_none(), "{before}");
    assert_eq!(before["deleted"], false);

    // A versioned webhook event of one of them supersedes it.
    let mut receiver = common::start({
        let mut command = common::protime(&["receive", "--port", &port.to_string()]);
        command
            .args(["--store", store_arg, "--key-file"])
            .arg(&key_file);
        command
    });
    let _ = &receiver.url;
    let updated = trigger(&sandbox, &["update", "--id", &id.to_string()]);
    let version = updated["change_version"].as_str().unwrap().to_owned();
    let after = wait_for_clocking(&store, id, |seen| seen["changeVersion"] == version.as_str());
    assert_eq!(after["clocking"], updated["body"]["data"]);

    // A second sync refreshes nothing: the updated clocking keeps its version, and the other
    // unversioned rows are duplicates.
    let (again, _) = sync(store_arg, &dir.join("again.key"), false);
    assert_eq!(again["applied"], 0, "{again}");
    assert_eq!(again["notNewer"], in_range.len(), "{again}");
    assert_eq!(again["unversioned"], in_range.len(), "{again}");
    let kept = wait_for_clocking(&store, id, |seen| !seen.is_null());
    assert_eq!(kept["changeVersion"], version.as_str(), "{kept}");

    terminate(&mut receiver.child, Duration::from_secs(10));
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
