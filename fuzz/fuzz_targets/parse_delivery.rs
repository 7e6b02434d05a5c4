//! `protime_model::parse_delivery` on arbitrary bytes: it must never panic, and its typed
//! fast path must never change a verdict ("one verdict"):
//!
//! - when the fast path accepts a body, the full walk accepts it too, with the same change,
//!   and `parse_delivery` returns exactly that change;
//! - otherwise `parse_delivery` returns exactly what the full walk returns;
//! - every refusal lists at least one violation, each with a JSON Pointer;
//! - `parse_clocking` gives the same verdict on an item as `parse_delivery` on
//!   `{"changeType":"InsertOrUpdate","data":<item>}` (checked when the input is one JSON
//!   value, so that the envelope cannot be spliced from outside the item).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protime_model::{
    ClockingChange, parse_clocking, parse_delivery, parse_delivery_fast_path,
    parse_delivery_full_walk,
};

fuzz_target!(|body: &[u8]| {
    let verdict = parse_delivery(body);
    let full_walk = parse_delivery_full_walk(body);
    match parse_delivery_fast_path(body) {
        Some(fast) => {
            assert_eq!(
                full_walk.as_ref(),
                Ok(&fast),
                "the fast path accepted what the full walk judges otherwise"
            );
            assert_eq!(
                verdict.as_ref(),
                Ok(&fast),
                "parse_delivery ignored its fast path"
            );
        }
        None => assert_eq!(
            verdict, full_walk,
            "parse_delivery differs from its full walk"
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
        let as_delivery = parse_delivery(&envelope).map(|change| match change {
            ClockingChange::InsertOrUpdate(clocking) => clocking,
            ClockingChange::Delete { .. } => panic!("an InsertOrUpdate envelope became a Delete"),
        });
        let as_item = parse_clocking(body);
        match (&as_item, &as_delivery) {
            (Ok(item), Ok(delivered)) => assert_eq!(item, delivered),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "parse_clocking and parse_delivery disagree:\nitem: {as_item:?}\nenvelope: {as_delivery:?}"
            ),
        }
    }
});
