//! The validated Protime clockings model — the pure floor of the protime crates: no HTTP,
//! no async runtime, no SQL. Use it alone where you only need to read deliveries (a queue
//! consumer, a serverless function), or through `protime-client` / `protime-webhooks`.
//!
//! Protime POSTs each change of a clocking to your endpoint as
//! `{"changeType": "InsertOrUpdate" | "Delete", "data": {…}}`. The generated
//! `protime-raw` types accept anything with the right JSON types; this crate turns a
//! delivery body into a [`ClockingChange`] that cannot be invalid — minutes within
//! `-1440..=2880`, a strict `YYYY-MM-DD` date, a `Reason` clocking that always has a
//! reason, an `Activity` clocking that always has levels — or into [`ValidationErrors`]
//! listing every violation with a JSON Pointer and a stable [`ErrorCode`].
//!
//! ```
//! use protime_model::{parse_delivery, ClockingChange, ClockingKind};
//!
//! let body = br#"{"changeType":"InsertOrUpdate","data":{
//!     "changeVersion":"0000090200004BD0000A","id":19250,"person":{"id":1},
//!     "date":"2026-01-15","timeOfDayInMinutes":1800,"kind":"Reason","reason":{"id":12}}}"#;
//! match parse_delivery(body) {
//!     Ok(ClockingChange::InsertOrUpdate(clocking)) => {
//!         assert!(matches!(clocking.kind, Some(ClockingKind::Reason { .. })));
//!         assert_eq!(clocking.time_of_day.map(|t| t.day_offset()), Some(1)); // 06:00 next day
//!     }
//!     Ok(ClockingChange::Delete { id, .. }) => println!("deleted {id}"),
//!     Err(errors) => eprintln!("{errors}"),
//! }
//! ```
//!
//! Validation follows the public docs by default ([`Profile::Documented`]): an
//! `InsertOrUpdate` must carry only `changeVersion` and `id`, so the model's `person`, `date`,
//! `time_of_day` and `kind` are `Option`s. [`Profile::Strict`] (opt-in, through
//! [`parse_delivery_with`] and friends) also requires those four fields. A clocking as the
//! API lists it ([`parse_clocking`]: a list page item, a get response) may also lack
//! `changeVersion` under the default profile, as the docs' list and get examples do: its
//! version is then [`ChangeVersion::absent`], which orders before every real one.
//!
//! The [`ordering`] module holds the one rule every store applies: last writer wins per
//! clocking id by `changeVersion`, compared byte by byte.
//!
//! The same rules are published as JSON Schema 2020-12 by the `protime-schema` crate
//! (`schemas/clocking-change.schema.json`, and `schemas/clocking-change.strict.schema.json`
//! for the strict profile); a property test proves each profile agrees with its schema. The rules are
//! listed in `docs/validation-rules.md`.
//!
//! # Features
//!
#![doc = document_features::document_features!()]
//!
//! # Public dependencies
//!
//! Types of these crates appear in this crate's public API; depend on the same major
//! versions to use them together:
//!
//! - `chrono` 0.4: [`CalendarDate::get`] returns a `chrono::NaiveDate`, [`MinuteOfDay::on`] a
//!   `chrono::NaiveDateTime`;
//! - `serde` 1 and `serde_json` 1: the model types implement `Serialize`/`Deserialize`, and
//!   [`parse_change_value`] takes a `serde_json::Value`;
//! - `schemars` 1 (feature `schema` only): `JsonSchema` implementations.

mod error;
mod fast_path;
mod lexical;
mod model;
pub mod ordering;
mod parse;
mod profile;
#[cfg(feature = "schema")]
mod schema;
mod wire;

pub use error::{Allowed, ErrorCode, ValidationError, ValidationErrors};
pub use model::{
    ActivityDefinitionId, ActivityDefinitionRef, ActivityLevel, ActivityLevelNumber,
    ActivityLevels, CalendarDate, ChangeType, ChangeVersion, Clocking, ClockingChange, ClockingId,
    ClockingKind, ClockingStatus, ExternalReferences, Geolocation, Latitude, Longitude,
    MinuteOfDay, OutOfRange, PersonId, PersonRef, ReasonId, ReasonRef, TerminalId, TerminalRef,
};
pub use ordering::{ApplyOutcome, InMemoryTracker, TrackedVersion, decide};
#[doc(hidden)]
pub use parse::{
    fast_path_accepts, parse_clocking_fast_path, parse_clocking_full_walk,
    parse_delivery_fast_path, parse_delivery_full_walk,
};
pub use parse::{
    parse_change_value, parse_change_value_with, parse_clocking, parse_clocking_with,
    parse_delivery, parse_delivery_with, parse_stored_change,
};
pub use profile::Profile;
#[cfg(feature = "schema")]
#[doc(hidden)]
pub use schema::{StrictClocking, StrictClockingChange};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
