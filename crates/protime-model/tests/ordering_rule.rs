//! The ordering rule (`decide`) and the in-memory tracker, checked directly: every outcome of
//! `decide`, and what `InMemoryTracker` keeps (and does not keep) after applied, duplicate,
//! stale, deleting and soft-deleting changes, through each of its accessors. Written to kill
//! the mutants of `src/ordering.rs` that only slower, indirect tests (the SQLite ordering
//! proptest) would catch; see scripts/mutants.sh.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use protime_model::{
    ApplyOutcome, ChangeVersion, ClockingChange, ClockingId, InMemoryTracker, decide,
    parse_delivery,
};

fn version(text: &str) -> ChangeVersion {
    ChangeVersion::new(text).unwrap()
}

fn id(value: i64) -> ClockingId {
    ClockingId::new(value).unwrap()
}

fn upsert(id: i64, version: &str, minutes: i64, extra: &str) -> ClockingChange {
    let body = format!(
        r#"{{"changeType":"InsertOrUpdate","data":{{"changeVersion":"{version}","id":{id},
        "person":{{"id":1}},"date":"2026-01-15","timeOfDayInMinutes":{minutes},"kind":"InOut"{extra}}}}}"#
    );
    parse_delivery(body.as_bytes()).unwrap()
}

fn delete(id: i64, version: &str) -> ClockingChange {
    let body =
        format!(r#"{{"changeType":"Delete","data":{{"changeVersion":"{version}","id":{id}}}}}"#);
    parse_delivery(body.as_bytes()).unwrap()
}

fn minutes(change: &ClockingChange) -> i16 {
    match change {
        ClockingChange::InsertOrUpdate(clocking) => clocking.time_of_day.map_or(-1, |t| t.get()),
        ClockingChange::Delete { .. } => panic!("not an upsert"),
    }
}

#[test]
fn decide_covers_unknown_newer_equal_and_older() {
    let a = version("A");
    let b = version("B");
    assert_eq!(decide(None, &a), ApplyOutcome::Applied);
    assert_eq!(decide(Some(&a), &b), ApplyOutcome::Applied);
    assert_eq!(decide(Some(&b), &b), ApplyOutcome::Duplicate);
    assert_eq!(decide(Some(&b), &a), ApplyOutcome::Stale);
}

#[test]
fn decide_compares_versions_as_plain_strings() {
    // As strings "10" < "9": a numeric comparison would answer the other way round.
    let nine = version("9");
    let ten = version("10");
    assert_eq!(decide(Some(&ten), &nine), ApplyOutcome::Applied);
    assert_eq!(decide(Some(&nine), &ten), ApplyOutcome::Stale);
    assert_eq!(
        decide(Some(&version("0A")), &version("0a")),
        ApplyOutcome::Applied
    );
    assert_eq!(
        decide(Some(&version("0a")), &version("0A")),
        ApplyOutcome::Stale
    );
}

#[test]
fn an_empty_tracker_knows_nothing() {
    let tracker = InMemoryTracker::default();
    assert!(tracker.get(id(1)).is_none());
    assert!(tracker.tracked(id(1)).is_none());
    assert!(tracker.version(id(1)).is_none());
    assert_eq!(tracker.current().count(), 0);
    assert_eq!(tracker.entries().count(), 0);
}

#[test]
fn applied_changes_are_kept_and_readable_through_every_accessor() {
    let mut tracker = InMemoryTracker::default();
    let first = upsert(1, "05", 100, "");
    let other = upsert(2, "07", 200, "");
    assert_eq!(tracker.apply(&first), ApplyOutcome::Applied);
    assert_eq!(tracker.apply(&other), ApplyOutcome::Applied);

    let ClockingChange::InsertOrUpdate(first_clocking) = &first else {
        unreachable!()
    };
    assert_eq!(tracker.get(id(1)), Some(first_clocking));
    assert_eq!(tracker.get(id(3)), None);
    let tracked = tracker.tracked(id(1)).unwrap();
    assert_eq!(tracked.change_version, version("05"));
    assert_eq!(tracked.clocking.as_ref(), Some(first_clocking));
    assert_eq!(tracker.version(id(2)), Some(&version("07")));
    assert_eq!(tracker.version(id(3)), None);

    let current: Vec<_> = tracker.current().map(|c| c.id).collect();
    assert_eq!(current, vec![id(1), id(2)]);
    let entries: Vec<_> = tracker
        .entries()
        .map(|(id, e)| (id, e.change_version.clone(), e.clocking.is_some()))
        .collect();
    assert_eq!(
        entries,
        vec![(id(1), version("05"), true), (id(2), version("07"), true)]
    );

    // A newer change replaces the clocking and the version.
    let newer = upsert(1, "06", 300, "");
    assert_eq!(tracker.apply(&newer), ApplyOutcome::Applied);
    assert_eq!(tracker.get(id(1)).unwrap().time_of_day.unwrap().get(), 300);
    assert_eq!(tracker.version(id(1)), Some(&version("06")));
}

#[test]
fn duplicates_and_stale_changes_leave_the_state_alone() {
    let mut tracker = InMemoryTracker::default();
    let current = upsert(1, "05", 100, "");
    assert_eq!(tracker.apply(&current), ApplyOutcome::Applied);
    let before = tracker.clone();

    // Same version, other content: a redelivery, not applied.
    let redelivered = upsert(1, "05", 999, "");
    assert_eq!(tracker.apply(&redelivered), ApplyOutcome::Duplicate);
    assert_eq!(tracker, before);
    let older = upsert(1, "04", 888, "");
    assert_eq!(tracker.apply(&older), ApplyOutcome::Stale);
    assert_eq!(tracker, before);
    assert_eq!(minutes(&current), 100);
    assert_eq!(tracker.get(id(1)).unwrap().time_of_day.unwrap().get(), 100);
}

#[test]
fn a_delete_leaves_a_tombstone_with_its_version() {
    let mut tracker = InMemoryTracker::default();
    assert_eq!(
        tracker.apply(&upsert(1, "05", 100, "")),
        ApplyOutcome::Applied
    );
    assert_eq!(tracker.apply(&delete(1, "08")), ApplyOutcome::Applied);
    assert!(tracker.get(id(1)).is_none());
    assert_eq!(tracker.version(id(1)), Some(&version("08")));
    let tracked = tracker.tracked(id(1)).unwrap();
    assert_eq!(tracked.change_version, version("08"));
    assert!(tracked.clocking.is_none());
    assert_eq!(tracker.current().count(), 0);
    let entries: Vec<_> = tracker
        .entries()
        .map(|(id, e)| (id, e.change_version.clone(), e.clocking.is_some()))
        .collect();
    assert_eq!(entries, vec![(id(1), version("08"), false)]);

    // An older update arriving late cannot resurrect it.
    assert_eq!(
        tracker.apply(&upsert(1, "07", 100, "")),
        ApplyOutcome::Stale
    );
    assert!(tracker.get(id(1)).is_none());
    assert_eq!(tracker.apply(&delete(1, "08")), ApplyOutcome::Duplicate);
}

#[test]
fn a_soft_delete_is_a_tombstone_and_a_live_status_is_not() {
    let mut tracker = InMemoryTracker::default();
    let soft = upsert(1, "10", 10, r#","status":"Deleted""#);
    assert_eq!(tracker.apply(&soft), ApplyOutcome::Applied);
    assert!(tracker.get(id(1)).is_none());
    assert!(tracker.tracked(id(1)).unwrap().clocking.is_none());
    assert_eq!(tracker.version(id(1)), Some(&version("10")));
    assert_eq!(tracker.current().count(), 0);

    let live = upsert(2, "10", 10, r#","status":"Active""#);
    assert_eq!(tracker.apply(&live), ApplyOutcome::Applied);
    assert!(tracker.get(id(2)).is_some());
    assert_eq!(tracker.current().count(), 1);
}
