//! The generated data: deterministic, realistic, and valid for `parse_delivery`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::BTreeSet;

use protime_model::{ClockingChange, parse_delivery};
use protime_raw::types::{ChangeType, Clocking, ClockingKind, ClockingStatus};
use protime_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

fn config() -> SandboxConfig {
    SandboxConfig {
        people: 20,
        days: 21,
        ..SandboxConfig::default()
    }
}

fn is_version(v: &str) -> bool {
    v.len() == 20
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn as_delivery(clocking: &Clocking) -> Vec<u8> {
    serde_json::to_vec(&json!({"changeType": "InsertOrUpdate", "data": clocking})).unwrap()
}

#[tokio::test]
async fn every_seeded_clocking_passes_parse_delivery() {
    let sandbox = Sandbox::new(config()).unwrap();
    let all = sandbox.all_clockings();
    assert!(all.len() > 1000, "{} clockings", all.len());
    for clocking in &all {
        let body = as_delivery(clocking);
        match parse_delivery(&body) {
            Ok(ClockingChange::InsertOrUpdate(parsed)) => {
                assert_eq!(parsed.id.get(), i64::try_from(clocking.id.get()).unwrap());
                assert_eq!(
                    parsed.is_deleted(),
                    clocking.status == Some(ClockingStatus::Deleted)
                );
            }
            other => panic!("{other:?} for {}", String::from_utf8_lossy(&body)),
        }
    }
}

#[tokio::test]
async fn seeded_data_is_realistic() {
    let sandbox = Sandbox::new(config()).unwrap();
    let all = sandbox.all_clockings();
    let count = |f: &dyn Fn(&Clocking) -> bool| all.iter().filter(|c| f(c)).count();

    // Shifts across midnight, both ways.
    assert!(
        count(&|c| c.time_of_day_in_minutes > 1439) > 0,
        "no minutes after midnight"
    );
    assert!(
        count(&|c| c.time_of_day_in_minutes < 0) > 0,
        "no minutes before midnight"
    );
    // Every kind, with its kind-specific data.
    for kind in [
        ClockingKind::InOut,
        ClockingKind::Reason,
        ClockingKind::Activity,
        ClockingKind::ActivityEnd,
    ] {
        assert!(count(&|c| c.kind == kind) > 0, "no {kind}");
    }
    assert!(count(&|c| c.kind == ClockingKind::Reason && c.is_open == Some(true)) > 0);
    assert!(count(&|c| c.kind == ClockingKind::Reason && c.is_open == Some(false)) > 0);
    for c in &all {
        assert_eq!(c.reason.is_some(), c.kind == ClockingKind::Reason);
        assert_eq!(c.is_open.is_some(), c.kind == ClockingKind::Reason);
        assert_eq!(
            !c.activity_levels.is_empty(),
            c.kind == ClockingKind::Activity
        );
        assert!(c.activity_levels.len() <= 3);
        for (i, level) in c.activity_levels.iter().enumerate() {
            assert_eq!(level.level.get() as usize, i + 1);
            assert!(uuid::Uuid::parse_str(&level.activity_definition.id).is_ok());
        }
        assert!(is_version(c.change_version.as_deref().unwrap()));
        assert!(c.terminal.is_some() || c.geolocation.is_some() || c.is_generated == Some(true));
    }
    let depths: BTreeSet<usize> = all.iter().map(|c| c.activity_levels.len()).collect();
    assert_eq!(
        depths,
        [0, 1, 2, 3].into_iter().collect(),
        "activity depths"
    );
    // Edits, soft deletes, generated clockings, terminals and geolocations.
    assert!(count(&|c| c.original_time_of_day_in_minutes.is_some()) > 0);
    assert!(
        count(&|c| c
            .original_time_of_day_in_minutes
            .is_some_and(|o| o != c.time_of_day_in_minutes))
            > 0
    );
    assert!(count(&|c| c.calculated_time_of_day_in_minutes.is_some()) == all.len());
    assert!(count(&|c| c.status == Some(ClockingStatus::Deleted)) > 0);
    assert!(count(&|c| c.is_generated == Some(true)) > 0);
    assert!(count(&|c| c.terminal.is_some()) > 0);
    assert!(count(&|c| c.geolocation.is_some()) > 0);
    // current_clockings leaves the soft-deleted out.
    assert_eq!(
        sandbox.current_clockings().len(),
        count(&|c| c.status != Some(ClockingStatus::Deleted))
    );
}

#[tokio::test]
async fn same_seed_same_data_other_seed_other_data() {
    let a = Sandbox::new(config()).unwrap();
    let b = Sandbox::new(config()).unwrap();
    assert_eq!(a.all_clockings(), b.all_clockings());
    assert_eq!(a.change_version(), b.change_version());
    assert_eq!(a.generate(50), b.generate(50));
    let c = Sandbox::new(SandboxConfig {
        seed: 7,
        ..config()
    })
    .unwrap();
    assert_ne!(a.all_clockings(), c.all_clockings());
}

#[tokio::test]
async fn change_versions_come_from_one_increasing_counter() {
    let sandbox = Sandbox::new(config()).unwrap();
    let mut versions: Vec<String> = sandbox
        .all_clockings()
        .into_iter()
        .map(|c| c.change_version.unwrap())
        .collect();
    versions.sort();
    versions.dedup();
    assert_eq!(
        versions.len(),
        sandbox.all_clockings().len(),
        "versions are unique"
    );
    let mut last = sandbox.change_version();
    assert_eq!(versions.last(), Some(&last));
    for change in sandbox.generate(200) {
        let version = change.data.change_version.clone();
        assert!(is_version(&version), "{version}");
        assert!(version > last, "{version} after {last}");
        last = version;
    }
    assert_eq!(sandbox.change_version(), last);
}

#[tokio::test]
async fn generated_changes_pass_parse_delivery_and_cover_every_operation() {
    let sandbox = Sandbox::new(config()).unwrap();
    let mut ops = BTreeSet::new();
    let before = sandbox.all_clockings().len();
    for change in sandbox.generate(400) {
        let body = serde_json::to_vec(&change).unwrap();
        let parsed = parse_delivery(&body)
            .unwrap_or_else(|e| panic!("{e} for {}", String::from_utf8_lossy(&body)));
        let op = match (change.change_type, &parsed) {
            (ChangeType::Delete, ClockingChange::Delete { .. }) => {
                // A Delete carries only changeVersion and id.
                let data = serde_json::to_value(&change.data).unwrap();
                assert_eq!(data.as_object().unwrap().len(), 2, "{data}");
                "hard delete"
            }
            (ChangeType::InsertOrUpdate, ClockingChange::InsertOrUpdate(c)) if c.is_deleted() => {
                "soft delete"
            }
            (ChangeType::InsertOrUpdate, ClockingChange::InsertOrUpdate(c))
                if c.original_time_of_day.is_some() =>
            {
                "edit"
            }
            (ChangeType::InsertOrUpdate, ClockingChange::InsertOrUpdate(_)) => "create",
            other => panic!("{other:?}"),
        };
        ops.insert(op);
    }
    assert_eq!(ops.len(), 4, "{ops:?}");
    assert_ne!(sandbox.all_clockings().len(), before);
    for clocking in sandbox.all_clockings() {
        parse_delivery(&as_delivery(&clocking)).unwrap();
    }
}

#[test]
fn new_needs_a_runtime_and_a_valid_config() {
    assert!(matches!(
        Sandbox::new(SandboxConfig::default()),
        Err(protime_sandbox::Error::NoRuntime)
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    for bad in [
        SandboxConfig {
            clients: vec![],
            ..SandboxConfig::default()
        },
        SandboxConfig {
            page_size: 0,
            ..SandboxConfig::default()
        },
        SandboxConfig {
            duplicate_probability: 1.5,
            ..SandboxConfig::default()
        },
        SandboxConfig {
            lose_probability: -0.1,
            ..SandboxConfig::default()
        },
        SandboxConfig {
            tenant: "a/b".into(),
            ..SandboxConfig::default()
        },
        SandboxConfig {
            empty_page_every: Some(1),
            ..SandboxConfig::default()
        },
    ] {
        assert!(
            matches!(Sandbox::new(bad), Err(protime_sandbox::Error::Config(_))),
            "accepted a bad config"
        );
    }
}
