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
    assert!(
        error.to_string().contains(&format!(
            "schema version {} is newer than this protime-store-sqlite, which knows up to {SCHEMA_VERSION}",
            SCHEMA_VERSION + 1
        )),
        "{error}"
    );
}

/// Opens `path` from `THREADS` threads at once; every open must succeed.
fn open_at_once(path: &std::path::Path) -> Vec<SqliteStore> {
    const THREADS: usize = 4;
    let barrier = Arc::new(Barrier::new(THREADS));
    let openers: Vec<_> = (0..THREADS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let path = path.to_path_buf();
            std::thread::spawn(move || {
                barrier.wait();
                SqliteStore::open(path)
            })
        })
        .collect();
    openers
        .into_iter()
        .map(|opener| opener.join().unwrap().unwrap())
        .collect()
}

/// `(version, name)` of every recorded migration, and `user_version`.
fn recorded_schema(path: &std::path::Path) -> (Vec<(i64, String)>, i64) {
    let conn = Connection::open(path).unwrap();
    let history = conn
        .prepare(&format!(
            "SELECT version, name FROM {} ORDER BY version",
            schema::HISTORY_TABLE
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let version = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    (history, version)
}

fn every_migration() -> Vec<(i64, String)> {
    vec![
        (1, "initial".to_owned()),
        (2, "origins_and_log_pointers".to_owned()),
        (3, "dead_letter_replays".to_owned()),
        (4, "retention_and_erasure".to_owned()),
    ]
}

#[test]
fn four_stores_opening_one_new_file_at_once_all_succeed() {
    // Several rounds: which opener migrates, and which ones collide with it, varies.
    for round in 0..6 {
        let dir = TempDir::new("race-new");
        let stores = open_at_once(&dir.db());
        for (n, store) in stores.iter().enumerate() {
            let n = u32::try_from(n).unwrap() + 1;
            assert_eq!(
                outcome(store, upsert_body(i64::from(n), n, "")),
                ApplyOutcome::Applied,
                "round {round}"
            );
        }
        assert_eq!(stores[0].change_log_len().unwrap(), 4);
        for store in stores {
            store.close().unwrap();
        }
        assert_eq!(
            recorded_schema(&dir.db()),
            (every_migration(), SCHEMA_VERSION),
            "round {round}"
        );
    }
}

#[test]
fn four_connections_migrating_one_wal_file_at_once_all_succeed() {
    // The file is in WAL mode already, so nothing before the migration staggers the four:
    // they read the same state and plan the same first step at once. (Whether a loser's run
    // then collides with the winner's, or only waits for it, is up to the scheduler; the
    // collision itself is the next test.)
    const THREADS: usize = 4;
    for round in 0..10 {
        let dir = TempDir::new("race-migrate");
        let conn = Connection::open(dir.db()).unwrap();
        let _: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        drop(conn);
        let barrier = Arc::new(Barrier::new(THREADS));
        let migrations: Vec<_> = (0..THREADS)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let path = dir.db();
                std::thread::spawn(move || {
                    let mut conn = Connection::open(path).unwrap();
                    conn.busy_timeout(read::BUSY_TIMEOUT).unwrap();
                    barrier.wait();
                    schema::migrate(&mut conn)
                })
            })
            .collect();
        for migration in migrations {
            migration.join().unwrap().unwrap();
        }
        assert_eq!(
            recorded_schema(&dir.db()),
            (every_migration(), SCHEMA_VERSION),
            "round {round}"
        );
    }
}

/// Two connections on one file in WAL mode, as two processes opening it at once.
fn two_openers(dir: &TempDir) -> (Connection, Connection) {
    let open = || {
        let conn = Connection::open(dir.db()).unwrap();
        conn.busy_timeout(read::BUSY_TIMEOUT).unwrap();
        let _: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        conn
    };
    (open(), open())
}

#[test]
fn a_run_that_fails_because_another_opener_migrated_first_is_retried() {
    let dir = TempDir::new("stale-run");
    let (mut first, other) = two_openers(&dir);
    let (state, step) = schema::next_step(&mut first).unwrap();
    assert!(
        matches!(step, schema::Step::Run(refinery::Target::Latest)),
        "{step:?}"
    );
    // Meanwhile a build from before the schema history makes the file version 2.
    other
        .execute_batch(&schema::migration_sql(1).unwrap())
        .unwrap();
    other
        .execute_batch(&schema::migration_sql(2).unwrap())
        .unwrap();
    other.pragma_update(None, "user_version", 2).unwrap();
    // The planned run applies V2 a second time, which fails (and is rolled back); the state
    // changed under it, so that is no error: the next step starts from the new state.
    assert_eq!(
        schema::take_step(&mut first, &state, step).unwrap(),
        schema::Progress::Again
    );
    schema::migrate(&mut first).unwrap();
    assert_eq!(
        recorded_schema(&dir.db()),
        (every_migration(), SCHEMA_VERSION)
    );
}

#[test]
fn a_final_check_on_a_state_that_moved_on_reads_it_again() {
    let dir = TempDir::new("stale-finish");
    let (mut first, mut other) = two_openers(&dir);
    schema::migrate(&mut first).unwrap();
    // As if a migrating process died before setting user_version.
    first.pragma_update(None, "user_version", 0).unwrap();
    let (state, step) = schema::next_step(&mut first).unwrap();
    assert!(matches!(step, schema::Step::Finish), "{step:?}");
    schema::migrate(&mut other).unwrap();
    assert_eq!(
        schema::take_step(&mut first, &state, step).unwrap(),
        schema::Progress::Again
    );
    schema::migrate(&mut first).unwrap();
    assert_eq!(
        recorded_schema(&dir.db()),
        (every_migration(), SCHEMA_VERSION)
    );
}

#[test]
fn four_stores_opening_one_version_1_file_at_once_all_succeed() {
    for round in 0..6 {
        let dir = TempDir::new("race-v1");
        let conn = Connection::open(dir.db()).unwrap();
        conn.execute_batch(&schema::migration_sql(1).unwrap())
            .unwrap();
        conn.execute_batch(
            "INSERT INTO change_log (received_at, clocking_id, change_version, change_type, outcome, raw_body)
             VALUES ('2026-01-01T00:00:00Z', 7, '0A', 'Delete', 'applied', X'7B7D');
             INSERT INTO clocking_state (id, change_version, deleted, clocking_json) VALUES (7, '0A', 1, NULL);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);
        let stores = open_at_once(&dir.db());
        let versions = stores[0].tracked_versions().unwrap();
        assert_eq!(versions.len(), 1, "round {round}");
        assert!(versions[0].2, "the tombstone of 7 was kept");
        assert_eq!(stores[0].change_log_len().unwrap(), 1);
        for store in stores {
            store.close().unwrap();
        }
        assert_eq!(
            recorded_schema(&dir.db()),
            (every_migration(), SCHEMA_VERSION),
            "round {round}"
        );
    }
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
    assert_eq!(current.time_of_day.map(|t| t.get()), Some(405));

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
fn a_replayed_dead_letter_is_marked_and_kept() {
    let dir = TempDir::new("replayed");
    let store = SqliteStore::open(dir.db()).unwrap();
    let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":0}}"#;
    let errors = parse_delivery(body).unwrap_err();
    for _ in 0..2 {
        store
            .record_blocking(Delivery::DeadLetter {
                errors: errors.clone(),
                webhook: WebhookOrigin::new(body.to_vec().into(), "k1"),
            })
            .unwrap();
    }
    let first = store.dead_letters().unwrap()[0].clone();
    assert_eq!(
        (first.replayed_at.clone(), first.replay_outcome.clone()),
        (None, None)
    );
    assert_eq!(store.dead_letter(first.seq).unwrap(), Some(first.clone()));
    assert_eq!(store.dead_letter(first.seq + 100).unwrap(), None);

    assert!(
        store
            .mark_dead_letter_replayed(first.seq, Receipt::Applied(ApplyOutcome::Duplicate))
            .unwrap()
    );
    let marked = store.dead_letter(first.seq).unwrap().unwrap();
    assert_eq!(marked.replay_outcome.as_deref(), Some("duplicate"));
    assert!(marked.replayed_at.unwrap().ends_with('Z'));
    assert_eq!(marked.raw_body, first.raw_body, "kept as evidence");
    // Only that one.
    assert_eq!(store.dead_letters().unwrap()[1].replay_outcome, None);
    assert!(
        !store
            .mark_dead_letter_replayed(first.seq + 100, Receipt::Applied(ApplyOutcome::Applied))
            .unwrap()
    );
    assert!(matches!(
        store.mark_dead_letter_replayed(first.seq, Receipt::DeadLettered),
        Err(StoreError::Unsupported { .. })
    ));
    // Marked in the file, not in this process only.
    store.close().unwrap();
    let reopened = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(
        reopened
            .dead_letter(first.seq)
            .unwrap()
            .unwrap()
            .replay_outcome
            .as_deref(),
        Some("duplicate")
    );
    reopened.close().unwrap();
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

#[test]
fn a_store_file_deleted_while_open_acknowledges_nothing_more() {
    let dir = TempDir::new("deleted");
    let store = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(
        outcome(&store, upsert_body(1, 1, "")),
        ApplyOutcome::Applied
    );
    store.check_file().unwrap();

    std::fs::remove_file(dir.db()).unwrap();
    let refused = store.record_blocking(change(upsert_body(2, 1, "")));
    assert!(
        matches!(&refused, Err(StoreError::FileGone { what, .. }) if what.contains("deleted")),
        "{refused:?}"
    );
    assert!(store.check_file().is_err());
    // And it stays refused: the open file is not the one at the path any more.
    assert!(
        store
            .record_blocking(change(upsert_body(3, 1, "")))
            .is_err()
    );
    let sink_error = SinkError::from(
        store
            .record_blocking(change(upsert_body(4, 1, "")))
            .unwrap_err(),
    );
    assert_eq!(
        sink_error.kind,
        protime_webhooks::sink::SinkErrorKind::Unavailable
    );
}

#[test]
fn a_store_file_replaced_while_open_acknowledges_nothing_more() {
    let dir = TempDir::new("replaced");
    let store = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(
        outcome(&store, upsert_body(1, 1, "")),
        ApplyOutcome::Applied
    );
    // A restore from a backup: another file renamed over the store's path.
    let other = dir.file("backup");
    drop(SqliteStore::open(&other).unwrap());
    std::fs::rename(&other, dir.db()).unwrap();
    let refused = store.record_blocking(change(upsert_body(2, 1, "")));
    assert!(
        matches!(&refused, Err(StoreError::FileGone { what, .. }) if what.contains("replaced")),
        "{refused:?}"
    );
}

#[test]
fn each_durability_is_read_back_from_sqlite() {
    let dir = TempDir::new("synchronous");
    let full = SqliteStore::open_with(dir.file("full"), Durability::PowerLoss).unwrap();
    assert_eq!(full.synchronous(), "FULL");
    let default = SqliteStore::open(dir.file("default")).unwrap();
    assert_eq!(default.synchronous(), "FULL");
    let normal = SqliteStore::open_with(dir.file("normal"), Durability::ProcessCrash).unwrap();
    assert_eq!(normal.synchronous(), "NORMAL");
}

/// Runs the writer on this thread over jobs already queued, each a batch of `sizes[i]`
/// upserts of fresh ids; returns (batches, largest batch) and checks every answer.
fn run_writer_over_queued_jobs(dir: &TempDir, sizes: &[usize]) -> (u64, u64) {
    let path = dir.db();
    SqliteStore::open(&path).unwrap().close().unwrap();
    let conn = Connection::open(&path).unwrap();
    let file = FileWatch::new(&path).unwrap();
    let counters = Counters::default();
    let (jobs, queue) = mpsc::channel();
    let mut answers = Vec::new();
    let mut next_id = 1;
    for &size in sizes {
        let deliveries = (0..size)
            .map(|_| {
                next_id += 1;
                Prepared::new(change(upsert_body(next_id, 1, "")))
            })
            .collect();
        let (reply, answer) = mpsc::sync_channel(1);
        jobs.send(writer::Work::from(Job {
            deliveries,
            reply: Reply::Blocking(reply),
        }))
        .unwrap();
        answers.push((size, answer));
    }
    drop(jobs);
    writer::run_writer(conn, &queue, &counters, &file);
    // Jobs the writer left in the queue are dropped with it: their waiters fail instead of
    // blocking.
    drop(queue);
    for (size, answer) in answers {
        let outcomes = answer.recv().unwrap();
        assert_eq!(outcomes.len(), size);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Ok(Receipt::Applied(ApplyOutcome::Applied)))),
            "{outcomes:?}"
        );
    }
    (
        counters.batches.load(Ordering::Relaxed),
        counters.largest_batch.load(Ordering::Relaxed),
    )
}

#[test]
fn jobs_queued_together_are_committed_as_one_group() {
    let dir = TempDir::new("group-small");
    assert_eq!(run_writer_over_queued_jobs(&dir, &[1, 1, 2]), (1, 4));
}

#[test]
fn a_group_stops_growing_once_it_holds_max_group_deliveries() {
    // MAX_GROUP (4096) deliveries in the first job: the next job goes into the next group.
    let dir = TempDir::new("group-max");
    assert_eq!(run_writer_over_queued_jobs(&dir, &[4096, 1]), (2, 4096));
    // One fewer: both fit in one group.
    let dir = TempDir::new("group-under-max");
    assert_eq!(run_writer_over_queued_jobs(&dir, &[4095, 1]), (1, 4096));
}
