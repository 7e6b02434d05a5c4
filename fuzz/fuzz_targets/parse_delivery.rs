//! `protime_model::parse_delivery_with` on arbitrary bytes, under each validation profile: it
//! must never panic, and its typed fast path must never change a verdict ("one verdict per
//! input: a fast path may only be faster, never different"):
//!
//! - when the fast path accepts a body, the full walk accepts it too, with the same change,
//!   and `parse_delivery_with` returns exactly that change;
//! - otherwise `parse_delivery_with` returns exactly what the full walk returns;
//! - every refusal lists at least one violation, each with a JSON Pointer;
//! - `parse_delivery` is the `Documented` profile, and whatever `Strict` accepts,
//!   `Documented` accepts as the same change;
//! - `parse_clocking_with` gives the same verdict on an item as `parse_delivery_with` on
//!   `{"changeType":"InsertOrUpdate","data":<item>}` (checked when the input is one JSON
//!   value, so that the envelope cannot be spliced from outside the item), except for an
//!   item without `changeVersion`: accepted under `Documented` (the absent version), while
//!   its envelope is refused for that alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protime_model::{
    ClockingChange, Profile, ValidationErrors, parse_clocking_with, parse_delivery,
    parse_delivery_fast_path, parse_delivery_full_walk, parse_delivery_with,
};

/// The checks of one profile; returns its verdict.
fn one_profile(body: &[u8], profile: Profile) -> Result<ClockingChange, ValidationErrors> {
    let verdict = parse_delivery_with(body, profile);
    let full_walk = parse_delivery_full_walk(body, profile);
    match parse_delivery_fast_path(body, profile) {
        Some(fast) => {
            assert_eq!(
                full_walk.as_ref(),
                Ok(&fast),
                "the fast path accepted what the full walk judges otherwise ({profile})"
            );
            assert_eq!(
                verdict.as_ref(),
                Ok(&fast),
                "parse_delivery_with ignored its fast path ({profile})"
            );
        }
        None => assert_eq!(
            verdict, full_walk,
            "parse_delivery_with differs from its full walk ({profile})"
        ),
    }
    if let Err(errors) = &verdict {
        assert!(!errors.is_empty(), "a refusal without violations");
        for error in errors.errors() {
            assert!(
                error.pointer.is_empty() || error.pointer.starts_with('/'),
                "not a JSON Pointer: {:?}",
                error.pointer
            );
        }
    }

    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        let mut envelope = br#"{"changeType":"InsertOrUpdate","data":"#.to_vec();
        envelope.extend_from_slice(body);
        envelope.push(b'}');
        let as_delivery = parse_delivery_with(&envelope, profile).map(|change| match change {
            ClockingChange::InsertOrUpdate(clocking) => clocking,
            ClockingChange::Delete { .. } => panic!("an InsertOrUpdate envelope became a Delete"),
        });
        let as_item = parse_clocking_with(body, profile);
        match (&as_item, &as_delivery) {
            (Ok(item), Ok(delivered)) => assert_eq!(item, delivered),
            (Err(_), Err(_)) => {}
            // Rule R5 is the one that differs: a listed clocking may lack its changeVersion
            // under Documented (the absent version), a delivery never. Then that is all the
            // envelope is refused for.
            (Ok(item), Err(errors)) if item.change_version.is_absent() => {
                assert_eq!(
                    profile,
                    Profile::Documented,
                    "Strict accepted an item without changeVersion"
                );
                assert!(
                    errors
                        .errors()
                        .iter()
                        .all(|e| e.pointer == "/data/changeVersion"),
                    "the envelope of an accepted item was refused for more than its changeVersion: {errors:?}"
                );
            }
            _ => panic!(
                "parse_clocking_with and parse_delivery_with disagree ({profile}):\nitem: {as_item:?}\nenvelope: {as_delivery:?}"
            ),
        }
    }
    verdict
}

fuzz_target!(|body: &[u8]| {
    let documented = one_profile(body, Profile::Documented);
    let strict = one_profile(body, Profile::Strict);
    assert_eq!(
        parse_delivery(body),
        documented,
        "parse_delivery is not the documented profile"
    );
    if let Ok(change) = &strict {
        assert_eq!(
            documented.as_ref(),
            Ok(change),
            "Strict accepted what Documented judges otherwise"
        );
    }
});
