//! Retention (`purge`) and erasure (`forget_person`) on PostgreSQL: the watermark survives a
//! purge (a late older delivery is still stale), current state is never purged, a dry run
//! counts exactly what the real run removes, and an erasure leaves no row naming the person,
//! keeps the others, leaves tombstones, records counts only, shows in the feed and wakes
//! followers.
//! Needs a server (DATABASE_URL or PG*); skipped loudly without one, unless
//! PROTIME_REQUIRE_POSTGRES=1 (as in CI), which makes a missing server a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration as StdDuration;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use protime_model::{ApplyOutcome, ClockingChange, ClockingId, parse_delivery};
use protime_store_postgres::testing::TestDatabase;
use protime_store_postgres::{PgStore, Purge};
use protime_webhooks::sink::{Delivery, FeedCursor, Receipt, SinkRead as _, WebhookOrigin};
use serde_json::Value;

fn upsert(id: i64, version: &str, person: i64) -> Vec<u8> {
    format!(
        r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":"{version}","id":{id},"person":{{"id":{person}}},"date":"2026-01-15","timeOfDayInMinutes":480,"kind":"InOut"}}}}"#
    )
    .into_bytes()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - Duration::days(days)
}

async fn record(store: &PgStore, body: &[u8], received_at: DateTime<Utc>) -> Receipt {
    let change = parse_delivery(body).unwrap();
    let mut origin = WebhookOrigin::new(Bytes::from(body.to_vec()), "k1");
    origin.received_at = received_at;
    store
        .record(Delivery::webhook(change, origin))
        .await
        .unwrap()
}

fn applied(outcome: ApplyOutcome) -> Receipt {
    Receipt::Applied(outcome)
}

async fn dead_letter(store: &PgStore, body: &[u8], received_at: DateTime<Utc>) {
    let errors =
        parse_delivery(br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":0}}"#)
            .unwrap_err();
    let mut webhook = WebhookOrigin::new(Bytes::from(body.to_vec()), "k1");
    webhook.received_at = received_at;
    let receipt = store
        .record(Delivery::DeadLetter { errors, webhook })
        .await
        .unwrap();
    assert_eq!(receipt, Receipt::DeadLettered);
}

fn id(n: i64) -> ClockingId {
    ClockingId::new(n).unwrap()
}

async fn feed(store: &PgStore) -> Vec<(String, ClockingChange)> {
    let page = store.changes(FeedCursor(0), 10_000).await.unwrap();
    page.entries
        .into_iter()
        .map(|entry| (entry.origin.to_owned(), entry.change))
        .collect()
}

async fn version_of(store: &PgStore, n: i64) -> Option<String> {
    store
        .clocking(id(n))
        .await
        .unwrap()
        .map(|c| c.change_version.as_str().to_owned())
}

/// Every body and serialized change the schema holds (change log and dead letters).
async fn every_stored_document(database: &TestDatabase) -> Vec<String> {
    let session = database.session().await.unwrap();
    let mut documents = Vec::new();
    for row in session
        .query("SELECT raw_body, change_json FROM change_log", &[])
        .await
        .unwrap()
    {
        let body: Option<Vec<u8>> = row.get(0);
        let json: Option<String> = row.get(1);
        documents.extend(body.map(|b| String::from_utf8_lossy(&b).into_owned()));
        documents.extend(json);
    }
    for row in session
        .query("SELECT raw_body FROM dead_letters", &[])
        .await
        .unwrap()
    {
        let body: Vec<u8> = row.get(0);
        documents.push(String::from_utf8_lossy(&body).into_owned());
    }
    documents
}

fn names_person(document: &str, person: i64) -> bool {
    serde_json::from_str::<Value>(document)
        .ok()
        .and_then(|v| v.pointer("/data/person/id").and_then(Value::as_i64))
        == Some(person)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_delivery_after_a_purge_is_still_stale() {
    let Some(database) = TestDatabase::create("retention_watermark").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    let old = days_ago(40);
    assert_eq!(
        record(&store, &upsert(1, "01", 7), old).await,
        applied(ApplyOutcome::Applied)
    );
    assert_eq!(
        record(&store, &upsert(1, "02", 7), old).await,
        applied(ApplyOutcome::Applied)
    );
    assert_eq!(
        record(&store, &upsert(1, "02", 7), old).await,
        applied(ApplyOutcome::Duplicate)
    );
    let future = Utc::now() + Duration::days(1);
    let counts = store
        .purge(
            &Purge::new()
                .raw_bodies_before(future)
                .change_log_before(future)
                .dead_letters_before(future),
        )
        .await
        .unwrap();
    assert_eq!(counts.change_log_entries, 2, "v1 and the duplicate go");
    assert_eq!(
        counts.raw_bodies, 0,
        "the current entry's body is the clocking"
    );
    assert_eq!(store.change_log_len().await.unwrap(), 1);
    assert_eq!(version_of(&store, 1).await.as_deref(), Some("02"));

    assert_eq!(
        record(&store, &upsert(1, "01", 7), Utc::now()).await,
        applied(ApplyOutcome::Stale)
    );
    assert_eq!(
        record(&store, &upsert(1, "02", 7), Utc::now()).await,
        applied(ApplyOutcome::Duplicate)
    );
    assert_eq!(version_of(&store, 1).await.as_deref(), Some("02"));
    store.close().await;
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_by_age_keeps_what_is_recent_and_what_is_current() {
    let Some(database) = TestDatabase::create("retention_age").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    record(&store, &upsert(1, "01", 7), days_ago(40)).await;
    record(&store, &upsert(1, "02", 7), days_ago(39)).await;
    record(&store, &upsert(2, "01", 7), days_ago(40)).await;
    record(&store, &upsert(2, "02", 7), days_ago(1)).await;
    record(&store, &upsert(3, "01", 7), days_ago(1)).await;
    dead_letter(&store, b"not json", days_ago(40)).await;
    dead_letter(&store, b"{}", days_ago(1)).await;

    let bodies = Purge::new().raw_bodies_before(days_ago(30));
    let dry = store.purge(&bodies.dry_run(true)).await.unwrap();
    assert_eq!((dry.raw_bodies, dry.change_log_entries), (2, 0));
    assert_eq!(feed(&store).await.len(), 5, "a dry run removes nothing");
    assert_eq!(store.purge(&bodies).await.unwrap(), dry);
    assert_eq!(store.change_log_len().await.unwrap(), 5);
    assert_eq!(feed(&store).await.len(), 3);
    for n in 1..=3 {
        assert!(version_of(&store, n).await.is_some());
    }
    assert_eq!(store.purge(&bodies).await.unwrap().raw_bodies, 0);

    let all = Purge::new()
        .change_log_before(days_ago(30))
        .dead_letters_before(days_ago(30));
    let dry = store.purge(&all.dry_run(true)).await.unwrap();
    assert_eq!((dry.change_log_entries, dry.dead_letters), (2, 1));
    assert_eq!(store.change_log_len().await.unwrap(), 5);
    assert_eq!(store.purge(&all).await.unwrap(), dry);
    assert_eq!(store.change_log_len().await.unwrap(), 3);
    let letters = store.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].raw_body, b"{}");
    assert_eq!(version_of(&store, 1).await.as_deref(), Some("02"));
    store.close().await;
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_removes_the_person_and_leaves_tombstones_and_a_feed_entry() {
    let Some(database) = TestDatabase::create("retention_forget").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    let now = Utc::now();
    record(&store, &upsert(1, "01", 7), now).await;
    record(&store, &upsert(1, "02", 7), now).await;
    record(&store, &upsert(1, "02", 7), now).await;
    record(&store, &upsert(2, "05", 7), now).await;
    record(&store, &upsert(3, "01", 8), now).await;
    record(&store, &upsert(4, "01", 7), now).await;
    let delete = br#"{"changeType":"Delete","data":{"changeVersion":"03","id":4}}"#;
    record(&store, delete, now).await;
    dead_letter(
        &store,
        br#"{"changeType":"Bogus","data":{"id":9,"person":{"id":7}}}"#,
        now,
    )
    .await;
    dead_letter(&store, b"\xff\xfe not json", now).await;
    dead_letter(&store, br#"{"data":{"person":{"id":8}}}"#, now).await;

    let dry = store.forget_person(7, true).await.unwrap();
    assert_eq!(
        (dry.clockings, dry.change_log_entries, dry.dead_letters),
        (3, 6, 1)
    );
    assert_eq!(store.change_log_len().await.unwrap(), 7);
    assert!(store.erasures().await.unwrap().is_empty());

    let mut notifications = store.notifications().await.unwrap();
    let counts = store.forget_person(7, false).await.unwrap();
    assert_eq!(counts, dry);
    // Forgetting again finds nothing, and records nothing.
    let again = store.forget_person(7, false).await.unwrap();
    assert_eq!(
        again.clockings + again.change_log_entries + again.dead_letters,
        0
    );
    assert!(
        notifications.wait(StdDuration::from_secs(5)).await.unwrap(),
        "followers are woken"
    );

    let documents = every_stored_document(&database).await;
    assert!(
        !documents.iter().any(|d| names_person(d, 7)),
        "{documents:#?}"
    );
    assert!(documents.iter().any(|d| names_person(d, 8)));
    assert_eq!(store.dead_letters().await.unwrap().len(), 2);
    assert!(version_of(&store, 3).await.is_some());

    let tracked = store.tracked_versions().await.unwrap();
    for (n, version) in [(1, "02"), (2, "05"), (4, "03")] {
        assert!(version_of(&store, n).await.is_none());
        let (_, v, deleted) = tracked.iter().find(|(i, _, _)| *i == id(n)).unwrap();
        assert_eq!((v.as_str(), *deleted), (version, true));
    }
    assert_eq!(
        record(&store, &upsert(1, "01", 7), now).await,
        applied(ApplyOutcome::Stale)
    );
    assert_eq!(
        record(&store, &upsert(1, "02", 7), now).await,
        applied(ApplyOutcome::Duplicate)
    );
    assert!(version_of(&store, 1).await.is_none());

    let erasures = store.erasures().await.unwrap();
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0].counts, counts);
    assert!(erasures[0].completed_at.is_some());

    let entries = feed(&store).await;
    let erased: Vec<_> = entries
        .iter()
        .filter(|(origin, _)| origin == "erasure")
        .map(|(_, change)| {
            (
                change.id().get(),
                change.change_version().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        erased,
        vec![(1, "02".into()), (2, "05".into()), (4, "03".into())]
    );
    assert!(
        entries
            .iter()
            .filter(|(origin, _)| origin == "erasure")
            .all(|(_, change)| matches!(change, ClockingChange::Delete { .. }))
    );
    store.close().await;
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_forget_run_beside_concurrent_writers() {
    let Some(database) = TestDatabase::create("retention_concurrent").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    // Two writers, each its own ids in batches (ids interleave across writers' batches),
    // persons 7 and 8 alternating by id.
    let writers: Vec<_> = (0..2_i64)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for version in 1..=20 {
                    let batch: Vec<Delivery> = (1..=40_i64)
                        .filter(|n| n % 2 == writer)
                        .map(|n| {
                            let body = upsert(n, &format!("{version:04}"), 7 + n % 2);
                            let change = parse_delivery(&body).unwrap();
                            let mut origin = WebhookOrigin::new(Bytes::from(body), "k1");
                            origin.received_at = days_ago(40);
                            Delivery::webhook(change, origin)
                        })
                        .collect();
                    for receipt in store.record_batch(batch).await {
                        assert!(matches!(receipt, Ok(Receipt::Applied(_))), "{receipt:?}");
                    }
                }
            })
        })
        .collect();
    let future = Utc::now() + Duration::days(1);
    let everything = Purge::new()
        .raw_bodies_before(future)
        .change_log_before(future)
        .dead_letters_before(future);
    while writers.iter().any(|writer| !writer.is_finished()) {
        store.purge(&everything).await.unwrap();
        store.forget_person(8, false).await.unwrap();
        store.clockings().await.unwrap();
    }
    for writer in writers {
        writer.await.unwrap();
    }
    store.purge(&everything).await.unwrap();
    let tracked = store.tracked_versions().await.unwrap();
    assert_eq!(tracked.len(), 40);
    for (id, version, deleted) in &tracked {
        if id.get() % 2 == 0 {
            assert_eq!((version.as_str(), *deleted), ("0020", false), "{id}");
        } else if !deleted {
            assert_eq!(version.as_str(), "0020");
        }
    }
    assert_eq!(store.change_log_len().await.unwrap(), 40);
    store.forget_person(8, false).await.unwrap();
    assert_eq!(store.clockings().await.unwrap().len(), 20);
    // The feed holds exactly the current entries, in order, with distinct positions.
    let page = store.changes(FeedCursor(0), 1_000).await.unwrap();
    assert_eq!(page.entries.len(), 40);
    assert!(page.entries.windows(2).all(|w| w[0].cursor < w[1].cursor));
    store.close().await;
    database.cleanup().await;
}

/// A purge and an erasure cover the whole table, not only its first window of
/// `RETENTION_BATCH` rows: entries past the first window are found, counted and removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_forget_reach_past_the_first_window() {
    use protime_store_postgres::RETENTION_BATCH;

    let Some(database) = TestDatabase::create("retention_windows").await else {
        return;
    };
    let store = PgStore::connect_with(database.config()).await.unwrap();
    let old = days_ago(40);
    let origin = |body: Vec<u8>| {
        let mut origin = WebhookOrigin::new(Bytes::from(body), "k1");
        origin.received_at = old;
        origin
    };
    // Ids 1..=BATCH+1: superseded versions of clocking 1 (person 8); BATCH+2: clocking 2 of
    // person 7, the only entry naming them; BATCH+3: clocking 1's current version. All old.
    // Person 7 and one superseded entry lie past the first window.
    let superseded = RETENTION_BATCH + 1;
    let mut bodies: Vec<Vec<u8>> = (1..=superseded)
        .map(|n| upsert(1, &format!("{n:06}"), 8))
        .collect();
    bodies.push(upsert(2, "000001", 7));
    bodies.push(upsert(1, "999999", 8));
    let batch = bodies
        .into_iter()
        .map(|body| Delivery::webhook(parse_delivery(&body).unwrap(), origin(body)))
        .collect();
    let receipts = store.record_batch(batch).await;
    let expected = applied(ApplyOutcome::Applied);
    assert!(receipts.iter().all(|r| r.as_ref().ok() == Some(&expected)));
    // Dead letters: BATCH naming person 8, then one naming person 7 (as a string, as a dead
    // letter may), past the first window of dead letters.
    let errors =
        parse_delivery(br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":0}}"#)
            .unwrap_err();
    let letters = (0..=RETENTION_BATCH)
        .map(|n| {
            let person = if n == RETENTION_BATCH { 7 } else { 8 };
            let body = format!(r#"{{"data":{{"person":{{"id":"{person}"}}}}}}"#);
            Delivery::DeadLetter {
                errors: errors.clone(),
                webhook: origin(body.into_bytes()),
            }
        })
        .collect();
    let receipts = store.record_batch(letters).await;
    assert!(
        receipts
            .iter()
            .all(|r| r.as_ref().ok() == Some(&Receipt::DeadLettered))
    );

    let dry = store.forget_person(7, true).await.unwrap();
    assert_eq!(
        (dry.clockings, dry.change_log_entries, dry.dead_letters),
        (1, 1, 1)
    );
    assert_eq!(store.forget_person(7, false).await.unwrap(), dry);
    let documents = every_stored_document(&database).await;
    assert!(
        !documents
            .iter()
            .any(|d| d.contains(r#""id":7"#) || d.contains(r#""id":"7""#))
    );

    let purge = Purge::new().change_log_before(days_ago(30));
    let counted = store.purge(&purge.dry_run(true)).await.unwrap();
    assert_eq!(
        counted.change_log_entries,
        u64::try_from(superseded).unwrap()
    );
    assert_eq!(store.purge(&purge).await.unwrap(), counted);
    // Left: clocking 1's current entry and clocking 2's erasure entry.
    assert_eq!(store.change_log_len().await.unwrap(), 2);
    store.close().await;
}
