//! Unit tests of the store: schema, semantics, durability, group commit, failures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Barrier;
use std::task::{Context, Poll, Wake, Waker};

use super::*;
use protime_model::ordering::ApplyOutcome;
use protime_model::{ClockingChange, ErrorCode, InMemoryTracker, parse_delivery};
use protime_webhooks::sink::WebhookOrigin;
use rusqlite::Connection;
use schema::SCHEMA_VERSION;
use serde_json::Value;

#[path = "../tests/common/mod.rs"]
mod common;
use common::TempDir;

/// Polls a future to completion on this thread (the crate has no tokio runtime).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

fn version(n: u32) -> String {
    format!("0000090200{n:010X}")
}

fn upsert_body(id: i64, n: u32, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":"{}","id":{id},
        "person":{{"id":4}},"date":"2026-01-15","timeOfDayInMinutes":{},"kind":"InOut"{extra}}}}}"#,
        version(n),
        400 + n
    )
    .into_bytes()
}

fn delete_body(id: i64, n: u32) -> Vec<u8> {
    format!(
        r#"{{"changeType":"Delete","data":{{"changeVersion":"{}","id":{id}}}}}"#,
        version(n)
    )
    .into_bytes()
}

fn change(body: Vec<u8>) -> Delivery {
    let change = parse_delivery(&body).unwrap();
    Delivery::webhook(change, WebhookOrigin::new(body.into(), "k1"))
}

fn outcome(store: &SqliteStore, body: Vec<u8>) -> ApplyOutcome {
    match store.record_blocking(change(body)).unwrap() {
        Receipt::Applied(outcome) => outcome,
        other => panic!("unexpected {other:?}"),
    }
}

fn id(n: i64) -> ClockingId {
    ClockingId::new(n).unwrap()
}

#[test]
fn opening_twice_keeps_one_schema() {
    let dir = TempDir::new("twice");
    let first = SqliteStore::open(dir.db()).unwrap();
    // A second store on the same file while the first is open, then a third after both.
    let second = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(
        outcome(&first, upsert_body(1, 1, "")),
        ApplyOutcome::Applied
    );
    assert_eq!(
        outcome(&second, upsert_body(1, 1, "")),
        ApplyOutcome::Duplicate
    );
    first.close().unwrap();
    second.close().unwrap();
    let third = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(third.change_log_len().unwrap(), 2);
    third.close().unwrap();

    let conn = Connection::open(dir.db()).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = TempDir::new("newer");
    SqliteStore::open(dir.db()).unwrap().close().unwrap();
    let conn = Connection::open(dir.db()).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let error = SqliteStore::open(dir.db()).unwrap_err();
    assert!(matches!(error, StoreError::Unsupported { .. }), "{error}");
}

#[test]
fn newer_applies_equal_is_duplicate_older_is_stale_and_tombstones_block() {
    let dir = TempDir::new("semantics");
    let store = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(
        outcome(&store, upsert_body(7, 5, "")),
        ApplyOutcome::Applied
    );
    assert_eq!(
        outcome(&store, upsert_body(7, 5, "")),
        ApplyOutcome::Duplicate
    );
    assert_eq!(outcome(&store, upsert_body(7, 3, "")), ApplyOutcome::Stale);
    let current = store.clocking_blocking(id(7)).unwrap().unwrap();
    assert_eq!(current.change_version.as_str(), version(5));
    assert_eq!(current.time_of_day.get(), 405);

    // A Delete leaves a tombstone that an older update cannot get past.
    assert_eq!(outcome(&store, delete_body(7, 8)), ApplyOutcome::Applied);
    assert_eq!(outcome(&store, upsert_body(7, 6, "")), ApplyOutcome::Stale);
    assert_eq!(outcome(&store, delete_body(7, 8)), ApplyOutcome::Duplicate);
    assert!(store.clocking_blocking(id(7)).unwrap().is_none());
    assert_eq!(
        store.tracked_versions().unwrap(),
        vec![(id(7), ChangeVersion::new(version(8)).unwrap(), true)]
    );

    // A newer update brings it back; a soft delete (status Deleted) is a tombstone too.
    assert_eq!(
        outcome(&store, upsert_body(7, 9, "")),
        ApplyOutcome::Applied
    );
    assert!(store.clocking_blocking(id(7)).unwrap().is_some());
    let soft = upsert_body(7, 10, r#","status":"Deleted""#);
    assert_eq!(outcome(&store, soft), ApplyOutcome::Applied);
    assert!(store.clocking_blocking(id(7)).unwrap().is_none());
    assert!(store.clockings().unwrap().is_empty());
    assert_eq!(outcome(&store, upsert_body(7, 9, "")), ApplyOutcome::Stale);
    assert_eq!(
        store.tracked_versions().unwrap(),
        vec![(id(7), ChangeVersion::new(version(10)).unwrap(), true)]
    );

    // Another id is independent.
    assert_eq!(
        outcome(&store, upsert_body(3, 1, "")),
        ApplyOutcome::Applied
    );
    let ids: Vec<_> = store.clockings().unwrap().iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![id(3)]);

    assert_eq!(store.change_log_len().unwrap(), 10);
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.applied, stats.duplicates, stats.stale),
        (5, 2, 3),
        "{stats:?}"
    );
    assert_eq!(
        (stats.clockings, stats.tombstones, stats.dead_letters),
        (1, 1, 0)
    );
    store.close().unwrap();
}

#[test]
fn every_field_survives_the_round_trip_through_the_log() {
    let dir = TempDir::new("fields");
    let store = SqliteStore::open(dir.db()).unwrap();
    let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000A",
        "id":19250,"person":{"id":1,"externalReferences":{"@badge-number":"B-7","HRMID":"x"}},
        "date":"2026-01-15","timeOfDayInMinutes":-1440,"originalTimeOfDayInMinutes":2880,
        "calculatedTimeOfDayInMinutes":0,"isGenerated":true,
        "terminal":{"id":3,"externalReferences":{}},
        "geolocation":{"latitude":50.8503396,"longitude":-4.3517103},
        "kind":"Activity","activityLevels":[{"level":1,"activityDefinition":{"id":"a-1"}},
        {"level":2,"activityDefinition":{"id":"b-2","externalReferences":{"@code":"Z"}}}],
        "status":"Active"}}"#;
    let Ok(ClockingChange::InsertOrUpdate(expected)) = parse_delivery(body) else {
        panic!("fixture must be valid")
    };
    store.record_blocking(change(body.to_vec())).unwrap();
    assert_eq!(
        store.clocking_blocking(id(19250)).unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.clockings().unwrap(), vec![expected]);
    store.close().unwrap();
}

#[test]
fn dead_letters_are_stored_with_their_errors() {
    let dir = TempDir::new("dead");
    let store = SqliteStore::open(dir.db()).unwrap();
    let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":0}}"#;
    let errors = parse_delivery(body).unwrap_err();
    assert!(errors.has_code(ErrorCode::NumberRange));
    let outcome = store
        .record_blocking(Delivery::DeadLetter {
            errors: errors.clone(),
            webhook: WebhookOrigin::new(body.to_vec().into(), "k1"),
        })
        .unwrap();
    assert_eq!(outcome, Receipt::DeadLettered);

    let letters = store.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].raw_body, body.to_vec());
    let stored: Value = serde_json::from_str(&letters[0].errors_json).unwrap();
    assert_eq!(stored, serde_json::to_value(&errors).unwrap());
    assert!(letters[0].received_at.ends_with('Z'));
    assert_eq!(store.change_log_len().unwrap(), 0);
    assert_eq!(store.stats().unwrap().dead_letters, 1);
    store.close().unwrap();
}

#[test]
fn data_survives_drop_and_reopen() {
    let dir = TempDir::new("reopen");
    let store = SqliteStore::open(dir.db()).unwrap();
    let clone = store.clone();
    block_on(store.record(change(upsert_body(1, 1, "")))).unwrap();
    block_on(clone.record(change(delete_body(2, 2)))).unwrap();
    let before = (
        store.clockings().unwrap(),
        store.tracked_versions().unwrap(),
    );
    drop(store);
    drop(clone);

    // The writer thread ends with the last clone; the file can be reopened at once.
    let reopened = SqliteStore::open(dir.db()).unwrap();
    let after = (
        reopened.clockings().unwrap(),
        reopened.tracked_versions().unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(after.0.len(), 1);
    assert_eq!(after.1.len(), 2);
    assert_eq!(
        outcome(&reopened, upsert_body(2, 1, "")),
        ApplyOutcome::Stale
    );
    reopened.close().unwrap();
}

#[test]
fn process_crash_durability_stores_and_reopens_the_same() {
    let dir = TempDir::new("normal");
    let store = SqliteStore::open_with(dir.db(), Durability::ProcessCrash).unwrap();
    block_on(store.record(change(upsert_body(1, 1, "")))).unwrap();
    drop(store);
    // Reopened with the default durability: the file format is the same.
    let reopened = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(reopened.clockings().unwrap().len(), 1);
    reopened.close().unwrap();
}

#[test]
fn concurrent_records_are_all_answered_and_group_committed() {
    const TASKS: usize = 64;
    let dir = TempDir::new("concurrent");
    let store = SqliteStore::open(dir.db()).unwrap();

    // 64 async callers: every future is queued before any is awaited.
    let futures: Vec<_> = (0..TASKS)
        .map(|i| {
            let n = u32::try_from(i).unwrap();
            store.record(change(upsert_body(i64::from(n % 8) + 1, n + 1, "")))
        })
        .collect();
    for future in futures {
        assert!(matches!(block_on(future), Ok(Receipt::Applied(_))));
    }

    // 64 threads calling at once.
    let barrier = Arc::new(Barrier::new(TASKS));
    let threads: Vec<_> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let n = u32::try_from(i).unwrap();
                barrier.wait();
                store.record_blocking(change(delete_body(i64::from(n % 8) + 1, 100 + n)))
            })
        })
        .collect();
    for thread in threads {
        assert!(matches!(thread.join().unwrap(), Ok(Receipt::Applied(_))));
    }

    let stats = store.stats().unwrap();
    assert_eq!(store.change_log_len().unwrap(), 2 * TASKS as u64);
    assert!(stats.largest_batch > 1, "never batched: {stats:?}");
    assert!(stats.batches < 2 * TASKS as u64, "{stats:?}");
    // Last writer wins per id whatever the interleaving: every id ends deleted at its
    // highest delete version.
    let versions = store.tracked_versions().unwrap();
    assert_eq!(versions.len(), 8);
    for (id, version, deleted) in versions {
        assert!(deleted);
        assert_eq!(version.as_str(), version_of_last_delete(id.get()));
    }
    store.close().unwrap();

    fn version_of_last_delete(id: i64) -> String {
        let n = (0..TASKS as u32)
            .filter(|n| i64::from(n % 8) + 1 == id)
            .max()
            .unwrap();
        version(100 + n)
    }
}

#[test]
fn replaying_the_change_log_rebuilds_the_state() {
    let dir = TempDir::new("replay");
    let store = SqliteStore::open(dir.db()).unwrap();
    for body in [
        upsert_body(1, 4, ""),
        upsert_body(1, 2, ""),
        delete_body(2, 9),
        upsert_body(2, 7, ""),
        upsert_body(3, 1, r#","status":"Deleted""#),
        upsert_body(1, 4, ""),
    ] {
        store.record_blocking(change(body)).unwrap();
    }
    let conn = Connection::open(dir.db()).unwrap();
    let mut statement = conn
        .prepare("SELECT raw_body FROM change_log ORDER BY seq")
        .unwrap();
    let bodies: Vec<Vec<u8>> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut tracker = InMemoryTracker::default();
    for body in &bodies {
        tracker.apply(&parse_delivery(body).unwrap());
    }
    let replayed: Vec<_> = tracker
        .entries()
        .map(|(id, e)| (id, e.change_version.clone(), e.clocking.is_none()))
        .collect();
    assert_eq!(replayed, store.tracked_versions().unwrap());
    let current: Vec<_> = tracker.current().cloned().collect();
    assert_eq!(current, store.clockings().unwrap());
    store.close().unwrap();
}

#[test]
fn a_failing_record_gets_its_own_error_and_close_refuses_later_records() {
    let dir = TempDir::new("failing");
    let store = SqliteStore::open(dir.db()).unwrap();
    // Make every write of id 5 fail behind the store's back.
    let conn = Connection::open(dir.db()).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_5 BEFORE INSERT ON change_log WHEN NEW.clocking_id = 5
         BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .unwrap();
    drop(conn);

    let bad = store.record(change(upsert_body(5, 1, "")));
    let good = store.record(change(upsert_body(6, 1, "")));
    let bad = block_on(bad).unwrap_err();
    assert!(matches!(bad, StoreError::Sqlite(_)), "{bad}");
    assert!(
        store.clocking_blocking(id(5)).unwrap().is_none(),
        "the failed write left state behind"
    );
    assert_eq!(
        block_on(good).unwrap(),
        Receipt::Applied(ApplyOutcome::Applied)
    );
    assert_eq!(store.change_log_len().unwrap(), 1);

    let sink_error = SinkError::from(bad);
    assert!(sink_error.message.contains("refused"), "{sink_error}");
    assert!(
        sink_error.is_retryable(),
        "an SQLite failure may pass: {sink_error}"
    );

    let clone = store.clone();
    let queued = clone.record(change(upsert_body(6, 2, "")));
    store.close().unwrap();
    // Queued before close: committed and answered.
    assert_eq!(
        block_on(queued).unwrap(),
        Receipt::Applied(ApplyOutcome::Applied)
    );
    assert!(clone.is_closed());
    assert!(matches!(
        clone.record_blocking(change(upsert_body(6, 3, ""))),
        Err(StoreError::Closed)
    ));
    let via_sink = block_on(DeliverySink::record(&clone, change(upsert_body(6, 3, ""))));
    assert!(via_sink.is_err());
    // Reads keep working after close.
    assert_eq!(clone.change_log_len().unwrap(), 2);
}
