//! The `filter` query parameter of the sandbox (`GET /clockings` and `GET /webhooks`) on
//! arbitrary text: it must never panic; an accepted clockings filter is a date range of at
//! most one year that does not end before it starts; a refusal always gives a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protime_sandbox::fuzzing::{clocking_filter, webhook_filter};

fuzz_target!(|data: &[u8]| {
    // axum hands the route a percent-decoded UTF-8 string.
    let input = String::from_utf8_lossy(data);
    match clocking_filter(&input) {
        Ok((from, to)) => {
            assert!(from <= to, "{input:?}: range ends before it starts");
            let limit = from.checked_add_months(chrono::Months::new(12));
            assert!(
                limit.is_none_or(|limit| to < limit),
                "{input:?}: range longer than a year"
            );
        }
        Err(reasons) => assert!(!reasons.is_empty(), "{input:?}: refused without a reason"),
    }
    if let Err(reasons) = webhook_filter(&input) {
        assert!(!reasons.is_empty(), "{input:?}: refused without a reason");
    }
});
