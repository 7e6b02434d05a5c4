//! What only a shared database can get wrong: several stores (replicas) writing the same ids
//! at once, a feed read while transactions commit out of order, migrations racing, the
//! session's durability, and settings that cannot work.
//! Needs a server (DATABASE_URL or PG*); skipped loudly without one, unless
//! PROTIME_REQUIRE_POSTGRES=1 (as in CI), which makes a missing server a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protime_model::{ApplyOutcome, ClockingChange, ClockingId, parse_delivery};
use protime_store_postgres::testing::TestDatabase;
use protime_store_postgres::{PgStore, PgStoreConfig, StoreError};
use protime_webhooks::sink::{
    Delivery, FeedCursor, Receipt, SinkErrorKind, SinkRead as _, WebhookOrigin,
};

fn body(id: i64, version: &str, delete: bool) -> Vec<u8> {
    if delete {
        format!(r#"{{"changeType":"Delete","data":{{"changeVersion":"{version}","id":{id}}}}}"#)
    } else {
        format!(
            r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":"{version}","id":{id},"person":{{"id":{}}},"date":"2026-01-15","timeOfDayInMinutes":{},"kind":"InOut"}}}}"#,
            id % 7 + 1,
            id % 1440
        )
    }
    .into_bytes()
}

fn delivery(id: i64, version: &str, delete: bool) -> Delivery {
    let raw = body(id, version, delete);
    let change = parse_delivery(&raw).unwrap();
    Delivery::webhook(change, WebhookOrigin::new(Bytes::from(raw), "k1"))
}

/// A small deterministic generator (no dependency, same sequence on every run).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_writing_the_same_ids_converge_and_the_feed_is_dense_and_in_order() {
    let Some(database) = TestDatabase::create("replicas").await else {
        return;
    };
    let replicas = [
        PgStore::connect_with(database.config()).await.unwrap(),
        PgStore::connect_with(database.config()).await.unwrap(),
    ];

    // 60 ids × 10 versions; the last version of every third id is a Delete, and version 6
    // of every fifth id too (then updated again). Versions are hex of equal width, so byte
    // order is numeric order. Every delivery is sent twice, all shuffled.
    let mut random = XorShift(0x5EED_1234_ABCD_0001);
    let mut all = Vec::new();
    let mut expected: BTreeMap<i64, (String, bool)> = BTreeMap::new();
    for id in 1..=60_i64 {
        for n in 1..=10_u32 {
            let version = format!("{n:08X}");
            let delete = (n == 10 && id % 3 == 0) || (n == 6 && id % 5 == 0);
            all.push((id, version.clone(), delete));
            all.push((id, version.clone(), delete));
            if n == 10 {
                expected.insert(id, (version, delete));
            }
        }
    }
    for i in (1..all.len()).rev() {
        all.swap(i, random.below(i + 1));
    }

    // A follower reads the feed while the writers write: every page must continue exactly
    // where the previous one ended (dense positions, nothing skipped, nothing repeated).
    let follower_store = replicas[0].clone();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let follower = tokio::spawn(async move {
        let mut seen: Vec<(u64, ClockingChange)> = Vec::new();
        let mut cursor = FeedCursor::START;
        loop {
            let done = *stopped.borrow();
            let page = follower_store.changes(cursor, 37).await.unwrap();
            for entry in &page.entries {
                assert_eq!(
                    entry.cursor.0,
                    cursor.0 + 1,
                    "the feed skipped or repeated a position"
                );
                cursor = entry.cursor;
                seen.push((entry.cursor.0, entry.change.clone()));
            }
            if page.entries.is_empty() {
                if done {
                    return seen;
                }
                let _ = tokio::time::timeout(Duration::from_millis(5), stopped.changed()).await;
            }
        }
    });

    // Eight senders, alternating replicas, mixing single records and batches.
    let chunks: Vec<Vec<(i64, String, bool)>> =
        all.chunks(all.len() / 8 + 1).map(<[_]>::to_vec).collect();
    let mut senders = Vec::new();
    for (n, chunk) in chunks.into_iter().enumerate() {
        let store = replicas[n % 2].clone();
        let mut random = XorShift(0xC0FF_EE00 + n as u64);
        senders.push(tokio::spawn(async move {
            let mut receipts = Vec::new();
            let mut rest = chunk.as_slice();
            while !rest.is_empty() {
                let take = (1 + random.below(6)).min(rest.len());
                let (now, later) = rest.split_at(take);
                rest = later;
                let deliveries: Vec<Delivery> = now
                    .iter()
                    .map(|(id, version, delete)| delivery(*id, version, *delete))
                    .collect();
                let results = if take == 1 {
                    vec![store.record(deliveries.into_iter().next().unwrap()).await]
                } else {
                    store.record_batch(deliveries).await
                };
                for ((id, version, _), result) in now.iter().zip(results) {
                    receipts.push((*id, version.clone(), result.unwrap()));
                }
            }
            receipts
        }));
    }
    let mut applied_versions: BTreeMap<(i64, String), usize> = BTreeMap::new();
    for sender in senders {
        for (id, version, receipt) in sender.await.unwrap() {
            if receipt == Receipt::Applied(ApplyOutcome::Applied) {
                *applied_versions.entry((id, version)).or_default() += 1;
            }
        }
    }
    stop.send(true).unwrap();
    let seen = follower.await.unwrap();

    // Every id ends at its greatest version, tombstones included.
    for (id, (version, delete)) in &expected {
        let state = replicas[1]
            .state(ClockingId::new(*id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.change_version.as_str(), version, "id {id}");
        assert_eq!(state.clocking.is_none(), *delete, "id {id}");
    }
    // No version was applied twice (two replicas deciding from the same old version).
    assert!(
        applied_versions.values().all(|&n| n == 1),
        "{applied_versions:?}"
    );
    // The feed holds exactly the applied changes, and each id's versions only go up.
    let stats = replicas[0].stats().await.unwrap();
    assert_eq!(seen.len() as u64, stats.applied);
    assert_eq!(seen.len(), applied_versions.len());
    let mut last: BTreeMap<i64, String> = BTreeMap::new();
    for (position, change) in &seen {
        let version = change.change_version().as_str().to_owned();
        if let Some(before) = last.insert(change.id().get(), version.clone()) {
            assert!(
                before < version,
                "position {position}: {before} then {version}"
            );
        }
    }
    assert_eq!(
        stats.duplicates + stats.stale + stats.applied,
        all.len() as u64
    );

    for replica in replicas {
        replica.close().await;
    }
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_transaction_holds_the_feed_back_instead_of_being_skipped() {
    let Some(database) = TestDatabase::create("slow").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    store.record(delivery(1, "01", false)).await.unwrap();

    // Another writer takes position 2 and has not committed yet.
    let slow = database.session().await.unwrap();
    slow.batch_execute(&format!(
        "BEGIN;
         UPDATE feed_counter SET last_position = last_position + 1;
         INSERT INTO clocking_state VALUES (2, '01', true);
         INSERT INTO change_log (feed_position, received_at, clocking_id, change_version, change_type, outcome, origin, raw_body, key_fingerprint)
             VALUES (2, now(), 2, '01', 'Delete', 'applied', 'webhook', '\\x{}', 'k1');",
        hex(&body(2, "01", true))
    ))
    .await
    .unwrap();

    // A later delivery waits for it instead of taking a position a reader could pass.
    let later = tokio::spawn({
        let store = store.clone();
        async move { store.record(delivery(3, "01", false)).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !later.is_finished(),
        "the later delivery did not wait for the open transaction"
    );
    let page = store.changes(FeedCursor(1), 10).await.unwrap();
    assert!(page.entries.is_empty(), "{page:?}");

    slow.batch_execute("COMMIT").await.unwrap();
    later.await.unwrap().unwrap();
    let page = store.changes(FeedCursor(1), 10).await.unwrap();
    let order: Vec<(u64, i64)> = page
        .entries
        .iter()
        .map(|e| (e.cursor.0, e.change.id().get()))
        .collect();
    assert_eq!(order, [(2, 2), (3, 3)]);

    store.close().await;
    database.cleanup().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(database) = TestDatabase::create("migrate").await else {
        return;
    };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let config = database.config();
            tokio::spawn(async move { PgStore::connect_with(config).await })
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().unwrap());
    }
    assert_eq!(stores[0].schema_version().await.unwrap(), 4);
    for store in stores {
        store.close().await;
    }

    let session = database.session().await.unwrap();
    session
        .batch_execute(
            "INSERT INTO protime_schema_history (version, name, applied_on, checksum)
             VALUES (99, 'from_the_future', '2027-01-01T00:00:00Z', '0')",
        )
        .await
        .unwrap();
    let error = PgStore::connect_with(database.config()).await.unwrap_err();
    assert!(matches!(error, StoreError::Unsupported { .. }), "{error}");
    assert!(error.to_string().contains("version 99, newer"), "{error}");
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_wait_for_the_disk_whatever_the_connection_string_says() {
    let Some(database) = TestDatabase::create("durable").await else {
        return;
    };
    let url = format!("{}&options=-c%20synchronous_commit%3Doff", database.url());
    let store = PgStore::connect(&url).await.unwrap();
    assert_eq!(store.synchronous_commit().await.unwrap(), "on");
    store.close().await;
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_postgres_cannot_hold_is_rejected_alone() {
    let Some(database) = TestDatabase::create("nul").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    let nul = delivery(1, "A\\u0000B", false);
    let results = DeliverySinkExt::batch(&store, vec![nul, delivery(2, "01", false)]).await;
    assert_eq!(
        results[0].as_ref().unwrap_err().kind,
        SinkErrorKind::Rejected
    );
    assert_eq!(
        results[1].as_ref().unwrap(),
        &Receipt::Applied(ApplyOutcome::Applied)
    );
    store.close().await;
    database.cleanup().await;
}

/// The contract's batch call (rather than the inherent one) through a tiny helper.
struct DeliverySinkExt;

impl DeliverySinkExt {
    async fn batch(
        store: &PgStore,
        deliveries: Vec<Delivery>,
    ) -> Vec<Result<Receipt, protime_webhooks::sink::SinkError>> {
        protime_webhooks::sink::DeliverySink::record_batch(store, deliveries).await
    }
}

#[tokio::test]
async fn an_unreachable_server_is_one_clear_error_without_the_password() {
    let started = Instant::now();
    let config = PgStoreConfig::from_url(
        "postgres://app:hunter2secret@127.0.0.1:1/payroll?connect_timeout=3",
    )
    .unwrap();
    let error = PgStore::connect_with(config).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, StoreError::Connect { .. }), "{text}");
    assert!(text.contains("app@127.0.0.1:1/payroll"), "{text}");
    assert!(!text.contains("hunter2secret"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_replicas_writers_apply_an_ids_deliveries_in_queue_order() {
    let Some(database) = TestDatabase::create("queue_order").await else {
        return;
    };
    let store = PgStore::connect_with(database.config().with_writers(4))
        .await
        .unwrap();
    // 300 versions of one id, queued in call order without waiting for each other, in waves
    // a millisecond apart so that several writers take groups while later ones queue:
    // whichever writer commits which group, every one must be applied (none found stale).
    let mut pending = Vec::new();
    for wave in 0..10_u32 {
        for n in 1..=30_u32 {
            let version = format!("{:08X}", wave * 30 + n);
            pending.push(store.record(delivery(1, &version, false)));
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let receipts = futures_util::future::join_all(pending).await;
    let stale = receipts
        .iter()
        .filter(|r| *r.as_ref().unwrap() != Receipt::Applied(ApplyOutcome::Applied))
        .count();
    let which: Vec<(usize, String)> = receipts
        .iter()
        .enumerate()
        .filter(|(_, r)| *r.as_ref().unwrap() != Receipt::Applied(ApplyOutcome::Applied))
        .map(|(i, r)| (i + 1, r.as_ref().unwrap().name().to_owned()))
        .collect();
    assert_eq!(
        stale, 0,
        "{stale} of 300 deliveries were not applied in order: {which:?}"
    );
    let stats = store.stats().await.unwrap();
    assert!(
        stats.batches > 1,
        "one group only: the test did not exercise several writers"
    );
    store.close().await;
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_at_a_time_owns_a_stores_subscription() {
    let Some(database) = TestDatabase::create("owner").await else {
        return;
    };
    let first = PgStore::connect_with(database.config()).await.unwrap();
    let second = PgStore::connect_with(database.config()).await.unwrap();
    let held = first.try_claim_owner().await.unwrap();
    assert!(held.is_some());
    assert!(second.try_claim_owner().await.unwrap().is_none());
    drop(held);
    // The session ends asynchronously: the claim is free within a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if second.try_claim_owner().await.unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the released claim was not free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.close().await;
    second.close().await;
    database.cleanup().await;
}
