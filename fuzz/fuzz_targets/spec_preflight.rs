//! The OpenAPI normalizer and preflight check of `cargo xtask codegen` on arbitrary
//! documents: any bytes that are JSON go through `normalize` then `check`, as `codegen`
//! does. Neither may panic ("the check never panics, whatever the shape of the input");
//! normalizing is idempotent; a failed check reports at least one problem, one line each.
//! The spec diff (`cargo xtask spec diff`) runs on the same documents: it may not panic
//! either, and a document compared with itself has no change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(mut spec) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // The check on the raw document too: it must not panic on anything either.
    let _ = xtask::preflight::check(&spec);
    let raw = spec.clone();
    let first = xtask::normalize::normalize(&mut spec);
    let again = xtask::normalize::normalize(&mut spec);
    assert!(
        again.is_empty(),
        "normalize is not idempotent: {again:?} after {first:?}"
    );
    if let Err(error) = xtask::preflight::check(&spec) {
        assert!(!error.problems.is_empty(), "an error without problems");
        assert_eq!(
            error.to_string().lines().count(),
            error.problems.len(),
            "a problem spans several lines: {error}"
        );
    }
    let itself = xtask::spec_diff::diff(&spec, &spec);
    assert!(
        itself.is_empty(),
        "a document differs from itself: {:?}",
        itself.changes
    );
    let report = xtask::spec_diff::diff(&raw, &spec);
    let _ = report.to_markdown("raw", "normalized", Some("0.1.0"));
    let _ = report.to_json("raw", "normalized");
});
