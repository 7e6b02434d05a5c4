//! Ordering by `changeVersion`, proved on generated histories: whatever order Protime
//! delivers the changes of a few clockings in, and however often it redelivers them, the
//! in-memory tracker and the SQLite store (fed in that order, and fed concurrently from
//! several tasks) end with the state of applying the changes in `changeVersion` order —
//! same live clockings, same last version per id, same tombstones — and the store's change
//! log holds every delivery it was handed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use protime_model::{
    ApplyOutcome, ChangeVersion, Clocking, ClockingChange, ClockingId, InMemoryTracker,
    parse_delivery,
};
use protime_store_sqlite::SqliteStore;
use protime_webhooks::sink::{Delivery, WebhookOrigin};
use protime_webhooks::{DeliverySink, Receipt};
use serde_json::{Map, Value, json};

const CASES: u32 = 300;
/// Clocking ids 1..=IDS.
const IDS: i64 = 5;
const MAX_CHANGES: usize = 30;
/// Tasks feeding the store concurrently in (c).
const TASKS: usize = 4;

/// Live clockings, then (id, last version, tombstone) for every tracked id; both by id.
type State = (Vec<Clocking>, Vec<(ClockingId, ChangeVersion, bool)>);

mod common;
use common::TempDir;

// ---- generators -------------------------------------------------------------------------

fn external_references() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.3,
        prop::collection::btree_map(
            prop::sample::select(vec!["@badge-number", "@employee-number", "HRMID"]),
            "[A-Z0-9-]{1,6}",
            0..3,
        )
        .prop_map(|refs| json!(refs)),
    )
}

fn reference(ids: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = Value> {
    (ids, external_references()).prop_map(|(id, refs)| {
        let mut map = Map::new();
        map.insert("id".into(), json!(id));
        if let Some(refs) = refs {
            map.insert("externalReferences".into(), refs);
        }
        Value::Object(map)
    })
}

/// The kind-specific fields of a valid clocking.
fn kind() -> impl Strategy<Value = Map<String, Value>> {
    let level = (1_i64..=4, "[a-f0-9]{8}-[a-f0-9]{4}", external_references()).prop_map(
        |(level, id, refs)| {
            let mut definition = Map::new();
            definition.insert("id".into(), json!(id));
            if let Some(refs) = refs {
                definition.insert("externalReferences".into(), refs);
            }
            json!({ "level": level, "activityDefinition": definition })
        },
    );
    prop_oneof![
        Just(json!({ "kind": "InOut" })),
        (reference(1..=40), prop::option::of(any::<bool>())).prop_map(|(reason, open)| {
            let mut kind = json!({ "kind": "Reason", "reason": reason });
            if let Some(open) = open {
                kind["isOpen"] = json!(open);
            }
            kind
        }),
        prop::collection::vec(level, 1..=3)
            .prop_map(|levels| json!({ "kind": "Activity", "activityLevels": levels })),
        Just(json!({ "kind": "ActivityEnd" })),
    ]
    .prop_map(|kind| match kind {
        Value::Object(map) => map,
        _ => Map::new(),
    })
}

/// `data` of a valid `InsertOrUpdate`, without `id` and `changeVersion`.
fn clocking_data() -> impl Strategy<Value = Map<String, Value>> {
    let minute = -1440_i64..=2880;
    let optional = (
        prop::option::of(minute.clone()),
        prop::option::of(minute.clone()),
        prop::option::of(any::<bool>()),
        prop::option::of(reference(1..=20)),
        // Coordinates with 4 decimals: they survive a JSON round trip exactly.
        prop::option::of((-900_000_i32..=900_000, -1_800_000_i32..=1_800_000)),
        prop::option::weighted(
            0.7,
            prop::sample::select(vec!["Active", "Unknown", "Deleted", "Deleted"]),
        ),
    );
    (
        reference(1..=9),
        (2020_i32..=2030, 1_u32..=12, 1_u32..=28),
        minute,
        optional,
        kind(),
    )
        .prop_map(
            |(
                person,
                (y, m, d),
                time,
                (original, calculated, generated, terminal, geo, status),
                kind,
            )| {
                let mut data = Map::new();
                data.insert("person".into(), person);
                data.insert("date".into(), json!(format!("{y:04}-{m:02}-{d:02}")));
                data.insert("timeOfDayInMinutes".into(), json!(time));
                if let Some(v) = original {
                    data.insert("originalTimeOfDayInMinutes".into(), json!(v));
                }
                if let Some(v) = calculated {
                    data.insert("calculatedTimeOfDayInMinutes".into(), json!(v));
                }
                if let Some(v) = generated {
                    data.insert("isGenerated".into(), json!(v));
                }
                if let Some(v) = terminal {
                    data.insert("terminal".into(), v);
                }
                if let Some((lat, lon)) = geo {
                    data.insert(
                        "geolocation".into(),
                        json!({
                            "latitude": f64::from(lat) / 10_000.0,
                            "longitude": f64::from(lon) / 10_000.0,
                        }),
                    );
                }
                data.extend(kind);
                if let Some(status) = status {
                    data.insert("status".into(), json!(status));
                }
                data
            },
        )
}

/// One change of the history: `None` is a `Delete`.
type Change = (i64, Option<Map<String, Value>>, u64);

fn change() -> impl Strategy<Value = Change> {
    (
        1..=IDS,
        prop::option::weighted(0.75, clocking_data()),
        // Gap to the previous version: small gaps exercise A..F and carries in the hex.
        prop_oneof![3 => 1_u64..=16, 1 => 17_u64..=0xFFFF],
    )
}

/// A history, and the order deliveries arrive in: indices into the history, each 1..=3
/// times (redeliveries), shuffled.
fn scenario() -> impl Strategy<Value = (Vec<Change>, Vec<usize>)> {
    prop::collection::vec(change(), 1..=MAX_CHANGES)
        .prop_flat_map(|history| {
            let n = history.len();
            (Just(history), prop::collection::vec(1_usize..=3, n))
        })
        .prop_flat_map(|(history, copies)| {
            let arrivals: Vec<usize> = copies
                .iter()
                .enumerate()
                .flat_map(|(index, &times)| std::iter::repeat_n(index, times))
                .collect();
            (Just(history), Just(arrivals).prop_shuffle())
        })
}

/// Delivery bodies of a history, parsed. Versions increase along the history (so strictly
/// per id, and all distinct): zero-padded upper-case hex like `0000090200004BD0000A`.
fn deliveries(history: &[Change]) -> Result<Vec<(Vec<u8>, ClockingChange)>, TestCaseError> {
    let mut counter: u64 = 0x4BD0_0000;
    let mut deliveries = Vec::with_capacity(history.len());
    for (id, data, gap) in history {
        counter += gap;
        let version = format!("0000090200{counter:010X}");
        let body = match data {
            Some(data) => {
                let mut data = data.clone();
                data.insert("changeVersion".into(), json!(version));
                data.insert("id".into(), json!(id));
                json!({ "changeType": "InsertOrUpdate", "data": data })
            }
            None => {
                json!({ "changeType": "Delete", "data": { "changeVersion": version, "id": id } })
            }
        };
        let body = serde_json::to_vec(&body).unwrap();
        let change = parse_delivery(&body).map_err(|errors| {
            TestCaseError::fail(format!(
                "generated an invalid delivery {}: {errors}",
                String::from_utf8_lossy(&body)
            ))
        })?;
        deliveries.push((body, change));
    }
    Ok(deliveries)
}

fn record(delivery: &(Vec<u8>, ClockingChange)) -> Delivery {
    Delivery::webhook(
        delivery.1.clone(),
        WebhookOrigin::new(delivery.0.clone().into(), "k1"),
    )
}

fn tracker_state(tracker: &InMemoryTracker) -> State {
    (
        tracker.current().cloned().collect(),
        tracker
            .entries()
            .map(|(id, e)| (id, e.change_version.clone(), e.clocking.is_none()))
            .collect(),
    )
}

fn store_state(store: &SqliteStore) -> State {
    (
        store.clockings().unwrap(),
        store.tracked_versions().unwrap(),
    )
}

// ---- the property -----------------------------------------------------------------------

#[derive(Default)]
struct Coverage {
    redelivered: AtomicUsize,
    stale: AtomicUsize,
    tombstones: AtomicUsize,
    soft_deletes_applied: AtomicUsize,
    batched_concurrently: AtomicUsize,
}

/// How (b) feeds the store.
#[derive(Debug, Clone, Copy)]
enum Feed {
    Awaited,
    Pipelined,
}

fn check(
    runtime: &tokio::runtime::Runtime,
    history: &[Change],
    arrivals: &[usize],
    feed: Feed,
    coverage: &Coverage,
) -> Result<(), TestCaseError> {
    let deliveries = deliveries(history)?;
    let fed = arrivals.len() as u64;

    // Reference: every change once, in changeVersion order.
    let mut sorted: Vec<&ClockingChange> = deliveries.iter().map(|(_, c)| c).collect();
    sorted.sort_by(|a, b| a.change_version().cmp(b.change_version()));
    let mut reference = InMemoryTracker::default();
    for change in &sorted {
        prop_assert_eq!(reference.apply(change), ApplyOutcome::Applied);
    }
    let expected = tracker_state(&reference);

    // (a) The tracker, in arrival order with redeliveries.
    let mut tracker = InMemoryTracker::default();
    let tracker_outcomes: Vec<Receipt> = arrivals
        .iter()
        .map(|&i| Receipt::Applied(tracker.apply(&deliveries[i].1)))
        .collect();
    prop_assert_eq!(&tracker_state(&tracker), &expected, "(a) tracker");

    let dir = TempDir::new("ordering");

    // (b) A fresh store fed in arrival order: each record awaited before the next (one
    // transaction each), or all queued in order first and then awaited (`record` queues
    // when called, so they are group-committed and applied in call order, copies of one id
    // inside one transaction). Either way every outcome is the tracker's.
    let sequential = SqliteStore::open(dir.file("sequential")).unwrap();
    let store_outcomes: Vec<Receipt> = runtime.block_on(async {
        let mut outcomes = Vec::with_capacity(arrivals.len());
        match feed {
            Feed::Awaited => {
                for &i in arrivals {
                    outcomes.push(sequential.record(record(&deliveries[i])).await.unwrap());
                }
            }
            Feed::Pipelined => {
                let queued: Vec<_> = arrivals
                    .iter()
                    .map(|&i| sequential.record(record(&deliveries[i])))
                    .collect();
                for future in queued {
                    outcomes.push(future.await.unwrap());
                }
            }
        }
        outcomes
    });
    prop_assert_eq!(
        &store_outcomes,
        &tracker_outcomes,
        "(b) outcomes per delivery, {:?}",
        feed
    );
    prop_assert_eq!(&store_state(&sequential), &expected, "(b) sequential store");
    prop_assert_eq!(sequential.change_log_len().unwrap(), fed);

    // (c) A fresh store fed the same arrivals from several tasks at once, through the
    // DeliverySink trait as the receiver uses it.
    let concurrent = SqliteStore::open(dir.file("concurrent")).unwrap();
    let answered = runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let store = concurrent.clone();
                let records: Vec<Delivery> = arrivals
                    .iter()
                    .skip(task)
                    .step_by(TASKS)
                    .map(|&i| record(&deliveries[i]))
                    .collect();
                tokio::spawn(async move {
                    let mut answered = 0_u64;
                    for record in records {
                        DeliverySink::record(&store, record).await.unwrap();
                        answered += 1;
                    }
                    answered
                })
            })
            .collect();
        let mut answered = 0;
        for task in tasks {
            answered += task.await.unwrap();
        }
        answered
    });
    prop_assert_eq!(answered, fed);
    prop_assert_eq!(&store_state(&concurrent), &expected, "(c) concurrent store");
    prop_assert_eq!(concurrent.change_log_len().unwrap(), fed);
    let stats = concurrent.stats().unwrap();
    prop_assert_eq!(stats.applied + stats.duplicates + stats.stale, fed);
    prop_assert!(stats.applied as usize <= deliveries.len());

    sequential.close().unwrap();
    concurrent.close().unwrap();

    // What the generated cases exercised.
    let count = |outcome| {
        tracker_outcomes
            .iter()
            .filter(|o| **o == Receipt::Applied(outcome))
            .count()
    };
    if count(ApplyOutcome::Duplicate) > 0 {
        coverage.redelivered.fetch_add(1, Ordering::Relaxed);
    }
    if count(ApplyOutcome::Stale) > 0 {
        coverage.stale.fetch_add(1, Ordering::Relaxed);
    }
    if expected.1.iter().any(|(_, _, deleted)| *deleted) {
        coverage.tombstones.fetch_add(1, Ordering::Relaxed);
    }
    if sorted
        .iter()
        .any(|c| matches!(c, ClockingChange::InsertOrUpdate(c) if c.is_deleted()))
    {
        coverage
            .soft_deletes_applied
            .fetch_add(1, Ordering::Relaxed);
    }
    if stats.largest_batch > 1 {
        coverage
            .batched_concurrently
            .fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[test]
fn every_arrival_order_with_redeliveries_ends_in_the_change_version_order_state() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let coverage = Coverage::default();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(
                scenario(),
                prop_oneof![Just(Feed::Awaited), Just(Feed::Pipelined)],
            ),
            |((history, arrivals), feed)| check(&runtime, &history, &arrivals, feed, &coverage),
        )
        .unwrap();

    let min = CASES as usize / 10;
    for (what, counter) in [
        ("redeliveries", &coverage.redelivered),
        ("stale arrivals", &coverage.stale),
        ("tombstones", &coverage.tombstones),
        ("soft deletes", &coverage.soft_deletes_applied),
        ("concurrent group commits", &coverage.batched_concurrently),
    ] {
        let n = counter.load(Ordering::Relaxed);
        assert!(n >= min, "only {n} of {CASES} cases had {what}");
    }
}

/// The scenario of `docs`' §4 spelled out: a soft delete, then the older update it replaced
/// arriving late, then a redelivery of the soft delete.
#[test]
fn a_late_update_cannot_resurrect_a_soft_deleted_clocking() {
    let update = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000A",
        "id":1050,"person":{"id":3},"date":"2024-12-02","timeOfDayInMinutes":480,"kind":"InOut"}}"#;
    let soft_delete =
        br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"0000090200004BD0000B",
        "id":1050,"person":{"id":3},"date":"2024-12-02","timeOfDayInMinutes":480,"kind":"InOut",
        "status":"Deleted"}}"#;
    let arrivals: [&[u8]; 3] = [soft_delete, update, soft_delete];

    let dir = TempDir::new("ordering");
    let store = SqliteStore::open(dir.file("store")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let outcomes: Vec<_> = runtime.block_on(async {
        let mut outcomes = Vec::new();
        for body in arrivals {
            let change = parse_delivery(body).unwrap();
            let raw_body = body.to_vec();
            outcomes.push(
                store
                    .record(Delivery::webhook(
                        change,
                        WebhookOrigin::new(raw_body.into(), "k1"),
                    ))
                    .await
                    .unwrap(),
            );
        }
        outcomes
    });
    assert_eq!(
        outcomes,
        [
            ApplyOutcome::Applied,
            ApplyOutcome::Stale,
            ApplyOutcome::Duplicate
        ]
        .map(Receipt::Applied)
    );
    assert!(store.clockings().unwrap().is_empty());
    let id = ClockingId::new(1050).unwrap();
    assert_eq!(
        store.tracked_versions().unwrap(),
        [(
            id,
            ChangeVersion::new("0000090200004BD0000B").unwrap(),
            true
        )]
    );
    assert_eq!(store.change_log_len().unwrap(), 3);
    store.close().unwrap();
}
