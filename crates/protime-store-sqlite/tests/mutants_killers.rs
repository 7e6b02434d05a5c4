//! Exact checks of what the SQLite store writes and reads back, written to kill the mutants
//! of `src/{apply,read,writer,file_watch}.rs` that the conformance suite lets through (see
//! scripts/mutants.sh): each delivery's own `received_at` inside one transaction, `list` and
//! `changes` limits, exact counts in `stats`, `tracked_versions` and the change log, synced
//! items that change nothing, and the reason given when the store's file is gone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use chrono::{DateTime, TimeZone as _, Utc};
use protime_model::ordering::ApplyOutcome;
use protime_model::{ChangeVersion, ClockingChange, ClockingId, parse_delivery};
use protime_store_sqlite::{SqliteStore, StoreError};
use protime_webhooks::sink::{Delivery, FeedCursor, SyncOrigin, WebhookOrigin};
use protime_webhooks::{Receipt, SinkRead};

mod common;
use common::TempDir;

fn upsert_body(id: i64, version: &str, minutes: i64, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":"{version}","id":{id},
        "person":{{"id":4}},"date":"2026-01-15","timeOfDayInMinutes":{minutes},"kind":"InOut"{extra}}}}}"#
    )
    .into_bytes()
}

fn delete_body(id: i64, version: &str) -> Vec<u8> {
    format!(r#"{{"changeType":"Delete","data":{{"changeVersion":"{version}","id":{id}}}}}"#)
        .into_bytes()
}

fn webhook_at(body: Vec<u8>, received_at: DateTime<Utc>) -> Delivery {
    let change = parse_delivery(&body).unwrap();
    let mut origin = WebhookOrigin::new(body.into(), "k1");
    origin.received_at = received_at;
    Delivery::webhook(change, origin)
}

fn webhook(body: Vec<u8>) -> Delivery {
    webhook_at(body, Utc::now())
}

fn synced(body: &[u8], page: u64) -> Delivery {
    let ClockingChange::InsertOrUpdate(clocking) = parse_delivery(body).unwrap() else {
        panic!("not an upsert")
    };
    Delivery::synced(clocking, SyncOrigin::new("run-1", page))
}

fn id(n: i64) -> ClockingId {
    ClockingId::new(n).unwrap()
}

fn version(text: &str) -> ChangeVersion {
    ChangeVersion::new(text).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn applied(receipt: &Result<Receipt, StoreError>) -> ApplyOutcome {
    match receipt {
        Ok(Receipt::Applied(outcome)) => *outcome,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn each_delivery_of_one_transaction_keeps_its_own_received_at() {
    let dir = TempDir::new("killers-received");
    let store = SqliteStore::open(dir.db()).unwrap();
    let times = [
        Utc.with_ymd_and_hms(2026, 1, 15, 8, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 1, 15, 8, 0, 1).unwrap(),
        Utc.with_ymd_and_hms(2026, 1, 15, 8, 0, 1).unwrap(),
        Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap(),
    ];
    let deliveries = times
        .iter()
        .enumerate()
        .map(|(n, time)| webhook_at(upsert_body(n as i64 + 1, "05", 100, ""), *time))
        .collect();
    let rt = runtime();
    let outcomes = rt.block_on(store.record_batch(deliveries));
    assert!(outcomes.iter().all(|o| applied(o) == ApplyOutcome::Applied));

    let page = rt
        .block_on(SinkRead::changes(&store, FeedCursor(0), 10))
        .unwrap();
    let got: Vec<_> = page.entries.iter().map(|e| e.received_at).collect();
    assert_eq!(got, times.to_vec());
    store.close().unwrap();
}

#[test]
fn list_and_changes_honour_their_limit_and_cursor() {
    let dir = TempDir::new("killers-limit");
    let store = SqliteStore::open(dir.db()).unwrap();
    for n in 1..=3 {
        store
            .record_blocking(webhook(upsert_body(n, "05", 100, "")))
            .unwrap();
    }
    let rt = runtime();
    let ids = |after, limit| -> Vec<i64> {
        rt.block_on(SinkRead::list(&store, after, limit))
            .unwrap()
            .iter()
            .map(|c| c.id.get())
            .collect()
    };
    assert_eq!(ids(None, 0), Vec::<i64>::new());
    assert_eq!(ids(None, 2), vec![1, 2]);
    assert_eq!(ids(Some(id(1)), 1), vec![2]);
    assert_eq!(ids(None, usize::MAX), vec![1, 2, 3]);

    let seqs = |after, limit| -> Vec<u64> {
        rt.block_on(SinkRead::changes(&store, FeedCursor(after), limit))
            .unwrap()
            .entries
            .iter()
            .map(|e| e.cursor.0)
            .collect()
    };
    let all = seqs(0, 10);
    assert_eq!(all.len(), 3);
    assert_eq!(seqs(0, 0), Vec::<u64>::new());
    assert_eq!(seqs(0, 2), all[..2].to_vec());
    assert_eq!(seqs(all[0], 2), all[1..].to_vec());
    store.close().unwrap();
}

#[test]
fn counts_tracked_versions_and_states_are_exact() {
    let dir = TempDir::new("killers-counts");
    let store = SqliteStore::open(dir.db()).unwrap();
    let record = |body| applied(&store.record_blocking(webhook(body)));
    assert_eq!(record(upsert_body(1, "05", 100, "")), ApplyOutcome::Applied);
    assert_eq!(
        record(upsert_body(1, "05", 100, "")),
        ApplyOutcome::Duplicate
    );
    assert_eq!(record(upsert_body(1, "04", 100, "")), ApplyOutcome::Stale);
    assert_eq!(record(upsert_body(2, "07", 200, "")), ApplyOutcome::Applied);
    assert_eq!(record(upsert_body(3, "07", 200, "")), ApplyOutcome::Applied);
    assert_eq!(record(delete_body(3, "09")), ApplyOutcome::Applied);
    assert_eq!(
        record(upsert_body(4, "03", 300, r#","status":"Deleted""#)),
        ApplyOutcome::Applied
    );
    let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":0}}"#;
    let errors = parse_delivery(body).unwrap_err();
    for _ in 0..2 {
        let receipt = store
            .record_blocking(Delivery::DeadLetter {
                errors: errors.clone(),
                webhook: WebhookOrigin::new(body.to_vec().into(), "k1"),
            })
            .unwrap();
        assert_eq!(receipt, Receipt::DeadLettered);
    }

    let stats = store.stats().unwrap();
    assert_eq!(
        (
            stats.applied,
            stats.duplicates,
            stats.stale,
            stats.dead_letters,
            stats.clockings,
            stats.tombstones
        ),
        (5, 1, 1, 2, 2, 2)
    );
    assert_eq!(store.change_log_len().unwrap(), 7);
    assert_eq!(store.dead_letters().unwrap().len(), 2);
    assert_eq!(
        store.tracked_versions().unwrap(),
        vec![
            (id(1), version("05"), false),
            (id(2), version("07"), false),
            (id(3), version("09"), true),
            (id(4), version("03"), true),
        ]
    );
    let live: Vec<_> = store
        .clockings()
        .unwrap()
        .iter()
        .map(|c| c.id.get())
        .collect();
    assert_eq!(live, vec![1, 2]);
    assert_eq!(
        store
            .clocking_blocking(id(2))
            .unwrap()
            .unwrap()
            .time_of_day
            .map(|t| t.get()),
        Some(200)
    );
    assert!(store.clocking_blocking(id(3)).unwrap().is_none());
    assert!(store.clocking_blocking(id(9)).unwrap().is_none());

    let rt = runtime();
    let state = rt
        .block_on(SinkRead::state(&store, id(3)))
        .unwrap()
        .unwrap();
    assert_eq!(state.change_version, version("09"));
    assert!(state.clocking.is_none());
    let state = rt
        .block_on(SinkRead::state(&store, id(1)))
        .unwrap()
        .unwrap();
    assert_eq!(state.change_version, version("05"));
    assert_eq!(state.clocking.unwrap().id, id(1));
    assert!(
        rt.block_on(SinkRead::state(&store, id(9)))
            .unwrap()
            .is_none()
    );
    store.close().unwrap();
}

#[test]
fn a_synced_item_is_logged_only_when_applied() {
    let dir = TempDir::new("killers-sync");
    let store = SqliteStore::open(dir.db()).unwrap();
    let rt = runtime();
    let first = upsert_body(1, "05", 100, "");
    let outcomes = rt.block_on(store.record_batch(vec![synced(&first, 1), synced(&first, 2)]));
    assert_eq!(applied(&outcomes[0]), ApplyOutcome::Applied);
    assert_eq!(applied(&outcomes[1]), ApplyOutcome::Duplicate);
    let older = upsert_body(1, "04", 100, "");
    assert_eq!(
        applied(&store.record_blocking(synced(&older, 3))),
        ApplyOutcome::Stale
    );
    assert_eq!(store.change_log_len().unwrap(), 1);
    let page = rt
        .block_on(SinkRead::changes(&store, FeedCursor(0), 10))
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].origin, "sync");

    // Several applied synced items in one transaction: each gets its own log entry, all in
    // the feed, in order.
    let items = (2..=4)
        .map(|n| synced(&upsert_body(n, "05", 100, ""), 4))
        .collect();
    let outcomes = rt.block_on(store.record_batch(items));
    assert!(outcomes.iter().all(|o| applied(o) == ApplyOutcome::Applied));
    assert_eq!(store.change_log_len().unwrap(), 4);
    let page = rt
        .block_on(SinkRead::changes(&store, FeedCursor(0), 10))
        .unwrap();
    let ids: Vec<_> = page.entries.iter().map(|e| e.change.id().get()).collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    let live: Vec<_> = store
        .clockings()
        .unwrap()
        .iter()
        .map(|c| c.id.get())
        .collect();
    assert_eq!(live, vec![1, 2, 3, 4]);
    store.close().unwrap();
}

#[test]
fn a_deleted_store_file_is_refused_as_deleted() {
    let dir = TempDir::new("killers-gone");
    let store = SqliteStore::open(dir.db()).unwrap();
    store
        .record_blocking(webhook(upsert_body(1, "05", 100, "")))
        .unwrap();
    store.check_file().unwrap();
    std::fs::remove_file(dir.db()).unwrap();
    let error = store.check_file().unwrap_err();
    assert!(
        matches!(&error, StoreError::FileGone { what, .. } if what == "it was deleted"),
        "{error:?}"
    );
    let error = store
        .record_blocking(webhook(upsert_body(2, "05", 100, "")))
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::FileGone { what, .. } if what == "it was deleted"),
        "{error:?}"
    );
}

#[test]
fn a_path_that_cannot_be_examined_is_not_reported_as_deleted() {
    let dir = TempDir::new("killers-notdir");
    let sub = dir.db().with_file_name("sub");
    std::fs::create_dir(&sub).unwrap();
    let store = SqliteStore::open(sub.join("store.sqlite3")).unwrap();
    store.check_file().unwrap();
    // The directory is moved away and a plain file takes its name: the path now goes
    // through a file (ENOTDIR), which is not "deleted".
    std::fs::rename(&sub, dir.db().with_file_name("moved")).unwrap();
    std::fs::write(&sub, b"not a directory").unwrap();
    let error = store.check_file().unwrap_err();
    assert!(
        matches!(&error, StoreError::FileGone { what, .. } if what.starts_with("it cannot be examined")),
        "{error:?}"
    );
}

#[test]
fn a_state_row_pointing_at_another_clockings_entry_is_corrupt() {
    let dir = TempDir::new("killers-corrupt");
    let store = SqliteStore::open(dir.db()).unwrap();
    store
        .record_blocking(webhook(upsert_body(1, "05", 100, "")))
        .unwrap();
    store
        .record_blocking(webhook(upsert_body(2, "05", 200, "")))
        .unwrap();
    store.close().unwrap();
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let changed = conn
        .execute(
            "UPDATE clocking_state SET log_seq = (SELECT log_seq FROM clocking_state WHERE id = 2)
             WHERE id = 1",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    let store = SqliteStore::open(dir.db()).unwrap();
    let error = store.clocking_blocking(id(1)).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(store.clockings().is_err());
    assert_eq!(store.clocking_blocking(id(2)).unwrap().unwrap().id, id(2));
    store.close().unwrap();
}
