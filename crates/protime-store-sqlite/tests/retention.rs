//! Retention (`purge`) and erasure (`forget_person`): the watermark survives a purge (a late
//! older delivery is still stale), current state is never purged, a dry run counts exactly
//! what the real run removes, and an erasure leaves no row naming the person, keeps the
//! others, leaves tombstones, records counts only, and shows in the feed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{DateTime, Duration, Utc};
use protime_model::{ApplyOutcome, ClockingChange, ClockingId, parse_delivery};
use protime_store_sqlite::{Purge, SqliteStore};
use protime_webhooks::sink::{Delivery, FeedCursor, Receipt, SinkRead as _, WebhookOrigin};
use rusqlite::Connection;
use serde_json::Value;

mod common;
use common::TempDir;

fn upsert(id: i64, version: &str, person: i64) -> Vec<u8> {
    format!(
        r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":"{version}","id":{id},"person":{{"id":{person}}},"date":"2026-01-15","timeOfDayInMinutes":480,"kind":"InOut"}}}}"#
    )
    .into_bytes()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - Duration::days(days)
}

fn record(store: &SqliteStore, body: &[u8], received_at: DateTime<Utc>) -> Receipt {
    let change = parse_delivery(body).unwrap();
    let mut origin = WebhookOrigin::new(body.to_vec().into(), "k1");
    origin.received_at = received_at;
    store
        .record_blocking(Delivery::webhook(change, origin))
        .unwrap()
}

fn applied(outcome: ApplyOutcome) -> Receipt {
    Receipt::Applied(outcome)
}

fn dead_letter(store: &SqliteStore, body: &[u8], received_at: DateTime<Utc>) {
    let errors =
        parse_delivery(br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":0}}"#)
            .unwrap_err();
    let mut webhook = WebhookOrigin::new(body.to_vec().into(), "k1");
    webhook.received_at = received_at;
    let receipt = store
        .record_blocking(Delivery::DeadLetter { errors, webhook })
        .unwrap();
    assert_eq!(receipt, Receipt::DeadLettered);
}

fn id(n: i64) -> ClockingId {
    ClockingId::new(n).unwrap()
}

fn version_of(store: &SqliteStore, n: i64) -> Option<String> {
    store
        .clocking_blocking(id(n))
        .unwrap()
        .map(|c| c.change_version.as_str().to_owned())
}

fn feed(store: &SqliteStore) -> Vec<(String, ClockingChange)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let page = runtime
        .block_on(store.changes(FeedCursor(0), 10_000))
        .unwrap();
    page.entries
        .into_iter()
        .map(|entry| (entry.origin.to_owned(), entry.change))
        .collect()
}

/// Everything the database holds that could name a person: bodies and serialized changes
/// of the change log, dead-letter bodies, as JSON values (or text when not JSON).
fn every_stored_document(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut documents = Vec::new();
    let mut statement = conn
        .prepare("SELECT raw_body, change_json FROM change_log")
        .unwrap();
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, Option<Vec<u8>>>(0)?,
                row.get::<_, Option<String>>(1)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (body, json) = row.unwrap();
        documents.extend(body.map(|b| String::from_utf8_lossy(&b).into_owned()));
        documents.extend(json);
    }
    let mut statement = conn.prepare("SELECT raw_body FROM dead_letters").unwrap();
    let rows = statement
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .unwrap();
    for row in rows {
        documents.push(String::from_utf8_lossy(&row.unwrap()).into_owned());
    }
    documents
}

fn names_person(document: &str, person: i64) -> bool {
    serde_json::from_str::<Value>(document)
        .ok()
        .and_then(|v| v.pointer("/data/person/id").and_then(Value::as_i64))
        == Some(person)
}

#[test]
fn a_stale_delivery_after_a_purge_is_still_stale() {
    let dir = TempDir::new("retention-watermark");
    let store = SqliteStore::open(dir.db()).unwrap();
    let old = days_ago(40);
    assert_eq!(
        record(&store, &upsert(1, "01", 7), old),
        applied(ApplyOutcome::Applied)
    );
    assert_eq!(
        record(&store, &upsert(1, "02", 7), old),
        applied(ApplyOutcome::Applied)
    );
    assert_eq!(
        record(&store, &upsert(1, "02", 7), old),
        applied(ApplyOutcome::Duplicate)
    );
    assert_eq!(store.change_log_len().unwrap(), 3);

    // Purge everything purgeable: every cutoff in the future.
    let future = Utc::now() + Duration::days(1);
    let counts = store
        .purge(
            &Purge::new()
                .raw_bodies_before(future)
                .change_log_before(future)
                .dead_letters_before(future),
        )
        .unwrap();
    assert_eq!(counts.change_log_entries, 2, "v1 and the duplicate go");
    assert_eq!(
        counts.raw_bodies, 0,
        "the current entry's body is the clocking"
    );
    assert_eq!(store.change_log_len().unwrap(), 1);
    let current = store.clocking_blocking(id(1)).unwrap().unwrap();
    assert_eq!(current.change_version.as_str(), "02");

    // The state row is the watermark: v1 is still stale, v2 still a duplicate.
    assert_eq!(
        record(&store, &upsert(1, "01", 7), Utc::now()),
        applied(ApplyOutcome::Stale)
    );
    assert_eq!(
        record(&store, &upsert(1, "02", 7), Utc::now()),
        applied(ApplyOutcome::Duplicate)
    );
    assert_eq!(version_of(&store, 1).as_deref(), Some("02"));
    store.close().unwrap();
}

#[test]
fn purge_by_age_keeps_what_is_recent_and_what_is_current() {
    let dir = TempDir::new("retention-age");
    let store = SqliteStore::open(dir.db()).unwrap();
    // Id 1: v1 old, v2 old (current). Id 2: v1 old, v2 recent (current). Id 3: v1 recent.
    record(&store, &upsert(1, "01", 7), days_ago(40));
    record(&store, &upsert(1, "02", 7), days_ago(39));
    record(&store, &upsert(2, "01", 7), days_ago(40));
    record(&store, &upsert(2, "02", 7), days_ago(1));
    record(&store, &upsert(3, "01", 7), days_ago(1));
    dead_letter(&store, b"not json", days_ago(40));
    dead_letter(&store, b"{}", days_ago(1));

    // Bodies only: the entries stay, old non-current bodies go (id 1 v1, id 2 v1).
    let bodies = Purge::new().raw_bodies_before(days_ago(30));
    let dry = store.purge(&bodies.dry_run(true)).unwrap();
    assert_eq!(dry.raw_bodies, 2);
    assert_eq!(dry.change_log_entries, 0);
    let before = feed(&store);
    assert_eq!(before.len(), 5, "a dry run removes nothing");
    assert_eq!(store.purge(&bodies).unwrap(), dry);
    assert_eq!(store.change_log_len().unwrap(), 5);
    // The feed leaves out the entries without a body; the state reads as before.
    let after = feed(&store);
    assert_eq!(after.len(), 3);
    assert!(
        after
            .iter()
            .all(|(_, c)| c.change_version().as_str() != "01" || c.id() == id(3))
    );
    for n in 1..=3 {
        assert!(store.clocking_blocking(id(n)).unwrap().is_some());
    }
    // Again: nothing left to purge.
    assert_eq!(store.purge(&bodies).unwrap().raw_bodies, 0);

    // Entries and dead letters by age.
    let all = Purge::new()
        .change_log_before(days_ago(30))
        .dead_letters_before(days_ago(30));
    let dry = store.purge(&all.dry_run(true)).unwrap();
    assert_eq!((dry.change_log_entries, dry.dead_letters), (2, 1));
    assert_eq!(store.change_log_len().unwrap(), 5);
    assert_eq!(store.dead_letters().unwrap().len(), 2);
    assert_eq!(store.purge(&all).unwrap(), dry);
    assert_eq!(store.change_log_len().unwrap(), 3);
    let letters = store.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].raw_body, b"{}");
    // Id 1's current entry is 39 days old and stays.
    assert_eq!(version_of(&store, 1).as_deref(), Some("02"));
    store.close().unwrap();
}

#[test]
fn forget_removes_the_person_and_leaves_tombstones_and_a_feed_entry() {
    let dir = TempDir::new("retention-forget");
    let store = SqliteStore::open(dir.db()).unwrap();
    let now = Utc::now();
    record(&store, &upsert(1, "01", 7), now);
    record(&store, &upsert(1, "02", 7), now);
    record(&store, &upsert(1, "02", 7), now); // duplicate
    record(&store, &upsert(2, "05", 7), now);
    record(&store, &upsert(3, "01", 8), now);
    // A Delete names nobody, but belongs to the erased clocking.
    let delete = br#"{"changeType":"Delete","data":{"changeVersion":"03","id":4}}"#;
    record(&store, &upsert(4, "01", 7), now);
    record(&store, delete, now);
    dead_letter(
        &store,
        br#"{"changeType":"Bogus","data":{"id":9,"person":{"id":7}}}"#,
        now,
    );
    dead_letter(&store, b"\xff\xfe not json", now);
    dead_letter(&store, br#"{"data":{"person":{"id":8}}}"#, now);

    let dry = store.forget_person(7, true).unwrap();
    assert_eq!(
        (dry.clockings, dry.change_log_entries, dry.dead_letters),
        (3, 6, 1)
    );
    assert_eq!(
        store.change_log_len().unwrap(),
        7,
        "a dry run removes nothing"
    );
    assert!(store.erasures().unwrap().is_empty());

    let counts = store.forget_person(7, false).unwrap();
    assert_eq!(counts, dry);
    // Forgetting again finds nothing, and records nothing.
    let again = store.forget_person(7, false).unwrap();
    assert_eq!(
        again.clockings + again.change_log_entries + again.dead_letters,
        0
    );

    // No row names person 7; person 8 is intact.
    let documents = every_stored_document(&dir.db());
    assert!(
        !documents.iter().any(|d| names_person(d, 7)),
        "{documents:#?}"
    );
    assert!(documents.iter().any(|d| names_person(d, 8)));
    assert_eq!(store.dead_letters().unwrap().len(), 2);
    assert!(store.clocking_blocking(id(3)).unwrap().is_some());

    // Tombstones keep the ids and versions: an old redelivery stays stale, the erased
    // version is a duplicate, nothing is resurrected.
    for (n, version) in [(1, "02"), (2, "05"), (4, "03")] {
        assert!(store.clocking_blocking(id(n)).unwrap().is_none());
        let tracked = store.tracked_versions().unwrap();
        let (_, v, deleted) = tracked.iter().find(|(i, _, _)| *i == id(n)).unwrap();
        assert_eq!((v.as_str(), *deleted), (version, true));
    }
    assert_eq!(
        record(&store, &upsert(1, "01", 7), now),
        applied(ApplyOutcome::Stale)
    );
    assert_eq!(
        record(&store, &upsert(1, "02", 7), now),
        applied(ApplyOutcome::Duplicate)
    );
    assert!(store.clocking_blocking(id(1)).unwrap().is_none());

    // The erasure is recorded: when and how many, not whom.
    let erasures = store.erasures().unwrap();
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0].counts, counts);
    assert!(erasures[0].completed_at.is_some());

    // The feed carries one Delete of origin `erasure` per erased clocking, after the rest.
    let entries = feed(&store);
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
    store.close().unwrap();
}

#[test]
fn erased_entries_survive_retention_while_current() {
    let dir = TempDir::new("retention-erased");
    let store = SqliteStore::open(dir.db()).unwrap();
    record(&store, &upsert(1, "01", 7), days_ago(40));
    store.forget_person(7, false).unwrap();
    let future = Utc::now() + Duration::days(1);
    let counts = store
        .purge(
            &Purge::new()
                .change_log_before(future)
                .raw_bodies_before(future),
        )
        .unwrap();
    assert_eq!((counts.change_log_entries, counts.raw_bodies), (0, 0));
    assert_eq!(
        record(&store, &upsert(1, "01", 7), Utc::now()),
        applied(ApplyOutcome::Duplicate)
    );
    store.close().unwrap();
}

#[test]
fn purge_and_forget_run_beside_concurrent_deliveries() {
    let dir = TempDir::new("retention-concurrent");
    let store = SqliteStore::open(dir.db()).unwrap();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            // 60 ids, 30 versions each, persons 7 and 8 alternating by id.
            for version in 1..=30 {
                for n in 1..=60 {
                    let body = upsert(n, &format!("{version:04}"), 7 + n % 2);
                    let receipt = record(&store, &body, days_ago(40));
                    assert!(matches!(receipt, Receipt::Applied(_)), "{receipt:?}");
                }
            }
        })
    };
    let future = Utc::now() + Duration::days(1);
    let everything = Purge::new()
        .raw_bodies_before(future)
        .change_log_before(future)
        .dead_letters_before(future);
    while !writer.is_finished() {
        store.purge(&everything).unwrap();
        store.forget_person(8, false).unwrap();
        // Every state row still reads: none points at a removed entry.
        store.clockings().unwrap();
    }
    writer.join().unwrap();
    store.purge(&everything).unwrap();
    // Person 7's clockings hold their last version; person 8's are erased or hold a version
    // delivered after the last erasure.
    let tracked = store.tracked_versions().unwrap();
    assert_eq!(tracked.len(), 60);
    for (id, version, deleted) in &tracked {
        if id.get() % 2 == 0 {
            assert_eq!((version.as_str(), *deleted), ("0030", false), "{id}");
        } else if !deleted {
            assert_eq!(version.as_str(), "0030");
        }
    }
    // After the purge only the current entries are left.
    assert_eq!(store.change_log_len().unwrap(), 60);
    store.forget_person(8, false).unwrap();
    assert_eq!(store.clockings().unwrap().len(), 30);
    store.close().unwrap();
}

/// A purge and an erasure cover the whole table, not only its first window of
/// `RETENTION_BATCH` rows: entries past the first window are found, counted and removed.
#[test]
fn purge_and_forget_reach_past_the_first_window() {
    use protime_store_sqlite::RETENTION_BATCH;

    let dir = TempDir::new("retention-windows");
    let store = SqliteStore::open(dir.db()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let old = days_ago(40);
    let origin = |body: Vec<u8>| {
        let mut origin = WebhookOrigin::new(body.into(), "k1");
        origin.received_at = old;
        origin
    };
    // Seqs 1..=BATCH+1: superseded versions of clocking 1 (person 8); seq BATCH+2: clocking
    // 2 of person 7, the only entry naming them; seq BATCH+3: clocking 1's current version.
    // All old. Person 7 and one superseded entry lie past the first window.
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
    let receipts = runtime.block_on(store.record_batch(batch));
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
    let receipts = runtime.block_on(store.record_batch(letters));
    assert!(
        receipts
            .iter()
            .all(|r| r.as_ref().ok() == Some(&Receipt::DeadLettered))
    );

    let dry = store.forget_person(7, true).unwrap();
    assert_eq!(
        (dry.clockings, dry.change_log_entries, dry.dead_letters),
        (1, 1, 1)
    );
    assert_eq!(store.forget_person(7, false).unwrap(), dry);
    let documents = every_stored_document(&dir.db());
    assert!(
        !documents
            .iter()
            .any(|d| d.contains(r#""id":7"#) || d.contains(r#""id":"7""#))
    );

    let purge = Purge::new().change_log_before(days_ago(30));
    let counted = store.purge(&purge.dry_run(true)).unwrap();
    assert_eq!(
        counted.change_log_entries,
        u64::try_from(superseded).unwrap()
    );
    assert_eq!(store.purge(&purge).unwrap(), counted);
    // Left: clocking 1's current entry and clocking 2's erasure entry.
    assert_eq!(store.change_log_len().unwrap(), 2);
}
