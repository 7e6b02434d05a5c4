//! Exact checks of what `src/apply.rs` writes, written to kill the mutants the conformance
//! suite lets through (see scripts/mutants.sh): the outcome recorded in every change-log
//! entry (counted by `stats`), synced items logged only when applied, tombstones from both
//! kinds of deletion, a commit notification for a group that only stored dead letters and
//! none for a group that added nothing to the feed.
//! Needs a server (DATABASE_URL or PG*); skipped loudly without one, unless
//! PROTIME_REQUIRE_POSTGRES=1 (as in CI), which makes a missing server a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::time::Duration;

use bytes::Bytes;
use protime_model::{ApplyOutcome, ChangeVersion, ClockingChange, ClockingId, parse_delivery};
use protime_store_postgres::testing::TestDatabase;
use protime_store_postgres::{PgStore, StoreError};
use protime_webhooks::sink::{
    Delivery, FeedCursor, Receipt, SinkRead as _, SyncOrigin, WebhookOrigin,
};

fn upsert_body(id: i64, version: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":"{version}","id":{id},
        "person":{{"id":4}},"date":"2026-01-15","timeOfDayInMinutes":100,"kind":"InOut"{extra}}}}}"#
    )
    .into_bytes()
}

fn delete_body(id: i64, version: &str) -> Vec<u8> {
    format!(r#"{{"changeType":"Delete","data":{{"changeVersion":"{version}","id":{id}}}}}"#)
        .into_bytes()
}

fn webhook(body: Vec<u8>) -> Delivery {
    let change = parse_delivery(&body).unwrap();
    Delivery::webhook(change, WebhookOrigin::new(Bytes::from(body), "k1"))
}

fn synced(body: &[u8], page: u64) -> Delivery {
    let ClockingChange::InsertOrUpdate(clocking) = parse_delivery(body).unwrap() else {
        panic!("not an upsert")
    };
    Delivery::synced(clocking, SyncOrigin::new("run-1", page))
}

fn dead_letter() -> Delivery {
    let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":0}}"#;
    Delivery::DeadLetter {
        errors: parse_delivery(body).unwrap_err(),
        webhook: WebhookOrigin::new(Bytes::from_static(body), "k1"),
    }
}

fn applied(receipt: &Result<Receipt, StoreError>) -> ApplyOutcome {
    match receipt {
        Ok(Receipt::Applied(outcome)) => *outcome,
        other => panic!("unexpected {other:?}"),
    }
}

fn id(n: i64) -> ClockingId {
    ClockingId::new(n).unwrap()
}

fn version(text: &str) -> ChangeVersion {
    ChangeVersion::new(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_is_logged_under_its_own_name_and_deletions_leave_tombstones() {
    let Some(database) = TestDatabase::create("killers_counts").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    let steps = [
        (upsert_body(1, "05", ""), ApplyOutcome::Applied),
        (upsert_body(1, "05", ""), ApplyOutcome::Duplicate),
        (upsert_body(1, "04", ""), ApplyOutcome::Stale),
        (upsert_body(2, "07", ""), ApplyOutcome::Applied),
        (upsert_body(3, "07", ""), ApplyOutcome::Applied),
        (delete_body(3, "09"), ApplyOutcome::Applied),
        (
            upsert_body(4, "03", r#","status":"Deleted""#),
            ApplyOutcome::Applied,
        ),
        (
            upsert_body(5, "03", r#","status":"Active""#),
            ApplyOutcome::Applied,
        ),
    ];
    for (body, expected) in steps {
        assert_eq!(applied(&store.record(webhook(body)).await), expected);
    }
    assert_eq!(
        store.record(dead_letter()).await.unwrap(),
        Receipt::DeadLettered
    );

    let stats = store.stats().await.unwrap();
    assert_eq!(
        (
            stats.applied,
            stats.duplicates,
            stats.stale,
            stats.dead_letters,
            stats.clockings,
            stats.tombstones
        ),
        (6, 1, 1, 1, 3, 2)
    );
    assert_eq!(store.change_log_len().await.unwrap(), 8);
    assert_eq!(
        store.tracked_versions().await.unwrap(),
        vec![
            (id(1), version("05"), false),
            (id(2), version("07"), false),
            (id(3), version("09"), true),
            (id(4), version("03"), true),
            (id(5), version("03"), false),
        ]
    );
    let live: Vec<_> = store
        .clockings()
        .await
        .unwrap()
        .iter()
        .map(|c| c.id.get())
        .collect();
    assert_eq!(live, vec![1, 2, 5]);
    store.close().await;
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_item_is_logged_only_when_applied() {
    let Some(database) = TestDatabase::create("killers_sync").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    let first = upsert_body(1, "05", "");
    let outcomes = store
        .record_batch(vec![synced(&first, 1), synced(&first, 2)])
        .await;
    assert_eq!(applied(&outcomes[0]), ApplyOutcome::Applied);
    assert_eq!(applied(&outcomes[1]), ApplyOutcome::Duplicate);
    let older = upsert_body(1, "04", "");
    assert_eq!(
        applied(&store.record(synced(&older, 3)).await),
        ApplyOutcome::Stale
    );
    assert_eq!(store.change_log_len().await.unwrap(), 1);
    let page = store.changes(FeedCursor(0), 10).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].origin, "sync");
    assert_eq!(store.last_feed_position().await.unwrap(), FeedCursor(1));
    store.close().await;
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_dead_letters_only_notifies_followers() {
    let Some(database) = TestDatabase::create("killers_notify").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    let mut notifications = store.notifications().await.unwrap();
    assert_eq!(
        store.record(dead_letter()).await.unwrap(),
        Receipt::DeadLettered
    );
    assert!(
        notifications.wait(Duration::from_secs(10)).await.unwrap(),
        "no notification for a dead letter"
    );
    assert_eq!(
        applied(&store.record(webhook(upsert_body(1, "05", ""))).await),
        ApplyOutcome::Applied
    );
    assert!(
        notifications.wait(Duration::from_secs(10)).await.unwrap(),
        "no notification for an applied change"
    );
    // A group that adds nothing to the feed (a redelivery) wakes nobody, and does not take
    // a feed position.
    let before = store.last_feed_position().await.unwrap();
    assert_eq!(
        applied(&store.record(webhook(upsert_body(1, "05", ""))).await),
        ApplyOutcome::Duplicate
    );
    assert!(
        !notifications.wait(Duration::from_secs(2)).await.unwrap(),
        "a notification for a group that added nothing to the feed"
    );
    assert_eq!(store.last_feed_position().await.unwrap(), before);
    drop(notifications);
    store.close().await;
    database.cleanup().await;
}
