//! Lossless conversions between the validated model (`protime-model`) and the generated
//! `protime-raw` types: [`change_from_raw`] and [`clocking_from_raw`] serialize the raw value
//! and validate it with the walker behind `protime_model::parse_delivery`; [`change_to_raw`]
//! and [`clocking_to_raw`] fail only where the generated type cannot hold the value without
//! inventing part of it ([`ToRawError`]). (Free functions: both sides are other crates'
//! types.)
//!
//! The raw types cannot represent everything a body can: an empty `activityLevels` array is
//! dropped when a raw value is serialized, and `null`/`510.0` never reach them (serde rejects
//! those before). So a raw value with `activityLevels: []` on an `InOut` clocking converts,
//! while the same JSON body is rejected by `parse_delivery`.

use std::num::{NonZeroU32, NonZeroU64};

use protime_raw::types as raw;

use protime_model::{
    ActivityLevel, Clocking, ClockingChange, ClockingKind, ClockingStatus, ExternalReferences,
    Geolocation, Profile,
};
use protime_model::{ErrorCode, ValidationError, ValidationErrors};

fn serialization_failure(error: &serde_json::Error) -> ValidationErrors {
    ValidationErrors::single(ValidationError {
        pointer: String::new(),
        code: ErrorCode::JsonSyntax,
        message: format!("the raw value could not be serialized: {error}"),
        value: None,
        allowed: None,
    })
}

/// Validates a generated change (for example a delta item) with the model's rules, under
/// the default `Profile::Documented` ([`change_from_raw_with`] takes a profile).
///
/// ```
/// use protime_client::convert::{change_from_raw, change_to_raw};
/// let change = protime_model::parse_delivery(
///     br#"{"changeType":"Delete","data":{"changeVersion":"0000090200004BD0000C","id":7}}"#,
/// ).unwrap();
/// let raw = change_to_raw(change.clone()).unwrap();
/// assert_eq!(change_from_raw(raw).unwrap(), change);
/// ```
pub fn change_from_raw(change: raw::ClockingChange) -> Result<ClockingChange, ValidationErrors> {
    change_from_raw_with(change, Profile::Documented)
}

/// [`change_from_raw`] under `profile`.
///
/// ```
/// use protime_client::convert::{change_from_raw_with, change_to_raw};
/// use protime_model::Profile;
/// let partial = protime_model::parse_delivery(br#"{"changeType":"InsertOrUpdate",
///     "data":{"changeVersion":"0000090200004BD0000B","id":1050,"date":"2024-12-02"}}"#).unwrap();
/// let raw = change_to_raw(partial.clone()).unwrap();
/// assert_eq!(change_from_raw_with(raw.clone(), Profile::Documented).unwrap(), partial);
/// assert!(change_from_raw_with(raw, Profile::Strict).is_err());
/// ```
pub fn change_from_raw_with(
    change: raw::ClockingChange,
    profile: Profile,
) -> Result<ClockingChange, ValidationErrors> {
    let value = serde_json::to_value(&change).map_err(|e| serialization_failure(&e))?;
    protime_model::parse_change_value_with(&value, profile)
}

/// Validates a generated clocking (for example from a list page) under the default
/// `Profile::Documented`. Error pointers are relative to a change envelope (`/data/...`), as
/// for deliveries.
///
/// ```
/// use protime_client::convert::{clocking_from_raw, clocking_to_raw};
/// let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":7,
///     "person":{"id":1},"date":"2026-01-15","timeOfDayInMinutes":480,"kind":"InOut"}}"#;
/// let protime_model::ClockingChange::InsertOrUpdate(clocking) =
///     protime_model::parse_delivery(body).unwrap() else { unreachable!() };
/// assert_eq!(clocking_from_raw(clocking_to_raw(clocking.clone()).unwrap()).unwrap(), clocking);
/// ```
pub fn clocking_from_raw(clocking: raw::Clocking) -> Result<Clocking, ValidationErrors> {
    clocking_from_raw_with(clocking, Profile::Documented)
}

/// [`clocking_from_raw`] under `profile`. A generated clocking always carries the fields
/// `Profile::Strict` requires, so both profiles give the same verdict on it.
///
/// ```
/// use protime_client::convert::{clocking_from_raw_with, clocking_to_raw};
/// use protime_model::Profile;
/// let item = br#"{"changeVersion":"A","id":7,"person":{"id":1},"date":"2026-01-15",
///     "timeOfDayInMinutes":480,"kind":"InOut"}"#;
/// let clocking = protime_model::parse_clocking(item).unwrap();
/// let raw = clocking_to_raw(clocking.clone()).unwrap();
/// for profile in [Profile::Documented, Profile::Strict] {
///     assert_eq!(clocking_from_raw_with(raw.clone(), profile).unwrap(), clocking);
/// }
/// ```
pub fn clocking_from_raw_with(
    clocking: raw::Clocking,
    profile: Profile,
) -> Result<Clocking, ValidationErrors> {
    let item = serde_json::to_vec(&clocking).map_err(|e| serialization_failure(&e))?;
    protime_model::parse_clocking_with(&item, profile)
}

/// Ids in the model are at least 1, so they always fit a `NonZeroU64`.
fn non_zero_id(id: i64) -> NonZeroU64 {
    NonZeroU64::MIN.saturating_add(id.unsigned_abs().saturating_sub(1))
}

fn raw_references(references: Option<ExternalReferences>) -> Option<raw::ExternalReferences> {
    references.map(|map| raw::ExternalReferences(map.into_iter().collect()))
}

fn raw_geolocation(geolocation: Geolocation) -> raw::Geolocation {
    raw::Geolocation {
        latitude: geolocation.latitude.get(),
        longitude: geolocation.longitude.get(),
    }
}

fn raw_status(status: ClockingStatus) -> raw::ClockingStatus {
    match status {
        ClockingStatus::Unknown => raw::ClockingStatus::Unknown,
        ClockingStatus::Active => raw::ClockingStatus::Active,
        ClockingStatus::Deleted => raw::ClockingStatus::Deleted,
    }
}

fn raw_level(level: ActivityLevel) -> raw::ActivityLevel {
    raw::ActivityLevel {
        // Levels in the model are at least 1.
        level: NonZeroU32::MIN.saturating_add(level.level.get().unsigned_abs().saturating_sub(1)),
        activity_definition: raw::ActivityDefinitionRef {
            id: level.activity_definition.id.as_str().to_owned(),
            external_references: raw_references(level.activity_definition.external_references),
        },
    }
}

/// The kind-specific raw fields: (kind, reason, isOpen, activityLevels).
fn raw_kind(
    kind: ClockingKind,
) -> (
    raw::ClockingKind,
    Option<raw::ReasonRef>,
    Option<bool>,
    Vec<raw::ActivityLevel>,
) {
    match kind {
        ClockingKind::InOut => (raw::ClockingKind::InOut, None, None, Vec::new()),
        ClockingKind::ActivityEnd => (raw::ClockingKind::ActivityEnd, None, None, Vec::new()),
        ClockingKind::Reason { reason, is_open } => (
            raw::ClockingKind::Reason,
            Some(raw::ReasonRef {
                id: non_zero_id(reason.id.get()),
                external_references: raw_references(reason.external_references),
            }),
            is_open,
            Vec::new(),
        ),
        ClockingKind::Activity { levels } => (
            raw::ClockingKind::Activity,
            None,
            None,
            levels.as_slice().iter().cloned().map(raw_level).collect(),
        ),
    }
}

/// Why a validated clocking has no generated [`raw::Clocking`] form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToRawError {
    /// The generated clocking requires `person`, `date`, `timeOfDayInMinutes` and `kind`,
    /// which a clocking validated under `Profile::Documented` may lack.
    #[error("the clocking has no {}: the generated raw clocking requires them", .missing.join(", "))]
    MissingFields {
        /// The wire names of the missing fields, e.g. `person`.
        missing: Vec<&'static str>,
    },
    /// The clocking was listed without a `changeVersion` (its version is
    /// `ChangeVersion::absent`), and the generated change requires one: the data of a raw
    /// `InsertOrUpdate` always carries `changeVersion`, and none is invented.
    #[error("the clocking was listed without a changeVersion: a generated change requires one")]
    Unversioned,
}

/// The generated [`raw::ClockingChangeData`] of a validated clocking: every field it
/// carries, and none it does not. Its `changeVersion` is the empty string when the version
/// is absent: callers map that back to "absent" or refuse it.
fn raw_clocking_data(clocking: Clocking) -> raw::ClockingChangeData {
    let (kind, reason, is_open, activity_levels) = match clocking.kind {
        Some(kind) => {
            let (kind, reason, is_open, levels) = raw_kind(kind);
            (Some(kind), reason, is_open, levels)
        }
        None => (None, None, None, Vec::new()),
    };
    raw::ClockingChangeData {
        change_version: clocking.change_version.as_str().to_owned(),
        id: non_zero_id(clocking.id.get()),
        person: clocking.person.map(|person| raw::PersonRef {
            id: non_zero_id(person.id.get()),
            external_references: raw_references(person.external_references),
        }),
        date: clocking.date.map(|date| date.get()),
        time_of_day_in_minutes: clocking.time_of_day.map(|m| i32::from(m.get())),
        original_time_of_day_in_minutes: clocking.original_time_of_day.map(|m| i32::from(m.get())),
        calculated_time_of_day_in_minutes: clocking
            .calculated_time_of_day
            .map(|m| i32::from(m.get())),
        is_generated: clocking.is_generated,
        terminal: clocking.terminal.map(|t| raw::TerminalRef {
            id: non_zero_id(t.id.get()),
            external_references: raw_references(t.external_references),
        }),
        geolocation: clocking.geolocation.map(raw_geolocation),
        kind,
        reason,
        is_open,
        activity_levels,
        status: clocking.status.map(raw_status),
    }
}

/// The generated form of a validated clocking. The generated [`raw::Clocking`] requires
/// `person`, `date`, `timeOfDayInMinutes` and `kind` (as the vendored OpenAPI spec does), so
/// a clocking without one of them (valid under the default `Profile::Documented`) has no
/// such form; [`change_to_raw`] converts it all the same. A clocking listed without a
/// `changeVersion` ([`protime_model::ChangeVersion::absent`]) converts to a raw clocking
/// without one (`change_version: None`), and back.
///
/// ```
/// use protime_client::convert::{clocking_from_raw, clocking_to_raw, ToRawError};
/// let partial = protime_model::parse_clocking(br#"{"changeVersion":"0A","id":7,"date":"2024-12-02"}"#).unwrap();
/// let Err(ToRawError::MissingFields { missing }) = clocking_to_raw(partial) else { unreachable!() };
/// assert_eq!(missing, ["person", "timeOfDayInMinutes", "kind"]);
///
/// let unversioned = protime_model::parse_clocking(br#"{"id":7,"person":{"id":1},
///     "date":"2026-01-15","timeOfDayInMinutes":480,"kind":"InOut"}"#).unwrap();
/// let raw = clocking_to_raw(unversioned.clone()).unwrap();
/// assert_eq!(raw.change_version, None);
/// assert_eq!(clocking_from_raw(raw).unwrap(), unversioned);
/// ```
pub fn clocking_to_raw(clocking: Clocking) -> Result<raw::Clocking, ToRawError> {
    let absent = clocking.change_version.is_absent();
    let data = raw_clocking_data(clocking);
    match (
        data.person,
        data.date,
        data.time_of_day_in_minutes,
        data.kind,
    ) {
        (Some(person), Some(date), Some(time_of_day_in_minutes), Some(kind)) => Ok(raw::Clocking {
            change_version: (!absent).then_some(data.change_version),
            id: data.id,
            person,
            date,
            time_of_day_in_minutes,
            original_time_of_day_in_minutes: data.original_time_of_day_in_minutes,
            calculated_time_of_day_in_minutes: data.calculated_time_of_day_in_minutes,
            is_generated: data.is_generated,
            terminal: data.terminal,
            geolocation: data.geolocation,
            kind,
            reason: data.reason,
            is_open: data.is_open,
            activity_levels: data.activity_levels,
            status: data.status,
        }),
        (person, date, time, kind) => Err(ToRawError::MissingFields {
            missing: [
                (person.is_none(), "person"),
                (date.is_none(), "date"),
                (time.is_none(), "timeOfDayInMinutes"),
                (kind.is_none(), "kind"),
            ]
            .into_iter()
            .filter_map(|(missing, name)| missing.then_some(name))
            .collect(),
        }),
    }
}

/// The raw `data` of an `InsertOrUpdate` change: the whole clocking (a clocking without a
/// `changeVersion` gets an empty one).
pub fn raw_change_data(clocking: raw::Clocking) -> raw::ClockingChangeData {
    raw::ClockingChangeData {
        change_version: clocking.change_version.unwrap_or_default(),
        id: clocking.id,
        activity_levels: clocking.activity_levels,
        calculated_time_of_day_in_minutes: clocking.calculated_time_of_day_in_minutes,
        date: Some(clocking.date),
        geolocation: clocking.geolocation,
        is_generated: clocking.is_generated,
        is_open: clocking.is_open,
        kind: Some(clocking.kind),
        original_time_of_day_in_minutes: clocking.original_time_of_day_in_minutes,
        person: Some(clocking.person),
        reason: clocking.reason,
        status: clocking.status,
        terminal: clocking.terminal,
        time_of_day_in_minutes: Some(clocking.time_of_day_in_minutes),
    }
}

/// The raw `data` of a `Delete` change: only `changeVersion` and `id`, as the docs show.
pub fn raw_deletion_data(change_version: String, id: NonZeroU64) -> raw::ClockingChangeData {
    raw::ClockingChangeData {
        change_version,
        id,
        activity_levels: Vec::new(),
        calculated_time_of_day_in_minutes: None,
        date: None,
        geolocation: None,
        is_generated: None,
        is_open: None,
        kind: None,
        original_time_of_day_in_minutes: None,
        person: None,
        reason: None,
        status: None,
        terminal: None,
        time_of_day_in_minutes: None,
    }
}

/// The generated form of a validated change. Every change parsed from a delivery or a delta
/// change converts; an `InsertOrUpdate` built from a clocking that the API listed without a
/// `changeVersion` does not ([`ToRawError::Unversioned`]): the generated change requires a
/// version, and none is invented.
///
/// ```
/// use protime_client::convert::{change_to_raw, ToRawError};
/// use protime_model::ClockingChange;
/// let change = protime_model::parse_delivery(
///     br#"{"changeType":"Delete","data":{"changeVersion":"0A","id":7}}"#).unwrap();
/// assert_eq!(change_to_raw(change).unwrap().data.change_version, "0A");
/// let listed = protime_model::parse_clocking(br#"{"id":7}"#).unwrap();
/// assert_eq!(change_to_raw(ClockingChange::InsertOrUpdate(listed)), Err(ToRawError::Unversioned));
/// ```
pub fn change_to_raw(change: ClockingChange) -> Result<raw::ClockingChange, ToRawError> {
    match change {
        ClockingChange::Delete { id, change_version } => Ok(raw::ClockingChange {
            change_type: raw::ChangeType::Delete,
            data: raw_deletion_data(change_version.as_str().to_owned(), non_zero_id(id.get())),
        }),
        ClockingChange::InsertOrUpdate(clocking) if clocking.change_version.is_absent() => {
            Err(ToRawError::Unversioned)
        }
        ClockingChange::InsertOrUpdate(clocking) => Ok(raw::ClockingChange {
            change_type: raw::ChangeType::InsertOrUpdate,
            data: raw_clocking_data(clocking),
        }),
    }
}
