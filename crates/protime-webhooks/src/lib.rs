//! Validated Protime webhook events for the `clockings` collection.
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
//! use protime_webhooks::{parse_delivery, ClockingChange, ClockingKind};
//!
//! let body = br#"{"changeType":"InsertOrUpdate","data":{
//!     "changeVersion":"0000090200004BD0000A","id":19250,"person":{"id":1},
//!     "date":"2026-01-15","timeOfDayInMinutes":1800,"kind":"Reason","reason":{"id":12}}}"#;
//! match parse_delivery(body) {
//!     Ok(ClockingChange::InsertOrUpdate(clocking)) => {
//!         assert!(matches!(clocking.kind, ClockingKind::Reason { .. }));
//!         assert_eq!(clocking.time_of_day.day_offset(), 1); // 06:00 on the next day
//!     }
//!     Ok(ClockingChange::Delete { id, .. }) => println!("deleted {id}"),
//!     Err(errors) => eprintln!("{errors}"),
//! }
//! ```
//!
//! The same rules are published as JSON Schema 2020-12 by the `protime-schema` crate
//! (`schemas/clocking-change.schema.json`); a property test proves both agree. The rules are
//! listed in `docs/validation-rules.md`.

#[cfg(feature = "client")]
pub mod client;
mod error;
mod fast_path;
mod model;
mod parse;
mod raw_conversions;
pub mod receive;
#[cfg(feature = "axum")]
pub mod receiver;
#[cfg(feature = "schema")]
mod schema;
pub mod signature;
pub mod sink;
#[cfg(feature = "sqlite")]
pub mod store;
pub mod tracker;
mod wire;

pub use error::{Allowed, ErrorCode, ValidationError, ValidationErrors};
pub use model::{
    ActivityDefinitionId, ActivityDefinitionRef, ActivityLevel, ActivityLevelNumber,
    ActivityLevels, CalendarDate, ChangeType, ChangeVersion, Clocking, ClockingChange, ClockingId,
    ClockingKind, ClockingStatus, ExternalReferences, Geolocation, Latitude, Longitude,
    MinuteOfDay, OutOfRange, PersonId, PersonRef, ReasonId, ReasonRef, TerminalId, TerminalRef,
};
pub use parse::{parse_change_value, parse_delivery};
pub use raw_conversions::{raw_change_data, raw_deletion_data};
pub use receive::ReceiveError;
pub use signature::{KeyError, SignatureError, SignatureScheme, Verifier, WebhookKey};
pub use sink::{DeliverySink, InMemorySink, InMemoryStats, Record, RecordOutcome, SinkError};
#[cfg(feature = "sqlite")]
pub use store::{DeadLetter, Durability, SqliteStore, StoreError, StoreStats};
pub use tracker::{ApplyOutcome, InMemoryTracker};

/// The Rust examples in the workspace README, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;
